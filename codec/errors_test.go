package codec

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
)

// Builders for the frames below. frame works out the remaining length, so
// each row only spells out the field that is wrong.

func frame(b0 byte, parts ...[]byte) []byte {
	body := cat(parts...)
	return append(AppendHeader(nil, Type(b0>>4), b0&0x0f, len(body)), body...)
}

func raw(b ...byte) []byte            { return b }
func str(s string) []byte             { return appendBin(nil, bs(s)) } // two-byte length, then s
func u16(v uint16) []byte             { return appendU16(nil, v) }
func block(ps ...[]byte) []byte       { b := cat(ps...); return append(AppendVarint(nil, len(b)), b...) }
func pByte(id PropID, v byte) []byte  { return raw(byte(id), v) }
func p16(id PropID, v uint16) []byte  { return appendU16(raw(byte(id)), v) }
func p32(id PropID, v uint32) []byte  { return appendU32(raw(byte(id)), v) }
func pStr(id PropID, s string) []byte { return append(raw(byte(id)), str(s)...) }
func pVar(id PropID, v int) []byte    { return AppendVarint(raw(byte(id)), v) }
func pUser(k, v string) []byte        { return cat(raw(byte(PropUser)), str(k), str(v)) }

// connect4 is a level-4 CONNECT with the given flags and client id "c";
// tail holds the will, username and password fields.
func connect4(flags byte, tail ...[]byte) []byte {
	return frame(0x10, str("MQTT"), raw(V311, flags, 0, 60), str("c"), cat(tail...))
}

// connect5 is a level-5 CONNECT with connect properties cp.
func connect5(flags byte, cp []byte, tail ...[]byte) []byte {
	return frame(0x10, str("MQTT"), raw(V5, flags, 0, 60), block(cp), str("c"), cat(tail...))
}

// will5 is a level-5 CONNECT with a will (flags 0x04) carrying will
// properties wp, topic and payload.
func will5(wp []byte, topic, payload string) []byte {
	return connect5(0x04, nil, block(wp), str(topic), str(payload))
}

// publish5 is a level-5 QoS 1 PUBLISH to "t" with packet id 1.
func publish5(ps ...[]byte) []byte { return frame(0x32, str("t"), u16(1), block(cat(ps...)), bs("x")) }

// ack5 is a level-5 PUBACK with reason code Success and properties ps.
func ack5(ps ...[]byte) []byte { return frame(0x40, u16(1), raw(0), block(cat(ps...))) }

// errCase is one malformed frame; its name ends with the spec clause it breaks.
type errCase struct {
	name  string
	v     byte
	frame []byte
}

// runErrCases decodes every frame and wants exactly err back, with code.
func runErrCases(t *testing.T, want *Error, code ReasonCode, cases []errCase) {
	t.Helper()
	if want.Code != code {
		t.Fatalf("%v has code %v, want %v", want, want.Code, code)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := decodeFrame(c.frame, c.v, false)
			if err != want {
				t.Fatalf("decode % x\n got %v\nwant %v", c.frame, err, want)
			}
			var e *Error
			if !errors.As(err, &e) || e.Code != code {
				t.Fatalf("reason code %v, want %v", e.Code, code)
			}
		})
	}
}

func TestErrReservedType(t *testing.T) {
	runErrCases(t, ErrReservedType, MalformedPacket, []errCase{
		{"type 0 §2.1.2 table 2-1", V5, raw(0x00, 0x00)},
		{"type 0 with flags §2.1.2", V311, raw(0x0f, 0x00)},
		{"type 0 with body §2.1.2", V311, raw(0x00, 0x01, 0x00)},
	})
}

func TestErrReservedFlags(t *testing.T) {
	var cases []errCase
	for typ := CONNECT; typ <= AUTH; typ++ {
		if typ == PUBLISH {
			continue // PUBLISH flags are DUP, QoS, RETAIN
		}
		for f := byte(0); f < 16; f++ {
			if f == requiredFlags[typ] {
				continue
			}
			for _, v := range []byte{V311, V5} {
				cases = append(cases, errCase{
					name:  fmt.Sprintf("%v flags %04b v%d [MQTT-2.1.3-1] [MQTT-2.2.2-1]", typ, f, v),
					v:     v,
					frame: raw(byte(typ)<<4|f, 0x00),
				})
			}
		}
	}
	if len(cases) != 14*15*2 {
		t.Fatalf("%d cases", len(cases))
	}
	runErrCases(t, ErrReservedFlags, MalformedPacket, cases)
}

func TestErrMalformedVarint(t *testing.T) {
	runErrCases(t, ErrMalformedVarint, MalformedPacket, []errCase{
		{"remaining length 5 bytes [MQTT-1.5.5-1]", V5, raw(0x30, 0xff, 0xff, 0xff, 0xff, 0x7f)},
		{"remaining length 4 continuation bits [MQTT-1.5.5-1]", V311, raw(0x30, 0x80, 0x80, 0x80, 0x80)},
		{"remaining length not shortest, 80 00 [MQTT-1.5.5-1]", V311, raw(0xc0, 0x80, 0x00)},
		// Found by FuzzDecoderSplit: 66 as c2 00 decoded, so a frame did not
		// re-encode to its own bytes.
		{"remaining length not shortest, c2 00 [MQTT-1.5.5-1]", V311, cat(raw(0x30, 0xc2, 0x00), str("t"), make([]byte, 63))},
		{"remaining length not shortest, ff ff 80 00 [MQTT-1.5.5-1]", V5, raw(0x30, 0xff, 0xff, 0x80, 0x00)},
		{"property length not shortest [MQTT-1.5.5-1]", V5, frame(0x30, str("t"), raw(0x80, 0x00))},
		{"property id not shortest [MQTT-1.5.5-1]", V5, frame(0x30, str("t"), raw(0x03, 0x81, 0x00, 0x01))},
		{"subscription id not shortest [MQTT-1.5.5-1]", V5, frame(0x30, str("t"), raw(0x03, 0x0b, 0x81, 0x00))},
		{"property length 5 bytes §2.2.2.1", V5, frame(0x30, str("t"), raw(0x80, 0x80, 0x80, 0x80, 0x01))},
		{"property id 5 bytes §2.2.2.2", V5, frame(0x30, str("t"), raw(0x05, 0x80, 0x80, 0x80, 0x80, 0x01))},
		{"subscription id 5 bytes §3.3.2.3.8", V5, frame(0x82, u16(1), raw(0x06, 0x0b, 0xff, 0xff, 0xff, 0xff, 0x01))},
	})
}

