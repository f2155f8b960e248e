package codec

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"testing"
)

// regressions are inputs that once broke a property checked below. Each
// also has a row in errors_test.go or golden_test.go.
var regressions = [][]byte{
	// A 3.1.1 UNSUBACK with a reason code decoded as Codes [0] and came
	// back from Append without it: Decode(Encode(p)) != p.
	{0xb0, 0x03, 0x00, 0x01, 0x00},
	// A remaining length of 66 sent as c2 00 instead of 42 was accepted, so
	// frames did not re-encode to their own bytes [MQTT-1.5.5-1]. Also in
	// testdata/fuzz/FuzzDecoderSplit.
	cat([]byte{0x30, 0xc2, 0x00}, bytes.Repeat([]byte{'0'}, 66)),
}

func addSeeds(f *testing.F) {
	for _, g := range goldens {
		f.Add(g.wire)
		if g.canon != nil {
			f.Add(g.canon)
		}
	}
	for _, r := range regressions {
		f.Add(r)
	}
}

// FuzzDecode decodes the first frame of arbitrary bytes at every protocol
// level. Decoding must never panic, must fail only with a codec *Error, and
// whatever decodes must survive a round trip: Decode(Encode(p)) == p, and
// Encode of that gives the same bytes again.
func FuzzDecode(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := ParseHeader(data, 0)
		if err != nil {
			checkCodecError(t, err)
			return
		}
		// Decode whatever body there is, even if shorter than announced: a
		// decoder must cope with any slice. Capacity is cut so that reading
		// past the body panics instead of passing silently.
		body := data[h.Len:]
		if len(body) > h.Remaining {
			body = body[:h.Remaining]
		}
		body = body[:len(body):len(body)]
		levels := []byte{V31, V311, V5}
		if h.Type == CONNECT {
			levels = levels[:1] // CONNECT carries its own level
		}
		for _, v := range levels {
			roundTrip(t, h, body, v, false)
			if h.Type == PUBLISH {
				roundTrip(t, h, body, v, true)
			}
		}
	})
}

func checkCodecError(t *testing.T, err error) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not a *codec.Error", err, err)
	}
}

func roundTrip(t *testing.T, h Header, body []byte, v byte, client bool) {
	t.Helper()
	p, err := decodePacket(h, body, v, client)
	if err != nil {
		checkCodecError(t, err)
		if err == ErrShort {
			t.Fatalf("%v body % x: ErrShort from a body decoder", h.Type, body)
		}
		return
	}
	if c, ok := p.(*Connect); ok {
		v = c.Version
	}
	enc := appendPacket(nil, p, v)
	h2, err := ParseHeader(enc, 0)
	if err != nil || h2.Size() != len(enc) || h2.Type != h.Type {
		t.Fatalf("v%d %v: Append gave a bad frame % x: %+v %v", v, h.Type, enc, h2, err)
	}
	p2, err := decodePacket(h2, enc[h2.Len:], v, client)
	if err != nil {
		t.Fatalf("v%d %v: body % x decoded, its encoding % x fails: %v", v, h.Type, body, enc, err)
	}
	if !samePacket(p, p2) {
		t.Fatalf("v%d %v: Decode(Encode(p)) != p\nbody % x\n enc % x\n   p %+v\n  p2 %+v", v, h.Type, body, enc, p, p2)
	}
	if enc2 := appendPacket(nil, p2, v); !bytes.Equal(enc, enc2) {
		t.Fatalf("v%d %v: encoding not stable\n% x\n% x", v, h.Type, enc, enc2)
	}
	switch p := p.(type) {
	case *Publish:
		checkOutgoing(t, p, v)
		if !client {
			if err := CheckTopicName(p.Topic); err != nil && len(p.Topic) > 0 {
				t.Fatalf("Decode accepted topic %q that CheckTopicName refuses: %v", p.Topic, err)
			}
		}
	case *Subscribe:
		for _, s := range p.Filters {
			_ = CheckFilter(s.Filter) // must not panic
		}
	case *Unsubscribe:
		for _, f := range p.Filters {
			_ = CheckFilter(f)
		}
	}
}

