package mosqconf

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/shoalmq/shoal/bridge"
	"github.com/shoalmq/shoal/config"
)

// Bridges are read from a mosquitto.conf here and from the YAML bridges key
// by package config;
// the tests here run the same bridges, and the same mistakes, through both.

// everyBridgeDirective is a mosquitto.conf with two bridges that use every
// bridge directive Shoal takes, in both of Mosquitto's spellings where it
// has two, and everyBridgeKey is the same in Shoal's YAML.
const everyBridgeDirective = `listener 1883
connection central
address central.example.com:1884 10.0.0.2 fe80::1:1885 # the IPv6 one as Mosquitto writes it
round_robin true
topic sensors/# out 1 "" site7/
topic cmd/# IN 2 here/ # a comment
topic "" both 0 local/state remote/state
remote_username edge
remote_password secret words
allow_anonymous true
remote_clientid site7
local_clientid site7-local
bridge_protocol_version mqttv50
cleansession true
try_private false
notifications false
notification_topic state/site7
bridge_cafile /etc/ca.pem
bridge_certfile /etc/c.pem
bridge_keyfile /etc/k.pem
bridge_insecure true
keepalive_interval 30
restart_timeout 10 60
connection old
addresses h
clientid old-1
username u
password p
topic x
restart_timeout 20
`

const everyBridgeKey = `
bridges:
  - name: central
    addresses: ["central.example.com:1884", 10.0.0.2, "[fe80::1]:1885"]
    topics:
      - {pattern: sensors/#, direction: out, qos: 1, remote_prefix: site7/}
      - {pattern: cmd/#, direction: in, qos: 2, local_prefix: here/}
      - {pattern: "", direction: both, local_prefix: local/state, remote_prefix: remote/state}
    remote_username: edge
    remote_password: secret words
    remote_client_id: site7
    local_client_id: site7-local
    protocol_version: mqttv50
    clean_session: true
    try_private: false
    notifications: false
    notification_topic: state/site7
    tls: {ca_file: /etc/ca.pem, cert_file: /etc/c.pem, key_file: /etc/k.pem, insecure: true}
    keepalive: 30s
    restart_timeout: [10s, 1m]
  - name: old
    addresses: [h]
    remote_client_id: old-1
    remote_username: u
    remote_password: p
    topics: [{pattern: x}]
    restart_timeout: 20s
`

// everyBridge is what both say.
func everyBridge() bridge.Config {
	central := bridge.DefaultConnection("central")
	central.Addresses = []string{"central.example.com:1884", "10.0.0.2", "[fe80::1]:1885"}
	central.Topics = []bridge.Topic{
		{Pattern: "sensors/#", Direction: bridge.Out, QoS: 1, RemotePrefix: "site7/"},
		{Pattern: "cmd/#", Direction: bridge.In, QoS: 2, LocalPrefix: "here/"},
		{Pattern: "", Direction: bridge.Both, LocalPrefix: "local/state", RemotePrefix: "remote/state"},
	}
	central.RemoteUsername, central.RemotePassword = "edge", "secret words"
	central.RemoteClientID, central.LocalClientID = "site7", "site7-local"
	central.Protocol = bridge.MQTT5
	central.CleanSession, central.TryPrivate, central.Notifications = true, false, false
	central.NotificationTopic = "state/site7"
	central.TLS = bridge.TLS{CAFile: "/etc/ca.pem", CertFile: "/etc/c.pem", KeyFile: "/etc/k.pem", Insecure: true}
	central.KeepAlive = 30 * time.Second
	central.RestartTimeout = bridge.Backoff{Base: 10 * time.Second, Cap: time.Minute}
	old := bridge.DefaultConnection("old")
	old.Addresses = []string{"h"}
	old.Topics = []bridge.Topic{{Pattern: "x", Direction: bridge.Out}}
	old.RemoteClientID, old.RemoteUsername, old.RemotePassword = "old-1", "u", "p"
	old.RestartTimeout = bridge.Backoff{Base: 20 * time.Second} // "restart_timeout 20": a constant wait
	return bridge.Config{Connections: []bridge.Connection{central, old}}
}

// TestBridgesBothSyntaxes: every bridge directive, and every key of a
// YAML bridge, lands in its field of bridge.Connection, and the two files
// say the same.
func TestBridgesBothSyntaxes(t *testing.T) {
	want := everyBridge()
	f := mustMosq(t, everyBridgeDirective)
	if !reflect.DeepEqual(f.Broker.Bridges, want) {
		t.Errorf("mosquitto.conf:\n%+v\nwant\n%+v", f.Broker.Bridges, want)
	}
	if len(f.Warnings) != 0 {
		t.Errorf("warnings %q", f.Warnings)
	}
	y, err := config.Parse([]byte(everyBridgeKey), "b.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(y.Broker.Bridges, want) {
		t.Errorf("YAML:\n%+v\nwant\n%+v", y.Broker.Bridges, want)
	}
}

