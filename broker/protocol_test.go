package broker_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/shoalmq/shoal/broker"
	"github.com/shoalmq/shoal/codec"
	"github.com/shoalmq/shoal/internal/testutil"
)

// Protocol-conformance tests for MQTT 3.1.1 (level 4) and 3.1 (level 3),
// driven with raw packets. Clause ids are those of MQTT 3.1.1 unless a test
// says "5.0"; where 3.1.1 has no id for a rule the section is named.
// Delivery, QoS and session tests are in protocol_qos_test.go, MQTT 5 in
// protocol_v5_test.go.

const (
	waitPkt  = testutil.Wait
	quietFor = 300 * time.Millisecond // how long "nothing arrives" is watched
)

// v3Versions are the 3.x protocol levels, for tests that hold for both.
var v3Versions = []struct {
	name string
	v    byte
}{{"3.1", codec.V31}, {"3.1.1", codec.V311}}

// dialAs connects client id at version and fails unless it is accepted.
func dialAs(t *testing.T, addr string, v byte, id string, clean bool) *testutil.Raw {
	t.Helper()
	r, _ := testutil.DialConnect(t, addr, v, codec.Connect{ClientID: []byte(id), CleanStart: clean})
	return r
}

// publishAcked sends a PUBLISH; for QoS 1 and 2 it waits for the PUBACK or
// PUBREC and, for QoS 2, completes the exchange, so that the message is
// the broker's when it returns.
func publishAcked(t *testing.T, r *testutil.Raw, topic, payload string, qos byte, id uint16, retain bool) {
	t.Helper()
	r.SendPublish(codec.Publish{Topic: []byte(topic), Payload: []byte(payload), QoS: qos, PacketID: id, Retain: retain})
	switch qos {
	case 1:
		r.ExpectAck(codec.PUBACK, id, waitPkt)
	case 2:
		r.ExpectAck(codec.PUBREC, id, waitPkt)
		r.SendAck(codec.PUBREL, id)
		r.ExpectAck(codec.PUBCOMP, id, waitPkt)
	}
}

// receiveAcked reads the next PUBLISH, acknowledges it as a client must (QoS 2
// through PUBCOMP) and fails unless it has topic and payload. For QoS 2 the
// PUBREL must come next: use receiveInOrder when more messages may be queued
// behind it.
func receiveAcked(t *testing.T, r *testutil.Raw, topic, payload string) (codec.Publish, byte) {
	t.Helper()
	p, flags := r.ExpectPublish(waitPkt)
	if string(p.Topic) != topic || string(p.Payload) != payload {
		t.Fatalf("got PUBLISH %q %q, want %q %q", p.Topic, p.Payload, topic, payload)
	}
	switch p.QoS {
	case 1:
		r.SendAck(codec.PUBACK, p.PacketID)
	case 2:
		r.SendAck(codec.PUBREC, p.PacketID)
		r.ExpectAck(codec.PUBREL, p.PacketID, waitPkt)
		r.SendAck(codec.PUBCOMP, p.PacketID)
	}
	return p, flags
}

// receiveInOrder reads PUBLISH packets with topic and the given payloads, in
// that order, acknowledging each as it comes. QoS 2 ones get PUBREC at
// once; the broker's PUBRELs may then arrive between later PUBLISHes and are
// answered with PUBCOMP when they do. It returns once every exchange is
// complete.
func receiveInOrder(t *testing.T, r *testutil.Raw, topic string, payloads ...string) []codec.Publish {
	t.Helper()
	var got []codec.Publish
	awaitRel := map[uint16]bool{}
	for len(got) < len(payloads) || len(awaitRel) > 0 {
		f, err := r.Read(waitPkt)
		if err != nil {
			t.Fatalf("after %d of %d messages (%d PUBRELs due): %v", len(got), len(payloads), len(awaitRel), err)
		}
		switch f.Header.Type {
		case codec.PUBREL:
			var a codec.Ack
			if err := a.Decode(codec.PUBREL, f.Body, r.Version); err != nil || !awaitRel[a.PacketID] {
				t.Fatalf("unexpected PUBREL % x (%v)", f.Body, err)
			}
			delete(awaitRel, a.PacketID)
			r.SendAck(codec.PUBCOMP, a.PacketID)
		case codec.PUBLISH:
			p := r.Publish(f)
			i := len(got)
			if i >= len(payloads) || string(p.Topic) != topic || string(p.Payload) != payloads[i] {
				t.Fatalf("message %d: got %q %q, want %q %q", i, p.Topic, p.Payload, topic, payloads[min(i, len(payloads)-1)])
			}
			switch p.QoS {
			case 1:
				r.SendAck(codec.PUBACK, p.PacketID)
			case 2:
				awaitRel[p.PacketID] = true
				r.SendAck(codec.PUBREC, p.PacketID)
			}
			got = append(got, p)
		default:
			t.Fatalf("got %v, want PUBLISH or PUBREL", f.Header.Type)
		}
	}
	return got
}

