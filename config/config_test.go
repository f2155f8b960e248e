package config

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"gopkg.in/yaml.v3"

	"github.com/shoalmq/shoal/auth"
	"github.com/shoalmq/shoal/auth/scram"
	"github.com/shoalmq/shoal/bridge"
	"github.com/shoalmq/shoal/broker"
	"github.com/shoalmq/shoal/router"
	"github.com/shoalmq/shoal/store"
	"github.com/shoalmq/shoal/transport"
)

// withoutLogger zeroes the field that cannot be compared meaningfully.
// scramLogin runs a whole SCRAM exchange against m.
func scramLogin(m auth.Method, user, pass string) error {
	cl := scram.NewClient(user, pass)
	x := m.Start("c")
	first, _, err := x.Step(cl.First())
	if err != nil {
		return err
	}
	final, err := cl.Final(first)
	if err != nil {
		return err
	}
	last, done, err := x.Step(final)
	if err != nil {
		return err
	}
	if !done {
		return errors.New("exchange not done after client-final")
	}
	return cl.Verify(last)
}

func withoutLogger(c broker.Config) broker.Config {
	c.Logger = zerolog.Logger{}
	return c
}

func TestDefaultYieldsBrokerDefaults(t *testing.T) {
	f, err := Parse(Default(), "default.yaml")
	if err != nil {
		t.Fatalf("Parse(Default()): %v", err)
	}
	got, want := withoutLogger(f.Broker), withoutLogger(broker.DefaultConfig())
	// The library keeps nothing unless told; the program's default keeps
	// its state in shoal-data.
	want.DataDir = DefaultDataDir
	if !f.Persistence {
		t.Error("persistence is off in the embedded default")
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("embedded default parses to\n%+v\nwant broker.DefaultConfig()\n%+v", got, want)
	}
	if f.LogLevel != zerolog.InfoLevel || f.LogFormat != LogFormatAuto {
		t.Errorf("log settings = %v, %v; want info, auto", f.LogLevel, f.LogFormat)
	}
}

func TestEmptyFileYieldsDefaults(t *testing.T) {
	for _, in := range []string{"", "\n", "# only a comment\n", "---\n", "~\n"} {
		f, err := Parse([]byte(in), "empty.yaml")
		if err != nil {
			t.Errorf("Parse(%q): %v", in, err)
			continue
		}
		if want := defaults(); !reflect.DeepEqual(withoutLogger(f.Broker), withoutLogger(want.Broker)) ||
			f.LogLevel != want.LogLevel || f.LogFormat != want.LogFormat {
			t.Errorf("Parse(%q) = %+v, want the defaults", in, f)
		}
	}
}

func TestExampleIsEmbeddedDefault(t *testing.T) {
	example, err := os.ReadFile("../config.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(example, Default()) {
		t.Error("config.example.yaml differs from config/default.yaml; keep them identical (cp config/default.yaml config.example.yaml)")
	}
}

func TestDefaultListsEveryKeyInOrder(t *testing.T) {
	var doc yaml.Node
	if err := yaml.Unmarshal(Default(), &doc); err != nil {
		t.Fatal(err)
	}
	root := doc.Content[0]
	var got []string
	for i := 0; i < len(root.Content); i += 2 {
		k := root.Content[i]
		got = append(got, k.Value)
		if strings.TrimSpace(k.HeadComment) == "" {
			t.Errorf("default.yaml: key %q has no comment above it", k.Value)
		}
	}
	var want []string
	for _, s := range settings() {
		want = append(want, s.key)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("default.yaml keys = %v\nwant %v", got, want)
	}
}

func TestDefaultIsNotShared(t *testing.T) {
	a := Default()
	a[0] ^= 0xff
	if bytes.Equal(a, Default()) {
		t.Error("Default returned shared bytes")
	}
}

