package broker_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/shoalmq/shoal/codec"
	"github.com/shoalmq/shoal/internal/testutil"
)

// MQTT 5.0 conformance of sessions and flow control: message and session
// expiry, Receive Maximum, the client's Maximum Packet Size, takeover,
// wills with reason codes and delays, and the keep-alive. Clause ids are
// MQTT 5.0's. Helpers are in protocol_test.go and protocol_v5_test.go.

// expiring sets a Session Expiry Interval on a CONNECT.
func expiring(seconds uint32) func(*codec.Properties) {
	return func(p *codec.Properties) { p.Set(codec.PropSessionExpiry); p.SessionExpiry = seconds }
}

// goOffline sends a normal DISCONNECT and waits for the broker to close
// the connection, so that the session is detached when it returns.
func goOffline(r *testutil.Raw) {
	r.SendDisconnect(codec.Success)
	r.ExpectClosed(waitPkt)
}

// TestV5MessageExpiry: a message whose Message Expiry Interval passes while
// it waits for an offline subscriber is not delivered [MQTT-3.3.2-5]; one
// still alive is delivered with the interval minus the time it waited
// [MQTT-3.3.2-6]; one without an interval never expires.
func TestV5MessageExpiry(t *testing.T) {
	t.Parallel()
	_, addr := testutil.StartBroker(t, nil)
	sub, _ := dial5(t, addr, "mx", true, expiring(60))
	sub5(t, sub, 1, codec.Subscription{Filter: []byte("mx/t"), QoS: 1}, nil)
	goOffline(sub)

	watch, _ := dial5(t, addr, "mx-watch", true, nil)
	sub5(t, watch, 1, codec.Subscription{Filter: []byte("mx/t"), QoS: 1}, nil)
	pub, _ := dial5(t, addr, "mx-pub", true, nil)
	for i, m := range []struct {
		payload string
		expiry  uint32
	}{{"short", 1}, {"long", 60}, {"none", 0}} {
		p := codec.Publish{Topic: []byte("mx/t"), Payload: []byte(m.payload), QoS: 1, PacketID: uint16(i + 1)}
		if m.expiry > 0 {
			p.Props.Set(codec.PropMessageExpiry)
			p.Props.MessageExpiry = m.expiry
		}
		pub.SendPublish(p)
		pub.ExpectAck(codec.PUBACK, p.PacketID, waitPkt)
		got, _ := receiveAcked(t, watch, "mx/t", m.payload) // routed: queued for mx
		if m.expiry > 0 && (!got.Props.Has(codec.PropMessageExpiry) || got.Props.MessageExpiry > m.expiry) {
			t.Fatalf("live %q: Message Expiry Interval present %v = %d, want 1..%d",
				m.payload, got.Props.Has(codec.PropMessageExpiry), got.Props.MessageExpiry, m.expiry)
		}
	}
	time.Sleep(2 * time.Second) // "short" expires

	again, ack := dial5(t, addr, "mx", false, expiring(60))
	if !ack.SessionPresent {
		t.Fatal("session present 0: the session should have outlived the connection [MQTT-3.1.2-23]")
	}
	got := receiveInOrder(t, again, "mx/t", "long", "none")
	if e := got[0].Props; !e.Has(codec.PropMessageExpiry) || e.MessageExpiry > 59 || e.MessageExpiry < 50 {
		t.Fatalf("after 2 s waiting: Message Expiry Interval present %v = %d, want about 58 [MQTT-3.3.2-6]",
			e.Has(codec.PropMessageExpiry), e.MessageExpiry)
	}
	if got[1].Props.Has(codec.PropMessageExpiry) {
		t.Fatalf("message published without expiry delivered with %d", got[1].Props.MessageExpiry)
	}
	again.ExpectSilence(quietFor)
}

// TestV5ReceiveMaximum: with Receive Maximum 2 the broker has at most two
// unacknowledged QoS 1/2 PUBLISH packets out to the client [MQTT-3.3.4-9];
// each PUBACK lets the next one go, in order.
func TestV5ReceiveMaximum(t *testing.T) {
	t.Parallel()
	_, addr := testutil.StartBroker(t, nil)
	sub, _ := dial5(t, addr, "rmax", true, func(p *codec.Properties) {
		p.Set(codec.PropReceiveMaximum)
		p.ReceiveMaximum = 2
	})
	sub5(t, sub, 1, codec.Subscription{Filter: []byte("rmax/t"), QoS: 2}, nil)
	pub, _ := dial5(t, addr, "rmax-pub", true, nil)
	for i := range 5 {
		publishAcked(t, pub, "rmax/t", fmt.Sprint(i), byte(1+i%2), uint16(i+1), false) // QoS 1, 2, 1, 2, 1
	}
	var out []codec.Publish // sent, not yet acknowledged
	next := 0
	for next < 5 || len(out) > 0 {
		for next < 5 && len(out) < 2 {
			p, _ := sub.ExpectPublish(waitPkt)
			if string(p.Payload) != fmt.Sprint(next) {
				t.Fatalf("got %q, want %d: out of order [MQTT-4.6.0-6]", p.Payload, next)
			}
			out = append(out, p)
			next++
		}
		if len(out) == 2 || next == 5 {
			sub.ExpectSilence(quietFor / 2) // [MQTT-3.3.4-9]
		}
		// Complete the oldest.
		p := out[0]
		out = out[1:]
		if p.QoS == 1 {
			sub.SendAck(codec.PUBACK, p.PacketID)
		} else {
			sub.SendAck(codec.PUBREC, p.PacketID)
			// A successful PUBREC does not free a slot: the exchange counts
			// against Receive Maximum until PUBCOMP, so PUBREL comes next.
			sub.ExpectAck(codec.PUBREL, p.PacketID, waitPkt)
			sub.SendAck(codec.PUBCOMP, p.PacketID)
		}
	}
	sub.ExpectSilence(quietFor)
}

