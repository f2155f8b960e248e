package scram

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"strings"
	"unicode/utf8"
)

// maxMessage bounds every SCRAM message in either direction. The longest
// legitimate one is client-final: "c=biws," (7) + "r=" and the two nonces
// (about 60 with this package's 26-byte nonces) + ",p=" and 44 bytes of
// base64 proof, about 120 bytes; client-first adds the user name. 1 KiB
// leaves room for ~900-byte user names and extensions while keeping a
// hostile client from making the server hash megabytes.
const maxMessage = 1024

// hmacSHA256 is HMAC(key, str) of RFC 5802 section 2.2 with H = SHA-256
// (RFC 7677 section 3). It takes the message in parts to avoid joining the
// AuthMessage into one more string.
func hmacSHA256(key []byte, parts ...string) []byte {
	m := hmac.New(sha256.New, key)
	for _, p := range parts {
		m.Write([]byte(p))
	}
	return m.Sum(nil)
}

// b64 is the base64 of RFC 5802 section 7: standard alphabet with padding.
// Strict rejects non-zero padding bits, so each value has one encoding.
var b64 = base64.StdEncoding.Strict()

// decodeB64 decodes s, refusing what encoding/base64 would silently skip
// (CR and LF) so that every message has exactly one accepted form.
func decodeB64(s string) ([]byte, error) {
	if strings.ContainsAny(s, "\r\n") {
		return nil, ErrBase64
	}
	b, err := b64.DecodeString(s)
	if err != nil {
		return nil, ErrBase64
	}
	return b, nil
}

// firstAttrs splits a first message (client-first's bare part or
// server-first) into its attributes: ErrExtension when it starts with a
// mandatory extension, reserved-mext [RFC 5802 section 5.1], ErrMalformed
// when it has fewer than n.
func firstAttrs(msg string, n int) ([]string, error) {
	attrs := strings.Split(msg, ",")
	if strings.HasPrefix(attrs[0], "m=") {
		return nil, ErrExtension
	}
	if len(attrs) < n {
		return nil, ErrMalformed
	}
	return attrs, nil
}

// attr returns the value of s if s is the attribute "<name>=<value>".
func attr(s string, name byte) (string, bool) {
	if len(s) < 2 || s[0] != name || s[1] != '=' {
		return "", false
	}
	return s[2:], true
}

// validNonce reports whether s is a non-empty "printable" of RFC 5802
// section 7: %x21-2B / %x2D-7E, i.e. visible ASCII except ','.
func validNonce(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c > 0x7E || c == ',' {
			return false
		}
	}
	return true
}

// validExtension reports whether s is an attr-val of RFC 5802 section 7
// ("extensions"): ALPHA "=" 1*value-char, value-char being UTF-8 except
// NUL and ','. Unknown extensions are accepted and ignored; they are part
// of the AuthMessage all the same, so they cannot be altered in transit.
func validExtension(s string) bool {
	if len(s) < 3 || s[1] != '=' {
		return false
	}
	if c := s[0]; !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
		return false
	}
	v := s[2:]
	return utf8.ValidString(v) && !strings.ContainsRune(v, 0)
}

// validExtensions checks every element of attrs with validExtension.
func validExtensions(attrs []string) bool {
	for _, a := range attrs {
		if !validExtension(a) {
			return false
		}
	}
	return true
}

// escapeName encodes a user name as a saslname (RFC 5802 section 5.1,
// "n"): '=' becomes "=3D" and ',' becomes "=2C". '=' goes first so the
// '=' of "=2C" is not escaped again.
func escapeName(s string) string {
	if !strings.ContainsAny(s, "=,") {
		return s
	}
	s = strings.ReplaceAll(s, "=", "=3D")
	return strings.ReplaceAll(s, ",", "=2C")
}

// unescapeName decodes a saslname. Any '=' not followed by "2C" or "3D" is
// an error: RFC 5802 section 5.1 says the server MUST fail the
// authentication then. The escapes are upper case in the grammar, so "=2c"
// is refused too.
func unescapeName(s string) (string, error) {
	if !strings.Contains(s, "=") {
		return s, nil
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if s[i] != '=' {
			b.WriteByte(s[i])
			continue
		}
		switch {
		case strings.HasPrefix(s[i:], "=2C"):
			b.WriteByte(',')
		case strings.HasPrefix(s[i:], "=3D"):
			b.WriteByte('=')
		default:
			return "", ErrMalformed
		}
		i += 2
	}
	return b.String(), nil
}

// printableASCII reports whether s is non-empty and all of it in
// 0x20-0x7E, where SASLprep (RFC 4013) maps every character to itself and
// prohibits none, so a name needs no normalisation table.
func printableASCII(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7E {
			return false
		}
	}
	return true
}

// parseIterations parses the "i=" value: a positive decimal number without
// sign or leading zero (RFC 5802 section 7, posit-number), at most 9
// digits so it fits an int on every platform.
func parseIterations(s string) (int, bool) {
	if s == "" || len(s) > 9 || s[0] == '0' {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.Atoi(s)
	return n, err == nil
}

// gs2Header is the only gs2 header a client without channel binding sends
// with no authorization identity (RFC 5802 section 7); its base64, "biws",
// is the client-final "c=" value.
const gs2Header = "n,,"