// TestEveryKey sets every key to a value other than its default and checks
// that each broker.Config field is reached by some key, so a field added
// to broker.Config without a key here fails the test.
func TestEveryKey(t *testing.T) {
	in := everyKeyFile(t)
	got, err := Parse([]byte(in), "all.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := File{
		Broker: broker.Config{
			Listen:               "0.0.0.0:1884",
			Loops:                3,
			Workers:              5,
			Coalesce:             5 * time.Millisecond,
			TCPNoDelay:           false,
			WorkerQueue:          100,
			MaxPacketSize:        64 << 10,
			ConnectTimeout:       90 * time.Second,
			MaxKeepAlive:         120,
			MaxInflight:          20,
			MaxQueued:            7,
			QueuePolicy:          broker.DropNewest,
			SlowConsumer:         broker.DropSlow,
			RetryInterval:        15 * time.Second,
			MaxSessionExpiry:     24 * time.Hour,
			ReceiveMaximum:       100,
			TopicAliasMaximum:    10,
			OutboundTopicAliases: 5,
			SharedStrategy:       router.HashTopic,
			MaxQoS:               1,
			RetainAvailable:      false,
			ResponseInformation:  "replies/",
			DataDir:              "/var/lib/shoal",
			Durability:           broker.Relaxed,
			OnDamage:             store.Refuse,
			SysInterval:          30 * time.Second,
			Version:              "dev",
			AllowAnonymous:       broker.AnonymousDeny,
			AuthWorkers:          3,
			AuthQueue:            50,
			MaxConnections:       500,
			ConnectRate:          2.5,
			ConnectBurst:         10,
			PublishRate:          100,
			PublishBurst:         200,
			MaxSubscriptions:     40,
			MaxTopicLength:       200,
			MaxTopicLevels:       9,
			MaxClientIDLength:    64,
			MaxQueuedBytes:       1 << 20,
			MaxMessageSize:       1000,
			AssignedIDPrefix:     "auto-",
			Transports: transport.Config{
				TLSListen: "0.0.0.0:8883", WSListen: "0.0.0.0:8080", WSSListen: "0.0.0.0:8443", WSPath: "/ws",
				CertFile: "/etc/shoal/server.pem", KeyFile: "/etc/shoal/server-key.pem",
				ClientCAFile: "/etc/shoal/clients-ca.pem", ClientCADir: "/etc/shoal/clients-ca.d",
				ClientCerts: transport.OptionalClientCerts, Identity: transport.IdentitySAN,
				MinVersion: transport.TLS13, MaxHandshakes: 1024,
			},
			Bridges: bridge.Config{Connections: []bridge.Connection{func() bridge.Connection {
				cn := bridge.DefaultConnection("central")
				cn.Addresses = []string{"central.example.com", "10.0.0.2:1884"}
				cn.Topics = []bridge.Topic{
					{Pattern: "sensors/#", Direction: bridge.Out, QoS: 1, RemotePrefix: "site7/"},
					{Pattern: "cmd/#", Direction: bridge.In, QoS: 2, LocalPrefix: "here/"},
				}
				cn.RemoteClientID, cn.CleanSession = "site7", true
				return cn
			}()}},
			Cluster: &broker.ClusterConfig{Name: "shoal", Node: "a", Listen: "127.0.0.1:7422",
				Routes: []string{"127.0.0.1:7423", "127.0.0.1:7424"}, Replicas: 3}, // replicas: the nodes named
		},
		PasswordFile:      got.PasswordFile, // a file everyKeyFile made
		ACLFile:           got.ACLFile,
		HTTPAuth:          auth.HTTPConfig{URL: "http://127.0.0.1:9/auth", Timeout: 2 * time.Second, CacheTTL: 30 * time.Second},
		LogLevel:          zerolog.DebugLevel,
		LogFormat:         LogFormatJSON,
		Persistence:       true,
		ImportMosquittoDB: "/var/lib/mosquitto/mosquitto.db",
		AdminListen:       "0.0.0.0:9000",
		AdminToken:        "tok",
		User:              "shoal",
		AllowRoot:         true,
		ACLFormat:         auth.ACLShoal,
		LogDest:           []string{"stdout", "file /var/log/shoal.log"},
		PIDFile:           "/run/shoal.pid",
		Warnings:          got.Warnings,
		Format:            FormatYAML,
	}
	got.Broker = withoutLogger(got.Broker)
	// The SCRAM method is checked by using it: alice's password must work.
	if len(got.Broker.AuthMethods) != 1 || got.Broker.AuthMethods[0].Name() != scram.SHA256 {
		t.Fatalf("AuthMethods = %v, want one SCRAM-SHA-256", got.Broker.AuthMethods)
	}
	if err := scramLogin(got.Broker.AuthMethods[0], "alice", "wonderland"); err != nil {
		t.Fatalf("alice cannot authenticate: %v", err)
	}
	if err := scramLogin(got.Broker.AuthMethods[0], "alice", "looking-glass"); err == nil {
		t.Fatal("a wrong password authenticated")
	}
	want.Broker.AuthMethods = got.Broker.AuthMethods
	if len(got.ScramUsers) != 1 || got.ScramUsers["alice"] == "" {
		t.Errorf("ScramUsers = %v, want alice with a digest", got.ScramUsers)
	}
	want.ScramUsers = got.ScramUsers
	// The password file and the ACL are checked by using them too.
	login := &auth.Login{ClientID: "c1", Username: "bob", Password: []byte("builder"), HasUsername: true, HasPassword: true}
	if err := got.Broker.Authenticator.Authenticate(context.Background(), login); err != nil {
		t.Fatalf("bob cannot log in: %v", err)
	}
	if got.Broker.Authorizer == nil || !got.Broker.Authorizer.For("bob", "c1").CanPublish([]byte("bob/x")) ||
		got.Broker.Authorizer.For("bob", "c1").CanPublish([]byte("alice/x")) {
		t.Fatal("acl_file rules not in force")
	}
	want.Broker.Authenticator, want.Broker.Authorizer = got.Broker.Authenticator, got.Broker.Authorizer
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Parse =\n%+v\nwant\n%+v", got, want)
	}

	def := reflect.ValueOf(withoutLogger(broker.DefaultConfig()))
	set := reflect.ValueOf(want.Broker)
	for i := 0; i < def.NumField(); i++ {
		name := def.Type().Field(i).Name
		if name == "Logger" || name == "Store" || name == "Version" { // set by the program or an embedder, not a file
			continue
		}
		if name == "Import" { // set by the program, from import_mosquitto_db
			continue
		}
		if !def.Type().Field(i).IsExported() { // set by the broker's own tests
			continue
		}
		if reflect.DeepEqual(def.Field(i).Interface(), set.Field(i).Interface()) {
			t.Errorf("broker.Config.%s is not set by any config key (add one to settings and default.yaml)", name)
		}
	}
}

