package broker_test

import (
	"bytes"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/shoalmq/shoal/broker"
	"github.com/shoalmq/shoal/codec"
	"github.com/shoalmq/shoal/internal/testutil"
)

// Protocol-conformance tests for MQTT 5.0: CONNACK properties, reason
// codes on errors, topic aliases, forwarded properties, subscription
// options and shared subscriptions. Sessions, expiry, wills and flow
// control are in protocol_v5_session_test.go. Clause ids are MQTT 5.0's.

// dial5 connects an MQTT 5 client, with props (may be nil) set on the
// CONNECT, and fails unless it is accepted.
func dial5(t *testing.T, addr, id string, clean bool, props func(*codec.Properties)) (*testutil.Raw, codec.Connack) {
	t.Helper()
	c := codec.Connect{ClientID: []byte(id), CleanStart: clean}
	if props != nil {
		props(&c.Props)
	}
	return testutil.DialConnect(t, addr, codec.V5, c)
}

// sub5 subscribes r to one filter with MQTT 5 options and returns the
// SUBACK reason code.
func sub5(t *testing.T, r *testutil.Raw, id uint16, s codec.Subscription, props func(*codec.Properties)) codec.ReasonCode {
	t.Helper()
	p := codec.Subscribe{PacketID: id, Filters: []codec.Subscription{s}}
	if props != nil {
		props(&p.Props)
	}
	ack := r.SubscribeWith(p)
	if len(ack.Codes) != 1 {
		t.Fatalf("SUBACK has %d codes, want 1", len(ack.Codes))
	}
	return ack.Codes[0]
}

// drainPublishes reads PUBLISH packets until none comes for d,
// acknowledging QoS 1 ones, and returns them.
func drainPublishes(t *testing.T, r *testutil.Raw, d time.Duration) []codec.Publish {
	t.Helper()
	var got []codec.Publish
	for {
		f, err := r.Read(d)
		if err != nil {
			return got
		}
		if f.Header.Type != codec.PUBLISH {
			t.Fatalf("got %v, want PUBLISH", f.Header.Type)
		}
		p := r.Publish(f)
		if p.QoS == 1 {
			r.SendAck(codec.PUBACK, p.PacketID)
		}
		got = append(got, p)
	}
}

// TestV5ConnackProperties: CONNACK announces the broker's Maximum Packet
// Size (3.2.2.3.6) and Topic Alias Maximum (3.2.2.3.8); a zero-length
// client id gets an Assigned Client Identifier that no other session uses
// [MQTT-3.2.2-16], and which then names the session.
func TestV5ConnackProperties(t *testing.T) {
	t.Parallel()
	_, addr := testutil.StartBroker(t, func(c *broker.Config) { c.MaxPacketSize = 4096 })
	r1, ack1 := dial5(t, addr, "", true, nil)
	_, ack2 := dial5(t, addr, "", true, nil)
	for i, ack := range []codec.Connack{ack1, ack2} {
		pr := ack.Props
		if !pr.Has(codec.PropMaximumPacketSize) || pr.MaximumPacketSize != 4096 {
			t.Errorf("CONNACK %d Maximum Packet Size present %v = %d, want 4096", i, pr.Has(codec.PropMaximumPacketSize), pr.MaximumPacketSize)
		}
		if !pr.Has(codec.PropTopicAliasMaximum) || pr.TopicAliasMaximum == 0 {
			t.Errorf("CONNACK %d Topic Alias Maximum present %v = %d, want > 0", i, pr.Has(codec.PropTopicAliasMaximum), pr.TopicAliasMaximum)
		}
		if !pr.Has(codec.PropAssignedClientID) || len(pr.AssignedClientID) == 0 {
			t.Fatalf("CONNACK %d has no Assigned Client Identifier [MQTT-3.2.2-16]", i)
		}
	}
	if bytes.Equal(ack1.Props.AssignedClientID, ack2.Props.AssignedClientID) {
		t.Fatalf("two clients were assigned the same id %q [MQTT-3.2.2-16]", ack1.Props.AssignedClientID)
	}
	// A client that names itself is not assigned one.
	if _, ack := dial5(t, addr, "named", true, nil); ack.Props.Has(codec.PropAssignedClientID) {
		t.Fatalf("Assigned Client Identifier %q sent to a client with an id", ack.Props.AssignedClientID)
	}
	// The assigned id is the session's: connecting with it takes the session over [MQTT-3.1.4-3].
	dial5(t, addr, string(ack1.Props.AssignedClientID), false, nil)
	r1.ExpectDisconnect(codec.SessionTakenOver, waitPkt)
}

