package store

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Keys. Each kind of record has a one-byte prefix; a client's records sort
// together after a length-prefixed client id, so one range covers them.
//
//	S len id              session
//	D len id seq(8, BE)   delivery
//	F len id seq(8, BE)   sent state of that delivery: packet id, state
//	A len id pid(2, BE)   inbound QoS 2 id awaiting PUBREL
//	R topic               retained message
//	M name                mark (Store.Mark): not state, never loaded
const (
	kindSession  = 'S'
	kindDelivery = 'D'
	kindSent     = 'F'
	kindAwait    = 'A'
	kindRetained = 'R'
	kindMark     = 'M'
)

// stateKinds are the kinds of record that are state (Store.Empty).
var stateKinds = [...]byte{kindSession, kindDelivery, kindSent, kindAwait, kindRetained}

func markKey(dst []byte, name string) []byte { return append(append(dst, kindMark), name...) }

func encodeMark(dst, v []byte) []byte { return append(enc(dst).u8(recordVersion), v...) }

func decodeMark(v []byte) ([]byte, error) {
	d := dec{b: v}
	d.version()
	if d.err != nil {
		return nil, fmt.Errorf("mark: %w", d.err)
	}
	return append([]byte{}, d.b...), nil // never nil: nil is "no mark"
}

// recordVersion leads every value, so that a later layout can be told
// apart from this one.
const recordVersion = 1

// errCorrupt is what a value or key that does not parse yields.
var errCorrupt = errors.New("store: malformed record")

// clientKey appends kind, the length of id and id.
func clientKey(dst []byte, kind byte, id string) []byte {
	dst = append(dst, kind)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(id)))
	return append(dst, id...)
}

func seqKey(dst []byte, kind byte, id string, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(clientKey(dst, kind, id), seq)
}

func awaitKey(dst []byte, id string, pid uint16) []byte {
	return binary.BigEndian.AppendUint16(clientKey(dst, kindAwait, id), pid)
}

// parseClientKey splits a client-prefixed key into its id and the rest.
func parseClientKey(k []byte) (id string, rest []byte, err error) {
	if len(k) < 3 {
		return "", nil, errCorrupt
	}
	n := int(binary.BigEndian.Uint16(k[1:3]))
	if len(k) < 3+n {
		return "", nil, errCorrupt
	}
	return string(k[3 : 3+n]), k[3+n:], nil
}

// prefixEnd returns the first key after every key starting with p.
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		end[i]++
		if end[i] != 0 {
			return end[:i+1]
		}
	}
	return nil // p is all 0xFF: no end
}

// enc appends a record's fields.
type enc []byte

func (e enc) u8(v byte) enc      { return append(e, v) }
func (e enc) u16(v uint16) enc   { return binary.BigEndian.AppendUint16(e, v) }
func (e enc) u32(v uint32) enc   { return binary.BigEndian.AppendUint32(e, v) }
func (e enc) i64(v int64) enc    { return binary.BigEndian.AppendUint64(e, uint64(v)) }
func (e enc) uv(v uint64) enc    { return binary.AppendUvarint(e, v) }
func (e enc) bytes(v []byte) enc { return append(e.uv(uint64(len(v))), v...) }
func (e enc) str(v string) enc   { return append(e.uv(uint64(len(v))), v...) }

func (e enc) bool(v bool) enc {
	if v {
		return append(e, 1)
	}
	return append(e, 0)
}

func (e enc) message(m *Message) enc {
	return e.bytes(m.Topic).bytes(m.Payload).bytes(m.Props).bytes(m.From).u8(m.QoS).bool(m.Retain).i64(m.Expiry)
}

// dec reads fields back; the first failure sticks in err and every later
// read returns zero values.
type dec struct {
	b   []byte
	err error
}

func (d *dec) fail() { d.err, d.b = errCorrupt, nil }

