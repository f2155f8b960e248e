package mosqconf

import (
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/shoalmq/shoal/config"
)

// readListener reads "listener PORT [ADDRESS]": a new listener, current
// until the next one.
func (t *translator) readListener(d mline) error {
	f := strings.Fields(d.rest)
	if len(f) == 0 || f[0][0] == '#' {
		return d.errorf("needs a port")
	}
	port, err := strconv.Atoi(f[0])
	if err != nil || port < 0 || port > 65535 {
		return d.errorf("%q is not a port (0..65535)", f[0])
	}
	l := newListener()
	l.at, l.defined, l.port = d, true, port
	if len(f) > 1 && f[1][0] != '#' {
		l.host = f[1]
		if len(f) > 2 && f[2][0] != '#' {
			return d.errorf("unexpected %q after the address (a comment starts with '#')", f[2])
		}
	}
	if port == 0 {
		if l.host == "" {
			return d.errorf("port 0 needs a Unix socket path")
		}
		l.unix = true
		t.unsupported(d, "Unix sockets: Shoal listens on TCP only")
	}
	t.listeners = append(t.listeners, l)
	t.cur = l
	return nil
}

// describe names a listener for messages: "the listener at file:line",
// or Mosquitto's default one and what made it.
func (l *mlistener) describe() string {
	if l.at.name == "listener" {
		return fmt.Sprintf("the listener at %s:%d", l.at.file, l.at.n)
	}
	return fmt.Sprintf("Mosquitto's default listener (port %d, made by %s at %s:%d)", l.portOr1883(), l.at.name, l.at.file, l.at.n)
}

func (l *mlistener) portOr1883() int {
	if l.port == 0 {
		return 1883
	}
	return l.port
}

// opt returns option name of l and whether it was given.
func (l *mlistener) opt(name string) (mline, bool) {
	d, ok := l.opts[name]
	return d, ok
}

// flag returns boolean option name of l (checked when read).
func (l *mlistener) flag(name string) (bool, mline) {
	d, ok := l.opts[name]
	if !ok {
		return false, d
	}
	v, _ := d.boolean()
	return v, d
}

// resolve turns what depends on the whole file into entries: the
// listeners, the options Mosquitto sets per listener and Shoal for the
// broker, authentication, persistence, the bridges and logging.
func (t *translator) resolve() error {
	active, local := t.activeListeners()
	if err := t.resolveListeners(active, local); err != nil {
		return err
	}
	t.resolvePerListener(active)
	if err := t.resolveSecurity(active, local); err != nil {
		return err
	}
	t.resolvePersistence()
	if err := t.resolveBridges(); err != nil {
		return err
	}
	if t.logDestAt != nil {
		t.entries = append(t.entries, entry{key: "log_dest", values: t.logDest, kind: config.KindString, at: t.logDestAt})
	}
	if t.logTypeAt != nil && !t.logOff {
		t.set(t.logTypeAt, "log_level", t.logLevel.String(), config.KindString)
	}
	return nil
}

// activeListeners returns the listeners Mosquitto would open, and whether
// it would run in local-only mode: no listener line, port or
// bind_address, so one listener on loopback port 1883 (mosquitto(8), -p:
// "the listeners defined with -p are bound to the loopback interface
// only"), which the default listener's options still apply to.
func (t *translator) activeListeners() (active []*mlistener, local bool) {
	def := t.listeners[0]
	if !def.defined && len(t.listeners) == 1 {
		return []*mlistener{def}, true
	}
	// The default listener is opened when port or bind_address made it,
	// or when a listener option came before the first listener line
	// (Mosquitto 2.0's config__parse_args).
	if def.defined || def.at.n != 0 {
		active = append(active, def)
	}
	for _, l := range t.listeners[1:] {
		if !l.unix {
			active = append(active, l)
		}
	}
	return active, false
}

// slot is one of Shoal's four listeners, by its setting.
type slot string

const (
	slotTCP slot = "listen"
	slotTLS slot = "tls_listen"
	slotWS  slot = "ws_listen"
	slotWSS slot = "wss_listen"
)

