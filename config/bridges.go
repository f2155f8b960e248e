package config

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/shoalmq/shoal/bridge"
	"github.com/shoalmq/shoal/internal/suggest"
)

// The bridges key of a YAML file: a list of bridges, each a mapping of the
// keys bridgeKeys lists, Shoal's spelling of Mosquitto's bridge
// directives. Each bridge starts from Mosquitto's defaults
// (bridge.DefaultConnection), as a mosquitto.conf's does, and the whole
// list is checked by bridge.Config.Validate, the checks a mosquitto.conf's
// bridges go through too; an error is placed at the key it is about.

// bridgeKey is one key of a bridge's mapping.
type bridgeKey struct {
	key       string // "keepalive"; "tls.ca_file" inside tls
	directive string // Mosquitto's, as package bridge's errors name it
	set       func(cn *bridge.Connection, v *yaml.Node) error
}

// bridgeKeys lists the keys of a bridge but name and topics, which
// bridgeValue reads itself, with the Mosquitto directive each stands for;
// "tls.ca_file" is ca_file inside tls. A function, not a variable:
// nothing may change it.
func bridgeKeys() []bridgeKey {
	str := func(ptr func(cn *bridge.Connection) *string) func(*bridge.Connection, *yaml.Node) error {
		return func(cn *bridge.Connection, v *yaml.Node) (err error) {
			*ptr(cn), err = stringValue(v)
			return err
		}
	}
	flag := func(ptr func(cn *bridge.Connection) *bool) func(*bridge.Connection, *yaml.Node) error {
		return func(cn *bridge.Connection, v *yaml.Node) (err error) {
			*ptr(cn), err = boolValue(v)
			return err
		}
	}
	return []bridgeKey{
		{"addresses", "address", func(cn *bridge.Connection, v *yaml.Node) (err error) {
			cn.Addresses, err = stringList(v)
			return err
		}},
		{"remote_username", "remote_username", str(func(cn *bridge.Connection) *string { return &cn.RemoteUsername })},
		{"remote_password", "remote_password", str(func(cn *bridge.Connection) *string { return &cn.RemotePassword })},
		{"remote_client_id", "remote_clientid", str(func(cn *bridge.Connection) *string { return &cn.RemoteClientID })},
		{"local_client_id", "local_clientid", str(func(cn *bridge.Connection) *string { return &cn.LocalClientID })},
		{"protocol_version", "bridge_protocol_version", func(cn *bridge.Connection, v *yaml.Node) error {
			s, err := stringValue(v)
			cn.Protocol = bridge.Protocol(s) // Validate names the versions
			return err
		}},
		{"clean_session", "cleansession", flag(func(cn *bridge.Connection) *bool { return &cn.CleanSession })},
		{"try_private", "try_private", flag(func(cn *bridge.Connection) *bool { return &cn.TryPrivate })},
		{"notifications", "notifications", flag(func(cn *bridge.Connection) *bool { return &cn.Notifications })},
		{"notification_topic", "notification_topic", str(func(cn *bridge.Connection) *string { return &cn.NotificationTopic })},
		{"tls.ca_file", "bridge_cafile", str(func(cn *bridge.Connection) *string { return &cn.TLS.CAFile })},
		{"tls.cert_file", "bridge_certfile", str(func(cn *bridge.Connection) *string { return &cn.TLS.CertFile })},
		{"tls.key_file", "bridge_keyfile", str(func(cn *bridge.Connection) *string { return &cn.TLS.KeyFile })},
		{"tls.insecure", "bridge_insecure", flag(func(cn *bridge.Connection) *bool { return &cn.TLS.Insecure })},
		{"keepalive", "keepalive_interval", func(cn *bridge.Connection, v *yaml.Node) error {
			d, err := durationValue(v)
			switch {
			case err != nil:
				return err
			case d%time.Second != 0:
				return fmt.Errorf("%v is not a whole number of seconds", d)
			case d <= 0:
				return fmt.Errorf("%v is under the minimum of %v", d, bridge.MinKeepAlive) // 0 is not "the default" here
			}
			cn.KeepAlive = d
			return nil
		}},
		{"restart_timeout", "restart_timeout", func(cn *bridge.Connection, v *yaml.Node) (err error) {
			cn.RestartTimeout, err = backoffValue(v)
			return err
		}},
	}
}

