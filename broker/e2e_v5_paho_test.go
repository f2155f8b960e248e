package broker_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	"github.com/eclipse/paho.golang/paho/log"
	"github.com/shoalmq/shoal/broker"
	"github.com/shoalmq/shoal/codec"
	"github.com/shoalmq/shoal/internal/testutil"
)

// End-to-end MQTT 5.0 tests with Eclipse Paho's Go v5 client
// (github.com/eclipse/paho.golang v0.23.0, package paho), a client nobody
// here wrote. Clause ids are MQTT 5.0's (OASIS Standard, 7 March 2019);
// behaviour the standard describes without a numbered statement is cited
// by section.
//
// Where paho hides what the broker sent — it keeps one Subscription
// Identifier per PUBLISH, and AuthResponse drops the Authentication Data of
// AUTH 0x00 — a test decodes the bytes paho read through p5Tap. Where paho
// refuses to send what a test needs, the test says how it gets around
// that (PublishHook, which runs after paho's checks, or a raw connection).
//
// This file: helpers and CONNACK. Publishing, aliases and flow control are
// in e2e_v5_paho_publish_test.go; subscriptions and shared subscriptions in
// e2e_v5_paho_subscribe_test.go; wills, server DISCONNECTs, enhanced
// authentication and mixed versions in e2e_v5_paho_session_test.go.

const (
	// p5Wait is the longest wait for one thing the broker owes. Seconds,
	// not milliseconds: in a cluster a message to another node crosses a
	// replicated stream, which on a loaded 2-core machine, or while
	// JetStream moves a leader just after the nodes start, can take
	// seconds. Only a failing test waits it out.
	p5Wait  = 10 * time.Second
	p5Quiet = 300 * time.Millisecond // how long "nothing arrives" is watched
)

// p5Tap is a paho client's net.Conn. It keeps a copy of every byte read
// from and written to the broker, so a test can decode what paho's API does
// not show.
//
// It is a sync.Locker because paho writes a packet as several Write calls
// on a wrapped conn (net.Buffers.WriteTo only uses writev on the bare
// *net.TCPConn) and takes the lock around them when the conn offers one
// (packets.ControlPacket.WriteTo); without it, the pinger's PINGREQ can land
// inside another packet and the broker rightly answers 0x81.
type p5Tap struct {
	net.Conn
	wmu     sync.Mutex // one packet write at a time
	mu      sync.Mutex // guards in and out
	in, out []byte
}

func (c *p5Tap) Lock()   { c.wmu.Lock() }
func (c *p5Tap) Unlock() { c.wmu.Unlock() }

func (c *p5Tap) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.mu.Lock()
		c.in = append(c.in, b[:n]...)
		c.mu.Unlock()
	}
	return n, err
}

func (c *p5Tap) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	if n > 0 {
		c.mu.Lock()
		c.out = append(c.out, b[:n]...)
		c.mu.Unlock()
	}
	return n, err
}

// frames decodes every complete packet seen so far: sent by the broker
// (fromBroker) or by paho.
func (c *p5Tap) frames(t *testing.T, fromBroker bool) []testutil.Frame {
	t.Helper()
	c.mu.Lock()
	b := c.out
	if fromBroker {
		b = c.in
	}
	b = bytes.Clone(b)
	c.mu.Unlock()
	var d codec.Decoder
	_, _ = d.Write(b)
	var out []testutil.Frame
	for {
		h, body, ok, err := d.Next()
		if err != nil {
			t.Fatalf("decoding the tapped stream: %v", err)
		}
		if !ok {
			return out
		}
		out = append(out, testutil.Frame{Header: h, Body: bytes.Clone(body)})
	}
}

// publishes returns the PUBLISH packets the broker sent, decoded as an
// MQTT 5 client decodes them (several Subscription Identifiers allowed).
func (c *p5Tap) publishes(t *testing.T) []codec.Publish {
	t.Helper()
	var out []codec.Publish
	for _, f := range c.frames(t, true) {
		if f.Header.Type != codec.PUBLISH {
			continue
		}
		var p codec.Publish
		if err := p.DecodeClient(f.Header.Flags, f.Body, codec.V5); err != nil {
			t.Fatalf("PUBLISH from the broker: %v (body % x)", err, f.Body)
		}
		out = append(out, p)
	}
	return out
}

// p5Client is a connected paho client and what it received.
type p5Client struct {
	*paho.Client
	tap  *p5Tap
	msgs chan *paho.Publish    // every PUBLISH, in arrival order
	disc chan *paho.Disconnect // a DISCONNECT from the broker
}

