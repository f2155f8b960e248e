package mosqconf

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/shoalmq/shoal/auth"
	"github.com/shoalmq/shoal/broker"
	"github.com/shoalmq/shoal/config"
	"github.com/shoalmq/shoal/transport"
)

// mosquittoExamples is where Debian's mosquitto package puts the example
// files it ships.
const mosquittoExamples = "/usr/share/doc/mosquitto/examples"

// packaged returns the path of a file the mosquitto package installs,
// failing the test with the install hint when it is missing.
func packaged(t *testing.T, path string) string {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("%v: run `make deps` (installs the mosquitto package)", err)
	}
	return path
}

// mosq parses conf as a mosquitto.conf named m.conf in a new directory.
func mosq(t *testing.T, conf string, o Options) (config.File, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "m.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	return Load(path, o)
}

// mustMosq is mosq failing the test on an error.
func mustMosq(t *testing.T, conf string) config.File {
	t.Helper()
	f, err := mosq(t, conf, Options{})
	if err != nil {
		t.Fatalf("%q: %v", conf, err)
	}
	return f
}

// TestMosquittoPackagedExample: the mosquitto.conf the package ships is
// all comments, so it runs as Mosquitto 2 does with no file at all:
// local-only on 127.0.0.1:1883 with anonymous clients, and Mosquitto's
// defaults where they differ from Shoal's.
func TestMosquittoPackagedExample(t *testing.T) {
	f, err := Load(packaged(t, filepath.Join(mosquittoExamples, "mosquitto.conf")), Options{})
	if err != nil {
		t.Fatal(err)
	}
	b := f.Broker
	for _, c := range []struct {
		what      string
		got, want any
	}{
		{"format", f.Format, config.FormatMosquitto},
		{"listen", b.Listen, "127.0.0.1:1883"},
		{"allow_anonymous", b.AllowAnonymous, broker.AnonymousAllow},
		{"persistence", f.Persistence, false},
		{"max_inflight", b.MaxInflight, 20},
		{"max_queued", b.MaxQueued, 1000},
		{"max_queued_bytes (Shoal's, deliberately)", b.MaxQueuedBytes, 64 << 20},
		{"max_packet_size", b.MaxPacketSize, maxPacket},
		{"max_message_size", b.MaxMessageSize, 0},
		{"max_keepalive", b.MaxKeepAlive, uint16(65535)},
		{"sys_interval", b.SysInterval, 10 * time.Second},
		{"queue_policy", b.QueuePolicy, broker.DropNewest},
		{"slow_consumer", b.SlowConsumer, broker.DropSlow},
		{"max_qos", b.MaxQoS, byte(2)},
		{"topic_alias_maximum", b.TopicAliasMaximum, uint16(10)},
		{"assign_client_ids", b.AssignClientIDs, true},
		{"assigned_id_prefix", b.AssignedIDPrefix, "auto-"},
		{"retain_available", b.RetainAvailable, true},
		{"log_connections", b.LogConnections, true},
		{"log_level", f.LogLevel, zerolog.InfoLevel},
		{"log_dest", strings.Join(f.LogDest, ","), "stderr"},
		{"user", f.User, "mosquitto"},
		{"warnings", len(f.Warnings), 0},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.what, c.got, c.want)
		}
	}
}