// kind says what the listener of s serves, for messages.
func (s slot) kind() string {
	switch s {
	case slotTLS:
		return "MQTT over TLS"
	case slotWS:
		return "WebSocket"
	case slotWSS:
		return "secure WebSocket"
	}
	return "plain MQTT"
}

// resolveListeners maps each listener onto one of Shoal's: one plain TCP,
// one TLS, one WebSocket, one secure WebSocket.
func (t *translator) resolveListeners(active []*mlistener, local bool) error {
	if local {
		// No place: -p, when given, replaces it, as in Mosquitto.
		t.set(nil, "listen", "127.0.0.1:1883", config.KindString)
		if def := active[0]; def.at.n != 0 {
			for name, d := range def.opts {
				switch name {
				case "max_connections", "max_qos", "max_topic_alias":
				default:
					t.unsupported(d, "a listener setting with no listener line: Mosquitto 2 then listens on loopback "+
						"port 1883 alone (local-only mode), plain; put it after a listener line")
				}
			}
		}
		return nil
	}
	taken := map[slot]*mlistener{}
	for _, l := range active {
		cert, hasCert := l.opt("certfile")
		key, hasKey := l.opt("keyfile")
		switch {
		case hasCert && !hasKey:
			return cert.errorf("needs keyfile too, for TLS")
		case hasKey && !hasCert:
			return key.errorf("needs certfile too, for TLS")
		}
		proto, _ := l.opt("protocol")
		ws := strings.HasPrefix(proto.rest, "websockets")
		s := slotTCP
		switch {
		case ws && hasCert:
			s = slotWSS
		case ws:
			s = slotWS
		case hasCert:
			s = slotTLS
		}
		if first, ok := taken[s]; ok {
			t.unsupported(l.at, fmt.Sprintf("Shoal has one %s listener, and %s is one already", s.kind(), first.describe()))
			continue
		}
		taken[s] = l
		addr, ok := t.address(l)
		if ok {
			t.set(&l.at, string(s), addr, config.KindString)
		}
		if ws {
			t.set(nil, "ws_path", "*", config.KindString) // Mosquitto's WebSocket listeners upgrade at any path
		}
		if !hasCert {
			for _, n := range []string{"cafile", "capath", "require_certificate", "use_identity_as_username", "use_subject_as_username", "tls_version"} {
				if d, ok := l.opt(n); ok {
					t.warn(d, "no effect: "+l.describe()+" has no certfile and keyfile, so no TLS (as in Mosquitto)")
				}
			}
		}
	}
	if _, ok := taken[slotTCP]; !ok && len(active) > 0 {
		// Shoal always has its plain TCP listener: out of the way, on
		// loopback at a port of the system's choosing.
		t.set(&active[0].at, "listen", "127.0.0.1:0", config.KindString)
		t.warnings = append(t.warnings, fmt.Sprintf("%s: no plain MQTT listener: Shoal's, which it always has, "+
			"listens on 127.0.0.1 at a free port (logged at start)", t.main))
	}
	return t.resolveTLS(taken[slotTLS], taken[slotWSS])
}

// address returns listener l's "host:port".
func (t *translator) address(l *mlistener) (string, bool) {
	host := l.host
	if d, ok := l.opt("socket_domain"); ok && host == "" {
		w, _ := d.word()
		if w == "ipv6" {
			t.unsupported(d, "Shoal cannot open an IPv6-only socket; leave it out to listen on IPv4 and IPv6")
			return "", false
		}
		host = "0.0.0.0"
	}
	return net.JoinHostPort(host, strconv.Itoa(l.portOr1883())), true
}

