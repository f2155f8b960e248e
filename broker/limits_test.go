package broker_test

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/shoalmq/shoal/broker"
	"github.com/shoalmq/shoal/codec"
	"github.com/shoalmq/shoal/internal/testutil"
)

// TestWillBeyondLimits: with max_qos 1 and retain_available false, a CONNECT
// whose will asks for QoS 2 or RETAIN is refused with 0x9B / 0x9A
// [MQTT-3.2.2-12], [MQTT-3.2.2-13], and a plain one is accepted.
func TestWillBeyondLimits(t *testing.T) {
	_, addr := testutil.StartBroker(t, func(c *broker.Config) { c.MaxQoS = 1; c.RetainAvailable = false })
	for _, tc := range []struct {
		name   string
		qos    byte
		retain bool
		want   codec.ReasonCode
	}{
		{"qos2", 2, false, codec.QoSNotSupported},
		{"retain", 1, true, codec.RetainNotSupported},
		{"ok", 1, false, codec.Success},
	} {
		r := testutil.Dial(t, addr, codec.V5)
		ack := r.Connect(codec.Connect{ClientID: []byte("w-" + tc.name), CleanStart: true, WillFlag: true,
			WillQoS: tc.qos, WillRetain: tc.retain, WillTopic: []byte("w"), WillPayload: []byte("x")})
		if ack.Code != tc.want {
			t.Errorf("%s: CONNACK %v, want %v", tc.name, ack.Code, tc.want)
		}
		if ack.Code == codec.Success && (!ack.Props.Has(codec.PropMaximumQoS) || ack.Props.MaximumQoS != 1 ||
			!ack.Props.Has(codec.PropRetainAvailable) || ack.Props.RetainAvailable != 0) {
			t.Errorf("CONNACK does not announce the limits: %+v", ack.Props)
		}
	}
}

// TestBackpressureNotDisconnect: when the router's queue is full, a QoS 1
// publisher is paused — its frames wait, in order, in its connection's
// buffer — instead of being disconnected or having messages dropped. Every
// message arrives, every PUBACK comes, and PUBACK only after routing.
func TestBackpressureNotDisconnect(t *testing.T) {
	_, addr := testutil.StartBroker(t, func(c *broker.Config) { c.Workers = 1; c.WorkerQueue = 1 })
	sub := testutil.Dial(t, addr, codec.V311)
	sub.Connect(codec.Connect{ClientID: []byte("sub"), CleanStart: true})
	sub.Subscribe(1, "bp", 0)
	pub := testutil.Dial(t, addr, codec.V311)
	pub.Connect(codec.Connect{ClientID: []byte("pub"), CleanStart: true})

	const n = 2000
	var burst []byte
	for i := 1; i <= n; i++ {
		p := codec.Publish{Topic: []byte("bp"), QoS: 1, PacketID: uint16(i), Payload: []byte(strconv.Itoa(i))}
		burst = p.Append(burst, codec.V311)
	}
	pub.Send(burst)

	acks := make(chan error, 1)
	go func() {
		for i := 1; i <= n; i++ {
			f, err := pub.Read(10 * time.Second)
			if err != nil {
				acks <- fmt.Errorf("PUBACK %d: %v", i, err)
				return
			}
			var a codec.Ack
			if err := a.Decode(f.Header.Type, f.Body, codec.V311); err != nil || f.Header.Type != codec.PUBACK || a.PacketID != uint16(i) {
				acks <- fmt.Errorf("ack %d: got %v id %d (%v)", i, f.Header.Type, a.PacketID, err)
				return
			}
		}
		acks <- nil
	}()
	for i := 1; i <= n; i++ {
		p := sub.Publish(sub.Expect(codec.PUBLISH, 10*time.Second))
		if string(p.Payload) != strconv.Itoa(i) {
			t.Fatalf("message %d has payload %q: order broken or message lost", i, p.Payload)
		}
	}
	if err := <-acks; err != nil {
		t.Fatal(err)
	}
}