// TestValues checks the spellings each kind of value accepts.
func TestValues(t *testing.T) {
	tests := []struct {
		name string
		in   string
		get  func(File) any
		want any
	}{
		{name: "plain listen", in: "listen: :0", get: func(f File) any { return f.Broker.Listen }, want: ":0"},
		{name: "quoted listen", in: `listen: "[::1]:1883"`, get: func(f File) any { return f.Broker.Listen }, want: "[::1]:1883"},
		{name: "zero loops", in: "loops: 0", get: func(f File) any { return f.Broker.Loops }, want: 0},
		{name: "hex count", in: "max_inflight: 0x10", get: func(f File) any { return f.Broker.MaxInflight }, want: 16},
		{name: "zero max_queued", in: "max_queued: 0", get: func(f File) any { return f.Broker.MaxQueued }, want: 0},

		{name: "size bytes", in: "max_packet_size: 4096", get: func(f File) any { return f.Broker.MaxPacketSize }, want: 4096},
		{name: "size string bytes", in: `max_packet_size: "4096"`, get: func(f File) any { return f.Broker.MaxPacketSize }, want: 4096},
		{name: "size B", in: "max_packet_size: 100B", get: func(f File) any { return f.Broker.MaxPacketSize }, want: 100},
		{name: "size KB", in: "max_packet_size: 1KB", get: func(f File) any { return f.Broker.MaxPacketSize }, want: 1000},
		{name: "size KiB", in: "max_packet_size: 64KiB", get: func(f File) any { return f.Broker.MaxPacketSize }, want: 65536},
		{name: "size MB", in: "max_packet_size: 2MB", get: func(f File) any { return f.Broker.MaxPacketSize }, want: 2000000},
		{name: "size MiB", in: "max_packet_size: 1MiB", get: func(f File) any { return f.Broker.MaxPacketSize }, want: 1 << 20},
		{name: "size space", in: "max_packet_size: 2 MiB", get: func(f File) any { return f.Broker.MaxPacketSize }, want: 2 << 20},
		{name: "size max", in: "max_packet_size: 268435460", get: func(f File) any { return f.Broker.MaxPacketSize }, want: 268435460},

		{name: "duration string", in: "connect_timeout: 1m30s", get: func(f File) any { return f.Broker.ConnectTimeout }, want: 90 * time.Second},
		{name: "duration ms", in: "connect_timeout: 250ms", get: func(f File) any { return f.Broker.ConnectTimeout }, want: 250 * time.Millisecond},
		{name: "duration seconds", in: "connect_timeout: 90", get: func(f File) any { return f.Broker.ConnectTimeout }, want: 90 * time.Second},
		{name: "duration zero", in: "retry_interval: 0", get: func(f File) any { return f.Broker.RetryInterval }, want: time.Duration(0)},
		{name: "expiry hours", in: "max_session_expiry: 2h", get: func(f File) any { return f.Broker.MaxSessionExpiry }, want: 2 * time.Hour},

		{name: "keepalive seconds", in: "max_keepalive: 300", get: func(f File) any { return f.Broker.MaxKeepAlive }, want: uint16(300)},
		{name: "keepalive duration", in: "max_keepalive: 5m", get: func(f File) any { return f.Broker.MaxKeepAlive }, want: uint16(300)},
		{name: "keepalive max", in: "max_keepalive: 65535", get: func(f File) any { return f.Broker.MaxKeepAlive }, want: uint16(65535)},

		{name: "drop-oldest", in: "queue_policy: drop-oldest", get: func(f File) any { return f.Broker.QueuePolicy }, want: broker.DropOldest},
		{name: "drop-newest", in: "queue_policy: drop-newest", get: func(f File) any { return f.Broker.QueuePolicy }, want: broker.DropNewest},
		{name: "admin off", in: `admin_listen: ""`, get: func(f File) any { return f.AdminListen }, want: ""},
		{name: "default admin", in: "listen: :0", get: func(f File) any { return f.AdminListen }, want: DefaultAdminListen},
		{name: "sys off", in: "sys_interval: 0", get: func(f File) any { return f.Broker.SysInterval }, want: time.Duration(0)},
		{name: "persistence off", in: "persistence: false\ndata_dir: /x", get: func(f File) any { return f.Broker.DataDir }, want: ""},
		{name: "data dir", in: "data_dir: /x", get: func(f File) any { return f.Broker.DataDir }, want: "/x"},
		{name: "default data dir", in: "listen: :0", get: func(f File) any { return f.Broker.DataDir }, want: DefaultDataDir},
		{name: "strict", in: "durability: strict", get: func(f File) any { return f.Broker.Durability }, want: broker.Strict},
		{name: "slow disconnect", in: "slow_consumer: disconnect", get: func(f File) any { return f.Broker.SlowConsumer }, want: broker.DisconnectSlow},
		{name: "slow drop", in: "slow_consumer: drop", get: func(f File) any { return f.Broker.SlowConsumer }, want: broker.DropSlow},

		{name: "trace", in: "log_level: trace", get: func(f File) any { return f.LogLevel }, want: zerolog.TraceLevel},
		{name: "debug", in: "log_level: debug", get: func(f File) any { return f.LogLevel }, want: zerolog.DebugLevel},
		{name: "info", in: "log_level: info", get: func(f File) any { return f.LogLevel }, want: zerolog.InfoLevel},
		{name: "warn", in: "log_level: warn", get: func(f File) any { return f.LogLevel }, want: zerolog.WarnLevel},
		{name: "error", in: "log_level: error", get: func(f File) any { return f.LogLevel }, want: zerolog.ErrorLevel},
		{name: "auto", in: "log_format: auto", get: func(f File) any { return f.LogFormat }, want: LogFormatAuto},
		{name: "console", in: "log_format: console", get: func(f File) any { return f.LogFormat }, want: LogFormatConsole},
		{name: "json", in: "log_format: json", get: func(f File) any { return f.LogFormat }, want: LogFormatJSON},

		{name: "flow mapping", in: "{loops: 2, workers: 3}", get: func(f File) any { return f.Broker.Workers }, want: 3},
		{name: "alias", in: "loops: &n 4\nworkers: *n", get: func(f File) any { return f.Broker.Workers }, want: 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Parse([]byte(tt.in), "v.yaml")
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.in, err)
			}
			if got := tt.get(f); got != tt.want {
				t.Errorf("Parse(%q): got %v (%T), want %v (%T)", tt.in, got, got, tt.want, tt.want)
			}
		})
	}
}

