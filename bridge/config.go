package bridge

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/shoalmq/shoal/codec"
)

// Config is every bridge of a broker: one Connection per remote broker.
type Config struct {
	Connections []Connection
}

// Direction says which way a topic's messages cross a bridge.
type Direction uint8

const (
	Out  Direction = iota // local to remote: Mosquitto's default
	In                    // remote to local
	Both                  // each way
)

func (d Direction) String() string {
	switch d {
	case Out:
		return "out"
	case In:
		return "in"
	case Both:
		return "both"
	}
	return fmt.Sprintf("Direction(%d)", uint8(d))
}

// ParseDirection reads "out", "in" or "both".
func ParseDirection(s string) (Direction, error) {
	switch s {
	case "out":
		return Out, nil
	case "in":
		return In, nil
	case "both":
		return Both, nil
	}
	return 0, fmt.Errorf("%q is not out, in or both", s)
}

func (d Direction) out() bool { return d == Out || d == Both }
func (d Direction) in() bool  { return d == In || d == Both }

// Protocol is the MQTT version a bridge speaks to its remote broker, in
// Mosquitto's spelling (bridge_protocol_version).
type Protocol string

const (
	MQTT31  Protocol = "mqttv31"
	MQTT311 Protocol = "mqttv311" // Mosquitto's default
	MQTT5   Protocol = "mqttv50"
)

func (p Protocol) level() byte {
	switch p {
	case MQTT31:
		return codec.V31
	case MQTT5:
		return codec.V5
	}
	return codec.V311
}

// Topic is one `topic` line of a bridge: which messages cross it, which
// way, at what QoS, and how their topics are renamed on the way. Mosquitto:
//
//	topic PATTERN [[[out | in | both] QOS] LOCAL_PREFIX REMOTE_PREFIX]
//
// The bridge subscribes to LocalPrefix+Pattern on the local broker (out)
// and to RemotePrefix+Pattern on the remote one (in). A message crossing
// has the prefix of the side it came from removed from its topic and the
// prefix of the side it goes to added. An empty Pattern (Mosquitto's "")
// renames one topic: LocalPrefix on one side is RemotePrefix on the other,
// and both prefixes are then required. An empty prefix is no prefix
// (Mosquitto's "" too).
type Topic struct {
	Pattern      string
	Direction    Direction
	QoS          byte
	LocalPrefix  string
	RemotePrefix string
}

// Local and Remote are the filters the bridge subscribes to on each side.
func (t Topic) Local() string  { return t.LocalPrefix + t.Pattern }
func (t Topic) Remote() string { return t.RemotePrefix + t.Pattern }

// TLS configures a bridge's TLS connection to its remote broker; the
// bridge uses TLS when CAFile is set (Mosquitto needs bridge_cafile or
// bridge_capath for it too).
type TLS struct {
	CAFile   string // bridge_cafile: CAs that sign the remote's certificate (PEM)
	CertFile string // bridge_certfile: this bridge's certificate, if the remote asks for one
	KeyFile  string // bridge_keyfile: its private key
	// Insecure skips the check that the remote's certificate names the
	// host it was reached at (bridge_insecure): for tests, never for
	// production. The chain is still verified.
	Insecure bool
}

// Backoff is restart_timeout: how long a bridge waits before it connects
// again after a failure. With Cap 0 it always waits Base (Mosquitto's
// "restart_timeout 20"); otherwise each wait is drawn at random between
// Base and three times the previous one, at most Cap ("decorrelated
// jitter", Mosquitto's "restart_timeout 5 30"), and a connection that
// succeeds starts again from Base.
type Backoff struct {
	Base time.Duration
	Cap  time.Duration
}

