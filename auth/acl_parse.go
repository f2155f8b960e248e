package auth

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"unicode/utf8"
)

// maxFilterLen is the longest topic filter MQTT can carry: a two-byte
// length prefix.
const maxFilterLen = 65535

// LoadACLFile reads and parses the ACL file at path, in either format
// (Shoal's or Mosquitto's, see ACL and DetectACLFormat). The returned
// ACL's Reload re-reads the same path. A syntax error is an *ACLError
// naming path and the line.
func LoadACLFile(path string) (*ACL, error) { return LoadACLFileAs(path, ACLAuto) }

// LoadACLFileAs is LoadACLFile in the given format (ACLAuto: told from
// the file, again at each Reload).
func LoadACLFileAs(path string, format ACLFormat) (*ACL, error) {
	rs, err := readACL(path, format)
	if err != nil {
		return nil, err
	}
	a := &ACL{path: path, name: path, format: format}
	a.rules.Store(rs)
	return a, nil
}

// ParseACL parses an ACL file's contents in Shoal's format (see ACL);
// name is the file name that errors carry. The ACL cannot Reload. data is
// not kept.
func ParseACL(data []byte, name string) (*ACL, error) { return ParseACLAs(data, name, ACLShoal) }

// ParseACLAs is ParseACL in the given format (ACLAuto: told from data).
func ParseACLAs(data []byte, name string, format ACLFormat) (*ACL, error) {
	rs, err := parseACLAs(data, name, format)
	if err != nil {
		return nil, err
	}
	a := &ACL{name: name, format: format}
	a.rules.Store(rs)
	return a, nil
}

func readACL(path string, format ACLFormat) (*aclRules, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("auth: reading ACL file: %w", err)
	}
	return parseACLAs(data, path, format)
}

func parseACLAs(data []byte, name string, format ACLFormat) (*aclRules, error) {
	if format == ACLAuto {
		format = DetectACLFormat(data)
	}
	if format == ACLMosquitto {
		return parseMosquittoACL(data, name)
	}
	return parseACL(data, name)
}

// aclParser holds the state of one parse: the section rules go to.
type aclParser struct {
	name        string
	line        int
	rs          *aclRules
	defaultLine int // line of the default directive, 0 if none yet
	// section: rules go to everyone (""), a user or a client.
	section, key string
}

func (p *aclParser) errorf(format string, args ...any) error {
	return &ACLError{File: p.name, Line: p.line, Msg: fmt.Sprintf(format, args...)}
}

func parseACL(data []byte, name string) (*aclRules, error) {
	p := &aclParser{name: name, rs: &aclRules{
		users:   map[string][]aclRule{},
		clients: map[string][]aclRule{},
	}}
	for len(data) > 0 {
		p.line++
		var line []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			line, data = data, nil
		}
		if err := p.parseLine(strings.Fields(string(line))); err != nil {
			return nil, err
		}
	}
	return p.rs, nil
}

// comment reports whether w starts a comment.
func comment(w string) bool { return w[0] == '#' }

// arg returns fields[i], or "" when the line ends (or a comment starts)
// before it.
func arg(fields []string, i int) string {
	if i >= len(fields) || comment(fields[i]) {
		return ""
	}
	return fields[i]
}

// rest checks that nothing but a comment follows fields[n-1].
func (p *aclParser) rest(fields []string, n int) error {
	if len(fields) > n && !comment(fields[n]) {
		return p.errorf("unexpected %q after %q (a comment starts with '#')", fields[n], strings.Join(fields[:n], " "))
	}
	return nil
}

func (p *aclParser) parseLine(f []string) error {
	if len(f) == 0 || comment(f[0]) {
		return nil
	}
	switch f[0] {
	case "default":
		if p.defaultLine != 0 {
			return p.errorf("second default (the first is on line %d)", p.defaultLine)
		}
		switch arg(f, 1) {
		case "allow":
			p.rs.allowDefault = true
		case "deny":
		case "":
			return p.errorf("default needs allow or deny")
		default:
			return p.errorf("unknown default %q (want allow or deny)", f[1])
		}
		p.defaultLine = p.line
		return p.rest(f, 2)
	case "user", "client":
		n := arg(f, 1)
		if n == "" {
			return p.errorf("%s needs a name (a word starting with '#' is a comment)", f[0])
		}
		p.section, p.key = f[0], n
		return p.rest(f, 2)
	case "pattern":
		p.section, p.key = "", ""
		return p.rest(f, 1)
	case "allow", "deny":
		return p.parseRule(f)
	case "topic":
		return p.errorf("unknown directive %q: topic is Mosquitto's ACL syntax, and this file is Shoal's (it has allow, deny, default, client or a bare pattern line): write it in one of the two (acl_format says which)", f[0])
	}
	return p.errorf("unknown directive %q (want default, user, client, pattern, allow or deny)", f[0])
}

func (p *aclParser) parseRule(f []string) error {
	r := aclRule{allow: f[0] == "allow", line: p.line}
	switch a := arg(f, 1); a {
	case "read":
		r.read = true
	case "write":
		r.write = true
	case "readwrite":
		r.read, r.write = true, true
	case "":
		return p.errorf("%s needs an action (read, write or readwrite) and a topic filter", f[0])
	default:
		return p.errorf("unknown action %q (want read, write or readwrite)", a)
	}
	// The filter's place is never a comment: "allow read #" grants all.
	if len(f) < 3 {
		return p.errorf("%s %s needs a topic filter", f[0], f[1])
	}
	if err := p.parseFilter(&r, f[2]); err != nil {
		return err
	}
	if err := p.rest(f, 3); err != nil {
		return err
	}
	switch p.section {
	case "user":
		p.rs.users[p.key] = append(p.rs.users[p.key], r)
	case "client":
		p.rs.clients[p.key] = append(p.rs.clients[p.key], r)
	default:
		p.rs.everyone = append(p.rs.everyone, r)
	}
	return nil
}

// parseFilter checks a rule's topic filter and stores its levels in r.
// The checks are the ones MQTT makes on subscriptions: '#' only as the
// whole last level [MQTT-4.7.1-2], '+' only as a whole level
// [MQTT-4.7.1-3], UTF-8 without U+0000 [MQTT-4.7.3-2], at most 65535
// bytes; and placeholders only as whole levels.
func (p *aclParser) parseFilter(r *aclRule, s string) error {
	if len(s) > maxFilterLen {
		return p.errorf("topic filter longer than %d bytes", maxFilterLen)
	}
	if !utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0 {
		return p.errorf("topic filter %q is not valid UTF-8 without U+0000", s)
	}
	r.levels = strings.Split(s, "/")
	for i, l := range r.levels {
		switch {
		case l == "#":
			if i != len(r.levels)-1 {
				return p.errorf("topic filter %q: '#' must be the last level", s)
			}
		case l == "+":
		case l == "%u" || l == "%c":
			r.subst = true
		case strings.Contains(l, "#"):
			return p.errorf("topic filter %q: '#' must be a whole level, as in a/#", s)
		case strings.Contains(l, "+"):
			return p.errorf("topic filter %q: '+' must be a whole level, as in a/+/b", s)
		case strings.Contains(l, "%u") || strings.Contains(l, "%c"):
			return p.errorf("topic filter %q: %%u and %%c must be a whole level, as in a/%%u/b", s)
		}
	}
	return nil
}
