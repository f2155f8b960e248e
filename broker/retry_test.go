package broker_test

import (
	"net"
	"testing"
	"time"

	"github.com/shoalmq/shoal/broker"
	"github.com/shoalmq/shoal/codec"
	"github.com/shoalmq/shoal/internal/testutil"
)

// TestRetryInterval: with retry_interval set, an unacknowledged QoS 1
// PUBLISH is resent to a connected MQTT 3.1.1 client with DUP set and the
// same packet identifier [MQTT-3.3.1-1], [MQTT-2.2.1-2]; an MQTT 5 client
// is never sent one while connected [MQTT-4.4.0-1].
func TestRetryInterval(t *testing.T) {
	_, addr := testutil.StartBroker(t, func(c *broker.Config) { c.RetryInterval = 200 * time.Millisecond })
	for _, v := range []byte{codec.V311, codec.V5} {
		sub := testutil.Dial(t, addr, v)
		sub.Connect(codec.Connect{ClientID: []byte{'r', '0' + v}, CleanStart: true})
		topic := string([]byte{'r', 'e', 't', 'r', 'y', '/', '0' + v})
		sub.Subscribe(1, topic, 1)

		pub := testutil.Dial(t, addr, codec.V311)
		pub.Connect(codec.Connect{ClientID: []byte{'p', '0' + v}, CleanStart: true})
		p := codec.Publish{Topic: []byte(topic), QoS: 1, PacketID: 9, Payload: []byte("x")}
		pub.Send(p.Append(nil, codec.V311))
		pub.Expect(codec.PUBACK, 5*time.Second)

		first := sub.Publish(sub.Expect(codec.PUBLISH, 5*time.Second))
		if first.Dup {
			t.Fatalf("v%d: first delivery has DUP set", v)
		}
		f, err := sub.Read(2500 * time.Millisecond) // ticks are 1 s apart
		switch v {
		case codec.V311:
			if err != nil {
				t.Fatalf("v%d: no resend: %v", v, err)
			}
			again := sub.Publish(f)
			if !again.Dup || again.PacketID != first.PacketID || string(again.Payload) != "x" {
				t.Fatalf("v%d: resend = %+v, want DUP with packet id %d", v, again, first.PacketID)
			}
			// Once acknowledged, it is not sent again.
			sub.Send(codec.AppendAck(nil, codec.PUBACK, first.PacketID, codec.Success, v))
			if f, err := sub.Read(2500 * time.Millisecond); err == nil {
				t.Fatalf("v%d: got %v after PUBACK", v, f.Header.Type)
			}
		case codec.V5:
			if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
				t.Fatalf("v5 client got a resend while connected: %v %+v", err, f)
			}
		}
	}
}