func TestErrShort(t *testing.T) {
	if ErrShort.Code != Success {
		t.Fatal("ErrShort is not a protocol error")
	}
	for _, b := range [][]byte{nil, raw(0x30), raw(0x30, 0x80), raw(0x30, 0x80, 0x80), raw(0x30, 0xff, 0xff, 0xff),
		raw(0x00)} { // one byte is not enough even to judge type 0
		if _, err := ParseHeader(b, 0); err != ErrShort {
			t.Errorf("ParseHeader(% x) = %v, want ErrShort", b, err)
		}
	}
}

func TestErrPacketTooLarge(t *testing.T) {
	// §3.1.2.11.4 / §3.2.2.3.6: a packet over the Maximum Packet Size is
	// refused from its fixed header, before the body is buffered.
	tests := []struct {
		name string
		b    []byte
		max  int
		err  error
	}{
		{"one over", raw(0x30, 0x0a), 11, ErrPacketTooLarge},
		{"exactly max", raw(0x30, 0x0a), 12, nil},
		{"no limit", raw(0x30, 0xff, 0xff, 0xff, 0x7f), 0, nil},
		{"protocol maximum over 1 MiB", raw(0x30, 0xff, 0xff, 0xff, 0x7f), 1 << 20, ErrPacketTooLarge},
		{"header counts", raw(0x30, 0x80, 0x01), 130, ErrPacketTooLarge}, // 3 + 128 bytes
	}
	for _, tc := range tests {
		h, err := ParseHeader(tc.b, tc.max)
		if err != tc.err {
			t.Errorf("%s: ParseHeader(% x, %d) = %v, want %v", tc.name, tc.b, tc.max, err, tc.err)
		}
		if err == ErrPacketTooLarge && (h.Type != PUBLISH || h.Size() <= tc.max) {
			t.Errorf("%s: header %+v should say how large", tc.name, h)
		}
	}
	if ErrPacketTooLarge.Code != PacketTooLarge {
		t.Errorf("code %v", ErrPacketTooLarge.Code)
	}
	d := Decoder{MaxSize: 8}
	d.Write(raw(0x30, 0x07)) // 9 bytes announced
	if _, _, ok, err := d.Next(); ok || err != ErrPacketTooLarge {
		t.Errorf("Decoder.Next = %v, %v; want ErrPacketTooLarge", ok, err)
	}
}

func TestErrInvalidQoS(t *testing.T) {
	runErrCases(t, ErrInvalidQoS, MalformedPacket, []errCase{
		{"PUBLISH QoS 3 [MQTT-3.3.1-4]", V311, frame(0x36, str("t"), u16(1))},
		{"PUBLISH QoS 3 retain v5 [MQTT-3.3.1-4]", V5, frame(0x37, str("t"), u16(1), raw(0))},
		{"PUBLISH QoS 3 dup [MQTT-3.3.1-4]", V31, frame(0x3e, str("t"), u16(1))},
		{"CONNECT will QoS 3 v4 [MQTT-3.1.2-14]", V311, connect4(0x1c, str("w"), str("p"))},
		{"CONNECT will QoS 3 v5 [MQTT-3.1.2-12]", V5, connect5(0x1c, nil, block(nil), str("w"), str("p"))},
		{"SUBSCRIBE QoS 3 v4 [MQTT-3-8.3-4]", V311, frame(0x82, u16(1), str("a"), raw(0x03))},
		{"SUBSCRIBE QoS 3 v5 §3.8.3.1", V5, frame(0x82, u16(1), block(nil), str("a"), raw(0x03))},
	})
	var p Publish // a client refuses QoS 3 too [MQTT-3.3.1-4]
	if err := p.DecodeClient(0x06, cat(str("t"), u16(1), raw(0)), V5); err != ErrInvalidQoS {
		t.Errorf("DecodeClient QoS 3: %v", err)
	}
}

func TestErrDupQoS0(t *testing.T) {
	runErrCases(t, ErrDupQoS0, MalformedPacket, []errCase{
		{"DUP QoS 0 [MQTT-3.3.1-2]", V311, frame(0x38, str("t"), bs("x"))},
		{"DUP QoS 0 retain v5 [MQTT-3.3.1-2]", V5, frame(0x39, str("t"), block(nil))},
	})
}

