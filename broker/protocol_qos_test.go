package broker_test

import (
	"fmt"
	"testing"

	"github.com/shoalmq/shoal/codec"
	"github.com/shoalmq/shoal/internal/testutil"
)

// Delivery conformance for MQTT 3.1.1 and 3.1: QoS flows, redelivery,
// offline queues, ordering, retained messages, '$' topics, wills and
// overlapping subscriptions. Helpers are in protocol_test.go.
//
// To show that a message was NOT delivered without sleeping, most tests
// send a sentinel afterwards from the same publisher: messages from one
// client reach a subscriber in order [MQTT-4.6.0-6], so the sentinel
// arriving first proves the other one is not coming.

const dupFlag = 0x08 // DUP bit of a PUBLISH fixed header [MQTT-3.3.1-1]

// TestProtocolQoS1Flow: a QoS 1 PUBLISH is answered with a PUBACK carrying
// its packet id [MQTT-4.3.2-2]; each subscriber gets it at the lower of
// the published and the granted QoS [MQTT-3.8.4-6] (5.0: [MQTT-3.8.4-8]).
func TestProtocolQoS1Flow(t *testing.T) {
	t.Parallel()
	_, addr := testutil.StartBroker(t, nil)
	for _, ver := range v3Versions {
		t.Run(ver.name, func(t *testing.T) {
			subs := make([]*testutil.Raw, 3)
			for q := range subs {
				subs[q] = dialAs(t, addr, ver.v, fmt.Sprintf("q1-sub%d", q), true)
				if codes := subs[q].Subscribe(1, "q1/t", byte(q)); codes[0] != codec.ReasonCode(q) {
					t.Fatalf("granted %v, want %d", codes[0], q)
				}
			}
			p := dialAs(t, addr, ver.v, "q1-pub", true)
			for pubQoS := byte(0); pubQoS <= 2; pubQoS++ {
				payload := fmt.Sprint("at-", pubQoS)
				publishAcked(t, p, "q1/t", payload, pubQoS, 0x0101, false) // PUBACK/PUBREC with id 0x0101
				for subQoS, s := range subs {
					got, flags := receiveAcked(t, s, "q1/t", payload)
					if want := min(pubQoS, byte(subQoS)); got.QoS != want {
						t.Fatalf("pub QoS %d to sub QoS %d delivered at %d, want %d", pubQoS, subQoS, got.QoS, want)
					}
					if flags&dupFlag != 0 || (got.QoS > 0 && got.PacketID == 0) {
						t.Fatalf("first delivery flags %#x id %d: want DUP 0 and a non-zero id [MQTT-2.3.1-1]", flags, got.PacketID)
					}
				}
			}
		})
	}
}

// TestProtocolQoS2Inbound: PUBLISH QoS 2 → PUBREC; the same PUBLISH resent
// with DUP before PUBREL → PUBREC again but no second delivery; PUBREL →
// PUBCOMP; after PUBCOMP the id starts a new message (3.1.1 section 4.3.3
// receiver rules; 5.0: [MQTT-4.3.3-10], [MQTT-4.3.3-11], [MQTT-4.3.3-12]).
func TestProtocolQoS2Inbound(t *testing.T) {
	t.Parallel()
	_, addr := testutil.StartBroker(t, nil)
	sub := dialAs(t, addr, codec.V311, "q2in-sub", true)
	sub.Subscribe(1, "q2in", 2)
	p := dialAs(t, addr, codec.V311, "q2in-pub", true)

	msg := codec.Publish{Topic: []byte("q2in"), Payload: []byte("once"), QoS: 2, PacketID: 5}
	p.SendPublish(msg)
	p.ExpectAck(codec.PUBREC, 5, waitPkt)
	msg.Dup = true
	p.SendPublish(msg)
	p.ExpectAck(codec.PUBREC, 5, waitPkt)
	p.SendPublish(msg)
	p.ExpectAck(codec.PUBREC, 5, waitPkt)
	p.SendAck(codec.PUBREL, 5)
	p.ExpectAck(codec.PUBCOMP, 5, waitPkt) // [MQTT-4.3.3-2]

	receiveAcked(t, sub, "q2in", "once")
	publishAcked(t, p, "q2in", "sentinel", 0, 0, false)
	receiveAcked(t, sub, "q2in", "sentinel") // not a second "once"

	// After PUBCOMP, id 5 is free: a PUBLISH with it is a new message.
	publishAcked(t, p, "q2in", "again", 2, 5, false)
	receiveAcked(t, sub, "q2in", "again")
	sub.ExpectSilence(quietFor)
}

