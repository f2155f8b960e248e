package config

import (
	"errors"
	"fmt"
	"net"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/shoalmq/shoal/auth"
	"github.com/shoalmq/shoal/bridge"
	"github.com/shoalmq/shoal/broker"
	"github.com/shoalmq/shoal/router"
	"github.com/shoalmq/shoal/store"
	"github.com/shoalmq/shoal/transport"
)

// setting is one config-file key: the one place that says what it is.
//
//   - key is its name in the file, and field the File field it sets (a
//     path such as "Broker.MaxInflight"), through which its value is read
//     back: for the defaults column of README's table, and to tell which
//     keys a reload changed (Changed).
//   - set parses a YAML value into the File; ranges that need other keys
//     are broker.Config.Validate's, whose errors start with the key.
//   - reload says whether SIGHUP applies a new value to a running broker;
//     a test holds broker.Reload to it.
//   - doc is the line README's table gives it (TestREADMESettings keeps
//     the table equal to this list; go test ./config -update rewrites it).
//
// The defaults are the code's (broker.DefaultConfig and defaults), and
// config.example.yaml must equal them key for key (TestExampleIsDefaults).
type setting struct {
	key    string
	field  string
	size   bool // an int counting bytes: shown with a unit
	reload bool
	doc    string
	set    func(f *File, v *yaml.Node) error
}