// TestTopicAliasMaximum65535: the largest Topic Alias Maximum is usable; its
// alias table was once sized max+1 in 16 bits, which wrapped to 0 and let
// one PUBLISH with an alias crash the broker.
func TestTopicAliasMaximum65535(t *testing.T) {
	_, addr := testutil.StartBroker(t, func(c *broker.Config) { c.TopicAliasMaximum = 65535 })
	sub := testutil.Dial(t, addr, codec.V5)
	sub.Connect(codec.Connect{ClientID: []byte("sub"), CleanStart: true})
	sub.Subscribe(1, "alias/#", 0)
	pub := testutil.Dial(t, addr, codec.V5)
	pub.Connect(codec.Connect{ClientID: []byte("pub"), CleanStart: true})
	for _, tc := range []struct {
		topic string
		alias uint16
	}{{"alias/a", 65535}, {"", 65535}, {"alias/b", 1}} {
		p := codec.Publish{Topic: []byte(tc.topic), Payload: []byte("x")}
		p.Props.Set(codec.PropTopicAlias)
		p.Props.TopicAlias = tc.alias
		pub.Send(p.Append(nil, codec.V5))
	}
	for _, want := range []string{"alias/a", "alias/a", "alias/b"} {
		if got := sub.Publish(sub.Expect(codec.PUBLISH, 5*time.Second)); string(got.Topic) != want {
			t.Fatalf("got topic %q, want %q", got.Topic, want)
		}
	}
}

// TestQoS2ReceiveBoundV311: an MQTT 3.1.1 client that never sends PUBREL
// cannot hold more than receive_maximum QoS 2 ids: past it, it is
// disconnected (3.1.1 has no reason code to send), instead of making every
// later PUBLISH scan up to 65,535 ids.
func TestQoS2ReceiveBoundV311(t *testing.T) {
	_, addr := testutil.StartBroker(t, func(c *broker.Config) { c.ReceiveMaximum = 3 })
	r := testutil.Dial(t, addr, codec.V311)
	r.Connect(codec.Connect{ClientID: []byte("hoarder"), CleanStart: true})
	for id := uint16(1); id <= 3; id++ {
		p := codec.Publish{Topic: []byte("q2"), QoS: 2, PacketID: id, Payload: []byte("x")}
		r.Send(p.Append(nil, codec.V311))
		r.Expect(codec.PUBREC, 5*time.Second)
	}
	p := codec.Publish{Topic: []byte("q2"), QoS: 2, PacketID: 4, Payload: []byte("x")}
	r.Send(p.Append(nil, codec.V311))
	if got := r.ExpectClosed(5 * time.Second); len(got) != 0 {
		t.Fatalf("got %v before the close, want none", got[0].Header.Type)
	}
}

// TestDisconnectExpiryCapped: max_session_expiry also caps a Session Expiry
// Interval set at DISCONNECT, so a client cannot keep its session (and its
// queue) for ever that way.
func TestDisconnectExpiryCapped(t *testing.T) {
	b, addr, clk := startFakeTime(t, nil, func(c *broker.Config) { c.MaxSessionExpiry = time.Second })
	r := testutil.Dial(t, addr, codec.V5)
	c := codec.Connect{ClientID: []byte("capped"), CleanStart: true}
	c.Props.Set(codec.PropSessionExpiry)
	c.Props.SessionExpiry = 1
	r.Connect(c)
	d := codec.Disconnect{}
	d.Props.Set(codec.PropSessionExpiry)
	d.Props.SessionExpiry = 0xFFFFFFFF
	r.Send(d.Append(nil, codec.V5))
	r.ExpectClosed(5 * time.Second)
	waitPending(t, b, 1) // uncapped, it would have no deadline at all
	advance(t, b, clk, time.Second)
	if n := b.SessionCount(); n != 0 {
		t.Fatal("the session outlived its capped expiry of 1 s")
	}
}