func TestErrPacketIDZero(t *testing.T) {
	runErrCases(t, ErrPacketIDZero, MalformedPacket, []errCase{
		{"PUBLISH QoS 1 v4 [MQTT-2.3.1-1]", V311, frame(0x32, str("t"), u16(0))},
		{"PUBLISH QoS 2 v5 [MQTT-2.2.1-3]", V5, frame(0x34, str("t"), u16(0), block(nil))},
		{"PUBACK v4 [MQTT-2.3.1-1]", V311, frame(0x40, u16(0))},
		{"PUBREC v5 [MQTT-2.2.1-3]", V5, frame(0x50, u16(0))},
		{"PUBREL v5 [MQTT-2.2.1-3]", V5, frame(0x62, u16(0), raw(0x92))},
		{"PUBCOMP v4 [MQTT-2.3.1-1]", V311, frame(0x70, u16(0))},
		{"SUBSCRIBE v4 [MQTT-2.3.1-1]", V311, frame(0x82, u16(0), str("a"), raw(0))},
		{"SUBSCRIBE v5 [MQTT-2.2.1-3]", V5, frame(0x82, u16(0), block(nil), str("a"), raw(0))},
		{"UNSUBSCRIBE v4 [MQTT-2.3.1-1]", V311, frame(0xa2, u16(0), str("a"))},
		{"UNSUBSCRIBE v5 [MQTT-2.2.1-3]", V5, frame(0xa2, u16(0), block(nil), str("a"))},
	})
}

func TestErrTopicWildcard(t *testing.T) {
	runErrCases(t, ErrTopicWildcard, TopicNameInvalid, []errCase{
		{"plus level v4 [MQTT-3.3.2-2]", V311, frame(0x30, str("a/+"))},
		{"hash v5 [MQTT-3.3.2-2]", V5, frame(0x30, str("#"), block(nil))},
		{"hash inside a level v3 [MQTT-3.3.2-2]", V31, frame(0x30, str("a#b"))},
		{"plus with alias v5 [MQTT-3.3.2-2]", V5, frame(0x30, str("+"), block(p16(PropTopicAlias, 1)))},
	})
}

func TestErrTopicEmpty(t *testing.T) {
	runErrCases(t, ErrTopicEmpty, TopicNameInvalid, []errCase{
		{"v3 [MQTT-4.7.3-1]", V31, frame(0x30, str(""), bs("x"))},
		{"v4 QoS 1 [MQTT-4.7.3-1]", V311, frame(0x32, str(""), u16(1))},
	})
}

// TestErrTopicNoAlias: in MQTT 5 an empty topic needs a Topic Alias; without
// one it is a Protocol Error (section 3.3.2.3.4).
func TestErrTopicNoAlias(t *testing.T) {
	runErrCases(t, ErrTopicNoAlias, ProtocolError, []errCase{
		{"v5 without alias §3.3.2.3.4", V5, frame(0x30, str(""), block(nil))},
		{"v5 other properties but no alias §3.3.2.3.4", V5, frame(0x30, str(""), block(pUser("k", "v")))},
	})
}

// TestErrTopicAliasZero: alias 0 is answered with 0x94 [MQTT-3.3.2-8].
func TestErrTopicAliasZero(t *testing.T) {
	runErrCases(t, ErrTopicAliasZero, TopicAliasInvalid, []errCase{})
}

// TestErrClientSubID: a client may not send a Subscription Identifier in
// PUBLISH [MQTT-3.3.4-6].
func TestErrClientSubID(t *testing.T) {
	runErrCases(t, ErrClientSubID, ProtocolError, []errCase{
		{"PUBLISH with subscription identifier [MQTT-3.3.4-6]", V5, publish5(pVar(PropSubscriptionID, 7))},
	})
}

func TestErrInvalidUTF8(t *testing.T) {
	nul, surrogate, overlong, bad, cut := "a\x00b", "\xed\xa0\x80", "\xc0\x80", "\xff", "\xe2\x82"
	runErrCases(t, ErrInvalidUTF8, MalformedPacket, []errCase{
		{"topic U+0000 [MQTT-1.5.4-2]", V311, frame(0x30, str(nul))},
		{"topic surrogate D800 [MQTT-1.5.4-1]", V5, frame(0x30, str(surrogate), block(nil))},
		{"topic overlong NUL [MQTT-1.5.4-1]", V311, frame(0x30, str(overlong))},
		{"topic byte ff [MQTT-1.5.4-1]", V311, frame(0x30, str(bad))},
		{"topic cut sequence [MQTT-1.5.4-1]", V311, frame(0x30, str("a"+cut))},
		{"protocol name [MQTT-1.5.4-2]", V311, frame(0x10, str("MQ\x00T"), raw(4, 2, 0, 0), str("c"))},
		{"client id U+0000 [MQTT-3.1.3-4]", V311, frame(0x10, str("MQTT"), raw(4, 2, 0, 0), str(nul))},
		{"client id surrogate [MQTT-3.1.3-4]", V5, frame(0x10, str("MQTT"), raw(5, 2, 0, 0), block(nil), str(surrogate))},
		{"will topic [MQTT-3.1.3-10]", V311, connect4(0x04, str(surrogate), str(""))},
		{"username [MQTT-3.1.3-11]", V311, connect4(0x80, str(nul))},
		{"user property key [MQTT-1.5.7-1]", V5, publish5(pUser(surrogate, "v"))},
		{"user property value [MQTT-1.5.7-1]", V5, publish5(pUser("k", nul))},
		{"content type §3.3.2.3.9", V5, publish5(pStr(PropContentType, overlong))},
		{"reason string §3.4.2.2.2", V5, ack5(pStr(PropReasonString, bad))},
		{"auth method §3.1.2.11.9", V5, connect5(0, pStr(PropAuthMethod, nul))},
		{"subscribe filter [MQTT-1.5.4-1]", V311, frame(0x82, u16(1), str(surrogate), raw(0))},
		{"unsubscribe filter [MQTT-1.5.4-2]", V5, frame(0xa2, u16(1), block(nil), str(nul))},
	})
}