// Connection is one bridge: a client of one remote broker that forwards
// messages between it and the local one. Build one with DefaultConnection:
// the zero value has TryPrivate and Notifications off, unlike Mosquitto.
type Connection struct {
	// Name (connection) names the bridge in logs, stats and its default
	// client ids.
	Name string
	// Addresses (address) are the remote broker's "host[:port]" (port
	// 1883 when absent); on a failure the bridge tries the next.
	Addresses []string
	// Topics (topic) are what crosses the bridge; at least one.
	Topics []Topic
	// RemoteUsername and RemotePassword (remote_username,
	// remote_password) log in to the remote broker. A password needs a
	// user name, as in Mosquitto.
	RemoteUsername string
	RemotePassword string
	// RemoteClientID (remote_clientid) is the bridge's client id on the
	// remote broker. Default, as Mosquitto's: "HOSTNAME.NAME".
	RemoteClientID string
	// LocalClientID (local_clientid) is its session's id on the local
	// broker, where messages wait while the remote is down. Default:
	// "local." + RemoteClientID.
	LocalClientID string
	// Protocol (bridge_protocol_version): default mqttv311.
	Protocol Protocol
	// CleanSession (cleansession): true drops the bridge's session on the
	// remote broker at each connection, and with it the messages the
	// remote kept for it while the link was down. Default false. The
	// local session is always kept (local_cleansession is not supported).
	CleanSession bool
	// TryPrivate (try_private) marks the CONNECT of an MQTT 3.x bridge
	// as a bridge's (protocol level | 0x80), so that a Mosquitto or Shoal
	// remote does not send the bridge's own messages back to it and keeps
	// retained messages retained. A remote that refuses the mark
	// (CONNACK "unacceptable protocol version") is asked again without it.
	// Default true. MQTT 5 bridges ask for the same with subscription
	// options and never send the mark.
	TryPrivate bool
	// Notifications (notifications) publishes the bridge's state, retained,
	// "1" up and "0" down, on NotificationTopic, locally and on the remote
	// broker; the remote's "0" is the bridge's will. Default true.
	Notifications bool
	// NotificationTopic (notification_topic): default
	// "$SYS/broker/connection/" + RemoteClientID + "/state".
	NotificationTopic string
	// TLS (bridge_cafile, bridge_certfile, bridge_keyfile, bridge_insecure).
	TLS TLS
	// KeepAlive (keepalive_interval): default 60 s, at least 5 s.
	KeepAlive time.Duration
	// RestartTimeout (restart_timeout): default 5 s to 30 s with jitter.
	RestartTimeout Backoff
}

// Defaults, as Mosquitto's.
const (
	DefaultPort         = 1883
	DefaultKeepAlive    = 60 * time.Second
	MinKeepAlive        = 5 * time.Second
	DefaultRestartBase  = 5 * time.Second
	DefaultRestartCap   = 30 * time.Second
	defaultNotifyPrefix = "$SYS/broker/connection/"
)

// DefaultConnection is a Connection named name with Mosquitto's defaults;
// Addresses and Topics are still to be given.
func DefaultConnection(name string) Connection {
	return Connection{
		Name:           name,
		Protocol:       MQTT311,
		TryPrivate:     true,
		Notifications:  true,
		KeepAlive:      DefaultKeepAlive,
		RestartTimeout: Backoff{Base: DefaultRestartBase, Cap: DefaultRestartCap},
	}
}

// ConfigError is a problem Validate found in one connection. It names the
// Mosquitto directive that sets the value at fault, and which connection
// and topic, so that a configuration loader can point at the line or key
// that set it.
type ConfigError struct {
	Index     int    // the connection's place in Config.Connections
	Name      string // its name
	Directive string // "connection", "address", "topic", "keepalive_interval", ...
	Topic     int    // with Directive "topic": the place in Topics of the one at fault; -1 for none
	Err       error
}

// Error reads "bridge NAME: DIRECTIVE: problem".
func (e *ConfigError) Error() string {
	return fmt.Sprintf("bridge %q: %s: %v", e.Name, e.Directive, e.Err)
}

// Unwrap returns the problem.
func (e *ConfigError) Unwrap() error { return e.Err }

