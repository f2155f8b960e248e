package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/shoalmq/shoal/codec"
	"github.com/shoalmq/shoal/config"
	"github.com/shoalmq/shoal/internal/testutil"
)

func TestVersion(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"--version"}, &stdout, &stderr, nil); code != 0 {
		t.Fatalf("--version exited %d, stderr: %s", code, stderr.String())
	}
	if !strings.HasPrefix(stdout.String(), "shoal dev (go") {
		t.Errorf("--version printed %q, want \"shoal dev (go...\"", stdout.String())
	}
}

func TestHelp(t *testing.T) {
	for _, arg := range []string{"-h", "--help"} {
		var stdout, stderr bytes.Buffer
		if code := run([]string{arg}, &stdout, &stderr, nil); code != 0 {
			t.Errorf("%s exited %d, want 0", arg, code)
		}
		for _, want := range []string{"Usage: shoal", "-config FILE", "-listen ADDR", "-log-level LEVEL", "-version"} {
			if !strings.Contains(stderr.String(), want) {
				t.Errorf("%s output lacks %q:\n%s", arg, want, stderr.String())
			}
		}
	}
}

// TestBadFlags checks that every flag error exits 2 with a message naming
// the flag or argument.
func TestBadFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{name: "unknown flag", args: []string{"--lsten", ":1883"}, want: []string{"-lsten"}},
		{name: "missing value", args: []string{"--listen"}, want: []string{"-listen"}},
		{name: "bad listen", args: []string{"--listen", "localhost"}, want: []string{"--listen", `"localhost" is not host:port`}},
		{name: "listen port out of range", args: []string{"--listen", "127.0.0.1:99999"}, want: []string{"--listen", `port "99999" is not a number in 0..65535`}},
		{name: "bad admin listen", args: []string{"--admin-listen", "8083"}, want: []string{"--admin-listen", `"8083" is not host:port`}},
		{name: "public admin listen without token", args: []string{"--admin-listen", "0.0.0.0:8083"}, want: []string{"--admin-listen", "admin_token must be set"}},
		{name: "bad log level", args: []string{"--log-level", "loud"}, want: []string{"-log-level", `"loud"`}},
		{name: "empty config", args: []string{"-c", ""}, want: []string{"-c", "must name a file"}},
		{name: "empty config long", args: []string{"--config="}, want: []string{"-config", "must name a file"}},
		{name: "bad bool", args: []string{"--version=maybe"}, want: []string{"-version"}},
		{name: "stray argument", args: []string{"shoal.yaml"}, want: []string{`unexpected argument "shoal.yaml"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(tt.args, &stdout, &stderr, nil); code != 2 {
				t.Errorf("run(%q) = %d, want 2", tt.args, code)
			}
			for _, w := range tt.want {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("run(%q) stderr lacks %q:\n%s", tt.args, w, stderr.String())
				}
			}
		})
	}
}

// TestBadConfig checks that a wrong configuration file exits 1 with the
// config error, naming file, line and key, before anything listens.
func TestBadConfig(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	bad := write("shoal.yaml", "listen: \"127.0.0.1:0\"\nmax_inflight: 0\n")
	typo := write("typo.yaml", "# listener\nlistne: \":0\"\n")
	cluster := write("cluster.yaml", "listen: \"127.0.0.1:0\"\ncluster:\n  name: shoal\n  node: a\n  listen: nowhere\n")
	missing := filepath.Join(dir, "missing.yaml")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{name: "validate", args: []string{"-c", bad}, want: bad + ":2:15: max_inflight: 0 is outside 1..65535"},
		{name: "long flag", args: []string{"--config", bad}, want: bad + ":2:15: max_inflight: 0 is outside 1..65535"},
		{name: "listen flag does not hide file errors", args: []string{"--listen", "127.0.0.1:0", "-c", bad}, want: bad + ":2:15: max_inflight"},
		{name: "unknown key", args: []string{"-c", typo}, want: typo + `:2:1: unknown key "listne" (did you mean "listen"?)`},
		{name: "missing file", args: []string{"-c", missing}, want: missing},
		{name: "cluster key", args: []string{"-c", cluster}, want: cluster + `:5:11: cluster.listen: "nowhere" is not host:port`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(tt.args, &stdout, &stderr, nil); code != 1 {
				t.Errorf("run(%q) = %d, want 1", tt.args, code)
			}
			if !strings.Contains(stderr.String(), tt.want) {
				t.Errorf("run(%q) stderr lacks %q:\n%s", tt.args, tt.want, stderr.String())
			}
		})
	}
}

func TestNewLogger(t *testing.T) {
	var buf bytes.Buffer
	log := newLogger(&buf, zerolog.WarnLevel, config.LogFormatAuto)
	log.Info().Msg("hidden")
	log.Warn().Str("k", "v").Msg("shown")
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("auto format on a buffer is not JSON: %v: %q", err, buf.String())
	}
	if line["message"] != "shown" || line["k"] != "v" || line["level"] != "warn" {
		t.Errorf("logged %v", line)
	}

	buf.Reset()
	log = newLogger(&buf, zerolog.InfoLevel, config.LogFormatConsole)
	log.Info().Str("addr", "127.0.0.1:1883").Msg("listening")
	if out := buf.String(); strings.HasPrefix(out, "{") || !strings.Contains(out, "listening") ||
		!strings.Contains(out, "addr=127.0.0.1:1883") || strings.Contains(out, "\x1b[") {
		t.Errorf("console format wrote %q, want a plain (uncoloured) console line", out)
	}
}

// runWith runs the broker in-process with config file cfg and further
// flags args until the test ends (SIGTERM), and returns its MQTT address, its logs and the channel
// that delivers it signals.
func runWith(t *testing.T, cfg string, args ...string) (string, *testutil.SyncBuffer, chan<- os.Signal) {
	t.Helper()
	var stdout bytes.Buffer
	logs := new(testutil.SyncBuffer)
	signals := make(chan os.Signal, 1)
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		run(append([]string{"-c", cfg}, args...), &stdout, logs, signals)
	}()
	t.Cleanup(func() {
		select {
		case signals <- syscall.SIGTERM:
		default:
		}
		<-exited
	})
	return listenAddr(t, logs, exited), logs, signals
}

// listenAddr waits for run's "listening" log line and returns its addr.
func listenAddr(t *testing.T, logs *testutil.SyncBuffer, exited <-chan struct{}) string {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		sc := bufio.NewScanner(strings.NewReader(logs.String()))
		for sc.Scan() {
			var line struct{ Message, Addr string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Message == "listening" && line.Addr != "" {
				return line.Addr
			}
		}
		select {
		case <-exited:
			t.Fatalf("run exited before listening; logs:\n%s", logs.String())
		case <-deadline:
			t.Fatalf("no \"listening\" log line after 10s; logs:\n%s", logs.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestRunServesAndShutsDown starts the real broker on a free port, checks
// that it answers an MQTT 3.1.1 CONNECT, and stops it with SIGTERM.
func TestRunServesAndShutsDown(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	var stdout bytes.Buffer
	var logs testutil.SyncBuffer
	signals := make(chan os.Signal, 1)
	exited := make(chan struct{})
	var code int // written before exited is closed
	go func() {
		defer close(exited)
		code = run([]string{"--listen", "127.0.0.1:0", "--data-dir", dataDir, "--admin-listen", "127.0.0.1:0", "--log-level", "debug"}, &stdout, &logs, signals)
	}()
	t.Cleanup(func() {
		// Stop the broker if the test failed before its SIGTERM.
		select {
		case signals <- syscall.SIGTERM:
		default:
		}
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			t.Error("run did not return within 15s of SIGTERM")
		}
	})

	addr := listenAddr(t, &logs, exited)
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer conn.Close()
	connect := []byte{
		0x10, 0x0d, // CONNECT, remaining length 13
		0x00, 0x04, 'M', 'Q', 'T', 'T', // protocol name
		0x04,       // protocol level 4: MQTT 3.1.1
		0x02,       // connect flags: clean session
		0x00, 0x3c, // keep alive 60 s
		0x00, 0x01, 't', // client identifier "t"
	}
	if _, err := conn.Write(connect); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	connack := make([]byte, 4)
	if _, err := io.ReadFull(conn, connack); err != nil {
		t.Fatalf("reading CONNACK: %v", err)
	}
	want := []byte{
		0x20, 0x02, // CONNACK, remaining length 2
		0x00, // session present 0
		0x00, // return code 0: accepted
	}
	if !bytes.Equal(connack, want) {
		t.Errorf("CONNACK = % x, want % x", connack, want)
	}

	signals <- syscall.SIGTERM
	select {
	case <-exited:
		if code != 0 {
			t.Errorf("run exited %d after SIGTERM, want 0; logs:\n%s", code, logs.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("run did not return within 15s of SIGTERM; logs:\n%s", logs.String())
	}
	for _, msg := range []string{`"shutting down"`, `"stopped"`, `"persistent state loaded"`, `"admin API listening"`} {
		if !strings.Contains(logs.String(), msg) {
			t.Errorf("logs lack %s:\n%s", msg, logs.String())
		}
	}
	// The default configuration keeps its state on disk.
	if entries, err := os.ReadDir(dataDir); err != nil || len(entries) == 0 {
		t.Errorf("data directory %s: %d entries, %v; want the store's files", dataDir, len(entries), err)
	}
}

// TestSIGHUPReload: SIGHUP applies the file's new log level and limits
// without dropping a connection; a broken file is refused with a log line
// naming file, line and key, and the running configuration stays.
func TestSIGHUPReload(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "shoal.yaml")
	write := func(body string) {
		t.Helper()
		if err := os.WriteFile(cfg, []byte("listen: 127.0.0.1:0\npersistence: false\nadmin_listen: \"\"\nallow_anonymous: true\nlog_format: json\n"+body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("log_level: info\nmax_keepalive: 0\n")
	addr, logs, signals := runWith(t, cfg)
	// A client connected before the reload, with a 100 s keep-alive.
	old, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	connect := func(c net.Conn, id string) []byte {
		t.Helper()
		p := codec.Connect{Version: codec.V5, ClientID: []byte(id), CleanStart: true, KeepAlive: 100}
		if _, err := c.Write(p.Append(nil)); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 256)
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("CONNACK: %v", err)
		}
		return buf[:n]
	}
	if ack := connect(old, "before"); bytes.Contains(ack, []byte{0x13, 0x00, 0x1e}) {
		t.Fatal("Server Keep Alive 30 before the reload")
	}

	waitLog := func(what string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for !strings.Contains(logs.String(), what) {
			if time.Now().After(deadline) {
				t.Fatalf("no %s in the logs:\n%s", what, logs.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	write("log_level: debug\nmax_keepalive: 30\n")
	signals <- syscall.SIGHUP
	waitLog(`"configuration reloaded"`)

	// The new cap applies to a new connection (Server Keep Alive 30 in its
	// CONNACK: property 0x13) and the new level logs at debug.
	fresh, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	if ack := connect(fresh, "after"); !bytes.Contains(ack, []byte{0x13, 0x00, 0x1e}) {
		t.Errorf("CONNACK after the reload % x lacks Server Keep Alive 30", ack)
	}
	waitLog(`"connecting"`) // a debug line

	// A broken file: refused, named, and nothing changes.
	write("log_level: info\nmax_inflight: 0\n")
	signals <- syscall.SIGHUP
	waitLog(`configuration reload refused`)
	if !strings.Contains(logs.String(), cfg+":7:15: max_inflight: 0 is outside 1..65535") {
		t.Errorf("the refusal does not name file, line and key:\n%s", logs.String())
	}

	// The connection from before the reloads is still served.
	if _, err := old.Write([]byte{0xC0, 0x00}); err != nil { // PINGREQ
		t.Fatal(err)
	}
	_ = old.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp := make([]byte, 2)
	if _, err := io.ReadFull(old, resp); err != nil || resp[0] != 0xD0 {
		t.Fatalf("PINGRESP on the connection from before the reloads: % x, %v", resp, err)
	}
}