// TestV5ErrorDisconnect: after CONNACK, a malformed packet is answered with
// DISCONNECT 0x81 and a protocol error with DISCONNECT 0x82, then the
// connection closes [MQTT-4.13.1-1], [MQTT-3.14.4-2].
func TestV5ErrorDisconnect(t *testing.T) {
	t.Parallel()
	_, addr := testutil.StartBroker(t, nil)
	filter := []codec.Subscription{{Filter: []byte("a")}}
	subFlags := (&codec.Subscribe{PacketID: 1, Filters: filter}).Append(nil, codec.V5)
	subFlags[0] = 0x80
	rh3 := codec.Subscribe{PacketID: 1, Filters: []codec.Subscription{{Filter: []byte("a"), RetainHandling: 3}}}
	subID0 := codec.Subscribe{PacketID: 1, Filters: filter}
	subID0.Props.Set(codec.PropSubscriptionID)
	subID0.Props.SubIDs = []uint32{0}
	second := codec.Connect{Version: codec.V5, ClientID: []byte("again"), CleanStart: true}
	for _, tc := range []struct {
		name string
		pkt  []byte
		want codec.ReasonCode
	}{
		// Malformed Packet: 0x81.
		{"publish-qos3", (&codec.Publish{Topic: []byte("a"), QoS: 3, PacketID: 1}).Append(nil, codec.V5), codec.MalformedPacket}, // [MQTT-3.3.1-4]
		{"subscribe-flags", subFlags, codec.MalformedPacket},                                                                     // [MQTT-3.8.1-1]
		{"pubrel-flags", []byte{0x60, 0x02, 0x00, 0x01}, codec.MalformedPacket},                                                  // [MQTT-3.6.1-1]
		{"topic-utf8", (&codec.Publish{Topic: []byte("a\xc0\x80")}).Append(nil, codec.V5), codec.MalformedPacket},                // [MQTT-1.5.4-1]
		{"topic-nul", (&codec.Publish{Topic: []byte("a\x00")}).Append(nil, codec.V5), codec.MalformedPacket},                     // [MQTT-1.5.4-2]
		{"truncated", []byte{0x30, 0x03, 0x00, 0x05, 'a'}, codec.MalformedPacket},                                                // string longer than the packet
		{"varint-5-bytes", []byte{0x30, 0xff, 0xff, 0xff, 0xff, 0x01}, codec.MalformedPacket},                                    // 1.5.5
		// Topic "a", property length 2, identifier 0x7f (undefined) = a malformed packet (2.2.2.2).
		{"unknown-property", []byte{0x30, 0x06, 0x00, 0x01, 'a', 0x02, 0x7f, 0x00}, codec.MalformedPacket},
		// Protocol Error: 0x82.
		{"second-connect", second.Append(nil), codec.ProtocolError},                                                 // [MQTT-3.1.0-2]
		{"subscribe-no-filters", (&codec.Subscribe{PacketID: 1}).Append(nil, codec.V5), codec.ProtocolError},        // [MQTT-3.8.3-2]
		{"retain-handling-3", rh3.Append(nil, codec.V5), codec.ProtocolError},                                       // 3.8.3.1
		{"subscription-id-0", subID0.Append(nil, codec.V5), codec.ProtocolError},                                    // 3.8.2.1.2
		{"empty-topic-no-alias", (&codec.Publish{Payload: []byte("x")}).Append(nil, codec.V5), codec.ProtocolError}, // 3.3.2.1
		// Topic "a", two Content Type properties (0x03 "a"), payload "x": a property
		// that may appear once appears twice (3.3.2.3.9).
		{"duplicate-property", []byte{0x30, 0x0d, 0x00, 0x01, 'a', 0x08, 0x03, 0x00, 0x01, 'a', 0x03, 0x00, 0x01, 'a', 'x'}, codec.ProtocolError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, _ := dial5(t, addr, "err-"+tc.name, true, nil)
			r.Send(tc.pkt)
			r.ExpectDisconnect(tc.want, waitPkt)
		})
	}
}

