package broker_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	"github.com/shoalmq/shoal/broker"
	"github.com/shoalmq/shoal/internal/testutil"
	"github.com/shoalmq/shoal/router"
)

// MQTT 5 end-to-end tests with paho, part 3: subscription identifiers and
// options, SUBACK and UNSUBACK reason codes, shared subscriptions. Helpers
// are in e2e_v5_paho_test.go.

// TestV5PahoSubscriptionIdentifiers: two overlapping subscriptions with
// identifiers 7 and 9 (and a third without one) all match "sid/a". Shoal
// sends ONE copy (MQTT 5 allows one or one per subscription,
// [MQTT-3.3.4-2]) and that copy must carry both identifiers [MQTT-3.3.4-3],
// [MQTT-3.3.4-4]. paho's PublishProperties keeps a single
// SubscriptionIdentifier (the last one decoded), so the identifiers are read
// from the bytes paho received; paho's value must be one of them.
func TestV5PahoSubscriptionIdentifiers(t *testing.T) {
	t.Parallel()
	_, addr := testutil.StartBroker(t, nil)
	sub, _ := p5Dial(t, addr, p5CP("sid-sub"), nil)
	for _, s := range []struct {
		filter string
		id     int
	}{{"sid/+", 7}, {"sid/#", 9}, {"+/a", 0}} {
		p := &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: s.filter, QoS: 1}}}
		if s.id != 0 {
			id := s.id
			p.Properties = &paho.SubscribeProperties{SubscriptionIdentifier: &id}
		}
		sub.subWith(t, p, 1)
	}
	pub, _ := p5Dial(t, addr, p5CP("sid-pub"), nil)
	pub.say(t, "sid/a", "both", 1)
	pub.say(t, "sid/b/c", "one", 1)
	for _, want := range []struct {
		topic, payload string
		ids            []uint32
	}{{"sid/a", "both", []uint32{7, 9}}, {"sid/b/c", "one", []uint32{9}}} {
		got := sub.expect(t, want.topic, want.payload)
		if id := got.Properties.SubscriptionIdentifier; id == nil || !slices.Contains(want.ids, uint32(*id)) {
			t.Errorf("%s: paho reports Subscription Identifier %s, want one of %v", want.topic, p5Ptr(id), want.ids)
		}
	}
	sub.quiet(t) // one copy per message
	wire := sub.tap.publishes(t)
	if len(wire) != 2 {
		t.Fatalf("broker sent %d PUBLISH packets, want 2 (one copy each)", len(wire))
	}
	for i, want := range [][]uint32{{7, 9}, {9}} {
		if ids := slices.Sorted(slices.Values(wire[i].Props.SubIDs)); !slices.Equal(ids, want) {
			t.Errorf("%s: Subscription Identifiers %v on the wire, want %v [MQTT-3.3.4-3], [MQTT-3.3.4-4]", wire[i].Topic, ids, want)
		}
	}
}

