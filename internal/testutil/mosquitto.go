package testutil

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// MosquittoBroker starts the real Mosquitto broker, for tests that hold
// Shoal to what Mosquitto does. Its configuration is a listener on a free
// loopback port followed by conf; files conf names must be readable by the
// test's user (the broker stays that user: "user" is set to it when the
// test runs as root). It returns "host:port" once the broker accepts
// connections, and stops it when the test ends. Its log is printed when
// the test fails.
func MosquittoBroker(t testing.TB, conf string) string {
	t.Helper()
	bin := mosquittoPath(t)
	dir := t.TempDir()
	port := FreePort(t)
	body := fmt.Sprintf("listener %d 127.0.0.1\n", port)
	if os.Geteuid() == 0 {
		body += "user root\n" // else Mosquitto drops to the mosquitto user, who cannot read the test's files
	}
	body += conf
	path := filepath.Join(dir, "mosquitto.conf")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	log := &SyncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "-c", path)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("starting mosquitto: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cancel()
		<-done
		if t.Failed() {
			t.Logf("mosquitto's log:\n%s", log.String())
		}
	})
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return addr
		}
		select {
		case <-done:
			t.Fatalf("mosquitto exited at start:\n%s", log.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("mosquitto not listening on %s after 10s:\n%s", addr, log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// mosquittoPath finds the mosquitto broker: on PATH, or in /usr/sbin where
// Debian puts it (not on a normal user's PATH).
func mosquittoPath(t testing.TB) string {
	t.Helper()
	if p, err := exec.LookPath("mosquitto"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/sbin/mosquitto"); err == nil {
		return "/usr/sbin/mosquitto"
	}
	t.Fatal("mosquitto not found: run `make deps` (installs the mosquitto broker)")
	return ""
}

// FreePort returns a TCP port that was free on 127.0.0.1 a moment ago, for
// programs that must be told their port rather than report it. Another
// process may take it in between; tests that cannot listen on port 0
// accept that small risk.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
