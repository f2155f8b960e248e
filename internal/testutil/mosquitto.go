package testutil

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// MosquittoBroker is a real mosquitto broker run by a test, on loopback.
type MosquittoBroker struct {
	t    testing.TB
	bin  string
	conf string
	// Addr is its "127.0.0.1:port"; the port stays across Restart.
	Addr string
	// Log collects its output (it logs to stderr).
	Log *SyncBuffer
	cmd *exec.Cmd
	end chan error
}

// StartMosquitto starts /usr/sbin/mosquitto (or mosquitto on PATH) with a
// listener on a free loopback port, persistence in a directory of the
// test's, and the lines extra (bridge sections, limits) after them. It is
// stopped when the test ends.
func StartMosquitto(t testing.TB, extra string) *MosquittoBroker {
	t.Helper()
	dir := t.TempDir()
	return startMosquitto(t, dir, fmt.Sprintf("allow_anonymous true\npersistence true\npersistence_location %s/\n"+
		"log_dest stderr\nlog_type error\nlog_type warning\nlog_type notice\nlog_type information\n%s\n", dir, extra))
}

// StartMosquittoConf starts the real Mosquitto broker, for tests that hold
// Shoal to what Mosquitto does: its configuration is a listener on a free
// loopback port followed by conf alone. Files conf names must be readable
// by the test's user. It is stopped when the test ends.
func StartMosquittoConf(t testing.TB, conf string) *MosquittoBroker {
	t.Helper()
	return startMosquitto(t, t.TempDir(), conf)
}

// startMosquitto writes the configuration — a listener on a free loopback
// port, "user root" when the test runs as root (else mosquitto would drop
// to the mosquitto user, who cannot use the test's files), then body —
// into dir and starts the broker, printing its log if the test fails.
func startMosquitto(t testing.TB, dir, body string) *MosquittoBroker {
	t.Helper()
	bin := "/usr/sbin/mosquitto"
	if _, err := os.Stat(bin); err != nil {
		bin = Tool(t, "mosquitto")
	}
	port := FreePort(t)
	head := fmt.Sprintf("listener %d 127.0.0.1\n", port)
	if os.Geteuid() == 0 {
		head += "user root\n"
	}
	conf := filepath.Join(dir, "mosquitto.conf")
	if err := os.WriteFile(conf, []byte(head+body), 0o600); err != nil {
		t.Fatal(err)
	}
	m := &MosquittoBroker{t: t, bin: bin, conf: conf, Addr: fmt.Sprintf("127.0.0.1:%d", port), Log: &SyncBuffer{}}
	m.start()
	t.Cleanup(func() {
		m.Stop()
		if t.Failed() {
			t.Logf("mosquitto's log:\n%s", m.Log.String())
		}
	})
	return m
}

func (m *MosquittoBroker) start() {
	m.t.Helper()
	m.cmd = exec.Command(m.bin, "-c", m.conf)
	m.cmd.Stdout, m.cmd.Stderr = m.Log, m.Log
	if err := m.cmd.Start(); err != nil {
		m.t.Fatalf("mosquitto: %v", err)
	}
	m.end = make(chan error, 1)
	go func(c *exec.Cmd, end chan error) { end <- c.Wait() }(m.cmd, m.end)
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", m.Addr, time.Second)
		if err == nil {
			_ = c.Close()
			return
		}
		select {
		case err := <-m.end:
			m.cmd = nil
			m.t.Fatalf("mosquitto exited: %v\n%s", err, m.Log.String())
		default:
		}
		if time.Now().After(deadline) {
			m.t.Fatalf("mosquitto does not listen on %s: %v\n%s", m.Addr, err, m.Log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop sends SIGTERM (mosquitto saves its persistence file) and waits for
// it to exit; SIGKILL after 10 s.
func (m *MosquittoBroker) Stop() {
	if m.cmd == nil {
		return
	}
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.end:
	case <-time.After(10 * time.Second):
		_ = m.cmd.Process.Kill()
		<-m.end
	}
	m.cmd = nil
}

// Restart stops mosquitto and starts it again on the same port, with its
// persistence.
func (m *MosquittoBroker) Restart() {
	m.t.Helper()
	m.Stop()
	m.start()
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// FreeAddr returns "127.0.0.1:port" with a port that was free a moment ago.
func FreeAddr(t testing.TB) string {
	t.Helper()
	return fmt.Sprintf("127.0.0.1:%d", FreePort(t))
}

// RouteAddrs returns n distinct addresses on 127.0.0.2 that were free a
// moment ago, for listeners bound only later, such as cluster nodes'
// routes, which their peers must know before they start. Everything else
// in the tests binds 127.0.0.1, where a port the kernel picks for one of
// them (a node's client listener, a broker's) could otherwise take a
// reserved port meanwhile: a node then failed to start, one run in
// thirty. The n are held together until all are picked: picked one by one,
// two nodes were once given the same.
func RouteAddrs(t testing.TB, n int) []string {
	t.Helper()
	addrs := make([]string, n)
	for i := range addrs {
		ln, err := net.Listen("tcp", "127.0.0.2:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		addrs[i] = ln.Addr().String()
	}
	return addrs
}
