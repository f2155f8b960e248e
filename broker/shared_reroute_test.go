package broker_test

import (
	"testing"
	"time"

	"github.com/shoalmq/shoal/codec"
	"github.com/shoalmq/shoal/internal/testutil"
)

// TestSharedRerouteOnSessionEnd: a member of a shared subscription that
// received a QoS 1 message, never acknowledged it and whose session then
// ended does not take the message with it: another member of the group gets
// it (MQTT 5 section 4.8.2: "the Server SHOULD send the Application Message
// to another Client that is subscribed to the same Shared Subscription").
// Messages it had acknowledged are not sent again.
func TestSharedRerouteOnSessionEnd(t *testing.T) {
	_, addr := testutil.StartBroker(t, nil)
	const filter = "$share/workers/jobs"

	first := testutil.Dial(t, addr, codec.V5)
	first.Connect(codec.Connect{ClientID: []byte("w1"), CleanStart: true}) // session ends with the connection
	first.Subscribe(1, filter, 1)
	second := testutil.Dial(t, addr, codec.V5)
	second.Connect(codec.Connect{ClientID: []byte("w2"), CleanStart: true})
	second.Subscribe(1, filter, 1)

	pub := testutil.Dial(t, addr, codec.V5)
	pub.Connect(codec.Connect{ClientID: []byte("boss"), CleanStart: true})
	send := func(id uint16, payload string) {
		p := codec.Publish{Topic: []byte("jobs"), QoS: 1, PacketID: id, Payload: []byte(payload)}
		pub.Send(p.Append(nil, codec.V5))
		pub.Expect(codec.PUBACK, 5*time.Second)
	}

	// Round-robin: job-1 goes to w1, which acknowledges it; job-2 to w2;
	// job-3 to w1, which never acknowledges it.
	send(1, "job-1")
	got := first.Publish(first.Expect(codec.PUBLISH, 5*time.Second))
	if string(got.Payload) != "job-1" {
		t.Fatalf("w1 got %q first, want job-1", got.Payload)
	}
	first.Send(codec.AppendAck(nil, codec.PUBACK, got.PacketID, codec.Success, codec.V5))
	send(2, "job-2")
	if p := second.Publish(second.Expect(codec.PUBLISH, 5*time.Second)); string(p.Payload) != "job-2" {
		t.Fatalf("w2 got %q, want job-2", p.Payload)
	}
	send(3, "job-3")
	if p := first.Publish(first.Expect(codec.PUBLISH, 5*time.Second)); string(p.Payload) != "job-3" {
		t.Fatalf("w1 got %q, want job-3", p.Payload)
	}

	first.Conn.Close() // w1 leaves with job-3 unacknowledged; its session ends

	p := second.Publish(second.Expect(codec.PUBLISH, 5*time.Second))
	if string(p.Payload) != "job-3" || p.QoS != 1 {
		t.Fatalf("w2 got %q at QoS %d, want job-3 at QoS 1", p.Payload, p.QoS)
	}
	second.Send(codec.AppendAck(nil, codec.PUBACK, p.PacketID, codec.Success, codec.V5))
	if f, err := second.Read(500 * time.Millisecond); err == nil {
		t.Fatalf("w2 got another %v: acknowledged messages must not come back", f.Header.Type)
	}
}