// TestProtocolQoS2Outbound: the broker's QoS 2 delivery: PUBLISH, the
// client's PUBREC is answered with PUBREL (fixed-header flags 0010
// [MQTT-3.6.1-1]) with the same id [MQTT-4.3.3-1], and after PUBCOMP
// nothing is resent.
func TestProtocolQoS2Outbound(t *testing.T) {
	t.Parallel()
	_, addr := testutil.StartBroker(t, nil)
	sub := dialAs(t, addr, codec.V311, "q2out-sub", true)
	sub.Subscribe(1, "q2out", 2)
	p := dialAs(t, addr, codec.V311, "q2out-pub", true)
	publishAcked(t, p, "q2out", "m", 2, 1, false)

	got, flags := sub.ExpectPublish(waitPkt)
	if got.QoS != 2 || got.PacketID == 0 || flags&dupFlag != 0 {
		t.Fatalf("PUBLISH QoS %d id %d flags %#x, want QoS 2, an id, DUP 0", got.QoS, got.PacketID, flags)
	}
	sub.SendAck(codec.PUBREC, got.PacketID)
	f := sub.Expect(codec.PUBREL, waitPkt)
	if f.Header.Flags != 0x02 {
		t.Fatalf("PUBREL flags %#x, want 0x02 [MQTT-3.6.1-1]", f.Header.Flags)
	}
	var rel codec.Ack
	if err := rel.Decode(codec.PUBREL, f.Body, codec.V311); err != nil || rel.PacketID != got.PacketID {
		t.Fatalf("PUBREL id %d (%v), want %d", rel.PacketID, err, got.PacketID)
	}
	sub.SendAck(codec.PUBCOMP, got.PacketID)
	publishAcked(t, p, "q2out", "sentinel", 0, 0, false)
	receiveAcked(t, sub, "q2out", "sentinel")
	sub.ExpectSilence(quietFor)
}

// TestProtocolRedeliveryQoS1: a persistent subscriber that received a QoS 1
// message and dropped the connection without PUBACK gets it again on
// reconnect, with DUP 1 [MQTT-3.3.1-1] and the same packet id
// [MQTT-4.4.0-1]; once acknowledged it is not sent again.
func TestProtocolRedeliveryQoS1(t *testing.T) {
	t.Parallel()
	_, addr := testutil.StartBroker(t, nil)
	for _, ver := range v3Versions {
		t.Run(ver.name, func(t *testing.T) {
			id := "rd1-" + ver.name
			sub := dialAs(t, addr, ver.v, id, false)
			sub.Subscribe(1, "rd1/"+ver.name, 1)
			p := dialAs(t, addr, ver.v, "rd1-pub-"+ver.name, true)
			publishAcked(t, p, "rd1/"+ver.name, "hello", 1, 1, false)
			first, flags := sub.ExpectPublish(waitPkt)
			if first.QoS != 1 || flags&dupFlag != 0 {
				t.Fatalf("first delivery QoS %d flags %#x", first.QoS, flags)
			}
			sub.Drop() // no PUBACK

			again := testutil.Dial(t, addr, ver.v)
			if ack := again.Connect(codec.Connect{ClientID: []byte(id)}); !ack.SessionPresent {
				t.Fatal("session present 0 on reconnect [MQTT-3.2.2-2]")
			}
			got, flags := again.ExpectPublish(waitPkt)
			if string(got.Payload) != "hello" || got.PacketID != first.PacketID || flags&dupFlag == 0 || got.QoS != 1 {
				t.Fatalf("redelivery %q id %d flags %#x QoS %d, want %q id %d with DUP at QoS 1",
					got.Payload, got.PacketID, flags, got.QoS, "hello", first.PacketID)
			}
			again.SendAck(codec.PUBACK, got.PacketID)
			again.SendDisconnect(0)
			again.ExpectClosed(waitPkt)

			third := dialAs(t, addr, ver.v, id, false)
			third.ExpectSilence(quietFor) // acknowledged: not resent
		})
	}
}

