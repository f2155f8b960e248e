package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/shoalmq/shoal/admin"
	"github.com/shoalmq/shoal/broker"
	"github.com/shoalmq/shoal/router"
	"github.com/shoalmq/shoal/store"
	"github.com/shoalmq/shoal/transport"
)

// setting is one config-file key and how its value lands in a File.
type setting struct {
	key string
	set func(f *File, v *yaml.Node) error
}

// settings lists every key a file may hold, in the order of default.yaml.
// It is a function, not a package variable, so that nothing can change the
// table; building it costs a few allocations per Parse.
func settings() []setting {
	return []setting{
		{"listen", func(f *File, v *yaml.Node) (err error) {
			f.Broker.Listen, err = stringValue(v)
			return err
		}},
		{"loops", func(f *File, v *yaml.Node) (err error) {
			f.Broker.Loops, err = intValue(v)
			return err
		}},
		{"workers", func(f *File, v *yaml.Node) (err error) {
			f.Broker.Workers, err = intValue(v)
			return err
		}},
		{"worker_queue", func(f *File, v *yaml.Node) (err error) {
			f.Broker.WorkerQueue, err = intValue(v)
			return err
		}},
		{"max_packet_size", func(f *File, v *yaml.Node) (err error) {
			f.Broker.MaxPacketSize, err = sizeValue(v)
			return err
		}},
		{"connect_timeout", func(f *File, v *yaml.Node) (err error) {
			f.Broker.ConnectTimeout, err = durationValue(v)
			return err
		}},
		{"max_keepalive", func(f *File, v *yaml.Node) (err error) {
			f.Broker.MaxKeepAlive, err = keepAliveValue(v)
			return err
		}},
		{"max_inflight", func(f *File, v *yaml.Node) (err error) {
			f.Broker.MaxInflight, err = intValue(v)
			return err
		}},
		{"max_queued", func(f *File, v *yaml.Node) (err error) {
			f.Broker.MaxQueued, err = intValue(v)
			return err
		}},
		{"max_queued_bytes", func(f *File, v *yaml.Node) (err error) {
			f.Broker.MaxQueuedBytes, err = sizeValue(v)
			return err
		}},
		{"queue_policy", func(f *File, v *yaml.Node) error {
			s, err := stringValue(v)
			if err != nil {
				return err
			}
			f.Broker.QueuePolicy, err = broker.ParseQueuePolicy(s)
			return err
		}},
		{"slow_consumer", func(f *File, v *yaml.Node) error {
			s, err := stringValue(v)
			if err != nil {
				return err
			}
			f.Broker.SlowConsumer, err = broker.ParseSlowConsumerPolicy(s)
			return err
		}},
		{"retry_interval", func(f *File, v *yaml.Node) (err error) {
			f.Broker.RetryInterval, err = durationValue(v)
			return err
		}},
		{"max_session_expiry", func(f *File, v *yaml.Node) (err error) {
			f.Broker.MaxSessionExpiry, err = durationValue(v)
			return err
		}},
		{"receive_maximum", func(f *File, v *yaml.Node) (err error) {
			f.Broker.ReceiveMaximum, err = uint16Value(v)
			return err
		}},
		{"topic_alias_maximum", func(f *File, v *yaml.Node) (err error) {
			f.Broker.TopicAliasMaximum, err = uint16Value(v)
			return err
		}},
		{"outbound_topic_aliases", func(f *File, v *yaml.Node) (err error) {
			f.Broker.OutboundTopicAliases, err = uint16Value(v)
			return err
		}},
		{"shared_strategy", func(f *File, v *yaml.Node) error {
			s, err := stringValue(v)
			if err != nil {
				return err
			}
			f.Broker.SharedStrategy, err = router.ParseSharedStrategy(s)
			return err
		}},
		{"max_qos", func(f *File, v *yaml.Node) error {
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
		{"retain_available", func(f *File, v *yaml.Node) (err error) {
			f.Broker.RetainAvailable, err = boolValue(v)
			return err
		}},
		{"response_information", func(f *File, v *yaml.Node) (err error) {
			f.Broker.ResponseInformation, err = stringValue(v)
			return err
		}},
		{"persistence", func(f *File, v *yaml.Node) (err error) {
			f.Persistence, err = boolValue(v)
			return err
		}},
		{"data_dir", func(f *File, v *yaml.Node) error {
			s, err := stringValue(v)
			if err == nil && s == "" {
				err = errors.New("must not be empty (to keep nothing, set persistence: false)")
			}
			f.Broker.DataDir = s
			return err
		}},
		{"durability", func(f *File, v *yaml.Node) error {
			s, err := stringValue(v)
			if err != nil {
				return err
			}
			f.Broker.Durability, err = broker.ParseDurability(s)
			return err
		}},
		{"on_damage", func(f *File, v *yaml.Node) error {
			s, err := stringValue(v)
			if err != nil {
				return err
			}
			f.Broker.OnDamage, err = store.ParseOnDamage(s)
			return err
		}},
		{"sys_interval", func(f *File, v *yaml.Node) (err error) {
			f.Broker.SysInterval, err = durationValue(v)
			return err
		}},
		{"admin_listen", func(f *File, v *yaml.Node) (err error) {
			f.AdminListen, err = stringValue(v)
			if err == nil && f.AdminListen != "" {
				if _, _, serr := net.SplitHostPort(f.AdminListen); serr != nil {
					err = fmt.Errorf("want host:port or \"\" (off): %w", serr)
				}
			}
			return err
		}},
		{"admin_token", func(f *File, v *yaml.Node) (err error) {
			f.AdminToken, err = stringValue(v)
			return err
		}},
		{"tls_listen", func(f *File, v *yaml.Node) (err error) {
			f.Broker.Transports.TLSListen, err = stringValue(v)
			return err
		}},
		{"ws_listen", func(f *File, v *yaml.Node) (err error) {
			f.Broker.Transports.WSListen, err = stringValue(v)
			return err
		}},
		{"wss_listen", func(f *File, v *yaml.Node) (err error) {
			f.Broker.Transports.WSSListen, err = stringValue(v)
			return err
		}},
		{"ws_path", func(f *File, v *yaml.Node) (err error) {
			f.Broker.Transports.WSPath, err = stringValue(v)
			return err
		}},
		{"tls_cert_file", func(f *File, v *yaml.Node) (err error) {
			f.Broker.Transports.CertFile, err = stringValue(v)
			return err
		}},
		{"tls_key_file", func(f *File, v *yaml.Node) (err error) {
			f.Broker.Transports.KeyFile, err = stringValue(v)
			return err
		}},
		{"tls_client_ca_file", func(f *File, v *yaml.Node) (err error) {
			f.Broker.Transports.ClientCAFile, err = stringValue(v)
			return err
		}},
		{"tls_client_certs", func(f *File, v *yaml.Node) error {
			s, err := stringValue(v)
			if err != nil {
				return err
			}
			f.Broker.Transports.ClientCerts, err = transport.ParseClientCertPolicy(s)
			return err
		}},
		{"tls_identity", func(f *File, v *yaml.Node) error {
			s, err := stringValue(v)
			if err != nil {
				return err
			}
			f.Broker.Transports.Identity, err = transport.ParseIdentitySource(s)
			return err
		}},
		{"scram_users", func(f *File, v *yaml.Node) (err error) {
			f.Broker.AuthMethods, err = scramUsersValue(v)
			return err
		}},
		{"allow_anonymous", func(f *File, v *yaml.Node) (err error) {
			f.Broker.AllowAnonymous, err = boolValue(v)
			return err
		}},
		{"password_file", func(f *File, v *yaml.Node) (err error) {
			f.PasswordFile, err = stringValue(v)
			return err
		}},
		{"http_auth_url", func(f *File, v *yaml.Node) (err error) {
			f.HTTPAuth.URL, err = stringValue(v)
			return err
		}},
		{"http_auth_timeout", func(f *File, v *yaml.Node) (err error) {
			f.HTTPAuth.Timeout, err = durationValue(v)
			if err == nil && f.HTTPAuth.Timeout <= 0 {
				err = errors.New("must be positive")
			}
			return err
		}},
		{"http_auth_cache", func(f *File, v *yaml.Node) (err error) {
			f.HTTPAuth.CacheTTL, err = durationValue(v)
			return err
		}},
		{"acl_file", func(f *File, v *yaml.Node) (err error) {
			f.ACLFile, err = stringValue(v)
			return err
		}},
		{"auth_workers", func(f *File, v *yaml.Node) (err error) {
			f.Broker.AuthWorkers, err = intValue(v)
			return err
		}},
		{"auth_queue", func(f *File, v *yaml.Node) (err error) {
			f.Broker.AuthQueue, err = intValue(v)
			return err
		}},
		{"max_connections", func(f *File, v *yaml.Node) (err error) {
			f.Broker.MaxConnections, err = intValue(v)
			return err
		}},
		{"connect_rate", func(f *File, v *yaml.Node) (err error) {
			f.Broker.ConnectRate, err = rateValue(v)
			return err
		}},
		{"connect_burst", func(f *File, v *yaml.Node) (err error) {
			f.Broker.ConnectBurst, err = intValue(v)
			return err
		}},
		{"publish_rate", func(f *File, v *yaml.Node) (err error) {
			f.Broker.PublishRate, err = rateValue(v)
			return err
		}},
		{"publish_burst", func(f *File, v *yaml.Node) (err error) {
			f.Broker.PublishBurst, err = intValue(v)
			return err
		}},
		{"max_subscriptions", func(f *File, v *yaml.Node) (err error) {
			f.Broker.MaxSubscriptions, err = intValue(v)
			return err
		}},
		{"max_topic_length", func(f *File, v *yaml.Node) (err error) {
			f.Broker.MaxTopicLength, err = intValue(v)
			return err
		}},
		{"max_topic_levels", func(f *File, v *yaml.Node) (err error) {
			f.Broker.MaxTopicLevels, err = intValue(v)
			return err
		}},
		{"max_client_id_length", func(f *File, v *yaml.Node) (err error) {
			f.Broker.MaxClientIDLength, err = intValue(v)
			return err
		}},
		{"log_level", func(f *File, v *yaml.Node) error {
			s, err := stringValue(v)
			if err != nil {
				return err
			}
			f.LogLevel, err = ParseLogLevel(s)
			return err
		}},
		{"log_format", func(f *File, v *yaml.Node) error {
			s, err := stringValue(v)
			if err != nil {
				return err
			}
			f.LogFormat, err = ParseLogFormat(s)
			return err
		}},
		{"user", func(f *File, v *yaml.Node) (err error) {
			f.User, err = stringValue(v)
			return err
		}},
		{"allow_root", func(f *File, v *yaml.Node) (err error) {
			f.AllowRoot, err = boolValue(v)
			return err
		}},
	}
}

// Parse reads a configuration file's contents; name is used in errors (a
// path, or a description such as "(embedded default)"). An empty file
// yields the defaults. The result has passed broker.Config.Validate. Every
// error is an *Error. Safe for concurrent use.
func Parse(data []byte, name string) (File, error) {
	root, err := parseDocument(data, name)
	if err != nil {
		return File{}, err
	}
	f := defaults()
	// Where each key's value sits, to place Validate's errors.
	values := make(map[string]*yaml.Node)
	if root != nil {
		table := settings()
		at := func(n *yaml.Node, key string, err error) error {
			return &Error{File: name, Line: n.Line, Column: n.Column, Key: key, Err: err}
		}
		for i := 0; i+1 < len(root.Content); i += 2 {
			k, v := root.Content[i], root.Content[i+1]
			if k.ShortTag() == "!!merge" {
				return File{}, at(k, "", errors.New("merge keys (<<) are not supported; write each setting out"))
			}
			if k.Kind != yaml.ScalarNode || k.ShortTag() != "!!str" {
				return File{}, at(k, "", fmt.Errorf("setting names must be strings, got %s", describe(k)))
			}
			if prev, ok := values[k.Value]; ok {
				return File{}, at(k, k.Value, fmt.Errorf("set again (first set at line %d)", prev.Line))
			}
			s, ok := lookup(table, k.Value)
			if !ok {
				return File{}, at(k, "", unknownKey(k.Value, table))
			}
			if err := s.set(&f, resolveAlias(v)); err != nil {
				return File{}, at(v, k.Value, err)
			}
			values[k.Value] = v
		}
	}
	if !f.Persistence {
		f.Broker.DataDir = ""
	}
	if err := f.loadAuth(name, values); err != nil {
		return File{}, err
	}
	if err := admin.CheckConfig(f.AdminListen, f.AdminToken); err != nil {
		n := values["admin_listen"]
		if n == nil {
			n = &yaml.Node{Line: 1, Column: 1}
		}
		return File{}, &Error{File: name, Line: n.Line, Column: n.Column, Key: "admin_token", Err: err}
	}
	if err := f.Broker.Validate(); err != nil {
		return File{}, validateError(err, name, values)
	}
	return f, nil
}

// parseDocument parses data as one YAML document and returns its top-level
// mapping, or nil for an empty document.
func parseDocument(data []byte, name string) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, syntaxError(err, name, data)
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, syntaxError(err, name, data)
	default:
		return nil, &Error{File: name, Line: extra.Line, Column: extra.Column,
			Err: errors.New("a second YAML document; a configuration file holds one")}
	}
	if len(doc.Content) == 0 {
		return nil, nil
	}
	root := resolveAlias(doc.Content[0])
	switch {
	case root.Kind == yaml.MappingNode:
		return root, nil
	case root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null":
		// A file holding only "---" or "~" sets nothing.
		return nil, nil
	}
	return nil, &Error{File: name, Line: root.Line, Column: root.Column,
		Err: fmt.Errorf("want a mapping of settings (key: value lines), got %s", describe(root))}
}