// p5CP is a CONNECT for id with Clean Start and a 30 s keep-alive.
func p5CP(id string) *paho.Connect {
	return &paho.Connect{ClientID: id, CleanStart: true, KeepAlive: 30}
}

// p5Expiry is a CONNECT for id with Session Expiry Interval expiry.
func p5Expiry(id string, clean bool, expiry uint32) *paho.Connect {
	cp := p5CP(id)
	cp.CleanStart = clean
	cp.Properties = &paho.ConnectProperties{SessionExpiryInterval: paho.Uint32(expiry)}
	return cp
}

// p5Connect dials addr and connects with cp; edit (may be nil) changes the
// client's config first. It returns the client, the CONNACK (nil if none
// came) and paho's error. A connected client is disconnected normally when
// the test ends.
func p5Connect(t *testing.T, addr string, cp *paho.Connect, edit func(*paho.ClientConfig)) (*p5Client, *paho.Connack, error) {
	t.Helper()
	return p5ConnectWithin(t, addr, cp, edit, p5Wait)
}

// p5ConnectWithin is p5Connect waiting up to wait for the CONNACK.
func p5ConnectWithin(t *testing.T, addr string, cp *paho.Connect, edit func(*paho.ClientConfig), wait time.Duration) (*p5Client, *paho.Connack, error) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, p5Wait)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	c := &p5Client{
		tap:  &p5Tap{Conn: conn},
		msgs: make(chan *paho.Publish, 1024),
		disc: make(chan *paho.Disconnect, 1),
	}
	done := make(chan struct{})
	cfg := paho.ClientConfig{
		ClientID: cp.ClientID,
		Conn:     c.tap,
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){
			func(pr paho.PublishReceived) (bool, error) {
				select {
				case c.msgs <- pr.Packet:
				case <-done: // the test is over: don't hold paho's shutdown
				}
				return true, nil
			},
		},
		OnServerDisconnect: func(d *paho.Disconnect) {
			select {
			case c.disc <- d:
			default:
			}
		},
		OnClientError: func(error) {},
	}
	if edit != nil {
		edit(&cfg)
	}
	c.Client = paho.NewClient(cfg)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	ack, err := c.Connect(ctx, cp)
	if err != nil {
		_ = conn.Close()
		return c, ack, err
	}
	// Cleanups run last-in first-out: unblock the handler, then disconnect.
	t.Cleanup(func() { _ = c.Disconnect(&paho.Disconnect{ReasonCode: 0}) })
	t.Cleanup(func() { close(done) })
	return c, ack, nil
}

// p5Dial is p5Connect failing the test unless the broker accepts.
func p5Dial(t *testing.T, addr string, cp *paho.Connect, edit func(*paho.ClientConfig)) (*p5Client, *paho.Connack) {
	t.Helper()
	c, ack, err := p5Connect(t, addr, cp, edit)
	if err != nil {
		t.Fatalf("connect %q: %v (CONNACK %+v)", cp.ClientID, err, ack)
	}
	return c, ack
}

func p5Ctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), p5Wait)
	t.Cleanup(cancel)
	return ctx
}

// sub subscribes to one filter and fails unless it is granted qos.
func (c *p5Client) sub(t *testing.T, filter string, qos byte) {
	t.Helper()
	c.subWith(t, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: filter, QoS: qos}}}, qos)
}

// subWith sends s (one filter) and fails unless it is granted qos.
func (c *p5Client) subWith(t *testing.T, s *paho.Subscribe, qos byte) {
	t.Helper()
	sa, err := c.Subscribe(p5Ctx(t), s)
	if err != nil {
		t.Fatalf("%s: subscribe %+v: %v", c.ClientID(), s.Subscriptions, err)
	}
	if len(sa.Reasons) != 1 || sa.Reasons[0] != qos {
		t.Fatalf("%s: SUBACK %v for %q, want [%d]", c.ClientID(), sa.Reasons, s.Subscriptions[0].Topic, qos)
	}
}

// pub publishes and, for QoS 1 and 2, waits for the acknowledgement.
func (c *p5Client) pub(t *testing.T, p *paho.Publish) {
	t.Helper()
	if _, err := c.Publish(p5Ctx(t), p); err != nil {
		t.Fatalf("%s: publish to %q: %v", c.ClientID(), p.Topic, err)
	}
}

