package config

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/shoalmq/shoal/auth"
	"github.com/shoalmq/shoal/broker"
	"github.com/shoalmq/shoal/internal/testutil"
)

var update = flag.Bool("update", false, "rewrite README.md's settings table from the settings list")

// TestExampleIsDefaults: config.example.yaml, which README tells users to
// copy and trim, holds every key at the value the code uses when the key
// is left out. (It said allow_anonymous: true while a file leaving the key
// out refused anonymous clients.)
func TestExampleIsDefaults(t *testing.T) {
	example, err := os.ReadFile("../config.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ex, err := Parse(example, "config.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	def, err := Parse(nil, "empty.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range settings() {
		if got, want := s.value(&ex), s.value(&def); got != want {
			t.Errorf("config.example.yaml: %s: %s, but the built-in default is %s", s.key, got, want)
		}
	}
}

// TestSettingFields: each setting's field is the one its value lands in
// (the value read back there changes when the key alone is set), so what
// README shows and what a reload compares is the setting's own.
func TestSettingFields(t *testing.T) {
	base, repl := reloadBase(t)
	def := parseReplacing(t, base, "", "")
	for _, s := range settings() {
		f := parseReplacing(t, base, s.key, repl.Replace(reloadSamples[s.key]))
		if s.value(&f) == s.value(&def) {
			t.Errorf("%s: field %s reads %s both with the key set to %s and without", s.key, s.field, s.value(&def), reloadSamples[s.key])
		}
	}
}

// reloadSamples are values other than the defaults, each valid alone on
// top of the base configuration of TestReloadMatchesBroker.
var reloadSamples = map[string]string{
	"listen": "127.0.0.1:1", "loops": "3", "workers": "3", "worker_queue": "100", "coalesce": "5ms", "tcp_nodelay": "false", "max_packet_size": "64KiB",
	"connect_timeout": "1m", "max_keepalive": "60", "max_inflight": "20", "max_queued": "7",
	"max_queued_bytes": "1MiB", "queue_policy": "drop-newest", "slow_consumer": "drop", "retry_interval": "15s",
	"max_session_expiry": "24h", "receive_maximum": "100", "topic_alias_maximum": "10",
	"outbound_topic_aliases": "5", "shared_strategy": "hash-topic", "max_qos": "1", "retain_available": "false",
	"response_information": "replies/", "persistence": "false", "data_dir": "elsewhere", "durability": "relaxed",
	"import_mosquitto_db": "/var/lib/mosquitto/mosquitto.db",
	"on_damage":           "refuse", "sys_interval": "30s", "admin_listen": "127.0.0.1:9", "admin_token": "tok",
	"tls_listen": "127.0.0.1:1", "ws_listen": "127.0.0.1:0", "wss_listen": "127.0.0.1:0", "ws_path": "/ws",
	"tls_cert_file": "CERT2", "tls_key_file": "KEY2", "tls_client_ca_file": "CA",
	"tls_client_certs": "optional\ntls_client_ca_file: CA", // with the CA it needs
	"tls_identity":     "cn\ntls_client_certs: optional\ntls_client_ca_file: CA", "scram_users": "{alice: wonderland}",
	"allow_anonymous": "false", "password_file": "PWFILE", "http_auth_url": "http://127.0.0.1:9/auth",
	"http_auth_timeout": "2s", "http_auth_cache": "30s", "acl_file": "ACLFILE", "auth_workers": "3",
	"auth_queue": "50", "max_connections": "500", "connect_rate": "2.5\nconnect_burst: 10", "connect_burst": "10",
	"publish_rate": "100\npublish_burst: 200", "publish_burst": "200", "max_subscriptions": "40", "max_topic_length": "200",
	"max_topic_levels": "9", "max_client_id_length": "64", "log_level": "debug", "log_format": "json", "user": "nobody", "allow_root": "true",
	"max_message_size": "1KiB", "tls_client_ca_dir": "CADIR", "tls_min_version": `"1.3"`, "acl_format": "mosquitto",
	"assign_client_ids": "false", "assigned_id_prefix": "auto-", "log_dest": "[stdout]", "log_connections": "false",
	"pid_file": "/run/shoal.pid",
	// A bridge to a port where nothing listens: the broker starts, and a
	// reload names it for a restart.
	"bridges": `[{name: b, addresses: ["127.0.0.1:1"], topics: [{pattern: a/#}], remote_client_id: b-1}]`,
	// A cluster of one: parsed and reloaded, never started.
	"cluster": `{name: c, node: a, listen: "127.0.0.1:1", replicas: 1}`,
}

// TestReloadMatchesBroker holds the reload column of the settings list to
// what broker.Reload does: for each key whose value lands in the broker's
// Config, a running broker given a new value either applies it (no
// restart asked) or names it for a restart, as the list says. (README said
// receive_maximum reloads; it never did.) Keys outside the broker's Config
// (admin_*, log_*) are the program's, tested in cmd/broker.
func TestReloadMatchesBroker(t *testing.T) {
	base, repl := reloadBase(t)
	parse := func(extra string) File {
		t.Helper()
		f, err := Parse([]byte(base+extra), "reload.yaml")
		if err != nil {
			t.Fatalf("%q: %v", extra, err)
		}
		return f
	}
	run := parse("")
	b, err := broker.New(run.Broker)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = b.Close(ctx)
	}()
	for _, s := range settings() {
		sample, ok := reloadSamples[s.key]
		if !ok {
			t.Errorf("%s: no sample value in reloadSamples", s.key)
			continue
		}
		next := parseReplacing(t, base, s.key, repl.Replace(sample))
		if reflect.DeepEqual(withoutLogger(next.Broker), withoutLogger(run.Broker)) {
			continue // the program's setting, not the broker's
		}
		restart, err := b.Reload(next.Broker)
		if err != nil {
			t.Errorf("%s: Reload: %v", s.key, err)
			continue
		}
		if s.reload && len(restart) > 0 {
			t.Errorf("%s is marked as reloaded on SIGHUP, but the broker asks a restart for %v", s.key, restart)
		}
		if !s.reload && len(restart) == 0 {
			t.Errorf("%s is marked as needing a restart, but the broker applied it on reload", s.key)
		}
		if _, err := b.Reload(run.Broker); err != nil { // back to the running values
			t.Fatal(err)
		}
	}
}

