package broker_test

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	"github.com/eclipse/paho.golang/paho/extensions/rpc"
	"github.com/eclipse/paho.golang/paho/extensions/topicaliases"
	"github.com/shoalmq/shoal/broker"
	"github.com/shoalmq/shoal/codec"
	"github.com/shoalmq/shoal/internal/testutil"
)

// MQTT 5 end-to-end tests with paho, part 2: PUBLISH properties,
// request/response, message expiry, topic aliases and flow control.
// Helpers are in e2e_v5_paho_test.go.

// TestV5PahoPublishProperties: Payload Format Indicator [MQTT-3.3.2-4],
// Response Topic [MQTT-3.3.2-15], Correlation Data [MQTT-3.3.2-16], User
// Properties [MQTT-3.3.2-17] in their order, repeated keys included
// [MQTT-3.3.2-18], and Content Type [MQTT-3.3.2-20] reach a paho subscriber
// unaltered, at every QoS; nothing is added that wasn't published.
func TestV5PahoPublishProperties(t *testing.T) {
	t.Parallel()
	_, addr := testutil.StartBroker(t, nil)
	sub, _ := p5Dial(t, addr, p5CP("props-sub"), nil)
	sub.sub(t, "props/#", 2)
	pub, _ := p5Dial(t, addr, p5CP("props-pub"), nil)
	users := paho.UserProperties{{Key: "k1", Value: "v1"}, {Key: "k2", Value: "v2"}, {Key: "k1", Value: "v3"}, {Key: "", Value: ""}, {Key: "ü", Value: "ß"}}
	want := paho.PublishProperties{
		PayloadFormat:   paho.Byte(1),
		ContentType:     "application/json; charset=utf-8",
		ResponseTopic:   "props/reply/42",
		CorrelationData: []byte{0x00, 0x01, 0xfe, 0xff},
		User:            users,
	}
	for qos := byte(0); qos <= 2; qos++ {
		topic := fmt.Sprint("props/q", qos)
		pr := want
		pub.pub(t, &paho.Publish{Topic: topic, QoS: qos, Payload: []byte(`{"héllo":1}`), Properties: &pr})
		got := sub.expect(t, topic, `{"héllo":1}`).Properties
		if got.PayloadFormat == nil || *got.PayloadFormat != 1 {
			t.Errorf("QoS %d: Payload Format Indicator %s, want 1 [MQTT-3.3.2-4]", qos, p5Ptr(got.PayloadFormat))
		}
		if got.ContentType != want.ContentType {
			t.Errorf("QoS %d: Content Type %q, want %q [MQTT-3.3.2-20]", qos, got.ContentType, want.ContentType)
		}
		if got.ResponseTopic != want.ResponseTopic {
			t.Errorf("QoS %d: Response Topic %q, want %q [MQTT-3.3.2-15]", qos, got.ResponseTopic, want.ResponseTopic)
		}
		if !bytes.Equal(got.CorrelationData, want.CorrelationData) {
			t.Errorf("QoS %d: Correlation Data % x, want % x [MQTT-3.3.2-16]", qos, got.CorrelationData, want.CorrelationData)
		}
		if !slices.Equal(got.User, users) {
			t.Errorf("QoS %d: User Properties %q, want %q in that order [MQTT-3.3.2-17], [MQTT-3.3.2-18]", qos, got.User, users)
		}
		if got.MessageExpiry != nil || got.TopicAlias != nil || got.SubscriptionIdentifier != nil {
			t.Errorf("QoS %d: properties nobody set: expiry %s, alias %s, subscription id %s", qos,
				p5Ptr(got.MessageExpiry), p5Ptr(got.TopicAlias), p5Ptr(got.SubscriptionIdentifier))
		}
	}
}