// appendMQTTString appends a length-prefixed string.
func appendMQTTString(b []byte, s string) []byte {
	return append(append(b, byte(len(s)>>8), byte(len(s))), s...)
}

// connectBytes builds a CONNECT by hand, for flag combinations and protocol
// names codec.Connect.Append cannot express. Keep-alive is 0.
func connectBytes(name string, level, flags byte, fields ...string) []byte {
	body := appendMQTTString(nil, name)
	body = append(body, level, flags, 0, 0)
	for _, f := range fields {
		body = appendMQTTString(body, f)
	}
	return append(codec.AppendHeader(nil, codec.CONNECT, 0, len(body)), body...)
}

// expectClosedSilently fails unless the broker closes the connection without
// sending anything: a 3.x broker has no packet to explain an error after
// CONNACK [MQTT-4.8.0-1], and none before it for a malformed CONNECT
// [MQTT-3.1.4-1].
func expectClosedSilently(t *testing.T, r *testutil.Raw) {
	t.Helper()
	if got := r.ExpectClosed(waitPkt); len(got) != 0 {
		t.Fatalf("broker sent %v (body % x) before closing, want a silent close", got[0].Header.Type, got[0].Body)
	}
}

// TestProtocolFirstPacketNotConnect: the first packet must be CONNECT;
// anything else closes the connection [MQTT-3.1.0-1].
func TestProtocolFirstPacketNotConnect(t *testing.T) {
	t.Parallel()
	_, addr := testutil.StartBroker(t, nil)
	pub := codec.Publish{Topic: []byte("a"), Payload: []byte("x")}
	sub := codec.Subscribe{PacketID: 1, Filters: []codec.Subscription{{Filter: []byte("a")}}}
	for name, pkt := range map[string][]byte{
		"PINGREQ":    codec.AppendPing(nil, codec.PINGREQ),
		"PUBLISH":    pub.Append(nil, codec.V311),
		"SUBSCRIBE":  sub.Append(nil, codec.V311),
		"DISCONNECT": {0xe0, 0x00},
	} {
		t.Run(name, func(t *testing.T) {
			r := testutil.Dial(t, addr, codec.V311)
			r.Send(pkt)
			expectClosedSilently(t, r)
		})
	}
}

// TestProtocolSecondConnect: a second CONNECT is a protocol violation that
// closes the connection [MQTT-3.1.0-2].
func TestProtocolSecondConnect(t *testing.T) {
	t.Parallel()
	_, addr := testutil.StartBroker(t, nil)
	for _, ver := range v3Versions {
		t.Run(ver.name, func(t *testing.T) {
			r := dialAs(t, addr, ver.v, "twice", true)
			c := codec.Connect{Version: ver.v, ClientID: []byte("twice"), CleanStart: true}
			r.Send(c.Append(nil))
			expectClosedSilently(t, r)
		})
	}
}

// TestProtocolUnsupportedLevel: a protocol level the broker does not speak
// is answered with CONNACK return code 0x01 (unacceptable protocol version)
// and the connection closes [MQTT-3.1.2-2].
func TestProtocolUnsupportedLevel(t *testing.T) {
	t.Parallel()
	_, addr := testutil.StartBroker(t, nil)
	for _, tc := range []struct {
		name  string
		level byte
	}{
		{"MQTT", 6}, {"MQTT", 3}, {"MQTT", 0}, {"MQIsdp", 4},
	} {
		t.Run(fmt.Sprintf("%s-%d", tc.name, tc.level), func(t *testing.T) {
			r := testutil.Dial(t, addr, codec.V311)
			r.Send(connectBytes(tc.name, tc.level, 0x02, "lvl"))
			got := r.ExpectClosed(waitPkt)
			if len(got) != 1 || got[0].Header.Type != codec.CONNACK {
				t.Fatalf("got %d packets before close, want exactly one CONNACK", len(got))
			}
			// A 3.1.1 CONNACK: flags 0 (session present 0 [MQTT-3.2.2-4]), return code 0x01.
			if want := []byte{0x00, codec.V3BadProtocolVersion}; !bytes.Equal(got[0].Body, want) {
				t.Fatalf("CONNACK body % x, want % x", got[0].Body, want)
			}
		})
	}
}

