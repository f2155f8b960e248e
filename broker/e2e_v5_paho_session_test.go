package broker_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	"github.com/shoalmq/shoal/auth"
	"github.com/shoalmq/shoal/auth/scram"
	"github.com/shoalmq/shoal/broker"
	"github.com/shoalmq/shoal/codec"
	"github.com/shoalmq/shoal/internal/testutil"
)

// MQTT 5 end-to-end tests with paho, part 4: wills, DISCONNECT from the
// server, enhanced authentication, and MQTT 3.1.1 and 5 clients together.
// Helpers are in e2e_v5_paho_test.go.

// p5Will is a CONNECT for id with a will on topic, the given Will Delay
// Interval and a session that outlives the connection by 60 s (the delay
// only matters while the session lives: 3.1.3.2.2).
func p5Will(id, topic string, delay uint32) *paho.Connect {
	cp := p5Expiry(id, true, 60)
	cp.WillMessage = &paho.WillMessage{Topic: topic, QoS: 1, Payload: []byte("gone:" + id)}
	cp.WillProperties = &paho.WillProperties{WillDelayInterval: paho.Uint32(delay)}
	return cp
}

// TestV5PahoWill: the will is published after an abnormal close
// [MQTT-3.1.2-8], after its Will Delay Interval (3.1.3.2.2) unless the
// client reconnects first [MQTT-3.1.3-9], with its properties (3.1.3.2),
// after DISCONNECT 0x04 (3.14.2.1), and never after a normal DISCONNECT
// [MQTT-3.1.2-10], [MQTT-3.14.4-3]. paho's TerminateConnectionForTest
// closes the TCP connection without DISCONNECT.
func TestV5PahoWill(t *testing.T) {
	t.Parallel()
	watcher := func(t *testing.T, addr, filter string) *p5Client {
		w, _ := p5Dial(t, addr, p5CP("watcher"), nil) // each subtest has its own broker
		w.sub(t, filter, 1)
		return w
	}

	t.Run("delay-then-reconnect", func(t *testing.T) {
		t.Parallel()
		b, addr, clk := startFakeTime(t, nil, nil)
		w := watcher(t, addr, "will/#")
		c, _ := p5Dial(t, addr, p5Will("wd-back", "will/back", 2), nil)
		c.TerminateConnectionForTest()
		waitPending(t, b, 1)
		advance(t, b, clk, 1500*time.Millisecond)
		c2, ack := p5Dial(t, addr, p5Expiry("wd-back", false, 60), nil)
		if !ack.SessionPresent {
			t.Fatal("Session Present 0 on reconnecting within the expiry")
		}
		advance(t, b, clk, time.Second)
		w.quiet(t) // reconnected in time: no will [MQTT-3.1.3-9]
		c2.bye(t)
	})

	t.Run("delay-elapses", func(t *testing.T) {
		t.Parallel()
		b, addr, clk := startFakeTime(t, nil, nil)
		w := watcher(t, addr, "will/#")
		c, _ := p5Dial(t, addr, p5Will("wd-gone", "will/gone", 2), nil)
		c.TerminateConnectionForTest()
		waitPending(t, b, 1)
		advance(t, b, clk, 1999*time.Millisecond)
		w.quiet(t) // not before its 2 s Will Delay Interval
		advance(t, b, clk, time.Millisecond)
		w.expect(t, "will/gone", "gone:wd-gone")
	})

	// Will properties are forwarded like a PUBLISH's, User Properties in
	// order [MQTT-3.1.3-10]. paho v0.23.0 packs Will Properties as CONNECT
	// properties, which drops Content Type, Payload Format Indicator,
	// Response Topic, Correlation Data and Message Expiry (packets.Properties
	// .Pack writes those for PUBLISH only); so the paho client carries User
	// Properties, and a raw CONNECT (testutil) carries the rest.
	t.Run("properties", func(t *testing.T) {
		t.Parallel()
		_, addr := testutil.StartBroker(t, nil)
		w := watcher(t, addr, "will/#")
		users := paho.UserProperties{{Key: "k1", Value: "v1"}, {Key: "k2", Value: "v2"}, {Key: "k1", Value: "v3"}}
		cp := p5Will("wp-paho", "will/paho", 0)
		cp.WillProperties.User = users
		c, _ := p5Dial(t, addr, cp, nil)
		c.TerminateConnectionForTest()
		got := w.expect(t, "will/paho", "gone:wp-paho") // no delay: at once [MQTT-3.1.2-8]
		if !slices.Equal(got.Properties.User, users) {
			t.Errorf("will User Properties %q, want %q in order [MQTT-3.1.3-10]", got.Properties.User, users)
		}

		raw := testutil.Dial(t, addr, codec.V5)
		conn := codec.Connect{ClientID: []byte("wp-raw"), CleanStart: true, WillFlag: true, WillQoS: 1,
			WillTopic: []byte("will/raw"), WillPayload: []byte("gone:wp-raw")}
		wp := &conn.WillProps
		for _, id := range []codec.PropID{codec.PropPayloadFormat, codec.PropContentType, codec.PropResponseTopic,
			codec.PropCorrelationData, codec.PropMessageExpiry, codec.PropUser} {
			wp.Set(id)
		}
		wp.PayloadFormat, wp.ContentType, wp.ResponseTopic = 1, []byte("text/plain"), []byte("will/reply")
		wp.CorrelationData, wp.MessageExpiry = []byte{0xca, 0xfe}, 60
		wp.User = []codec.UserProperty{{Key: []byte("why"), Value: []byte("crash")}}
		if ack := raw.Connect(conn); ack.Code != codec.Success {
			t.Fatalf("raw CONNECT with a will: CONNACK %v", ack.Code)
		}
		raw.Drop()
		p := w.expect(t, "will/raw", "gone:wp-raw").Properties
		if p.ContentType != "text/plain" || p.PayloadFormat == nil || *p.PayloadFormat != 1 || p.ResponseTopic != "will/reply" ||
			string(p.CorrelationData) != "\xca\xfe" || p.MessageExpiry == nil || *p.MessageExpiry > 60 ||
			!slices.Equal(p.User, paho.UserProperties{{Key: "why", Value: "crash"}}) {
			t.Errorf("will properties: content type %q, format %s, response topic %q, correlation % x, expiry %s, user %q",
				p.ContentType, p5Ptr(p.PayloadFormat), p.ResponseTopic, p.CorrelationData, p5Ptr(p.MessageExpiry), p.User)
		}
	})

	t.Run("disconnect-with-will", func(t *testing.T) {
		t.Parallel()
		_, addr := testutil.StartBroker(t, nil)
		w := watcher(t, addr, "will/#")
		c, _ := p5Dial(t, addr, p5Will("w04", "will/04", 0), nil)
		if err := c.Disconnect(&paho.Disconnect{ReasonCode: 0x04}); err != nil {
			t.Fatalf("DISCONNECT 0x04: %v", err)
		}
		w.expect(t, "will/04", "gone:w04") // 0x04: publish the will anyway (3.14.2.1)
	})

	t.Run("normal-disconnect", func(t *testing.T) {
		t.Parallel()
		_, addr := testutil.StartBroker(t, nil)
		w := watcher(t, addr, "will/#")
		c, _ := p5Dial(t, addr, p5Will("w00", "will/00", 0), nil)
		c.bye(t)
		w.quiet(t) // 0x00: the will is discarded [MQTT-3.1.2-10], [MQTT-3.14.4-3]
	})
}