// TestV5PahoRequestResponse: request/response (4.10) with paho's own rpc
// extension as the requester: the responder gets the request with its
// Response Topic and Correlation Data unaltered [MQTT-3.3.2-15],
// [MQTT-3.3.2-16], publishes the reply to that topic with that Correlation
// Data, and the requester gets it back (rpc matches replies by Correlation
// Data, so a reply is only returned if it came back unaltered).
func TestV5PahoRequestResponse(t *testing.T) {
	t.Parallel()
	_, addr := testutil.StartBroker(t, nil)
	responder, _ := p5Dial(t, addr, p5CP("rr-responder"), nil)
	responder.sub(t, "rr/service", 1)
	requester, _ := p5Dial(t, addr, p5CP("rr-requester"), nil)
	h, err := rpc.NewHandler(p5Ctx(t), requester.Client)
	if err != nil {
		t.Fatalf("rpc.NewHandler: %v", err)
	}

	// The responder answers on its own goroutine, reporting what it saw.
	type seen struct {
		responseTopic string
		correlation   []byte
		err           error
	}
	seenCh := make(chan seen, 8)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			case req := <-responder.msgs:
				s := seen{responseTopic: req.Properties.ResponseTopic, correlation: req.Properties.CorrelationData}
				ctx, cancel := context.WithTimeout(context.Background(), p5Wait)
				_, s.err = responder.Publish(ctx, &paho.Publish{
					Topic:      req.Properties.ResponseTopic,
					QoS:        1,
					Payload:    append([]byte("re:"), req.Payload...),
					Properties: &paho.PublishProperties{CorrelationData: req.Properties.CorrelationData},
				})
				cancel()
				seenCh <- s
			}
		}
	}()

	for i := range 3 {
		q := fmt.Sprint("question-", i)
		resp, err := h.Request(p5Ctx(t), &paho.Publish{Topic: "rr/service", QoS: 1, Payload: []byte(q)})
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		s := <-seenCh
		if s.err != nil {
			t.Fatalf("responder's reply: %v", s.err)
		}
		if s.responseTopic != "rr-requester/responses" || len(s.correlation) == 0 {
			t.Fatalf("responder got Response Topic %q, Correlation Data %q; want rpc's topic and data", s.responseTopic, s.correlation)
		}
		if string(resp.Payload) != "re:"+q || !bytes.Equal(resp.Properties.CorrelationData, s.correlation) {
			t.Fatalf("reply %q with Correlation Data %q, want %q with %q", resp.Payload, resp.Properties.CorrelationData, "re:"+q, s.correlation)
		}
	}
}

// TestV5PahoMessageExpiry: a live subscriber gets the Message Expiry
// Interval minus the time waited, so at most what was published
// [MQTT-3.3.2-6]; a message that expires while a persistent subscriber is
// offline is not delivered to it [MQTT-3.3.2-5], while a longer-lived one
// is, with its interval reduced by the ~2 s it waited.
func TestV5PahoMessageExpiry(t *testing.T) {
	t.Parallel()
	_, addr := testutil.StartBroker(t, nil)
	off, _ := p5Dial(t, addr, p5Expiry("mx-off", true, 60), nil)
	off.sub(t, "mx/t", 1)
	off.bye(t)
	live, _ := p5Dial(t, addr, p5CP("mx-live"), nil)
	live.sub(t, "mx/t", 1)
	pub, _ := p5Dial(t, addr, p5CP("mx-pub"), nil)
	var sent time.Time // when "long" was published
	for _, m := range []struct {
		payload string
		expiry  uint32
	}{{"short", 1}, {"long", 30}, {"none", 0}} {
		p := &paho.Publish{Topic: "mx/t", QoS: 1, Payload: []byte(m.payload)}
		if m.expiry > 0 {
			p.Properties = &paho.PublishProperties{MessageExpiry: paho.Uint32(m.expiry)}
		}
		if m.payload == "long" {
			sent = time.Now()
		}
		pub.pub(t, p)
		got := live.expect(t, "mx/t", m.payload).Properties.MessageExpiry
		switch {
		case m.expiry == 0 && got != nil:
			t.Fatalf("%q: Message Expiry Interval %d on a message published without one", m.payload, *got)
		case m.expiry > 0 && (got == nil || *got == 0 || *got > m.expiry):
			t.Fatalf("%q: Message Expiry Interval %s, want 1..%d [MQTT-3.3.2-6]", m.payload, p5Ptr(got), m.expiry)
		}
	}
	time.Sleep(2200 * time.Millisecond) // "short" expires while mx-off is away

	back, ack := p5Dial(t, addr, p5Expiry("mx-off", false, 60), nil)
	if !ack.SessionPresent {
		t.Fatal("Session Present 0: the session should have waited [MQTT-3.1.2-23]")
	}
	long := back.next(t)
	if string(long.Payload) != "long" {
		t.Fatalf("first message after reconnecting is %q, want %q: %q had expired [MQTT-3.3.2-5]", long.Payload, "long", "short")
	}
	// It waited at least 2.2 s, and at most as long as the test took
	// since publishing it (more than 2.2 s on a loaded machine).
	waited := time.Since(sent)
	if e := long.Properties.MessageExpiry; e == nil || *e > 28 || float64(*e) < 29-waited.Seconds() {
		t.Fatalf("after waiting %v: Message Expiry Interval %s, want 30 minus the wait, 28 at most [MQTT-3.3.2-6]", waited, p5Ptr(e))
	}
	if none := back.expect(t, "mx/t", "none"); none.Properties.MessageExpiry != nil {
		t.Fatalf("message without expiry delivered with %d", *none.Properties.MessageExpiry)
	}
	back.quiet(t)
}