// take returns the next n bytes (n <= 8), or zeros once the record is
// short, which fails it.
func (d *dec) take(n int) []byte {
	if d.err != nil || len(d.b) < n {
		d.fail()
		return make([]byte, 8)[:n]
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *dec) u8() byte    { return d.take(1)[0] }
func (d *dec) u16() uint16 { return binary.BigEndian.Uint16(d.take(2)) }
func (d *dec) u32() uint32 { return binary.BigEndian.Uint32(d.take(4)) }
func (d *dec) i64() int64  { return int64(binary.BigEndian.Uint64(d.take(8))) }

func (d *dec) bool() bool {
	switch d.u8() {
	case 0:
		return false
	case 1:
		return true
	}
	d.fail()
	return false
}

func (d *dec) uv() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

// bytes returns a slice of the record itself, not a copy.
func (d *dec) bytes() []byte {
	n := d.uv()
	if d.err != nil || uint64(len(d.b)) < n {
		d.fail()
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *dec) str() string { return string(d.bytes()) }

func (d *dec) message(m *Message) {
	m.Topic, m.Payload, m.Props, m.From = d.bytes(), d.bytes(), d.bytes(), d.bytes()
	m.QoS, m.Retain, m.Expiry = d.u8(), d.bool(), d.i64()
	if m.QoS > 2 {
		d.fail()
	}
}

// version checks the leading record version.
func (d *dec) version() {
	if v := d.u8(); d.err == nil && v != recordVersion {
		d.err = fmt.Errorf("store: record version %d, want %d", v, recordVersion)
	}
}

// end fails unless every byte was read.
func (d *dec) end() error {
	if d.err == nil && len(d.b) != 0 {
		d.fail()
	}
	return d.err
}

// Subscription option bits in a stored Sub.
const (
	subNoLocal = 1 << iota
	subRetainAsPublished
)

func encodeSession(dst []byte, s *Session) []byte {
	e := enc(dst).u8(recordVersion).u32(s.Expiry).i64(s.ExpireAt).uv(uint64(len(s.Subs)))
	for i := range s.Subs {
		o := &s.Subs[i].Opts
		var flags byte
		if o.NoLocal {
			flags |= subNoLocal
		}
		if o.RetainAsPublished {
			flags |= subRetainAsPublished
		}
		e = e.str(s.Subs[i].Filter).u8(o.QoS).u8(flags).u8(o.RetainHandling).uv(uint64(o.SubID))
	}
	if s.Will == nil {
		return e.bool(false)
	}
	return e.bool(true).u32(s.WillDelay).message(s.Will)
}

func decodeSession(v []byte, s *Session) error {
	d := dec{b: v}
	d.version()
	s.Expiry, s.ExpireAt = d.u32(), d.i64()
	n := d.uv()
	if n > uint64(len(d.b)) { // each sub takes several bytes: a bound, not a count
		d.fail()
	}
	s.Subs = s.Subs[:0]
	for i := uint64(0); i < n && d.err == nil; i++ {
		var sub Sub
		sub.Filter = d.str()
		sub.Opts.QoS = d.u8()
		flags := d.u8()
		sub.Opts.NoLocal = flags&subNoLocal != 0
		sub.Opts.RetainAsPublished = flags&subRetainAsPublished != 0
		sub.Opts.RetainHandling = d.u8()
		id := d.uv()
		if sub.Opts.QoS > 2 || sub.Opts.RetainHandling > 2 || id > 268435455 || sub.Filter == "" {
			d.fail()
		}
		sub.Opts.SubID = uint32(id)
		s.Subs = append(s.Subs, sub)
	}
	s.Will, s.WillDelay = nil, 0
	if d.bool() {
		s.WillDelay = d.u32()
		s.Will = new(Message)
		d.message(s.Will)
	}
	return d.end()
}

func encodeDelivery(dst []byte, dl *Delivery) []byte {
	e := enc(dst).u8(recordVersion).message(&dl.Msg).u8(dl.QoS).bool(dl.Retain).uv(uint64(len(dl.SubIDs)))
	for _, id := range dl.SubIDs {
		e = e.uv(uint64(id))
	}
	return e.str(dl.Group)
}

func decodeDelivery(v []byte, dl *Delivery) error {
	d := dec{b: v}
	d.version()
	d.message(&dl.Msg)
	dl.QoS, dl.Retain = d.u8(), d.bool()
	n := d.uv()
	if n > uint64(len(d.b)) {
		d.fail()
	}
	dl.SubIDs = dl.SubIDs[:0]
	for i := uint64(0); i < n && d.err == nil; i++ {
		dl.SubIDs = append(dl.SubIDs, uint32(d.uv()))
	}
	dl.Group = d.str()
	if dl.QoS < 1 || dl.QoS > 2 {
		d.fail()
	}
	return d.end()
}

func encodeSent(dst []byte, pid uint16, state uint8) []byte {
	return enc(dst).u8(recordVersion).u16(pid).u8(state)
}

func decodeSent(v []byte) (pid uint16, state uint8, err error) {
	d := dec{b: v}
	d.version()
	pid, state = d.u16(), d.u8()
	if pid == 0 || state < 1 || state > 3 {
		d.fail()
	}
	return pid, state, d.end()
}

func encodeRetained(dst []byte, m *Message) []byte {
	return enc(dst).u8(recordVersion).message(m)
}

func decodeRetained(v []byte, m *Message) error {
	d := dec{b: v}
	d.version()
	d.message(m)
	return d.end()
}
