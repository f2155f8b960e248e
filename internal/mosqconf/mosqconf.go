package mosqconf

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/rs/zerolog"

	"github.com/shoalmq/shoal/bridge"
	"github.com/shoalmq/shoal/config"
	"github.com/shoalmq/shoal/internal/suggest"
)

// A mosquitto.conf is read as Mosquitto 2.0 reads it (mosquitto.conf(5),
// and its src/conf.c), and translated into Shoal's settings: each
// directive becomes zero or more (setting, value) entries, applied with
// the settings' own checks (config.Translation.Set), so that a value out of range is
// refused by the same check as in a YAML file — at the mosquitto.conf
// line, naming the Mosquitto directive. What Mosquitto does when a
// directive is left out is written as entries of its own (mosquittoDefaults),
// so a file of comments alone runs as Mosquitto 2 would, not as Shoal's
// defaults.
//
// The format: a line whose first character is '#' is a comment, as is a
// blank line (and here an indented comment, which Mosquitto refuses). Otherwise the first word is the directive and the rest of
// the line its value: a path or another string is all of it, spaces
// included (there are no comments after a value); a number or a boolean
// (true, false, 1, 0) is one word, after which only a '#' comment may
// follow. Words are separated by spaces; tabs are taken as spaces here.
//
// A directive Shoal has no equivalent for is refused with its line and
// the reason, all of them at once (Options.Unsupported may make them
// warnings instead); one Mosquitto itself would refuse — unknown, or a
// value it would not take — is an error either way.

// mline is one directive line of a mosquitto.conf.
type mline struct {
	file string
	n    int
	name string // the directive
	rest string // what follows it, blanks trimmed
}

// source is where a setting translated from d came from.
func (d mline) source() config.Source { return config.Source{File: d.file, Line: d.n, Name: d.name} }

// error places err at d's line, naming the directive.
func (d mline) error(err error) *config.Error {
	return &config.Error{File: d.file, Line: d.n, Key: d.name, Err: err}
}

func (d mline) errorf(format string, args ...any) error {
	return d.error(fmt.Errorf(format, args...))
}

// word returns the directive's one-word value: a number, a boolean, a
// keyword. A '#' word after it starts a comment.
func (d mline) word() (string, error) {
	f := strings.Fields(d.rest)
	switch {
	case len(f) == 0 || f[0][0] == '#':
		return "", d.errorf("needs a value")
	case len(f) > 1 && f[1][0] != '#':
		return "", d.errorf("unexpected %q after the value %q (a comment starts with '#')", f[1], f[0])
	}
	return f[0], nil
}

// boolean reads true, false, 1 or 0, as Mosquitto does.
func (d mline) boolean() (bool, error) {
	w, err := d.word()
	if err != nil {
		return false, err
	}
	switch w {
	case "true", "1":
		return true, nil
	case "false", "0":
		return false, nil
	}
	return false, d.errorf("%q is not true or false", w)
}

// integer reads a decimal integer. (Mosquitto's atoi would read "10s" as
// 10 and "ten" as 0; here they are errors.)
func (d mline) integer() (int, error) {
	w, err := d.word()
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(w)
	if err != nil {
		return 0, d.errorf("%q is not an integer", w)
	}
	return n, nil
}

// str reads a string value: the rest of the line.
func (d mline) str() (string, error) {
	if d.rest == "" {
		return "", d.errorf("needs a value")
	}
	return d.rest, nil
}

// entry is one Shoal setting a directive translates into.
type entry struct {
	key    string
	values []string // one scalar, or a list
	kind   config.Kind
	at     *mline // nil for one of Mosquitto's defaults
}

// translator holds the state of one reading of a mosquitto.conf and the
// files it includes.
type translator struct {
	main     string
	table    map[string]directive // mosquittoTable, built once
	policy   Unsupported
	entries  []entry
	warnings []string
	refused  []error
	once     map[string]mline // global string directives: set once

	perListener *mline // per_listener_settings true
	secSeen     bool   // a security directive came: per_listener_settings must come first
	sec         security
	listeners   []*mlistener // [0] is Mosquitto's default listener
	cur         *mlistener
	bridge      *mbridge   // the bridge being read: the last connection line of this file
	bridges     []*mbridge // every connection line's, in order

	bridgeConfig bridge.Config // the bridges, checked (resolveBridges)

	persistence      *mline
	persist          bool
	location, dbFile *mline
	logDest          []string
	logDestAt        *mline
	logLevel         zerolog.Level
	logTypeAt        *mline
	logAny           bool // a log_type line with a level came since the start or the last none
	logOff           bool // log_type none
	runAs            string
	includes         int
}