// resolveTLS maps the certificate settings of the TLS listener and of the
// secure WebSocket one (either may be nil), which Shoal's share.
func (t *translator) resolveTLS(tlsL, wssL *mlistener) error {
	first := tlsL
	if first == nil {
		first = wssL
	}
	if first == nil {
		return nil
	}
	if tlsL != nil && wssL != nil {
		for _, n := range []string{"certfile", "keyfile"} {
			a, _ := tlsL.opt(n)
			b, _ := wssL.opt(n)
			if a.rest != b.rest {
				t.unsupported(b, fmt.Sprintf("Shoal's TLS and secure WebSocket listeners share one certificate and key, and %s has another", tlsL.describe()))
			}
		}
	}
	cert, _ := first.opt("certfile")
	key, _ := first.opt("keyfile")
	t.set(&cert, "tls_cert_file", cert.rest, config.KindString)
	t.set(&key, "tls_key_file", key.rest, config.KindString)
	if wssL != nil {
		// Mosquitto's WebSocket listeners take only cafile, certfile,
		// keyfile and the ciphers (mosquitto.conf(5), protocol).
		for _, n := range []string{"capath", "require_certificate", "use_identity_as_username", "use_subject_as_username", "tls_version"} {
			if d, ok := wssL.opt(n); ok {
				t.warn(d, "no effect on a WebSocket listener (as in Mosquitto)")
			}
		}
	}
	if tlsL == nil {
		return nil
	}
	shared := func(d mline, what string) {
		if wssL != nil {
			t.unsupported(d, fmt.Sprintf("%s would hold for %s too: Shoal's TLS listeners share their settings, and Mosquitto's WebSocket ones take none of it", what, wssL.describe()))
		}
	}
	if d, ok := tlsL.opt("tls_version"); ok {
		switch d.rest {
		case "tlsv1.1":
			t.unsupported(d, "Shoal accepts TLS 1.2 and 1.3 only: RFC 8996 deprecates TLS 1.1")
		case "tlsv1.3":
			t.set(&d, "tls_min_version", "1.3", config.KindString)
			shared(d, "TLS 1.3 at least")
		}
	}
	require, rd := tlsL.flag("require_certificate")
	identity, id := tlsL.flag("use_identity_as_username")
	subject, sd := tlsL.flag("use_subject_as_username")
	if !require {
		for _, d := range []mline{id, sd} {
			if d.n != 0 && (identity || subject) {
				t.warn(d, "no effect without require_certificate true (as in Mosquitto)")
			}
		}
		return nil
	}
	ca, hasCA := tlsL.opt("cafile")
	dir, hasDir := tlsL.opt("capath")
	if !hasCA && !hasDir {
		return rd.errorf("needs cafile or capath: the CAs whose client certificates are accepted")
	}
	t.set(&rd, "tls_client_certs", "require", config.KindString)
	shared(rd, "require_certificate")
	if hasCA {
		t.set(&ca, "tls_client_ca_file", ca.rest, config.KindString)
	}
	if hasDir {
		t.set(&dir, "tls_client_ca_dir", dir.rest, config.KindString)
	}
	switch {
	case identity: // "This takes priority over use_subject_as_username"
		t.set(&id, "tls_identity", "cn", config.KindString)
	case subject:
		t.set(&sd, "tls_identity", "subject", config.KindString)
	}
	return nil
}

// resolvePerListener maps the options Mosquitto sets per listener and
// Shoal for the whole broker: one value for every listener, or refused.
func (t *translator) resolvePerListener(active []*mlistener) {
	for _, o := range []struct {
		name, key string
		def       int
	}{
		// max_qos: "Defaults to 2"; max_topic_alias: "Defaults to 10".
		{"max_qos", "max_qos", 2}, {"max_topic_alias", "topic_alias_maximum", 10},
	} {
		var first *mlistener
		var firstV int
		var at *mline
		for _, l := range active {
			v := o.def
			d, ok := l.opt(o.name)
			if ok {
				v, _ = d.integer()
			}
			if first == nil {
				first, firstV = l, v
			} else if v != firstV {
				where := l.at
				if ok {
					where = d
				}
				t.unsupported(where, fmt.Sprintf("%s: Shoal's holds for every listener, and %s has %d", o.name, first.describe(), firstV))
				continue
			}
			if ok && at == nil {
				at = &d
			}
		}
		t.set(at, o.key, strconv.Itoa(firstV), config.KindInt)
	}
	// max_connections: "Default is -1, which means unlimited".
	for _, l := range active {
		d, ok := l.opt("max_connections")
		if !ok {
			continue
		}
		if v, _ := d.integer(); v <= 0 {
			continue
		} else if len(active) > 1 {
			t.unsupported(d, "Shoal bounds the connections of the whole broker, and there is more than one listener")
		} else {
			t.set(&d, "max_connections", strconv.Itoa(v), config.KindInt)
		}
	}
}

