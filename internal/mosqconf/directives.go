package mosqconf

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/rs/zerolog"

	"github.com/shoalmq/shoal/config"
)

// dkind says where a Mosquitto directive applies.
type dkind uint8

const (
	kGlobal   dkind = iota // the broker
	kListener              // the current listener (before any: the default one)
	kSecurity              // the broker, or the current listener under per_listener_settings
	kBridge                // the current bridge: the last connection line's
)

// directive is how one Mosquitto directive is read.
type directive struct {
	kind dkind
	do   func(t *translator, d mline) error
}

// Reasons shared by several refused directives.
const (
	whyPlugins = "Shoal loads no Mosquitto plugins; http_auth_url is its way to ask another program who may connect"
	whyPSK     = "TLS with pre-shared keys: Go's TLS, which Shoal uses, has no PSK cipher suites"
	whyCiphers = "Shoal uses Go's TLS cipher suites (modern ones only, ECDHE, AEAD), which cannot be listed in OpenSSL's syntax"
	whyEngine  = "OpenSSL engines (hardware keys): Go's TLS has none; give keyfile a PEM key"
)

// mosquittoDirective returns how directive name is read; auth_opt_* and
// plugin_opt_* are one each.
func mosquittoDirective(name string) (directive, bool) {
	return lookupDirective(mosquittoTable(), name)
}

// findDirective is mosquittoDirective with the translator's table.
func (t *translator) findDirective(name string) (directive, bool) {
	return lookupDirective(t.table, name)
}

func lookupDirective(table map[string]directive, name string) (directive, bool) {
	if strings.HasPrefix(name, "auth_opt_") || strings.HasPrefix(name, "plugin_opt_") {
		name = "auth_plugin"
	}
	d, ok := table[name]
	return d, ok
}