// security is the authentication settings of one scope: the broker, or a
// listener under per_listener_settings.
type security struct {
	passwordFile, aclFile, autoIDPrefix *mline
	allowAnonymous, allowZeroLength     *mline
}

// mlistener is one listener of the file (or Mosquitto's default one,
// which port, bind_address and the listener directives before the first
// listener line make).
type mlistener struct {
	at      mline // the listener line; for the default one, the first line that made it
	defined bool  // a listener line, or port/bind_address for the default one
	port    int
	host    string
	unix    bool             // listener 0 PATH: refused
	opts    map[string]mline // its options, by directive
	sec     security
}

func newListener() *mlistener { return &mlistener{opts: map[string]mline{}} }

// mosquittoDefaults are the values Mosquitto 2 takes for a directive left
// out, where Shoal's own default differs (each checked against
// mosquitto.conf(5) of 2.0.11 and the example mosquitto.conf it ships;
// quoted there as "Defaults to ..."). The listeners, authentication,
// persistence and logging defaults depend on the whole file and are
// resolved with it (resolve.go).
func mosquittoDefaults() []entry {
	e := func(key, value string, kind config.Kind) entry {
		return entry{key: key, values: []string{value}, kind: kind}
	}
	return []entry{
		// max_inflight_messages: "Defaults to 20."
		e("max_inflight", "20", config.KindInt),
		// max_queued_messages: "Defaults to 1000." (Shoal's too.)
		e("max_queued", "1000", config.KindInt),
		// message_size_limit and max_packet_size: "The default value is
		// 0, which means that all valid MQTT messages are accepted", and
		// "Defaults to no limit": the protocol's maximum packet.
		e("max_packet_size", strconv.Itoa(maxPacket), config.KindInt),
		// max_keepalive: "The maximum value allowable, and default value,
		// is 65535."
		e("max_keepalive", "65535", config.KindInt),
		// sys_interval: "If unset, defaults to 10 seconds." (Shoal's too.)
		e("sys_interval", "10", config.KindInt),
		// max_queued_messages: "Once this limit has been reached,
		// subsequent messages will be silently dropped" — the newest, and
		// a connected client is not disconnected for it.
		e("queue_policy", "drop-newest", config.KindString),
		e("slow_consumer", "drop", config.KindString),
		// persistence: "Defaults to false."
		e("persistence", "false", config.KindBool),
		// Deliberately Shoal's: max_queued_bytes stays 64 MiB where
		// Mosquitto has no bound ("Defaults to 0. (No maximum)"): with
		// messages up to 256 MiB, a thousand queued for one offline client
		// would be more memory than a broker has. Set it to 0 for
		// Mosquitto's.
	}
}

// maxPacket is the largest MQTT packet: a 268,435,455-byte remaining
// length and its 5-byte fixed header.
const maxPacket = 268435455 + 5

// translate reads a mosquitto.conf into a File, with overrides
// applied before it is validated.
func translate(data []byte, name string, policy Unsupported, overrides []config.Override) (config.File, error) {
	t := &translator{main: name, table: mosquittoTable(), policy: policy, once: map[string]mline{}, logLevel: zerolog.InfoLevel, runAs: "mosquitto"}
	t.listeners = []*mlistener{newListener()}
	t.entries = mosquittoDefaults()
	if err := t.read(data, name, 0); err != nil {
		return config.File{}, err
	}
	if err := t.resolve(); err != nil {
		return config.File{}, err
	}
	if len(t.refused) > 0 {
		return config.File{}, errors.Join(t.refused...)
	}
	tr := config.NewTranslation(name, config.FormatMosquitto)
	for _, e := range t.entries {
		var at config.Source
		if e.at != nil {
			at = e.at.source()
		}
		if err := tr.Set(e.key, e.kind, at, e.values...); err != nil {
			if e.at == nil {
				return config.File{}, &config.Error{File: name, Key: e.key, Err: fmt.Errorf("Mosquitto's default: %w", err)}
			}
			return config.File{}, e.at.error(err)
		}
	}
	f := tr.File()
	f.Broker.Bridges = t.bridgeConfig
	if t.logOff {
		f.LogLevel = zerolog.Disabled
	}
	// Mosquitto started as root binds its ports, then runs as user (by
	// default mosquitto); so does Shoal (user), and "user root" stays root,
	// as Mosquitto does, whatever the listeners (allow_root).
	if t.runAs == "root" {
		f.AllowRoot = true
	} else {
		f.User = t.runAs
	}
	f.Warnings = t.warnings
	return tr.Finish(overrides)
}