// TestMosquittoPackagedConf: /etc/mosquitto/mosquitto.conf as Debian
// installs it: a pid file, persistence in /var/lib/mosquitto, a log file
// and the conf.d directory.
func TestMosquittoPackagedConf(t *testing.T) {
	f, err := Load(packaged(t, "/etc/mosquitto/mosquitto.conf"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if f.PIDFile != "/run/mosquitto/mosquitto.pid" || !f.Persistence || f.Broker.DataDir != "/var/lib/mosquitto/mosquitto.shoal" ||
		f.ImportMosquittoDB != "/var/lib/mosquitto/mosquitto.db" ||
		strings.Join(f.LogDest, ",") != "file /var/log/mosquitto/mosquitto.log" {
		t.Errorf("pid_file %q, persistence %v in %q, log_dest %q", f.PIDFile, f.Persistence, f.Broker.DataDir, f.LogDest)
	}
}

// TestMosquittoDirectives: each directive Shoal supports lands in the
// setting it is translated to, as Mosquitto means it.
func TestMosquittoDirectives(t *testing.T) {
	pw := packaged(t, filepath.Join(mosquittoExamples, "pwfile.example"))
	acl := packaged(t, filepath.Join(mosquittoExamples, "aclfile.example"))
	tests := []struct {
		conf  string
		check func(f *config.File) bool
	}{
		{"max_inflight_messages 5", func(f *config.File) bool { return f.Broker.MaxInflight == 5 }},
		{"max_inflight_messages 0", func(f *config.File) bool { return f.Broker.MaxInflight == 65535 }},
		{"max_queued_messages 0", func(f *config.File) bool { return f.Broker.MaxQueued == 1<<31-1 }},
		{"max_queued_messages 7 # a comment", func(f *config.File) bool { return f.Broker.MaxQueued == 7 }},
		{"\t# indented\r\n  max_queued_messages 8\r\n", func(f *config.File) bool { return f.Broker.MaxQueued == 8 }},
		{"max_queued_bytes 0", func(f *config.File) bool { return f.Broker.MaxQueuedBytes == 0 }},
		{"max_queued_bytes 4096", func(f *config.File) bool { return f.Broker.MaxQueuedBytes == 4096 }},
		{"message_size_limit 1000", func(f *config.File) bool { return f.Broker.MaxMessageSize == 1000 }},
		{"max_packet_size 1000", func(f *config.File) bool { return f.Broker.MaxPacketSize == 1000 }},
		{"max_keepalive 60", func(f *config.File) bool { return f.Broker.MaxKeepAlive == 60 }},
		{"sys_interval 0", func(f *config.File) bool { return f.Broker.SysInterval == 0 }},
		{"persistent_client_expiration 2w", func(f *config.File) bool { return f.Broker.MaxSessionExpiry == 14*24*time.Hour }},
		{"persistent_client_expiration 1m", func(f *config.File) bool { return f.Broker.MaxSessionExpiry == 30*24*time.Hour }},
		{"retain_available false", func(f *config.File) bool { return !f.Broker.RetainAvailable }},
		{"connection_messages false", func(f *config.File) bool { return !f.Broker.LogConnections }},
		{"set_tcp_nodelay false", func(f *config.File) bool { return !f.Broker.TCPNoDelay }},
		{"set_tcp_nodelay true", func(f *config.File) bool { return f.Broker.TCPNoDelay }},
		{"retain_available true", func(f *config.File) bool { return f.Broker.TCPNoDelay }}, // Shoal's default when the file is silent
		{"allow_zero_length_clientid false", func(f *config.File) bool { return !f.Broker.AssignClientIDs }},
		{"auto_id_prefix dev-", func(f *config.File) bool { return f.Broker.AssignedIDPrefix == "dev-" }},
		{"persistence true", func(f *config.File) bool {
			return f.Persistence && f.Broker.DataDir == "mosquitto.shoal" && f.ImportMosquittoDB == "mosquitto.db"
		}},
		{"persistence_location /var/lib/x/\npersistence_file broker.db\npersistence true", func(f *config.File) bool {
			return f.Persistence && f.Broker.DataDir == "/var/lib/x/broker.shoal" && f.ImportMosquittoDB == "/var/lib/x/broker.db"
		}},
		{"persistence_location /var/lib/x", func(f *config.File) bool {
			return !f.Persistence && f.Broker.DataDir == "" && f.ImportMosquittoDB == ""
		}},
		{"pid_file /run/m.pid", func(f *config.File) bool { return f.PIDFile == "/run/m.pid" }},
		{"log_dest stdout\nlog_dest file /var/log/my log.txt", func(f *config.File) bool {
			return strings.Join(f.LogDest, ",") == "stdout,file /var/log/my log.txt"
		}},
		{"log_dest none", func(f *config.File) bool { return strings.Join(f.LogDest, ",") == "none" }},
		{"log_type error", func(f *config.File) bool { return f.LogLevel == zerolog.ErrorLevel }},
		{"log_type warning\nlog_type error", func(f *config.File) bool { return f.LogLevel == zerolog.WarnLevel }},
		{"log_type all", func(f *config.File) bool { return f.LogLevel == zerolog.DebugLevel }},
		{"log_type none", func(f *config.File) bool { return f.LogLevel == zerolog.Disabled }},
		{"log_timestamp true", func(f *config.File) bool { return true }},
		{"user nobody", func(f *config.File) bool { return f.User == "nobody" }},
		{"user root", func(f *config.File) bool { return f.User == "" && f.AllowRoot }},
		{"listener 1883", func(f *config.File) bool {
			return f.Broker.Listen == ":1883" && f.Broker.AllowAnonymous == broker.AnonymousDeny
		}},
		{"listener 1883\nallow_anonymous true", func(f *config.File) bool { return f.Broker.AllowAnonymous == broker.AnonymousAllow }},
		{"allow_anonymous false", func(f *config.File) bool {
			return f.Broker.Listen == "127.0.0.1:1883" && f.Broker.AllowAnonymous == broker.AnonymousDeny
		}},
		{"listener 1883 127.0.0.1\nsocket_domain ipv4", func(f *config.File) bool { return f.Broker.Listen == "127.0.0.1:1883" }},
		{"listener 1883\nsocket_domain ipv4", func(f *config.File) bool { return f.Broker.Listen == "0.0.0.0:1883" }},
		{"port 1884", func(f *config.File) bool {
			return f.Broker.Listen == ":1884" && f.Broker.AllowAnonymous == broker.AnonymousDeny
		}},
		{"bind_address 127.0.0.1", func(f *config.File) bool { return f.Broker.Listen == "127.0.0.1:1883" }},
		{"listener 1883\nmax_qos 1", func(f *config.File) bool { return f.Broker.MaxQoS == 1 }},
		{"maximum_qos 1", func(f *config.File) bool { return f.Broker.MaxQoS == 1 }},
		{"listener 1883\nmax_topic_alias 5", func(f *config.File) bool { return f.Broker.TopicAliasMaximum == 5 }},
		{"listener 1883\nmax_connections 50", func(f *config.File) bool { return f.Broker.MaxConnections == 50 }},
		{"listener 1883\nmax_connections -1", func(f *config.File) bool { return f.Broker.MaxConnections == 0 }},
		{"listener 9001\nprotocol websockets", func(f *config.File) bool {
			return f.Broker.Transports.WSListen == ":9001" && f.Broker.Transports.WSPath == "*" &&
				f.Broker.Listen == "127.0.0.1:0" && len(f.Warnings) == 1
		}},
		{"password_file " + pw + "\nacl_file " + acl, func(f *config.File) bool {
			a, ok := f.Broker.Authorizer.(*auth.ACL)
			return f.PasswordFile == pw && f.ACLFile == acl && f.ACLFormat == auth.ACLMosquitto && ok && a.Format() == auth.ACLMosquitto
		}},
		// Nothing to do: Shoal does what they ask for anyway.
		{"autosave_interval 60\nautosave_on_changes false\nallow_duplicate_messages true\n" +
			"check_retain_source false\nqueue_qos0_messages false\nupgrade_outgoing_qos false\nmax_inflight_bytes 0\n" +
			"websockets_log_level 0\nwebsockets_headers_size 4096", func(f *config.File) bool { return len(f.Warnings) == 0 }},
		{"retry_interval 20", func(f *config.File) bool { return f.Broker.RetryInterval == 0 && len(f.Warnings) == 1 }},
	}
	for _, tc := range tests {
		f := mustMosq(t, tc.conf)
		if !tc.check(&f) {
			t.Errorf("%q: not translated as it should be: %+v, warnings %q", tc.conf, f.Broker, f.Warnings)
		}
	}
}

// TestMosquittoListeners: one plain TCP, one TLS, one WebSocket and one
// secure WebSocket listener map onto Shoal's four; TLS settings are
// shared, and what cannot be shared is refused.
func TestMosquittoListeners(t *testing.T) {
	f := mustMosq(t, `# a broker on the network
listener 1883
listener 8883 127.0.0.1
certfile /etc/m/server.pem
keyfile /etc/m/server.key
cafile /etc/m/ca.pem
capath /etc/m/ca.d
require_certificate true
use_identity_as_username true
tls_version tlsv1.3
listener 9001
protocol websockets
`)
	tr := f.Broker.Transports
	if f.Broker.Listen != ":1883" || tr.TLSListen != "127.0.0.1:8883" || tr.WSListen != ":9001" || tr.WSSListen != "" ||
		tr.CertFile != "/etc/m/server.pem" || tr.KeyFile != "/etc/m/server.key" || tr.ClientCAFile != "/etc/m/ca.pem" ||
		tr.ClientCADir != "/etc/m/ca.d" || tr.ClientCerts != transport.RequireClientCerts || tr.Identity != transport.IdentityCN ||
		tr.MinVersion != transport.TLS13 || f.Broker.AllowAnonymous != broker.AnonymousDeny {
		t.Errorf("translated to %+v, %+v", f.Broker, tr)
	}
	f = mustMosq(t, "listener 8883\ncertfile c.pem\nkeyfile k.pem\ncafile ca.pem\nrequire_certificate true\nuse_subject_as_username true\n")
	if tr := f.Broker.Transports; tr.Identity != transport.IdentitySubject || tr.TLSListen != ":8883" {
		t.Errorf("subject identity: %+v", tr)
	}
	if !strings.Contains(strings.Join(f.Warnings, "\n"), "no plain MQTT listener") || f.Broker.Listen != "127.0.0.1:0" {
		t.Errorf("listen %q, warnings %q: want the plain listener's place said", f.Broker.Listen, f.Warnings)
	}
	// A TLS and a secure WebSocket listener share a certificate.
	f = mustMosq(t, "listener 8883\ncertfile c.pem\nkeyfile k.pem\nlistener 9443\nprotocol websockets\ncertfile c.pem\nkeyfile k.pem\n")
	if tr := f.Broker.Transports; tr.WSSListen != ":9443" || tr.TLSListen != ":8883" || tr.CertFile != "c.pem" {
		t.Errorf("tls and wss: %+v", tr)
	}
	for _, tc := range []struct{ conf, msg string }{
		{"listener 1\nlistener 2\n", "one plain MQTT listener"},
		{"listener 8883\ncertfile c.pem\nkeyfile k.pem\nlistener 9443\nprotocol websockets\ncertfile d.pem\nkeyfile k.pem\n", "share one certificate"},
		{"listener 8883\ncertfile c\nkeyfile k\ncafile ca\nrequire_certificate true\nlistener 9443\nprotocol websockets\ncertfile c\nkeyfile k\n", "would hold for the listener at"},
		{"listener 8883\ncertfile c\nkeyfile k\ntls_version tlsv1.1\n", "RFC 8996"},
		{"listener 1\nmax_qos 1\nlistener 2\nprotocol websockets\n", "max_qos: Shoal's holds for every listener"},
		{"listener 1\nmax_connections 10\nlistener 2\nprotocol websockets\n", "whole broker"},
		{"listener 1\nsocket_domain ipv6\n", "IPv6-only"},
		{"listener 0 /run/m.sock\n", "Unix sockets"},
		{"certfile c\nkeyfile k\n", "local-only mode"},
	} {
		if _, err := mosq(t, tc.conf, Options{}); err == nil || !strings.Contains(err.Error(), "not supported: ") || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%q: %v, want refused for %q", tc.conf, err, tc.msg)
		}
	}
}

// TestMosquittoRefused: a directive Shoal has no equivalent for is
// refused with its line and the reason — every one at once — or, with
// WarnUnsupported, left out with a warning each.
func TestMosquittoRefused(t *testing.T) {
	conf := `listener 1883
mount_point site1/
listener 1884
auth_plugin /usr/lib/mosquitto_dynamic_security.so
plugin_opt_config_file /etc/dynsec.json
log_dest topic
connection bridge-01
address 10.0.0.1:1883
topic # both 0
queue_qos0_messages true
start_type lazy
`
	_, err := mosq(t, conf, Options{})
	want := []struct {
		line      int
		directive string
		reason    string
	}{
		{2, "mount_point", "topic prefix"},
		{3, "listener", "one plain MQTT listener, and the listener at"},
		{4, "auth_plugin", "Mosquitto plugins"},
		{5, "plugin_opt_config_file", "Mosquitto plugins"},
		{6, "log_dest", "$SYS/broker/log"},
		{10, "queue_qos0_messages", "QoS 1 and 2"},
		{11, "start_type", "always connects again"}, // still the bridge's: other directives do not end it
	}
	var errs []*config.Error
	for _, e := range unjoin(err) {
		var ce *config.Error
		if !errors.As(e, &ce) {
			t.Fatalf("%v: not an *Error", e)
		}
		errs = append(errs, ce)
	}
	got := map[int]*config.Error{}
	for _, e := range errs {
		got[e.Line] = e
	}
	if len(errs) != len(want) {
		t.Errorf("%d errors, want %d:\n%v", len(errs), len(want), err)
	}
	for _, w := range want {
		e := got[w.line]
		if e == nil || e.Key != w.directive || !strings.Contains(e.Error(), "not supported: ") || !strings.Contains(e.Error(), w.reason) {
			t.Errorf("line %d: %v, want %s refused for %q", w.line, e, w.directive, w.reason)
		}
	}
	f, err := mosq(t, conf, Options{Unsupported: WarnUnsupported})
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Warnings) != len(want) || f.Broker.Listen != ":1883" {
		t.Errorf("warnings %q, listen %q", f.Warnings, f.Broker.Listen)
	}
	for _, w := range f.Warnings {
		if !strings.Contains(w, "m.conf:") || !strings.Contains(w, "not supported, left out: ") {
			t.Errorf("warning %q does not name its line and say it is left out", w)
		}
	}
}