// TestV5PublishWithSubscriptionID: a PUBLISH from a client must not carry a
// Subscription Identifier [MQTT-3.3.4-6]; the broker treats it as a
// protocol error.
func TestV5PublishWithSubscriptionID(t *testing.T) {
	t.Parallel()
	_, addr := testutil.StartBroker(t, nil)
	r, _ := dial5(t, addr, "pub-subid", true, nil)
	p := codec.Publish{Topic: []byte("a"), Payload: []byte("x"), QoS: 1, PacketID: 1}
	p.Props.Set(codec.PropSubscriptionID)
	p.Props.SubIDs = []uint32{5}
	r.SendPublish(p)
	r.ExpectDisconnect(codec.ProtocolError, waitPkt)
}

// TestV5ConnectErrors: a CONNECT the broker refuses is answered with a
// CONNACK carrying the reason, with session present 0 [MQTT-3.2.2-6], and
// the connection closes [MQTT-3.2.2-7].
//
// The unsupported-version case is special: a CONNECT with protocol level 6
// cannot be known to use the MQTT 5 layout, so the broker answers as a
// 3.1.1 broker would (return code 0x01); [MQTT-3.1.2-2] lets a 5.0 broker
// send 0x84 instead. The test accepts either, each in its own layout.
func TestV5ConnectErrors(t *testing.T) {
	t.Parallel()
	_, addr := testutil.StartBroker(t, nil)
	t.Run("version-6", func(t *testing.T) {
		r := testutil.Dial(t, addr, codec.V5)
		// "MQTT", level 6, clean start, keep-alive 0, no properties, client id "v6".
		body := append(appendMQTTString(nil, "MQTT"), 6, 0x02, 0, 0, 0)
		body = appendMQTTString(body, "v6")
		r.Send(append(codec.AppendHeader(nil, codec.CONNECT, 0, len(body)), body...))
		got := r.ExpectClosed(waitPkt)
		if len(got) != 1 || got[0].Header.Type != codec.CONNACK {
			t.Fatalf("got %d packets, want one CONNACK", len(got))
		}
		b := got[0].Body
		v311 := bytes.Equal(b, []byte{0x00, codec.V3BadProtocolVersion})
		v5 := len(b) >= 3 && b[0] == 0 && b[1] == byte(codec.UnsupportedProtocolVersion)
		if !v311 && !v5 {
			t.Fatalf("CONNACK body % x, want 00 01 (3.1.1) or 00 84 … (5.0)", b)
		}
	})
	for _, tc := range []struct {
		name  string
		props func(*codec.Properties)
		want  codec.ReasonCode
	}{
		// 3.1.2.11.3: Receive Maximum 0 is a Protocol Error.
		{"receive-maximum-0", func(p *codec.Properties) { p.Set(codec.PropReceiveMaximum) }, codec.ProtocolError},
		// 3.1.2.11.4: Maximum Packet Size 0 is a Protocol Error.
		{"maximum-packet-size-0", func(p *codec.Properties) { p.Set(codec.PropMaximumPacketSize) }, codec.ProtocolError},
		// 3.1.2.11.1: a property CONNECT may not carry is a Malformed Packet (2.2.2.2).
		{"topic-alias-in-connect", func(p *codec.Properties) { p.Set(codec.PropTopicAlias); p.TopicAlias = 1 }, codec.MalformedPacket},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := testutil.Dial(t, addr, codec.V5)
			c := codec.Connect{Version: codec.V5, ClientID: []byte(tc.name), CleanStart: true}
			tc.props(&c.Props)
			r.Send(c.Append(nil))
			f := r.Expect(codec.CONNACK, waitPkt)
			var ack codec.Connack
			if err := ack.Decode(f.Body, codec.V5); err != nil {
				t.Fatalf("CONNACK % x: %v", f.Body, err)
			}
			if ack.Code != tc.want || ack.SessionPresent {
				t.Fatalf("CONNACK code %v present %v, want %v, present false", ack.Code, ack.SessionPresent, tc.want)
			}
			if got := r.ExpectClosed(waitPkt); len(got) != 0 {
				t.Fatalf("%v after a refusing CONNACK", got[0].Header.Type)
			}
		})
	}
}