// TestProtocolUnknownProtocolName: an unknown protocol name may close the
// connection [MQTT-3.1.2-1]; the broker must not accept it.
func TestProtocolUnknownProtocolName(t *testing.T) {
	t.Parallel()
	_, addr := testutil.StartBroker(t, nil)
	for _, name := range []string{"MQTX", "mqtt", "", "HTTP/1.1"} {
		t.Run(fmt.Sprintf("%q", name), func(t *testing.T) {
			r := testutil.Dial(t, addr, codec.V311)
			r.Send(connectBytes(name, 4, 0x02, "name"))
			for _, f := range r.ExpectClosed(waitPkt) {
				if f.Header.Type == codec.CONNACK && len(f.Body) == 2 && f.Body[1] == codec.V3Accepted {
					t.Fatalf("CONNECT with protocol name %q was accepted", name)
				}
			}
		})
	}
}

// TestProtocolConnectFlags: a CONNECT that breaks the flag rules is closed
// without a CONNACK [MQTT-3.1.4-1].
func TestProtocolConnectFlags(t *testing.T) {
	t.Parallel()
	_, addr := testutil.StartBroker(t, nil)
	for _, tc := range []struct {
		name string
		pkt  []byte
	}{
		// The reserved flag must be 0 [MQTT-3.1.2-3].
		{"reserved", connectBytes("MQTT", 4, 0x03, "c")},
		// Will QoS 3 [MQTT-3.1.2-14].
		{"will-qos-3", connectBytes("MQTT", 4, 0x02|0x04|0x18, "c", "will/t", "bye")},
		// Will QoS without the will flag [MQTT-3.1.2-13].
		{"will-qos-no-will", connectBytes("MQTT", 4, 0x02|0x08, "c")},
		// Will retain without the will flag [MQTT-3.1.2-15].
		{"will-retain-no-will", connectBytes("MQTT", 4, 0x02|0x20, "c")},
		// Password flag without the user name flag [MQTT-3.1.2-22].
		{"password-no-user", connectBytes("MQTT", 4, 0x02|0x40, "c", "secret")},
		// The same on MQTT 3.1.
		{"password-no-user-3.1", connectBytes("MQIsdp", 3, 0x02|0x40, "c", "secret")},
		// A will topic is a topic name: no wildcards [MQTT-3.1.3-10], [MQTT-3.3.2-2].
		{"will-topic-wildcard", connectBytes("MQTT", 4, 0x02|0x04, "c", "will/#", "bye")},
		// A truncated payload: the user name flag is set but no user name follows [MQTT-3.1.2-19].
		{"user-missing", connectBytes("MQTT", 4, 0x02|0x80, "c")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := testutil.Dial(t, addr, codec.V311)
			r.Send(tc.pkt)
			expectClosedSilently(t, r) // [MQTT-3.1.4-1]
		})
	}
}