// mosquittoNames lists the directives, for suggestions.
func mosquittoNames() []string {
	var names []string
	for n := range mosquittoTable() {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// refuse makes a directive that Shoal refuses for reason.
func refuse(kind dkind, reason string) directive {
	return directive{kind: kind, do: func(t *translator, d mline) error {
		t.unsupported(d, reason)
		return nil
	}}
}

// noEffect makes a directive whose value is checked (by read) and that
// needs nothing more: Shoal does what it asks for without a setting.
func noEffect(read func(mline) error) directive {
	return directive{kind: kGlobal, do: func(_ *translator, d mline) error { return read(d) }}
}

func readBool(d mline) error { _, err := d.boolean(); return err }
func readInt(d mline) error  { _, err := d.integer(); return err }

// only makes a boolean directive Shoal supports at one value (its own
// behaviour), refusing the other for reason.
func only(want bool, reason string) directive {
	return directive{kind: kGlobal, do: func(t *translator, d mline) error {
		v, err := d.boolean()
		if err == nil && v != want {
			t.unsupported(d, reason)
		}
		return err
	}}
}

// toBool maps a boolean directive onto setting key.
func toBool(key string) directive {
	return directive{kind: kGlobal, do: func(t *translator, d mline) error {
		v, err := d.boolean()
		if err == nil {
			t.set(&d, key, strconv.FormatBool(v), config.KindBool)
		}
		return err
	}}
}

// toInt maps an integer directive onto setting key through conv, which
// checks it as Mosquitto does and turns it into Shoal's value.
func toInt(key string, conv func(d mline, v int) (int, error)) directive {
	return directive{kind: kGlobal, do: func(t *translator, d mline) error {
		v, err := d.integer()
		if err == nil {
			v, err = conv(d, v)
		}
		if err == nil {
			t.set(&d, key, strconv.Itoa(v), config.KindInt)
		}
		return err
	}}
}

// onceString reads a string directive that may be given once (Mosquitto:
// "Duplicate ... value").
func (t *translator) onceString(d mline) (string, error) {
	if prev, ok := t.once[d.name]; ok {
		return "", d.errorf("set again (first at %s:%d)", prev.file, prev.n)
	}
	t.once[d.name] = d
	return d.str()
}

// listenerOpt makes a directive of the current listener, checked by read.
func listenerOpt(read func(mline) error) directive {
	return directive{kind: kListener, do: func(t *translator, d mline) error {
		if err := read(d); err != nil {
			return err
		}
		return t.listenerSet(d)
	}}
}

func readString(d mline) error { _, err := d.str(); return err }

// listenerSet records option d on the current listener.
func (t *translator) listenerSet(d mline) error {
	l := t.cur
	name := d.name
	if name == "maximum_qos" {
		name = "max_qos" // one directive, two spellings
	}
	if prev, ok := l.opts[name]; ok && isStringOpt(name) {
		return d.errorf("set again for this listener (first at %s:%d)", prev.file, prev.n)
	}
	l.opts[name] = d
	if !l.defined && l.at.n == 0 {
		l.at = d // the default listener: made by this option
	}
	return nil
}

func isStringOpt(name string) bool {
	switch name {
	case "cafile", "capath", "certfile", "keyfile", "tls_version":
		return true
	}
	return false
}

// securityOpt makes a directive of the authentication settings, checked
// by read; store files it in a scope.
func securityOpt(read func(mline) error, store func(s *security) **mline, isString bool) directive {
	return directive{kind: kSecurity, do: func(t *translator, d mline) error {
		if err := read(d); err != nil {
			return err
		}
		s := &t.sec
		if t.perListener != nil {
			s = &t.cur.sec
			if !t.cur.defined && t.cur.at.n == 0 {
				t.cur.at = d
			}
		}
		p := store(s)
		if *p != nil && isString {
			return d.errorf("set again (first at %s:%d)", (*p).file, (*p).n)
		}
		*p = &d
		return nil
	}}
}

// mosquittoTable is every directive of Mosquitto 2.0's mosquitto.conf(5),
// and how Shoal reads it. A function, not a variable: nothing may change
// it.
func mosquittoTable() map[string]directive {
	m := map[string]directive{
		// Authentication and access.
		"per_listener_settings": {kind: kSecurity, do: func(t *translator, d mline) error {
			v, err := d.boolean()
			if err != nil {
				return err
			}
			if v && t.secSeen {
				return d.errorf("must come before every other security setting (as Mosquitto requires)")
			}
			if v {
				t.perListener = &d
			}
			return nil
		}},
		"password_file": securityOpt(readString, func(s *security) **mline { return &s.passwordFile }, true),
		"acl_file":      securityOpt(readString, func(s *security) **mline { return &s.aclFile }, true),
		"auto_id_prefix": securityOpt(readString, func(s *security) **mline {
			return &s.autoIDPrefix
		}, true),
		"allow_anonymous": securityOpt(readBool, func(s *security) **mline { return &s.allowAnonymous }, false),
		"allow_zero_length_clientid": securityOpt(readBool, func(s *security) **mline {
			return &s.allowZeroLength
		}, false),
		"psk_file":                       refuse(kSecurity, whyPSK),
		"auth_plugin":                    refuse(kSecurity, whyPlugins),
		"plugin":                         refuse(kSecurity, whyPlugins),
		"auth_plugin_deny_special_chars": refuse(kSecurity, whyPlugins),
		"check_retain_source": only(false, "Shoal does not check a retained message against its publisher's rights "+
			"again when it delivers it; say false to run without that check"),
		"clientid_prefixes": refuse(kGlobal, "deprecated in Mosquitto 2; use an acl_file pattern with %c to confine clients"),

		// Limits and behaviour.
		"max_inflight_messages": toInt("max_inflight", func(d mline, v int) (int, error) {
			switch {
			case v > 65535:
				return 0, d.errorf("%d is over 65535", v)
			case v <= 0 || v == 65535:
				return 65535, nil // "Set to 0 for no maximum": the most a client can have
			}
			return v, nil
		}),
		"max_inflight_bytes": {kind: kGlobal, do: func(t *translator, d mline) error {
			v, err := d.integer()
			if err == nil && v > 0 {
				t.unsupported(d, "Shoal bounds the messages in flight by count (max_inflight_messages), not by bytes")
			}
			return err
		}},
		"max_queued_messages": toInt("max_queued", func(_ mline, v int) (int, error) {
			if v <= 0 {
				return 1<<31 - 1, nil // "Set to 0 for no maximum"; max_queued_bytes still bounds the queue
			}
			return v, nil
		}),
		"max_queued_bytes": toInt("max_queued_bytes", func(_ mline, v int) (int, error) {
			return max(v, 0), nil // 0: no bound, in both
		}),
		"message_size_limit": toInt("max_message_size", func(d mline, v int) (int, error) {
			if v < 0 || v > 268435455 {
				return 0, d.errorf("%d is outside 0..268435455", v)
			}
			return v, nil
		}),
		"max_packet_size": toInt("max_packet_size", func(d mline, v int) (int, error) {
			if v < 20 {
				return 0, d.errorf("%d is under 20 (Mosquitto's floor; Shoal's is 64)", v)
			}
			return v, nil
		}),
		"max_keepalive": toInt("max_keepalive", func(d mline, v int) (int, error) {
			if v < 10 || v > 65535 {
				return 0, d.errorf("%d is outside 10..65535", v)
			}
			return v, nil
		}),
		"sys_interval": toInt("sys_interval", func(d mline, v int) (int, error) {
			if v < 0 || v > 65535 {
				return 0, d.errorf("%d is outside 0..65535", v)
			}
			return v, nil
		}),
		"persistent_client_expiration": {kind: kGlobal, do: func(t *translator, d mline) error {
			w, err := d.word()
			if err != nil {
				return err
			}
			secs, err := expiration(w)
			if err != nil {
				return d.errorf("%v", err)
			}
			t.set(&d, "max_session_expiry", strconv.FormatInt(secs, 10), config.KindInt)
			return nil
		}},
		"retain_available":    toBool("retain_available"),
		"connection_messages": toBool("log_connections"),
		// Mosquitto's default is false (Nagle on); a file without the line
		// keeps Shoal's default (true), one that sets it is followed.
		"set_tcp_nodelay": toBool("tcp_nodelay"),
		"queue_qos0_messages": only(false, "Shoal keeps only QoS 1 and 2 messages for a client that is away, "+
			"as MQTT asks: what was promised"),
		"upgrade_outgoing_qos": only(false, "Shoal never raises a message's QoS to the subscription's: MQTT forbids it"),
		"memory_limit": refuse(kGlobal, "Shoal has no heap limit; its queues are bounded by max_queued_messages "+
			"and max_queued_bytes, and its connections by max_connections"),
		// Done anyway, or no longer meant anything.
		"autosave_interval":        noEffect(readInt), // the store writes each change as it happens
		"autosave_on_changes":      noEffect(readBool),
		"allow_duplicate_messages": noEffect(readBool),
		"websockets_log_level":     noEffect(readInt),
		"websockets_headers_size":  noEffect(readInt), // Go's HTTP server takes headers of up to 1 MiB
		"retry_interval": {kind: kGlobal, do: func(t *translator, d mline) error {
			t.warn(d, "left out: Mosquitto 2 has no such option any more, and ignores it too")
			return nil
		}},

		// Persistence.
		"persistence": {kind: kGlobal, do: func(t *translator, d mline) error {
			v, err := d.boolean()
			t.persistence, t.persist = &d, v
			return err
		}},
		"persistence_file": {kind: kGlobal, do: func(t *translator, d mline) error {
			_, err := t.onceString(d)
			t.dbFile = &d
			return err
		}},
		"persistence_location": {kind: kGlobal, do: func(t *translator, d mline) error {
			_, err := t.onceString(d)
			t.location = &d
			return err
		}},

		// The process.
		"pid_file": {kind: kGlobal, do: func(t *translator, d mline) error {
			v, err := t.onceString(d)
			if err == nil {
				t.set(&d, "pid_file", v, config.KindString)
			}
			return err
		}},
		"user": {kind: kGlobal, do: func(t *translator, d mline) error {
			v, err := d.str()
			t.runAs = v
			return err
		}},

		// Logging.
		"log_dest":             {kind: kGlobal, do: (*translator).readLogDest},
		"log_type":             {kind: kGlobal, do: (*translator).readLogType},
		"log_timestamp":        only(true, "Shoal's log lines always carry their time"),
		"log_timestamp_format": refuse(kGlobal, "Shoal's log lines carry RFC 3339 times (JSON, or console lines on a terminal)"),
		"log_facility":         refuse(kGlobal, "Shoal logs to syslog's daemon facility only"),

		// Listeners.
		"listener": {kind: kListener, do: (*translator).readListener},
		"port": {kind: kListener, do: func(t *translator, d mline) error {
			v, err := d.integer()
			if err != nil {
				return err
			}
			if v < 1 || v > 65535 {
				return d.errorf("%d is outside 1..65535", v)
			}
			l := t.listeners[0]
			if !l.defined {
				l.at = d
			}
			l.port, l.defined = v, true
			return nil
		}},
		"bind_address": {kind: kListener, do: func(t *translator, d mline) error {
			v, err := d.str()
			if err != nil {
				return err
			}
			l := t.listeners[0]
			if l.host != "" {
				return d.errorf("set again")
			}
			if !l.defined {
				l.at = d
			}
			l.host, l.defined = v, true
			return nil
		}},
		"protocol": listenerOpt(func(d mline) error {
			w, err := d.word()
			if err == nil && w != "mqtt" && w != "websockets" {
				return d.errorf("%q is neither mqtt nor websockets", w)
			}
			return err
		}),
		"socket_domain": listenerOpt(func(d mline) error {
			w, err := d.word()
			if err == nil && w != "ipv4" && w != "ipv6" {
				return d.errorf("%q is neither ipv4 nor ipv6", w)
			}
			return err
		}),
		"max_connections": listenerOpt(readInt),
		"max_qos": listenerOpt(func(d mline) error {
			v, err := d.integer()
			if err == nil && (v < 0 || v > 2) {
				return d.errorf("%d is outside 0..2", v)
			}
			return err
		}),
		"max_topic_alias": listenerOpt(func(d mline) error {
			v, err := d.integer()
			if err == nil && (v < 0 || v > 65535) {
				return d.errorf("%d is outside 0..65535", v)
			}
			return err
		}),
		"mount_point": {kind: kListener, do: func(t *translator, d mline) error {
			if len(t.listeners) == 1 {
				return d.errorf("needs a listener line before it (as Mosquitto requires)")
			}
			t.unsupported(d, "Shoal does not confine a listener's clients under a topic prefix; an acl_file pattern can confine them by %u or %c")
			return nil
		}},
		"bind_interface":           refuse(kListener, "Shoal binds addresses, not network interfaces: give the interface's address on the listener line"),
		"http_dir":                 refuse(kListener, "Shoal's WebSocket listeners serve MQTT only, no files"),
		"use_username_as_clientid": refuse(kListener, "not supported: Shoal keeps the client identifier a client sends"),
		"certfile":                 listenerOpt(readString),
		"keyfile":                  listenerOpt(readString),
		"cafile":                   listenerOpt(readString),
		"capath":                   listenerOpt(readString),
		"tls_version": listenerOpt(func(d mline) error {
			w, err := d.str()
			if err == nil && w != "tlsv1.3" && w != "tlsv1.2" && w != "tlsv1.1" {
				return d.errorf("%q is not tlsv1.3, tlsv1.2 or tlsv1.1", w)
			}
			return err
		}),
		"require_certificate":      listenerOpt(readBool),
		"use_identity_as_username": listenerOpt(readBool),
		"use_subject_as_username":  listenerOpt(readBool),
		"dhparamfile": {kind: kListener, do: func(_ *translator, d mline) error {
			// Go's TLS uses ECDHE, which needs no parameters, for forward
			// secrecy: what the file is for.
			return readString(d)
		}},
		"tls_keyform": {kind: kListener, do: func(t *translator, d mline) error {
			w, err := d.str()
			if err == nil && w != "pem" {
				t.unsupported(d, whyEngine)
			}
			return err
		}},
		"ciphers":               refuse(kListener, whyCiphers),
		"ciphers_tls1.3":        refuse(kListener, whyCiphers),
		"crlfile":               refuse(kListener, "Shoal does not read certificate revocation lists; remove the CA of a revoked client's certificate, or reissue"),
		"psk_hint":              refuse(kListener, whyPSK),
		"tls_engine":            refuse(kListener, whyEngine),
		"tls_engine_kpass_sha1": refuse(kListener, whyEngine),

		// Bridges: connection starts one; the others are its
		// (bridge.go).
		"connection": {kind: kGlobal, do: (*translator).readConnection},
	}
	for n, d := range bridgeDirectives() {
		m[n] = d
	}
	m["maximum_qos"] = m["max_qos"]
	m["retained_persistence"] = m["persistence"]
	return m
}

// expiration reads persistent_client_expiration: an integer and one of h,
// d, w, m, y (hours, days, weeks, months of 30 days, years of 365), as
// Mosquitto does; it returns seconds.
func expiration(w string) (int64, error) {
	units := map[byte]int64{'h': 3600, 'd': 86400, 'w': 7 * 86400, 'm': 30 * 86400, 'y': 365 * 86400}
	mult, ok := units[w[len(w)-1]]
	if !ok {
		return 0, fmt.Errorf("%q: want an integer and h, d, w, m or y (e.g. 14d)", w)
	}
	n, err := strconv.ParseInt(w[:len(w)-1], 10, 32)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%q: want a positive integer before %c", w, w[len(w)-1])
	}
	return n * mult, nil
}

// readLogDest reads one log_dest line; they add up.
func (t *translator) readLogDest(d mline) error {
	w, _, _ := strings.Cut(d.rest, " ")
	switch w {
	case "":
		return d.errorf("needs a destination")
	case "none":
		t.logDest = []string{"none"}
	case "stderr", "stdout", "syslog":
		t.logDest = appendDest(t.logDest, w)
	case "file":
		path := strings.TrimSpace(strings.TrimPrefix(d.rest, "file"))
		if path == "" {
			return d.errorf("file needs a path")
		}
		for _, dst := range t.logDest {
			if strings.HasPrefix(dst, "file ") {
				return d.errorf("a second file (as Mosquitto, Shoal logs to one file at most)")
			}
		}
		t.logDest = appendDest(t.logDest, "file "+path)
	case "topic":
		t.unsupported(d, "Shoal does not publish its log under $SYS/broker/log")
		return nil
	case "dlt":
		t.unsupported(d, "Shoal does not log to DLT")
		return nil
	default:
		return d.errorf("%q is not a destination (stdout, stderr, syslog, file, topic, dlt or none)", w)
	}
	t.logDestAt = &d
	return nil
}

// appendDest adds a destination to a list that none no longer heads.
func appendDest(list []string, d string) []string {
	if len(list) == 1 && list[0] == "none" {
		list = nil
	}
	for _, x := range list {
		if x == d {
			return list
		}
	}
	return append(list, d)
}

// readLogType reads one log_type line: the least severe type asked for
// sets Shoal's level (which also logs everything more severe).
func (t *translator) readLogType(d mline) error {
	w, err := d.word()
	if err != nil {
		return err
	}
	t.logTypeAt = &d
	// The first log_type line replaces Mosquitto's default types, and
	// none starts again from nothing; the others add.
	lower := func(l zerolog.Level) {
		if !t.logAny || l < t.logLevel {
			t.logLevel = l
		}
		t.logAny, t.logOff = true, false
	}
	switch w {
	case "none":
		t.logOff, t.logAny = true, false
	case "all", "debug":
		lower(zerolog.DebugLevel)
	case "information", "notice":
		lower(zerolog.InfoLevel)
	case "warning":
		lower(zerolog.WarnLevel)
	case "error":
		lower(zerolog.ErrorLevel)
	case "subscribe", "unsubscribe":
		t.unsupported(d, "Shoal does not log each subscription")
	case "websockets", "internal":
		// Mosquitto's libraries' debugging: Shoal has no such lines.
	default:
		return d.errorf("%q is not a log type", w)
	}
	return nil
}