// TestV5TopicAlias: a PUBLISH with a topic and Topic Alias sets the alias;
// one with an empty topic and the alias uses it; subscribers get the full
// topic either way (3.3.2.3.4). Alias 0 or above the Topic Alias Maximum is
// answered with DISCONNECT 0x94 (3.3.4, [MQTT-3.3.2-8], [MQTT-3.3.2-9]); an
// empty topic with an alias never set is a protocol error, 0x82 (3.3.4).
// Aliases do not survive the connection [MQTT-3.3.2-7].
func TestV5TopicAlias(t *testing.T) {
	t.Parallel()
	_, addr := testutil.StartBroker(t, nil)
	sub, _ := dial5(t, addr, "alias-sub", true, nil)
	sub5(t, sub, 1, codec.Subscription{Filter: []byte("alias/#"), QoS: 1}, nil)
	aliased := func(topic string, alias uint16, payload string) codec.Publish {
		p := codec.Publish{Topic: []byte(topic), Payload: []byte(payload), QoS: 1, PacketID: 1}
		p.Props.Set(codec.PropTopicAlias)
		p.Props.TopicAlias = alias
		return p
	}
	pub, ack := dial5(t, addr, "alias-pub", true, nil)
	max := ack.Props.TopicAliasMaximum
	for _, m := range []codec.Publish{
		aliased("alias/one", 1, "set"),
		aliased("", 1, "used"),
		aliased("alias/two", 1, "reset"), // a new topic replaces the mapping
		aliased("", 1, "used-again"),
		aliased("alias/max", max, "at-max"),
		aliased("", max, "at-max-used"),
	} {
		pub.SendPublish(m)
		pub.ExpectAck(codec.PUBACK, 1, waitPkt)
	}
	for _, want := range [][2]string{
		{"alias/one", "set"}, {"alias/one", "used"}, {"alias/two", "reset"},
		{"alias/two", "used-again"}, {"alias/max", "at-max"}, {"alias/max", "at-max-used"},
	} {
		got, _ := receiveAcked(t, sub, want[0], want[1])
		// The subscriber sent no Topic Alias Maximum: it gets no alias [MQTT-3.1.2-27].
		if got.Props.Has(codec.PropTopicAlias) {
			t.Fatalf("delivery carries Topic Alias %d", got.Props.TopicAlias)
		}
	}

	for _, tc := range []struct {
		name string
		p    codec.Publish
		want codec.ReasonCode
	}{
		{"alias-0", aliased("alias/zero", 0, "x"), codec.TopicAliasInvalid},
		{"alias-0-empty-topic", aliased("", 0, "x"), codec.TopicAliasInvalid},
		{"above-maximum", aliased("alias/big", max+1, "x"), codec.TopicAliasInvalid},
		{"unset", aliased("", 2, "x"), codec.ProtocolError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, _ := dial5(t, addr, "alias-"+tc.name, true, nil)
			r.SendPublish(tc.p)
			r.ExpectDisconnect(tc.want, waitPkt)
		})
	}
	t.Run("not-carried-over", func(t *testing.T) {
		pub.SendDisconnect(0)
		pub.ExpectClosed(waitPkt)
		r, _ := dial5(t, addr, "alias-pub", true, nil)
		r.SendPublish(aliased("", 1, "x"))
		r.ExpectDisconnect(codec.ProtocolError, waitPkt)
	})
}

