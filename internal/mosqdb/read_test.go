package mosqdb

import (
	"bytes"
	"errors"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"
)

// golden6 is a version 6 file as Mosquitto 2.0 on a 64-bit little-endian
// machine writes it: a retained message with MQTT 5 properties, a QoS 2
// message owed to client "c" twice (in flight awaiting PUBREC, and queued
// at QoS 1), c's session and its subscription. Each line is one field.
var golden6 = []byte{
	// header
	0x00, 0xB5, 0x00, 'm', 'o', 's', 'q', 'u', 'i', 't', 't', 'o', ' ', 'd', 'b', // magic
	0, 0, 0, 0, // CRC, always 0
	0, 0, 0, 6, // version 6

	// at 23: config chunk
	0, 0, 0, 1, // type 1
	0, 0, 0, 16, // length
	10, 0, 0, 0, 0, 0, 0, 0, // last db id 10 (host order)
	1,                // shutdown
	8,                // db id size
	0, 0, 0, 0, 0, 0, // padding

	// at 47: message chunk
	0, 0, 0, 2, // type 2
	0, 0, 0, 50, // length: 32 + 3 + 0 + 3 + 2 + 10
	7, 0, 0, 0, 0, 0, 0, 0, // store id 7 (host order)
	0, 0, 0, 0, 0, 0, 0, 0, // expiry time: none
	0, 0, 0, 2, // payload length
	0, 5, // source packet id
	0, 3, // source client id length
	0, 0, // source username length
	0, 3, // topic length
	0x07, 0x5B, // source port 1883
	1,             // QoS
	1,             // retain
	'p', 'u', 'b', // source client id
	'r', '/', '1', // topic
	'o', 'n', // payload
	9,          // properties length
	0x01, 0x01, // Payload Format Indicator 1
	0x26, 0, 1, 'k', 0, 1, 'v', // User Property k=v

	// at 105: message chunk
	0, 0, 0, 2, // type 2
	0, 0, 0, 40, // length: 32 + 3 + 3 + 2
	8, 0, 0, 0, 0, 0, 0, 0, // store id 8
	0, 0, 0, 0, 0, 0, 0, 0, // expiry time: none
	0, 0, 0, 2, // payload length
	0, 6, // source packet id
	0, 3, // source client id length
	0, 0, // source username length
	0, 3, // topic length
	0x07, 0x5B, // source port
	2,             // QoS
	0,             // retain
	'p', 'u', 'b', // source client id
	'a', '/', 'b', // topic
	'h', 'i', // payload

	// at 153: client chunk
	0, 0, 0, 6, // type 6
	0, 0, 0, 28, // length: 24 + 1 + 3
	0, 0, 0, 0, 0, 0, 0, 0, // session expiry time: none
	0xFF, 0xFF, 0xFF, 0xFF, // session expiry interval: never
	0, 2, // last packet id
	0, 1, // client id length
	0x07, 0x5B, // listener port
	0, 3, // username length
	0, 0, 0, 0, // padding
	'c',           // client id
	'b', 'o', 'b', // username

	// at 189: client message chunk
	0, 0, 0, 3, // type 3
	0, 0, 0, 20, // length: 16 + 1 + 3
	8, 0, 0, 0, 0, 0, 0, 0, // store id 8
	0, 2, // packet id
	0, 1, // client id length
	2,          // QoS
	5,          // state: wait_for_pubrec
	0x00,       // retain<<4 | dup
	1,          // direction: out
	'c',        // client id
	2,          // properties length
	0x0B, 0x07, // Subscription Identifier 7

	// at 217: client message chunk
	0, 0, 0, 3, // type 3
	0, 0, 0, 17, // length: 16 + 1
	8, 0, 0, 0, 0, 0, 0, 0, // store id 8
	0, 0, // packet id: none yet
	0, 1, // client id length
	1,    // QoS
	11,   // state: queued
	0x10, // retain<<4 | dup: retain
	1,    // direction: out
	'c',  // client id

	// at 242: subscription chunk
	0, 0, 0, 5, // type 5
	0, 0, 0, 16, // length: 12 + 1 + 3
	0, 0, 0, 7, // subscription identifier 7
	0, 1, // client id length
	0, 3, // filter length
	2,    // QoS
	0x0C, // options: No Local, Retain As Published
	0, 0, // padding
	'c',           // client id
	'a', '/', '+', // filter

	// at 266: retain chunk
	0, 0, 0, 4, // type 4
	0, 0, 0, 8, // length
	7, 0, 0, 0, 0, 0, 0, 0, // store id 7
}