// TestV5PahoTopicAliases: both directions of Topic Alias (3.3.2.3.4).
//
// Inbound: the publisher uses paho's topicaliases extension, which replaces
// repeated topics by aliases; the broker accepts every alias up to its
// Topic Alias Maximum [MQTT-3.3.2-12] and subscribers get the full topic.
//
// Outbound (Config.OutboundTopicAliases=10): a client announcing Topic Alias
// Maximum 3 gets aliases 1..3 only [MQTT-3.1.2-26], [MQTT-3.3.2-11], the
// first use of each carrying the topic too and later ones an empty topic;
// topics beyond the third go out in full. paho's StandardRouter resolves
// the aliases, so each topic's handler gets exactly its messages. A client
// that announced no Topic Alias Maximum gets no aliases [MQTT-3.1.2-27].
func TestV5PahoTopicAliases(t *testing.T) {
	t.Parallel()
	_, addr := testutil.StartBroker(t, func(c *broker.Config) { c.OutboundTopicAliases = 10 })

	topics := []string{"alias/out/0", "alias/out/1", "alias/out/2", "alias/out/3", "alias/out/4"}
	router := paho.NewStandardRouter()
	routed := make(chan [2]string, 64) // topic registered, payload
	for _, tp := range topics {
		router.RegisterHandler(tp, func(p *paho.Publish) { routed <- [2]string{tp, string(p.Payload)} })
	}
	cp := p5CP("alias-sub")
	cp.Properties = &paho.ConnectProperties{TopicAliasMaximum: paho.Uint16(3)}
	sub, _ := p5Dial(t, addr, cp, func(cfg *paho.ClientConfig) { cfg.Router = router })
	sub.sub(t, "alias/#", 1)
	plain, _ := p5Dial(t, addr, p5CP("alias-plain"), nil)
	plain.sub(t, "alias/#", 1)

	ta := topicaliases.NewTAHandler(8)
	pub, ack := p5Dial(t, addr, p5CP("alias-pub"), func(cfg *paho.ClientConfig) { cfg.PublishHook = ta.PublishHook })
	if m := ack.Properties.TopicAliasMaximum; m == nil || *m < 8 {
		t.Fatalf("broker Topic Alias Maximum %s, want at least 8 for this test", p5Ptr(m))
	}

	var sent []string // payloads in publish order
	for round := range 2 {
		for i, tp := range topics {
			payload := fmt.Sprintf("r%d-t%d", round, i)
			pub.say(t, tp, payload, 1)
			sent = append(sent, payload)
		}
	}

	// Inbound: paho really sent aliases (2nd round: empty topics).
	var emptyTopics int
	for _, f := range pub.tap.frames(t, false) {
		if f.Header.Type != codec.PUBLISH {
			continue
		}
		var p codec.Publish
		if err := p.Decode(f.Header.Flags, f.Body, codec.V5); err != nil {
			t.Fatalf("paho's PUBLISH: %v", err)
		}
		if len(p.Topic) == 0 && p.Props.Has(codec.PropTopicAlias) {
			emptyTopics++
		}
	}
	if emptyTopics != len(topics) {
		t.Fatalf("paho sent %d PUBLISH packets with only a Topic Alias, want %d: the test did not exercise inbound aliases", emptyTopics, len(topics))
	}
	for _, payload := range sent {
		i := payload[len(payload)-1] - '0'
		plain.expect(t, topics[i], payload) // full topic, no alias for this one
	}
	for _, p := range plain.tap.publishes(t) {
		if p.Props.Has(codec.PropTopicAlias) {
			t.Fatalf("Topic Alias %d sent to a client without Topic Alias Maximum [MQTT-3.1.2-27]", p.Props.TopicAlias)
		}
	}

	// Outbound: paho's router resolved every message to its topic.
	perTopic := map[string][]string{}
	for range sent {
		select {
		case r := <-routed:
			perTopic[r[0]] = append(perTopic[r[0]], r[1])
		case <-time.After(p5Wait):
			t.Fatalf("router got %v, want %d messages: an alias paho could not resolve?", perTopic, len(sent))
		}
	}
	for i, tp := range topics {
		want := []string{fmt.Sprintf("r0-t%d", i), fmt.Sprintf("r1-t%d", i)}
		if !slices.Equal(perTopic[tp], want) {
			t.Errorf("handler for %s got %q, want %q", tp, perTopic[tp], want)
		}
	}
	// And on the wire: what the broker sent.
	pubs := sub.tap.publishes(t)
	if len(pubs) != len(sent) {
		t.Fatalf("broker sent %d PUBLISH packets, want %d", len(pubs), len(sent))
	}
	for k, p := range pubs {
		round, i := k/len(topics), k%len(topics)
		alias := p.Props.TopicAlias
		if !p.Props.Has(codec.PropTopicAlias) {
			alias = 0
		}
		var wantTopic string
		var wantAlias uint16
		switch {
		case i >= 3: // aliases exhausted: full topic
			wantTopic = topics[i]
		case round == 0: // a new alias: topic and alias set the mapping (3.3.2.3.4)
			wantTopic, wantAlias = topics[i], uint16(i+1)
		default: // known alias: empty topic
			wantAlias = uint16(i + 1)
		}
		if string(p.Topic) != wantTopic || alias != wantAlias {
			t.Errorf("PUBLISH %d (%q): topic %q alias %d, want topic %q alias %d (max 3 [MQTT-3.3.2-11])",
				k, p.Payload, p.Topic, alias, wantTopic, wantAlias)
		}
	}
}