// backoffValue reads restart_timeout: a duration, waited after every
// failure, or [BASE, CAP], waits drawn between them with jitter.
func backoffValue(n *yaml.Node) (bridge.Backoff, error) {
	items := []*yaml.Node{n}
	if n.Kind == yaml.SequenceNode {
		items = n.Content
		if len(items) != 2 {
			return bridge.Backoff{}, fmt.Errorf("want a duration, or [base, cap]; got a list of %d", len(items))
		}
	}
	var d [2]time.Duration
	for i, it := range items {
		v, err := durationValue(resolveAlias(it))
		if err != nil {
			return bridge.Backoff{}, err
		}
		if v <= 0 {
			return bridge.Backoff{}, fmt.Errorf("%v: must be above 0", v) // 0 is not "the default" here
		}
		d[i] = v
	}
	return bridge.Backoff{Base: d[0], Cap: d[1]}, nil // a cap under the base: Validate says so
}

// stringList reads a list of strings.
func stringList(n *yaml.Node) ([]string, error) {
	if n.Kind != yaml.SequenceNode {
		return nil, wrongType("a list", n)
	}
	var out []string
	for _, it := range n.Content {
		s, err := stringValue(resolveAlias(it))
		if err != nil {
			return nil, &nodeError{n: it, err: err}
		}
		out = append(out, s)
	}
	return out, nil
}

// bridgeNodes are where one bridge's values are in the file, for errors.
type bridgeNodes struct {
	at     *yaml.Node            // its mapping
	keys   map[string]*yaml.Node // each key's value ("tls.ca_file" inside tls)
	topics []*yaml.Node          // each topic's mapping
}

// bridgesValue reads the bridges key. Its errors about one bridge are
// *nodeError, at the value they are about.
func bridgesValue(n *yaml.Node) (bridge.Config, error) {
	var cfg bridge.Config
	if n.Kind != yaml.SequenceNode {
		return cfg, wrongType("a list of bridges", n)
	}
	var nodes []bridgeNodes
	for i, it := range n.Content {
		cn, bn, err := bridgeValue(resolveAlias(it), i)
		if err != nil {
			return bridge.Config{}, err
		}
		cfg.Connections = append(cfg.Connections, cn)
		nodes = append(nodes, bn)
	}
	err := cfg.Validate()
	var ce *bridge.ConfigError
	if !errors.As(err, &ce) {
		return cfg, err
	}
	// Placed at the key the directive stands for, and said with the
	// file's names rather than Mosquitto's.
	bn := nodes[ce.Index]
	at, name := bn.at, ce.Directive
	keyOf := map[string]string{}
	for _, k := range bridgeKeys() {
		keyOf[k.directive] = k.key
	}
	if k, ok := keyOf[ce.Directive]; ok {
		name = k
	}
	for _, d := range ce.Directives() {
		if v, ok := bn.keys[keyOf[d]]; ok {
			at = v
			break
		}
	}
	switch ce.Directive {
	case "connection":
		name, at = "name", bn.keys["name"]
	case "topic":
		name = "topics"
		if v, ok := bn.keys["topics"]; ok {
			at = v
		}
		if ce.Topic >= 0 && ce.Topic < len(bn.topics) {
			at = bn.topics[ce.Topic]
		}
	}
	msg := bridgeKeyNames().Replace(ce.Err.Error())
	return cfg, &nodeError{n: at, err: fmt.Errorf("bridge %q: %s: %s", ce.Name, name, msg)}
}