// set records entry key = value for directive d (nil: a default).
func (t *translator) set(d *mline, key, value string, kind config.Kind) {
	t.entries = append(t.entries, entry{key: key, values: []string{value}, kind: kind, at: d})
}

// unsupported refuses directive d for reason, or warns, by the policy.
func (t *translator) unsupported(d mline, reason string) {
	if t.policy == WarnUnsupported {
		t.warn(d, "not supported, left out: "+reason)
		return
	}
	t.refused = append(t.refused, d.errorf("not supported: %s", reason))
}

// warn records a warning about directive d.
func (t *translator) warn(d mline, msg string) {
	t.warnings = append(t.warnings, fmt.Sprintf("%s:%d: %s: %s", d.file, d.n, d.name, msg))
}

// read reads the lines of one file; level 0 is the main file, whose
// include_dir lines read others.
func (t *translator) read(data []byte, file string, level int) error {
	// As in Mosquitto, each file starts with the default listener current
	// and no bridge.
	t.cur, t.bridge = t.listeners[0], nil
	for n, raw := range bytes.Split(data, []byte("\n")) {
		line := strings.TrimRight(string(raw), "\r")
		if line == "" || line[0] == '#' {
			continue
		}
		line = strings.Trim(strings.ReplaceAll(line, "\t", " "), " ")
		if line == "" || line[0] == '#' {
			continue // Mosquitto wants the '#' first; an indented comment is one too
		}
		name, rest, _ := strings.Cut(line, " ")
		d := mline{file: file, n: n + 1, name: name, rest: strings.TrimSpace(rest)}
		if name == "include_dir" {
			if err := t.includeDir(d, level); err != nil {
				return err
			}
			continue
		}
		dir, ok := t.findDirective(name)
		if !ok {
			return d.errorf("unknown directive (Mosquitto refuses it too)%s", suggestDirective(name))
		}
		if dir.kind == kBridge && t.bridge == nil {
			return d.errorf("belongs to a bridge, and no connection line comes before it in this file")
		}
		if dir.kind == kSecurity {
			if t.perListener != nil && name == "per_listener_settings" {
				return d.errorf("set again (first at %s:%d)", t.perListener.file, t.perListener.n)
			}
			if name != "per_listener_settings" {
				t.secSeen = true
			}
		}
		if err := dir.do(t, d); err != nil {
			return err
		}
	}
	return nil
}

// includeDir reads the files named *.conf in d's directory, in
// Mosquitto's order: alphabetical, each upper-case letter before its
// lower case ("A.conf", "a.conf", "B.conf"). Only the main file's
// include_dir lines count, as in Mosquitto.
func (t *translator) includeDir(d mline, level int) error {
	if level > 0 {
		t.warn(d, "left out: only the main file's include_dir lines count (as in Mosquitto)")
		return nil
	}
	dir, err := d.str()
	if err != nil {
		return err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return d.errorf("%v", err)
	}
	var names []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".conf") && !e.IsDir() {
			names = append(names, e.Name())
		}
	}
	slices.SortFunc(names, mosquittoOrder)
	main, mainErr := os.Stat(t.main)
	cur, bridge := t.cur, t.bridge
	for _, n := range names {
		path := filepath.Join(dir, n)
		if fi, err := os.Stat(path); err == nil && mainErr == nil && os.SameFile(fi, main) {
			return d.errorf("%s is the main configuration file; the directory must not hold it", path)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return d.errorf("%v", err)
		}
		t.includes++
		if err := t.read(data, path, level+1); err != nil {
			return err
		}
	}
	t.cur, t.bridge = cur, bridge
	return nil
}

// mosquittoOrder orders file names as Mosquitto's include_dir does:
// letter by letter ignoring case, an upper-case letter before the same
// letter in lower case.
func mosquittoOrder(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	for i := 0; i < len(ra) && i < len(rb); i++ {
		la, lb := unicode.ToLower(ra[i]), unicode.ToLower(rb[i])
		if la != lb {
			return int(la) - int(lb)
		}
	}
	for i := 0; i < len(ra) && i < len(rb); i++ {
		if ra[i] != rb[i] {
			if unicode.IsUpper(ra[i]) {
				return -1
			}
			return 1
		}
	}
	return len(ra) - len(rb)
}

// suggestDirective returns " (did you mean ...?)" for a likely typo.
func suggestDirective(name string) string {
	if s := suggest.Closest(name, mosquittoNames()); s != "" {
		return fmt.Sprintf(" (did you mean %q?)", s)
	}
	return ""
}