// TestV5PahoServerDisconnect: DISCONNECT from the broker, with the reason
// code paho's OnServerDisconnect reports (3.14.2.1), then the connection
// closes [MQTT-3.14.4-2].
func TestV5PahoServerDisconnect(t *testing.T) {
	t.Parallel()

	// A second connection with the same client id takes the session over:
	// the first gets 0x8E [MQTT-3.1.4-3].
	t.Run("session-taken-over-0x8E", func(t *testing.T) {
		t.Parallel()
		_, addr := testutil.StartBroker(t, nil)
		first, _ := p5Dial(t, addr, p5CP("same"), nil)
		second, _ := p5Dial(t, addr, p5Expiry("same", false, 0), nil)
		first.serverDisconnect(t, byte(codec.SessionTakenOver))
		second.sub(t, "to/t", 1) // the new connection works
		second.say(t, "to/t", "still here", 1)
		second.expect(t, "to/t", "still here")
	})

	// Broker.Close tells MQTT 5 clients 0x8B, Server shutting down.
	t.Run("server-shutting-down-0x8B", func(t *testing.T) {
		t.Parallel()
		b, addr := testutil.StartBroker(t, nil)
		c, _ := p5Dial(t, addr, p5CP("bye-server"), nil)
		ctx, cancel := context.WithTimeout(context.Background(), p5Wait)
		defer cancel()
		if err := b.Close(ctx); err != nil {
			t.Fatalf("Close: %v", err)
		}
		c.serverDisconnect(t, byte(codec.ServerShuttingDown))
	})

	// A Topic Alias above the broker's Topic Alias Maximum (64 by default)
	// gets 0x94, Topic Alias invalid (3.3.2.3.4). paho refuses to send it
	// [MQTT-3.3.2-9], so a PublishHook sets it after paho's check.
	t.Run("topic-alias-invalid-0x94", func(t *testing.T) {
		t.Parallel()
		_, addr := testutil.StartBroker(t, nil)
		c, ack := p5Dial(t, addr, p5CP("alias-big"), func(cfg *paho.ClientConfig) {
			cfg.PublishHook = func(p *paho.Publish) {
				if p.Topic == "ta/force" {
					p.Properties = &paho.PublishProperties{TopicAlias: paho.Uint16(65)}
				}
			}
		})
		if m := ack.Properties.TopicAliasMaximum; m == nil || *m != 64 {
			t.Fatalf("Topic Alias Maximum %s, want 64", p5Ptr(m))
		}
		_, err := c.Publish(p5Ctx(t), &paho.Publish{Topic: "ta/t", Properties: &paho.PublishProperties{TopicAlias: paho.Uint16(65)}})
		if err == nil {
			t.Fatal("paho sent Topic Alias 65 to a broker with Topic Alias Maximum 64")
		}
		_, _ = c.Publish(p5Ctx(t), &paho.Publish{Topic: "ta/force", Payload: []byte("x")})
		c.serverDisconnect(t, byte(codec.TopicAliasInvalid))
	})

	// More QoS 2 PUBLISH packets awaiting PUBREL than the broker's Receive
	// Maximum 2 get 0x93 [MQTT-3.3.4-7], 3.3.4. paho's send quota honours
	// the Receive Maximum from CONNACK (session/state/sendquota.go) and
	// would block the third PUBLISH rather than send it, so this one uses a
	// raw connection that never sends PUBREL.
	t.Run("receive-maximum-exceeded-0x93", func(t *testing.T) {
		t.Parallel()
		_, addr := testutil.StartBroker(t, func(c *broker.Config) { c.ReceiveMaximum = 2 })
		r, ack := testutil.DialConnect(t, addr, codec.V5, codec.Connect{ClientID: []byte("rm-raw"), CleanStart: true})
		if !ack.Props.Has(codec.PropReceiveMaximum) || ack.Props.ReceiveMaximum != 2 {
			t.Fatalf("CONNACK Receive Maximum %d, want 2", ack.Props.ReceiveMaximum)
		}
		for id := uint16(1); id <= 2; id++ {
			r.SendPublish(codec.Publish{Topic: []byte("rm/t"), Payload: []byte("x"), QoS: 2, PacketID: id})
			r.ExpectAck(codec.PUBREC, id, p5Wait)
		}
		r.SendPublish(codec.Publish{Topic: []byte("rm/t"), Payload: []byte("x"), QoS: 2, PacketID: 3})
		r.ExpectDisconnect(codec.ReceiveMaximumExceeded, p5Wait)
	})

	// A client silent for 1.5 × its keep-alive is disconnected with 0x8D
	// [MQTT-3.1.2-22]. The paho client's Pinger never pings.
	t.Run("keep-alive-timeout-0x8D", func(t *testing.T) {
		t.Parallel()
		_, addr := testutil.StartBroker(t, nil)
		cp := p5CP("silent")
		cp.KeepAlive = 1
		c, _ := p5Dial(t, addr, cp, func(cfg *paho.ClientConfig) { cfg.PingHandler = p5NoPinger{} })
		start := time.Now()
		c.serverDisconnect(t, byte(codec.KeepAliveTimeout))
		if d := time.Since(start); d < 1200*time.Millisecond {
			t.Fatalf("disconnected %v after CONNACK, before 1.5 × the 1 s keep-alive", d.Round(time.Millisecond))
		}
	})
}

