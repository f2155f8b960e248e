package config

import (
	_ "embed"
	"fmt"
	"github.com/shoalmq/shoal/internal/enum"
	"os"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/shoalmq/shoal/auth"
	"github.com/shoalmq/shoal/broker"
)

// defaultYAML is the documented default file. It is unexported so that no
// caller can change it; Default hands out copies.
//
//go:embed default.yaml
var defaultYAML string

// Default returns the embedded default configuration file: every key at its
// default, each with a comment. Parsing it yields broker.DefaultConfig(),
// LogLevel info and LogFormat auto. Each call returns a new copy. Safe for
// concurrent use.
func Default() []byte { return []byte(defaultYAML) }

// File is a parsed configuration file.
type File struct {
	// Broker holds the broker settings, starting from broker.DefaultConfig().
	// Its Logger is left at the default; the program builds one from
	// LogLevel and LogFormat.
	Broker broker.Config

	// LogLevel is the least severe level logged (log_level). Default info.
	LogLevel zerolog.Level

	// LogFormat says how log lines are written (log_format). Default auto.
	LogFormat LogFormat

	// Persistence says whether the broker keeps its state in
	// Broker.DataDir (persistence). Default true; Parse clears DataDir when
	// it is false.
	Persistence bool

	// ImportMosquittoDB is a Mosquitto persistence file (mosquitto.db)
	// that the program reads, read-only, into the store the first time
	// the broker starts on it (import_mosquitto_db): retained messages,
	// persistent sessions with their subscriptions and queued messages.
	// "" (default): none. Needs Persistence. A mosquitto.conf with
	// persistence true sets it to its persistence_location and
	// persistence_file, and data_dir beside it.
	ImportMosquittoDB string

	// AdminListen is the address of the admin HTTP listener — metrics,
	// health, the JSON API, the dashboard (admin_listen). Default
	// 127.0.0.1:8083; empty turns it off.
	AdminListen string

	// AdminToken is the bearer token the admin API and dashboard require
	// (admin_token).
	// It may be empty only when AdminListen is a loopback address.
	AdminToken string

	// PasswordFile is the password file checked at CONNECT (password_file),
	// "" for none. Parse loads it into Broker.Authenticator.
	PasswordFile string

	// HTTPAuth configures the HTTP authenticator (http_auth_url,
	// http_auth_timeout, http_auth_cache); URL "" turns it off. Asked after
	// the password file, for users the file does not know.
	HTTPAuth auth.HTTPConfig

	// ACLFile is the file of topic rights (acl_file), "" for none. Parse
	// loads it into Broker.Authorizer.
	ACLFile string

	// ScramUsers are the user names of scram_users, each with a digest of
	// its password (the passwords are not kept), so that a reload can tell
	// a change; Parse builds Broker.AuthMethods from the passwords.
	ScramUsers map[string]string

	// User is the account the broker runs as when started as root (user):
	// the program switches to it, and to its groups, once its listeners
	// are bound and before it opens the store. "" (default): no change.
	// Without effect when not started as root.
	User string

	// AllowRoot lets the broker serve a listener on an address other than
	// loopback while running as root (allow_root). Default false: such a
	// broker refuses to start and names User.
	AllowRoot bool

	// ACLFormat is the syntax of ACLFile (acl_format): auto (told from
	// the file), shoal or mosquitto. Default auto.
	ACLFormat auth.ACLFormat

	// LogDest says where log lines go (log_dest): each of stderr, stdout,
	// syslog or "file PATH"; none alone for nowhere. Default [stderr].
	LogDest []string

	// PIDFile is where the program writes its process id at start and
	// removes it at exit (pid_file); "" for none.
	PIDFile string

	// Warnings are what the program should log once it has a logger:
	// lines of the password file that were skipped, flags passed over,
	// Mosquitto directives without effect or downgraded to a warning.
	// Each names the file and line where it can.
	Warnings []string

	// Format is the syntax the file was read in.
	Format Format
}

// DefaultAdminListen is where the default configuration serves the admin
// API.
const DefaultAdminListen = "127.0.0.1:8083"

