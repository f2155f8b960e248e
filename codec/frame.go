package codec

// Header is a parsed fixed header [MQTT-2.1.1].
type Header struct {
	Type  Type
	Flags byte // low nibble of the first byte
	// Remaining is the length of the variable header plus payload.
	Remaining int
	// Len is the size of the fixed header itself (2..5 bytes).
	Len int
}

// Size is the size of the whole frame.
func (h Header) Size() int { return h.Len + h.Remaining }

// MaxHeaderLen is the longest a fixed header can be.
const MaxHeaderLen = 5

// requiredFlags holds the fixed-header flags each packet type must carry;
// 0xff marks PUBLISH, whose flags carry DUP, QoS and RETAIN
// [MQTT-2.1.3-1] (v5), [MQTT-2.2.2-1] (v3.1.1).
var requiredFlags = [16]byte{
	CONNECT: 0, CONNACK: 0, PUBLISH: 0xff, PUBACK: 0, PUBREC: 0, PUBREL: 2, PUBCOMP: 0,
	SUBSCRIBE: 2, SUBACK: 0, UNSUBSCRIBE: 2, UNSUBACK: 0, PINGREQ: 0, PINGRESP: 0,
	DISCONNECT: 0, AUTH: 0,
}

// ParseHeader reads the fixed header at the start of b. It returns ErrShort
// when b ends inside the header; the caller waits for more bytes and calls
// again from the same position. It refuses packets whose frame would exceed
// maxSize bytes (maxSize <= 0: no limit beyond the protocol's) before any of
// the body is needed, so an over-size packet is never buffered.
func ParseHeader(b []byte, maxSize int) (Header, error) {
	if len(b) < 2 {
		return Header{}, ErrShort
	}
	t := Type(b[0] >> 4)
	flags := b[0] & 0x0f
	if t == 0 {
		return Header{}, ErrReservedType
	}
	if want := requiredFlags[t]; want != 0xff && flags != want {
		return Header{}, ErrReservedFlags
	}
	rem, n, err := readVarint(b[1:])
	if err != nil {
		return Header{}, err
	}
	h := Header{Type: t, Flags: flags, Remaining: int(rem), Len: 1 + n}
	if maxSize > 0 && h.Size() > maxSize {
		return h, ErrPacketTooLarge
	}
	return h, nil
}

// AppendHeader appends a fixed header.
func AppendHeader(dst []byte, t Type, flags byte, remaining int) []byte {
	dst = append(dst, byte(t)<<4|flags)
	return AppendVarint(dst, remaining)
}

// Decoder splits a byte stream into frames. Write appends what was read;
// Next returns the next complete frame. A frame's body aliases the
// Decoder's buffer and is valid until the next Write or Next. Not safe for
// concurrent use.
//
// The Decoder keeps one growing buffer and compacts it when a frame is
// consumed; a steady stream of frames allocates nothing after warm-up.
type Decoder struct {
	// MaxSize bounds the frames accepted; 0 means the protocol maximum.
	MaxSize int

	buf []byte
	off int // start of unconsumed bytes
}

// Write appends p to the stream. It never fails.
func (d *Decoder) Write(p []byte) (int, error) {
	if d.off > 0 && d.off == len(d.buf) {
		d.buf, d.off = d.buf[:0], 0
	} else if d.off > 0 && len(d.buf)+len(p) > cap(d.buf) {
		n := copy(d.buf, d.buf[d.off:])
		d.buf, d.off = d.buf[:n], 0
	}
	d.buf = append(d.buf, p...)
	return len(p), nil
}

// Buffered is the number of bytes received but not yet returned as frames.
func (d *Decoder) Buffered() int { return len(d.buf) - d.off }

// Next returns the next complete frame. ok is false when more bytes are
// needed. After an error the stream is unusable: MQTT gives no way to
// resynchronise a byte stream, so the connection must close.
func (d *Decoder) Next() (h Header, body []byte, ok bool, err error) {
	b := d.buf[d.off:]
	h, err = ParseHeader(b, d.MaxSize)
	if err == ErrShort {
		return h, nil, false, nil
	}
	if err != nil {
		return h, nil, false, err
	}
	if len(b) < h.Size() {
		return h, nil, false, nil
	}
	body = b[h.Len:h.Size():h.Size()]
	d.off += h.Size()
	return h, body, true, nil
}