func TestErrConnectReserved(t *testing.T) {
	runErrCases(t, ErrConnectReserved, MalformedPacket, []errCase{
		{"v4 flag 0x01 [MQTT-3.1.2-3]", V311, connect4(0x01)},
		{"v4 clean + reserved [MQTT-3.1.2-3]", V311, connect4(0x03)},
		{"v5 [MQTT-3.1.2-3]", V5, connect5(0x01, nil)},
		{"v3 [MQTT-3.1.2-3]", V31, frame(0x10, str("MQIsdp"), raw(3, 0x01, 0, 0), str("c"))},
	})
}

func TestErrWillFlags(t *testing.T) {
	runErrCases(t, ErrWillFlags, MalformedPacket, []errCase{
		{"will QoS 1 without will v4 [MQTT-3.1.2-13]", V311, connect4(0x08)},
		{"will QoS 2 without will v5 [MQTT-3.1.2-11]", V5, connect5(0x10, nil)},
		{"will retain without will v4 [MQTT-3.1.2-15]", V311, connect4(0x20)},
		{"will retain without will v5 [MQTT-3.1.2-13]", V5, connect5(0x22, nil)},
	})
}

func TestErrPasswordNoUser(t *testing.T) {
	runErrCases(t, ErrPasswordNoUser, MalformedPacket, []errCase{
		{"v4 [MQTT-3.1.2-22]", V311, connect4(0x40, str("p"))},
		{"v3 [MQTT-3.1.2-22]", V31, frame(0x10, str("MQIsdp"), raw(3, 0x42, 0, 0), str("c"), str("p"))},
	})
	// MQTT 5 allows it (§3.1.2.9): see the golden "v5 CONNECT password without username".
	if _, err := decodeFrame(connect5(0x40, nil, str("p")), V5, false); err != nil {
		t.Errorf("v5 password without username: %v", err)
	}
}

func TestErrProtocolName(t *testing.T) {
	runErrCases(t, ErrProtocolName, ProtocolError, []errCase{
		{"MQTX [MQTT-3.1.2-1]", V311, frame(0x10, str("MQTX"), raw(4, 2, 0, 0), str("c"))},
		{"lower case [MQTT-3.1.2-1]", V311, frame(0x10, str("mqtt"), raw(4, 2, 0, 0), str("c"))},
		{"empty [MQTT-3.1.2-1]", V5, frame(0x10, str(""), raw(5, 2, 0, 0), block(nil), str("c"))},
		{"MQIsdp with a space [MQTT-3.1.2-1]", V31, frame(0x10, str("MQIsdp "), raw(3, 2, 0, 0), str("c"))},
	})
}

func TestErrProtocolVersion(t *testing.T) {
	cases := []struct {
		name string
		ver  byte
	}{{"MQTT", 3}, {"MQTT", 6}, {"MQTT", 0}, {"MQIsdp", 4}, {"MQIsdp", 5},
		{"MQTT", 0x83}, {"MQTT", 0x86}, {"MQTT", 0x80}, {"MQIsdp", 0x84}}
	var rows []errCase
	for _, c := range cases {
		rows = append(rows, errCase{fmt.Sprintf("%s level %d [MQTT-3.1.2-2]", c.name, c.ver), V5,
			frame(0x10, str(c.name), raw(c.ver, 2, 0, 0), str("c"))})
	}
	runErrCases(t, ErrProtocolVersion, UnsupportedProtocolVersion, rows)
	// The level read so far is kept, so the CONNACK can be chosen by it.
	var c Connect
	if err := c.Decode(frame(0x10, str("MQTT"), raw(6))[2:]); err != ErrProtocolVersion || c.Version != 6 {
		t.Errorf("Decode = %v, Version %d", err, c.Version)
	}
}

func TestErrPropertyDuplicate(t *testing.T) {
	se := p32(PropSessionExpiry, 1)
	runErrCases(t, ErrPropertyDuplicate, ProtocolError, []errCase{
		{"CONNECT session expiry twice §3.1.2.11.2", V5, connect5(0, cat(se, se))},
		{"CONNECT receive maximum twice §3.1.2.11.3", V5, connect5(0, cat(p16(PropReceiveMaximum, 1), p16(PropReceiveMaximum, 2)))},
		{"will delay twice §3.1.3.2.2", V5, will5(cat(p32(PropWillDelay, 1), p32(PropWillDelay, 1)), "w", "")},
		{"CONNACK maximum QoS twice §3.2.2.3.4", V5, frame(0x20, raw(0, 0), block(pByte(PropMaximumQoS, 0), pByte(PropMaximumQoS, 1)))},
		{"PUBLISH to server two subscription ids [MQTT-3.3.4-6]", V5, publish5(pVar(PropSubscriptionID, 1), pVar(PropSubscriptionID, 2))},
		{"PUBLISH topic alias twice §3.3.2.3.4", V5, publish5(p16(PropTopicAlias, 1), p16(PropTopicAlias, 1))},
		{"PUBACK reason string twice §3.4.2.2.2", V5, ack5(pStr(PropReasonString, "a"), pStr(PropReasonString, "b"))},
		{"SUBSCRIBE subscription id twice §3.8.2.1.2", V5, frame(0x82, u16(1), block(pVar(PropSubscriptionID, 1), pVar(PropSubscriptionID, 2)), str("a"), raw(0))},
		{"DISCONNECT session expiry twice §3.14.2.2.2", V5, frame(0xe0, raw(0), block(se, se))},
		{"AUTH method twice §3.15.2.2.2", V5, frame(0xf0, raw(0x18), block(pStr(PropAuthMethod, "m"), pStr(PropAuthMethod, "m")))},
	})
}