// TestV5PahoOutboundAliasOversize: a message too large for the client's
// Maximum Packet Size is dropped [MQTT-3.1.2-24], [MQTT-3.1.2-25] — but the
// Topic Alias the broker would have set with it was never sent, so the
// next message on that topic must still carry the topic: a receiver that
// gets an empty topic with an alias it never saw cannot resolve it
// (3.3.2.3.4: the mapping is set only by a PUBLISH that carries both).
func TestV5PahoOutboundAliasOversize(t *testing.T) {
	t.Parallel()
	_, addr := testutil.StartBroker(t, func(c *broker.Config) { c.OutboundTopicAliases = 10 })
	router := paho.NewStandardRouter()
	routed := make(chan string, 8)
	router.RegisterHandler("big/t", func(p *paho.Publish) { routed <- string(p.Payload) })
	cp := p5CP("oversize-sub")
	cp.Properties = &paho.ConnectProperties{TopicAliasMaximum: paho.Uint16(10), MaximumPacketSize: paho.Uint32(256)}
	sub, _ := p5Dial(t, addr, cp, func(cfg *paho.ClientConfig) { cfg.Router = router })
	sub.sub(t, "big/t", 1)
	pub, _ := p5Dial(t, addr, p5CP("oversize-pub"), nil)
	pub.say(t, "big/t", strings.Repeat("x", 1000), 1) // dropped: too large
	pub.say(t, "big/t", "small-1", 1)                 // must set the alias: topic and alias
	pub.say(t, "big/t", "small-2", 1)                 // may use it: alias only
	for _, want := range []string{"small-1", "small-2"} {
		select {
		case got := <-routed:
			if got != want {
				t.Fatalf("routed %q, want %q", got, want)
			}
		case <-time.After(p5Wait):
			var wire []string
			for _, p := range sub.tap.publishes(t) {
				wire = append(wire, fmt.Sprintf("topic %q alias %d payload %q", p.Topic, p.Props.TopicAlias, p.Payload))
			}
			t.Fatalf("paho could not route %q to big/t; the broker sent %q: an alias whose mapping "+
				"went out with the dropped oversize message? (3.3.2.3.4, [MQTT-3.1.2-25])", want, wire)
		}
	}
	if p := sub.tap.publishes(t); len(p) != 2 || string(p[0].Topic) != "big/t" || !p[0].Props.Has(codec.PropTopicAlias) {
		t.Fatalf("broker sent %d PUBLISH packets (%v): want 2, the first setting the alias", len(p), p)
	}
}