// settings lists every key a file may hold, in the order of default.yaml.
// It is a function, not a package variable, so that nothing can change the
// table; building it costs a few allocations per Parse.
func settings() []setting {
	return []setting{
		{key: "listen", field: "Broker.Listen", doc: "TCP address of the MQTT listener",
			set: addr(func(f *File) *string { return &f.Broker.Listen }, false)},
		{key: "loops", field: "Broker.Loops", doc: "event loops; 0: one per CPU",
			set: integer(func(f *File) *int { return &f.Broker.Loops })},
		{key: "workers", field: "Broker.Workers", doc: "router workers; 0: one per CPU",
			set: integer(func(f *File) *int { return &f.Broker.Workers })},
		{key: "worker_queue", field: "Broker.WorkerQueue", doc: "messages each router worker may hold; past it QoS 0 is dropped and a QoS 1/2 publisher is paused",
			set: integer(func(f *File) *int { return &f.Broker.WorkerQueue })},
		{key: "coalesce", field: "Broker.Coalesce", doc: "the longest a message to a client written to less than this ago may wait while more work for its loop is already on the way, to go out with the next in one write; 0s: off",
			set: duration(func(f *File) *time.Duration { return &f.Broker.Coalesce })},
		{key: "tcp_nodelay", field: "Broker.TCPNoDelay", doc: "TCP_NODELAY on MQTT connections: each write sent at once; false: Nagle's algorithm",
			set: boolean(func(f *File) *bool { return &f.Broker.TCPNoDelay })},
		{key: "max_packet_size", field: "Broker.MaxPacketSize", size: true, doc: "largest packet accepted from a client",
			set: size(func(f *File) *int { return &f.Broker.MaxPacketSize })},
		{key: "max_message_size", field: "Broker.MaxMessageSize", size: true, doc: "largest PUBLISH payload; a larger message is acknowledged (MQTT 5: 0x83) and dropped, its client kept; 0: no bound but max_packet_size",
			set: size(func(f *File) *int { return &f.Broker.MaxMessageSize })},
		{key: "connect_timeout", field: "Broker.ConnectTimeout", reload: true, doc: "time from accept to CONNECT",
			set: duration(func(f *File) *time.Duration { return &f.Broker.ConnectTimeout })},
		{key: "max_keepalive", field: "Broker.MaxKeepAlive", reload: true, doc: "cap on a client's keep-alive, whole seconds; 0: none",
			set: func(f *File, v *yaml.Node) (err error) {
				f.Broker.MaxKeepAlive, err = keepAliveValue(v)
				return err
			}},
		{key: "max_inflight", field: "Broker.MaxInflight", reload: true, doc: "QoS 1/2 messages sent to a client and not yet acknowledged",
			set: integer(func(f *File) *int { return &f.Broker.MaxInflight })},
		{key: "max_queued", field: "Broker.MaxQueued", reload: true, doc: "QoS 1/2 messages queued for a session beyond its in-flight window",
			set: integer(func(f *File) *int { return &f.Broker.MaxQueued })},
		{key: "max_queued_bytes", field: "Broker.MaxQueuedBytes", size: true, reload: true, doc: "message bytes queued for a session",
			set: size(func(f *File) *int { return &f.Broker.MaxQueuedBytes })},
		{key: "queue_policy", field: "Broker.QueuePolicy", reload: true, doc: "what a full queue drops: drop-oldest or drop-newest",
			set: choice(func(f *File) *broker.QueuePolicy { return &f.Broker.QueuePolicy }, broker.ParseQueuePolicy)},
		{key: "slow_consumer", field: "Broker.SlowConsumer", reload: true, doc: "a connected client with a full queue: disconnect (0x97) or drop",
			set: choice(func(f *File) *broker.SlowConsumerPolicy { return &f.Broker.SlowConsumer }, broker.ParseSlowConsumerPolicy)},
		{key: "retry_interval", field: "Broker.RetryInterval", reload: true, doc: "resend unacknowledged messages to connected 3.x clients after this; 0s: off",
			set: duration(func(f *File) *time.Duration { return &f.Broker.RetryInterval })},
		{key: "max_session_expiry", field: "Broker.MaxSessionExpiry", reload: true, doc: "cap on how long a session outlives its connection; 0s: none",
			set: duration(func(f *File) *time.Duration { return &f.Broker.MaxSessionExpiry })},
		{key: "receive_maximum", field: "Broker.ReceiveMaximum", doc: "Receive Maximum announced to MQTT 5 clients",
			set: uint16Of(func(f *File) *uint16 { return &f.Broker.ReceiveMaximum })},
		{key: "topic_alias_maximum", field: "Broker.TopicAliasMaximum", doc: "highest Topic Alias an MQTT 5 client may use; 0 refuses aliases",
			set: uint16Of(func(f *File) *uint16 { return &f.Broker.TopicAliasMaximum })},
		{key: "outbound_topic_aliases", field: "Broker.OutboundTopicAliases", doc: "topic aliases the broker uses toward a client that accepts them",
			set: uint16Of(func(f *File) *uint16 { return &f.Broker.OutboundTopicAliases })},
		{key: "shared_strategy", field: "Broker.SharedStrategy", doc: "shared subscriptions: round-robin, random, hash-client or hash-topic",
			set: choice(func(f *File) *router.SharedStrategy { return &f.Broker.SharedStrategy }, router.ParseSharedStrategy)},
		{key: "max_qos", field: "Broker.MaxQoS", doc: "highest QoS accepted and granted",
			set: func(f *File, v *yaml.Node) error {
				q, err := intValue(v)
				if err != nil {
					return err
				}
				if q < 0 || q > 2 {
					return fmt.Errorf("%d is outside 0..2", q)
				}
				f.Broker.MaxQoS = byte(q)
				return nil
			}},
		{key: "retain_available", field: "Broker.RetainAvailable", doc: "whether clients may publish retained messages",
			set: boolean(func(f *File) *bool { return &f.Broker.RetainAvailable })},
		{key: "response_information", field: "Broker.ResponseInformation", doc: "Response Information for MQTT 5 clients that ask; \"\": none",
			set: str(func(f *File) *string { return &f.Broker.ResponseInformation })},
		{key: "persistence", field: "Persistence", doc: "keep sessions, queues and retained messages on disk, in data_dir",
			set: boolean(func(f *File) *bool { return &f.Persistence })},
		{key: "data_dir", field: "Broker.DataDir", doc: "directory of the persistent store",
			set: func(f *File, v *yaml.Node) error {
				s, err := stringValue(v)
				if err == nil && s == "" {
					err = errors.New("must not be empty (to keep nothing, set persistence: false)")
				}
				f.Broker.DataDir = s
				return err
			}},
		{key: "import_mosquitto_db", field: "ImportMosquittoDB", doc: "a Mosquitto persistence file (mosquitto.db) read once into a new store in data_dir, never changed; \"\": none",
			set: str(func(f *File) *string { return &f.ImportMosquittoDB })},
		{key: "durability", field: "Broker.Durability", doc: "strict: on disk before acknowledged; relaxed: synced once a second",
			set: choice(func(f *File) *broker.Durability { return &f.Broker.Durability }, broker.ParseDurability)},
		{key: "on_damage", field: "Broker.OnDamage", doc: "a damaged store: salvage (kept beside a fresh one) or refuse to start",
			set: choice(func(f *File) *store.OnDamage { return &f.Broker.OnDamage }, store.ParseOnDamage)},
		{key: "sys_interval", field: "Broker.SysInterval", doc: "how often $SYS topics are published; 0s: never",
			set: duration(func(f *File) *time.Duration { return &f.Broker.SysInterval })},
		{key: "admin_listen", field: "AdminListen", doc: "admin HTTP listener (metrics, API, dashboard); \"\": off",
			set: addr(func(f *File) *string { return &f.AdminListen }, true)},
		{key: "admin_token", field: "AdminToken", reload: true, doc: "bearer token of the admin API; required off loopback",
			set: str(func(f *File) *string { return &f.AdminToken })},
		{key: "tls_listen", field: "Broker.Transports.TLSListen", doc: "MQTT over TLS listener; \"\": off",
			set: addr(func(f *File) *string { return &f.Broker.Transports.TLSListen }, true)},
		{key: "ws_listen", field: "Broker.Transports.WSListen", doc: "MQTT over WebSocket listener; \"\": off",
			set: addr(func(f *File) *string { return &f.Broker.Transports.WSListen }, true)},
		{key: "wss_listen", field: "Broker.Transports.WSSListen", doc: "MQTT over secure WebSocket listener; \"\": off",
			set: addr(func(f *File) *string { return &f.Broker.Transports.WSSListen }, true)},
		{key: "ws_path", field: "Broker.Transports.WSPath", doc: "HTTP path of the WebSocket listeners; \"*\": any path, as Mosquitto",
			set: str(func(f *File) *string { return &f.Broker.Transports.WSPath })},
		{key: "tls_cert_file", field: "Broker.Transports.CertFile", reload: true, doc: "server certificate (PEM); re-read on SIGHUP",
			set: str(func(f *File) *string { return &f.Broker.Transports.CertFile })},
		{key: "tls_key_file", field: "Broker.Transports.KeyFile", reload: true, doc: "its private key (PEM)",
			set: str(func(f *File) *string { return &f.Broker.Transports.KeyFile })},
		{key: "tls_client_ca_file", field: "Broker.Transports.ClientCAFile", reload: true, doc: "CAs that sign client certificates (PEM)",
			set: str(func(f *File) *string { return &f.Broker.Transports.ClientCAFile })},
		{key: "tls_client_ca_dir", field: "Broker.Transports.ClientCADir", reload: true, doc: "directory of more such CA files (PEM), as OpenSSL's capath; \"\": none",
			set: str(func(f *File) *string { return &f.Broker.Transports.ClientCADir })},
		{key: "tls_client_certs", field: "Broker.Transports.ClientCerts", reload: true, doc: "client certificates: none, optional or require",
			set: choice(func(f *File) *transport.ClientCertPolicy { return &f.Broker.Transports.ClientCerts }, transport.ParseClientCertPolicy)},
		{key: "tls_identity", field: "Broker.Transports.Identity", reload: true, doc: "user name from a client certificate: none, cn or san",
			set: choice(func(f *File) *transport.IdentitySource { return &f.Broker.Transports.Identity }, transport.ParseIdentitySource)},
		{key: "tls_min_version", field: "Broker.Transports.MinVersion", reload: true, doc: "oldest TLS version accepted: 1.2 or 1.3",
			set: func(f *File, v *yaml.Node) error {
				// "1.2" reads as a YAML number; both spellings are meant.
				if !isScalar(v, "!!str") && !isScalar(v, "!!float") {
					return wrongType(`"1.2" or "1.3"`, v)
				}
				var err error
				f.Broker.Transports.MinVersion, err = transport.ParseTLSVersion(v.Value)
				return err
			}},
		{key: "scram_users", field: "ScramUsers", doc: "MQTT 5 enhanced authentication (SCRAM-SHA-256): user: password",
			set: func(f *File, v *yaml.Node) (err error) {
				f.Broker.AuthMethods, f.ScramUsers, err = scramUsersValue(v)
				return err
			}},
		{key: "allow_anonymous", field: "Broker.AllowAnonymous", reload: true, doc: "clients without credentials: loopback (while every listener is on loopback), true or false",
			set: func(f *File, v *yaml.Node) (err error) {
				f.Broker.AllowAnonymous, err = anonymousValue(v)
				return err
			}},
		{key: "password_file", field: "PasswordFile", reload: true, doc: "file of user:hash lines; re-read on SIGHUP",
			set: str(func(f *File) *string { return &f.PasswordFile })},
		{key: "http_auth_url", field: "HTTPAuth.URL", reload: true, doc: "HTTP authentication back end; \"\": off",
			set: str(func(f *File) *string { return &f.HTTPAuth.URL })},
		{key: "http_auth_timeout", field: "HTTPAuth.Timeout", reload: true, doc: "time the back end has to answer",
			set: func(f *File, v *yaml.Node) (err error) {
				f.HTTPAuth.Timeout, err = durationValue(v)
				if err == nil && f.HTTPAuth.Timeout <= 0 {
					err = errors.New("must be positive")
				}
				return err
			}},
		{key: "http_auth_cache", field: "HTTPAuth.CacheTTL", reload: true, doc: "how long its answers are kept; 0s: not at all",
			set: duration(func(f *File) *time.Duration { return &f.HTTPAuth.CacheTTL })},
		{key: "acl_file", field: "ACLFile", reload: true, doc: "file of topic rights; re-read on SIGHUP",
			set: str(func(f *File) *string { return &f.ACLFile })},
		{key: "acl_format", field: "ACLFormat", reload: true, doc: "syntax of acl_file: auto (told from the file), shoal or mosquitto",
			set: choice(func(f *File) *auth.ACLFormat { return &f.ACLFormat }, auth.ParseACLFormat)},
		{key: "auth_workers", field: "Broker.AuthWorkers", doc: "logins checked at once; 0: one per CPU",
			set: integer(func(f *File) *int { return &f.Broker.AuthWorkers })},
		{key: "auth_queue", field: "Broker.AuthQueue", doc: "logins that may wait; past it CONNACK 0x89",
			set: integer(func(f *File) *int { return &f.Broker.AuthQueue })},
		{key: "max_connections", field: "Broker.MaxConnections", reload: true, doc: "open connections; 0: the file limit less 256",
			set: integer(func(f *File) *int { return &f.Broker.MaxConnections })},
		{key: "connect_rate", field: "Broker.ConnectRate", reload: true, doc: "connections a second from one address; 0: no limit",
			set: rate(func(f *File) *float64 { return &f.Broker.ConnectRate })},
		{key: "connect_burst", field: "Broker.ConnectBurst", reload: true, doc: "connections at once from one address",
			set: integer(func(f *File) *int { return &f.Broker.ConnectBurst })},
		{key: "publish_rate", field: "Broker.PublishRate", reload: true, doc: "PUBLISH packets a second from one client (new connections); 0: no limit",
			set: rate(func(f *File) *float64 { return &f.Broker.PublishRate })},
		{key: "publish_burst", field: "Broker.PublishBurst", reload: true, doc: "PUBLISH packets at once from one client",
			set: integer(func(f *File) *int { return &f.Broker.PublishBurst })},
		{key: "max_subscriptions", field: "Broker.MaxSubscriptions", reload: true, doc: "subscriptions of one session",
			set: integer(func(f *File) *int { return &f.Broker.MaxSubscriptions })},
		{key: "max_topic_length", field: "Broker.MaxTopicLength", reload: true, doc: "bytes in a topic name or filter",
			set: integer(func(f *File) *int { return &f.Broker.MaxTopicLength })},
		{key: "max_topic_levels", field: "Broker.MaxTopicLevels", reload: true, doc: "levels in a topic name or filter",
			set: integer(func(f *File) *int { return &f.Broker.MaxTopicLevels })},
		{key: "max_client_id_length", field: "Broker.MaxClientIDLength", reload: true, doc: "bytes in a client identifier",
			set: integer(func(f *File) *int { return &f.Broker.MaxClientIDLength })},
		{key: "assign_client_ids", field: "Broker.AssignClientIDs", doc: "give a client connecting with an empty client identifier one (else CONNACK 0x85)",
			set: boolean(func(f *File) *bool { return &f.Broker.AssignClientIDs })},
		{key: "assigned_id_prefix", field: "Broker.AssignedIDPrefix", doc: "start of the client identifiers the broker assigns",
			set: str(func(f *File) *string { return &f.Broker.AssignedIDPrefix })},
		{key: "log_level", field: "LogLevel", reload: true, doc: "trace, debug, info, warn or error",
			set: func(f *File, v *yaml.Node) error {
				s, err := stringValue(v)
				if err != nil {
					return err
				}
				f.LogLevel, err = ParseLogLevel(s)
				return err
			}},
		{key: "log_format", field: "LogFormat", reload: true, doc: "console, json, or auto (console on a terminal)",
			set: choice(func(f *File) *LogFormat { return &f.LogFormat }, ParseLogFormat)},
		{key: "log_dest", field: "LogDest", reload: true, doc: "where logs go: a list of stderr, stdout, syslog, \"file PATH\" (reopened on SIGHUP); none alone for nowhere",
			set: func(f *File, v *yaml.Node) (err error) {
				f.LogDest, err = logDestValue(v)
				return err
			}},
		{key: "log_connections", field: "Broker.LogConnections", doc: "log each client's connection and disconnection (info level)",
			set: boolean(func(f *File) *bool { return &f.Broker.LogConnections })},
		{key: "pid_file", field: "PIDFile", doc: "file the process id is written to at start and removed from at exit; \"\": none",
			set: str(func(f *File) *string { return &f.PIDFile })},
		{key: "user", field: "User", doc: "started as root: the account to switch to once listeners are bound; \"\": stay",
			set: str(func(f *File) *string { return &f.User })},
		{key: "allow_root", field: "AllowRoot", doc: "whether root may serve a listener that is not on loopback",
			set: boolean(func(f *File) *bool { return &f.AllowRoot })},
		{key: "bridges", field: "Broker.Bridges", doc: "bridges to other brokers, as Mosquitto's connection sections (see [Bridges](#bridges)); started with the broker",
			set: func(f *File, v *yaml.Node) (err error) {
				f.Broker.Bridges, err = bridgesValue(v)
				return err
			}},
		{key: "cluster", field: "Broker.Cluster", doc: "this broker as a node of a cluster: name, node, listen, advertise, routes, replicas, nats_url, rescue_after (see [Cluster](#cluster)); {}: none",
			set: func(f *File, v *yaml.Node) (err error) {
				f.Broker.Cluster, err = clusterValue(v)
				return err
			}},
	}
}