// TestProtocolRedeliveryQoS2Pubrel: a persistent subscriber that sent
// PUBREC but not PUBCOMP gets the PUBREL, not the PUBLISH, again on
// reconnect [MQTT-4.4.0-1].
func TestProtocolRedeliveryQoS2Pubrel(t *testing.T) {
	t.Parallel()
	_, addr := testutil.StartBroker(t, nil)
	sub := dialAs(t, addr, codec.V311, "rd2", false)
	sub.Subscribe(1, "rd2", 2)
	p := dialAs(t, addr, codec.V311, "rd2-pub", true)
	publishAcked(t, p, "rd2", "m", 2, 1, false)
	got, _ := sub.ExpectPublish(waitPkt)
	sub.SendAck(codec.PUBREC, got.PacketID)
	sub.ExpectAck(codec.PUBREL, got.PacketID, waitPkt)
	sub.Drop() // no PUBCOMP

	again := dialAs(t, addr, codec.V311, "rd2", false)
	f := again.Expect(codec.PUBREL, waitPkt)
	var rel codec.Ack
	if err := rel.Decode(codec.PUBREL, f.Body, codec.V311); err != nil || rel.PacketID != got.PacketID || f.Header.Flags != 0x02 {
		t.Fatalf("resent PUBREL id %d flags %#x (%v), want id %d flags 0x02", rel.PacketID, f.Header.Flags, err, got.PacketID)
	}
	again.SendAck(codec.PUBCOMP, got.PacketID)
	again.ExpectSilence(quietFor) // in particular, no PUBLISH again
}

// TestProtocolOfflineQueue: QoS 1 messages for a disconnected persistent
// session are kept and delivered in order on reconnect [MQTT-3.1.2-5]
// [MQTT-4.6.0-6]; QoS 0 ones are not (a broker may keep them, 3.1.1
// section 3.1.2.4; Shoal documents that it does not).
func TestProtocolOfflineQueue(t *testing.T) {
	t.Parallel()
	_, addr := testutil.StartBroker(t, nil)
	for _, ver := range v3Versions {
		t.Run(ver.name, func(t *testing.T) {
			id, topic := "oq-"+ver.name, "oq/"+ver.name
			sub := dialAs(t, addr, ver.v, id, false)
			sub.Subscribe(1, topic, 2)
			sub.SendDisconnect(0)
			sub.ExpectClosed(waitPkt) // the broker has seen the DISCONNECT

			// A watcher sees each message once it has been routed.
			watch := dialAs(t, addr, ver.v, "oq-watch-"+ver.name, true)
			watch.Subscribe(1, topic, 1)
			p := dialAs(t, addr, ver.v, "oq-pub-"+ver.name, true)
			msgs := []struct {
				payload string
				qos     byte
			}{{"a", 1}, {"x0", 0}, {"b", 2}, {"y0", 0}, {"c", 1}}
			for i, m := range msgs {
				publishAcked(t, p, topic, m.payload, m.qos, uint16(i+1), false)
				receiveAcked(t, watch, topic, m.payload)
			}

			again := testutil.Dial(t, addr, ver.v)
			if ack := again.Connect(codec.Connect{ClientID: []byte(id)}); !ack.SessionPresent {
				t.Fatal("session present 0 on reconnect")
			}
			got := receiveInOrder(t, again, topic, "a", "b", "c")
			for i, want := range []byte{1, 2, 1} {
				if got[i].QoS != want {
					t.Fatalf("%q delivered at QoS %d, want %d", got[i].Payload, got[i].QoS, want)
				}
			}
			again.ExpectSilence(quietFor) // no QoS 0 messages
		})
	}
}

// TestProtocolOrdering: 200 QoS 1 messages from one publisher reach a
// subscriber in the order sent [MQTT-4.6.0-5], [MQTT-4.6.0-6], and the
// PUBACKs come back in order [MQTT-4.6.0-2], even though the in-flight
// window (64) makes the broker queue most of them.
func TestProtocolOrdering(t *testing.T) {
	t.Parallel()
	_, addr := testutil.StartBroker(t, nil)
	sub := dialAs(t, addr, codec.V311, "order-sub", true)
	sub.Subscribe(1, "order", 1)
	p := dialAs(t, addr, codec.V311, "order-pub", true)
	const n = 200
	var batch []byte
	for i := range n {
		m := codec.Publish{Topic: []byte("order"), Payload: fmt.Appendf(nil, "%d", i), QoS: 1, PacketID: uint16(i + 1)}
		batch = m.Append(batch, codec.V311)
	}
	p.Send(batch)
	for i := range n {
		p.ExpectAck(codec.PUBACK, uint16(i+1), waitPkt)
	}
	want := make([]string, n)
	for i := range want {
		want[i] = fmt.Sprint(i)
	}
	receiveInOrder(t, sub, "order", want...)
	sub.ExpectSilence(quietFor)
}