func TestErrPropertyNotHere(t *testing.T) {
	runErrCases(t, ErrPropertyNotHere, MalformedPacket, []errCase{
		{"CONNECT topic alias §2.2.2.2", V5, connect5(0, p16(PropTopicAlias, 1))},
		{"CONNECT will delay outside will §2.2.2.2", V5, connect5(0, p32(PropWillDelay, 1))},
		{"CONNECT reason string §2.2.2.2", V5, connect5(0, pStr(PropReasonString, "r"))},
		{"will session expiry §2.2.2.2", V5, will5(p32(PropSessionExpiry, 1), "w", "")},
		{"CONNACK will delay §2.2.2.2", V5, frame(0x20, raw(0, 0), block(p32(PropWillDelay, 1)))},
		{"PUBLISH session expiry §2.2.2.2", V5, publish5(p32(PropSessionExpiry, 1))},
		{"PUBLISH reason string §2.2.2.2", V5, publish5(pStr(PropReasonString, "r"))},
		{"PUBACK subscription id §2.2.2.2", V5, ack5(pVar(PropSubscriptionID, 1))},
		{"PUBREL content type §2.2.2.2", V5, frame(0x62, u16(1), raw(0), block(pStr(PropContentType, "c")))},
		{"SUBSCRIBE topic alias §2.2.2.2", V5, frame(0x82, u16(1), block(p16(PropTopicAlias, 1)), str("a"), raw(0))},
		{"SUBACK subscription id §2.2.2.2", V5, frame(0x90, u16(1), block(pVar(PropSubscriptionID, 1)), raw(0))},
		{"UNSUBSCRIBE reason string §2.2.2.2", V5, frame(0xa2, u16(1), block(pStr(PropReasonString, "r")), str("a"))},
		{"UNSUBSCRIBE subscription id §2.2.2.2", V5, frame(0xa2, u16(1), block(pVar(PropSubscriptionID, 1)), str("a"))},
		{"UNSUBACK session expiry §2.2.2.2", V5, frame(0xb0, u16(1), block(p32(PropSessionExpiry, 1)), raw(0))},
		{"DISCONNECT auth method §2.2.2.2", V5, frame(0xe0, raw(0), block(pStr(PropAuthMethod, "m")))},
		{"AUTH session expiry §2.2.2.2", V5, frame(0xf0, raw(0x18), block(p32(PropSessionExpiry, 1)))},
	})
}

func TestErrPropertyUnknown(t *testing.T) {
	var rows []errCase
	for _, id := range []int{0x00, 0x04, 0x0a, 0x14, 0x2b, 0x3f, 0x40, 0x7f, 0x80, 1 << 20} {
		rows = append(rows, errCase{fmt.Sprintf("PUBLISH id 0x%x §2.2.2.2", id), V5,
			publish5(AppendVarint(nil, id), raw(0, 0, 0, 0))})
	}
	rows = append(rows, errCase{"CONNECT id 0x14 §2.2.2.2", V5, connect5(0, raw(0x14, 0))})
	runErrCases(t, ErrPropertyUnknown, MalformedPacket, rows)
}

func TestErrPropertyValue(t *testing.T) {
	runErrCases(t, ErrPropertyValue, ProtocolError, []errCase{
		{"CONNECT receive maximum 0 §3.1.2.11.3", V5, connect5(0, p16(PropReceiveMaximum, 0))},
		{"CONNACK receive maximum 0 §3.2.2.3.3", V5, frame(0x20, raw(0, 0), block(p16(PropReceiveMaximum, 0)))},
		{"CONNECT maximum packet size 0 §3.1.2.11.4", V5, connect5(0, p32(PropMaximumPacketSize, 0))},
		{"CONNECT request problem info 2 §3.1.2.11.7", V5, connect5(0, pByte(PropRequestProblemInfo, 2))},
		{"CONNECT request response info 2 §3.1.2.11.6", V5, connect5(0, pByte(PropRequestResponseInfo, 2))},
		{"PUBLISH payload format 2 §3.3.2.3.2", V5, publish5(pByte(PropPayloadFormat, 2))},
		{"will payload format 0xff §3.1.3.2.3", V5, will5(pByte(PropPayloadFormat, 0xff), "w", "")},
		{"PUBLISH subscription id 0 §3.3.2.3.8", V5, publish5(pVar(PropSubscriptionID, 0))},
		{"SUBSCRIBE subscription id 0 §3.8.2.1.2", V5, frame(0x82, u16(1), block(pVar(PropSubscriptionID, 0)), str("a"), raw(0))},
		{"CONNACK maximum QoS 2 §3.2.2.3.4", V5, frame(0x20, raw(0, 0), block(pByte(PropMaximumQoS, 2)))},
		{"CONNACK retain available 2 §3.2.2.3.5", V5, frame(0x20, raw(0, 0), block(pByte(PropRetainAvailable, 2)))},
		{"CONNACK wildcard available 2 §3.2.2.3.11", V5, frame(0x20, raw(0, 0), block(pByte(PropWildcardSubAvailable, 2)))},
		{"CONNACK subscription ids available 2 §3.2.2.3.12", V5, frame(0x20, raw(0, 0), block(pByte(PropSubIDAvailable, 2)))},
		{"CONNACK shared available 2 §3.2.2.3.13", V5, frame(0x20, raw(0, 0), block(pByte(PropSharedSubAvailable, 2)))},
	})
}

func TestErrPropertyLength(t *testing.T) {
	runErrCases(t, ErrPropertyLength, MalformedPacket, []errCase{
		{"PUBLISH property length past the end §2.2.2.1", V5, frame(0x30, str("t"), raw(0x05, 0x01, 0x01))},
		{"CONNECT property length past the end §2.2.2.1", V5, frame(0x10, str("MQTT"), raw(5, 0, 0, 0, 0x7f))},
		{"CONNACK property length past the end §2.2.2.1", V5, frame(0x20, raw(0, 0, 0x01))},
	})
}