// The setters of the common kinds of value: each reads the YAML value
// with the matching reader of values.go into the field ptr names.

func str(ptr func(*File) *string) func(*File, *yaml.Node) error {
	return func(f *File, v *yaml.Node) (err error) {
		*ptr(f), err = stringValue(v)
		return err
	}
}

func integer(ptr func(*File) *int) func(*File, *yaml.Node) error {
	return func(f *File, v *yaml.Node) (err error) {
		*ptr(f), err = intValue(v)
		return err
	}
}

func uint16Of(ptr func(*File) *uint16) func(*File, *yaml.Node) error {
	return func(f *File, v *yaml.Node) (err error) {
		*ptr(f), err = uint16Value(v)
		return err
	}
}

func size(ptr func(*File) *int) func(*File, *yaml.Node) error {
	return func(f *File, v *yaml.Node) (err error) {
		*ptr(f), err = sizeValue(v)
		return err
	}
}

func duration(ptr func(*File) *time.Duration) func(*File, *yaml.Node) error {
	return func(f *File, v *yaml.Node) (err error) {
		*ptr(f), err = durationValue(v)
		return err
	}
}

func boolean(ptr func(*File) *bool) func(*File, *yaml.Node) error {
	return func(f *File, v *yaml.Node) (err error) {
		*ptr(f), err = boolValue(v)
		return err
	}
}