// reloadBase is the configuration TestReloadMatchesBroker runs a broker
// on — a TLS listener with a certificate, persistence in a directory of
// the test's — and the replacer that turns the file names in
// reloadSamples into files it made.
func reloadBase(t *testing.T) (string, *strings.Replacer) {
	t.Helper()
	dir := t.TempDir()
	pki := testutil.NewPKI(t, dir, "reload")
	cert := pki.Server("server")
	// The same pair under other names: a certificate reload that loads.
	cert2, key2 := filepath.Join(dir, "copy.pem"), filepath.Join(dir, "copy-key.pem")
	testutil.CopyFile(t, cert2, cert.CertFile)
	testutil.CopyFile(t, key2, cert.KeyFile)
	pw, acl := filepath.Join(dir, "users.pw"), filepath.Join(dir, "topics.acl")
	if err := auth.SetPassword(pw, "bob", "builder", 4); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(acl, []byte("user bob\nallow readwrite bob/#\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := fmt.Sprintf("listen: 127.0.0.1:0\nadmin_listen: \"\"\npersistence: true\ndata_dir: %s\ntls_listen: 127.0.0.1:0\ntls_cert_file: %s\ntls_key_file: %s\n",
		filepath.Join(dir, "data"), cert.CertFile, cert.KeyFile)
	caDir := filepath.Join(dir, "ca.d")
	if err := os.Mkdir(caDir, 0o700); err != nil {
		t.Fatal(err)
	}
	testutil.CopyFile(t, filepath.Join(caDir, "ca.pem"), pki.CAFile)
	return base, strings.NewReplacer("CERT2", cert2, "KEY2", key2, "CADIR", caDir, "CA", pki.CAFile, "PWFILE", pw, "ACLFILE", acl)
}

// parseReplacing parses base with key set to value, replacing base's own
// line for key if it has one; key "" parses base as it is.
func parseReplacing(t *testing.T, base, key, value string) File {
	t.Helper()
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(base), "\n") {
		if key == "" || !strings.HasPrefix(l, key+":") {
			lines = append(lines, l)
		}
	}
	if key != "" {
		lines = append(lines, key+": "+value)
	}
	f, err := Parse([]byte(strings.Join(lines, "\n")+"\n"), "reload.yaml")
	if err != nil {
		t.Fatalf("%s: %s: %v", key, value, err)
	}
	return f
}