// golden5 is a version 5 file (Mosquitto 1.6): its client chunk has no
// listener port, username or padding.
var golden5 = []byte{
	0x00, 0xB5, 0x00, 'm', 'o', 's', 'q', 'u', 'i', 't', 't', 'o', ' ', 'd', 'b', // magic
	0, 0, 0, 0, // CRC
	0, 0, 0, 5, // version 5

	// at 23: client chunk
	0, 0, 0, 6, // type 6
	0, 0, 0, 18, // length: 16 + 2
	0x10, 0x0E, 0, 0, 0, 0, 0, 0, // session expiry time 3600 (host order)
	0, 0, 0x0E, 0x10, // session expiry interval 3600
	0, 0, // last packet id
	0, 2, // client id length
	'v', '5', // client id

	// at 49: a chunk of a type Mosquitto does not write, skipped
	0, 0, 0, 99, // type 99
	0, 0, 0, 2, // length
	0xAB, 0xCD,
}

// chunkStarts are the offsets of golden6's chunks, and its end.
var chunkStarts = []int{23, 47, 105, 153, 189, 217, 242, 266, 282}

func TestParseGolden6(t *testing.T) {
	if len(golden6) != chunkStarts[len(chunkStarts)-1] {
		t.Fatalf("golden6 is %d bytes; the offsets in its comments say %d", len(golden6), chunkStarts[len(chunkStarts)-1])
	}
	f, err := Parse(golden6)
	if err != nil {
		t.Fatal(err)
	}
	if f.Version != 6 || f.LastDBID != 10 || !f.Shutdown || f.Unknown != 0 {
		t.Errorf("version %d, last db id %d, shutdown %v, unknown %d", f.Version, f.LastDBID, f.Shutdown, f.Unknown)
	}
	want := []Message{
		{Offset: 47, ID: 7, SourceMID: 5, SourcePort: 1883, SourceID: []byte("pub"), SourceUsername: []byte{}, Topic: []byte("r/1"),
			Payload: []byte("on"), Props: []byte{9, 0x01, 0x01, 0x26, 0, 1, 'k', 0, 1, 'v'}, QoS: 1, Retain: true},
		{Offset: 105, ID: 8, SourceMID: 6, SourcePort: 1883, SourceID: []byte("pub"), SourceUsername: []byte{}, Topic: []byte("a/b"),
			Payload: []byte("hi"), Props: []byte{}, QoS: 2},
	}
	if !reflect.DeepEqual(f.Messages, want) {
		t.Errorf("messages\n%+v, want\n%+v", f.Messages, want)
	}
	if m := f.Message(8); m == nil || string(m.Topic) != "a/b" || f.Message(9) != nil {
		t.Errorf("Message(8) = %+v, Message(9) = %+v", m, f.Message(9))
	}
	wantClients := []Client{{Offset: 153, ID: "c", Username: "bob", ExpiryInterval: NeverExpires, LastMID: 2, ListenerPort: 1883}}
	if !reflect.DeepEqual(f.Clients, wantClients) {
		t.Errorf("clients %+v, want %+v", f.Clients, wantClients)
	}
	wantCM := []ClientMsg{
		{Offset: 189, ClientID: "c", StoreID: 8, MID: 2, QoS: 2, State: StateWaitPubrec, Direction: Out, Props: []byte{2, 0x0B, 0x07}},
		{Offset: 217, ClientID: "c", StoreID: 8, QoS: 1, State: StateQueued, Retain: true, Direction: Out, Props: []byte{}},
	}
	if !reflect.DeepEqual(f.ClientMsgs, wantCM) {
		t.Errorf("client messages\n%+v, want\n%+v", f.ClientMsgs, wantCM)
	}
	wantSubs := []Sub{{Offset: 242, ClientID: "c", Filter: "a/+", QoS: 2, Options: 0x0C, Identifier: 7}}
	if !reflect.DeepEqual(f.Subs, wantSubs) {
		t.Errorf("subscriptions %+v, want %+v", f.Subs, wantSubs)
	}
	if want := []Retain{{Offset: 266, StoreID: 7}}; !reflect.DeepEqual(f.Retains, want) {
		t.Errorf("retains %+v, want %+v", f.Retains, want)
	}
}