// unjoin returns the errors errors.Join joined, or err alone.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	if err == nil {
		return nil
	}
	return []error{err}
}

// TestMosquittoErrors: what Mosquitto itself would refuse, and values
// Shoal's checks refuse, are errors at the line, naming the directive.
func TestMosquittoErrors(t *testing.T) {
	tests := []struct {
		conf string
		line int
		key  string
		msg  string
	}{
		{conf: "# x\nlistner 1883", line: 2, key: "listner", msg: `unknown directive (Mosquitto refuses it too) (did you mean "listener"?)`},
		{conf: "max_inflight_messages many", line: 1, key: "max_inflight_messages", msg: `"many" is not an integer`},
		{conf: "max_inflight_messages 10 20", line: 1, key: "max_inflight_messages", msg: `unexpected "20"`},
		{conf: "allow_anonymous yes", line: 1, key: "allow_anonymous", msg: `"yes" is not true or false`},
		{conf: "password_file a\npassword_file b", line: 2, key: "password_file", msg: "set again"},
		{conf: "\n\nmax_packet_size 30", line: 3, key: "max_packet_size", msg: "30 is outside 64..268435460"},
		{conf: "max_keepalive 5", line: 1, key: "max_keepalive", msg: "5 is outside 10..65535"},
		{conf: "message_size_limit 300000000", line: 1, key: "message_size_limit", msg: "outside 0..268435455"},
		{conf: "persistent_client_expiration 10s", line: 1, key: "persistent_client_expiration", msg: "h, d, w, m or y"},
		{conf: "mount_point x/", line: 1, key: "mount_point", msg: "needs a listener line"},
		{conf: "address 10.0.0.1", line: 1, key: "address", msg: "belongs to a bridge"},
		{conf: "password_file p\nper_listener_settings true", line: 2, key: "per_listener_settings", msg: "must come before"},
		{conf: "listener 8883\ncertfile c.pem", line: 2, key: "certfile", msg: "needs keyfile too"},
		{conf: "listener 8883\ncertfile c\nkeyfile k\nrequire_certificate true", line: 4, key: "require_certificate", msg: "needs cafile or capath"},
		{conf: "listener 1883\nprotocol mqtts", line: 2, key: "protocol", msg: "neither mqtt nor websockets"},
		{conf: "log_dest carrier-pigeon", line: 1, key: "log_dest", msg: "not a destination"},
		{conf: "password_file /nonexistent/pw", line: 1, key: "password_file", msg: "no such file"},
		{conf: "listener 70000", line: 1, key: "listener", msg: "is not a port"},
	}
	for _, tc := range tests {
		_, err := mosq(t, tc.conf, Options{})
		var e *config.Error
		if !errors.As(err, &e) || e.Line != tc.line || e.Key != tc.key || !strings.Contains(e.Error(), tc.msg) ||
			!strings.HasSuffix(e.File, "m.conf") {
			t.Errorf("%q: %v, want m.conf line %d, %s: ...%s...", tc.conf, err, tc.line, tc.key, tc.msg)
		}
	}
}

