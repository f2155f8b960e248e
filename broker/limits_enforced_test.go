package broker_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/shoalmq/shoal/broker"
	"github.com/shoalmq/shoal/codec"
	"github.com/shoalmq/shoal/internal/testutil"
)

// TestMaxConnections: past max_connections a CONNECT is refused with 0x97
// (3.1.1: 0x03 server unavailable); once a client leaves, the next one is
// let in.
func TestMaxConnections(t *testing.T) {
	b, addr := testutil.StartBroker(t, func(c *broker.Config) { c.MaxConnections = 3 })
	var held []*testutil.Raw
	for i := range 3 {
		r, _ := testutil.DialConnect(t, addr, codec.V5, codec.Connect{ClientID: []byte(fmt.Sprint("c", i)), CleanStart: true})
		held = append(held, r)
	}
	r := testutil.Dial(t, addr, codec.V5)
	if ack := r.Connect(codec.Connect{ClientID: []byte("over5"), CleanStart: true}); ack.Code != codec.QuotaExceeded {
		t.Errorf("v5 over the limit: CONNACK %v, want 0x97", ack.Code)
	}
	r.ExpectClosed(testutil.Wait)
	// Closed as a client closes on a refusal: a refused socket the client
	// keeps open lingers on the broker's side (eventloop Config.Linger, 2s,
	// ended on a tick) and counts against the limit until then, which
	// would race the wait for the next client below.
	r.Drop()
	r = testutil.Dial(t, addr, codec.V311)
	if ack := r.Connect(codec.Connect{ClientID: []byte("over3"), CleanStart: true}); ack.Code != 3 {
		t.Errorf("3.1.1 over the limit: CONNACK %v, want 3", ack.Code)
	}
	r.ExpectClosed(testutil.Wait)
	r.Drop()
	held[0].Drop()
	testutil.Eventually(t, testutil.Wait, "a slot to free up", func() bool { return b.Stats().ClientsConnected == 2 })
	testutil.Eventually(t, testutil.Wait, "the next client to be let in", func() bool {
		r := testutil.Dial(t, addr, codec.V5)
		defer r.Drop()
		return r.Connect(codec.Connect{ClientID: []byte("next"), CleanStart: true}).Code == codec.Success
	})
	if n := b.Stats().Refused["max_connections"]; n < 2 {
		t.Errorf("refused max_connections = %d, want at least 2", n)
	}
}

// TestConnectRate: one address may open connect_burst connections at
// once; the next is refused with 0x9F (3.1.1: 0x03) until tokens refill.
func TestConnectRate(t *testing.T) {
	_, addr := testutil.StartBroker(t, func(c *broker.Config) { c.ConnectRate = 0.5; c.ConnectBurst = 3 })
	for i := range 3 {
		r, _ := testutil.DialConnect(t, addr, codec.V5, codec.Connect{ClientID: []byte(fmt.Sprint("r", i)), CleanStart: true})
		r.Drop()
	}
	r := testutil.Dial(t, addr, codec.V5)
	if ack := r.Connect(codec.Connect{ClientID: []byte("r5"), CleanStart: true}); ack.Code != codec.ConnectionRateExceeded {
		t.Errorf("v5: CONNACK %v, want 0x9F", ack.Code)
	}
	r = testutil.Dial(t, addr, codec.V311)
	if ack := r.Connect(codec.Connect{ClientID: []byte("r3"), CleanStart: true}); ack.Code != 3 {
		t.Errorf("3.1.1: CONNACK %v, want 3", ack.Code)
	}
}

// TestClientIDLength: an identifier over max_client_id_length gets 0x85
// (3.1.1: 0x02); one at the limit connects.
func TestClientIDLength(t *testing.T) {
	_, addr := testutil.StartBroker(t, func(c *broker.Config) { c.MaxClientIDLength = 8 })
	testutil.DialConnect(t, addr, codec.V5, codec.Connect{ClientID: []byte("12345678"), CleanStart: true})
	for v, want := range map[byte]codec.ReasonCode{codec.V5: codec.ClientIDNotValid, codec.V311: 2} {
		r := testutil.Dial(t, addr, v)
		if ack := r.Connect(codec.Connect{ClientID: []byte("123456789"), CleanStart: true}); ack.Code != want {
			t.Errorf("version %d: CONNACK %v, want %v", v, ack.Code, want)
		}
	}
}

// TestMaxSubscriptions: past max_subscriptions a new filter gets 0x97
// (3.1.1: 0x80); re-subscribing to a filter already held still works.
func TestMaxSubscriptions(t *testing.T) {
	_, addr := testutil.StartBroker(t, func(c *broker.Config) { c.MaxSubscriptions = 2 })
	for v, want := range map[byte]codec.ReasonCode{codec.V5: codec.QuotaExceeded, codec.V311: 0x80} {
		r, _ := testutil.DialConnect(t, addr, v, codec.Connect{ClientID: []byte(fmt.Sprint("s", v)), CleanStart: true})
		r.Subscribe(1, "a", 0)
		r.Subscribe(2, "b", 0)
		if codes := r.Subscribe(3, "c", 0); codes[0] != want {
			t.Errorf("version %d, third filter: %v, want %v", v, codes, want)
		}
		if codes := r.Subscribe(4, "a", 1); codes[0] != 1 {
			t.Errorf("version %d, resubscribing: %v, want granted", v, codes)
		}
	}
}