// p5Scram is a paho Auther speaking SCRAM-SHA-256 with scram.Client. It
// records the AUTH packets the broker sent.
type p5Scram struct {
	mu   sync.Mutex
	cl   *scram.Client
	seen []paho.Auth
	errs []error
}

func (a *p5Scram) use(cl *scram.Client) {
	a.mu.Lock()
	a.cl = cl
	a.mu.Unlock()
}

// Authenticate answers the broker's AUTH 0x18 (server-first) with
// client-final.
func (a *p5Scram) Authenticate(in *paho.Auth) *paho.Auth {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.seen = append(a.seen, *in)
	var data []byte
	if in.Properties != nil {
		data = in.Properties.AuthData
	}
	final, err := a.cl.Final(data)
	if err != nil {
		a.errs = append(a.errs, err)
	}
	return &paho.Auth{ReasonCode: 0x18, Properties: &paho.AuthProperties{AuthMethod: scram.SHA256, AuthData: final}}
}

func (a *p5Scram) Authenticated() {}

// check fails unless every AUTH from the broker was 0x18 (Continue
// authentication) [MQTT-4.12.0-2] naming the CONNECT's method
// [MQTT-4.12.0-5], and the SCRAM client accepted it.
func (a *p5Scram) check(t *testing.T) {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.errs) > 0 {
		t.Fatalf("SCRAM client: %v", a.errs)
	}
	if len(a.seen) == 0 {
		t.Fatal("no AUTH 0x18 from the broker")
	}
	for _, s := range a.seen {
		if s.ReasonCode != 0x18 || s.Properties == nil || s.Properties.AuthMethod != scram.SHA256 {
			t.Fatalf("AUTH from the broker: reason %#02x, properties %+v; want 0x18 naming %s", s.ReasonCode, s.Properties, scram.SHA256)
		}
	}
}

