package main

import (
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shoalmq/shoal/codec"
	"github.com/shoalmq/shoal/internal/testutil"
)

// TestNotifySocket plays systemd for a Type=notify unit: the real binary,
// started with $NOTIFY_SOCKET naming the test's datagram socket, says
// READY=1 only once MQTT and the admin API answer; RELOADING=1 and READY=1
// around a SIGHUP; STOPPING=1 on SIGTERM.
func TestNotifySocket(t *testing.T) {
	bin := buildBroker(t)
	dir := t.TempDir()
	sock := filepath.Join(dir, "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	addr := testutil.FreeAddr(t)
	adminAddr := testutil.FreeAddr(t)
	cfg := filepath.Join(dir, "shoal.yaml")
	body := "listen: " + addr + "\nadmin_listen: " + adminAddr + "\ndata_dir: " + filepath.Join(dir, "data") +
		"\nallow_anonymous: true\nlog_format: json\n"
	if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	p := &brokerProc{cmd: exec.Command(bin, "-c", cfg), stderr: new(testutil.SyncBuffer), done: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+sock)
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(p.kill)

	next := func(want string) string {
		t.Helper()
		_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
		buf := make([]byte, 4096)
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("waiting for %s: %v; broker log:\n%s", want, err, p.stderr.String())
		}
		got := string(buf[:n])
		if !strings.HasPrefix(got, want) {
			t.Fatalf("notification %q, want %s first", got, want)
		}
		return got
	}
	ready := next("READY=1")
	// What READY promises holds the moment it arrives.
	testutil.DialConnect(t, addr, codec.V311, codec.Connect{ClientID: []byte("c"), CleanStart: true})
	resp, err := http.Get("http://" + adminAddr + "/readyz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/readyz at READY=1: %v %v", resp, err)
	}
	resp.Body.Close()
	if !strings.Contains(ready, "STATUS=serving MQTT on "+addr) {
		t.Errorf("READY=1 came without the status line: %q", ready)
	}

	_ = p.cmd.Process.Signal(syscall.SIGHUP)
	if got := next("RELOADING=1"); !strings.Contains(got, "\nMONOTONIC_USEC=") {
		t.Errorf("RELOADING=1 without MONOTONIC_USEC: %q", got)
	}
	next("READY=1")

	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	next("STOPPING=1")
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		t.Fatal("broker did not stop on SIGTERM")
	}
}