func rate(ptr func(*File) *float64) func(*File, *yaml.Node) error {
	return func(f *File, v *yaml.Node) (err error) {
		*ptr(f), err = rateValue(v)
		return err
	}
}

// choice reads a string through parse, the type's own ParseX.
func choice[T any](ptr func(*File) *T, parse func(string) (T, error)) func(*File, *yaml.Node) error {
	return func(f *File, v *yaml.Node) error {
		s, err := stringValue(v)
		if err != nil {
			return err
		}
		*ptr(f), err = parse(s)
		return err
	}
}

// addr reads a listener address: host:port with a port number, or "" (off)
// where empty is allowed.
func addr(ptr func(*File) *string, empty bool) func(*File, *yaml.Node) error {
	return func(f *File, v *yaml.Node) error {
		s, err := stringValue(v)
		if err != nil {
			return err
		}
		if s == "" {
			if !empty {
				return errors.New("must not be empty")
			}
			*ptr(f) = ""
			return nil
		}
		if err := checkAddr(s, empty); err != nil {
			return err
		}
		*ptr(f) = s
		return nil
	}
}

// checkAddr checks a listener address: host:port, the port a number in
// 0..65535 (0: any free port). The --listen and --admin-listen flags use
// it too.
func checkAddr(s string, empty bool) error {
	off := ""
	if empty {
		off = ` or "" (off)`
	}
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("%q is not host:port%s", s, off)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%q: port %q is not a number in 0..65535", s, port)
	}
	return nil
}