// TestV5ForwardedProperties: Payload Format Indicator [MQTT-3.3.2-4],
// Response Topic [MQTT-3.3.2-15], Correlation Data [MQTT-3.3.2-16], User
// Properties in their order [MQTT-3.3.2-17], [MQTT-3.3.2-18] and Content
// Type [MQTT-3.3.2-20] reach subscribers unaltered, live and retained.
func TestV5ForwardedProperties(t *testing.T) {
	t.Parallel()
	_, addr := testutil.StartBroker(t, nil)
	live, _ := dial5(t, addr, "props-live", true, nil)
	sub5(t, live, 1, codec.Subscription{Filter: []byte("props/t"), QoS: 1}, nil)
	pub, _ := dial5(t, addr, "props-pub", true, nil)
	m := codec.Publish{Topic: []byte("props/t"), Payload: []byte("héllo"), QoS: 1, PacketID: 3, Retain: true}
	pr := &m.Props
	for _, id := range []codec.PropID{codec.PropPayloadFormat, codec.PropContentType, codec.PropResponseTopic,
		codec.PropCorrelationData, codec.PropUser} {
		pr.Set(id)
	}
	pr.PayloadFormat = 1
	pr.ContentType = []byte("text/plain; charset=utf-8")
	pr.ResponseTopic = []byte("props/reply")
	pr.CorrelationData = []byte{0x00, 0x01, 0xfe, 0xff}
	users := [][2]string{{"k1", "v1"}, {"k2", "v2"}, {"k1", "v3"}, {"", ""}, {"ü", "ß"}}
	for _, u := range users {
		pr.User = append(pr.User, codec.UserProperty{Key: []byte(u[0]), Value: []byte(u[1])})
	}
	pub.SendPublish(m)
	pub.ExpectAck(codec.PUBACK, 3, waitPkt)

	check := func(who string, got codec.Publish) {
		t.Helper()
		g := &got.Props
		if !g.Has(codec.PropPayloadFormat) || g.PayloadFormat != 1 {
			t.Errorf("%s: Payload Format Indicator present %v = %d, want 1", who, g.Has(codec.PropPayloadFormat), g.PayloadFormat)
		}
		if string(g.ContentType) != string(pr.ContentType) {
			t.Errorf("%s: Content Type %q, want %q", who, g.ContentType, pr.ContentType)
		}
		if string(g.ResponseTopic) != string(pr.ResponseTopic) {
			t.Errorf("%s: Response Topic %q, want %q", who, g.ResponseTopic, pr.ResponseTopic)
		}
		if !bytes.Equal(g.CorrelationData, pr.CorrelationData) {
			t.Errorf("%s: Correlation Data % x, want % x", who, g.CorrelationData, pr.CorrelationData)
		}
		var gotUsers [][2]string
		for _, u := range g.User {
			gotUsers = append(gotUsers, [2]string{string(u.Key), string(u.Value)})
		}
		if !slices.Equal(gotUsers, users) {
			t.Errorf("%s: User Properties %q, want %q in that order", who, gotUsers, users)
		}
		if g.Has(codec.PropMessageExpiry) {
			t.Errorf("%s: Message Expiry Interval %d on a message published without one", who, g.MessageExpiry)
		}
	}
	got, _ := receiveAcked(t, live, "props/t", "héllo")
	check("live", got)
	late, _ := dial5(t, addr, "props-late", true, nil)
	sub5(t, late, 1, codec.Subscription{Filter: []byte("props/#"), QoS: 1}, nil)
	got, _ = receiveAcked(t, late, "props/t", "héllo")
	check("retained", got)
}

// TestV5SubscriptionIdentifier: a message carries the Subscription
// Identifier of the subscription it matched [MQTT-3.3.4-3]; one copy for
// several matching subscriptions carries all their identifiers
// [MQTT-3.3.4-4]; a subscription without one adds none.
func TestV5SubscriptionIdentifier(t *testing.T) {
	t.Parallel()
	_, addr := testutil.StartBroker(t, nil)
	sub, _ := dial5(t, addr, "sid", true, nil)
	withID := func(id uint32) func(*codec.Properties) {
		return func(p *codec.Properties) { p.Set(codec.PropSubscriptionID); p.SubIDs = []uint32{id} }
	}
	sub5(t, sub, 1, codec.Subscription{Filter: []byte("sid/+"), QoS: 1}, withID(9))
	sub5(t, sub, 2, codec.Subscription{Filter: []byte("sid/a"), QoS: 1}, withID(268435455)) // the largest varint
	sub5(t, sub, 3, codec.Subscription{Filter: []byte("sid/#"), QoS: 1}, nil)
	pub, _ := dial5(t, addr, "sid-pub", true, nil)
	publishAcked(t, pub, "sid/a", "both", 1, 1, false)
	publishAcked(t, pub, "sid/b", "one", 1, 2, false)
	publishAcked(t, pub, "sid/b/c", "none", 1, 3, false)
	for _, want := range []struct {
		topic, payload string
		ids            []uint32
	}{
		{"sid/a", "both", []uint32{9, 268435455}},
		{"sid/b", "one", []uint32{9}},
		{"sid/b/c", "none", nil},
	} {
		got, _ := receiveAcked(t, sub, want.topic, want.payload)
		ids := slices.Sorted(slices.Values(got.Props.SubIDs))
		if !slices.Equal(ids, want.ids) {
			t.Fatalf("%s: Subscription Identifiers %v, want %v", want.topic, ids, want.ids)
		}
	}
	sub.ExpectSilence(quietFor) // one copy each [MQTT-3.3.4-2]
}