// bridgeKeyNames rewrites the Mosquitto directives package bridge's
// messages name into the keys of a bridge's mapping.
func bridgeKeyNames() *strings.Replacer {
	var pairs []string
	for _, k := range bridgeKeys() {
		if strings.Contains(k.directive, "_") && k.directive != k.key {
			pairs = append(pairs, k.directive, k.key)
		}
	}
	return strings.NewReplacer(pairs...)
}

// bridgeValue reads the i'th bridge (from 0) of the list.
func bridgeValue(n *yaml.Node, i int) (bridge.Connection, bridgeNodes, error) {
	bn := bridgeNodes{at: n, keys: map[string]*yaml.Node{}}
	label := "bridge " + strconv.Itoa(i+1)
	fail := func(err error) (bridge.Connection, bridgeNodes, error) {
		var ne *nodeError
		if !errors.As(err, &ne) {
			ne = &nodeError{n: n, err: err}
		}
		return bridge.Connection{}, bn, &nodeError{n: ne.n, err: fmt.Errorf("%s: %w", label, ne.err)}
	}
	if n.Kind != yaml.MappingNode {
		return fail(wrongType("a mapping (name: ..., addresses: ..., topics: ...)", n))
	}
	for j := 0; j+1 < len(n.Content); j += 2 {
		if k, v := n.Content[j], resolveAlias(n.Content[j+1]); k.Value == "name" && isScalar(v, "!!str") {
			label = "bridge " + strconv.Quote(v.Value) // for the errors before it is read
			break
		}
	}
	pairs, err := mappingPairs(n)
	if err != nil {
		return fail(err)
	}
	for _, p := range pairs {
		bn.keys[p.key.Value] = p.value
	}
	nameNode, ok := bn.keys["name"]
	if !ok {
		return fail(errors.New("a bridge needs a name"))
	}
	name, err := stringValue(nameNode)
	if err != nil {
		return fail(&nodeError{n: nameNode, err: fmt.Errorf("name: %w", err)})
	}
	label = "bridge " + strconv.Quote(name)
	cn := bridge.DefaultConnection(name)
	keys := map[string]bridgeKey{}
	known := []string{"name", "topics"}
	for _, k := range bridgeKeys() {
		keys[k.key] = k
		if top, _, nested := strings.Cut(k.key, "."); !nested {
			known = append(known, k.key)
		} else if known[len(known)-1] != top {
			known = append(known, top)
		}
	}
	set := func(key string, v *yaml.Node) error {
		k, ok := keys[key]
		if !ok {
			return nil
		}
		if err := k.set(&cn, v); err != nil {
			var ne *nodeError
			if errors.As(err, &ne) {
				return &nodeError{n: ne.n, err: fmt.Errorf("%s: %w", key, ne.err)}
			}
			return &nodeError{n: v, err: fmt.Errorf("%s: %w", key, err)}
		}
		return nil
	}
	for _, p := range pairs {
		key, v := p.key.Value, p.value
		switch key {
		case "name":
		case "topics":
			if err := bn.readTopics(&cn, v); err != nil {
				return fail(err)
			}
		case "tls":
			if v.Kind != yaml.MappingNode {
				return fail(&nodeError{n: v, err: fmt.Errorf("tls: %w", wrongType("a mapping (ca_file, cert_file, key_file, insecure)", v))})
			}
			inner, err := mappingPairs(v)
			if err != nil {
				return fail(err)
			}
			for _, q := range inner {
				full := "tls." + q.key.Value
				if _, ok := keys[full]; !ok {
					return fail(&nodeError{n: q.key, err: fmt.Errorf("tls: %w", unknownKeyOf(q.key.Value, []string{"ca_file", "cert_file", "key_file", "insecure"}))})
				}
				bn.keys[full] = q.value
				if err := set(full, q.value); err != nil {
					return fail(err)
				}
			}
		default:
			if _, ok := keys[key]; !ok {
				return fail(&nodeError{n: p.key, err: unknownKeyOf(key, known)})
			}
			if err := set(key, v); err != nil {
				return fail(err)
			}
		}
	}
	return cn, bn, nil
}