// say publishes a property-less message.
func (c *p5Client) say(t *testing.T, topic, payload string, qos byte) {
	t.Helper()
	c.pub(t, &paho.Publish{Topic: topic, QoS: qos, Payload: []byte(payload)})
}

// next returns the next PUBLISH received, failing after p5Wait.
func (c *p5Client) next(t *testing.T) *paho.Publish {
	t.Helper()
	select {
	case p := <-c.msgs:
		return p
	case <-time.After(p5Wait):
		t.Fatalf("%s: no PUBLISH within %v", c.ClientID(), p5Wait)
		return nil
	}
}

// expect returns the next PUBLISH, failing unless it has topic and payload.
func (c *p5Client) expect(t *testing.T, topic, payload string) *paho.Publish {
	t.Helper()
	p := c.next(t)
	if p.Topic != topic || string(p.Payload) != payload {
		t.Fatalf("%s: got %q on %q, want %q on %q", c.ClientID(), p.Payload, p.Topic, payload, topic)
	}
	return p
}

// quiet fails if a PUBLISH arrives within p5Quiet.
func (c *p5Client) quiet(t *testing.T) {
	t.Helper()
	select {
	case p := <-c.msgs:
		t.Fatalf("%s: got %q on %q, want nothing", c.ClientID(), p.Payload, p.Topic)
	case <-time.After(p5Quiet):
	}
}

// drain returns what arrives until nothing has for p5Quiet.
func (c *p5Client) drain() []*paho.Publish {
	var got []*paho.Publish
	for {
		select {
		case p := <-c.msgs:
			got = append(got, p)
		case <-time.After(p5Quiet):
			return got
		}
	}
}

// serverDisconnect waits for a DISCONNECT from the broker and fails unless
// it carries reason code want.
func (c *p5Client) serverDisconnect(t *testing.T, want byte) {
	t.Helper()
	select {
	case d := <-c.disc:
		if d.ReasonCode != want {
			reason := ""
			if d.Properties != nil {
				reason = d.Properties.ReasonString
			}
			t.Fatalf("%s: DISCONNECT reason %#02x (%q), want %#02x", c.ClientID(), d.ReasonCode, reason, want)
		}
	case <-time.After(p5Wait):
		t.Fatalf("%s: no DISCONNECT from the broker within %v (want reason %#02x)", c.ClientID(), p5Wait, want)
	}
}

// bye sends a normal DISCONNECT (0x00).
func (c *p5Client) bye(t *testing.T) {
	t.Helper()
	if err := c.Disconnect(&paho.Disconnect{ReasonCode: 0}); err != nil {
		t.Fatalf("%s: DISCONNECT: %v", c.ClientID(), err)
	}
}

// p5NoPinger is a paho Pinger that never pings, to let a keep-alive lapse.
type p5NoPinger struct{}

func (p5NoPinger) Run(ctx context.Context, _ net.Conn, _ uint16) error { <-ctx.Done(); return nil }
func (p5NoPinger) PacketSent()                                         {}
func (p5NoPinger) PacketReceived()                                     {}
func (p5NoPinger) PingResp()                                           {}
func (p5NoPinger) SetDebug(log.Logger)                                 {}