func TestErrNoFilters(t *testing.T) {
	runErrCases(t, ErrNoFilters, ProtocolError, []errCase{
		{"SUBSCRIBE v4 [MQTT-3.8.3-3]", V311, frame(0x82, u16(1))},
		{"SUBSCRIBE v5 [MQTT-3.8.3-2]", V5, frame(0x82, u16(1), block(pUser("k", "v")))},
		{"UNSUBSCRIBE v4 [MQTT-3.10.3-2]", V311, frame(0xa2, u16(1))},
		{"UNSUBSCRIBE v5 [MQTT-3.10.3-2]", V5, frame(0xa2, u16(1), block(nil))},
	})
}

func TestErrSubOptions(t *testing.T) {
	runErrCases(t, ErrSubOptions, MalformedPacket, []errCase{
		{"v4 bit 2 [MQTT-3-8.3-4]", V311, frame(0x82, u16(1), str("a"), raw(0x04))},
		{"v4 bit 7 [MQTT-3-8.3-4]", V311, frame(0x82, u16(1), str("a"), raw(0x81))},
		{"v5 bit 6 [MQTT-3.8.3-5]", V5, frame(0x82, u16(1), block(nil), str("a"), raw(0x40))},
		{"v5 bits 6-7 second filter [MQTT-3.8.3-5]", V5, frame(0x82, u16(1), block(nil), str("a"), raw(0), str("b"), raw(0xc1))},
	})
}

func TestErrRetainHandling(t *testing.T) {
	runErrCases(t, ErrRetainHandling, ProtocolError, []errCase{
		{"retain handling 3 §3.8.3.1", V5, frame(0x82, u16(1), block(nil), str("a"), raw(0x30))},
		{"retain handling 3 with other options §3.8.3.1", V5, frame(0x82, u16(1), block(nil), str("a"), raw(0x3e))},
	})
}

func TestErrReasonCode(t *testing.T) {
	runErrCases(t, ErrReasonCode, MalformedPacket, []errCase{
		{"PUBACK 0x92 §3.4.2.1", V5, frame(0x40, u16(1), raw(0x92))},
		{"PUBACK 0x01 §3.4.2.1", V5, frame(0x40, u16(1), raw(0x01))},
		{"PUBREC 0x8f §3.5.2.1", V5, frame(0x50, u16(1), raw(0x8f))},
		{"PUBREL 0x10 §3.6.2.1", V5, frame(0x62, u16(1), raw(0x10))},
		{"PUBCOMP 0x80 §3.7.2.1", V5, frame(0x70, u16(1), raw(0x80), block(nil))},
		{"AUTH 0x04 [MQTT-3.15.2-1]", V5, frame(0xf0, raw(0x04))},
		{"AUTH 0x80 [MQTT-3.15.2-1]", V5, frame(0xf0, raw(0x80), block(nil))},
	})
}

func TestErrConnackFlags(t *testing.T) {
	runErrCases(t, ErrConnackFlags, MalformedPacket, []errCase{
		{"v4 bit 1 §3.2.2.1", V311, frame(0x20, raw(0x02, 0))},
		{"v5 bit 7 §3.2.2.1.1", V5, frame(0x20, raw(0x80, 0), block(nil))},
		{"v5 all bits §3.2.2.1.1", V5, frame(0x20, raw(0xff, 0), block(nil))},
	})
}

func TestErrWillTopic(t *testing.T) {
	runErrCases(t, ErrWillTopic, MalformedPacket, []errCase{
		{"empty v4 [MQTT-4.7.3-1]", V311, connect4(0x04, str(""), str("p"))},
		{"wildcard v4 [MQTT-3.3.2-2]", V311, connect4(0x04, str("a/#"), str("p"))},
		{"wildcard v5 [MQTT-3.3.2-2]", V5, will5(nil, "+", "p")},
	})
}

func TestErrPayloadFormat(t *testing.T) {
	runErrCases(t, ErrPayloadFormat, PayloadFormatInvalid, []errCase{
		{"PUBLISH §3.3.2.3.2", V5, frame(0x30, str("t"), block(pByte(PropPayloadFormat, 1)), bs("\xed\xa0\x80"))},
		{"will payload §3.1.3.2.3", V5, will5(pByte(PropPayloadFormat, 1), "w", "a\x00")},
	})
	// Format 0 (unspecified bytes) is never checked.
	if _, err := decodeFrame(frame(0x30, str("t"), block(pByte(PropPayloadFormat, 0)), bs("\xff")), V5, false); err != nil {
		t.Errorf("payload format 0: %v", err)
	}
}

func TestErrTrailingBytes(t *testing.T) {
	runErrCases(t, ErrTrailingBytes, MalformedPacket, []errCase{
		{"CONNECT v4 §4.13.1", V311, connect4(0x02, raw(0))},
		{"CONNECT v5 after password §4.13.1", V5, connect5(0x40, nil, str("p"), raw(0))},
		{"CONNACK v4 §4.13.1", V311, frame(0x20, raw(0, 0, 0))},
		{"CONNACK v5 §4.13.1", V5, frame(0x20, raw(0, 0), block(nil), raw(0))},
		{"PUBACK v4 with a reason code §3.4.2", V311, frame(0x40, u16(1), raw(0))},
		{"PUBACK v5 after properties §4.13.1", V5, frame(0x40, u16(1), raw(0), block(nil), raw(0))},
		{"DISCONNECT v4 with a body §3.14.2", V311, frame(0xe0, raw(0))},
		{"DISCONNECT v5 after properties §4.13.1", V5, frame(0xe0, raw(0), block(nil), raw(0))},
		{"PINGREQ with a body §3.12.2", V5, frame(0xc0, raw(0))},
		// Regression: a 3.1.1 UNSUBACK with reason codes used to decode
		// and then re-encode without them (Decode(Encode(p)) != p).
		{"UNSUBACK v4 with codes §3.11.3", V311, frame(0xb0, u16(1), raw(0))},
		{"UNSUBACK v3 with codes §3.11.3", V31, frame(0xb0, u16(1), raw(0x11, 0x80))},
	})
}

