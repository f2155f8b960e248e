package codec

import (
	"bytes"
	"strings"
)

// Topic rule errors. Their codes are what an MQTT 5 broker answers with in
// PUBACK/SUBACK or DISCONNECT.
var (
	ErrFilterEmpty   = &Error{TopicFilterInvalid, "empty topic filter"}
	ErrFilterHash    = &Error{TopicFilterInvalid, "'#' not alone in the last level"}
	ErrFilterPlus    = &Error{TopicFilterInvalid, "'+' not alone in its level"}
	ErrFilterShare   = &Error{TopicFilterInvalid, "malformed shared subscription"}
	ErrTopicTooLong  = &Error{TopicNameInvalid, "topic longer than 65535 bytes"}
	ErrFilterTooLong = &Error{TopicFilterInvalid, "topic filter longer than 65535 bytes"}
	ErrFilterUTF8    = &Error{MalformedPacket, "topic filter is not valid UTF-8"}
	ErrTopicUTF8     = &Error{MalformedPacket, "topic name is not valid UTF-8"}
)

// SharePrefix starts a shared subscription filter [MQTT-4.8.2].
const SharePrefix = "$share/"

// CheckTopicName validates a topic name a client publishes to: at least one
// byte [MQTT-4.7.3-1], no wildcards [MQTT-3.3.2-2], [MQTT-4.7.1-1], valid
// UTF-8 without U+0000 [MQTT-4.7.3-2].
func CheckTopicName(t []byte) error {
	if len(t) == 0 {
		return ErrTopicEmpty
	}
	if len(t) > 65535 {
		return ErrTopicTooLong
	}
	if !ValidUTF8(t) {
		return ErrTopicUTF8
	}
	return checkTopicChars(t)
}

func checkTopicChars(t []byte) error {
	if bytes.IndexByte(t, '+') >= 0 || bytes.IndexByte(t, '#') >= 0 {
		return ErrTopicWildcard
	}
	return nil
}

// CheckFilter validates a topic filter: '#' only as the whole last level
// [MQTT-4.7.1-2], '+' only as a whole level [MQTT-4.7.1-3], at least one byte
// [MQTT-4.7.3-1]. A shared subscription "$share/{group}/{filter}" needs a
// non-empty group without '/', '+' or '#' and a non-empty filter
// [MQTT-4.8.2-1], [MQTT-4.8.2-2].
func CheckFilter(f []byte) error {
	if len(f) == 0 {
		return ErrFilterEmpty
	}
	if len(f) > 65535 {
		return ErrFilterTooLong
	}
	if !ValidUTF8(f) {
		return ErrFilterUTF8
	}
	if bytes.HasPrefix(f, []byte(SharePrefix)) {
		rest := f[len(SharePrefix):]
		i := bytes.IndexByte(rest, '/')
		if i <= 0 {
			return ErrFilterShare
		}
		if bytes.ContainsAny(rest[:i], "+#") {
			return ErrFilterShare
		}
		f = rest[i+1:]
		if len(f) == 0 {
			return ErrFilterShare
		}
	}
	for i := 0; i < len(f); i++ {
		switch f[i] {
		case '#':
			if i != len(f)-1 || (i > 0 && f[i-1] != '/') {
				return ErrFilterHash
			}
		case '+':
			if (i > 0 && f[i-1] != '/') || (i < len(f)-1 && f[i+1] != '/') {
				return ErrFilterPlus
			}
		}
	}
	return nil
}

// IsShared reports whether a filter names a shared subscription.
func IsShared(f []byte) bool { return bytes.HasPrefix(f, []byte(SharePrefix)) }

// HasWildcard reports whether a filter contains '+' or '#'.
func HasWildcard(f []byte) bool { return bytes.ContainsAny(f, "+#") }

// Matches reports whether topic name matches filter: '+' is one level, '#'
// the rest, "a/#" matches "a" too [MQTT-4.7.1-2] [MQTT-4.7.1-3]; a filter
// starting with a wildcard does not match a topic starting with '$'
// [MQTT-4.7.2-1]. Both are taken as valid (CheckFilter, CheckTopicName).
func Matches(filter, topic string) bool {
	if topic != "" && topic[0] == '$' && filter != "" && (filter[0] == '+' || filter[0] == '#') {
		return false
	}
	for {
		fl, frest, fmore := strings.Cut(filter, "/")
		if fl == "#" {
			return true
		}
		tl, trest, tmore := strings.Cut(topic, "/")
		if fl != "+" && fl != tl {
			return false
		}
		if !fmore || !tmore {
			return fmore == tmore || (fmore && frest == "#")
		}
		filter, topic = frest, trest
	}
}