func TestParseGolden5(t *testing.T) {
	f, err := Parse(golden5)
	if err != nil {
		t.Fatal(err)
	}
	want := []Client{{Offset: 23, ID: "v5", ExpiryTime: 3600, ExpiryInterval: 3600}}
	if f.Version != 5 || f.Unknown != 1 || !reflect.DeepEqual(f.Clients, want) {
		t.Errorf("version %d, unknown %d, clients %+v; want 5, 1, %+v", f.Version, f.Unknown, f.Clients, want)
	}
}

// TestParseClient20: where 64-bit fields are aligned to 4 bytes (32-bit
// x86), version 6's client struct has no padding; the length tells.
func TestParseClient20(t *testing.T) {
	b := bytes.Clone(golden6[:153])
	b = append(b, 0, 0, 0, 6, 0, 0, 0, 24) // type 6, length 20 + 1 + 3
	b = append(b, golden6[161:181]...)     // the 20 bytes of fields, without the padding
	b = append(b, 'c', 'b', 'o', 'b')
	f, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Clients) != 1 || f.Clients[0].ID != "c" || f.Clients[0].Username != "bob" {
		t.Errorf("clients %+v", f.Clients)
	}
}

// TestParseCut: a file cut anywhere but at a chunk boundary is an error
// that names the offset of the chunk it cuts; cut at a boundary, it reads
// as the chunks before the cut (the format cannot tell: doc.go).
func TestParseCut(t *testing.T) {
	for n := range len(golden6) {
		f, err := Parse(golden6[:n])
		var fe *FormatError
		switch {
		case n < headerSize:
			if !errors.As(err, &fe) || fe.Chunk != "header" {
				t.Errorf("cut at %d: %v, want a header error", n, err)
			}
		case isStart(n):
			if err != nil {
				t.Errorf("cut at chunk boundary %d: %v", n, err)
			}
			_ = f
		default:
			if !errors.As(err, &fe) {
				t.Fatalf("cut at %d: %v, want a *FormatError", n, err)
			}
			if want := chunkBefore(n); fe.Offset != int64(want) || !strings.Contains(fe.Reason, "cut short") {
				t.Errorf("cut at %d: %v; want the chunk at %d, cut short", n, err, want)
			}
		}
	}
}

func isStart(n int) bool {
	for _, s := range chunkStarts {
		if s == n {
			return true
		}
	}
	return false
}

func chunkBefore(n int) int {
	at := 0
	for _, s := range chunkStarts {
		if s < n {
			at = s
		}
	}
	return at
}