// TestV5MaximumPacketSize: the broker does not send a client a packet
// larger than the Maximum Packet Size it asked for [MQTT-3.1.2-24]; it
// drops it and carries on as if it had been delivered [MQTT-3.1.2-25].
func TestV5MaximumPacketSize(t *testing.T) {
	t.Parallel()
	_, addr := testutil.StartBroker(t, nil)
	sub, _ := dial5(t, addr, "mps", true, func(p *codec.Properties) {
		p.Set(codec.PropMaximumPacketSize)
		p.MaximumPacketSize = 100
		p.Set(codec.PropReceiveMaximum)
		p.ReceiveMaximum = 1 // a dropped QoS 1 message must not hold the only slot
	})
	sub5(t, sub, 1, codec.Subscription{Filter: []byte("mps/t"), QoS: 1}, nil)
	pub, _ := dial5(t, addr, "mps-pub", true, nil)
	big := string(make([]byte, 500))
	publishAcked(t, pub, "mps/t", big, 0, 0, false)
	publishAcked(t, pub, "mps/t", "small0", 0, 0, false)
	publishAcked(t, pub, "mps/t", big, 1, 1, false)
	publishAcked(t, pub, "mps/t", "small1", 1, 2, false)
	// Exactly 100 bytes is allowed: 1 + 1 (length) + 7 (topic) + 2 (id) + 1 (properties) + 88.
	edge := string(make([]byte, 88))
	publishAcked(t, pub, "mps/t", edge, 1, 3, false)
	publishAcked(t, pub, "mps/t", edge+"x", 1, 4, false)
	publishAcked(t, pub, "mps/t", "small2", 1, 5, false)
	receiveAcked(t, sub, "mps/t", "small0")
	receiveAcked(t, sub, "mps/t", "small1")
	receiveAcked(t, sub, "mps/t", edge)
	receiveAcked(t, sub, "mps/t", "small2")
	sub.ExpectSilence(quietFor)
}

// TestV5SessionExpiry: a session with Session Expiry Interval 1 s is gone
// 3 s after its connection closed: session present 0 [MQTT-3.2.2-3] and no
// subscriptions [MQTT-4.1.0-2]; one with 60 s is still there
// [MQTT-3.1.2-23].
func TestV5SessionExpiry(t *testing.T) {
	t.Parallel()
	b, addr, clk := startFakeTime(t, nil, nil)
	short, _ := dial5(t, addr, "se-short", true, expiring(1))
	sub5(t, short, 1, codec.Subscription{Filter: []byte("se/t"), QoS: 1}, nil)
	goOffline(short)
	long, _ := dial5(t, addr, "se-long", true, expiring(60))
	sub5(t, long, 1, codec.Subscription{Filter: []byte("se/t"), QoS: 1}, nil)
	goOffline(long)
	waitPending(t, b, 2)
	advance(t, b, clk, 3*time.Second)

	short, ack := dial5(t, addr, "se-short", false, expiring(60))
	if ack.SessionPresent {
		t.Fatal("session present 1 after its expiry interval passed")
	}
	long, ack = dial5(t, addr, "se-long", false, expiring(60))
	if !ack.SessionPresent {
		t.Fatal("session present 0 within its expiry interval")
	}
	pub, _ := dial5(t, addr, "se-pub", true, nil)
	publishAcked(t, pub, "se/t", "m", 1, 1, false)
	receiveAcked(t, long, "se/t", "m")
	short.ExpectSilence(quietFor) // its subscription ended with the session
}

// TestV5Takeover: a second connection with the client id makes the broker
// send the first DISCONNECT 0x8E (Session taken over) and close it
// [MQTT-3.1.4-3].
func TestV5Takeover(t *testing.T) {
	t.Parallel()
	_, addr := testutil.StartBroker(t, nil)
	first, _ := dial5(t, addr, "take5", true, expiring(60))
	sub5(t, first, 1, codec.Subscription{Filter: []byte("take5/t"), QoS: 1}, nil)
	second, ack := dial5(t, addr, "take5", false, expiring(60))
	if !ack.SessionPresent {
		t.Fatal("takeover with clean start 0: session present 0 [MQTT-3.2.2-3]")
	}
	first.ExpectDisconnect(codec.SessionTakenOver, waitPkt)
	pub, _ := dial5(t, addr, "take5-pub", true, nil)
	publishAcked(t, pub, "take5/t", "m", 1, 1, false)
	receiveAcked(t, second, "take5/t", "m")
}