// TestV5PahoConnack: what CONNACK tells a paho client, and that the broker
// then acts on it.
func TestV5PahoConnack(t *testing.T) {
	t.Parallel()

	// Clean Start 0 resumes the session, 1 discards it: [MQTT-3.1.2-4],
	// [MQTT-3.1.2-5], Session Present [MQTT-3.2.2-2], [MQTT-3.2.2-3].
	t.Run("clean-start", func(t *testing.T) {
		t.Parallel()
		_, addr := testutil.StartBroker(t, nil)
		pub, _ := p5Dial(t, addr, p5CP("cs-pub"), nil)
		c1, ack := p5Dial(t, addr, p5Expiry("cs", true, 60), nil)
		if ack.SessionPresent {
			t.Fatal("first CONNECT: Session Present 1, want 0 [MQTT-3.2.2-2]")
		}
		c1.sub(t, "cs/t", 1)
		c1.bye(t)

		c2, ack := p5Dial(t, addr, p5Expiry("cs", false, 60), nil)
		if !ack.SessionPresent {
			t.Fatal("Clean Start 0 on a stored session: Session Present 0, want 1 [MQTT-3.2.2-3]")
		}
		pub.say(t, "cs/t", "resumed", 1)
		c2.expect(t, "cs/t", "resumed") // the subscription came back with the session [MQTT-3.1.2-5]
		c2.bye(t)

		c3, ack := p5Dial(t, addr, p5Expiry("cs", true, 60), nil)
		if ack.SessionPresent {
			t.Fatal("Clean Start 1: Session Present 1, want 0 [MQTT-3.2.2-2]")
		}
		pub.say(t, "cs/t", "discarded", 1)
		c3.quiet(t) // the old subscription went with the old session [MQTT-3.1.2-4]
	})

	// Session Expiry Interval (3.1.2.11.2): 0 ends the session with the
	// connection; N keeps it N seconds [MQTT-3.1.2-23], then it is
	// discarded [MQTT-4.1.0-2]; 0xFFFFFFFF never expires.
	t.Run("session-expiry", func(t *testing.T) {
		t.Parallel()
		b, addr, clk := startFakeTime(t, nil, nil)
		c, _ := p5Dial(t, addr, p5CP("se0"), nil) // no property: 0
		c.sub(t, "se/t", 1)
		c.bye(t)
		testutil.Eventually(t, p5Wait, "session se0 to end with its connection", func() bool { return b.SessionCount() == 0 })
		c, ack := p5Dial(t, addr, p5Expiry("se0", false, 0), nil)
		if ack.SessionPresent {
			t.Fatal("expiry 0: Session Present 1 after the connection closed, want 0")
		}
		c.bye(t)

		for _, id := range []string{"se1", "se60", "semax"} {
			exp := map[string]uint32{"se1": 1, "se60": 60, "semax": 0xFFFFFFFF}[id]
			c, _ := p5Dial(t, addr, p5Expiry(id, true, exp), nil)
			c.sub(t, "se/t", 1)
			c.bye(t)
		}
		// se1 is still there at once...
		c, ack = p5Dial(t, addr, p5Expiry("se1", false, 1), nil)
		if !ack.SessionPresent {
			t.Fatal("expiry 1, reconnecting at once: Session Present 0, want 1 [MQTT-3.1.2-23]")
		}
		c.bye(t)
		// ... but not 3 s after its connection closed. (Deadlines wait for
		// se1 and se60; semax has none.)
		waitPending(t, b, 2)
		advance(t, b, clk, 3*time.Second)
		for _, tc := range []struct {
			id      string
			exp     uint32
			present bool
		}{{"se1", 1, false}, {"se60", 60, true}, {"semax", 0xFFFFFFFF, true}} {
			c, ack := p5Dial(t, addr, p5Expiry(tc.id, false, tc.exp), nil)
			if ack.SessionPresent != tc.present {
				t.Errorf("expiry %#x, reconnecting after 3 s: Session Present %v, want %v", tc.exp, ack.SessionPresent, tc.present)
			}
			c.bye(t)
		}
	})

	// The broker's limits: Receive Maximum (3.2.2.3.3), Maximum Packet Size
	// (3.2.2.3.6), Topic Alias Maximum (3.2.2.3.8); Maximum QoS and Retain
	// Available are absent when everything is supported (3.2.2.3.4-5).
	t.Run("limits", func(t *testing.T) {
		t.Parallel()
		_, addr := testutil.StartBroker(t, func(c *broker.Config) {
			c.ReceiveMaximum = 100
			c.MaxPacketSize = 65536
			c.TopicAliasMaximum = 16
		})
		_, ack := p5Dial(t, addr, p5CP("limits"), nil)
		p := ack.Properties
		switch {
		case p.ReceiveMaximum == nil || *p.ReceiveMaximum != 100:
			t.Errorf("Receive Maximum %v, want 100", p5Ptr(p.ReceiveMaximum))
		case p.MaximumPacketSize == nil || *p.MaximumPacketSize != 65536:
			t.Errorf("Maximum Packet Size %v, want 65536", p5Ptr(p.MaximumPacketSize))
		case p.TopicAliasMaximum == nil || *p.TopicAliasMaximum != 16:
			t.Errorf("Topic Alias Maximum %v, want 16", p5Ptr(p.TopicAliasMaximum))
		case p.MaximumQoS != nil:
			t.Errorf("Maximum QoS %d sent by a broker supporting QoS 2", *p.MaximumQoS)
		case !p.RetainAvailable || !p.WildcardSubAvailable || !p.SubIDAvailable || !p.SharedSubAvailable:
			t.Errorf("a feature announced unavailable: %+v", p)
		case p.AssignedClientID != "" || p.ServerKeepAlive != nil:
			t.Errorf("Assigned Client Identifier %q / Server Keep Alive %v for a client that needs neither",
				p.AssignedClientID, p5Ptr(p.ServerKeepAlive))
		}
	})

	// A zero-length client id gets a unique Assigned Client Identifier
	// [MQTT-3.1.3-6], [MQTT-3.2.2-16], and the CONNECT is processed as if the
	// client had sent it [MQTT-3.1.3-7]: the session can be resumed by it.
	t.Run("assigned-client-id", func(t *testing.T) {
		t.Parallel()
		_, addr := testutil.StartBroker(t, nil)
		c1, ack1 := p5Dial(t, addr, p5Expiry("", true, 60), nil)
		_, ack2 := p5Dial(t, addr, p5CP(""), nil)
		id1, id2 := ack1.Properties.AssignedClientID, ack2.Properties.AssignedClientID
		if id1 == "" || id2 == "" || id1 == id2 {
			t.Fatalf("Assigned Client Identifiers %q and %q, want two different non-empty ids [MQTT-3.2.2-16]", id1, id2)
		}
		if c1.ClientID() != id1 {
			t.Fatalf("paho took the id %q, want the assigned %q", c1.ClientID(), id1)
		}
		c1.sub(t, "aid/t", 1)
		c1.bye(t)
		_, ack := p5Dial(t, addr, p5Expiry(id1, false, 60), nil)
		if !ack.SessionPresent {
			t.Fatalf("reconnecting as %q: Session Present 0, want 1 [MQTT-3.1.3-7]", id1)
		}
		if ack.Properties.AssignedClientID != "" {
			t.Fatalf("Assigned Client Identifier %q for a client that sent one", ack.Properties.AssignedClientID)
		}
	})

	// A keep-alive above Config.MaxKeepAlive (or 0, no keep-alive) comes back
	// as Server Keep Alive, which the client must use [MQTT-3.2.2-21]; one
	// within it is the client's own and no property is sent [MQTT-3.2.2-22].
	t.Run("server-keep-alive", func(t *testing.T) {
		t.Parallel()
		_, addr := testutil.StartBroker(t, func(c *broker.Config) { c.MaxKeepAlive = 5 })
		for _, tc := range []struct {
			asked uint16
			want  *uint16
		}{{60, paho.Uint16(5)}, {0, paho.Uint16(5)}, {3, nil}, {5, nil}} {
			cp := p5CP(fmt.Sprint("ska-", tc.asked))
			cp.KeepAlive = tc.asked
			_, ack := p5Dial(t, addr, cp, nil)
			got := ack.Properties.ServerKeepAlive
			if (got == nil) != (tc.want == nil) || (got != nil && *got != *tc.want) {
				t.Errorf("keep-alive %d: Server Keep Alive %v, want %v", tc.asked, p5Ptr(got), p5Ptr(tc.want))
			}
		}
	})

	// Response Information is returned only when asked for (3.1.2.11.7,
	// 3.2.2.3.15), never otherwise [MQTT-3.1.2-28].
	t.Run("response-information", func(t *testing.T) {
		t.Parallel()
		_, addr := testutil.StartBroker(t, func(c *broker.Config) { c.ResponseInformation = "shoal/resp/" })
		for _, ask := range []bool{true, false} {
			cp := p5CP(fmt.Sprint("ri-", ask))
			cp.Properties = &paho.ConnectProperties{RequestResponseInfo: ask}
			_, ack := p5Dial(t, addr, cp, nil)
			want := map[bool]string{true: "shoal/resp/", false: ""}[ask]
			if got := ack.Properties.ResponseInfo; got != want {
				t.Errorf("Request Response Information %v: Response Information %q, want %q", ask, got, want)
			}
		}
	})

	// Maximum QoS 1 (3.2.2.3.4): announced [MQTT-3.2.2-9]; paho then refuses
	// QoS 2 itself [MQTT-3.2.2-11]; SUBSCRIBE at QoS 2 is still accepted and
	// granted 1 [MQTT-3.2.2-10]; a PUBLISH at QoS 2 is answered with
	// DISCONNECT 0x9B. paho won't send that PUBLISH, so a PublishHook (which
	// runs after paho's checks) raises the QoS on the way out.
	t.Run("maximum-qos", func(t *testing.T) {
		t.Parallel()
		_, addr := testutil.StartBroker(t, func(c *broker.Config) { c.MaxQoS = 1 })
		c, ack := p5Dial(t, addr, p5CP("mq"), func(cfg *paho.ClientConfig) {
			cfg.PublishHook = func(p *paho.Publish) {
				if p.Topic == "mq/force" {
					p.QoS = 2
				}
			}
		})
		if q := ack.Properties.MaximumQoS; q == nil || *q != 1 {
			t.Fatalf("Maximum QoS %v, want 1 [MQTT-3.2.2-9]", p5Ptr(q))
		}
		if _, err := c.Publish(p5Ctx(t), &paho.Publish{Topic: "mq/t", QoS: 2}); !errors.Is(err, paho.ErrInvalidArguments) {
			t.Fatalf("paho sent QoS 2 to a Maximum QoS 1 broker: %v", err)
		}
		c.sub(t, "mq/t", 1) // asked 2 below, granted 1
		c.subWith(t, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "mq/q2", QoS: 2}}}, 1)
		ctx := p5Ctx(t)
		go func() { _, _ = c.Publish(ctx, &paho.Publish{Topic: "mq/force", QoS: 1, Payload: []byte("x")}) }() // answered by DISCONNECT, not PUBACK
		c.serverDisconnect(t, byte(codec.QoSNotSupported))
	})

	// A Will QoS above Maximum QoS must be refused at CONNECT, with CONNACK
	// 0x9B [MQTT-3.2.2-12].
	t.Run("will-qos-above-maximum", func(t *testing.T) {
		t.Parallel()
		_, addr := testutil.StartBroker(t, func(c *broker.Config) { c.MaxQoS = 1 })
		cp := p5CP("mq-will")
		cp.WillMessage = &paho.WillMessage{Topic: "mq/will", QoS: 2, Payload: []byte("w")}
		_, ack, err := p5Connect(t, addr, cp, nil)
		if err == nil || ack == nil || ack.ReasonCode != byte(codec.QoSNotSupported) {
			t.Fatalf("CONNECT with Will QoS 2 to a Maximum QoS 1 broker: CONNACK %s, err %v; want 0x9B [MQTT-3.2.2-12]", p5Code(ack), err)
		}
	})

	// Retain Available 0 (3.2.2.3.5): announced; paho then refuses RETAIN
	// [MQTT-3.2.2-14]; a retained PUBLISH (sent through a PublishHook, as
	// above) is answered with DISCONNECT 0x9A.
	t.Run("retain-unavailable", func(t *testing.T) {
		t.Parallel()
		_, addr := testutil.StartBroker(t, func(c *broker.Config) { c.RetainAvailable = false })
		c, ack := p5Dial(t, addr, p5CP("ra"), func(cfg *paho.ClientConfig) {
			cfg.PublishHook = func(p *paho.Publish) { p.Retain = p.Topic == "ra/force" }
		})
		if ack.Properties.RetainAvailable {
			t.Fatal("Retain Available absent or 1, want 0")
		}
		if _, err := c.Publish(p5Ctx(t), &paho.Publish{Topic: "ra/t", Retain: true}); !errors.Is(err, paho.ErrInvalidArguments) {
			t.Fatalf("paho sent RETAIN to a broker without retained messages: %v", err)
		}
		c.say(t, "ra/t", "not retained", 1) // the connection still works
		_, _ = c.Publish(p5Ctx(t), &paho.Publish{Topic: "ra/force", Payload: []byte("x")})
		c.serverDisconnect(t, byte(codec.RetainNotSupported))
	})

	// A Will with Will Retain 1 must be refused at CONNECT when retained
	// messages are not available, with CONNACK 0x9A [MQTT-3.2.2-13].
	t.Run("will-retain-unavailable", func(t *testing.T) {
		t.Parallel()
		_, addr := testutil.StartBroker(t, func(c *broker.Config) { c.RetainAvailable = false })
		cp := p5CP("ra-will")
		cp.WillMessage = &paho.WillMessage{Topic: "ra/will", Retain: true, Payload: []byte("w")}
		_, ack, err := p5Connect(t, addr, cp, nil)
		if err == nil || ack == nil || ack.ReasonCode != byte(codec.RetainNotSupported) {
			t.Fatalf("CONNECT with Will Retain to a broker without retained messages: CONNACK %s, err %v; want 0x9A [MQTT-3.2.2-13]", p5Code(ack), err)
		}
	})
}

// p5Ptr prints an optional property.
func p5Ptr[T any](p *T) string {
	if p == nil {
		return "absent"
	}
	return fmt.Sprint(*p)
}

// p5Code prints a CONNACK's reason code.
func p5Code(ack *paho.Connack) string {
	if ack == nil {
		return "none"
	}
	return fmt.Sprintf("%#02x", ack.ReasonCode)
}