// TestV5PahoEnhancedAuth: SCRAM-SHA-256 enhanced authentication (4.12)
// between paho (its Auther interface driving scram.Client) and the
// broker's scram.New method.
func TestV5PahoEnhancedAuth(t *testing.T) {
	t.Parallel()
	store := scram.MemStore{"alice": scram.NewCredentials("wonderland", []byte("0123456789abcdef"), 4096)}
	_, addr := testutil.StartBroker(t, func(c *broker.Config) { c.AuthMethods = []auth.Method{scram.New(store)} })
	connect := func(t *testing.T, id, method, user, password string) (*p5Client, *paho.Connack, *p5Scram, *scram.Client, error) {
		t.Helper()
		cl := scram.NewClient(user, password)
		a := &p5Scram{cl: cl}
		cp := p5CP(id)
		cp.Properties = &paho.ConnectProperties{AuthMethod: method, AuthData: cl.First()}
		c, ack, err := p5Connect(t, addr, cp, func(cfg *paho.ClientConfig) { cfg.AuthHandler = a })
		return c, ack, a, cl, err
	}

	// CONNECT(method, client-first) -> AUTH 0x18(server-first) -> AUTH
	// 0x18(client-final) -> CONNACK 0x00(server-final, which proves the
	// broker knew the password's keys).
	t.Run("success", func(t *testing.T) {
		t.Parallel()
		c, ack, a, cl, err := connect(t, "scram-ok", scram.SHA256, "alice", "wonderland")
		if err != nil {
			t.Fatalf("connect: %v (CONNACK %s)", err, p5Code(ack))
		}
		a.check(t)
		if ack.Properties.AuthMethod != scram.SHA256 {
			t.Fatalf("CONNACK Authentication Method %q, want %q [MQTT-4.12.0-5]", ack.Properties.AuthMethod, scram.SHA256)
		}
		if err := cl.Verify(ack.Properties.AuthData); err != nil {
			t.Fatalf("server-final in CONNACK %q: %v", ack.Properties.AuthData, err)
		}
		c.sub(t, "auth/t", 1)
		c.say(t, "auth/t", "in", 1)
		c.expect(t, "auth/t", "in")
	})

	// A wrong password fails at client-final: CONNACK 0x86 [MQTT-4.12.0-4].
	t.Run("wrong-password-0x86", func(t *testing.T) {
		t.Parallel()
		_, ack, a, _, err := connect(t, "scram-bad", scram.SHA256, "alice", "looking-glass")
		if err == nil || ack == nil || ack.ReasonCode != byte(codec.BadUsernameOrPassword) {
			t.Fatalf("wrong password: CONNACK %s, err %v; want 0x86", p5Code(ack), err)
		}
		a.check(t) // it got as far as the AUTH exchange
	})

	// A method the broker does not have: CONNACK 0x8C [MQTT-4.12.0-1].
	t.Run("unknown-method-0x8C", func(t *testing.T) {
		t.Parallel()
		_, ack, _, _, err := connect(t, "scram-what", "SCRAM-SHA-512", "alice", "wonderland")
		if err == nil || ack == nil || ack.ReasonCode != byte(codec.BadAuthenticationMethod) {
			t.Fatalf("unknown method: CONNACK %s, err %v; want 0x8C", p5Code(ack), err)
		}
	})

	// Re-authentication with paho's Authenticate: AUTH 0x19(client-first)
	// -> AUTH 0x18 -> AUTH 0x18 -> AUTH 0x00(server-final) [MQTT-4.12.1-1],
	// [MQTT-4.12.1-2]. paho's AuthResponse drops the final AUTH's data, so
	// the server-final is read from the bytes paho received. A failed
	// re-authentication ends with DISCONNECT [MQTT-4.12.1-2].
	t.Run("re-authenticate", func(t *testing.T) {
		t.Parallel()
		c, ack, a, _, err := connect(t, "scram-again", scram.SHA256, "alice", "wonderland")
		if err != nil {
			t.Fatalf("connect: %v (CONNACK %s)", err, p5Code(ack))
		}
		again := scram.NewClient("alice", "wonderland")
		a.use(again)
		resp, err := c.Authenticate(p5Ctx(t), &paho.Auth{ReasonCode: 0x19,
			Properties: &paho.AuthProperties{AuthMethod: scram.SHA256, AuthData: again.First()}})
		if err != nil || !resp.Success || resp.ReasonCode != 0x00 {
			t.Fatalf("re-authentication: %+v, %v; want AUTH 0x00", resp, err)
		}
		a.check(t)
		var last *codec.Disconnect
		for _, f := range c.tap.frames(t, true) {
			if f.Header.Type == codec.AUTH {
				last = &codec.Disconnect{}
				if err := last.Decode(codec.AUTH, f.Body, codec.V5); err != nil {
					t.Fatalf("AUTH: %v", err)
				}
			}
		}
		if last == nil || last.Code != codec.Success || string(last.Props.AuthMethod) != scram.SHA256 {
			t.Fatalf("last AUTH from the broker %+v, want 0x00 naming %s", last, scram.SHA256)
		}
		if err := again.Verify(last.Props.AuthData); err != nil {
			t.Fatalf("server-final in AUTH 0x00 %q: %v", last.Props.AuthData, err)
		}
		c.sub(t, "reauth/t", 1) // still connected
		c.say(t, "reauth/t", "after", 1)
		c.expect(t, "reauth/t", "after")

		wrong := scram.NewClient("alice", "looking-glass")
		a.use(wrong)
		resp, err = c.Authenticate(p5Ctx(t), &paho.Auth{ReasonCode: 0x19,
			Properties: &paho.AuthProperties{AuthMethod: scram.SHA256, AuthData: wrong.First()}})
		if err != nil || resp.Success || resp.ReasonCode != byte(codec.BadUsernameOrPassword) {
			t.Fatalf("re-authentication with a wrong password: %+v, %v; want DISCONNECT 0x86", resp, err)
		}
	})
}