// TestProtocolEmptyClientID: a zero-byte client id needs clean session 1;
// with clean session 0 the broker answers 0x02 and closes [MQTT-3.1.3-8].
// With clean session 1 it assigns one [MQTT-3.1.3-6]. MQTT 3.1 requires 1 to
// 23 characters, so there it is always 0x02.
func TestProtocolEmptyClientID(t *testing.T) {
	t.Parallel()
	_, addr := testutil.StartBroker(t, nil)
	for _, tc := range []struct {
		name  string
		v     byte
		clean bool
		want  byte
	}{
		{"3.1.1-clean0", codec.V311, false, codec.V3IdentifierRejected},
		{"3.1.1-clean1", codec.V311, true, codec.V3Accepted},
		{"3.1-clean1", codec.V31, true, codec.V3IdentifierRejected},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := testutil.Dial(t, addr, tc.v)
			ack := r.Connect(codec.Connect{CleanStart: tc.clean})
			if byte(ack.Code) != tc.want || ack.SessionPresent {
				t.Fatalf("CONNACK code %#x present %v, want %#x present false", byte(ack.Code), ack.SessionPresent, tc.want)
			}
			if tc.want != codec.V3Accepted {
				expectClosedSilently(t, r)
				return
			}
			// Accepted: the connection works.
			if codes := r.Subscribe(1, "empty/id", 1); len(codes) != 1 || codes[0] != 1 {
				t.Fatalf("SUBACK %v", codes)
			}
		})
	}
}

// TestProtocolSessionPresent: clean session 1 → session present 0
// [MQTT-3.2.2-1]; clean session 0 without a session → 0 [MQTT-3.2.2-3];
// clean session 0 with a stored session → 1 [MQTT-3.2.2-2].
func TestProtocolSessionPresent(t *testing.T) {
	t.Parallel()
	_, addr := testutil.StartBroker(t, nil)
	for _, ver := range v3Versions {
		t.Run(ver.name, func(t *testing.T) {
			id := "sp-" + ver.name
			steps := []struct {
				clean   bool
				present bool
			}{
				{true, false},  // [MQTT-3.2.2-1]
				{false, false}, // new session [MQTT-3.2.2-3]
				{false, true},  // resumed [MQTT-3.2.2-2]
				{false, true},  // still there
				{true, false},  // discarded [MQTT-3.1.2-6]
				{false, false}, // the clean start left nothing behind
			}
			for i, s := range steps {
				r := testutil.Dial(t, addr, ver.v)
				ack := r.Connect(codec.Connect{ClientID: []byte(id), CleanStart: s.clean})
				if ack.Code != codec.Success || ack.SessionPresent != s.present {
					t.Fatalf("step %d (clean %v): code %v present %v, want present %v", i, s.clean, ack.Code, ack.SessionPresent, s.present)
				}
				r.SendDisconnect(0)
				r.ExpectClosed(waitPkt)
			}
		})
	}
}

// TestProtocolTakeover: a second connection with the same client id closes
// the first [MQTT-3.1.4-2] (5.0: [MQTT-3.1.4-3]), and the new one works.
func TestProtocolTakeover(t *testing.T) {
	t.Parallel()
	_, addr := testutil.StartBroker(t, nil)
	for _, ver := range v3Versions {
		t.Run(ver.name, func(t *testing.T) {
			id := "take-" + ver.name
			first := dialAs(t, addr, ver.v, id, false)
			first.Subscribe(1, "take/"+ver.name, 1)
			second := testutil.Dial(t, addr, ver.v)
			ack := second.Connect(codec.Connect{ClientID: []byte(id)})
			if ack.Code != codec.Success || !ack.SessionPresent {
				t.Fatalf("takeover CONNACK code %v present %v, want success, present", ack.Code, ack.SessionPresent)
			}
			expectClosedSilently(t, first)
			// The session, its subscription included, now belongs to the second.
			p := dialAs(t, addr, ver.v, "take-pub-"+ver.name, true)
			publishAcked(t, p, "take/"+ver.name, "hi", 1, 1, false)
			receiveAcked(t, second, "take/"+ver.name, "hi")
		})
	}
}