// TestProtocolRetained: a retained message goes to new subscribers with
// RETAIN 1 [MQTT-3.3.1-8], also through '+' and '#'; to existing ones with
// RETAIN 0 [MQTT-3.3.1-9]; a newer one replaces it (3.3.1.3); an empty
// payload clears it [MQTT-3.3.1-10] and is not itself retained
// [MQTT-3.3.1-11]; a non-retained PUBLISH leaves it alone [MQTT-3.3.1-12].
func TestProtocolRetained(t *testing.T) {
	t.Parallel()
	_, addr := testutil.StartBroker(t, nil)
	live := dialAs(t, addr, codec.V311, "ret-live", true)
	live.Subscribe(1, "ret/#", 1)
	p := dialAs(t, addr, codec.V311, "ret-pub", true)

	publishAcked(t, p, "ret/a", "old", 1, 1, true)
	publishAcked(t, p, "ret/a", "one", 2, 2, true)
	publishAcked(t, p, "ret/a", "not-retained", 1, 3, false)
	for _, want := range []string{"old", "one", "not-retained"} {
		if _, flags := receiveAcked(t, live, "ret/a", want); flags&0x01 != 0 {
			t.Fatalf("live delivery of %q has RETAIN 1 [MQTT-3.3.1-9]", want)
		}
	}

	for i, filter := range []string{"ret/a", "ret/+", "ret/#", "+/a", "#"} {
		s := dialAs(t, addr, codec.V311, fmt.Sprint("ret-new-", i), true)
		s.Subscribe(1, filter, 1)
		got, flags := receiveAcked(t, s, "ret/a", "one")
		if flags&0x01 == 0 || got.QoS != 1 {
			t.Fatalf("%s: retained delivery flags %#x QoS %d, want RETAIN 1 at min(2, 1)", filter, flags, got.QoS)
		}
		s.ExpectSilence(quietFor / 3) // only the newest, once
	}

	publishAcked(t, p, "ret/a", "", 1, 4, true)
	// Processed as normal for existing subscribers [MQTT-3.3.1-10].
	if _, flags := receiveAcked(t, live, "ret/a", ""); flags&0x01 != 0 {
		t.Fatal("empty retained PUBLISH delivered with RETAIN 1")
	}
	late := dialAs(t, addr, codec.V311, "ret-late", true)
	late.Subscribe(1, "ret/#", 1)
	late.ExpectSilence(quietFor) // [MQTT-3.3.1-11]
}

// TestProtocolDollarTopics: topics starting with '$' are not matched by
// filters starting with a wildcard [MQTT-4.7.2-1], but are by filters that
// spell the '$' level.
func TestProtocolDollarTopics(t *testing.T) {
	t.Parallel()
	_, addr := testutil.StartBroker(t, nil)
	hash := dialAs(t, addr, codec.V311, "dollar-hash", true)
	hash.Subscribe(1, "#", 0)
	plus := dialAs(t, addr, codec.V311, "dollar-plus", true)
	plus.Subscribe(1, "+/x", 0)
	sys := dialAs(t, addr, codec.V311, "dollar-sys", true)
	sys.Subscribe(1, "$SYS/#", 0)
	exact := dialAs(t, addr, codec.V311, "dollar-exact", true)
	exact.Subscribe(1, "$SYS/+", 0)
	p := dialAs(t, addr, codec.V311, "dollar-pub", true)

	publishAcked(t, p, "$SYS/x", "sys", 1, 1, false)
	publishAcked(t, p, "n/x", "normal", 1, 2, false)
	receiveAcked(t, sys, "$SYS/x", "sys")
	receiveAcked(t, exact, "$SYS/x", "sys")
	receiveAcked(t, hash, "n/x", "normal") // not "$SYS/x" first
	receiveAcked(t, plus, "n/x", "normal")

	// Retained '$' messages follow the same rule.
	publishAcked(t, p, "$SYS/r", "kept", 1, 3, true)
	receiveAcked(t, sys, "$SYS/r", "kept")
	late := dialAs(t, addr, codec.V311, "dollar-late", true)
	late.Subscribe(1, "#", 0)
	late.ExpectSilence(quietFor)
	lateSys := dialAs(t, addr, codec.V311, "dollar-late-sys", true)
	lateSys.Subscribe(1, "$SYS/#", 0)
	receiveAcked(t, lateSys, "$SYS/r", "kept")
}