// TestV5PahoMixedVersions: MQTT 3.1.1 (paho.mqtt.golang) and MQTT 5 (paho)
// clients on one broker. A v5 message with properties reaches a 3.1.1
// subscriber as plain topic and payload — a 3.1.1 PUBLISH has no
// properties (3.1.1 section 3.3.2), so had any been encoded the payload
// would not match; a 3.1.1 message reaches a v5 subscriber with no
// properties at all. Both directions: [MQTT-4.5.0-1] (the broker delivers
// to every matching subscription).
func TestV5PahoMixedVersions(t *testing.T) {
	t.Parallel()
	_, addr := testutil.StartBroker(t, nil)
	v3 := pahoConnect(t, addr, "mixed-v3")
	in := newInbox()
	subscribe(t, v3, "mix/from5", 1, in)
	v5, _ := p5Dial(t, addr, p5CP("mixed-v5"), nil)
	v5.sub(t, "mix/from3", 1)

	v5.pub(t, &paho.Publish{Topic: "mix/from5", QoS: 1, Payload: []byte("hello v3"), Properties: &paho.PublishProperties{
		MessageExpiry: paho.Uint32(60),
		ContentType:   "text/plain",
		User:          paho.UserProperties{{Key: "k", Value: "v"}, {Key: "k2", Value: "v2"}},
	}})
	got := in.wait(t, 1)
	if len(got) != 1 || got[0].topic != "mix/from5" || got[0].payload != "hello v3" || got[0].qos != 1 {
		t.Fatalf("3.1.1 subscriber got %+v, want one QoS 1 %q on mix/from5", got, "hello v3")
	}

	must(t, v3.Publish("mix/from3", 1, false, "hello v5"))
	p := v5.expect(t, "mix/from3", "hello v5").Properties
	if p.PayloadFormat != nil || p.MessageExpiry != nil || p.ContentType != "" || p.ResponseTopic != "" ||
		p.CorrelationData != nil || len(p.User) != 0 || p.SubscriptionIdentifier != nil || p.TopicAlias != nil {
		t.Fatalf("a 3.1.1 message reached the v5 subscriber with properties %+v", p)
	}
}
