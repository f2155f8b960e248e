package cluster

import (
	"errors"
	"strings"
)

// How MQTT topics become NATS subjects (and JetStream key-value keys).
//
// A topic's levels become a subject's tokens, behind a prefix: root + ".m."
// for ordinary topics, root + ".s." for topics whose first level starts
// with '$'. Keeping the two apart is what makes a filter starting with a
// wildcard ("#", "+/x"), which must not match '$' topics [MQTT-4.7.2-1],
// safe to turn into a NATS wildcard: it is subscribed under ".m." only.
//
// Each level is escaped into one token of the characters NATS subjects
// and key-value keys both allow: ASCII letters, digits, '-' and '_' stand
// for themselves; every other byte b is '=' and b in two upper-case hex
// digits ('.' is "=2E", ' ' is "=20", '=' itself "=3D"); an empty level,
// which MQTT allows and NATS does not, is "=" alone (an escape always has
// two digits after it, so "=" alone means nothing else). '=' is the one
// character besides these that both NATS subjects and key-value keys
// allow. The mapping is
// one to one, so a subject gives back its topic (Topic).
//
// A filter maps level by level the same way, '+' to '*' and a final '#' to
// '>'. NATS's '>' needs at least one token, while MQTT's "a/#" also
// matches "a" itself [MQTT-4.7.1-1]: Filter returns that parent subject
// too, and a subscriber takes both.

// maxSubject bounds a subject's (or key's) length: NATS refuses a PUB line
// past its max_control_line, 4 KiB by default, which holds the subject
// behind the bucket's prefix ("$KV.shoal_retained."), a reply subject
// (about 40 bytes) and the size. A topic's escape takes at most 3 bytes
// per topic byte, so MaxTopicLength, Shoal's default max_topic_length,
// fits whatever its bytes, and leaves about 800 bytes for the rest; a
// longer subject is refused (ErrTopicTooLong).
const maxSubject = 3300

// MaxTopicLength is the longest topic or filter a cluster takes: its
// longest escape fits maxSubject with a node's name and a key's prefix.
// A cluster's max_topic_length is at most this.
const MaxTopicLength = 1024

// ErrTopicTooLong says a topic or filter is too long once escaped for the
// cluster: the broker refuses it as it refuses a topic over
// max_topic_length.
var ErrTopicTooLong = errors.New("cluster: topic too long for the cluster's subjects")

const hexDigits = "0123456789ABCDEF"

// safe reports whether b stands for itself in a token.
func safe(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '-' || b == '_'
}

// AppendToken appends s as one subject token to dst, escaped as a topic
// level is: for keys of other state kept per client id (package replica).
func AppendToken(dst []byte, s string) []byte { return appendLevel(dst, s) }

// appendLevel appends level's token to dst.
func appendLevel(dst []byte, level string) []byte {
	if level == "" {
		return append(dst, '=')
	}
	for i := 0; i < len(level); i++ {
		b := level[i]
		if safe(b) {
			dst = append(dst, b)
			continue
		}
		dst = append(dst, '=', hexDigits[b>>4], hexDigits[b&15])
	}
	return dst
}

// prefix is the part of every subject for topics of this kind.
func prefix(dst []byte, root string, dollar bool) []byte {
	dst = append(dst, root...)
	if dollar {
		return append(dst, ".s."...)
	}
	return append(dst, ".m."...)
}

// Subject appends to dst the subject of topic (a valid topic name) under
// root, or fails with ErrTopicTooLong. It allocates only to grow dst.
func Subject(dst []byte, root, topic string) ([]byte, error) {
	start := len(dst)
	dst = appendLevels(prefix(dst, root, topic != "" && topic[0] == '$'), topic)
	if len(dst)-start > maxSubject {
		return dst[:start], ErrTopicTooLong
	}
	return dst, nil
}

// appendLevels appends the tokens of s's levels, joined by '.'. Every byte
// but those appendLevel keeps is escaped, '+' and '#' too: a filter's
// levels make a key that no wildcard reads into.
func appendLevels(dst []byte, s string) []byte {
	for first := true; ; first = false {
		level, rest, more := strings.Cut(s, "/")
		if !first {
			dst = append(dst, '.')
		}
		dst = appendLevel(dst, level)
		if !more {
			return dst
		}
		s = rest
	}
}

// levelsOf is appendLevels' inverse; false for tokens it cannot have made.
func levelsOf(tokens string) (string, bool) {
	var b strings.Builder
	b.Grow(len(tokens))
	for first := true; ; first = false {
		token, tail, more := strings.Cut(tokens, ".")
		if !first {
			b.WriteByte('/')
		}
		if !appendUnescaped(&b, token) {
			return "", false
		}
		if !more {
			return b.String(), true
		}
		tokens = tail
	}
}

// Filter returns the subjects a subscriber to filter (a valid, non-shared
// topic filter) takes under root: one, or two for a filter ending in
// "/#" (the subject of its parent level too).
func Filter(root, filter string) ([]string, error) {
	dollar := filter != "" && filter[0] == '$'
	b := prefix(nil, root, dollar)
	var parent []byte
	for first := true; ; first = false {
		level, rest, more := strings.Cut(filter, "/")
		switch {
		case level == "#":
			if !first {
				parent = append([]byte(nil), b[:len(b)-1]...) // without the '.'
			}
			b = append(b, '>')
		case level == "+":
			b = append(b, '*')
		default:
			b = appendLevel(b, level)
		}
		if !more || level == "#" {
			break
		}
		b = append(b, '.')
		filter = rest
	}
	if len(b) > maxSubject {
		return nil, ErrTopicTooLong
	}
	if parent != nil {
		return []string{string(b), string(parent)}, nil
	}
	return []string{string(b)}, nil
}

// Topic returns the topic of a subject Subject made under root; ok is
// false for a subject that is not one.
func Topic(root, subject string) (topic string, ok bool) {
	rest, found := strings.CutPrefix(subject, root+".")
	if !found || len(rest) < 2 || rest[1] != '.' || (rest[0] != 'm' && rest[0] != 's') {
		return "", false
	}
	dollar := rest[0] == 's'
	topic, ok = levelsOf(rest[2:])
	if !ok {
		return "", false
	}
	if (topic != "" && topic[0] == '$') != dollar {
		return "", false
	}
	return topic, true
}

// appendUnescaped writes the level token stands for to b; false for a
// token appendLevel cannot have made.
func appendUnescaped(b *strings.Builder, token string) bool {
	if token == "" {
		return false
	}
	if token == "=" {
		return true // an empty level
	}
	for i := 0; i < len(token); i++ {
		c := token[i]
		switch {
		case safe(c):
			b.WriteByte(c)
		case c == '=' && i+2 < len(token) && unhex(token[i+1]) >= 0 && unhex(token[i+2]) >= 0:
			b.WriteByte(byte(unhex(token[i+1])<<4 | unhex(token[i+2])))
			i += 2
		default:
			return false
		}
	}
	return true
}

func unhex(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}