// TestMosquittoPerListener: per_listener_settings is taken when every
// listener has the same authentication settings, refused when they
// differ.
func TestMosquittoPerListener(t *testing.T) {
	f := mustMosq(t, "per_listener_settings true\nlistener 1883\nallow_anonymous true\nlistener 1884 127.0.0.1\nprotocol websockets\nallow_anonymous true\n")
	if f.Broker.AllowAnonymous != broker.AnonymousAllow {
		t.Errorf("allow_anonymous %v", f.Broker.AllowAnonymous)
	}
	_, err := mosq(t, "per_listener_settings true\nlistener 1883\nallow_anonymous true\nlistener 1884\nprotocol websockets\n", Options{})
	var e *config.Error
	if !errors.As(err, &e) || e.Line != 1 || !strings.Contains(e.Error(), "differ in allow_anonymous") {
		t.Errorf("different settings: %v", err)
	}
}

// TestMosquittoIncludeDir: include_dir reads the directory's .conf files
// in Mosquitto's order (each upper-case letter before its lower case), and
// an error in one names that file.
func TestMosquittoIncludeDir(t *testing.T) {
	dir := t.TempDir()
	inc := filepath.Join(dir, "conf.d")
	if err := os.Mkdir(inc, 0o700); err != nil {
		t.Fatal(err)
	}
	// Each file sets max_inflight_messages: the last one read wins.
	for name, n := range map[string]string{"b.conf": "4", "A.conf": "1", "a.conf": "2", "B.conf": "3", "z.txt": "9"} {
		if err := os.WriteFile(filepath.Join(inc, name), []byte("max_inflight_messages "+n+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	main := filepath.Join(dir, "mosquitto.conf")
	if err := os.WriteFile(main, []byte("max_inflight_messages 9\ninclude_dir "+inc+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := Load(main, Options{})
	if err != nil || f.Broker.MaxInflight != 4 {
		t.Fatalf("max_inflight %d, %v; want 4 (b.conf read last)", f.Broker.MaxInflight, err)
	}
	if got := []string{"b", "A", "a", "B", "AB", "Ab", "aB"}; true {
		want := "A AB Ab a aB B b"
		sorted := append([]string(nil), got...)
		sortStrings(sorted)
		if strings.Join(sorted, " ") != want {
			t.Errorf("order %v, want %s", sorted, want)
		}
	}
	bad := filepath.Join(inc, "c.conf")
	if err := os.WriteFile(bad, []byte("\nmax_qos 7\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Load(main, Options{})
	var e *config.Error
	if !errors.As(err, &e) || e.File != bad || e.Line != 2 || e.Key != "max_qos" {
		t.Errorf("error in an included file: %v", err)
	}
}

func sortStrings(s []string) {
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if mosquittoOrder(s[j], s[i]) < 0 {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
}

// TestDetectFormat: by name, then by the first line that says.
func TestDetectFormat(t *testing.T) {
	tests := []struct {
		name, data string
		want       config.Format
	}{
		{"shoal.yaml", "listener 1883\n", config.FormatYAML},
		{"x.yml", "", config.FormatYAML},
		{"broker.conf", "listen: 1\n", config.FormatMosquitto},
		{"/etc/mosquitto/site", "", config.FormatMosquitto},
		{"cfg", "# c\n\nlistener 1883\n", config.FormatMosquitto},
		{"cfg", "# c\nlisten: 127.0.0.1:1883\n", config.FormatYAML},
		{"cfg", "---\nloops: 2\n", config.FormatYAML},
		{"cfg", "\tpid_file /run/m.pid\n", config.FormatMosquitto},
		{"cfg", "# only comments\n", config.FormatYAML},
	}
	for _, tc := range tests {
		if got := DetectFormat(tc.name, []byte(tc.data)); got != tc.want {
			t.Errorf("DetectFormat(%q, %q) = %v, want %v", tc.name, tc.data, got, tc.want)
		}
	}
	// Named, the format is not told: a YAML file read as Mosquitto's.
	if _, err := Parse([]byte("listen: x\n"), "s.yaml", Options{Format: config.FormatMosquitto}); err == nil ||
		!strings.Contains(err.Error(), `listen:: unknown directive`) {
		t.Errorf("YAML read as Mosquitto's: %v", err)
	}
}

// TestPortFlag: an IfUnset override (-p) applies when the file names no
// listener, and is passed over with a warning when it does, in either
// format.
func TestPortFlag(t *testing.T) {
	p := config.Override{Flag: "-p", Key: "listen", Value: "127.0.0.1:1884", IfUnset: true}
	for _, tc := range []struct {
		name, data string
		format     config.Format
		listen     string
		warn       string
	}{
		{"yaml without listen", "loops: 1\n", config.FormatYAML, "127.0.0.1:1884", ""},
		{"yaml with listen", "listen: 0.0.0.0:1883\n", config.FormatYAML, "0.0.0.0:1883", "-p 127.0.0.1:1884 ignored: the file sets listen (line 1)"},
		{"mosquitto local-only", "# nothing\n", config.FormatMosquitto, "127.0.0.1:1884", ""},
		{"mosquitto with a listener", "\nlistener 1883\n", config.FormatMosquitto, ":1883", "-p 127.0.0.1:1884 ignored: the file sets listen (listener, line 2)"},
	} {
		f, err := Parse([]byte(tc.data), "f", Options{Format: tc.format, Overrides: []config.Override{p}})
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if f.Broker.Listen != tc.listen || strings.Join(f.Warnings, "") != tc.warn {
			t.Errorf("%s: listen %q, warnings %q; want %q, %q", tc.name, f.Broker.Listen, f.Warnings, tc.listen, tc.warn)
		}
		if tc.format == config.FormatMosquitto && tc.listen == "127.0.0.1:1884" && f.Broker.AllowAnonymous != broker.AnonymousAllow {
			t.Errorf("%s: -p in local-only mode: anonymous %v", tc.name, f.Broker.AllowAnonymous)
		}
	}
}

// TestMosquittoPasswordWarnings: a password file line that cannot be read
// reaches File.Warnings, naming the line and the user.
func TestMosquittoPasswordWarnings(t *testing.T) {
	pw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte("alice:plaintext\nbob:$6$c2FsdA==$aGFzaA==\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f := mustMosq(t, "password_file "+pw+"\n")
	w := strings.Join(f.Warnings, "\n")
	if len(f.Warnings) != 2 || !strings.Contains(w, pw+":1: unknown password hash scheme: user \"alice\"") ||
		!strings.Contains(w, pw+":2: malformed password hash: user \"bob\"") {
		t.Errorf("warnings %q", f.Warnings)
	}
}
