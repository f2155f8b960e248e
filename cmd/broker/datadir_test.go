package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shoalmq/shoal/internal/testutil"
)

// The data directory is the user's: a second broker started on it, or one
// that finds it damaged, must never delete, move or overwrite what the
// first one stored.

// writeConfig writes shoal.yaml into dir for a broker on addr with the
// default data_dir (shoal-data, relative to the working directory) and
// extra lines.
func writeConfig(t *testing.T, dir, name, addr, extra string) {
	t.Helper()
	cfg := fmt.Sprintf("listen: %q\nlog_format: json\nadmin_listen: \"\"\nallow_anonymous: true\n%s", addr, extra)
	if err := os.WriteFile(filepath.Join(dir, name), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
}

// runToExit runs the broker in dir with args and waits for it to exit by
// itself, returning its exit code and what it wrote to stderr.
func runToExit(t *testing.T, bin, dir string, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	var stderr testutil.SyncBuffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("shoal %s did not exit within 20s: %s", strings.Join(args, " "), stderr.String())
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), stderr.String()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0, stderr.String()
}

// siblings lists what sits beside data in its parent directory, but data.
func siblings(t *testing.T, data string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Dir(data))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() && e.Name() != filepath.Base(data) {
			out = append(out, e.Name())
		}
	}
	return out
}

// TestSecondBrokerTouchesNothing: a second broker started with the same
// command in the same directory while the first runs — on the same port,
// and on another port — exits non-zero, saying why, and the first
// broker's data survives: its retained message is there after a restart.
// (Before: Pebble's lock error was taken for damage; the OPTIONS files
// were deleted and the live directory renamed aside, losing the message.)
func TestSecondBrokerTouchesNothing(t *testing.T) {
	bin := buildBroker(t)
	dir := t.TempDir()
	data := filepath.Join(dir, "shoal-data")
	addr := testutil.FreeAddr(t)
	writeConfig(t, dir, "shoal.yaml", addr, "")
	first := startBrokerIn(t, bin, dir, addr, "-c", "shoal.yaml")
	defer first.kill()
	host, port := testutil.HostPort(t, addr)
	if out, err := testutil.Mosquitto(t, 10*time.Second, "mosquitto_pub", "-h", host, "-p", port,
		"-q", "1", "-r", "-t", "keep/me", "-m", "v1"); err != nil {
		t.Fatalf("mosquitto_pub: %v: %s", err, out)
	}
	options, _ := filepath.Glob(filepath.Join(data, "OPTIONS-*"))
	if len(options) == 0 {
		t.Fatal("no OPTIONS file in the running broker's store")
	}

	code, stderr := runToExit(t, bin, dir, "-c", "shoal.yaml")
	if code == 0 || !strings.Contains(stderr, "listen") || !strings.Contains(stderr, "address already in use") {
		t.Errorf("second broker on the same port: exit %d, stderr:\n%s\nwant a non-zero exit naming listen and the port in use", code, stderr)
	}
	writeConfig(t, dir, "other.yaml", testutil.FreeAddr(t), "")
	code, stderr = runToExit(t, bin, dir, "-c", "other.yaml")
	wantPID := "pid " + strconv.Itoa(first.cmd.Process.Pid)
	if code == 0 || !strings.Contains(stderr, "in use by another process") || !strings.Contains(stderr, wantPID) {
		t.Errorf("second broker on another port: exit %d, stderr:\n%s\nwant a non-zero exit saying the store is in use by %s", code, stderr, wantPID)
	}
	if s := siblings(t, data); len(s) != 0 {
		t.Errorf("directories appeared beside the store: %v", s)
	}
	for _, f := range options {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("the running broker's %s: %v", filepath.Base(f), err)
		}
	}

	first.stop(t)
	again := startBrokerIn(t, bin, dir, addr, "-c", "shoal.yaml")
	defer again.kill()
	out, err := testutil.Mosquitto(t, 10*time.Second, "mosquitto_sub", "-h", host, "-p", port,
		"-t", "keep/me", "-C", "1", "-W", "5")
	if err != nil || strings.TrimSpace(out) != "v1" {
		t.Fatalf("after restarting the first broker, mosquitto_sub got %q (%v), want the retained v1", out, err)
	}
}