// TestProtocolKeepAlive: a client silent for one and a half keep-alive
// periods is disconnected [MQTT-3.1.2-24]; one that sends PINGREQ gets
// PINGRESP [MQTT-3.12.4-1] and stays connected.
func TestProtocolKeepAlive(t *testing.T) {
	t.Parallel()
	_, addr := testutil.StartBroker(t, nil)
	t.Run("silent", func(t *testing.T) {
		t.Parallel()
		// Keep-alive 2 s: the limit is 3 s, and the broker checks once per
		// 1 s tick, so the close comes between 3 and 4 s; 4.9 s leaves
		// slack for a loaded machine while still catching a broker that
		// waits twice the keep-alive.
		r := testutil.Dial(t, addr, codec.V311)
		r.Connect(codec.Connect{ClientID: []byte("ka-silent"), CleanStart: true, KeepAlive: 2})
		start := time.Now()
		if !r.Closed(4900 * time.Millisecond) {
			t.Fatal("silent client with keep-alive 2 s still connected after 4.9 s")
		}
		// Closing within one keep-alive period would drop a well-behaved client.
		if el := time.Since(start); el < 2*time.Second {
			t.Fatalf("closed after %v, within one keep-alive period", el)
		}
	})
	t.Run("pinging", func(t *testing.T) {
		t.Parallel()
		r := testutil.Dial(t, addr, codec.V311)
		r.Connect(codec.Connect{ClientID: []byte("ka-ping"), CleanStart: true, KeepAlive: 1})
		for range 6 { // 3 s: twice the 1.5 s limit
			time.Sleep(500 * time.Millisecond)
			r.Send(codec.AppendPing(nil, codec.PINGREQ))
			if f := r.Expect(codec.PINGRESP, waitPkt); len(f.Body) != 0 {
				t.Fatalf("PINGRESP with a body: % x", f.Body)
			}
		}
	})
}

// TestProtocolConnectTimeout: a connection that never sends CONNECT is
// closed after ConnectTimeout (a broker rule; 3.1.1 section 3.1.4 suggests
// closing connections that do not send CONNECT "within a reasonable amount
// of time").
func TestProtocolConnectTimeout(t *testing.T) {
	t.Parallel()
	_, addr := testutil.StartBroker(t, func(c *broker.Config) { c.ConnectTimeout = 500 * time.Millisecond })
	r := testutil.Dial(t, addr, codec.V311)
	start := time.Now()
	if !r.Closed(3 * time.Second) {
		t.Fatal("connection without CONNECT still open after 3 s")
	}
	if el := time.Since(start); el < 400*time.Millisecond {
		t.Fatalf("closed after %v, before the 500 ms connect timeout", el)
	}
}

// TestProtocolPublishInvalid: PUBLISH packets the broker must refuse by
// closing the connection, without acknowledging them.
func TestProtocolPublishInvalid(t *testing.T) {
	t.Parallel()
	_, addr := testutil.StartBroker(t, nil)
	for _, tc := range []struct {
		name string
		p    codec.Publish
	}{
		{"qos3", codec.Publish{Topic: []byte("a"), QoS: 3, PacketID: 1}},            // [MQTT-3.3.1-4]
		{"wildcard-plus", codec.Publish{Topic: []byte("a/+"), QoS: 1, PacketID: 1}}, // [MQTT-3.3.2-2]
		{"wildcard-hash", codec.Publish{Topic: []byte("a/#"), QoS: 0}},              // [MQTT-3.3.2-2]
		{"id0-qos1", codec.Publish{Topic: []byte("a"), QoS: 1, PacketID: 0}},        // [MQTT-2.3.1-1]
		{"id0-qos2", codec.Publish{Topic: []byte("a"), QoS: 2, PacketID: 0}},        // [MQTT-2.3.1-1]
		{"dup-qos0", codec.Publish{Topic: []byte("a"), Dup: true}},                  // [MQTT-3.3.1-2]
		{"empty-topic", codec.Publish{Topic: nil, QoS: 1, PacketID: 1}},             // [MQTT-4.7.3-1]
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, ver := range v3Versions {
				r := dialAs(t, addr, ver.v, "bad-pub", true)
				r.SendPublish(tc.p)
				expectClosedSilently(t, r)
			}
		})
	}
}