// anonymousValue reads allow_anonymous: true, false or loopback.
func anonymousValue(n *yaml.Node) (broker.Anonymous, error) {
	if isScalar(n, "!!str") && n.Value == "loopback" {
		return broker.AnonymousLoopback, nil
	}
	if isScalar(n, "!!bool") {
		if b, err := boolValue(n); err == nil {
			if b {
				return broker.AnonymousAllow, nil
			}
			return broker.AnonymousDeny, nil
		}
	}
	return 0, wrongType("true, false or loopback", n)
}

// value returns the value s holds in f, as the file would spell it: the
// defaults column of README's table, and the comparison Changed makes.
func (s setting) value(f *File) string {
	v := reflect.ValueOf(f).Elem()
	for _, name := range strings.Split(s.field, ".") {
		v = v.FieldByName(name)
	}
	switch x := v.Interface().(type) {
	case string:
		if x == "" {
			return `""`
		}
		return x
	case time.Duration:
		return x.String()
	case int:
		if s.size {
			return formatSize(x)
		}
		return strconv.Itoa(x)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case fmt.Stringer:
		return x.String()
	case map[string]string: // scram_users: names, and whether passwords changed
		return scramShown(x)
	case []string:
		return "[" + strings.Join(x, ", ") + "]"
	case *broker.ClusterConfig:
		if x == nil {
			return "{}"
		}
		return fmt.Sprintf("%+v", *x)
	case bridge.Config: // every field: a change is a change, passwords included (never shown: Changed gives keys)
		if len(x.Connections) == 0 {
			return "[]"
		}
		return fmt.Sprintf("%+v", x.Connections)
	}
	return fmt.Sprint(v.Interface())
}

// formatSize writes n bytes as the file would: with the largest binary
// unit that divides it.
func formatSize(n int) string {
	for _, u := range []struct {
		name string
		mult int
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n != 0 && n%u.mult == 0 {
			return strconv.Itoa(n/u.mult) + u.name
		}
	}
	return strconv.Itoa(n)
}

// scramShown is scram_users as Changed compares it: each user with a
// digest of the password, so that a new password counts as a change
// without being shown.
func scramShown(users map[string]string) string {
	if len(users) == 0 {
		return "{}"
	}
	names := make([]string, 0, len(users))
	for u := range users {
		names = append(names, u)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, u := range names {
		fmt.Fprintf(&b, "%s:%s ", u, users[u])
	}
	return strings.TrimSpace(b.String())
}

// Changed compares two parsed files, the running one and a new one, and
// returns the keys whose values differ: applied, those SIGHUP applies to
// a running broker; restart, those that wait for a restart.
func Changed(old, new File) (applied, restart []string) {
	for _, s := range settings() {
		if s.value(&old) == s.value(&new) {
			continue
		}
		if s.reload {
			applied = append(applied, s.key)
		} else {
			restart = append(restart, s.key)
		}
	}
	return applied, restart
}
