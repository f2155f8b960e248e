package auth

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// ACLFormat says which syntax an ACL file is written in.
type ACLFormat uint8

const (
	// ACLAuto tells the format from the file's first directive (the
	// default): see DetectACLFormat.
	ACLAuto ACLFormat = iota
	// ACLShoal is Shoal's own format (see ACL).
	ACLShoal
	// ACLMosquitto is Mosquitto's acl_file format, read with Mosquitto 2's
	// meaning (see ACL).
	ACLMosquitto
)

// String returns the format's config-file spelling.
func (f ACLFormat) String() string {
	switch f {
	case ACLAuto:
		return "auto"
	case ACLShoal:
		return "shoal"
	case ACLMosquitto:
		return "mosquitto"
	}
	return fmt.Sprintf("ACLFormat(%d)", uint8(f))
}

// ParseACLFormat reads the config-file spelling of an ACLFormat.
func ParseACLFormat(s string) (ACLFormat, error) {
	switch s {
	case "auto":
		return ACLAuto, nil
	case "shoal":
		return ACLShoal, nil
	case "mosquitto":
		return ACLMosquitto, nil
	}
	return 0, fmt.Errorf("unknown ACL format %q (want auto, shoal or mosquitto)", s)
}

// DetectACLFormat tells an ACL file's format from its first directive that
// only one of the two formats has: topic, or pattern followed by a topic,
// is Mosquitto's; allow, deny, default, client, or pattern alone, is
// Shoal's. user lines, which both have, are passed over. A file with none
// of these (empty, only comments and users) is Shoal's: it grants nothing
// in either format.
func DetectACLFormat(data []byte) ACLFormat {
	for len(data) > 0 {
		var line []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			line, data = data, nil
		}
		f := strings.Fields(string(line))
		if len(f) == 0 || comment(f[0]) {
			continue
		}
		switch f[0] {
		case "topic":
			return ACLMosquitto
		case "pattern":
			if len(f) > 1 && !comment(f[1]) {
				return ACLMosquitto
			}
			return ACLShoal
		case "allow", "deny", "default", "client":
			return ACLShoal
		}
	}
	return ACLShoal
}

// The Mosquitto format, as Mosquitto 2.0 reads it (acl_file in
// mosquitto.conf(5), and its src/security_default.c):
//
//	user NAME                        the topic lines that follow are NAME's
//	topic [ACCESS] TOPIC             a rule of the current section
//	pattern [ACCESS] TOPIC           a rule for every client, %c and %u replaced
//
// ACCESS is read, write, readwrite or deny; without it the rule is
// readwrite. TOPIC is the rest of the line, spaces included, and may hold
// the wildcards + and #. NAME is the rest of the line too. A line whose
// first character is '#' is a comment; there are no comments after a
// value (a '#' there is part of the topic). Leading blanks and tabs are
// allowed here, where Mosquitto wants single spaces.
//
// Meaning:
//
//   - topic lines before the first user line are for clients without a
//     user name (anonymous ones), and for no one else; after it, for the
//     named user only.
//   - A client's own rules are asked first: a deny rule matching the topic
//     refuses, else a rule granting the access allows. If none of them
//     matches, the patterns are asked in the same way, with %c replaced by
//     the client identifier and %u by the user name (a pattern with %u
//     does not apply to a client without one). If none matches either,
//     the answer is no. So an ACL file, even an empty one, refuses what
//     it does not grant.
//   - The patterns are not asked at all for a client whose user name or
//     identifier holds '+' or '#', which could otherwise widen a pattern.
//   - Subscriptions are always granted: what a client may not read, it is
//     not sent, message by message, retained messages included
//     (CanSubscribe returns checkEach).
//   - A topic starting with '$' is matched only by a rule starting with
//     '$', as in subscriptions [MQTT-4.7.2-1].
//
// What Mosquitto does beyond the file is not here: the broker refuses
// writes to $SYS itself, and does not check a retained message against
// its publisher's rights again on delivery (Mosquitto's check_retain_source).

// parseMosquittoACL parses data, in Mosquitto's format, read from name.
func parseMosquittoACL(data []byte, name string) (*aclRules, error) {
	rs := &aclRules{mosquitto: true, users: map[string][]aclRule{}, clients: map[string][]aclRule{}}
	user, inUser := "", false
	for n := 1; len(data) > 0; n++ {
		var line []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			line, data = data, nil
		}
		fail := func(format string, args ...any) error {
			return &ACLError{File: name, Line: n, Msg: fmt.Sprintf(format, args...)}
		}
		s := strings.TrimLeft(strings.TrimRight(string(line), " \t\r\n\v\f"), " \t")
		if s == "" || s[0] == '#' {
			continue
		}
		word, rest := cutWord(s)
		switch word {
		case "user":
			if rest == "" {
				return nil, fail("user needs a user name")
			}
			user, inUser = rest, true
		case "topic", "pattern":
			r, err := mosquittoRule(word, rest)
			if err != nil {
				return nil, fail("%v", err)
			}
			r.line = n
			switch {
			case word == "pattern":
				rs.patterns = append(rs.patterns, r)
			case inUser:
				rs.users[user] = append(rs.users[user], r)
			default:
				rs.anonymous = append(rs.anonymous, r)
			}
		case "allow", "deny", "default", "client":
			return nil, fail("%q is Shoal's ACL syntax, and this file is Mosquitto's (it has topic or pattern lines): write it in one of the two (acl_format says which)", word)
		default:
			return nil, fail("unknown directive %q (want user, topic or pattern)", word)
		}
	}
	return rs, nil
}