// TestBridgeDefaults: a bridge that says only where and what has
// Mosquitto's defaults, in both syntaxes; a file with no bridge has none.
func TestBridgeDefaults(t *testing.T) {
	want := bridge.DefaultConnection("b")
	want.Addresses = []string{"h"}
	want.Topics = []bridge.Topic{{Pattern: "a/#", Direction: bridge.Out}}
	if want.Protocol != bridge.MQTT311 || !want.TryPrivate || !want.Notifications || want.CleanSession ||
		want.KeepAlive != 60*time.Second || want.RestartTimeout != (bridge.Backoff{Base: 5 * time.Second, Cap: 30 * time.Second}) {
		t.Fatalf("bridge.DefaultConnection is not Mosquitto's: %+v", want)
	}
	f := mustMosq(t, "connection b\naddress h\ntopic a/#\n")
	y, err := config.Parse([]byte("bridges: [{name: b, addresses: [h], topics: [{pattern: a/#}]}]\n"), "b.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for what, got := range map[string]bridge.Config{"mosquitto.conf": f.Broker.Bridges, "YAML": y.Broker.Bridges} {
		if len(got.Connections) != 1 || !reflect.DeepEqual(got.Connections[0], want) {
			t.Errorf("%s: %+v, want %+v", what, got, want)
		}
	}
	if f := mustMosq(t, "listener 1883\n"); f.Broker.Bridges.Connections != nil {
		t.Errorf("no connection line: %+v", f.Broker.Bridges)
	}
}