// TestProtocolSubscribeInvalid: malformed SUBSCRIBE packets close the
// connection.
func TestProtocolSubscribeInvalid(t *testing.T) {
	t.Parallel()
	_, addr := testutil.StartBroker(t, nil)
	good := codec.Subscribe{PacketID: 1, Filters: []codec.Subscription{{Filter: []byte("a/b"), QoS: 1}}}
	badFlags := good.Append(nil, codec.V311)
	badFlags[0] = 0x80 // bits 3..0 must be 0010 [MQTT-3.8.1-1]
	noFilters := codec.Subscribe{PacketID: 1}
	optBits := good.Append(nil, codec.V311)
	optBits[len(optBits)-1] |= 0x04 // reserved option bits [MQTT-3-8.3-4]
	qos3 := good.Append(nil, codec.V311)
	qos3[len(qos3)-1] = 3 // requested QoS 3 [MQTT-3-8.3-4]
	id0 := codec.Subscribe{PacketID: 0, Filters: good.Filters}
	unsubFlags := (&codec.Unsubscribe{PacketID: 1, Filters: [][]byte{[]byte("a")}}).Append(nil, codec.V311)
	unsubFlags[0] = 0xa0 // [MQTT-3.10.1-1]
	for _, tc := range []struct {
		name string
		pkt  []byte
	}{
		{"flags-0x80", badFlags},                          // [MQTT-3.8.1-1]
		{"no-filters", noFilters.Append(nil, codec.V311)}, // [MQTT-3.8.3-3]
		{"option-bits", optBits},                          // [MQTT-3-8.3-4]
		{"qos3", qos3},                                    // [MQTT-3-8.3-4]
		{"packet-id-0", id0.Append(nil, codec.V311)},      // [MQTT-2.3.1-1]
		{"unsubscribe-flags", unsubFlags},                 // [MQTT-3.10.1-1]
		{"unsubscribe-no-filters", (&codec.Unsubscribe{PacketID: 1}).Append(nil, codec.V311)}, // [MQTT-3.10.3-2]
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := dialAs(t, addr, codec.V311, "bad-sub", true)
			r.Send(tc.pkt)
			expectClosedSilently(t, r)
		})
	}
}

// TestProtocolInvalidUTF8: ill-formed UTF-8 [MQTT-1.5.3-1] or U+0000
// [MQTT-1.5.3-2] in any string closes the connection (5.0:
// [MQTT-1.5.4-1], [MQTT-1.5.4-2]).
func TestProtocolInvalidUTF8(t *testing.T) {
	t.Parallel()
	_, addr := testutil.StartBroker(t, nil)
	bad := map[string]string{
		"overlong-nul": "a/\xc0\x80",       // overlong encoding of U+0000
		"nul":          "a/\x00",           // U+0000 [MQTT-1.5.3-2]
		"surrogate":    "a/\xed\xa0\x80",   // U+D800 [MQTT-1.5.3-1]
		"truncated":    "a/\xe2\x82",       // cut multi-byte sequence
		"invalid-byte": "a/\xff",           // never valid in UTF-8
		"overlong-a":   "\xc1\x81/b",       // overlong 'A'
		"beyond-max":   "\xf4\x90\x80\x80", // above U+10FFFF
	}
	for name, s := range bad {
		t.Run("publish-topic-"+name, func(t *testing.T) {
			r := dialAs(t, addr, codec.V311, "utf8-pub", true)
			r.SendPublish(codec.Publish{Topic: []byte(s), QoS: 1, PacketID: 1, Payload: []byte("x")})
			expectClosedSilently(t, r)
		})
		t.Run("subscribe-filter-"+name, func(t *testing.T) {
			r := dialAs(t, addr, codec.V311, "utf8-sub", true)
			sub := codec.Subscribe{PacketID: 1, Filters: []codec.Subscription{{Filter: []byte(s)}}}
			r.Send(sub.Append(nil, codec.V311))
			expectClosedSilently(t, r)
		})
		t.Run("client-id-"+name, func(t *testing.T) {
			r := testutil.Dial(t, addr, codec.V311)
			r.Send(connectBytes("MQTT", 4, 0x02, s))
			expectClosedSilently(t, r)
		})
	}
	// The payload is not a string: any bytes pass through [MQTT-3.3.2 payload].
	t.Run("payload-is-binary", func(t *testing.T) {
		sub := dialAs(t, addr, codec.V311, "utf8-bin-sub", true)
		sub.Subscribe(1, "bin", 0)
		p := dialAs(t, addr, codec.V311, "utf8-bin-pub", true)
		publishAcked(t, p, "bin", "\xc0\x80\x00\xff", 0, 0, false)
		receiveAcked(t, sub, "bin", "\xc0\x80\x00\xff")
	})
}