// TestREADMESettings keeps README's table of settings equal to the
// settings list: key, default, whether SIGHUP applies it, and its line.
// Run go test ./config -update to rewrite the table after changing the
// list.
func TestREADMESettings(t *testing.T) {
	const begin, end = "<!-- settings: made by go test ./config -update -->\n", "<!-- end of settings -->\n"
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	i, j := strings.Index(string(readme), begin), strings.Index(string(readme), end)
	if i < 0 || j < i {
		t.Fatalf("README.md has no settings table between %q and %q", begin, end)
	}
	want := settingsTable()
	got := string(readme[i+len(begin) : j])
	if got == want {
		return
	}
	if *update {
		out := string(readme[:i+len(begin)]) + want + string(readme[j:])
		if err := os.WriteFile("../README.md", []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("README.md's settings table differs from the settings list (go test ./config -update rewrites it):\n%s", firstDiff(got, want))
}

// settingsTable renders the settings list as README's Markdown table.
func settingsTable() string {
	def := defaults()
	var b strings.Builder
	b.WriteString("| Key | Default | SIGHUP | What |\n|---|---|---|---|\n")
	for _, s := range settings() {
		reload := "restart"
		if s.reload {
			reload = "reloads"
		}
		fmt.Fprintf(&b, "| `%s` | `%s` | %s | %s |\n", s.key, s.value(&def), reload, strings.ReplaceAll(s.doc, "|", "\\|"))
	}
	return b.String()
}

// firstDiff shows the first line where got and want differ.
func firstDiff(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for k := 0; k < max(len(g), len(w)); k++ {
		var gl, wl string
		if k < len(g) {
			gl = g[k]
		}
		if k < len(w) {
			wl = w[k]
		}
		if gl != wl {
			return fmt.Sprintf("line %d:\n README: %s\n   list: %s", k+1, gl, wl)
		}
	}
	return ""
}

// TestOverrides: flags replace the file's values before anything is
// validated, and an error about a flag's value names the flag.
func TestOverrides(t *testing.T) {
	// A file with a public admin listener and no token is refused; the
	// flag moving it to loopback makes it valid (it was refused for the
	// file's value before the flag applied).
	file := []byte("admin_listen: 0.0.0.0:8083\n")
	f, err := ParseWith(file, "s.yaml", []Override{{Flag: "--admin-listen", Key: "admin_listen", Value: "127.0.0.1:8083"}})
	if err != nil || f.AdminListen != "127.0.0.1:8083" {
		t.Errorf("--admin-listen over a public admin_listen: %+v, %v", f.AdminListen, err)
	}
	for _, tc := range []struct {
		o    Override
		want string
	}{
		{Override{Flag: "--listen", Key: "listen", Value: "127.0.0.1:99999"}, `--listen: "127.0.0.1:99999": port "99999" is not a number in 0..65535`},
		{Override{Flag: "--listen", Key: "listen", Value: "nowhere"}, `--listen: "nowhere" is not host:port`},
		{Override{Flag: "--admin-listen", Key: "admin_listen", Value: "0.0.0.0:8083"}, "--admin-listen: "},
		{Override{Flag: "--log-level", Key: "log_level", Value: "loud"}, `--log-level: unknown log level "loud"`},
	} {
		_, err := ParseWith(nil, "s.yaml", []Override{tc.o})
		var fe *FlagError
		if !errors.As(err, &fe) || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%s %s: %v, want a *FlagError starting %q", tc.o.Flag, tc.o.Value, err, tc.want)
		}
	}
	// In the file, the same value is the file's error, at its line.
	_, err = Parse([]byte("loops: 1\nlisten: 127.0.0.1:99999\n"), "s.yaml")
	var ce *Error
	if !errors.As(err, &ce) || ce.Line != 2 || ce.Key != "listen" {
		t.Errorf("listen: 127.0.0.1:99999 in the file: %v, want an *Error at line 2, key listen", err)
	}
}