// TestProtocolWill: the will is published when the connection closes
// without DISCONNECT [MQTT-3.1.2-8], at its QoS, as retained if Will Retain
// is set [MQTT-3.1.2-17], and not after DISCONNECT [MQTT-3.1.2-10].
func TestProtocolWill(t *testing.T) {
	t.Parallel()
	_, addr := testutil.StartBroker(t, nil)
	for _, ver := range v3Versions {
		t.Run(ver.name, func(t *testing.T) {
			topic := "will/" + ver.name
			watch := dialAs(t, addr, ver.v, "will-watch-"+ver.name, true)
			watch.Subscribe(1, topic+"/#", 2)
			will := func(id, sub string, qos byte, retain bool) *testutil.Raw {
				r, _ := testutil.DialConnect(t, addr, ver.v, codec.Connect{
					ClientID: []byte(id), CleanStart: true,
					WillFlag: true, WillTopic: []byte(topic + "/" + sub), WillPayload: []byte("bye " + sub),
					WillQoS: qos, WillRetain: retain,
				})
				return r
			}

			// Clean DISCONNECT: no will.
			w := will("will-clean-"+ver.name, "clean", 1, false)
			w.SendDisconnect(0)
			w.ExpectClosed(waitPkt)
			// Dropped: the will, at its QoS, not retained.
			w = will("will-drop-"+ver.name, "drop", 2, false)
			w.Drop()
			if got, flags := receiveAcked(t, watch, topic+"/drop", "bye drop"); got.QoS != 2 || flags&0x01 != 0 {
				t.Fatalf("will QoS %d flags %#x, want QoS 2, RETAIN 0", got.QoS, flags)
			}
			// Dropped with Will Retain: stored as retained.
			w = will("will-ret-"+ver.name, "ret", 1, true)
			w.Drop()
			receiveAcked(t, watch, topic+"/ret", "bye ret") // routed, so stored
			late := dialAs(t, addr, ver.v, "will-late-"+ver.name, true)
			late.Subscribe(1, topic+"/#", 1)
			if _, flags := receiveAcked(t, late, topic+"/ret", "bye ret"); flags&0x01 == 0 {
				t.Fatal("retained will delivered without RETAIN [MQTT-3.1.2-17]")
			}
			late.ExpectSilence(quietFor / 3)
			watch.ExpectSilence(quietFor) // in particular no "bye clean"
		})
	}
}

// TestProtocolOverlappingSubscriptions: a client whose filters "a/+"
// (QoS 0) and "a/#" (QoS 1) both match gets one copy, at the maximum QoS
// of the matching subscriptions [MQTT-3.3.5-1] (5.0: [MQTT-3.3.4-2]).
func TestProtocolOverlappingSubscriptions(t *testing.T) {
	t.Parallel()
	_, addr := testutil.StartBroker(t, nil)
	sub := dialAs(t, addr, codec.V311, "overlap", true)
	sub.Subscribe(1, "ov/+", 0)
	sub.Subscribe(2, "ov/#", 1)
	p := dialAs(t, addr, codec.V311, "overlap-pub", true)
	publishAcked(t, p, "ov/b", "m", 2, 1, false)
	publishAcked(t, p, "ov/c/d", "sentinel", 0, 0, false) // matches "ov/#" only
	if got, _ := receiveAcked(t, sub, "ov/b", "m"); got.QoS != 1 {
		t.Fatalf("delivered at QoS %d, want 1", got.QoS)
	}
	receiveAcked(t, sub, "ov/c/d", "sentinel") // not a second "m"
	sub.ExpectSilence(quietFor)
}
