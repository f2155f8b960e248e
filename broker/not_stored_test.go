package broker_test

import (
	"testing"

	"github.com/shoalmq/shoal/codec"
	"github.com/shoalmq/shoal/internal/testutil"
)

// TestRefusingNotStored: a QoS 1 or 2 message for another node that cannot
// store it (its receipt fails: no majority, a full stream) is not
// acknowledged as taken. MQTT 5 publishers hear 0x80 in PUBACK or PUBREC,
// and a QoS 2 packet id refused so is free again: the next PUBLISH with it
// is a new message, routed again, not a resend. MQTT 3.1.1 publishers,
// which have no failure code for one message, are disconnected without
// the acknowledgement, to send it again. QoS 0 is not held.
func TestRefusingNotStored(t *testing.T) {
	b, addr := testutil.StartBroker(t, nil)
	sent, _ := b.AddFailingPeer("x/#")

	v5, _ := testutil.DialConnect(t, addr, codec.V5, codec.Connect{ClientID: []byte("p5"), CleanStart: true})
	v5.SendPublish(codec.Publish{Topic: []byte("x/1"), QoS: 1, PacketID: 1, Payload: []byte("a")})
	if a := v5.ExpectAck(codec.PUBACK, 1, testutil.Wait); a.Code != codec.UnspecifiedError {
		t.Fatalf("QoS 1: PUBACK %#02x, want 0x80", byte(a.Code))
	}
	for i := range 2 {
		v5.SendPublish(codec.Publish{Topic: []byte("x/2"), QoS: 2, PacketID: 7, Payload: []byte("b")})
		if a := v5.ExpectAck(codec.PUBREC, 7, testutil.Wait); a.Code != codec.UnspecifiedError {
			t.Fatalf("QoS 2, try %d: PUBREC %#02x, want 0x80", i, byte(a.Code))
		}
	}
	if n := sent(); n != 3 {
		t.Fatalf("the peer was sent %d messages, want 3: a refused QoS 2 id taken as a resend", n)
	}
	v5.SendPublish(codec.Publish{Topic: []byte("x/3"), QoS: 0, Payload: []byte("c")})
	v5.SendPublish(codec.Publish{Topic: []byte("y"), QoS: 1, PacketID: 2, Payload: []byte("d")})
	if a := v5.ExpectAck(codec.PUBACK, 2, testutil.Wait); a.Code != codec.Success {
		t.Fatalf("a message no peer matches: PUBACK %#02x, want 0", byte(a.Code))
	}

	v3, _ := testutil.DialConnect(t, addr, codec.V311, codec.Connect{ClientID: []byte("p3"), CleanStart: true})
	v3.SendPublish(codec.Publish{Topic: []byte("x/4"), QoS: 1, PacketID: 1, Payload: []byte("e")})
	if !v3.Closed(testutil.Wait) {
		t.Fatal("MQTT 3.1.1: still connected after a message that could not be stored")
	}
	if got := b.Stats().Drops["not_stored"]; got != 4 {
		t.Fatalf("drops not_stored = %d, want 4", got)
	}
}

// TestRefusingNotStoredQoS2Resent: an MQTT 3.1.1 client whose two QoS 2
// messages are refused together is disconnected at the first refusal; the
// second's packet id is forgotten all the same, so both messages sent
// again on the next connection are routed as new ones, not answered as
// resends of messages taken.
func TestRefusingNotStoredQoS2Resent(t *testing.T) {
	b, addr := testutil.StartBroker(t, nil)
	sent, fail := b.AddFailingPeer("q/#")
	connect := codec.Connect{ClientID: []byte("q2"), KeepAlive: 60} // a session that outlives the connection
	c, _ := testutil.DialConnect(t, addr, codec.V311, connect)
	var both []byte
	for id := uint16(1); id <= 2; id++ {
		p := codec.Publish{Topic: []byte("q/x"), QoS: 2, PacketID: id, Payload: []byte("m")}
		both = p.Append(both, codec.V311)
	}
	c.Send(both) // one write: both are taken before the first refusal closes the connection
	if !c.Closed(testutil.Wait) {
		t.Fatal("still connected after refusals")
	}
	testutil.Eventually(t, testutil.Wait, "both refusals", func() bool { return b.Stats().Drops["not_stored"] == 2 })
	fail(false)
	c, ack := testutil.DialConnect(t, addr, codec.V311, connect)
	if !ack.SessionPresent {
		t.Fatal("the session did not outlive the connection")
	}
	for id := uint16(1); id <= 2; id++ {
		c.SendPublish(codec.Publish{Topic: []byte("q/x"), QoS: 2, PacketID: id, Dup: true, Payload: []byte("m")})
		c.ExpectAck(codec.PUBREC, id, testutil.Wait)
	}
	if n := sent(); n != 4 {
		t.Fatalf("the peer was sent %d messages, want 4: a refused id answered as a resend, its message lost", n)
	}
}