// TestProtocolOversizePacket: a packet larger than MaxPacketSize closes the
// connection as soon as its fixed header is read, without waiting for (or
// buffering) its body — a broker rule (3.1.1 has no maximum short of the
// protocol's; 5.0 section 3.1.2.11.4 answers 0x95). Other clients are
// unaffected.
func TestProtocolOversizePacket(t *testing.T) {
	t.Parallel()
	_, addr := testutil.StartBroker(t, func(c *broker.Config) { c.MaxPacketSize = 1024 })
	r := dialAs(t, addr, codec.V311, "big", true)
	// PUBLISH QoS 0 announcing 1 MiB (varint 0x80 0x80 0x40), then the
	// start of a body; the rest never comes.
	r.Send(append([]byte{0x30, 0x80, 0x80, 0x40}, appendMQTTString(nil, "big/t")...))
	start := time.Now()
	expectClosedSilently(t, r)
	if el := time.Since(start); el > 2*time.Second {
		t.Fatalf("closed after %v: the broker waited for the body", el)
	}
	// Just under the limit is accepted.
	sub := dialAs(t, addr, codec.V311, "big-sub", true)
	sub.Subscribe(1, "big/t", 0)
	p := dialAs(t, addr, codec.V311, "big-ok", true)
	payload := string(bytes.Repeat([]byte{'x'}, 1024-2-2-5-1)) // header 3 bytes: 1024 total
	r2 := codec.Publish{Topic: []byte("big/t"), Payload: []byte(payload)}
	if n := len(r2.Append(nil, codec.V311)); n != 1024 {
		t.Fatalf("test packet is %d bytes, want 1024", n)
	}
	publishAcked(t, p, "big/t", payload, 0, 0, false)
	receiveAcked(t, sub, "big/t", payload)
}

// TestProtocolVarintTooLong: the Remaining Length takes at most four bytes
// (3.1.1 section 2.2.3; 5.0 section 1.5.5); a fifth continuation byte is a
// malformed packet that closes the connection.
func TestProtocolVarintTooLong(t *testing.T) {
	t.Parallel()
	_, addr := testutil.StartBroker(t, nil)
	t.Run("after-connect", func(t *testing.T) {
		r := dialAs(t, addr, codec.V311, "varint", true)
		r.Send([]byte{0x30, 0xff, 0xff, 0xff, 0xff, 0x01, 0x00})
		expectClosedSilently(t, r)
	})
	t.Run("first-packet", func(t *testing.T) {
		r := testutil.Dial(t, addr, codec.V311)
		r.Send([]byte{0x10, 0x80, 0x80, 0x80, 0x80, 0x01})
		expectClosedSilently(t, r)
	})
}

// TestProtocolSuback: one return code per filter in order [MQTT-3.9.3-1];
// an invalid filter gets 0x80 [MQTT-3.9.3-2] while the valid ones in the
// same SUBSCRIBE are granted [MQTT-3.8.4-4]; the broker grants the QoS
// asked for [MQTT-3.8.4-5].
func TestProtocolSuback(t *testing.T) {
	t.Parallel()
	_, addr := testutil.StartBroker(t, nil)
	for _, ver := range v3Versions {
		t.Run(ver.name, func(t *testing.T) {
			r := dialAs(t, addr, ver.v, "suback", true)
			s := codec.Subscribe{PacketID: 0x1234}
			want := []codec.ReasonCode{}
			for _, f := range []struct {
				filter string
				qos    byte
				code   byte
			}{
				{"a/#/b", 1, codec.V3SubackFailure}, // '#' not last [MQTT-4.7.1-2]
				{"ok/0", 0, 0},
				{"a+/b", 2, codec.V3SubackFailure}, // '+' not alone [MQTT-4.7.1-3]
				{"ok/+/1", 1, 1},
				{"#x", 0, codec.V3SubackFailure},
				{"ok/#", 2, 2},
				{"+", 1, 1},
			} {
				s.Filters = append(s.Filters, codec.Subscription{Filter: []byte(f.filter), QoS: f.qos})
				want = append(want, codec.ReasonCode(f.code))
			}
			ack := r.SubscribeWith(s)
			if fmt.Sprint(ack.Codes) != fmt.Sprint(want) {
				t.Fatalf("SUBACK codes %v, want %v", ack.Codes, want)
			}
			// The valid filters are live.
			p := dialAs(t, addr, ver.v, "suback-pub", true)
			publishAcked(t, p, "ok/x/1", "m", 1, 1, false)
			if got, _ := receiveAcked(t, r, "ok/x/1", "m"); got.QoS != 1 {
				t.Fatalf("delivered at QoS %d, want 1", got.QoS)
			}
		})
	}
}

