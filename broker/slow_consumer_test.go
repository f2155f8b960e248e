package broker_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	"github.com/shoalmq/shoal/broker"
	"github.com/shoalmq/shoal/codec"
	"github.com/shoalmq/shoal/internal/testutil"
)

// The slow-consumer policy (README "Slow consumers"): a connected client
// gets its in-flight window, then max_queued messages in its session queue;
// past that, slow_consumer: disconnect closes it and slow_consumer: drop
// applies queue_policy while it stays.

// slowPayloads is what the tests publish: "m1".."m10".
func slowPayloads() []string {
	var out []string
	for i := 1; i <= 10; i++ {
		out = append(out, fmt.Sprintf("m%d", i))
	}
	return out
}

// TestV5PahoSlowConsumerDisconnected: a paho.golang subscriber that never
// acknowledges (Receive Maximum 2) fills its window and its queue of 5; the
// next message gets it DISCONNECT 0x97 Quota exceeded. Its persistent
// session keeps what it had: on return it gets its two in-flight messages
// again and the queue as drop-oldest left it. A fast subscriber of the same
// topic misses nothing.
func TestV5PahoSlowConsumerDisconnected(t *testing.T) {
	t.Parallel()
	_, addr := testutil.StartBroker(t, func(c *broker.Config) { c.MaxQueued = 5 })
	cp := p5Expiry("slow", true, 300)
	cp.Properties.ReceiveMaximum = paho.Uint16(2)
	slow, _ := p5Dial(t, addr, cp, func(cfg *paho.ClientConfig) { cfg.EnableManualAcknowledgment = true })
	slow.sub(t, "slow/t", 1)
	fast, _ := p5Dial(t, addr, p5CP("fast"), nil)
	fast.sub(t, "slow/t", 1)
	pub, _ := p5Dial(t, addr, p5CP("pub"), nil)

	want := slowPayloads()
	for _, p := range want {
		pub.say(t, "slow/t", p, 1) // returns once PUBACK came
	}
	for _, p := range want {
		fast.expect(t, "slow/t", p)
	}
	slow.expect(t, "slow/t", "m1")
	slow.expect(t, "slow/t", "m2")
	slow.serverDisconnect(t, byte(codec.QuotaExceeded))

	back, ack := p5Dial(t, addr, p5Expiry("slow", false, 300), nil)
	if !ack.SessionPresent {
		t.Fatal("CONNACK Session Present 0: the slow client's session was not kept")
	}
	// m3..m5 were the oldest queued when m8..m10 found the queue full.
	for _, p := range []string{"m1", "m2", "m6", "m7", "m8", "m9", "m10"} {
		back.expect(t, "slow/t", p)
	}
	back.quiet(t)
}

// TestSlowConsumerDisconnectedV311: an MQTT 3.1.1 client has no DISCONNECT
// to hear the reason from: its connection is closed.
func TestSlowConsumerDisconnectedV311(t *testing.T) {
	t.Parallel()
	_, addr := testutil.StartBroker(t, func(c *broker.Config) { c.MaxQueued = 3; c.MaxInflight = 1 })
	slow, _ := testutil.DialConnect(t, addr, codec.V311, codec.Connect{ClientID: []byte("slow311"), CleanStart: true})
	slow.Subscribe(1, "slow/t", 1)
	pub, _ := testutil.DialConnect(t, addr, codec.V311, codec.Connect{ClientID: []byte("pub311"), CleanStart: true})
	for i, p := range slowPayloads()[:5] {
		pub.SendPublish(codec.Publish{Topic: []byte("slow/t"), QoS: 1, PacketID: uint16(i + 1), Payload: []byte(p)})
		pub.ExpectAck(codec.PUBACK, uint16(i+1), testutil.Wait)
	}
	got := slow.ExpectClosed(testutil.Wait)
	if len(got) != 1 || got[0].Header.Type != codec.PUBLISH {
		t.Fatalf("before the close: %d packets, want the one PUBLISH its window allows", len(got))
	}
}

// TestSlowConsumerDrop: with slow_consumer: drop the client stays
// connected; queue_policy drop-oldest makes room, and once it acknowledges
// it gets the newest messages in order.
func TestSlowConsumerDrop(t *testing.T) {
	t.Parallel()
	_, addr := testutil.StartBroker(t, func(c *broker.Config) {
		c.MaxQueued, c.MaxInflight, c.SlowConsumer = 5, 2, broker.DropSlow
	})
	slow, _ := testutil.DialConnect(t, addr, codec.V311, codec.Connect{ClientID: []byte("lagger"), CleanStart: true})
	slow.Subscribe(1, "slow/t", 1)
	pub, _ := testutil.DialConnect(t, addr, codec.V311, codec.Connect{ClientID: []byte("pubd"), CleanStart: true})
	for i, p := range slowPayloads() {
		pub.SendPublish(codec.Publish{Topic: []byte("slow/t"), QoS: 1, PacketID: uint16(i + 1), Payload: []byte(p)})
		pub.ExpectAck(codec.PUBACK, uint16(i+1), testutil.Wait)
	}
	// PUBACK comes once a message is routed, maybe before the subscriber's
	// loop has queued it: the silence lets every delivery land.
	var got []codec.Publish
	for range 2 {
		p, _ := slow.ExpectPublish(testutil.Wait)
		got = append(got, p)
	}
	slow.ExpectSilence(300 * time.Millisecond) // window full, and still connected
	for i := 0; len(got) < 7; i++ {
		slow.SendAck(codec.PUBACK, got[i].PacketID)
		p, _ := slow.ExpectPublish(testutil.Wait)
		got = append(got, p)
	}
	want := []string{"m1", "m2", "m6", "m7", "m8", "m9", "m10"}
	var payloads []string
	for _, p := range got {
		payloads = append(payloads, string(p.Payload))
	}
	if fmt.Sprint(payloads) != fmt.Sprint(want) {
		t.Fatalf("received %v, want %v", payloads, want)
	}
	slow.ExpectSilence(200 * time.Millisecond)
}
