package mosqconf

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/shoalmq/shoal/bridge"
)

// A mosquitto.conf's bridges, read as Mosquitto 2.0 reads them
// (mosquitto.conf(5), "Configuring Bridges", and its src/conf.c): a
// connection line starts a bridge, and every bridge directive after it, up
// to the next connection line or the end of the file, is that bridge's.
// Other directives may come between them and do not end it; a bridge
// directive with no connection line before it in its file is an error.
//
// Each bridge becomes a bridge.Connection, the type that mirrors
// Mosquitto's bridge directives field for field, starting from Mosquitto's
// defaults (bridge.DefaultConnection). Its values are checked by
// bridge.Config.Validate, the checks a YAML bridges key goes through too,
// and an error is placed at the line of the directive it names.

// mbridge is one bridge of the file.
type mbridge struct {
	at     mline // its connection line
	cn     bridge.Connection
	lines  map[string]mline // the last line of each directive, by its name in package bridge (clientid: remote_clientid)
	topics []mline          // its topic lines, in order
}

// Reasons shared by several refused bridge directives.
const (
	whyBridgeSession = "the bridge's session on this broker is always kept, across reconnections and restarts " +
		"(it holds what waits for the remote broker)"
	whyBridgeLocalAuth = "the bridge's session on this broker is admitted without credentials, and acl_file does " +
		"not apply to it"
)

// bridgeDirectives are the directives of mosquitto.conf(5)'s "Configuring
// Bridges" but connection: how each is read into the current bridge.
func bridgeDirectives() map[string]directive {
	m := map[string]directive{
		"address": {kind: kBridge, do: (*translator).readBridgeAddress},
		"topic":   {kind: kBridge, do: (*translator).readBridgeTopic},
		"bridge_protocol_version": bridgeString("bridge_protocol_version", func(cn *bridge.Connection, v string) {
			cn.Protocol = bridge.Protocol(v) // bridge.Config.Validate names the versions
		}),
		"remote_clientid":    bridgeString("remote_clientid", func(cn *bridge.Connection, v string) { cn.RemoteClientID = v }),
		"local_clientid":     bridgeString("local_clientid", func(cn *bridge.Connection, v string) { cn.LocalClientID = v }),
		"remote_username":    bridgeString("remote_username", func(cn *bridge.Connection, v string) { cn.RemoteUsername = v }),
		"remote_password":    bridgeString("remote_password", func(cn *bridge.Connection, v string) { cn.RemotePassword = v }),
		"notification_topic": bridgeString("notification_topic", func(cn *bridge.Connection, v string) { cn.NotificationTopic = v }),
		"bridge_cafile":      bridgeString("bridge_cafile", func(cn *bridge.Connection, v string) { cn.TLS.CAFile = v }),
		"bridge_certfile":    bridgeString("bridge_certfile", func(cn *bridge.Connection, v string) { cn.TLS.CertFile = v }),
		"bridge_keyfile":     bridgeString("bridge_keyfile", func(cn *bridge.Connection, v string) { cn.TLS.KeyFile = v }),
		"cleansession":       bridgeBool(func(cn *bridge.Connection, v bool) { cn.CleanSession = v }),
		"try_private":        bridgeBool(func(cn *bridge.Connection, v bool) { cn.TryPrivate = v }),
		"notifications":      bridgeBool(func(cn *bridge.Connection, v bool) { cn.Notifications = v }),
		"bridge_insecure":    bridgeBool(func(cn *bridge.Connection, v bool) { cn.TLS.Insecure = v }),
		"round_robin":        bridgeBool(func(*bridge.Connection, bool) {}), // resolveBridges compares it with the addresses
		"keepalive_interval": {kind: kBridge, do: func(t *translator, d mline) error {
			v, err := d.integer()
			switch {
			case err != nil:
				return err
			case v > 65535:
				return d.errorf("%d is over 65535", v)
			case v < 5:
				t.warn(d, fmt.Sprintf("%d is under 5 seconds: 5 taken (as Mosquitto does)", v))
				v = 5
			}
			t.bridge.cn.KeepAlive = time.Duration(v) * time.Second
			t.bridge.lines["keepalive_interval"] = d
			return nil
		}},
		"restart_timeout": {kind: kBridge, do: (*translator).readRestartTimeout},
		"start_type": {kind: kBridge, do: func(t *translator, d mline) error {
			w, err := d.word()
			switch {
			case err != nil:
				return err
			case w == "lazy" || w == "once":
				t.unsupported(d, "a bridge starts with the broker and always connects again after a failure (automatic)")
			case w != "automatic":
				return d.errorf("%q is not automatic, lazy or once (Mosquitto refuses it too)", w)
			}
			return nil
		}},
		// Only for start_type lazy, which is refused: read, as Mosquitto
		// reads them, and without effect, as in Mosquitto without lazy.
		"idle_timeout": {kind: kBridge, do: func(_ *translator, d mline) error { return readInt(d) }},
		"threshold":    {kind: kBridge, do: func(_ *translator, d mline) error { return readInt(d) }},

		"local_cleansession":         bridgeOnly(false, whyBridgeSession),
		"local_username":             refuse(kBridge, whyBridgeLocalAuth),
		"local_password":             refuse(kBridge, whyBridgeLocalAuth),
		"bridge_attempt_unsubscribe": bridgeOnly(false, "Shoal's bridge sends no UNSUBSCRIBE for its out topics; to clear a remote session's old subscriptions, connect once with cleansession true"),
		"bridge_outgoing_retain":     bridgeOnly(true, "Shoal's bridge forwards the retain flag as it comes (clearing it only for an MQTT 5 remote that says it takes no retained messages)"),
		"notifications_local_only":   bridgeOnly(false, "Shoal's bridge publishes its state on both brokers (on the remote as its will too)"),
		"bridge_require_ocsp":        bridgeOnly(false, "Shoal's bridge does not ask for OCSP"),
		"bridge_max_packet_size": {kind: kBridge, do: func(t *translator, d mline) error {
			v, err := d.integer()
			if err == nil && v > 0 {
				t.unsupported(d, "Shoal's bridge bounds what it sends by the remote's own Maximum Packet Size (MQTT 5) only")
			}
			return err
		}},
		"bridge_tls_version": {kind: kBridge, do: func(t *translator, d mline) error {
			w, err := d.str()
			switch {
			case err != nil:
				return err
			case w == "tlsv1.3":
				t.unsupported(d, "Shoal's bridge speaks TLS 1.2 or 1.3, whichever the remote takes, and no minimum can be set")
			case w == "tlsv1.1":
				t.unsupported(d, "Shoal's bridge speaks TLS 1.2 and 1.3 only: RFC 8996 deprecates TLS 1.1")
			case w != "tlsv1.2": // Shoal's: TLS 1.2 at least
				return d.errorf("%q is not tlsv1.3, tlsv1.2 or tlsv1.1", w)
			}
			return nil
		}},
		"bridge_capath":       refuse(kBridge, "a bridge takes its CAs from one file: put the directory's certificates in one and name it with bridge_cafile"),
		"bridge_alpn":         refuse(kBridge, "Shoal's bridge sends no ALPN protocol"),
		"bridge_bind_address": refuse(kBridge, "Shoal's bridge connects from the address the system chooses"),
		"bridge_identity":     refuse(kBridge, whyPSK),
		"bridge_psk":          refuse(kBridge, whyPSK),
	}
	// The old spellings, which Mosquitto 2 still reads.
	m["addresses"] = m["address"]
	m["clientid"] = m["remote_clientid"]
	m["username"] = m["remote_username"]
	m["password"] = m["remote_password"]
	return m
}

