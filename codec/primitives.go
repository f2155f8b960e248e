package codec

import "unicode/utf8"

// MaxVarint is the largest value a variable byte integer holds [MQTT-1.5.5].
const MaxVarint = 268435455

// reader walks a packet body. Its error is sticky: after the first failure
// every read returns a zero value, so decoders check r.err once per field
// group instead of after each read.
type reader struct {
	b   []byte
	off int
	err error
}

func (r *reader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

func (r *reader) left() int { return len(r.b) - r.off }

func (r *reader) u8() byte {
	if r.off >= len(r.b) {
		r.fail(ErrTruncated)
		return 0
	}
	v := r.b[r.off]
	r.off++
	return v
}

func (r *reader) u16() uint16 {
	if r.left() < 2 {
		r.fail(ErrTruncated)
		r.off = len(r.b)
		return 0
	}
	v := uint16(r.b[r.off])<<8 | uint16(r.b[r.off+1])
	r.off += 2
	return v
}

func (r *reader) u32() uint32 {
	if r.left() < 4 {
		r.fail(ErrTruncated)
		r.off = len(r.b)
		return 0
	}
	b := r.b[r.off:]
	r.off += 4
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func (r *reader) varint() uint32 {
	v, n, err := readVarint(r.b[r.off:])
	if err != nil {
		if err == ErrShort {
			err = ErrTruncated
		}
		r.fail(err)
		r.off = len(r.b)
		return 0
	}
	r.off += n
	return v
}

// bin reads Binary Data: a two-byte length, then that many bytes [MQTT-1.5.6].
func (r *reader) bin() []byte {
	n := int(r.u16())
	if r.err != nil {
		return nil
	}
	if r.left() < n {
		r.fail(ErrTruncated)
		r.off = len(r.b)
		return nil
	}
	v := r.b[r.off : r.off+n : r.off+n]
	r.off += n
	return v
}

// str reads a UTF-8 Encoded String and validates it [MQTT-1.5.4-1],
// [MQTT-1.5.4-2].
func (r *reader) str() []byte {
	v := r.bin()
	if r.err == nil && !ValidUTF8(v) {
		r.fail(ErrInvalidUTF8)
	}
	return v
}

// rest returns the bytes not yet read.
func (r *reader) rest() []byte {
	v := r.b[r.off:]
	r.off = len(r.b)
	return v
}

// done fails if bytes are left over.
func (r *reader) done() error {
	if r.err == nil && r.off != len(r.b) {
		r.err = ErrTrailingBytes
	}
	return r.err
}

// readVarint decodes a variable byte integer from the start of b. It returns
// ErrShort if b ends inside it and ErrMalformedVarint if it runs past four
// bytes [MQTT-1.5.5] or is longer than it needs to be, i.e. ends in a 0x00
// byte after a continuation [MQTT-1.5.5-1].
func readVarint(b []byte) (v uint32, n int, err error) {
	var shift uint
	for i := 0; i < 4; i++ {
		if i >= len(b) {
			return 0, 0, ErrShort
		}
		c := b[i]
		v |= uint32(c&0x7f) << shift
		if c&0x80 == 0 {
			if c == 0 && i > 0 {
				return 0, 0, ErrMalformedVarint
			}
			return v, i + 1, nil
		}
		shift += 7
	}
	return 0, 0, ErrMalformedVarint
}

// VarintSize is the number of bytes the variable byte integer v takes.
func VarintSize(v int) int {
	switch {
	case v < 128:
		return 1
	case v < 16384:
		return 2
	case v < 2097152:
		return 3
	}
	return 4
}

// AppendVarint appends v (at most MaxVarint) as a variable byte integer.
func AppendVarint(dst []byte, v int) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v > 0 {
			c |= 0x80
		}
		dst = append(dst, c)
		if v == 0 {
			return dst
		}
	}
}

func appendU16(dst []byte, v uint16) []byte { return append(dst, byte(v>>8), byte(v)) }

func appendU32(dst []byte, v uint32) []byte {
	return append(dst, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}

// appendBin appends two-byte-length-prefixed data (strings and binary data).
func appendBin(dst, v []byte) []byte {
	dst = appendU16(dst, uint16(len(v)))
	return append(dst, v...)
}

// ValidUTF8 reports whether b is a well-formed MQTT UTF-8 string: valid
// UTF-8 without surrogates [MQTT-1.5.4-1] and without U+0000 [MQTT-1.5.4-2].
// (U+0001..U+001F and non-characters are allowed; a receiver may refuse
// them but the broker passes them on [MQTT-1.5.4-3].)
func ValidUTF8(b []byte) bool {
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c == 0 {
			return false
		}
		if c >= utf8.RuneSelf {
			return validUTF8Slow(b[i:])
		}
	}
	return true
}

func validUTF8Slow(b []byte) bool {
	if !utf8.Valid(b) { // utf8.Valid rejects surrogate halves already.
		return false
	}
	for _, c := range b {
		if c == 0 {
			return false
		}
	}
	return true
}