// TestDamagedStoreRefused: with on_damage: refuse a damaged store stops
// the broker (exit 1, the damage named) and is left exactly as it was;
// with the default, salvage, the broker starts and the damaged directory
// is kept whole beside the fresh one.
func TestDamagedStoreRefused(t *testing.T) {
	bin := buildBroker(t)
	dir := t.TempDir()
	data := filepath.Join(dir, "shoal-data")
	addr := testutil.FreeAddr(t)
	writeConfig(t, dir, "salvage.yaml", addr, "")
	writeConfig(t, dir, "refuse.yaml", addr, "on_damage: refuse\n")
	br := startBrokerIn(t, bin, dir, addr, "-c", "salvage.yaml")
	host, port := testutil.HostPort(t, addr)
	if out, err := testutil.Mosquitto(t, 10*time.Second, "mosquitto_pub", "-h", host, "-p", port,
		"-q", "1", "-r", "-t", "keep/me", "-m", "v1"); err != nil {
		br.kill()
		t.Fatalf("mosquitto_pub: %v: %s", err, out)
	}
	br.stop(t)
	manifests, _ := filepath.Glob(filepath.Join(data, "MANIFEST-*"))
	for _, m := range manifests {
		if err := os.Truncate(m, 0); err != nil {
			t.Fatal(err)
		}
	}
	before := tree(t, data)

	code, stderr := runToExit(t, bin, dir, "-c", "refuse.yaml")
	if code != 1 || !strings.Contains(stderr, "damaged") {
		t.Errorf("on_damage: refuse: exit %d, stderr:\n%s\nwant exit 1 naming the damage", code, stderr)
	}
	if after := tree(t, data); after != before {
		t.Error("on_damage: refuse changed the damaged store")
	}
	if s := siblings(t, data); len(s) != 0 {
		t.Errorf("on_damage: refuse made directories beside the store: %v", s)
	}

	br = startBrokerIn(t, bin, dir, addr, "-c", "salvage.yaml")
	defer br.kill()
	aside, _ := filepath.Glob(data + ".damaged-*")
	if len(aside) != 1 {
		t.Fatalf("beside the store after salvage: %v, want the damaged one kept", siblings(t, data))
	}
	if kept := tree(t, aside[0]); kept != before {
		t.Error("the damaged store was not kept as it was")
	}
	if !strings.Contains(br.stderr.String(), aside[0]) {
		t.Errorf("the log does not name the kept directory %s:\n%s", aside[0], br.stderr.String())
	}
}

// tree is every file under dir with its contents, as one string.
func tree(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		fmt.Fprintf(&b, "%s %d %x\n", strings.TrimPrefix(path, dir), len(data), data)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// startBrokerIn starts the broker in dir ("": this one) with args and
// waits until it accepts connections on addr; it is killed when the test
// ends.
func startBrokerIn(t *testing.T, bin, dir, addr string, args ...string) *brokerProc {
	t.Helper()
	p := spawnBroker(t, bin, dir, args...)
	p.waitListening(t, addr)
	return p
}

// spawnBroker starts the broker in dir ("": this one) with args, without
// waiting for it; it is killed when the test ends.
func spawnBroker(t *testing.T, bin, dir string, args ...string) *brokerProc {
	t.Helper()
	p := &brokerProc{cmd: exec.Command(bin, args...), stderr: new(testutil.SyncBuffer), done: make(chan struct{}),
		bin: bin, dir: dir, args: args}
	p.cmd.Dir = dir
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(p.kill)
	return p
}

// again starts the broker again as p was started, once p has ended:
// same binary, directory and arguments.
func (p *brokerProc) again(t *testing.T) *brokerProc {
	t.Helper()
	<-p.done
	q := spawnBroker(t, p.bin, p.dir, p.args...)
	q.admin = p.admin
	return q
}

// stop ends the broker with SIGTERM and waits for a clean exit.
func (p *brokerProc) stop(t *testing.T) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		p.kill()
		t.Fatalf("broker did not stop on SIGTERM: %s", p.stderr.String())
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("broker exited %d on SIGTERM: %s", code, p.stderr.String())
	}
}

// waitListening waits until the broker accepts connections on addr,
// failing the test if it exits first or takes over 20 s.
func (p *brokerProc) waitListening(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-p.done:
			t.Fatalf("broker exited before listening: %s", p.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			p.kill()
			t.Fatalf("broker not listening after 20s: %s", p.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