// cutWord splits s at its first run of blanks.
func cutWord(s string) (word, rest string) {
	i := strings.IndexAny(s, " \t")
	if i < 0 {
		return s, ""
	}
	return s[:i], strings.Trim(s[i:], " \t")
}

// mosquittoRule reads "[ACCESS] TOPIC" of a topic or pattern line.
func mosquittoRule(word, rest string) (aclRule, error) {
	if rest == "" {
		return aclRule{}, fmt.Errorf("%s needs a topic", word)
	}
	access, topic := cutWord(rest)
	var r aclRule
	if topic == "" {
		// One word: it is the topic, with readwrite access; so "topic
		// read" is a rule for the topic "read", as in Mosquitto.
		topic, access = access, "readwrite"
	}
	switch access {
	case "read":
		r.allow, r.read = true, true
	case "write":
		r.allow, r.write = true, true
	case "readwrite":
		r.allow, r.read, r.write = true, true, true
	case "deny":
		r.read, r.write = true, true
	default:
		return aclRule{}, fmt.Errorf("unknown access %q (want read, write, readwrite or deny)", access)
	}
	if err := checkMosquittoFilter(topic); err != nil {
		return aclRule{}, err
	}
	if word == "pattern" {
		r.text = topic
		r.subst = strings.Contains(topic, "%c") || strings.Contains(topic, "%u")
		r.needUser = strings.Contains(topic, "%u")
		return r, nil
	}
	r.levels = strings.Split(topic, "/")
	return r, nil
}

// checkMosquittoFilter checks a rule's topic as Mosquitto does
// (mosquitto_sub_topic_check): a valid subscription filter, '#' only as
// the whole last level [MQTT-4.7.1-2], '+' only as a whole level
// [MQTT-4.7.1-3]; and UTF-8 without U+0000 [MQTT-4.7.3-2], at most 65535
// bytes. %c and %u are plain text here.
func checkMosquittoFilter(s string) error {
	switch {
	case len(s) > maxFilterLen:
		return fmt.Errorf("topic longer than %d bytes", maxFilterLen)
	case !utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0:
		return fmt.Errorf("topic %q is not valid UTF-8 without U+0000", s)
	}
	levels := strings.Split(s, "/")
	for i, l := range levels {
		switch {
		case l == "#" && i != len(levels)-1:
			return fmt.Errorf("topic %q: '#' must be the last level (a comment cannot follow a topic)", s)
		case l != "#" && strings.Contains(l, "#"):
			return fmt.Errorf("topic %q: '#' must be a whole level, as in a/# (a comment cannot follow a topic)", s)
		case l != "+" && strings.Contains(l, "+"):
			return fmt.Errorf("topic %q: '+' must be a whole level, as in a/+/b", s)
		}
	}
	return nil
}

// errNoPattern is compileMosquitto's answer for a pattern that does not
// apply to a client.
var errNoPattern = errors.New("pattern does not apply")

// compileMosquitto returns pattern r's filter for this client: %c and %u
// replaced in one pass, left to right, as Mosquitto does, so that a value
// holding "%u" is not replaced again. A value holding '/' adds levels, as
// it does in Mosquitto.
func (r *aclRule) compileMosquitto(username, clientID string) (aclFilter, error) {
	if r.levels != nil {
		return newACLFilter(r.levels), nil
	}
	if r.needUser && username == "" {
		return aclFilter{}, errNoPattern
	}
	t := r.text
	if r.subst {
		t = strings.NewReplacer("%c", clientID, "%u", username).Replace(t)
	}
	return newACLFilter(strings.Split(t, "/")), nil
}

// forMosquitto compiles the permissions of one client from rules in
// Mosquitto's format: its own rules (by user name, or the anonymous ones)
// in a first tier, the patterns in a second one asked only when the first
// has no matching rule.
func (rs *aclRules) forMosquitto(username, clientID string) *aclPerms {
	own := rs.anonymous
	if username != "" {
		own = rs.users[username]
	}
	p := &aclPerms{everySub: true}
	p.addMosquitto(own, username, clientID)
	if len(rs.patterns) > 0 && !strings.ContainsAny(username, "+#") && !strings.ContainsAny(clientID, "+#") {
		p.next = &aclPerms{}
		p.next.addMosquitto(rs.patterns, username, clientID)
	}
	return p
}

func (p *aclPerms) addMosquitto(rules []aclRule, username, clientID string) {
	for i := range rules {
		r := &rules[i]
		f, err := r.compileMosquitto(username, clientID)
		if err != nil {
			continue
		}
		p.place(r, f)
	}
}