// checkOutgoing re-sends a decoded PUBLISH the way the broker does, from
// its forwarded properties plus the per-delivery ones, and wants the same
// packet back at the client.
func checkOutgoing(t *testing.T, p *Publish, v byte) {
	t.Helper()
	o := Outgoing{Topic: p.Topic, Payload: p.Payload, PacketID: p.PacketID, QoS: p.QoS, Retain: p.Retain, Dup: p.Dup}
	if v == V5 {
		o.RawProps = p.Props.ForwardProps(nil)
		o.Expiry, o.HasExpiry = p.Props.MessageExpiry, p.Props.Has(PropMessageExpiry)
		o.SubIDs = p.Props.SubIDs
		o.TopicAlias = p.Props.TopicAlias
	}
	enc := o.Append(nil, v)
	if len(enc) != o.Size(v) {
		t.Fatalf("Outgoing.Size %d, Append wrote %d", o.Size(v), len(enc))
	}
	got, err := decodeFrame(enc, v, true)
	if err != nil {
		t.Fatalf("Outgoing % x does not decode: %v", enc, err)
	}
	if !samePacket(got, p) {
		t.Fatalf("Outgoing round trip\n got %+v\nwant %+v", got, p)
	}
}

// splitter feeds one stream to a Decoder in pieces and records the frames
// it gets back. It reuses its storage, so a fuzz run of n splits costs
// O(n²) byte copies but no allocation per frame.
type splitter struct {
	d      Decoder
	hdrs   []Header // the frames, in order; they tile the stream from 0
	err    error    // the first error, after which the stream is dead
	buffer int      // bytes left waiting, when there was no error
	bad    string   // a frame that is not the stream's own bytes
}

// feed writes data in pieces ending at cuts (ascending), draining frames
// after each write, until the first error.
func (s *splitter) feed(data []byte, cuts func(yield func(int) bool)) {
	s.d = Decoder{MaxSize: 256, buf: s.d.buf[:0]}
	s.hdrs, s.err, s.buffer, s.bad = s.hdrs[:0], nil, 0, ""
	prev, off := 0, 0
	var hdr [MaxHeaderLen]byte
	write := func(end int) bool {
		s.d.Write(data[prev:end])
		prev = end
		for {
			h, body, ok, err := s.d.Next()
			if err != nil {
				s.err = err
				return false
			}
			if !ok {
				return true
			}
			// The frame must be the next bytes of the stream: the header as
			// AppendHeader writes it (shortest form) and the body.
			if !bytes.Equal(AppendHeader(hdr[:0], h.Type, h.Flags, h.Remaining), data[off:off+h.Len]) ||
				!bytes.Equal(body, data[off+h.Len:off+h.Size()]) {
				s.bad = fmt.Sprintf("frame %d at %d: %+v body % x", len(s.hdrs), off, h, body)
				return false
			}
			off += h.Size()
			s.hdrs = append(s.hdrs, h)
		}
	}
	for c := range cuts {
		if !write(c) {
			return
		}
	}
	if write(len(data)) {
		s.buffer = s.d.Buffered()
		if off+s.buffer != len(data) {
			s.bad = fmt.Sprintf("%d bytes framed, %d buffered, of %d", off, s.buffer, len(data))
		}
	}
}

func (s *splitter) same(o *splitter) bool {
	return s.bad == "" && o.bad == "" && s.err == o.err && s.buffer == o.buffer && slices.Equal(s.hdrs, o.hdrs)
}

func (s *splitter) String() string {
	return fmt.Sprintf("frames %+v err %v buffered %d %s", s.hdrs, s.err, s.buffer, s.bad)
}

// FuzzDecoderSplit feeds a stream to the Decoder whole, in two writes split
// at every index, and byte by byte: the frames and the error must be the
// same every time, so the Decoder resumes at any byte boundary.
func FuzzDecoderSplit(f *testing.F) {
	addSeeds(f)
	var stream []byte
	for _, g := range goldens {
		stream = append(stream, g.wire...)
	}
	f.Add(stream)
	f.Add(cat(goldens[0].wire, raw(0x00, 0x00)))                   // an error after a frame
	f.Add(cat(goldens[0].wire, raw(0x30, 0xff, 0xff, 0xff, 0x7f))) // over MaxSize after a frame
	var whole, split splitter
	f.Fuzz(func(t *testing.T, data []byte) {
		// Splitting at every index is O(n²): 512 bytes keeps a run well
		// under a millisecond, and boundary bugs need short streams, not
		// long ones (a frame straddling a cut is what matters).
		if len(data) > 512 {
			data = data[:512]
		}
		whole.feed(data, func(func(int) bool) {})
		if whole.bad != "" {
			t.Fatalf("whole: %v", &whole)
		}
		if whole.err != nil {
			checkCodecError(t, whole.err)
		}
		for i := 0; i <= len(data); i++ {
			split.feed(data, func(yield func(int) bool) { yield(i) })
			if !whole.same(&split) {
				t.Fatalf("split at %d: %v\nwhole: %v", i, &split, &whole)
			}
		}
		split.feed(data, func(yield func(int) bool) {
			for i := 1; i < len(data) && yield(i); i++ {
			}
		})
		if !whole.same(&split) {
			t.Fatalf("byte by byte: %v\nwhole: %v", &split, &whole)
		}
	})
}