// TestTopicLimits: filters over max_topic_length or max_topic_levels get
// SUBACK 0x8F (3.1.1: 0x80); such a topic gets PUBACK 0x90 from an MQTT 5
// publisher and closes a 3.1.1 one, which has no way to hear why.
func TestTopicLimits(t *testing.T) {
	_, addr := testutil.StartBroker(t, func(c *broker.Config) { c.MaxTopicLength = 20; c.MaxTopicLevels = 4 })
	long, deep := strings.Repeat("x", 21), "a/b/c/d/e"
	r, _ := testutil.DialConnect(t, addr, codec.V5, codec.Connect{ClientID: []byte("v5"), CleanStart: true})
	for _, f := range []string{long, deep, "$share/g/" + deep} {
		if codes := r.Subscribe(1, f, 0); codes[0] != codec.TopicFilterInvalid {
			t.Errorf("filter %q: %v, want 0x8F", f, codes)
		}
	}
	if codes := r.Subscribe(1, "a/b/c/#", 0); codes[0] != 0 {
		t.Errorf("a/b/c/# (4 levels): %v, want granted", codes)
	}
	r.SendPublish(codec.Publish{Topic: []byte(deep), QoS: 1, PacketID: 9})
	if a := r.ExpectAck(codec.PUBACK, 9, testutil.Wait); a.Code != codec.TopicNameInvalid {
		t.Errorf("publish to %q: PUBACK %v, want 0x90", deep, a.Code)
	}
	v3, _ := testutil.DialConnect(t, addr, codec.V311, codec.Connect{ClientID: []byte("v3"), CleanStart: true})
	if codes := v3.Subscribe(1, long, 0); codes[0] != 0x80 {
		t.Errorf("3.1.1 filter: %v, want 0x80", codes)
	}
	v3.SendPublish(codec.Publish{Topic: []byte(long), QoS: 1, PacketID: 2})
	v3.ExpectClosed(testutil.Wait)
}

// TestPublishRate: a client over publish_rate is slowed, not cut off and
// not dropped: every message arrives, and no sooner than the rate allows.
func TestPublishRate(t *testing.T) {
	const rate, burst, n = 40, 10, 50
	b, addr := testutil.StartBroker(t, func(c *broker.Config) { c.PublishRate = rate; c.PublishBurst = burst })
	sub, _ := testutil.DialConnect(t, addr, codec.V5, codec.Connect{ClientID: []byte("sub"), CleanStart: true})
	sub.Subscribe(1, "rate", 0)
	pub, _ := testutil.DialConnect(t, addr, codec.V5, codec.Connect{ClientID: []byte("pub"), CleanStart: true})
	var burstBytes []byte
	for i := range n {
		p := codec.Publish{Topic: []byte("rate"), Payload: []byte(fmt.Sprint(i))}
		burstBytes = p.Append(burstBytes, codec.V5)
	}
	start := time.Now()
	pub.Send(burstBytes)
	for i := range n {
		p, _ := sub.ExpectPublish(5 * time.Second)
		if string(p.Payload) != fmt.Sprint(i) {
			t.Fatalf("message %d: got %q", i, p.Payload)
		}
	}
	// The first burst goes at once, the rest at rate: a lower bound only,
	// which a slow machine cannot break.
	if min := time.Duration(n-burst) * time.Second / rate; time.Since(start) < min*9/10 {
		t.Errorf("%d messages took %v, want at least %v at %d/s", n, time.Since(start), min, rate)
	}
	if b.Stats().Refused["publish_rate_pauses"] == 0 {
		t.Error("no publish_rate pause counted")
	}
}

// TestMaxQueuedBytes: an offline session keeps at most max_queued_bytes
// of messages; with drop-oldest it keeps the newest.
func TestMaxQueuedBytes(t *testing.T) {
	_, addr := testutil.StartBroker(t, func(c *broker.Config) { c.MaxQueuedBytes = 1000 })
	c := codec.Connect{ClientID: []byte("away"), Props: codec.Properties{}}
	c.Props.Set(codec.PropSessionExpiry)
	c.Props.SessionExpiry = 600
	away, _ := testutil.DialConnect(t, addr, codec.V5, c)
	away.Subscribe(1, "q", 1)
	away.Drop()
	pub, _ := testutil.DialConnect(t, addr, codec.V5, codec.Connect{ClientID: []byte("pub"), CleanStart: true})
	payload := bytes.Repeat([]byte("p"), 300)
	for i := 1; i <= 10; i++ {
		pub.SendPublish(codec.Publish{Topic: []byte("q"), QoS: 1, PacketID: uint16(i), Payload: append([]byte{byte('0' + i%10)}, payload...)})
		pub.ExpectAck(codec.PUBACK, uint16(i), testutil.Wait)
	}
	back, ack := testutil.DialConnect(t, addr, codec.V5, c)
	if !ack.SessionPresent {
		t.Fatal("session not present")
	}
	var got []byte
	for {
		f, err := back.Read(300 * time.Millisecond)
		if err != nil {
			break
		}
		p := back.Publish(f)
		got = append(got, p.Payload[0])
		back.SendAck(codec.PUBACK, p.PacketID)
	}
	// 302 bytes each (topic and payload): three fit in 1000.
	if string(got) != "890" {
		t.Errorf("kept %q, want the three newest, \"890\"", got)
	}
}