// dialWill connects id with a will on topic; delay is its Will Delay
// Interval in seconds (0: none).
func dialWill(t *testing.T, addr, id, topic string, delay, sessionExpiry uint32) *testutil.Raw {
	t.Helper()
	c := codec.Connect{ClientID: []byte(id), CleanStart: true, WillFlag: true, WillQoS: 1,
		WillTopic: []byte(topic), WillPayload: []byte("bye " + id)}
	if delay > 0 {
		c.WillProps.Set(codec.PropWillDelay)
		c.WillProps.WillDelay = delay
	}
	if sessionExpiry > 0 {
		expiring(sessionExpiry)(&c.Props)
	}
	r, _ := testutil.DialConnect(t, addr, codec.V5, c)
	return r
}

// TestV5DisconnectWill: DISCONNECT 0x04 (Disconnect with Will Message) has
// the will published (3.14.2.1); DISCONNECT 0x00 discards it
// [MQTT-3.14.4-3], [MQTT-3.1.2-10]; a dropped connection publishes it
// [MQTT-3.1.2-8].
func TestV5DisconnectWill(t *testing.T) {
	t.Parallel()
	_, addr := testutil.StartBroker(t, nil)
	watch, _ := dial5(t, addr, "dw-watch", true, nil)
	sub5(t, watch, 1, codec.Subscription{Filter: []byte("dw/#"), QoS: 1}, nil)

	normal := dialWill(t, addr, "normal", "dw/normal", 0, 0)
	goOffline(normal)
	withWill := dialWill(t, addr, "with-will", "dw/with-will", 0, 0)
	withWill.SendDisconnect(codec.DisconnectWithWill)
	withWill.ExpectClosed(waitPkt)
	receiveAcked(t, watch, "dw/with-will", "bye with-will")
	dropped := dialWill(t, addr, "dropped", "dw/dropped", 0, 0)
	dropped.Drop()
	receiveAcked(t, watch, "dw/dropped", "bye dropped")
	watch.ExpectSilence(quietFor) // no "bye normal"
}

// TestV5WillDelay: with a Will Delay Interval of 2 s the will waits; a
// reconnect to the session within the delay cancels it [MQTT-3.1.3-9],
// otherwise it is published once the delay has passed [MQTT-3.1.2-8].
func TestV5WillDelay(t *testing.T) {
	t.Parallel()
	t.Run("reconnect-cancels", func(t *testing.T) {
		t.Parallel()
		b, addr, clk := startFakeTime(t, nil, nil)
		watch, _ := dial5(t, addr, "wd-watch-1", true, nil)
		sub5(t, watch, 1, codec.Subscription{Filter: []byte("wd1/#"), QoS: 1}, nil)
		w := dialWill(t, addr, "wd-back", "wd1/back", 2, 10)
		w.Drop()
		waitPending(t, b, 1)
		advance(t, b, clk, 1500*time.Millisecond)
		if _, ack := dial5(t, addr, "wd-back", false, expiring(10)); !ack.SessionPresent {
			t.Fatal("session present 0 on reconnect within the session expiry")
		}
		advance(t, b, clk, time.Minute)
		watch.ExpectSilence(quietFor)
	})
	t.Run("published-after-delay", func(t *testing.T) {
		t.Parallel()
		b, addr, clk := startFakeTime(t, nil, nil)
		watch, _ := dial5(t, addr, "wd-watch-2", true, nil)
		sub5(t, watch, 1, codec.Subscription{Filter: []byte("wd2/#"), QoS: 1}, nil)
		w := dialWill(t, addr, "wd-gone", "wd2/gone", 2, 10)
		w.Drop()
		waitPending(t, b, 1)
		advance(t, b, clk, 1999*time.Millisecond)
		watch.ExpectSilence(quietFor) // not before its 2 s delay
		advance(t, b, clk, time.Millisecond)
		receiveAcked(t, watch, "wd2/gone", "bye wd-gone")
	})
}

// TestV5KeepAliveTimeout: a client silent for one and a half keep-alive
// periods gets DISCONNECT 0x8D (Keep Alive timeout) and is closed
// [MQTT-3.1.2-22].
func TestV5KeepAliveTimeout(t *testing.T) {
	t.Parallel()
	_, addr := testutil.StartBroker(t, nil)
	r := testutil.Dial(t, addr, codec.V5)
	r.Connect(codec.Connect{ClientID: []byte("ka5"), CleanStart: true, KeepAlive: 1})
	start := time.Now()
	r.ExpectDisconnect(codec.KeepAliveTimeout, 4*time.Second)
	if el := time.Since(start); el < time.Second {
		t.Fatalf("disconnected after %v, before one keep-alive period", el)
	}
}