// TestParseDamage: a field that is not what Mosquitto writes is an error
// naming the chunk, its offset and the field.
func TestParseDamage(t *testing.T) {
	for _, tc := range []struct {
		name   string
		at     int // byte changed
		to     byte
		offset int64
		chunk  string
		reason string
	}{
		{"magic", 3, 'M', 0, "header", "magic"},
		{"version", 22, 4, 19, "header", "format version 4"},
		{"db id size", 40, 4, 23, "config chunk", "database ids of 4 bytes"},
		{"message QoS", 85, 3, 47, "message chunk", "QoS 3"},
		{"message retain", 86, 2, 47, "message chunk", "retain flag 2"},
		{"payload length", 74, 200, 47, "message chunk", "run past its length 50"},
		{"topic length 0", 82, 0, 47, "message chunk", "without a topic"},
		{"duplicate store id", 113, 7, 105, "message chunk", "store id 7 again (first at byte 47)"},
		{"client id length", 175, 9, 153, "client chunk", "does not fit"},
		{"client message state", 210, 12, 189, "client message chunk", "unknown state 12"},
		{"client message direction", 212, 2, 189, "client message chunk", "unknown direction 2"},
		{"client message QoS", 209, 3, 189, "client message chunk", "QoS 3"},
		{"client message id length", 208, 9, 189, "client message chunk", "run past its length 20"},
		{"subscription QoS", 258, 3, 242, "subscription chunk", "QoS 3"},
		{"subscription filter length", 257, 2, 242, "subscription chunk", "does not fit"},
		{"chunk length", 273, 9, 266, "retain chunk", "runs past the end of the file"},
		{"retain length", 273, 4, 266, "retain chunk", "shorter than its 8-byte fixed part"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := bytes.Clone(golden6)
			b[tc.at] = tc.to
			if tc.name == "retain length" {
				b = b[:len(b)-4]
			}
			_, err := Parse(b)
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("Parse: %v, want a *FormatError", err)
			}
			if fe.Offset != tc.offset || fe.Chunk != tc.chunk || !strings.Contains(fe.Reason, tc.reason) {
				t.Errorf("Parse: %v; want %s at %d: ...%s...", err, tc.chunk, tc.offset, tc.reason)
			}
			if !strings.HasPrefix(err.Error(), "mosqdb: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
		})
	}
}

// TestParseCraftedLengths: lengths that claim gigabytes cost nothing: a
// length is checked against the bytes there before anything is made of
// it.
func TestParseCraftedLengths(t *testing.T) {
	crafted := [][]byte{
		append(bytes.Clone(golden6[:23]), 0, 0, 0, 2, 0xFF, 0xFF, 0xFF, 0xFF), // chunk of 4 GiB
		func() []byte { // a message whose payload claims 4 GiB
			b := bytes.Clone(golden6[:105])
			copy(b[71:75], []byte{0xFF, 0xFF, 0xFF, 0xFF})
			return b
		}(),
	}
	for i, b := range crafted {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, err := Parse(b)
		runtime.ReadMemStats(&after)
		if err == nil {
			t.Errorf("crafted %d: parsed", i)
		}
		if n := after.TotalAlloc - before.TotalAlloc; n > 64<<10 {
			t.Errorf("crafted %d: %d bytes allocated", i, n)
		}
	}
}

func TestStateString(t *testing.T) {
	if StateWaitPubrel.String() != "wait_for_pubrel" || StateQueued.String() != "queued" || State(12).String() != "state(12)" {
		t.Errorf("%v %v %v", StateWaitPubrel, StateQueued, State(12))
	}
}

// TestParseSaved: a file the real Mosquitto 2.0.11 wrote (made by
// TestReadRealMosquitto with -save; mosquittoState says what it holds)
// reads and imports without Mosquitto installed.
func TestParseSaved(t *testing.T) {
	f, err := ReadFile("testdata/mosquitto-2.0.11.db")
	if err != nil {
		t.Fatal(err)
	}
	var saved int64 // when it was saved: b/x expired two hours after
	for _, m := range f.Messages {
		if string(m.Topic) == "b/x" {
			saved = m.Expiry - 7200
		}
	}
	if saved <= 0 {
		t.Fatal("no b/x message with an expiry")
	}
	sum, _ := importInto(t, f, Options{Now: time.Unix(saved, 0)})
	want := "version 6: 4 sessions, 4 subscriptions, 2 retained, 3 queued, 2 in flight, 1 awaiting PUBREL (1 deliveries)"
	if sum.String() != want {
		t.Errorf("imported %s\nwant %s", sum, want)
	}
}