// readConnection reads "connection NAME": a new bridge, current until the
// next connection line or the end of the file.
func (t *translator) readConnection(d mline) error {
	name, err := d.word()
	if err != nil {
		return err
	}
	t.bridge = &mbridge{at: d, cn: bridge.DefaultConnection(name), lines: map[string]mline{}}
	t.bridges = append(t.bridges, t.bridge)
	return nil
}

// bridgeString makes a string directive of the current bridge, which may
// be given once per bridge (Mosquitto: "Duplicate ... value"); name is
// its name in package bridge's errors.
func bridgeString(name string, set func(cn *bridge.Connection, v string)) directive {
	return directive{kind: kBridge, do: func(t *translator, d mline) error {
		b := t.bridge
		if prev, ok := b.lines[name]; ok {
			return d.errorf("set again for this bridge (first at %s:%d)", prev.file, prev.n)
		}
		v, err := d.str()
		if err != nil {
			return err
		}
		set(&b.cn, v)
		b.lines[name] = d
		return nil
	}}
}

// bridgeBool makes a boolean directive of the current bridge.
func bridgeBool(set func(cn *bridge.Connection, v bool)) directive {
	return directive{kind: kBridge, do: func(t *translator, d mline) error {
		v, err := d.boolean()
		if err != nil {
			return err
		}
		set(&t.bridge.cn, v)
		t.bridge.lines[d.name] = d
		return nil
	}}
}

// bridgeOnly makes a boolean bridge directive Shoal supports at one value
// (what its bridge does), refusing the other for reason.
func bridgeOnly(want bool, reason string) directive {
	d := only(want, reason)
	d.kind = kBridge
	return d
}

// readBridgeAddress reads "address HOST[:PORT] [HOST[:PORT] ...]", once per
// bridge, as Mosquitto does. Mosquitto takes the port after the last
// colon, so an IPv6 address is written with its port and no brackets
// ("::1:1883"); it is given to the bridge as "[::1]:1883".
func (t *translator) readBridgeAddress(d mline) error {
	b := t.bridge
	if prev, ok := b.lines["address"]; ok {
		return d.errorf("set again for this bridge (first at %s:%d); give every address on one line", prev.file, prev.n)
	}
	var addrs []string
	for _, w := range strings.Fields(d.rest) {
		if w[0] == '#' {
			break
		}
		if strings.Count(w, ":") > 1 && !strings.HasPrefix(w, "[") {
			i := strings.LastIndexByte(w, ':')
			w = net.JoinHostPort(w[:i], w[i+1:])
		}
		addrs = append(addrs, w)
	}
	if len(addrs) == 0 {
		return d.errorf("needs an address")
	}
	b.cn.Addresses = addrs
	b.lines["address"] = d
	return nil
}