// TestErrTruncated cuts whole packets, whose every field is required, at
// every length: the decoder must fail, never panic and never read past.
func TestErrTruncated(t *testing.T) {
	runErrCases(t, ErrTruncated, MalformedPacket, []errCase{
		{"PUBLISH topic past the end §4.13.1", V311, frame(0x30, raw(0, 5, 'a'))},
		{"PUBLISH no packet id §4.13.1", V311, frame(0x32, str("t"), raw(0))},
		{"PUBACK one byte §4.13.1", V311, frame(0x40, raw(1))},
		{"CONNACK one byte §4.13.1", V311, frame(0x20, raw(0))},
		{"CONNACK v5 no property length §3.2.2.3.1", V5, frame(0x20, raw(0, 0))},
		{"PUBLISH v5 no property length §3.3.2.3.1", V5, frame(0x30, str("t"))},
		{"property value past the block §2.2.2.2", V5, frame(0x30, str("t"), raw(2, 0x02, 0), raw(0, 0, 0))},
		{"SUBSCRIBE missing options §4.13.1", V311, frame(0x82, u16(1), str("a"))},
		{"user property without value §4.13.1", V5, frame(0x30, str("t"), raw(4), raw(0x26, 0, 1, 'k'))},
	})

	for _, name := range []string{
		"v3 CONNECT MQIsdp will user pass",
		"v4 CONNECT empty id will QoS2 retain user binary pass",
		"v5 CONNECT every connect and will property",
		"v5 CONNACK every connack property",
		"v5 SUBSCRIBE options and properties",
		"v4 UNSUBSCRIBE",
		"v5 UNSUBSCRIBE user property",
		"v4 SUBSCRIBE",
	} {
		g := goldenByName(t, name)
		h, err := ParseHeader(g.wire, 0)
		if err != nil {
			t.Fatal(err)
		}
		body := g.wire[h.Len:]
		for n := 0; n < len(body); n++ {
			p, err := decodePacket(h, body[:n:n], g.v, false) // cap n: reading past is a panic
			list := h.Type == SUBSCRIBE || h.Type == UNSUBSCRIBE
			switch {
			case err == ErrTruncated || err == ErrPropertyLength: // cut inside a field or a property block
			case list && err == ErrNoFilters: // cut right before the first filter
			case list && err == nil && filterCount(p) < filterCount(g.pkt): // cut between filters: a shorter list
			default:
				t.Errorf("%s cut at %d: %v", name, n, err)
			}
		}
		// Cut frames never come out of the Decoder at all.
		for n := 0; n < len(g.wire); n++ {
			var d Decoder
			d.Write(g.wire[:n])
			if _, _, ok, err := d.Next(); ok || err != nil {
				t.Errorf("%s: Decoder with %d bytes: ok=%v err=%v", name, n, ok, err)
			}
		}
	}
}

func filterCount(p any) int {
	switch p := p.(type) {
	case *Subscribe:
		return len(p.Filters)
	case *Unsubscribe:
		return len(p.Filters)
	}
	return -1
}

func TestCheckTopicName(t *testing.T) {
	tests := []struct {
		name  string
		topic []byte
		want  error
	}{
		{"plain", bs("a/b/c"), nil},
		{"single slash", bs("/"), nil},
		{"empty levels", bs("a//b/"), nil},
		{"space and unicode", bs("sport/ténnis/ player1 "), nil},
		{"dollar topic", bs("$SYS/broker/load"), nil},
		{"control chars allowed [MQTT-1.5.4-3]", bs("a\x01b"), nil},
		{"empty [MQTT-4.7.3-1]", bs(""), ErrTopicEmpty},
		{"plus [MQTT-4.7.1-1]", bs("a/+/b"), ErrTopicWildcard},
		{"hash [MQTT-4.7.1-1]", bs("a/#"), ErrTopicWildcard},
		{"U+0000 [MQTT-4.7.3-2]", bs("a\x00"), ErrTopicUTF8},
		{"surrogate [MQTT-1.5.4-1]", bs("\xed\xa0\x80"), ErrTopicUTF8},
		{"65535 bytes [MQTT-4.7.3-3]", bytes.Repeat(bs("a"), 65535), nil},
		{"65536 bytes [MQTT-4.7.3-3]", bytes.Repeat(bs("a"), 65536), ErrTopicTooLong},
	}
	for _, tc := range tests {
		if err := CheckTopicName(tc.topic); err != tc.want {
			t.Errorf("%s: CheckTopicName = %v, want %v", tc.name, err, tc.want)
		}
	}
	codes := map[*Error]ReasonCode{ErrTopicEmpty: TopicNameInvalid, ErrTopicWildcard: TopicNameInvalid,
		ErrTopicTooLong: TopicNameInvalid, ErrTopicUTF8: MalformedPacket}
	for e, c := range codes {
		if e.Code != c {
			t.Errorf("%v: code %v, want %v", e, e.Code, c)
		}
	}
}

