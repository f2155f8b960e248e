package sdnotify_test

import (
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shoalmq/shoal/internal/sdnotify"
)

// listen makes a fake service manager's notification socket named name
// (a path, or '@' and an abstract name) and returns what arrives on it.
func listen(t *testing.T, name string) <-chan string {
	t.Helper()
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	got := make(chan string, 8)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				close(got)
				return
			}
			got <- string(buf[:n])
		}
	}()
	return got
}

func receive(t *testing.T, got <-chan string) string {
	t.Helper()
	select {
	case s := <-got:
		return s
	case <-time.After(5 * time.Second):
		t.Fatal("no datagram on the notification socket after 5s")
		return ""
	}
}

func TestNotifyPath(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify")
	got := listen(t, sock)
	n := sdnotify.New(sock)
	if !n.Enabled() {
		t.Fatal("a Notifier with a socket is not enabled")
	}
	if err := n.Notify(sdnotify.Ready + "\n" + sdnotify.Status("serving")); err != nil {
		t.Fatal(err)
	}
	if s := receive(t, got); s != "READY=1\nSTATUS=serving" {
		t.Errorf("datagram %q, want READY=1 and the status in one", s)
	}
	if err := n.Notify(sdnotify.Stopping); err != nil {
		t.Fatal(err)
	}
	if s := receive(t, got); s != "STOPPING=1" {
		t.Errorf("datagram %q, want STOPPING=1", s)
	}
}

// TestNotifyAbstract: a name starting with '@' is in the abstract
// namespace, as systemd names its socket in containers.
func TestNotifyAbstract(t *testing.T) {
	name := "@shoal-sdnotify-test-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	got := listen(t, name)
	if err := sdnotify.New(name).Notify(sdnotify.Ready); err != nil {
		t.Fatal(err)
	}
	if s := receive(t, got); s != "READY=1" {
		t.Errorf("datagram %q, want READY=1", s)
	}
}

func TestReloading(t *testing.T) {
	lines := strings.Split(sdnotify.Reloading(), "\n")
	if len(lines) != 2 || lines[0] != "RELOADING=1" || !strings.HasPrefix(lines[1], "MONOTONIC_USEC=") {
		t.Fatalf("Reloading() = %q, want RELOADING=1 and MONOTONIC_USEC", lines)
	}
	if usec, err := strconv.ParseInt(strings.TrimPrefix(lines[1], "MONOTONIC_USEC="), 10, 64); err != nil || usec <= 0 {
		t.Errorf("MONOTONIC_USEC %q: %v", lines[1], err)
	}
}

func TestZeroSendsNothing(t *testing.T) {
	n := sdnotify.New("")
	if n.Enabled() {
		t.Error("New(\"\") is enabled")
	}
	if err := n.Notify(sdnotify.Ready); err != nil {
		t.Errorf("Notify on the zero Notifier: %v", err)
	}
}

func TestNoListener(t *testing.T) {
	err := sdnotify.New(filepath.Join(t.TempDir(), "nobody")).Notify(sdnotify.Ready)
	if err == nil || !strings.HasPrefix(err.Error(), "sdnotify: ") {
		t.Errorf("Notify to a missing socket: %v, want an sdnotify: error", err)
	}
}