// TestV5PahoSubscriptionOptions: No Local, Retain As Published and Retain
// Handling, as set by paho's SubscribeOptions.
func TestV5PahoSubscriptionOptions(t *testing.T) {
	t.Parallel()

	// No Local: a client does not get its own messages [MQTT-3.8.3-3], but
	// does get everyone else's; a subscriber without it gets both.
	t.Run("no-local", func(t *testing.T) {
		t.Parallel()
		_, addr := testutil.StartBroker(t, nil)
		self, _ := p5Dial(t, addr, p5CP("nl-self"), nil)
		self.subWith(t, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "nl/t", QoS: 1, NoLocal: true}}}, 1)
		watch, _ := p5Dial(t, addr, p5CP("nl-watch"), nil)
		watch.sub(t, "nl/t", 1)
		other, _ := p5Dial(t, addr, p5CP("nl-other"), nil)
		self.say(t, "nl/t", "mine", 1)
		watch.expect(t, "nl/t", "mine") // routed, and not to self
		other.say(t, "nl/t", "theirs", 1)
		watch.expect(t, "nl/t", "theirs")
		self.expect(t, "nl/t", "theirs") // first and only
		self.quiet(t)
	})

	// Retain As Published: the live delivery's RETAIN is the publisher's
	// with the option [MQTT-3.3.1-13], 0 without it [MQTT-3.3.1-12].
	t.Run("retain-as-published", func(t *testing.T) {
		t.Parallel()
		_, addr := testutil.StartBroker(t, nil)
		rap, _ := p5Dial(t, addr, p5CP("rap-on"), nil)
		rap.subWith(t, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "rap/t", QoS: 1, RetainAsPublished: true}}}, 1)
		plain, _ := p5Dial(t, addr, p5CP("rap-off"), nil)
		plain.sub(t, "rap/t", 1)
		pub, _ := p5Dial(t, addr, p5CP("rap-pub"), nil)
		pub.pub(t, &paho.Publish{Topic: "rap/t", QoS: 1, Retain: true, Payload: []byte("retained")})
		pub.say(t, "rap/t", "normal", 1)
		for _, tc := range []struct {
			c       *p5Client
			payload string
			retain  bool
		}{{rap, "retained", true}, {rap, "normal", false}, {plain, "retained", false}, {plain, "normal", false}} {
			if got := tc.c.expect(t, "rap/t", tc.payload); got.Retain != tc.retain {
				t.Errorf("%s, %q: RETAIN %v, want %v", tc.c.ClientID(), tc.payload, got.Retain, tc.retain)
			}
		}
	})

	// Retain Handling: 0 sends the retained message at every SUBSCRIBE
	// [MQTT-3.3.1-9], 1 only when the subscription is new [MQTT-3.3.1-10],
	// 2 never [MQTT-3.3.1-11]; sent with RETAIN 1 (3.3.1.3).
	t.Run("retain-handling", func(t *testing.T) {
		t.Parallel()
		_, addr := testutil.StartBroker(t, nil)
		pub, _ := p5Dial(t, addr, p5CP("rh-pub"), nil)
		pub.pub(t, &paho.Publish{Topic: "rh/t", QoS: 1, Retain: true, Payload: []byte("kept")})
		for rh, want := range [][2]int{{1, 1}, {1, 0}, {0, 0}} {
			c, _ := p5Dial(t, addr, p5CP(fmt.Sprint("rh-", rh)), nil)
			for i := range 2 {
				c.subWith(t, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "rh/+", QoS: 1, RetainHandling: byte(rh)}}}, 1)
				got := c.drain()
				if len(got) != want[i] {
					t.Errorf("Retain Handling %d, SUBSCRIBE %d: %d retained messages, want %d", rh, i+1, len(got), want[i])
				}
				for _, p := range got {
					if string(p.Payload) != "kept" || !p.Retain {
						t.Errorf("Retain Handling %d: got %q RETAIN %v, want %q with RETAIN 1", rh, p.Payload, p.Retain, "kept")
					}
				}
			}
		}
	})
}

// TestV5PahoSubackUnsuback: one reason code per filter, in order
// [MQTT-3.8.4-6], [MQTT-3.9.3-1]: the granted QoS, capped by the broker's
// Maximum QoS 1 [MQTT-3.8.4-7] (QoS 2 requests still accepted
// [MQTT-3.2.2-10]), or 0x8F for an invalid filter (3.9.3). UNSUBACK: 0x00
// for a subscription removed, 0x11 when none existed (3.11.3), in order
// [MQTT-3.11.3-1], one UNSUBSCRIBE handled as a sequence [MQTT-3.10.4-6];
// afterwards the removed filter no longer matches [MQTT-3.10.4-2].
func TestV5PahoSubackUnsuback(t *testing.T) {
	t.Parallel()
	_, addr := testutil.StartBroker(t, func(c *broker.Config) { c.MaxQoS = 1 })
	c, _ := p5Dial(t, addr, p5CP("codes"), nil)
	s := &paho.Subscribe{}
	var want []byte
	for _, f := range []struct {
		filter string
		qos    byte
		code   byte
	}{
		{"ca/q2", 2, 0x01},
		{"ca/#/bad", 1, 0x8F}, // '#' not last [MQTT-4.7.1-1]
		{"ca/q0", 0, 0x00},
		{"ca/q1", 1, 0x01},
		{"$share/g/ca/s", 2, 0x01},
		{"$share//ca", 1, 0x8F}, // empty share name [MQTT-4.8.2-1]
	} {
		s.Subscriptions = append(s.Subscriptions, paho.SubscribeOptions{Topic: f.filter, QoS: f.qos})
		want = append(want, f.code)
	}
	sa, err := c.Subscribe(p5Ctx(t), s)
	if sa == nil {
		t.Fatalf("no SUBACK: %v", err)
	}
	if !slices.Equal(sa.Reasons, want) {
		t.Fatalf("SUBACK reason codes % x, want % x", sa.Reasons, want)
	}
	ua, err := c.Unsubscribe(p5Ctx(t), &paho.Unsubscribe{Topics: []string{"ca/q2", "ca/never", "ca/q0", "ca/q2", "$share/g/ca/s"}})
	if ua == nil {
		t.Fatalf("no UNSUBACK: %v", err)
	}
	if w := []byte{0x00, 0x11, 0x00, 0x11, 0x00}; !slices.Equal(ua.Reasons, w) {
		t.Fatalf("UNSUBACK reason codes % x, want % x", ua.Reasons, w)
	}
	pub, _ := p5Dial(t, addr, p5CP("codes-pub"), nil)
	pub.say(t, "ca/q2", "gone", 1)
	pub.say(t, "ca/q1", "kept", 1)
	c.expect(t, "ca/q1", "kept")
	c.quiet(t)
}