// TestErrors checks every error path: the whole message, and that the
// error is an *Error with the position and key.
func TestErrors(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		want     string
		line     int
		key      string
		isSyntax bool
	}{
		// Unknown and repeated keys.
		{name: "typo", in: "loops: 1\nlistne: x\n",
			want: `s.yaml:2:1: unknown key "listne" (did you mean "listen"?)`, line: 2},
		{name: "camel case", in: "maxInflight: 3\n",
			want: `s.yaml:1:1: unknown key "maxInflight" (did you mean "max_inflight"?)`, line: 1},
		{name: "dashes", in: "max-queued: 3\n",
			want: `s.yaml:1:1: unknown key "max-queued" (did you mean "max_queued"?)`, line: 1},
		{name: "far off", in: "port: 1883\n",
			want: `s.yaml:1:1: unknown key "port" (known keys: ` + knownKeys() + `)`, line: 1},
		{name: "unknown shared strategy", in: "shared_strategy: sticky\n",
			want: `s.yaml:1:18: shared_strategy: unknown shared subscription strategy "sticky" (want round-robin, random, hash-client or hash-topic)`, line: 1, key: "shared_strategy"},
		{name: "max_qos out of range", in: "max_qos: 3\n",
			want: `s.yaml:1:10: max_qos: 3 is outside 0..2`, line: 1, key: "max_qos"},
		{name: "receive_maximum 0", in: "receive_maximum: 0\n",
			want: `s.yaml:1:18: receive_maximum: must be at least 1`, line: 1, key: "receive_maximum"},
		{name: "alias maximum too big", in: "topic_alias_maximum: 70000\n",
			want: `s.yaml:1:22: topic_alias_maximum: 70000 is outside 0..65535`, line: 1, key: "topic_alias_maximum"},
		{name: "retain_available not a bool", in: "retain_available: yes please\n",
			want: `s.yaml:1:19: retain_available:`, line: 1, key: "retain_available"},
		{name: "merge key", in: "<<: {loops: 1}\n",
			want: "s.yaml:1:1: merge keys (<<) are not supported; write each setting out", line: 1},
		{name: "repeated", in: "loops: 1\nworkers: 2\nloops: 3\n",
			want: "s.yaml:3:1: loops: set again (first set at line 1)", line: 3, key: "loops"},
		{name: "integer key", in: "1: x\n",
			want: "s.yaml:1:1: setting names must be strings, got integer 1", line: 1},

		// Wrong types.
		{name: "listen int", in: "listen: 1883\n",
			want: "s.yaml:1:9: listen: want a string, got integer 1883", line: 1, key: "listen"},
		{name: "listen list", in: "listen:\n  - a\n",
			want: "s.yaml:2:3: listen: want a string, got a list", line: 2, key: "listen"},
		{name: "user id", in: "user: 1000\n",
			want: "s.yaml:1:7: user: want a string, got integer 1000", line: 1, key: "user"},
		{name: "allow_root string", in: "allow_root: \"true\"\n",
			want: `s.yaml:1:13: allow_root: want true or false, got string "true"`, line: 1, key: "allow_root"},
		{name: "count string", in: `max_inflight: "64"`,
			want: `s.yaml:1:15: max_inflight: want an integer, got string "64"`, line: 1, key: "max_inflight"},
		{name: "count float", in: "loops: 1.5\n",
			want: "s.yaml:1:8: loops: want an integer, got number 1.5", line: 1, key: "loops"},
		{name: "count bool", in: "workers: true\n",
			want: "s.yaml:1:10: workers: want an integer, got boolean true", line: 1, key: "workers"},
		{name: "count empty", in: "loops:\nworkers: 1\n",
			want: "s.yaml:1:7: loops: want an integer, got no value", line: 1, key: "loops"},
		{name: "count mapping", in: "loops: {a: 1}\n",
			want: "s.yaml:1:8: loops: want an integer, got a mapping", line: 1, key: "loops"},
		{name: "count too big", in: "worker_queue: 99999999999999999999\n",
			want: "s.yaml:1:15: worker_queue: 99999999999999999999 is out of range", line: 1, key: "worker_queue"},
		{name: "policy int", in: "queue_policy: 1\n",
			want: "s.yaml:1:15: queue_policy: want a string, got integer 1", line: 1, key: "queue_policy"},
		{name: "duration float", in: "connect_timeout: 1.5\n",
			want: `s.yaml:1:18: connect_timeout: want a duration ("10s", "1m30s") or an integer of seconds, got number 1.5`, line: 1, key: "connect_timeout"},
		{name: "size bool", in: "max_packet_size: false\n",
			want: `s.yaml:1:18: max_packet_size: want a size (1048576, "1MiB", "64KiB"), got boolean false`, line: 1, key: "max_packet_size"},
		{name: "top-level list", in: "- listen\n",
			want: "s.yaml:1:1: want a mapping of settings (key: value lines), got a list", line: 1},
		{name: "top-level scalar", in: "listen\n",
			want: `s.yaml:1:1: want a mapping of settings (key: value lines), got string "listen"`, line: 1},

		// Bad values.
		{name: "bad duration", in: "loops: 1\nretry_interval: 10 seconds\n",
			want: `s.yaml:2:17: retry_interval: "10 seconds" is not a duration (want e.g. "10s", "1m30s" or an integer of seconds)`, line: 2, key: "retry_interval"},
		{name: "duration overflow", in: "max_session_expiry: 10000000000000\n",
			want: "s.yaml:1:21: max_session_expiry: 10000000000000 seconds is out of range", line: 1, key: "max_session_expiry"},
		{name: "bad size unit", in: "max_packet_size: 1XB\n",
			want: `s.yaml:1:18: max_packet_size: "1XB" is not a size (want bytes, or an integer with B, KB, MB, GB, KiB, MiB or GiB)`, line: 1, key: "max_packet_size"},
		{name: "size without number", in: "max_packet_size: MiB\n",
			want: `s.yaml:1:18: max_packet_size: "MiB" is not a size (want bytes, or an integer with B, KB, MB, GB, KiB, MiB or GiB)`, line: 1, key: "max_packet_size"},
		{name: "size fraction", in: "max_packet_size: 1.5MiB\n",
			want: `s.yaml:1:18: max_packet_size: "1.5MiB" is not a size (want bytes, or an integer with B, KB, MB, GB, KiB, MiB or GiB)`, line: 1, key: "max_packet_size"},
		{name: "size lower case unit", in: "max_packet_size: 1mib\n",
			want: `s.yaml:1:18: max_packet_size: "1mib" is not a size (want bytes, or an integer with B, KB, MB, GB, KiB, MiB or GiB)`, line: 1, key: "max_packet_size"},
		{name: "size overflow", in: "max_packet_size: 99999999999999GiB\n",
			want: "s.yaml:1:18: max_packet_size: 99999999999999GiB is out of range", line: 1, key: "max_packet_size"},
		{name: "keepalive too long", in: "max_keepalive: 70000\n",
			want: "s.yaml:1:16: max_keepalive: 70000 seconds is outside 0..65535", line: 1, key: "max_keepalive"},
		{name: "keepalive negative", in: "max_keepalive: -1s\n",
			want: "s.yaml:1:16: max_keepalive: -1 seconds is outside 0..65535", line: 1, key: "max_keepalive"},
		{name: "keepalive fraction", in: "max_keepalive: 1500ms\n",
			want: "s.yaml:1:16: max_keepalive: 1.5s is not a whole number of seconds", line: 1, key: "max_keepalive"},
		{name: "bad policy", in: "queue_policy: drop\n",
			want: `s.yaml:1:15: queue_policy: unknown queue policy "drop" (want drop-oldest or drop-newest)`, line: 1, key: "queue_policy"},
		{name: "public admin without token", in: "admin_listen: 0.0.0.0:8083\n",
			want: `s.yaml:1:15: admin_token: admin_token must be set when admin_listen is not a loopback address`, line: 1, key: "admin_token"},
		{name: "bad admin listen", in: "admin_listen: \"8083\"\n",
			want: `s.yaml:1:15: admin_listen: "8083" is not host:port or "" (off)`, line: 1, key: "admin_listen"},
		{name: "bad on_damage", in: "on_damage: ignore\n",
			want: `s.yaml:1:12: on_damage: unknown value "ignore" (want salvage or refuse)`, line: 1, key: "on_damage"},
		{name: "bad durability", in: "durability: eventual\n",
			want: `s.yaml:1:13: durability: unknown durability "eventual" (want strict or relaxed)`, line: 1, key: "durability"},
		{name: "import without persistence", in: "persistence: false\nimport_mosquitto_db: /var/lib/mosquitto/mosquitto.db\n",
			want: `s.yaml:2:22: import_mosquitto_db: needs persistence: true: the import goes into data_dir's store`, line: 2, key: "import_mosquitto_db"},
		{name: "empty data dir", in: "data_dir: \"\"\n",
			want: `s.yaml:1:11: data_dir: must not be empty (to keep nothing, set persistence: false)`, line: 1, key: "data_dir"},
		{name: "bad slow policy", in: "slow_consumer: block\n",
			want: `s.yaml:1:16: slow_consumer: unknown slow consumer policy "block" (want disconnect or drop)`, line: 1, key: "slow_consumer"},
		{name: "bad level", in: "log_level: fatal\n",
			want: `s.yaml:1:12: log_level: unknown log level "fatal" (want trace, debug, info, warn or error)`, line: 1, key: "log_level"},
		{name: "level case", in: "log_level: INFO\n",
			want: `s.yaml:1:12: log_level: unknown log level "INFO" (want trace, debug, info, warn or error)`, line: 1, key: "log_level"},
		{name: "bad format", in: "log_format: text\n",
			want: `s.yaml:1:13: log_format: unknown log format "text" (want auto, console or json)`, line: 1, key: "log_format"},
		{name: "bad client cert policy", in: "tls_client_certs: required\n",
			want: `s.yaml:1:19: tls_client_certs: unknown client certificate policy "required" (want none, optional or require)`, line: 1, key: "tls_client_certs"},
		{name: "bad identity", in: "tls_identity: CN\n",
			want: `s.yaml:1:15: tls_identity: unknown certificate identity "CN" (want none, cn, san or subject)`, line: 1, key: "tls_identity"},
		{name: "bad tls listen", in: "tls_listen: \"8883\"\n",
			want: `s.yaml:1:13: tls_listen: "8883" is not host:port or "" (off)`, line: 1, key: "tls_listen"},
		{name: "tls without certificate", in: "tls_listen: 0.0.0.0:8883\n",
			want: `s.yaml: tls_cert_file: must be set when tls_listen or wss_listen is`, key: "tls_cert_file"},
		{name: "bad ws path", in: "ws_path: mqtt\n",
			want: `s.yaml:1:10: ws_path: "mqtt" must start with /`, line: 1, key: "ws_path"},
		{name: "identity without client certificates", in: "tls_identity: cn\n",
			want: `s.yaml:1:15: tls_identity: cn needs tls_client_certs optional or require`, line: 1, key: "tls_identity"},

		// Validate's errors, placed at the key.
		{name: "validate inflight", in: "# comment\nloops: 2\n\nmax_inflight: 0\n",
			want: "s.yaml:4:15: max_inflight: 0 is outside 1..65535", line: 4, key: "max_inflight"},
		{name: "validate listen", in: `listen: ""`,
			want: "s.yaml:1:9: listen: must not be empty", line: 1, key: "listen"},
		{name: "validate loops", in: "loops: -1\n",
			want: "s.yaml:1:8: loops: -1 is negative", line: 1, key: "loops"},
		{name: "validate packet size", in: "max_packet_size: 10\n",
			want: "s.yaml:1:18: max_packet_size: 10 is outside 64..268435460", line: 1, key: "max_packet_size"},
		{name: "validate timeout", in: "connect_timeout: 0s\n",
			want: "s.yaml:1:18: connect_timeout: 0s must be positive", line: 1, key: "connect_timeout"},
		{name: "validate retry", in: "retry_interval: -5\n",
			want: "s.yaml:1:17: retry_interval: -5s is negative", line: 1, key: "retry_interval"},
		{name: "validate flow", in: "{listen: ':1', loops: -1}",
			want: "s.yaml:1:23: loops: -1 is negative", line: 1, key: "loops"},

		// YAML syntax, at the line where the problem shows.
		{name: "bad indent", in: "listen: x\nloops: 1\n  workers: 2\n",
			want: "s.yaml:3: YAML syntax error: mapping values are not allowed in this context", line: 3, isSyntax: true},
		{name: "tab indent", in: "listen: x\nloops: 1\n\tworkers: 2\n",
			want: "s.yaml:3: YAML syntax error: found a tab character that violates indentation", line: 3, isSyntax: true},
		{name: "tab first line", in: "\tlisten: x\n",
			want: "s.yaml:1: YAML syntax error: found character that cannot start any token", line: 1, isSyntax: true},
		{name: "unclosed flow", in: "listen: x\nloops: [1\nworkers: 2\n",
			want: "s.yaml:2: YAML syntax error: did not find expected ',' or ']'", line: 2, isSyntax: true},
		{name: "unclosed quote", in: "listen: x\nloops: '1\n",
			want: "s.yaml:2: YAML syntax error: found unexpected end of stream", line: 2, isSyntax: true},
		{name: "lone colon", in: "listen: x\nloops: 1\n:",
			want: "s.yaml:3: YAML syntax error: did not find expected key", line: 3, isSyntax: true},
		{name: "second document", in: "loops: 1\n---\nworkers: 2\n",
			want: "s.yaml:2:1: a second YAML document; a configuration file holds one", line: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.in), "s.yaml")
			if err == nil {
				t.Fatalf("Parse(%q) succeeded, want %q", tt.in, tt.want)
			}
			if !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("Parse(%q) error\n got: %s\nwant: %s", tt.in, err, tt.want)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %T is not an *Error", err)
			}
			if e.File != "s.yaml" || e.Line != tt.line || e.Key != tt.key {
				t.Errorf("Error{File: %q, Line: %d, Key: %q}, want {s.yaml, %d, %q}", e.File, e.Line, e.Key, tt.line, tt.key)
			}
			if got := strings.Contains(e.Err.Error(), "YAML syntax error"); got != tt.isSyntax {
				t.Errorf("syntax error = %v, want %v", got, tt.isSyntax)
			}
		})
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "shoal.yaml")
	if err := os.WriteFile(path, []byte("listen: \":0\"\nmax_inflight: 70000\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	if want := path + ":2:15: max_inflight: 70000 is outside 1..65535"; err == nil || err.Error() != want {
		t.Errorf("Load error = %v, want %s", err, want)
	}

	if err := os.WriteFile(path, []byte("listen: \":0\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := Load(path)
	if err != nil || f.Broker.Listen != ":0" {
		t.Errorf("Load = %q, %v; want \":0\", nil", f.Broker.Listen, err)
	}

	missing := filepath.Join(dir, "nope.yaml")
	_, err = Load(missing)
	if err == nil || !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Errorf("Load(missing) error = %v, want one naming %s", err, missing)
	}
}

func TestLogFormatConsole(t *testing.T) {
	tests := []struct {
		format   LogFormat
		terminal bool
		want     bool
	}{
		{format: LogFormatAuto, terminal: true, want: true},
		{format: LogFormatAuto, terminal: false, want: false},
		{format: LogFormatConsole, terminal: false, want: true},
		{format: LogFormatJSON, terminal: true, want: false},
	}
	for _, tt := range tests {
		if got := tt.format.Console(tt.terminal); got != tt.want {
			t.Errorf("%v.Console(%v) = %v, want %v", tt.format, tt.terminal, got, tt.want)
		}
	}
	for _, f := range []LogFormat{LogFormatAuto, LogFormatConsole, LogFormatJSON} {
		if got, err := ParseLogFormat(f.String()); err != nil || got != f {
			t.Errorf("ParseLogFormat(%q) = %v, %v", f.String(), got, err)
		}
	}
}

// knownKeys is the list an unknown key's error gives.
func knownKeys() string {
	var keys []string
	for _, s := range settings() {
		keys = append(keys, s.key)
	}
	return strings.Join(keys, ", ")
}

// TestAllowAnonymous: one rule, the same in the code, the example and an
// empty file: anonymous clients are allowed while every listener is on
// loopback (allow_anonymous: loopback, the default), and a file decides
// otherwise only by saying so.
func TestAllowAnonymous(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
		want broker.Anonymous
	}{
		{"embedded default", Default(), broker.AnonymousLoopback},
		{"empty file", nil, broker.AnonymousLoopback},
		{"other keys only", []byte("listen: 0.0.0.0:1883\n"), broker.AnonymousLoopback},
		{"loopback", []byte("allow_anonymous: loopback\n"), broker.AnonymousLoopback},
		{"true", []byte("allow_anonymous: true\n"), broker.AnonymousAllow},
		{"false", []byte("allow_anonymous: false\n"), broker.AnonymousDeny},
	} {
		f, err := Parse(tc.in, "a.yaml")
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if f.Broker.AllowAnonymous != tc.want {
			t.Errorf("%s: AllowAnonymous = %v, want %v", tc.name, f.Broker.AllowAnonymous, tc.want)
		}
	}
	if got := broker.DefaultConfig().AllowAnonymous; got != broker.AnonymousLoopback {
		t.Errorf("broker.DefaultConfig().AllowAnonymous = %v, want loopback", got)
	}
	if _, err := Parse([]byte("allow_anonymous: maybe\n"), "a.yaml"); err == nil || !strings.Contains(err.Error(), "true, false or loopback") {
		t.Errorf("allow_anonymous: maybe: %v, want an error naming the values", err)
	}
}