// DefaultDataDir is where the default configuration keeps its state,
// relative to the working directory.
const DefaultDataDir = "shoal-data"

// defaults returns the File that an empty configuration file yields.
func defaults() File {
	f := File{
		Broker:      broker.DefaultConfig(),
		LogLevel:    zerolog.InfoLevel,
		LogFormat:   LogFormatAuto,
		Persistence: true,
		AdminListen: DefaultAdminListen,
		HTTPAuth:    auth.HTTPConfig{Timeout: 5 * time.Second, CacheTTL: time.Minute},
		LogDest:     []string{"stderr"},
	}
	f.Broker.DataDir = DefaultDataDir
	return f
}

// Load reads and parses the configuration file at path; errors name path.
// Safe for concurrent use.
func Load(path string) (File, error) { return LoadWith(path, nil) }

// LoadWith is Load with overrides (ParseWith).
func LoadWith(path string, overrides []Override) (File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return File{}, fmt.Errorf("config: %w", err)
	}
	return ParseWith(data, path, overrides)
}

// LogFormat says how log lines are written.
type LogFormat uint8

const (
	// LogFormatAuto writes console lines when the log destination is a
	// terminal and JSON otherwise (default).
	LogFormatAuto LogFormat = iota
	// LogFormatConsole writes human-readable lines.
	LogFormatConsole
	// LogFormatJSON writes one JSON object per line.
	LogFormatJSON
)

// String returns the config-file spelling.
func (f LogFormat) String() string { return logFormats.String(f) }

// Console reports whether logs should be written as console lines rather
// than JSON, given whether the destination is a terminal.
func (f LogFormat) Console(terminal bool) bool {
	switch f {
	case LogFormatConsole:
		return true
	case LogFormatJSON:
		return false
	}
	return terminal
}

// ParseLogFormat reads the config-file spelling of a LogFormat.
func ParseLogFormat(s string) (LogFormat, error) { return logFormats.Parse(s) }

// logFormats spells the LogFormat values, in order.
var logFormats = enum.New[LogFormat]("LogFormat", "log format", "auto", "console", "json")

// ParseLogLevel reads a log level: trace, debug, info, warn or error. It is
// stricter than zerolog.ParseLevel, which also takes levels that would hide
// every log line or make the program stop. The --log-level flag uses it too.
func ParseLogLevel(s string) (zerolog.Level, error) {
	switch s {
	case "trace":
		return zerolog.TraceLevel, nil
	case "debug":
		return zerolog.DebugLevel, nil
	case "info":
		return zerolog.InfoLevel, nil
	case "warn":
		return zerolog.WarnLevel, nil
	case "error":
		return zerolog.ErrorLevel, nil
	}
	return 0, fmt.Errorf("unknown log level %q (want trace, debug, info, warn or error)", s)
}

// loadAuth builds the broker's Authenticator and Authorizer from the
// password file, HTTP and ACL settings; errors name the key and line. The
// password file's skipped lines go to Warnings.
func (f *File) loadAuth(name string, places map[string]place) error {
	at := func(key string, err error) error {
		if p, ok := places[key]; ok {
			return p.error(err)
		}
		return &Error{File: name, Key: key, Err: err}
	}
	var authns []auth.Authenticator
	if f.PasswordFile != "" {
		pf, err := auth.LoadPasswordFile(f.PasswordFile)
		if err != nil {
			return at("password_file", err)
		}
		for _, w := range pf.Warnings() {
			f.Warnings = append(f.Warnings, strings.TrimPrefix(w.Error(), "auth: ")+": the user is left out")
		}
		authns = append(authns, pf)
	}
	if f.HTTPAuth.URL != "" {
		h, err := auth.NewHTTP(f.HTTPAuth)
		if err != nil {
			return at("http_auth_url", err)
		}
		authns = append(authns, h)
	}
	if len(authns) > 0 {
		f.Broker.Authenticator = auth.Chain(authns...)
	}
	if f.ACLFile != "" {
		acl, err := auth.LoadACLFileAs(f.ACLFile, f.ACLFormat)
		if err != nil {
			return at("acl_file", err)
		}
		f.Broker.Authorizer = acl
	}
	return nil
}
