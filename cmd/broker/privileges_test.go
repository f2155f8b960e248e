package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shoalmq/shoal/codec"
	"github.com/shoalmq/shoal/config"
	"github.com/shoalmq/shoal/internal/testutil"
)

// TestCheckPrivileges: who may run with which listeners, decided before
// anything is bound.
func TestCheckPrivileges(t *testing.T) {
	shoal := &account{name: "shoal", uid: 998, gid: 997, groups: []int{997}}
	lookup := func(name string) (*account, error) {
		switch name {
		case "shoal":
			return shoal, nil
		case "root":
			return &account{name: "root"}, nil
		}
		return nil, user.UnknownUserError(name)
	}
	file := func(edit func(f *config.File)) config.File {
		f, err := config.Parse(config.Default(), "default")
		if err != nil {
			t.Fatal(err)
		}
		edit(&f)
		return f
	}
	open := func(f *config.File) { f.Broker.Listen = "0.0.0.0:1883" }
	tests := []struct {
		name    string
		f       config.File
		euid    int
		switch_ bool
		err     string // "" for none; else a part of it
	}{
		{name: "root on loopback", f: file(func(*config.File) {}), euid: 0},
		{name: "root open", f: file(open), euid: 0, err: "user: running as root with listen on 0.0.0.0:1883, off loopback"},
		{name: "root open, allow_root", f: file(func(f *config.File) { open(f); f.AllowRoot = true }), euid: 0},
		{name: "root, admin open", f: file(func(f *config.File) { f.AdminListen, f.AdminToken = ":8083", "t" }), euid: 0,
			err: "admin_listen on :8083"},
		{name: "root, wss open", f: file(func(f *config.File) { f.Broker.Transports.WSSListen = "[::]:8443" }), euid: 0,
			err: "wss_listen on [::]:8443"},
		{name: "root, ipv6 loopback", f: file(func(f *config.File) { f.Broker.Listen = "[::1]:1883" }), euid: 0},
		{name: "root, localhost", f: file(func(f *config.File) { f.Broker.Listen = "localhost:1883" }), euid: 0},
		{name: "root, a name", f: file(func(f *config.File) { f.Broker.Listen = "mqtt.example:1883" }), euid: 0, err: "off loopback"},
		{name: "root with user", f: file(func(f *config.File) { open(f); f.User = "shoal" }), euid: 0, switch_: true},
		{name: "root with user root", f: file(func(f *config.File) { open(f); f.User = "root" }), euid: 0, err: "allow_root"},
		{name: "root with user root, allowed", f: file(func(f *config.File) { open(f); f.User, f.AllowRoot = "root", true }), euid: 0},
		{name: "unknown user", f: file(func(f *config.File) { f.User = "nosuch" }), euid: 0, err: "user: user: unknown user nosuch"},
		{name: "privileged listen", f: file(func(f *config.File) { f.Broker.Listen, f.User = "0.0.0.0:883", "shoal" }), euid: 0,
			err: "listen: port 883 is below 1024, which user shoal may not bind"},
		{name: "privileged wss is bound first", f: file(func(f *config.File) { f.Broker.Transports.WSSListen, f.User = ":443", "shoal" }),
			euid: 0, switch_: true},
		{name: "not root", f: file(open), euid: 1000},
		{name: "not root, user", f: file(func(f *config.File) { open(f); f.User = "shoal" }), euid: 1000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := checkPrivileges(tt.f, tt.euid, lookup, 1024)
			switch {
			case tt.err == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
				t.Fatalf("err %v, want one containing %q", err, tt.err)
			}
			if got := p.switchTo != nil; got != tt.switch_ {
				t.Errorf("switches user: %v, want %v", got, tt.switch_)
			}
			if tt.switch_ && p.switchTo != shoal {
				t.Errorf("switches to %+v, want shoal", p.switchTo)
			}
		})
	}
}

// TestRootRefusesOpenListener: as root, a listener off loopback without
// user stops the broker before it binds anything, naming both settings.
func TestRootRefusesOpenListener(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	port := testutil.FreePort(t)
	cfg := filepath.Join(t.TempDir(), "shoal.yaml")
	body := fmt.Sprintf("listen: 0.0.0.0:%d\npersistence: false\nadmin_listen: \"\"\n", port)
	if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"-c", cfg}, &stdout, &stderr, nil); code != 1 {
		t.Fatalf("run as root on 0.0.0.0 without user: exit %d, want 1; stderr:\n%s", code, stderr.String())
	}
	for _, want := range []string{"user:", "running as root", "allow_root"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatalf("the refused broker left port %d bound: %v", port, err)
	}
	l.Close()
}

// privilegedPort finds a loopback port below 1024 that is free (root
// only).
func privilegedPort(t *testing.T, not int) int {
	t.Helper()
	for p := 1023; p > 900; p-- {
		if p == not {
			continue
		}
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err == nil {
			l.Close()
			return p
		}
	}
	t.Skip("no free port between 901 and 1023")
	return 0
}

