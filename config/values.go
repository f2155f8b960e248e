package config

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/shoalmq/shoal/auth"
	"github.com/shoalmq/shoal/auth/scram"
)

// describe names a node's YAML type and value for "got ..." messages.
func describe(n *yaml.Node) string {
	n = resolveAlias(n)
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
	default:
		return "nothing"
	}
	switch n.ShortTag() {
	case "!!null":
		return "no value"
	case "!!str":
		return "string " + strconv.Quote(n.Value)
	case "!!int":
		return "integer " + n.Value
	case "!!float":
		return "number " + n.Value
	case "!!bool":
		return "boolean " + n.Value
	}
	return fmt.Sprintf("%s %s", n.ShortTag(), n.Value)
}

func wrongType(want string, n *yaml.Node) error {
	return fmt.Errorf("want %s, got %s", want, describe(n))
}

// notNumber is the error for a value that should have been an integer (or
// a string form of one). yaml.v3 resolves an integer too big for 64 bits
// as a float; such a value is reported as out of range, not as a float.
func notNumber(want string, n *yaml.Node) error {
	if isScalar(n, "!!float") && strings.Trim(n.Value, "+-0123456789") == "" {
		return fmt.Errorf("%s is out of range", n.Value)
	}
	return wrongType(want, n)
}

func isScalar(n *yaml.Node, tag string) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == tag
}

// stringValue reads a YAML string. Numbers and booleans are refused rather
// than converted, so that a typo does not pass as a value.
func stringValue(n *yaml.Node) (string, error) {
	if !isScalar(n, "!!str") {
		return "", wrongType("a string", n)
	}
	return n.Value, nil
}

// int64Value reads a YAML integer in any of its spellings (1000, 0x3e8).
func int64Value(n *yaml.Node) (int64, error) {
	var v int64
	if err := n.Decode(&v); err != nil {
		// Tagged !!int but beyond int64.
		return 0, fmt.Errorf("%s is out of range", n.Value)
	}
	return v, nil
}

// intValue reads a count: a YAML integer that fits an int. Ranges are
// Validate's business.
func intValue(n *yaml.Node) (int, error) {
	if !isScalar(n, "!!int") {
		return 0, notNumber("an integer", n)
	}
	v, err := int64Value(n)
	if err != nil {
		return 0, err
	}
	if int64(int(v)) != v {
		return 0, fmt.Errorf("%d is out of range", v)
	}
	return int(v), nil
}

// uint16Value reads an integer that fits MQTT's 16-bit fields (0..65535).
func uint16Value(n *yaml.Node) (uint16, error) {
	v, err := intValue(n)
	if err != nil {
		return 0, err
	}
	if v < 0 || v > 65535 {
		return 0, fmt.Errorf("%d is outside 0..65535", v)
	}
	return uint16(v), nil
}

// boolValue reads a YAML boolean (true/false).
// rateValue reads a non-negative number of events per second: an integer
// or a decimal ("0.5" is one every two seconds).
func rateValue(n *yaml.Node) (float64, error) {
	if n.Kind != yaml.ScalarNode || (n.ShortTag() != "!!int" && n.ShortTag() != "!!float") {
		return 0, fmt.Errorf("want a number per second, got %s", describe(n))
	}
	v, err := strconv.ParseFloat(n.Value, 64)
	if err != nil || v < 0 || math.IsInf(v, 0) || math.IsNaN(v) {
		return 0, fmt.Errorf("want a number per second, 0 or more, got %q", n.Value)
	}
	return v, nil
}

func boolValue(n *yaml.Node) (bool, error) {
	if !isScalar(n, "!!bool") {
		return false, wrongType("true or false", n)
	}
	var v bool
	if err := n.Decode(&v); err != nil {
		return false, wrongType("true or false", n)
	}
	return v, nil
}

// durationValue reads a Go duration string ("10s", "1m30s") or a plain
// integer of seconds.
func durationValue(n *yaml.Node) (time.Duration, error) {
	switch {
	case isScalar(n, "!!int"):
		secs, err := int64Value(n)
		if err != nil {
			return 0, err
		}
		if secs > math.MaxInt64/int64(time.Second) || secs < math.MinInt64/int64(time.Second) {
			return 0, fmt.Errorf("%d seconds is out of range", secs)
		}
		return time.Duration(secs) * time.Second, nil
	case isScalar(n, "!!str"):
		d, err := time.ParseDuration(n.Value)
		if err != nil {
			return 0, fmt.Errorf("%q is not a duration (want e.g. \"10s\", \"1m30s\" or an integer of seconds)", n.Value)
		}
		return d, nil
	}
	return 0, notNumber(`a duration ("10s", "1m30s") or an integer of seconds`, n)
}

// keepAliveValue reads a duration of whole seconds that fits MQTT's 16-bit
// keep-alive field.
func keepAliveValue(n *yaml.Node) (uint16, error) {
	d, err := durationValue(n)
	if err != nil {
		return 0, err
	}
	if d%time.Second != 0 {
		return 0, fmt.Errorf("%v is not a whole number of seconds", d)
	}
	if d < 0 || d > math.MaxUint16*time.Second {
		return 0, fmt.Errorf("%d seconds is outside 0..65535", d/time.Second)
	}
	return uint16(d / time.Second), nil
}

