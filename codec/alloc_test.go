package codec

import (
	"bytes"
	"testing"
)

// The hot path allocates nothing per message (STYLE item 12): decoding
// slices into the frame and reuses the slices of a warmed-up value, and
// encoding appends into a buffer the caller owns.

// v311Publish is a QoS 1 PUBLISH as a 3.1.1 client sends it.
var v311Publish = (&Publish{QoS: 1, Topic: bs("sensors/kitchen/temp"), PacketID: 42,
	Payload: bytes.Repeat([]byte{'x'}, 64)}).Append(nil, V311)

// v5Publish carries the properties a v5 publisher typically adds, with
// four user properties to fill Properties.User.
var v5Publish = (&Publish{QoS: 1, Topic: bs("sensors/kitchen/temp"), PacketID: 42,
	Payload: bytes.Repeat([]byte{'x'}, 64),
	Props: Properties{Present: props(PropPayloadFormat, PropMessageExpiry, PropContentType,
		PropCorrelationData, PropTopicAlias, PropUser),
		PayloadFormat: 0, MessageExpiry: 300, ContentType: bs("application/json"), CorrelationData: bs("req-17"),
		TopicAlias: 5, User: user("trace", "abc123", "tenant", "t1", "zone", "eu", "k", "v")}}).Append(nil, V5)

// outgoing is a delivery with every per-subscriber property.
var outgoing = Outgoing{Topic: bs("sensors/kitchen/temp"), Payload: bytes.Repeat([]byte{'x'}, 64),
	RawProps: []byte{0x26, 0x00, 0x05, 't', 'r', 'a', 'c', 'e', 0x00, 0x01, 'a'}, // user property trace=a
	Expiry:   120, HasExpiry: true, SubIDs: []uint32{3, 300}, TopicAlias: 9, PacketID: 7, QoS: 1}

func decodePublish(p *Publish, frame []byte, v byte) error {
	h, err := ParseHeader(frame, 1<<20)
	if err != nil {
		return err
	}
	return p.Decode(h.Flags, frame[h.Len:h.Size()], v)
}

func TestAllocsDecodePublish(t *testing.T) {
	for _, tc := range []struct {
		name  string
		frame []byte
		v     byte
		users int
	}{
		{"v3.1.1", v311Publish, V311, 0},
		{"v5 user properties", v5Publish, V5, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var p Publish
			if err := decodePublish(&p, tc.frame, tc.v); err != nil { // warm-up grows p.Props.User
				t.Fatal(err)
			}
			if len(p.Props.User) != tc.users {
				t.Fatalf("%d user properties, want %d", len(p.Props.User), tc.users)
			}
			var err error
			n := testing.AllocsPerRun(1000, func() { err = decodePublish(&p, tc.frame, tc.v) })
			if err != nil {
				t.Fatal(err)
			}
			if n != 0 {
				t.Fatalf("ParseHeader + Publish.Decode: %v allocations per run, want 0", n)
			}
		})
	}
}

func TestAllocsOutgoingAppend(t *testing.T) {
	for _, v := range []byte{V311, V5} {
		buf := make([]byte, 0, outgoing.Size(V5))
		n := testing.AllocsPerRun(1000, func() { buf = outgoing.Append(buf[:0], v) })
		if n != 0 {
			t.Errorf("v%d Outgoing.Append: %v allocations per run, want 0", v, n)
		}
		if len(buf) != outgoing.Size(v) {
			t.Errorf("v%d: wrote %d, Size %d", v, len(buf), outgoing.Size(v))
		}
	}
}

func TestAllocsAppendAck(t *testing.T) {
	buf := make([]byte, 0, 16)
	n := testing.AllocsPerRun(1000, func() {
		buf = AppendAck(buf[:0], PUBACK, 1, Success, V5)
		buf = AppendAck(buf, PUBREC, 2, QuotaExceeded, V5)
		buf = AppendAck(buf, PUBREL, 3, Success, V311)
	})
	if n != 0 {
		t.Fatalf("AppendAck: %v allocations per run, want 0", n)
	}
}

// TestAllocsDecoder: a steady stream of frames, each arriving in two reads,
// goes through the Decoder without allocating once its buffer has grown.
func TestAllocsDecoder(t *testing.T) {
	var d Decoder
	stream := append(append([]byte(nil), v5Publish...), v311Publish...)
	cut := len(v5Publish) + 5 // the second frame straddles two writes
	var p Publish
	var err error
	round := func() {
		d.Write(stream[:cut])
		for {
			h, body, ok, e := d.Next()
			if e != nil {
				err = e
			}
			if !ok {
				break
			}
			if h.Type == PUBLISH {
				err = p.Decode(h.Flags, body, V5)
			}
		}
		d.Write(stream[cut:])
		for {
			_, _, ok, e := d.Next()
			if e != nil {
				err = e
			}
			if !ok {
				break
			}
		}
	}
	round()
	round()
	n := testing.AllocsPerRun(1000, round)
	if err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("Decoder Write+Next: %v allocations per run, want 0", n)
	}
	if d.Buffered() != 0 {
		t.Fatalf("%d bytes left", d.Buffered())
	}
}

func BenchmarkDecodePublish(b *testing.B) {
	for _, bc := range []struct {
		name  string
		frame []byte
		v     byte
	}{
		{"v3.1.1", v311Publish, V311},
		{"v5", v5Publish, V5},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var p Publish
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.frame)))
			for b.Loop() {
				if err := decodePublish(&p, bc.frame, bc.v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkEncodeOutgoing(b *testing.B) {
	for _, bc := range []struct {
		name string
		v    byte
	}{
		{"v3.1.1", V311},
		{"v5", V5},
	} {
		b.Run(bc.name, func(b *testing.B) {
			buf := make([]byte, 0, outgoing.Size(bc.v))
			b.ReportAllocs()
			b.SetBytes(int64(outgoing.Size(bc.v)))
			for b.Loop() {
				buf = outgoing.Append(buf[:0], bc.v)
			}
		})
	}
}

// TestAllocsPropertiesOnStack: packets whose Properties live on the stack
// — a DISCONNECT or CONNACK built where it is sent — encode and decode
// without allocating. Reaching the property fields through function values
// made every such Properties escape to the heap (1 allocation per v5
// PUBLISH forwarded, caught by the broker's TestPublishPathAllocs).
func TestAllocsPropertiesOnStack(t *testing.T) {
	buf := make([]byte, 0, 256)
	reason := []byte("because")
	var err error
	n := testing.AllocsPerRun(1000, func() {
		d := Disconnect{Code: ServerShuttingDown}
		d.Props.Set(PropReasonString)
		d.Props.ReasonString = reason
		d.Props.Set(PropSessionExpiry)
		d.Props.SessionExpiry = 30
		buf = d.Append(buf[:0], V5)
		var back Disconnect
		h, _ := ParseHeader(buf, 0)
		err = back.Decode(DISCONNECT, buf[h.Len:], V5)
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("a DISCONNECT with properties on the stack: %v allocations per round trip, want 0", n)
	}
}