// TestMosquittoBridgeScope: a bridge's directives are those after its
// connection line in its file, other directives between them included;
// an included file starts with no bridge, and the main file's goes on
// after it.
func TestMosquittoBridgeScope(t *testing.T) {
	dir := t.TempDir()
	inc := filepath.Join(dir, "conf.d")
	if err := os.Mkdir(inc, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(inc, "b.conf"), []byte("connection b\naddress hb\ntopic y\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	main := filepath.Join(dir, "mosquitto.conf")
	conf := "connection a\naddress ha\nlistener 1883\ninclude_dir " + inc + "\ntopic x\nallow_anonymous true\ntopic z in\n"
	if err := os.WriteFile(main, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := Load(main, Options{})
	if err != nil {
		t.Fatal(err)
	}
	cs := f.Broker.Bridges.Connections
	if len(cs) != 2 || cs[0].Name != "a" || len(cs[0].Topics) != 2 || cs[0].Topics[0].Pattern != "x" ||
		cs[0].Topics[1].Direction != bridge.In || cs[1].Name != "b" || len(cs[1].Topics) != 1 || cs[1].Topics[0].Pattern != "y" {
		t.Errorf("bridges %+v", cs)
	}
	stray := filepath.Join(inc, "c.conf")
	if err := os.WriteFile(stray, []byte("# c\ntopic w\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Load(main, Options{})
	var e *config.Error
	if !errors.As(err, &e) || e.File != stray || e.Line != 2 || e.Key != "topic" || !strings.Contains(e.Error(), "no connection line comes before it in this file") {
		t.Errorf("a topic line in an included file without a connection line: %v", err)
	}
}

// TestMosquittoBridgeErrors: what Mosquitto would refuse in a bridge, and
// what bridge.Config.Validate finds, is an error at the line of the
// directive it is about, naming it.
func TestMosquittoBridgeErrors(t *testing.T) {
	const c = "connection b\naddress h\ntopic a/#\n" // lines 1-3: a good bridge
	tests := []struct {
		conf string
		line int
		key  string
		msg  string
	}{
		{conf: "topic a/#", line: 1, key: "topic", msg: "belongs to a bridge, and no connection line comes before it"},
		{conf: "listener 1883\nremote_clientid x", line: 2, key: "remote_clientid", msg: "belongs to a bridge"},
		{conf: "connection", line: 1, key: "connection", msg: "needs a value"},
		{conf: "connection a/b\naddress h\ntopic t", line: 1, key: "connection", msg: "topic character"},
		{conf: "connection b\ntopic a/#", line: 1, key: "connection", msg: "needs the remote broker's address"},
		{conf: "connection b\naddress h", line: 1, key: "connection", msg: "at least one topic"},
		{conf: c + "connection b\naddress h\ntopic x", line: 4, key: "connection", msg: "the name is used twice"},
		{conf: c + "address h2", line: 4, key: "address", msg: "set again for this bridge (first at"},
		{conf: "connection b\naddress", line: 2, key: "address", msg: "needs an address"},
		{conf: "connection b\naddress h:99999\ntopic t", line: 2, key: "address", msg: `port "99999"`},
		{conf: c + "topic", line: 4, key: "topic", msg: "needs a pattern"},
		{conf: c + "topic t sideways", line: 4, key: "topic", msg: `"sideways" is not out, in or both`},
		{conf: c + "topic t out 3", line: 4, key: "topic", msg: `QoS "3" is not 0, 1 or 2`},
		{conf: c + "topic t out 1 a/ b/ c/", line: 4, key: "topic", msg: `unexpected "c/"`},
		{conf: c + "topic t out 1 a/+/ b/\n", line: 4, key: "topic", msg: "local prefix \"a/+/\" is not a valid topic"},
		{conf: c + "topic \"\" both 0 l/", line: 4, key: "topic", msg: "an empty pattern"},
		{conf: c + "topic ok\ntopic a/#/b", line: 5, key: "topic", msg: "a/#/b"},
		{conf: c + "bridge_protocol_version mqttv4", line: 4, key: "bridge_protocol_version", msg: `"mqttv4" is not mqttv31, mqttv311 or mqttv50`},
		{conf: c + "remote_password pw", line: 4, key: "remote_password", msg: "needs remote_username"},
		{conf: c + "clientid x\nremote_clientid y", line: 5, key: "remote_clientid", msg: "set again for this bridge"},
		{conf: c + "remote_clientid x\nlocal_clientid x", line: 5, key: "local_clientid", msg: `"x" is the remote_clientid too`},
		{conf: c + "local_clientid l\nconnection d\naddress h\ntopic t\nlocal_clientid l", line: 8, key: "local_clientid", msg: `is bridge "b"'s too`},
		{conf: c + "notification_topic a/+", line: 4, key: "notification_topic", msg: "a/+"},
		{conf: c + "bridge_certfile c.pem\nbridge_cafile ca.pem", line: 4, key: "bridge_certfile", msg: "bridge_certfile and bridge_keyfile go together"},
		{conf: c + "bridge_keyfile k.pem\nbridge_cafile ca.pem", line: 4, key: "bridge_keyfile", msg: "bridge_certfile and bridge_keyfile go together"},
		{conf: c + "bridge_insecure true", line: 4, key: "bridge_insecure", msg: "TLS needs bridge_cafile"},
		{conf: c + "keepalive_interval 70000", line: 4, key: "keepalive_interval", msg: "70000 is over 65535"},
		{conf: c + "keepalive_interval soon", line: 4, key: "keepalive_interval", msg: `"soon" is not an integer`},
		{conf: c + "restart_timeout 10 5", line: 4, key: "restart_timeout", msg: "the cap 5s is under the base 10s"},
		{conf: c + "restart_timeout 10 20 30", line: 4, key: "restart_timeout", msg: `unexpected "30"`},
		{conf: c + "restart_timeout", line: 4, key: "restart_timeout", msg: "needs a value"},
		{conf: c + "cleansession maybe", line: 4, key: "cleansession", msg: `"maybe" is not true or false`},
		{conf: c + "start_type manual", line: 4, key: "start_type", msg: `"manual" is not automatic, lazy or once`},
		{conf: c + "bridge_tls_version tlsv1.0", line: 4, key: "bridge_tls_version", msg: `"tlsv1.0" is not tlsv1.3`},
		{conf: c + "threshold many", line: 4, key: "threshold", msg: `"many" is not an integer`},
	}
	for _, tc := range tests {
		_, err := mosq(t, tc.conf, Options{})
		var e *config.Error
		if !errors.As(err, &e) || e.Line != tc.line || e.Key != tc.key || !strings.Contains(e.Error(), tc.msg) {
			t.Errorf("%q: %v, want line %d, %s: ...%s...", tc.conf, err, tc.line, tc.key, tc.msg)
		}
	}
}

// TestMosquittoBridgeRefused: a bridge directive Shoal's bridge has no
// equivalent for is refused with its line and reason — or left out with a
// warning under WarnUnsupported, the bridge kept — and one it does at one
// value is taken at that value.
func TestMosquittoBridgeRefused(t *testing.T) {
	const c = "connection b\naddress h\ntopic a/#\n"
	refused := []struct{ line, why string }{
		{"start_type lazy", "always connects again"},
		{"start_type once", "always connects again"},
		{"local_cleansession true", "always kept"},
		{"local_username u", "without credentials"},
		{"local_password p", "without credentials"},
		{"bridge_attempt_unsubscribe true", "no UNSUBSCRIBE"},
		{"bridge_outgoing_retain false", "retain flag"},
		{"notifications_local_only true", "on both brokers"},
		{"bridge_require_ocsp true", "OCSP"},
		{"bridge_max_packet_size 1000", "Maximum Packet Size"},
		{"bridge_tls_version tlsv1.3", "no minimum"},
		{"bridge_tls_version tlsv1.1", "RFC 8996"},
		{"bridge_capath /etc/ssl/certs", "one file"},
		{"bridge_alpn mqtt", "ALPN"},
		{"bridge_bind_address 10.0.0.1", "the address the system chooses"},
		{"bridge_identity id", "pre-shared keys"},
		{"bridge_psk 0123", "pre-shared keys"},
	}
	for _, r := range refused {
		_, err := mosq(t, c+r.line, Options{})
		var e *config.Error
		if !errors.As(err, &e) || e.Line != 4 || e.Key != strings.Fields(r.line)[0] || !strings.Contains(e.Error(), "not supported: ") ||
			!strings.Contains(e.Error(), r.why) {
			t.Errorf("%q: %v, want refused at line 4 for %q", r.line, err, r.why)
		}
		f, err := mosq(t, c+r.line, Options{Unsupported: WarnUnsupported})
		if err != nil || len(f.Warnings) != 1 || !strings.Contains(f.Warnings[0], "not supported, left out: ") ||
			len(f.Broker.Bridges.Connections) != 1 {
			t.Errorf("%q with WarnUnsupported: %v, warnings %q, bridges %+v", r.line, err, f.Warnings, f.Broker.Bridges)
		}
	}
	// What Shoal's bridge does anyway.
	f := mustMosq(t, c+"start_type automatic\nlocal_cleansession false\nbridge_attempt_unsubscribe false\n"+
		"bridge_outgoing_retain true\nnotifications_local_only false\nbridge_require_ocsp false\nbridge_max_packet_size 0\n"+
		"bridge_tls_version tlsv1.2\nidle_timeout 60\nthreshold 10\nround_robin false\n")
	if len(f.Warnings) != 0 || len(f.Broker.Bridges.Connections) != 1 {
		t.Errorf("warnings %q, bridges %+v", f.Warnings, f.Broker.Bridges)
	}
	// Several addresses: round_robin true is what the bridge does;
	// Mosquitto's default, false, is not.
	for _, tc := range []struct {
		conf string
		line int
		key  string
	}{
		{"connection b\naddress h1 h2\ntopic a/#\n", 2, "address"},
		{"connection b\naddress h1 h2\nround_robin false\ntopic a/#\n", 3, "round_robin"},
	} {
		_, err := mosq(t, tc.conf, Options{})
		var e *config.Error
		if !errors.As(err, &e) || e.Line != tc.line || e.Key != tc.key || !strings.Contains(e.Error(), "say round_robin true") {
			t.Errorf("%q: %v", tc.conf, err)
		}
	}
	if f := mustMosq(t, "connection b\naddress h1 h2\nround_robin true\ntopic a/#\n"); len(f.Broker.Bridges.Connections[0].Addresses) != 2 {
		t.Errorf("round_robin true: %+v", f.Broker.Bridges)
	}
	// The low values Mosquitto raises, with a notice, are raised, with a
	// warning.
	f = mustMosq(t, c+"keepalive_interval 2\nrestart_timeout 0 30\n")
	if cn := f.Broker.Bridges.Connections[0]; cn.KeepAlive != 5*time.Second || cn.RestartTimeout.Base != time.Second || len(f.Warnings) != 2 {
		t.Errorf("keepalive %v, restart %+v, warnings %q", cn.KeepAlive, cn.RestartTimeout, f.Warnings)
	}
}

// TestMosquittoBridgeDirectivesKnown: every directive of mosquitto.conf(5)'s
// "Configuring Bridges" (Mosquitto 2.0) is read as a bridge's.
func TestMosquittoBridgeDirectivesKnown(t *testing.T) {
	table := mosquittoTable()
	for _, n := range []string{"address", "addresses", "bridge_alpn", "bridge_attempt_unsubscribe",
		"bridge_bind_address", "bridge_cafile", "bridge_capath", "bridge_certfile", "bridge_identity",
		"bridge_insecure", "bridge_keyfile", "bridge_max_packet_size", "bridge_outgoing_retain",
		"bridge_protocol_version", "bridge_psk", "bridge_require_ocsp", "bridge_tls_version", "cleansession",
		"clientid", "idle_timeout", "keepalive_interval", "local_cleansession", "local_clientid",
		"local_password", "local_username", "notification_topic", "notifications", "notifications_local_only",
		"password", "remote_clientid", "remote_password", "remote_username", "restart_timeout", "round_robin",
		"start_type", "threshold", "topic", "try_private", "username"} {
		if d, ok := table[n]; !ok || d.kind != kBridge || d.do == nil {
			t.Errorf("%s: not read as a bridge directive", n)
		}
	}
	if d := table["connection"]; d.do == nil {
		t.Error("connection: not read")
	}
}