// TestV5NoLocal: with No Local a client does not get its own messages
// [MQTT-3.8.3-3], but does get everyone else's.
func TestV5NoLocal(t *testing.T) {
	t.Parallel()
	_, addr := testutil.StartBroker(t, nil)
	self, _ := dial5(t, addr, "nl-self", true, nil)
	sub5(t, self, 1, codec.Subscription{Filter: []byte("nl/t"), QoS: 1, NoLocal: true}, nil)
	watch, _ := dial5(t, addr, "nl-watch", true, nil)
	sub5(t, watch, 1, codec.Subscription{Filter: []byte("nl/t"), QoS: 1}, nil)
	other, _ := dial5(t, addr, "nl-other", true, nil)

	publishAcked(t, self, "nl/t", "mine", 1, 1, false)
	receiveAcked(t, watch, "nl/t", "mine") // routed, and so already not queued for self
	publishAcked(t, other, "nl/t", "theirs", 1, 1, false)
	receiveAcked(t, self, "nl/t", "theirs")
	self.ExpectSilence(quietFor)
}

// TestV5RetainAsPublished: with Retain As Published the RETAIN flag of a
// live delivery is the publisher's [MQTT-3.3.1-13]; without it, 0
// [MQTT-3.3.1-12].
func TestV5RetainAsPublished(t *testing.T) {
	t.Parallel()
	_, addr := testutil.StartBroker(t, nil)
	rap, _ := dial5(t, addr, "rap-on", true, nil)
	sub5(t, rap, 1, codec.Subscription{Filter: []byte("rap/t"), QoS: 1, RetainAsPublished: true}, nil)
	plain, _ := dial5(t, addr, "rap-off", true, nil)
	sub5(t, plain, 1, codec.Subscription{Filter: []byte("rap/t"), QoS: 1}, nil)
	pub, _ := dial5(t, addr, "rap-pub", true, nil)
	publishAcked(t, pub, "rap/t", "retained", 1, 1, true)
	publishAcked(t, pub, "rap/t", "normal", 1, 2, false)
	for _, tc := range []struct {
		r       *testutil.Raw
		payload string
		retain  bool
	}{
		{rap, "retained", true}, {rap, "normal", false},
		{plain, "retained", false}, {plain, "normal", false},
	} {
		if _, flags := receiveAcked(t, tc.r, "rap/t", tc.payload); (flags&0x01 != 0) != tc.retain {
			t.Fatalf("%q: RETAIN %v, want %v", tc.payload, flags&0x01 != 0, tc.retain)
		}
	}
}

// TestV5RetainHandling: Retain Handling 0 sends retained messages on every
// subscribe [MQTT-3.3.1-9], 1 only when the subscription is new
// [MQTT-3.3.1-10], 2 never [MQTT-3.3.1-11].
func TestV5RetainHandling(t *testing.T) {
	t.Parallel()
	_, addr := testutil.StartBroker(t, nil)
	pub, _ := dial5(t, addr, "rh-pub", true, nil)
	publishAcked(t, pub, "rh/t", "kept", 1, 1, true)
	for _, tc := range []struct {
		rh         byte
		first, re  bool // retained message sent on the first and on a repeated SUBSCRIBE
		clientName string
	}{
		{0, true, true, "rh0"},
		{1, true, false, "rh1"},
		{2, false, false, "rh2"},
	} {
		t.Run(tc.clientName, func(t *testing.T) {
			r, _ := dial5(t, addr, tc.clientName, true, nil)
			for i, want := range []bool{tc.first, tc.re} {
				sub5(t, r, uint16(i+1), codec.Subscription{Filter: []byte("rh/+"), QoS: 1, RetainHandling: tc.rh}, nil)
				if want {
					if _, flags := receiveAcked(t, r, "rh/t", "kept"); flags&0x01 == 0 {
						t.Fatalf("subscribe %d: retained message without RETAIN [MQTT-3.3.1-8]", i+1)
					}
				}
				// A live message from the same publisher follows anything retained.
				publishAcked(t, pub, "rh/t", fmt.Sprint("live-", tc.rh, "-", i), 0, 0, false)
				receiveAcked(t, r, "rh/t", fmt.Sprint("live-", tc.rh, "-", i))
			}
		})
	}
}