// TestProtocolUnsubscribe: UNSUBACK carries the UNSUBSCRIBE's packet id
// [MQTT-3.10.4-4], even for a filter that was not subscribed
// [MQTT-3.10.4-5], and the broker stops delivering for the removed filter
// [MQTT-3.10.4-2].
func TestProtocolUnsubscribe(t *testing.T) {
	t.Parallel()
	_, addr := testutil.StartBroker(t, nil)
	for _, ver := range v3Versions {
		t.Run(ver.name, func(t *testing.T) {
			sub := dialAs(t, addr, ver.v, "unsub", true)
			sub.Subscribe(1, "u/1", 1)
			sub.Subscribe(2, "u/2", 1)
			if ack := sub.Unsubscribe(0x4242, "u/1"); ack.PacketID != 0x4242 {
				t.Fatalf("UNSUBACK id %#x, want 0x4242", ack.PacketID)
			}
			if ack := sub.Unsubscribe(7, "never/subscribed"); ack.PacketID != 7 {
				t.Fatalf("UNSUBACK id %d, want 7", ack.PacketID)
			}
			p := dialAs(t, addr, ver.v, "unsub-pub", true)
			publishAcked(t, p, "u/1", "gone", 1, 1, false)
			publishAcked(t, p, "u/2", "kept", 1, 2, false)
			// Same publisher, so u/1 would have come first [MQTT-4.6.0-6].
			receiveAcked(t, sub, "u/2", "kept")
			sub.ExpectSilence(quietFor)
		})
	}
}

// TestProtocolMalformedInputs sends 200 random byte strings (seeded, so a
// failure reproduces), each on a fresh connection, half of them after a
// valid CONNECT. Every connection must be closed by the broker — by a
// decode error, the connect timeout or the keep-alive — the process must
// survive (a panic on a loop goroutine would end the test binary), and a
// well-behaved client must still work afterwards.
func TestProtocolMalformedInputs(t *testing.T) {
	t.Parallel()
	_, addr := testutil.StartBroker(t, func(c *broker.Config) {
		c.ConnectTimeout = 500 * time.Millisecond
		c.MaxPacketSize = 4096
	})
	rng := rand.New(rand.NewPCG(0x5104, 1))
	inputs := make([][]byte, 200)
	for i := range inputs {
		junk := make([]byte, 1+rng.IntN(96))
		for j := range junk {
			junk[j] = byte(rng.Uint32())
		}
		if i%4 == 1 {
			// Make some junk look like a packet: a valid type nibble and a small length.
			junk[0] = byte(1+rng.IntN(15))<<4 | byte(rng.IntN(16))
			if len(junk) > 1 {
				junk[1] = byte(rng.IntN(len(junk)))
			}
		}
		if i%2 == 1 {
			c := codec.Connect{Version: codec.V311, ClientID: fmt.Appendf(nil, "fuzz-%d", i), CleanStart: true, KeepAlive: 1}
			junk = append(c.Append(nil), junk...)
		}
		inputs[i] = junk
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(inputs))
	for i, in := range inputs {
		wg.Go(func() {
			c, err := net.DialTimeout("tcp", addr, waitPkt)
			if err != nil {
				errs <- fmt.Errorf("input %d: dial: %v", i, err)
				return
			}
			defer c.Close()
			_, _ = c.Write(in) // the broker may close before reading it all
			// Keep-alive 1 s closes within 2.5 s, the connect timeout within 1.5 s.
			_ = c.SetReadDeadline(time.Now().Add(6 * time.Second))
			buf := make([]byte, 4096)
			for {
				if _, err := c.Read(buf); err != nil {
					if ne, ok := err.(net.Error); ok && ne.Timeout() {
						errs <- fmt.Errorf("input %d (% x): connection still open after 6 s", i, in)
					}
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// The broker still serves.
	sub := dialAs(t, addr, codec.V311, "after-fuzz-sub", true)
	sub.Subscribe(1, "still/alive", 1)
	p := dialAs(t, addr, codec.V311, "after-fuzz-pub", true)
	publishAcked(t, p, "still/alive", "yes", 1, 9, false)
	receiveAcked(t, sub, "still/alive", "yes")
}
