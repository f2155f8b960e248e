package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/shoalmq/shoal/internal/testutil"
)

// adminAddr waits for run's "admin API listening" line and returns its
// address.
func adminAddr(t *testing.T, logs interface{ String() string }) string {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(logs.String()))
	for sc.Scan() {
		var line struct{ Message, Addr string }
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Message == "admin API listening" {
			return line.Addr
		}
	}
	t.Fatalf("no \"admin API listening\" line:\n%s", logs.String())
	return ""
}

// TestHealthcheck: `shoal healthcheck` exits 0 while the admin listener
// answers /healthz, found by --url or through the configuration file, and
// 1 when nothing answers or the answer is not 200.
func TestHealthcheck(t *testing.T) {
	dir := t.TempDir()
	port := strconv.Itoa(testutil.FreePort(t))
	cfg := filepath.Join(dir, "shoal.yaml")
	body := "listen: 127.0.0.1:0\npersistence: false\nadmin_listen: 127.0.0.1:" + port + "\nlog_format: json\n"
	if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	_, logs, _ := runWith(t, cfg)
	admin := adminAddr(t, logs)

	hc := func(args ...string) (int, string) {
		var stdout, stderr bytes.Buffer
		code := runHealthcheck(args, &stdout, &stderr)
		return code, stdout.String() + stderr.String()
	}
	if code, out := hc("--url", "http://"+admin+"/healthz"); code != 0 || !strings.HasPrefix(out, "ok: ") {
		t.Errorf("--url: exit %d, %q", code, out)
	}
	if code, out := hc("-c", cfg); code != 0 || !strings.Contains(out, "ok: http://127.0.0.1:"+port+"/healthz") {
		t.Errorf("-c: exit %d, %q; want admin_listen asked", code, out)
	}
	if code, out := hc("--url", "http://"+admin+"/nothing-here"); code != 1 || !strings.Contains(out, "404") {
		t.Errorf("a 404: exit %d, %q; want 1 naming the status", code, out)
	}
	free := strconv.Itoa(testutil.FreePort(t))
	if code, out := hc("--url", "http://127.0.0.1:"+free+"/healthz", "--timeout", "2s"); code != 1 || !strings.Contains(out, "refused") {
		t.Errorf("nothing listening: exit %d, %q", code, out)
	}
	if code, _ := hc("--url", "x", "-c", cfg); code != 2 {
		t.Errorf("both -c and --url: exit %d, want 2", code)
	}
	if code, _ := hc("--bogus"); code != 2 {
		t.Errorf("a bad flag: exit %d, want 2", code)
	}
}

func TestHealthURL(t *testing.T) {
	for _, tt := range []struct{ listen, want, err string }{
		{listen: "127.0.0.1:8083", want: "http://127.0.0.1:8083/healthz"},
		{listen: "0.0.0.0:8083", want: "http://127.0.0.1:8083/healthz"},
		{listen: ":8083", want: "http://127.0.0.1:8083/healthz"},
		{listen: "[::]:8083", want: "http://[::1]:8083/healthz"},
		{listen: "[::1]:9000", want: "http://[::1]:9000/healthz"},
		{listen: "admin.local:8083", want: "http://admin.local:8083/healthz"},
		{listen: "", err: "admin_listen is off"},
		{listen: "127.0.0.1:0", err: "port 0"},
	} {
		got, err := healthURL(tt.listen)
		if got != tt.want || (err == nil) != (tt.err == "") || (err != nil && !strings.Contains(err.Error(), tt.err)) {
			t.Errorf("healthURL(%q) = %q, %v; want %q, %q", tt.listen, got, err, tt.want, tt.err)
		}
	}
}