func TestCheckFilter(t *testing.T) {
	tests := []struct {
		filter string
		want   error
	}{
		{"a/b", nil},
		{"#", nil},                      // [MQTT-4.7.1-2]
		{"a/#", nil},                    // [MQTT-4.7.1-2]
		{"/#", nil},                     // [MQTT-4.7.1-2]
		{"+", nil},                      // [MQTT-4.7.1-3]
		{"+/+", nil},                    // [MQTT-4.7.1-3]
		{"a/+/b", nil},                  // [MQTT-4.7.1-3]
		{"/+/", nil},                    // [MQTT-4.7.1-3]
		{"+/#", nil},                    // [MQTT-4.7.1-3]
		{"$SYS/#", nil},                 // [MQTT-4.7.2-1] is about matching, not syntax
		{"", ErrFilterEmpty},            // [MQTT-4.7.3-1]
		{"a#", ErrFilterHash},           // [MQTT-4.7.1-2]
		{"a/#/b", ErrFilterHash},        // [MQTT-4.7.1-2]
		{"#/", ErrFilterHash},           // [MQTT-4.7.1-2]
		{"##", ErrFilterHash},           // [MQTT-4.7.1-2]
		{"a+", ErrFilterPlus},           // [MQTT-4.7.1-3]
		{"+a", ErrFilterPlus},           // [MQTT-4.7.1-3]
		{"a/b+/c", ErrFilterPlus},       // [MQTT-4.7.1-3]
		{"++", ErrFilterPlus},           // [MQTT-4.7.1-3]
		{"a\x00", ErrFilterUTF8},        // [MQTT-4.7.3-2]
		{"\xed\xa0\x80", ErrFilterUTF8}, // [MQTT-1.5.4-1]
		// Shared subscriptions "$share/{ShareName}/{filter}".
		{"$share/g/a/b", nil}, // [MQTT-4.8.2-1]
		{"$share/g/#", nil},   // [MQTT-4.8.2-2]
		{"$share/g/+/x", nil}, // [MQTT-4.8.2-2]
		{"$share/group-1/$SYS/#", nil},
		{"$share/g//", nil},             // the filter "/" is one empty-level filter
		{"$share/", ErrFilterShare},     // [MQTT-4.8.2-1] no ShareName
		{"$share//a", ErrFilterShare},   // [MQTT-4.8.2-1] empty ShareName
		{"$share/g", ErrFilterShare},    // [MQTT-4.8.2-2] no "/" after ShareName
		{"$share/g/", ErrFilterShare},   // [MQTT-4.8.2-2] no filter after "/"
		{"$share/g+/a", ErrFilterShare}, // [MQTT-4.8.2-2] "+" in ShareName
		{"$share/#/a", ErrFilterShare},  // [MQTT-4.8.2-2] "#" in ShareName
		{"$share/g/a#", ErrFilterHash},  // the filter part follows the usual rules
		{"$share/g/a+", ErrFilterPlus},
		{"$shared/g/a", nil}, // not the share prefix: an ordinary filter
		{"$SHARE/g/a", nil},  // the prefix is case-sensitive
	}
	for _, tc := range tests {
		if err := CheckFilter(bs(tc.filter)); err != tc.want {
			t.Errorf("CheckFilter(%q) = %v, want %v", tc.filter, err, tc.want)
		}
		if got, want := IsShared(bs(tc.filter)), len(tc.filter) >= 7 && tc.filter[:7] == SharePrefix; got != want {
			t.Errorf("IsShared(%q) = %v", tc.filter, got)
		}
	}
	if err := CheckFilter(bytes.Repeat(bs("a"), 65535)); err != nil {
		t.Errorf("65535 bytes: %v", err)
	}
	if err := CheckFilter(bytes.Repeat(bs("a"), 65536)); err != ErrFilterTooLong {
		t.Errorf("65536 bytes [MQTT-4.7.3-3]: %v", err)
	}
	for _, e := range []*Error{ErrFilterEmpty, ErrFilterHash, ErrFilterPlus, ErrFilterShare, ErrFilterTooLong} {
		if e.Code != TopicFilterInvalid {
			t.Errorf("%v: code %v", e, e.Code)
		}
	}
	if ErrFilterUTF8.Code != MalformedPacket {
		t.Errorf("ErrFilterUTF8 code %v", ErrFilterUTF8.Code)
	}
	if !HasWildcard(bs("a/+")) || !HasWildcard(bs("#")) || HasWildcard(bs("a/b")) {
		t.Error("HasWildcard")
	}
}

// TestDecoderError: after an error the Decoder keeps returning it; there is
// no resynchronising an MQTT byte stream.
func TestDecoderError(t *testing.T) {
	var d Decoder
	d.Write(cat(raw(0xc0, 0x00), raw(0x00, 0x00), raw(0xd0, 0x00)))
	if h, _, ok, err := d.Next(); !ok || err != nil || h.Type != PINGREQ {
		t.Fatalf("first frame: %v %v %v", h, ok, err)
	}
	for i := 0; i < 2; i++ {
		if _, _, ok, err := d.Next(); ok || err != ErrReservedType {
			t.Fatalf("Next = %v, %v; want ErrReservedType", ok, err)
		}
	}
}

// TestReasonNames: every MQTT 5 failure code, 0x80 to 0xA2, has its name;
// an undefined code is "unknown".
func TestReasonNames(t *testing.T) {
	for rc := UnspecifiedError; rc <= WildcardSubsNotSupported; rc++ {
		if rc.Name() == "unknown" {
			t.Errorf("%v has no name", rc)
		}
	}
	if got := NotAuthorized.Name(); got != "not authorized" {
		t.Errorf("0x87 is %q", got)
	}
	if got := ReasonCode(0xA3).Name(); got != "unknown" {
		t.Errorf("0xa3 is %q, want unknown", got)
	}
}