// syntaxError turns a yaml.v3 error, "yaml: line 3: problem", into an
// *Error at the line where the problem shows.
//
// yaml.v3 reports the line where the enclosing construct began, counted
// from 0 for parser errors and from 1 for scanner errors, and no line at
// all when that is the first line; so its number is often one or more
// lines early. The line is instead found as the first line that cannot be
// added to the longest prefix of the file that still parses, which is
// where a reader sees the problem. Files are short, so the quadratic
// search costs nothing; past maxSearchLines the library's line is kept.
func syntaxError(err error, name string, data []byte) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if num, problem, ok := strings.Cut(rest, ": "); ok {
			if n, convErr := strconv.Atoi(num); convErr == nil {
				line, msg = n, problem
			}
		}
	}
	if l, ok := firstBadLine(data); ok {
		line = l
	}
	return &Error{File: name, Line: line, Err: fmt.Errorf("YAML syntax error: %s", msg)}
}

// maxSearchLines bounds firstBadLine's work: a configuration file is a few
// dozen lines. The worst case, a quote left open on the first of 500 lines,
// takes about 50ms (measured: 180ms at 1,000 lines).
const maxSearchLines = 500

// firstBadLine returns the 1-based line after the longest prefix of whole
// lines that parses as YAML, for data that does not parse.
func firstBadLine(data []byte) (int, bool) {
	var ends []int // ends[i] is the offset just past line i+1
	for i, c := range data {
		if c == '\n' {
			ends = append(ends, i+1)
		}
	}
	if len(ends) > maxSearchLines {
		return 0, false
	}
	for k := len(ends); k > 0; k-- {
		if parses(data[:ends[k-1]]) {
			return k + 1, true
		}
	}
	return 1, true
}

// parses reports whether data is a well-formed YAML stream.
func parses(data []byte) bool {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			return true
		}
		if err != nil {
			return false
		}
	}
}

// validateError places an error from broker.Config.Validate, which starts
// with the key it is about, at that key's value in the file.
func validateError(err error, name string, values map[string]*yaml.Node) error {
	key, problem, ok := strings.Cut(err.Error(), ": ")
	if !ok {
		return &Error{File: name, Err: err}
	}
	e := &Error{File: name, Key: key, Err: errors.New(problem)}
	if v, ok := values[key]; ok {
		e.Line, e.Column = v.Line, v.Column
	}
	return e
}

func lookup(table []setting, key string) (setting, bool) {
	for _, s := range table {
		if s.key == key {
			return s, true
		}
	}
	return setting{}, false
}

func unknownKey(key string, table []setting) error {
	known := make([]string, len(table))
	for i, s := range table {
		known[i] = s.key
	}
	if s := suggest(key, known); s != "" {
		return fmt.Errorf("unknown key %q (did you mean %q?)", key, s)
	}
	return fmt.Errorf("unknown key %q (known keys: %s)", key, strings.Join(known, ", "))
}

// resolveAlias follows *alias references to the node they name.
func resolveAlias(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}