// TestSwitchUser runs the real binary as root with user: nobody. It binds
// the admin and WebSocket listeners on ports below 1024 as root, switches
// to nobody, then opens the store, whose files belong to nobody; it serves
// MQTT and the admin API as nobody, and cannot become root again.
func TestSwitchUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	nobody, err := lookupUser("nobody")
	if err != nil {
		t.Skipf("no user nobody: %v", err)
	}
	bin := buildBroker(t)
	// A directory nobody may enter (t.TempDir's parent is root's, 0700).
	dir, err := os.MkdirTemp("", "shoal-user-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "state")
	if err := os.Mkdir(state, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(state, nobody.uid, nobody.gid); err != nil {
		t.Fatal(err)
	}
	addr := testutil.FreeAddr(t)
	adminPort := privilegedPort(t, 0)
	wsPort := privilegedPort(t, adminPort)
	cfg := filepath.Join(dir, "shoal.yaml")
	body := fmt.Sprintf("listen: %q\ndata_dir: %q\nadmin_listen: 127.0.0.1:%d\nws_listen: 127.0.0.1:%d\nallow_anonymous: true\nlog_format: json\nuser: nobody\n",
		addr, filepath.Join(state, "store"), adminPort, wsPort)
	if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	br := startBrokerIn(t, bin, dir, addr, "-c", cfg)
	defer br.kill()

	uid, gid := procIDs(t, br.cmd.Process.Pid)
	if uid != strconv.Itoa(nobody.uid) || gid != strconv.Itoa(nobody.gid) {
		t.Errorf("broker runs as uid %s gid %s, want nobody's %d/%d", uid, gid, nobody.uid, nobody.gid)
	}
	if !strings.Contains(br.stderr.String(), `"listeners bound; running as user"`) {
		t.Errorf("no log line saying the broker switched user:\n%s", br.stderr.String())
	}
	entries, err := os.ReadDir(filepath.Join(state, "store"))
	if err != nil || len(entries) == 0 {
		t.Fatalf("store: %d entries, %v", len(entries), err)
	}
	for _, e := range entries {
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		if st := info.Sys().(*syscall.Stat_t); int(st.Uid) != nobody.uid {
			t.Errorf("store file %s belongs to uid %d, want nobody (%d)", e.Name(), st.Uid, nobody.uid)
		}
	}
	testutil.DialConnect(t, addr, codec.V311, codec.Connect{ClientID: []byte("c"), CleanStart: true})
	resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(adminPort) + "/healthz")
	if err != nil {
		t.Fatalf("admin API on port %d: %v", adminPort, err)
	}
	resp.Body.Close()
	if c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(wsPort), 5*time.Second); err != nil {
		t.Errorf("ws_listen on port %d: %v", wsPort, err)
	} else {
		c.Close()
	}
	br.stop(t)
}

// TestSwitchUserPrivilegedListen: as root with user set, a listen port
// below 1024 is refused before anything is bound.
func TestSwitchUserPrivilegedListen(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	if _, err := lookupUser("nobody"); err != nil {
		t.Skipf("no user nobody: %v", err)
	}
	if unprivilegedPortStart() <= 900 {
		t.Skip("net.ipv4.ip_unprivileged_port_start lets anyone bind port 900")
	}
	cfg := filepath.Join(t.TempDir(), "shoal.yaml")
	body := "listen: 127.0.0.1:900\npersistence: false\nadmin_listen: \"\"\nuser: nobody\n"
	if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"-c", cfg}, &stdout, &stderr, nil); code != 1 ||
		!strings.Contains(stderr.String(), "listen: port 900 is below") {
		t.Errorf("exit %d, stderr:\n%s\nwant 1 naming listen's port", code, stderr.String())
	}
}

// procIDs returns the real user and group ids of process pid.
func procIDs(t *testing.T, pid int) (uid, gid string) {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 1 {
			switch f[0] {
			case "Uid:":
				uid = f[1]
			case "Gid:":
				gid = f[1]
			}
		}
	}
	return uid, gid
}

// TestLookupUser reads the account of the user running the test.
func TestLookupUser(t *testing.T) {
	cur, err := user.Current()
	if err != nil {
		t.Skip(err)
	}
	a, err := lookupUser(cur.Username)
	if err != nil {
		t.Fatal(err)
	}
	if strconv.Itoa(a.uid) != cur.Uid || strconv.Itoa(a.gid) != cur.Gid || len(a.groups) == 0 {
		t.Errorf("lookupUser(%s) = %+v, want uid %s gid %s with its groups", cur.Username, a, cur.Uid, cur.Gid)
	}
	var unknown user.UnknownUserError
	if _, err := lookupUser("no-such-user-here"); !errors.As(err, &unknown) {
		t.Errorf("lookupUser of an unknown name: %v", err)
	}
}
