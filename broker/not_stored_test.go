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
	sent := b.AddFailingPeer("x/#")

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