// p5Gather collects what members receive until they hold n messages in
// all, failing after p5Wait, then waits p5Quiet for any extra. It returns
// the payloads per member.
func p5Gather(t *testing.T, n int, members ...*p5Client) [][]string {
	t.Helper()
	got := make([][]string, len(members))
	total := 0
	pull := func() bool {
		moved := false
		for i, m := range members {
			for {
				select {
				case p := <-m.msgs:
					got[i] = append(got[i], string(p.Payload))
					total++
					moved = true
					continue
				default:
				}
				break
			}
		}
		return moved
	}
	deadline := time.Now().Add(p5Wait)
	for total < n {
		if !pull() {
			if time.Now().After(deadline) {
				t.Fatalf("members got %d of %d messages: %q", total, n, got)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	time.Sleep(p5Quiet)
	pull()
	return got
}

// p5Once fails unless the members' messages together are want, each once.
func p5Once(t *testing.T, got [][]string, want []string) {
	t.Helper()
	seen := map[string]int{}
	for _, g := range got {
		for _, p := range g {
			seen[p]++
		}
	}
	for _, w := range want {
		if seen[w] != 1 {
			t.Errorf("message %q reached %d members, want exactly 1 (4.8.2)", w, seen[w])
		}
		delete(seen, w)
	}
	if len(seen) > 0 {
		t.Errorf("unexpected messages: %v", seen)
	}
}

// p5Members connects n paho clients to addr (connect made by cp) and
// subscribes each to filter at QoS 1.
func p5Members(t *testing.T, addr, filter string, n int, cp func(i int) *paho.Connect, edit func(i int, cfg *paho.ClientConfig)) []*p5Client {
	t.Helper()
	var ms []*p5Client
	for i := range n {
		var e func(*paho.ClientConfig)
		if edit != nil {
			e = func(cfg *paho.ClientConfig) { edit(i, cfg) }
		}
		m, _ := p5Dial(t, addr, cp(i), e)
		m.sub(t, filter, 1)
		ms = append(ms, m)
	}
	return ms
}

// TestV5PahoShared: shared subscriptions "$share/g/..." with three paho
// members (4.8.2): each message goes to exactly one member of the group,
// chosen by Config.SharedStrategy, and members that are offline or stalled
// are passed over.
func TestV5PahoShared(t *testing.T) {
	t.Parallel()
	payloads := func(prefix string, n int) []string {
		var out []string
		for i := range n {
			out = append(out, fmt.Sprint(prefix, i))
		}
		return out
	}

	// Round-robin (the default): 30 messages split 10/10/10.
	t.Run("round-robin", func(t *testing.T) {
		t.Parallel()
		_, addr := testutil.StartBroker(t, nil)
		ms := p5Members(t, addr, "$share/g/rr/t", 3, func(i int) *paho.Connect { return p5CP(fmt.Sprint("rr-", i)) }, nil)
		pub, _ := p5Dial(t, addr, p5CP("rr-pub"), nil)
		want := payloads("m", 30)
		for _, p := range want {
			pub.say(t, "rr/t", p, 1)
		}
		got := p5Gather(t, len(want), ms...)
		p5Once(t, got, want)
		for i, g := range got {
			if len(g) != 10 {
				t.Errorf("member %d got %d messages, want 10 (round-robin over 3)", i, len(g))
			}
		}
	})

	// Config.SharedStrategy = router.HashTopic: all messages of a topic go
	// to one member.
	t.Run("hash-topic", func(t *testing.T) {
		t.Parallel()
		_, addr := testutil.StartBroker(t, func(c *broker.Config) { c.SharedStrategy = router.HashTopic })
		ms := p5Members(t, addr, "$share/g/ht/+", 3, func(i int) *paho.Connect { return p5CP(fmt.Sprint("ht-", i)) }, nil)
		pub, _ := p5Dial(t, addr, p5CP("ht-pub"), nil)
		var want []string
		for i := range 5 {
			for _, tp := range []string{"a", "b", "c", "d", "e", "f"} {
				p := fmt.Sprint(tp, i)
				pub.say(t, "ht/"+tp, p, 1)
				want = append(want, p)
			}
		}
		got := p5Gather(t, len(want), ms...)
		p5Once(t, got, want)
		owner := map[byte]int{}
		for i, g := range got {
			for _, p := range g {
				if o, ok := owner[p[0]]; ok && o != i {
					t.Errorf("topic ht/%c went to members %d and %d, want one", p[0], o, i)
				}
				owner[p[0]] = i
			}
		}
	})

	// A member with a persistent session that disconnects is passed over
	// while offline: the other two get every message, none is lost at
	// QoS 1, and none was parked for the offline member.
	t.Run("offline-member", func(t *testing.T) {
		t.Parallel()
		_, addr := testutil.StartBroker(t, nil)
		ms := p5Members(t, addr, "$share/g/off/t", 3, func(i int) *paho.Connect { return p5Expiry(fmt.Sprint("off-", i), true, 60) }, nil)
		ms[2].bye(t)
		time.Sleep(200 * time.Millisecond) // let the broker process the DISCONNECT
		pub, _ := p5Dial(t, addr, p5CP("off-pub"), nil)
		want := payloads("m", 30)
		for _, p := range want {
			pub.say(t, "off/t", p, 1)
		}
		got := p5Gather(t, len(want), ms[0], ms[1])
		p5Once(t, got, want)
		back, ack := p5Dial(t, addr, p5Expiry("off-2", false, 60), nil)
		if !ack.SessionPresent {
			t.Fatal("off-2: Session Present 0, want 1")
		}
		back.quiet(t)
	})

	// A member whose window is full — Receive Maximum 2, manual acks never
	// given — stops getting the group's messages. Round-robin offers it
	// messages 2, 5 and 8 of the first 9: two fill its window, the third
	// waits in its queue, and from then on it is passed over. (How many more
	// reach its queue before the broker notices depends on scheduling — the
	// backlog check sees the session queue, not deliveries still on their
	// way to its event loop — so the first 9 are not counted.) All of the
	// next 21 must go to the other two. When it leaves (session expiry 0)
	// what it never acknowledged goes to the others: at QoS 1 none is lost.
	t.Run("stalled-member", func(t *testing.T) {
		t.Parallel()
		_, addr := testutil.StartBroker(t, nil)
		ms := p5Members(t, addr, "$share/g/st/t", 3, func(i int) *paho.Connect {
			cp := p5CP(fmt.Sprint("st-", i))
			if i == 2 {
				cp.Properties = &paho.ConnectProperties{ReceiveMaximum: paho.Uint16(2)}
			}
			return cp
		}, func(i int, cfg *paho.ClientConfig) { cfg.EnableManualAcknowledgment = i == 2 })
		pub, _ := p5Dial(t, addr, p5CP("st-pub"), nil)
		want := payloads("m", 30)
		for _, p := range want[:9] {
			pub.say(t, "st/t", p, 1)
		}
		stalled := ms[2].drain()
		if len(stalled) != 2 {
			t.Fatalf("stalled member got %d messages, want its Receive Maximum, 2 [MQTT-3.3.4-9]", len(stalled))
		}
		first := p5Gather(t, 1, ms[0], ms[1]) // whatever of the first 9 they got
		for _, p := range want[9:] {
			pub.say(t, "st/t", p, 1)
		}
		second := p5Gather(t, len(want[9:]), ms[0], ms[1])
		p5Once(t, second, want[9:])
		if len(second[0]) == 0 || len(second[1]) == 0 {
			t.Errorf("with one member stalled the other two got %d and %d, want both some", len(second[0]), len(second[1]))
		}
		if more := ms[2].drain(); len(more) != 0 {
			t.Fatalf("stalled member got %d more messages past its window", len(more))
		}
		ms[2].bye(t) // its session ends: what it never acknowledged goes to the others
		got := [][]string{first[0], first[1], second[0], second[1]}
		n := len(first[0]) + len(first[1])
		rest := p5Gather(t, 9-n, ms[0], ms[1])
		p5Once(t, append(got, rest...), want)
	})
}