// TestV5PahoFlowControl: the client's Receive Maximum and Maximum Packet
// Size bound what the broker sends it.
func TestV5PahoFlowControl(t *testing.T) {
	t.Parallel()

	// Receive Maximum 2: never more than two QoS 1 PUBLISH packets
	// unacknowledged [MQTT-3.3.4-9], [MQTT-4.9.0-2]. paho's manual
	// acknowledgement holds each PUBACK until the test releases it, in order.
	// The check counts PUBLISH packets on the wire against the acks released:
	// acks released >= PUBACKs the broker has, so "seen <= released + 2" holds
	// whenever the broker keeps the limit.
	t.Run("receive-maximum", func(t *testing.T) {
		t.Parallel()
		_, addr := testutil.StartBroker(t, nil)
		cp := p5CP("rm-sub")
		cp.Properties = &paho.ConnectProperties{ReceiveMaximum: paho.Uint16(2)}
		sub, _ := p5Dial(t, addr, cp, func(cfg *paho.ClientConfig) {
			cfg.EnableManualAcknowledgment = true
			cfg.SendAcksInterval = 10 * time.Millisecond
		})
		sub.sub(t, "rm/t", 1)
		pub, _ := p5Dial(t, addr, p5CP("rm-pub"), nil)
		const n = 5
		for i := range n {
			pub.say(t, "rm/t", fmt.Sprint(i), 1)
		}
		var got []*paho.Publish
		for acked := 0; acked < n; acked++ {
			for len(got) < min(acked+2, n) {
				got = append(got, sub.next(t))
			}
			sub.quiet(t) // the window is full: nothing more [MQTT-3.3.4-9]
			if seen := len(sub.tap.publishes(t)); seen > acked+2 {
				t.Fatalf("%d PUBLISH packets sent with %d acknowledged, Receive Maximum 2 [MQTT-3.3.4-9]", seen, acked)
			}
			if err := sub.Ack(got[acked]); err != nil {
				t.Fatalf("ack: %v", err)
			}
		}
		for i, p := range got {
			if string(p.Payload) != fmt.Sprint(i) {
				t.Fatalf("message %d is %q, want %q: order kept [MQTT-4.6.0-6]", i, p.Payload, fmt.Sprint(i))
			}
		}
	})

	// Maximum Packet Size 256: larger messages are not sent [MQTT-3.1.2-24]
	// but dropped as if delivered [MQTT-3.1.2-25] — with Receive Maximum 1,
	// a dropped QoS 1 message must not hold the window either.
	t.Run("maximum-packet-size", func(t *testing.T) {
		t.Parallel()
		_, addr := testutil.StartBroker(t, nil)
		cp := p5CP("mps-sub")
		cp.Properties = &paho.ConnectProperties{MaximumPacketSize: paho.Uint32(256), ReceiveMaximum: paho.Uint16(1)}
		sub, _ := p5Dial(t, addr, cp, nil)
		sub.sub(t, "mps/#", 1)
		pub, _ := p5Dial(t, addr, p5CP("mps-pub"), nil)
		big := strings.Repeat("b", 300)
		pub.say(t, "mps/q1", big, 1)
		pub.say(t, "mps/q0", big, 0)
		pub.say(t, "mps/q1", "small-1", 1)
		pub.say(t, "mps/q0", "small-0", 0)
		sub.expect(t, "mps/q1", "small-1")
		sub.expect(t, "mps/q0", "small-0")
		sub.quiet(t)
		for _, f := range sub.tap.frames(t, true) {
			if f.Header.Size() > 256 {
				t.Fatalf("%v of %d bytes sent to a client with Maximum Packet Size 256 [MQTT-3.1.2-24]", f.Header.Type, f.Header.Size())
			}
		}
	})
}
