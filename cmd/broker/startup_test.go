package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shoalmq/shoal/internal/testutil"
)

// writeFile writes a configuration file into the test's directory.
func writeFile(t *testing.T, body string) string {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "shoal.yaml")
	if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// logLines parses JSON log output into one map per line.
func logLines(out string) []map[string]any {
	var lines []map[string]any
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil {
			lines = append(lines, m)
		}
	}
	return lines
}

// TestFlagsOverrideFile: a flag replaces the file's value before the
// configuration is checked. A file with a public admin listener and no
// admin_token is refused on its own, and starts with --admin-listen on
// loopback (it was refused for the file's value before).
func TestFlagsOverrideFile(t *testing.T) {
	cfg := writeFile(t, "listen: 127.0.0.1:0\npersistence: false\nadmin_listen: 0.0.0.0:8083\nlog_format: json\n")
	var stdout, stderr bytes.Buffer
	if code := run([]string{"-c", cfg}, &stdout, &stderr, nil); code != 1 || !strings.Contains(stderr.String(), "admin_token must be set") {
		t.Fatalf("the file alone: exit %d, stderr %q; want 1 and the admin_token error", code, stderr.String())
	}
	runWith(t, cfg, "--admin-listen", "127.0.0.1:0") // fails the test unless it listens
}

// TestPortInUse: a port in use stops the broker with status 1, the error
// naming the key (or the flag that set it) and the address, and nothing is
// reported as listening: every listener is bound before any is.
func TestPortInUse(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	busy := taken.Addr().String()
	for _, tc := range []struct {
		name, file string
		args       []string
		want       string
	}{
		{"listen", "listen: " + busy + "\nadmin_listen: \"\"\n", nil, "listen: " + busy},
		{"--listen", "listen: 127.0.0.1:0\nadmin_listen: \"\"\n", []string{"--listen", busy}, "--listen: " + busy},
		{"admin_listen", "listen: 127.0.0.1:0\nadmin_listen: " + busy + "\n", nil, "admin_listen: " + busy},
		{"--admin-listen", "listen: 127.0.0.1:0\n", []string{"--admin-listen", busy}, "--admin-listen: " + busy},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := writeFile(t, tc.file+"persistence: false\nlog_format: json\n")
			var stdout bytes.Buffer
			var logs testutil.SyncBuffer
			if code := run(append([]string{"-c", cfg}, tc.args...), &stdout, &logs, nil); code != 1 {
				t.Fatalf("exit %d, want 1; logs:\n%s", code, logs.String())
			}
			var named bool
			for _, l := range logLines(logs.String()) {
				if msg, _ := l["message"].(string); strings.Contains(msg, "listening") {
					t.Errorf("reported listening before failing: %v", l)
				}
				if e, _ := l["error"].(string); strings.HasPrefix(e, tc.want) && strings.Contains(e, "address already in use") {
					named = true
				}
			}
			if !named {
				t.Errorf("no error starting %q and saying the address is in use; logs:\n%s", tc.want, logs.String())
			}
		})
	}
}

// TestSIGHUPNamesKeys: a reload logs which keys changed and names, by key,
// those that wait for a restart (admin_listen included); admin_token is
// applied at once, so a leaked token is rotated without a restart.
func TestSIGHUPNamesKeys(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "shoal.yaml")
	write := func(body string) {
		t.Helper()
		if err := os.WriteFile(cfg, []byte("listen: 127.0.0.1:0\npersistence: false\nlog_format: json\n"+body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("admin_listen: 127.0.0.1:0\nadmin_token: old-token\nmax_inflight: 20\n")
	_, logs, signals := runWith(t, cfg)
	var admin string
	for _, l := range logLines(logs.String()) {
		if l["message"] == "admin API listening" {
			admin, _ = l["addr"].(string)
		}
	}
	if admin == "" {
		t.Fatalf("no admin API address in the logs:\n%s", logs.String())
	}
	status := func(token string) int {
		t.Helper()
		req, _ := http.NewRequest("GET", "http://"+admin+"/api/stats", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := status("old-token"); got != http.StatusOK {
		t.Fatalf("the old token before the reload: %d", got)
	}

	write("admin_listen: 127.0.0.1:1\nadmin_token: new-token\nmax_inflight: 30\nreceive_maximum: 10\n")
	signals <- syscall.SIGHUP
	var reloaded map[string]any
	testutil.Eventually(t, 5*time.Second, "the reload's log line", func() bool {
		for _, l := range logLines(logs.String()) {
			if l["message"] == "configuration reloaded" {
				reloaded = l
				return true
			}
		}
		return false
	})
	keys := func(field string) string {
		list, _ := reloaded[field].([]any)
		var out []string
		for _, k := range list {
			out = append(out, k.(string))
		}
		return strings.Join(out, ",")
	}
	if got := keys("changed"); got != "max_inflight,admin_token" {
		t.Errorf("changed: %q, want max_inflight,admin_token", got)
	}
	if got := keys("restart_to_apply"); got != "receive_maximum,admin_listen" {
		t.Errorf("restart_to_apply: %q, want receive_maximum,admin_listen (keys, not Go fields)", got)
	}
	if got := status("old-token"); got != http.StatusUnauthorized {
		t.Errorf("the old token after the reload: %d, want 401", got)
	}
	if got := status("new-token"); got != http.StatusOK {
		t.Errorf("the new token after the reload: %d, want 200", got)
	}
}