// TestV5SharedSubscription: each message to "$share/g/t" goes to exactly one
// member of group g (4.8.2), round-robin here so both get some, while a
// non-shared subscriber gets every message.
func TestV5SharedSubscription(t *testing.T) {
	t.Parallel()
	_, addr := testutil.StartBroker(t, nil)
	m1, _ := dial5(t, addr, "share-1", true, nil)
	m2, _ := dial5(t, addr, "share-2", true, nil)
	for _, m := range []*testutil.Raw{m1, m2} {
		if code := sub5(t, m, 1, codec.Subscription{Filter: []byte("$share/g/sh/+"), QoS: 1}, nil); code != 1 {
			t.Fatalf("SUBACK %v, want 0x01", code)
		}
	}
	all, _ := dial5(t, addr, "share-all", true, nil)
	sub5(t, all, 1, codec.Subscription{Filter: []byte("sh/+"), QoS: 1}, nil)
	pub, _ := dial5(t, addr, "share-pub", true, nil)
	const n = 10
	want := make([]string, n)
	for i := range want {
		want[i] = fmt.Sprint(i)
		publishAcked(t, pub, "sh/t", want[i], 1, uint16(i+1), false)
	}
	receiveInOrder(t, all, "sh/t", want...) // every message, in order
	seen := map[string]int{}
	counts := []int{}
	for _, m := range []*testutil.Raw{m1, m2} {
		got := drainPublishes(t, m, quietFor)
		counts = append(counts, len(got))
		for _, p := range got {
			seen[string(p.Payload)]++
		}
	}
	for _, w := range want {
		if seen[w] != 1 {
			t.Errorf("message %s reached %d group members, want exactly 1", w, seen[w])
		}
	}
	if counts[0] == 0 || counts[1] == 0 || counts[0]+counts[1] != n {
		t.Errorf("members got %v messages, want both some and %d in all", counts, n)
	}
}

// TestV5SharedSubscriptionInvalid: a malformed shared filter gets SUBACK
// 0x8F (Topic Filter invalid) [MQTT-4.8.2-1], [MQTT-4.8.2-2] while valid
// filters in the same SUBSCRIBE are granted; No Local on a shared
// subscription is a protocol error, DISCONNECT 0x82 [MQTT-3.8.3-4].
func TestV5SharedSubscriptionInvalid(t *testing.T) {
	t.Parallel()
	_, addr := testutil.StartBroker(t, nil)
	r, _ := dial5(t, addr, "share-bad", true, nil)
	s := codec.Subscribe{PacketID: 7}
	var want []codec.ReasonCode
	for _, f := range []struct {
		filter string
		code   codec.ReasonCode
	}{
		{"$share/g", codec.TopicFilterInvalid},    // no filter
		{"$share//x", codec.TopicFilterInvalid},   // empty share name
		{"$share/g/", codec.TopicFilterInvalid},   // empty filter
		{"$share/g+/x", codec.TopicFilterInvalid}, // wildcard in the share name
		{"$share/#/x", codec.TopicFilterInvalid},
		{"$share/g/ok/+", codec.GrantedQoS1},
		{"$share/g/a/#/b", codec.TopicFilterInvalid}, // bad inner filter
	} {
		s.Filters = append(s.Filters, codec.Subscription{Filter: []byte(f.filter), QoS: 1})
		want = append(want, f.code)
	}
	if ack := r.SubscribeWith(s); !slices.Equal(ack.Codes, want) {
		t.Fatalf("SUBACK codes %v, want %v", ack.Codes, want)
	}
	nl := codec.Subscribe{PacketID: 8, Filters: []codec.Subscription{{Filter: []byte("$share/g/nl"), QoS: 1, NoLocal: true}}}
	r.Send(nl.Append(nil, codec.V5))
	r.ExpectDisconnect(codec.ProtocolError, waitPkt)
}