// unitBytes returns the multiplier of a size unit; "" means bytes.
func unitBytes(unit string) (int64, bool) {
	switch unit {
	case "", "B":
		return 1, true
	case "KB":
		return 1e3, true
	case "MB":
		return 1e6, true
	case "GB":
		return 1e9, true
	case "KiB":
		return 1 << 10, true
	case "MiB":
		return 1 << 20, true
	case "GiB":
		return 1 << 30, true
	}
	return 0, false
}

var errNotSize = errors.New("not a size")

// sizeValue reads a byte count: a plain integer, or an integer followed by
// one of B, KB, MB, GB, KiB, MiB, GiB, optionally with a space between.
func sizeValue(n *yaml.Node) (int, error) {
	switch {
	case isScalar(n, "!!int"):
		return intValue(n)
	case isScalar(n, "!!str"):
		v, err := parseSize(n.Value)
		if errors.Is(err, errNotSize) {
			return 0, fmt.Errorf("%q is not a size (want bytes, or an integer with B, KB, MB, GB, KiB, MiB or GiB)", n.Value)
		}
		return v, err
	}
	return 0, notNumber(`a size (1048576, "1MiB", "64KiB")`, n)
}

func parseSize(s string) (int, error) {
	digits := strings.TrimLeft(s, "0123456789")
	num, unit := s[:len(s)-len(digits)], strings.TrimPrefix(digits, " ")
	if num == "" {
		return 0, errNotSize
	}
	mult, ok := unitBytes(unit)
	if !ok {
		return 0, errNotSize
	}
	v, err := strconv.ParseInt(num, 10, 64)
	if err != nil || v > math.MaxInt64/mult || int64(int(v*mult)) != v*mult {
		return 0, fmt.Errorf("%s is out of range", s)
	}
	return int(v * mult), nil
}

// scramUsersValue reads a mapping of user names to passwords and builds the
// SCRAM-SHA-256 method from it. Salts and the secret behind unknown users'
// decoy salts are derived from the file's contents, not drawn at random, so
// they stay the same across restarts: a salt that changed only for unknown
// users would tell an observer which names exist.
//
// It also returns each user with a digest of its password, for Changed.
func scramUsersValue(n *yaml.Node) ([]auth.Method, map[string]string, error) {
	if n.Kind != yaml.MappingNode {
		return nil, nil, wrongType("a mapping of user names to passwords", n)
	}
	store := scram.MemStore{}
	shown := map[string]string{}
	secret := sha256.New()
	for i := 0; i+1 < len(n.Content); i += 2 {
		user, err := stringValue(n.Content[i])
		if err != nil {
			return nil, nil, err
		}
		pass, err := stringValue(n.Content[i+1])
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", user, err)
		}
		if user == "" || pass == "" {
			return nil, nil, errors.New("user names and passwords must not be empty")
		}
		if _, dup := store[user]; dup {
			return nil, nil, fmt.Errorf("user %q is listed twice", user)
		}
		mac := hmac.New(sha256.New, []byte(pass))
		mac.Write([]byte("shoal scram salt\x00" + user))
		salt := mac.Sum(nil)[:16]
		store[user] = scram.NewCredentials(pass, salt, scramIterations)
		shown[user] = fmt.Sprintf("%x", salt[:4])
		secret.Write([]byte(user + "\x00" + pass + "\x00"))
	}
	if len(store) == 0 {
		return nil, nil, nil
	}
	return []auth.Method{scram.New(store, scram.WithSecret(secret.Sum(nil)))}, shown, nil
}

// scramIterations is the PBKDF2 work factor for SCRAM credentials: RFC 7677
// section 4's minimum. Derivation happens once, at start-up.
const scramIterations = 4096

// logDestValue reads log_dest: one destination or a list of them, each
// stderr, stdout, syslog or "file PATH"; none only alone.
func logDestValue(n *yaml.Node) ([]string, error) {
	var items []*yaml.Node
	switch {
	case n.Kind == yaml.SequenceNode:
		items = n.Content
	case isScalar(n, "!!str"):
		items = []*yaml.Node{n}
	default:
		return nil, wrongType("a destination or a list of them", n)
	}
	var out []string
	files := 0
	for _, it := range items {
		s, err := stringValue(resolveAlias(it))
		if err != nil {
			return nil, err
		}
		if err := CheckLogDest(s); err != nil {
			return nil, err
		}
		if strings.HasPrefix(s, "file ") {
			files++
		}
		out = append(out, s)
	}
	switch {
	case len(out) == 0:
		return nil, errors.New(`empty: to log nowhere, say none`)
	case len(out) > 1 && slices.Contains(out, "none"):
		return nil, errors.New("none goes alone")
	case files > 1:
		return nil, errors.New("one file at most")
	}
	return out, nil
}

// CheckLogDest checks one log destination: stderr, stdout, syslog, none,
// or "file PATH".
func CheckLogDest(s string) error {
	switch s {
	case "stderr", "stdout", "syslog", "none":
		return nil
	}
	if path, ok := strings.CutPrefix(s, "file "); ok && strings.TrimSpace(path) != "" {
		return nil
	}
	return fmt.Errorf("unknown log destination %q (want stderr, stdout, syslog, none or \"file PATH\")", s)
}