// everyKeyYAML sets every key to a value other than its default; PWFILE
// and ACLFILE stand for files everyKeyFile makes.
const everyKeyYAML = `
listen: "0.0.0.0:1884"
loops: 3
workers: 5
worker_queue: 100
coalesce: 5ms
tcp_nodelay: false
max_packet_size: 64KiB
max_message_size: 1000
connect_timeout: 1m30s
max_keepalive: 120
max_inflight: 20
max_queued: 7
queue_policy: drop-newest
slow_consumer: drop
retry_interval: 15s
max_session_expiry: 24h
receive_maximum: 100
topic_alias_maximum: 10
outbound_topic_aliases: 5
shared_strategy: hash-topic
max_qos: 1
retain_available: false
response_information: replies/
persistence: true
data_dir: /var/lib/shoal
import_mosquitto_db: /var/lib/mosquitto/mosquitto.db
durability: relaxed
on_damage: refuse
sys_interval: 30s
admin_listen: 0.0.0.0:9000
admin_token: tok
tls_listen: 0.0.0.0:8883
ws_listen: 0.0.0.0:8080
wss_listen: 0.0.0.0:8443
ws_path: /ws
tls_cert_file: /etc/shoal/server.pem
tls_key_file: /etc/shoal/server-key.pem
tls_client_ca_file: /etc/shoal/clients-ca.pem
tls_client_ca_dir: /etc/shoal/clients-ca.d
tls_client_certs: optional
tls_identity: san
tls_min_version: "1.3"
scram_users: {alice: wonderland}
allow_anonymous: false
password_file: PWFILE
http_auth_url: http://127.0.0.1:9/auth
http_auth_timeout: 2s
http_auth_cache: 30s
acl_file: ACLFILE
acl_format: shoal
auth_workers: 3
auth_queue: 50
max_connections: 500
connect_rate: 2.5
connect_burst: 10
publish_rate: 100
publish_burst: 200
max_subscriptions: 40
max_topic_length: 200
max_topic_levels: 9
max_client_id_length: 64
assign_client_ids: false
assigned_id_prefix: auto-
max_queued_bytes: 1MiB
log_level: debug
log_format: json
user: shoal
allow_root: true
log_dest: [stdout, file /var/log/shoal.log]
log_connections: false
pid_file: /run/shoal.pid
bridges:
  - name: central
    addresses: [central.example.com, "10.0.0.2:1884"]
    topics:
      - {pattern: sensors/#, qos: 1, remote_prefix: site7/}
      - {pattern: cmd/#, direction: in, qos: 2, local_prefix: here/}
    remote_client_id: site7
    clean_session: true
cluster:
  name: shoal
  node: a
  listen: 127.0.0.1:7422
  routes: [127.0.0.1:7423, 127.0.0.1:7424]
`

// everyKeyFile returns everyKeyYAML with a password file and an ACL file
// made for it.
func everyKeyFile(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	pw, acl := filepath.Join(dir, "users.pw"), filepath.Join(dir, "topics.acl")
	if err := auth.SetPassword(pw, "bob", "builder", 4); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(acl, []byte("user bob\nallow readwrite bob/#\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return strings.NewReplacer("PWFILE", pw, "ACLFILE", acl).Replace(everyKeyYAML)
}