// resolveSecurity maps the authentication settings: the broker's, or,
// under per_listener_settings, the listeners' when they are all the same.
func (t *translator) resolveSecurity(active []*mlistener, local bool) error {
	s := t.sec
	if t.perListener != nil && len(active) > 0 {
		s = active[0].sec
		for _, l := range active[1:] {
			if diff := differs(active[0].sec, l.sec); diff != "" {
				t.unsupported(*t.perListener, fmt.Sprintf("%s and %s differ in %s: Shoal's authentication holds for every listener",
					active[0].describe(), l.describe(), diff))
				break
			}
		}
	}
	if d := s.passwordFile; d != nil {
		t.set(d, "password_file", d.rest, config.KindString)
	}
	if d := s.aclFile; d != nil {
		t.set(d, "acl_file", d.rest, config.KindString)
		t.set(d, "acl_format", "mosquitto", config.KindString)
	}
	switch d := s.allowAnonymous; {
	case d != nil:
		v, _ := d.boolean()
		t.set(d, "allow_anonymous", strconv.FormatBool(v), config.KindBool)
	case local:
		// "Defaults to false, unless no listeners are defined in the
		// configuration file, in which case it set to true, but
		// connections are only allowed from the local machine."
		t.set(nil, "allow_anonymous", "true", config.KindBool)
	default:
		t.set(nil, "allow_anonymous", "false", config.KindBool)
	}
	if d := s.allowZeroLength; d != nil {
		v, _ := d.boolean()
		t.set(d, "assign_client_ids", strconv.FormatBool(v), config.KindBool)
	}
	if d := s.autoIDPrefix; d != nil {
		t.set(d, "assigned_id_prefix", d.rest, config.KindString)
	} else {
		t.set(nil, "assigned_id_prefix", "auto-", config.KindString) // "Defaults to auto-"
	}
	return nil
}

// differs names the first authentication setting that a and b set to
// different values, with Mosquitto's defaults for what they leave out;
// "" when none.
func differs(a, b security) string {
	value := func(d *mline, def string) string {
		if d == nil {
			return def
		}
		if w, err := d.boolean(); err == nil {
			return strconv.FormatBool(w)
		}
		return d.rest
	}
	for _, f := range []struct {
		name     string
		a, b     *mline
		defValue string
	}{
		{"password_file", a.passwordFile, b.passwordFile, ""},
		{"acl_file", a.aclFile, b.aclFile, ""},
		{"allow_anonymous", a.allowAnonymous, b.allowAnonymous, "false"},
		{"allow_zero_length_clientid", a.allowZeroLength, b.allowZeroLength, "true"},
		{"auto_id_prefix", a.autoIDPrefix, b.autoIDPrefix, "auto-"},
	} {
		if value(f.a, f.defValue) != value(f.b, f.defValue) {
			return f.name
		}
	}
	return ""
}

// resolvePersistence maps persistence: Shoal's store is a directory
// beside Mosquitto's file, never the file itself, which stays as it is and
// is imported, read-only, into a new store (import_mosquitto_db).
func (t *translator) resolvePersistence() {
	if t.persistence == nil {
		return // Mosquitto's default, false, is among the defaults
	}
	t.set(t.persistence, "persistence", strconv.FormatBool(t.persist), config.KindBool)
	if !t.persist {
		return
	}
	loc, file := "", "mosquitto.db" // "Defaults to mosquitto.db", in "the current directory"
	at := t.persistence
	if t.location != nil {
		loc, at = t.location.rest, t.location
	}
	if t.dbFile != nil {
		file = t.dbFile.rest
	}
	db := filepath.Join(loc, file)
	t.set(at, "data_dir", strings.TrimSuffix(db, filepath.Ext(db))+".shoal", config.KindString)
	t.set(at, "import_mosquitto_db", db, config.KindString)
}