// readTopics reads the topics key of a bridge into cn, noting where each
// topic is.
func (bn *bridgeNodes) readTopics(cn *bridge.Connection, n *yaml.Node) error {
	if n.Kind != yaml.SequenceNode {
		return &nodeError{n: n, err: fmt.Errorf("topics: %w", wrongType("a list of topics (pattern: ..., direction: ..., qos: ...)", n))}
	}
	for _, it := range n.Content {
		it = resolveAlias(it)
		tp, err := bridgeTopic(it)
		if err != nil {
			var ne *nodeError
			errors.As(err, &ne)
			return &nodeError{n: ne.n, err: fmt.Errorf("topics: %w", ne.err)}
		}
		cn.Topics = append(cn.Topics, tp)
		bn.topics = append(bn.topics, it)
	}
	return nil
}

// pair is one key and value of a mapping.
type pair struct{ key, value *yaml.Node }

// mappingPairs returns the keys and values of mapping n, in order; a key
// given twice, or not a string, is a *nodeError.
func mappingPairs(n *yaml.Node) ([]pair, error) {
	var out []pair
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], resolveAlias(n.Content[i+1])
		if !isScalar(k, "!!str") {
			return nil, &nodeError{n: k, err: fmt.Errorf("keys must be strings, got %s", describe(k))}
		}
		if first, ok := seen[k.Value]; ok {
			return nil, &nodeError{n: k, err: fmt.Errorf("%s: set again (first set at line %d)", k.Value, first)}
		}
		seen[k.Value] = k.Line
		out = append(out, pair{k, v})
	}
	return out, nil
}

// bridgeTopic reads one topic of a bridge: pattern (required; "" with both
// prefixes renames one topic), direction (out, in or both; default out),
// qos (0, 1 or 2; default 0), local_prefix and remote_prefix (default "").
// Its errors are *nodeError.
func bridgeTopic(n *yaml.Node) (bridge.Topic, error) {
	tp := bridge.Topic{Direction: bridge.Out}
	if n.Kind != yaml.MappingNode {
		return tp, &nodeError{n: n, err: wrongType("a mapping (pattern: ..., direction: ..., qos: ...)", n)}
	}
	pairs, err := mappingPairs(n)
	if err != nil {
		return tp, err
	}
	hasPattern := false
	for _, p := range pairs {
		k, v := p.key.Value, p.value
		var err error
		switch k {
		case "pattern":
			tp.Pattern, err = stringValue(v)
			hasPattern = true
		case "direction":
			var s string
			if s, err = stringValue(v); err == nil {
				tp.Direction, err = bridge.ParseDirection(s)
			}
		case "qos":
			var q int
			if q, err = intValue(v); err == nil && (q < 0 || q > 2) {
				err = fmt.Errorf("%d is not 0, 1 or 2", q)
			}
			tp.QoS = byte(q)
		case "local_prefix":
			tp.LocalPrefix, err = stringValue(v)
		case "remote_prefix":
			tp.RemotePrefix, err = stringValue(v)
		default:
			return tp, &nodeError{n: p.key, err: unknownKeyOf(k, []string{"pattern", "direction", "qos", "local_prefix", "remote_prefix"})}
		}
		if err != nil {
			return tp, &nodeError{n: v, err: fmt.Errorf("%s: %w", k, err)}
		}
	}
	if !hasPattern {
		return tp, &nodeError{n: n, err: errors.New(`a topic needs a pattern ("" with both prefixes renames one topic)`)}
	}
	return tp, nil
}

// unknownKeyOf is the error for a key of a mapping inside a setting that
// is not one of known.
func unknownKeyOf(key string, known []string) error {
	if s := suggest.Closest(key, known); s != "" {
		return fmt.Errorf("unknown key %q (did you mean %q?)", key, s)
	}
	return fmt.Errorf("unknown key %q (known keys: %s)", key, strings.Join(known, ", "))
}