// Directives returns the directives whose lines (or YAML keys) the error
// is about, the first given one being where a reader should look:
// Directive, then those that go with it when it is not given —
// bridge_certfile and bridge_keyfile go together; TLS needs bridge_cafile;
// the default local_clientid is made from remote_clientid. Safe for
// concurrent use.
func (e *ConfigError) Directives() []string {
	switch e.Directive {
	case "bridge_certfile":
		return []string{e.Directive, "bridge_keyfile"}
	case "bridge_cafile":
		return []string{e.Directive, "bridge_certfile", "bridge_keyfile", "bridge_insecure"}
	case "local_clientid":
		return []string{e.Directive, "remote_clientid"}
	}
	return []string{e.Directive}
}

// Validate checks every connection; an error is a *ConfigError, naming
// the connection and the Mosquitto directive at fault.
func (c Config) Validate() error {
	names := map[string]bool{}
	ids := map[string]string{}
	for i := range c.Connections {
		cn, err := c.Connections[i].withDefaults()
		if err != nil {
			err.(*ConfigError).Index = i
			return err
		}
		fail := func(directive, format string, a ...any) error {
			return &ConfigError{Index: i, Name: cn.Name, Directive: directive, Topic: -1, Err: fmt.Errorf(format, a...)}
		}
		if names[cn.Name] {
			return fail("connection", "the name is used twice")
		}
		names[cn.Name] = true
		if other, ok := ids[cn.LocalClientID]; ok {
			return fail("local_clientid", "%q is bridge %q's too", cn.LocalClientID, other)
		}
		ids[cn.LocalClientID] = cn.Name
	}
	return nil
}

// withDefaults checks cn and fills in what it leaves to defaults: the
// ports of its addresses, its client ids, its notification topic. Its
// errors are *ConfigError, with Index left to Validate.
func (cn Connection) withDefaults() (Connection, error) {
	fail := func(directive, format string, a ...any) (Connection, error) {
		return cn, &ConfigError{Name: cn.Name, Directive: directive, Topic: -1, Err: fmt.Errorf(format, a...)}
	}
	if cn.Name == "" {
		return fail("connection", "a bridge needs a name")
	}
	if strings.ContainsAny(cn.Name, "/+#") {
		return fail("connection", "%q holds a topic character ('/', '+' or '#')", cn.Name)
	}
	if len(cn.Addresses) == 0 {
		return fail("address", "a bridge needs the remote broker's address")
	}
	addrs := make([]string, len(cn.Addresses))
	for i, a := range cn.Addresses {
		full, err := withPort(a)
		if err != nil {
			return fail("address", "%v", err)
		}
		addrs[i] = full
	}
	cn.Addresses = addrs
	if len(cn.Topics) == 0 {
		return fail("topic", "a bridge needs at least one topic")
	}
	cn.Topics = append([]Topic(nil), cn.Topics...)
	for i, t := range cn.Topics {
		if err := t.check(); err != nil {
			return cn, &ConfigError{Name: cn.Name, Directive: "topic", Topic: i, Err: err}
		}
	}
	switch cn.Protocol {
	case "":
		cn.Protocol = MQTT311
	case MQTT31, MQTT311, MQTT5:
	default:
		return fail("bridge_protocol_version", "%q is not mqttv31, mqttv311 or mqttv50", cn.Protocol)
	}
	if cn.RemotePassword != "" && cn.RemoteUsername == "" {
		return fail("remote_password", "needs remote_username")
	}
	if cn.RemoteClientID == "" {
		host, err := os.Hostname()
		if err != nil || host == "" {
			return fail("remote_clientid", "not set, and the host name to make one from is unknown: %v", err)
		}
		cn.RemoteClientID = host + "." + cn.Name
	}
	if cn.LocalClientID == "" {
		cn.LocalClientID = "local." + cn.RemoteClientID
	}
	if cn.LocalClientID == cn.RemoteClientID {
		// A bridge to its own broker would take its own session over.
		return fail("local_clientid", "%q is the remote_clientid too", cn.LocalClientID)
	}
	if cn.NotificationTopic == "" {
		cn.NotificationTopic = defaultNotifyPrefix + cn.RemoteClientID + "/state"
	}
	if err := codec.CheckTopicName([]byte(cn.NotificationTopic)); err != nil {
		return fail("notification_topic", "%q: %v", cn.NotificationTopic, err)
	}
	if (cn.TLS.CertFile == "") != (cn.TLS.KeyFile == "") {
		return fail("bridge_certfile", "bridge_certfile and bridge_keyfile go together")
	}
	if cn.TLS.CAFile == "" && (cn.TLS.CertFile != "" || cn.TLS.Insecure) {
		return fail("bridge_cafile", "TLS needs bridge_cafile")
	}
	switch {
	case cn.KeepAlive == 0:
		cn.KeepAlive = DefaultKeepAlive
	case cn.KeepAlive < MinKeepAlive:
		return fail("keepalive_interval", "%v is under the minimum of %v", cn.KeepAlive, MinKeepAlive)
	case cn.KeepAlive > 65535*time.Second:
		return fail("keepalive_interval", "%v is over 65535 s", cn.KeepAlive)
	}
	switch b := cn.RestartTimeout; {
	case b.Base == 0 && b.Cap == 0:
		cn.RestartTimeout = Backoff{Base: DefaultRestartBase, Cap: DefaultRestartCap}
	case b.Base <= 0:
		return fail("restart_timeout", "the base must be above 0")
	case b.Cap != 0 && b.Cap < b.Base:
		return fail("restart_timeout", "the cap %v is under the base %v", b.Cap, b.Base)
	}
	return cn, nil
}