// readBridgeTopic reads "topic PATTERN [[[out | in | both] QOS] LOCAL_PREFIX
// REMOTE_PREFIX]", where "" is an empty pattern or prefix. As in
// Mosquitto, the direction is told in any case, and a word starting with
// '#' after it starts a comment.
func (t *translator) readBridgeTopic(d mline) error {
	f := strings.Fields(d.rest)
	if len(f) == 0 {
		return d.errorf("needs a pattern")
	}
	empty := func(w string) string {
		if w == `""` {
			return ""
		}
		return w
	}
	tp := bridge.Topic{Pattern: empty(f[0]), Direction: bridge.Out}
	rest := f[1:]
	for i := 1; i < len(rest); i++ {
		if rest[i][0] == '#' {
			rest = rest[:i]
			break
		}
	}
	if len(rest) > 0 {
		dir, err := bridge.ParseDirection(strings.ToLower(rest[0]))
		if err != nil {
			return d.errorf("%v", err)
		}
		tp.Direction = dir
	}
	if len(rest) > 1 {
		q, err := strconv.Atoi(rest[1])
		if err != nil || q < 0 || q > 2 {
			return d.errorf("QoS %q is not 0, 1 or 2", rest[1])
		}
		tp.QoS = byte(q)
	}
	if len(rest) > 2 {
		tp.LocalPrefix = empty(rest[2])
	}
	if len(rest) > 3 {
		tp.RemotePrefix = empty(rest[3])
	}
	if len(rest) > 4 {
		return d.errorf("unexpected %q after the remote prefix (a comment starts with '#')", rest[4])
	}
	t.bridge.cn.Topics = append(t.bridge.cn.Topics, tp)
	t.bridge.topics = append(t.bridge.topics, d)
	return nil
}

// readRestartTimeout reads "restart_timeout CONSTANT" or "restart_timeout
// BASE CAP", in seconds.
func (t *translator) readRestartTimeout(d mline) error {
	var secs []int
	for _, w := range strings.Fields(d.rest) {
		if w[0] == '#' {
			break
		}
		if len(secs) == 2 {
			return d.errorf("unexpected %q after the cap (a comment starts with '#')", w)
		}
		n, err := strconv.Atoi(w)
		if err != nil {
			return d.errorf("%q is not an integer", w)
		}
		secs = append(secs, n)
	}
	if len(secs) == 0 {
		return d.errorf("needs a value")
	}
	if secs[0] < 1 {
		t.warn(d, fmt.Sprintf("%d is under 1 second: 1 taken (as Mosquitto does)", secs[0]))
		secs[0] = 1
	}
	b := bridge.Backoff{Base: time.Duration(secs[0]) * time.Second}
	if len(secs) == 2 {
		b.Cap = time.Duration(secs[1]) * time.Second // under the base: bridge.Config.Validate says so
	}
	t.bridge.cn.RestartTimeout = b
	t.bridge.lines["restart_timeout"] = d
	return nil
}

// resolveBridges checks the bridges read, as a YAML bridges key is
// checked, and places an error at the line that set what it is about.
// A bridge with several addresses must say round_robin true: that is
// what Shoal's bridge does, where Mosquitto's default goes back to the
// first address while it is connected to another.
func (t *translator) resolveBridges() error {
	var cfg bridge.Config
	for _, b := range t.bridges {
		cfg.Connections = append(cfg.Connections, b.cn)
		if len(b.cn.Addresses) < 2 {
			continue
		}
		rr, ok := b.lines["round_robin"]
		if v, _ := rr.boolean(); ok && v {
			continue
		}
		at := b.lines["address"]
		if ok {
			at = rr
		}
		t.unsupported(at, "with several addresses, Shoal's bridge stays on the one that works until it fails "+
			"(round_robin true); Mosquitto's round_robin false, its default, goes back to the first: say round_robin true")
	}
	err := cfg.Validate()
	var ce *bridge.ConfigError
	if errors.As(err, &ce) {
		return t.bridges[ce.Index].line(ce).errorf("%v", ce.Err)
	}
	if err != nil {
		return err
	}
	t.bridgeConfig = cfg
	return nil
}

// line returns the line that set what ce is about: the topic line, or the
// line of the directive it names (or of one that goes with it), else the
// connection line.
func (b *mbridge) line(ce *bridge.ConfigError) mline {
	if ce.Directive == "topic" && ce.Topic >= 0 && ce.Topic < len(b.topics) {
		return b.topics[ce.Topic]
	}
	for _, name := range ce.Directives() {
		if d, ok := b.lines[name]; ok {
			return d
		}
	}
	return b.at
}