// withPort returns "host:port" for a, adding the default port when a has
// none. An IPv6 address needs its port, and brackets ("[fe80::1]:1883");
// Mosquitto writes it without them ("fe80::1:1883"), and the
// mosquitto.conf translation adds them.
func withPort(a string) (string, error) {
	if a == "" {
		return "", errors.New("empty address")
	}
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		if strings.Contains(a, ":") {
			return "", fmt.Errorf("%q: %v", a, err)
		}
		return net.JoinHostPort(a, strconv.Itoa(DefaultPort)), nil
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("%q: port %q is not a number in 1..65535", a, port)
	}
	if host == "" {
		return "", fmt.Errorf("%q: no host", a)
	}
	return a, nil
}

// check validates a topic line as Mosquitto does: prefixes are topic
// names (no wildcards), prefix and pattern together are a filter, an
// empty pattern needs both prefixes.
func (t Topic) check() error {
	if t.Direction > Both {
		return fmt.Errorf("direction %v is not out, in or both", t.Direction)
	}
	if t.QoS > 2 {
		return fmt.Errorf("%q: QoS %d is not 0, 1 or 2", t.Pattern, t.QoS)
	}
	for _, p := range []struct{ name, v string }{{"local", t.LocalPrefix}, {"remote", t.RemotePrefix}} {
		if p.v != "" && codec.CheckTopicName([]byte(p.v)) != nil {
			return fmt.Errorf("%s prefix %q is not a valid topic (no wildcards)", p.name, p.v)
		}
	}
	if t.Pattern == "" && (t.LocalPrefix == "" || t.RemotePrefix == "") {
		return errors.New(`an empty pattern ("") needs both a local and a remote prefix`)
	}
	if codec.IsShared([]byte(t.Pattern)) {
		return fmt.Errorf("%q: a shared subscription cannot be bridged", t.Pattern)
	}
	for _, f := range []string{t.Local(), t.Remote()} {
		if err := codec.CheckFilter([]byte(f)); err != nil {
			return fmt.Errorf("%q: %v", f, err)
		}
	}
	return nil
}
