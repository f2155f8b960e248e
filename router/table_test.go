package router

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"sync"
	"testing"
)

// testSub is the tests' Subscriber: a pointer, compared by identity.
type testSub struct{ id string }

func (s *testSub) ClientID() string { return s.id }

func newSub(id string) *testSub { return &testSub{id: id} }

// matchIDs runs Match and returns the client ids received, sorted, shared
// entries marked with a "*" suffix.
func matchIDs(tb *Table, topic string, from Subscriber, fromID string) []string {
	var m Matches
	tb.Match([]byte(topic), from, []byte(fromID), &m)
	out := make([]string, 0, len(m.List))
	for _, e := range m.List {
		id := e.Sub.ClientID()
		if e.Shared {
			id += "*"
		}
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

func TestMatchRules(t *testing.T) {
	cases := []struct {
		clause, filter, topic string
		want                  bool
	}{
		{"literal", "a/b", "a/b", true},
		{"literal", "a/b", "a/c", false},
		{"literal", "a/b", "a/b/c", false},
		{"literal", "a/b/c", "a/b", false},
		{"[MQTT-4.7.3-4] case sensitive", "Sport", "sport", false},
		{"[MQTT-4.7.3-4] no normalisation", "caf\u00e9", "cafe\u0301", false},
		{"[MQTT-4.7.1-2] + one level", "sport/tennis/+", "sport/tennis/player1", true},
		{"[MQTT-4.7.1-2] + not two levels", "sport/tennis/+", "sport/tennis/player1/ranking", false},
		{"[MQTT-4.7.1-2] + not zero levels", "sport/+", "sport", false},
		{"[MQTT-4.7.1-2] + matches empty level", "sport/+", "sport/", true},
		{"[MQTT-4.7.1-2] + first level empty", "+/b", "/b", true},
		{"[MQTT-4.7.1-2] + alone", "+", "finance", true},
		{"[MQTT-4.7.1-2] + alone, two levels", "+", "/finance", false},
		{"[MQTT-4.7.1-2] +/+", "+/+", "/finance", true},
		{"[MQTT-4.7.1-2] /+", "/+", "/finance", true},
		{"[MQTT-4.7.1-2] + in the middle", "a/+/c", "a/b/c", true},
		{"[MQTT-4.7.1-2] + in the middle, empty", "a/+/c", "a//c", true},
		{"[MQTT-4.7.1-1] # everything", "#", "a/b/c", true},
		{"[MQTT-4.7.1-1] # one level", "#", "a", true},
		{"[MQTT-4.7.1-1] # only separators", "#", "/", true},
		{"[MQTT-4.7.1-1] # matches parent", "sport/#", "sport", true},
		{"[MQTT-4.7.1-1] # matches children", "sport/#", "sport/tennis/player1", true},
		{"[MQTT-4.7.1-1] # matches empty child", "sport/#", "sport/", true},
		{"[MQTT-4.7.1-1] # is per level", "sport/#", "sports", false},
		{"[MQTT-4.7.1-1] # not grandparent", "sport/tennis/#", "sport", false},
		{"[MQTT-4.7.1-1] +/#", "a/+/#", "a/b", true},
		{"[MQTT-4.7.1-1] +/# needs the + level", "a/+/#", "a", false},
		{"[MQTT-4.7.1-1] /#", "/#", "/", true},
		{"[MQTT-4.7.2-1] # vs $", "#", "$SYS/broker/uptime", false},
		{"[MQTT-4.7.2-1] + vs $", "+/monitor/Clients", "$SYS/monitor/Clients", false},
		{"[MQTT-4.7.2-1] +/# vs $", "+/#", "$SYS", false},
		{"[MQTT-4.7.2-1] $SYS/#", "$SYS/#", "$SYS/monitor/Clients", true},
		{"[MQTT-4.7.2-1] $SYS/# parent", "$SYS/#", "$SYS", true},
		{"[MQTT-4.7.2-1] $SYS/monitor/+", "$SYS/monitor/+", "$SYS/monitor/Clients", true},
		{"[MQTT-4.7.2-1] $ later is plain", "a/#", "a/$x", true},
		{"[MQTT-4.7.2-1] + later vs $", "a/+", "a/$x", true},
		{"empty levels", "a//b", "a//b", true},
		{"empty levels", "a/b", "a//b", false},
		{"empty levels", "a//b", "a/b", false},
		{"empty levels", "/a", "/a", true},
		{"empty levels", "/a", "a", false},
		{"empty levels", "a/", "a/", true},
		{"empty levels", "a/", "a", false},
		{"empty levels", "/", "/", true},
		{"empty levels", "//", "/", false},
	}
	for _, c := range cases {
		t.Run(c.clause+" "+c.filter+" "+c.topic, func(t *testing.T) {
			tb := NewTable(4, RoundRobin)
			tb.Subscribe(newSub("c"), c.filter, Options{QoS: 1})
			got := len(matchIDs(tb, c.topic, nil, "")) == 1
			if got != c.want {
				t.Fatalf("%s: filter %q topic %q: matched=%v, want %v", c.clause, c.filter, c.topic, got, c.want)
			}
			// The same rule holds for a shared subscription's inner filter.
			ts := NewTable(4, RoundRobin)
			ts.Subscribe(newSub("c"), "$share/g/"+c.filter, Options{QoS: 1})
			if got := len(matchIDs(ts, c.topic, nil, "")) == 1; got != c.want {
				t.Fatalf("%s: shared filter %q topic %q: matched=%v, want %v", c.clause, c.filter, c.topic, got, c.want)
			}
		})
	}
}

// [MQTT-3.3.4-2], [MQTT-3.3.4-3], [MQTT-3.3.4-4]
func TestMatchOverlapDedupe(t *testing.T) {
	tb := NewTable(0, RoundRobin)
	a, b := newSub("a"), newSub("b")
	tb.Subscribe(a, "x/y", Options{QoS: 0, SubID: 1})
	tb.Subscribe(a, "x/+", Options{QoS: 2, SubID: 2})
	tb.Subscribe(a, "#", Options{QoS: 1})
	tb.Subscribe(a, "x/#", Options{QoS: 0, SubID: 3, RetainAsPublished: true})
	tb.Subscribe(b, "x/y", Options{QoS: 1, SubID: 9})

	var m Matches
	tb.Match([]byte("x/y"), nil, nil, &m)
	if len(m.List) != 2 {
		t.Fatalf("got %d matches, want 2: %+v", len(m.List), m.List)
	}
	for _, e := range m.List {
		ids := slices.Clone(e.SubIDs)
		slices.Sort(ids)
		switch e.Sub {
		case a:
			if e.QoS != 2 || !e.RetainAsPublished || !slices.Equal(ids, []uint32{1, 2, 3}) || e.Shared {
				t.Errorf("a: got %+v, want QoS 2, RAP, SubIDs [1 2 3]", e)
			}
		case b:
			if e.QoS != 1 || e.RetainAsPublished || !slices.Equal(ids, []uint32{9}) {
				t.Errorf("b: got %+v", e)
			}
		default:
			t.Errorf("unexpected %v", e.Sub)
		}
	}
	// A filter without an identifier contributes none.
	m.Reset()
	tb.Match([]byte("z"), nil, nil, &m)
	if len(m.List) != 1 || m.List[0].Sub != a || len(m.List[0].SubIDs) != 0 || m.List[0].QoS != 1 {
		t.Fatalf("z: got %+v", m.List)
	}
}

// Large fan-outs de-duplicate through the map, not a quadratic scan.
func TestMatchOverlapDedupeLarge(t *testing.T) {
	tb := NewTable(0, RoundRobin)
	const n = 1500
	for i := range n {
		s := newSub(fmt.Sprint(i))
		tb.Subscribe(s, "big/t", Options{QoS: 0, SubID: 1})
		if i%2 == 0 {
			tb.Subscribe(s, "big/+", Options{QoS: 1, SubID: 2})
		}
		if i%3 == 0 {
			tb.Subscribe(s, "#", Options{QoS: 2})
		}
	}
	var m Matches
	for round := range 3 { // reuse must not leak entries between calls
		m.Reset()
		tb.Match([]byte("big/t"), nil, nil, &m)
		if len(m.List) != n {
			t.Fatalf("round %d: %d matches, want %d", round, len(m.List), n)
		}
		seen := make(map[Subscriber]bool)
		for _, e := range m.List {
			if seen[e.Sub] {
				t.Fatalf("duplicate %v", e.Sub.ClientID())
			}
			seen[e.Sub] = true
			var i int
			fmt.Sscan(e.Sub.ClientID(), &i)
			wantQoS, wantIDs := byte(0), []uint32{1}
			if i%2 == 0 {
				wantQoS, wantIDs = 1, []uint32{1, 2}
			}
			if i%3 == 0 {
				wantQoS = 2
			}
			ids := slices.Clone(e.SubIDs)
			slices.Sort(ids)
			if e.QoS != wantQoS || !slices.Equal(ids, wantIDs) {
				t.Fatalf("%d: got QoS %d ids %v, want %d %v", i, e.QoS, ids, wantQoS, wantIDs)
			}
		}
	}
}

// [MQTT-3.8.3-3]
func TestMatchNoLocal(t *testing.T) {
	tb := NewTable(0, RoundRobin)
	a, b := newSub("a"), newSub("b")
	tb.Subscribe(a, "n/l", Options{QoS: 1, NoLocal: true, SubID: 1})
	tb.Subscribe(b, "n/l", Options{QoS: 1, NoLocal: true})

	for _, c := range []struct {
		name   string
		from   Subscriber
		fromID string
		want   []string
	}{
		{"publisher a", a, "a", []string{"b"}},
		{"publisher by id only (will)", nil, "a", []string{"b"}},
		{"publisher c", newSub("c"), "c", []string{"a", "b"}},
		{"broker message", nil, "", []string{"a", "b"}},
	} {
		if got := matchIDs(tb, "n/l", c.from, c.fromID); !slices.Equal(got, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
		}
	}

	// No Local is per subscription: a's other filter still delivers, with
	// only its own options.
	tb.Subscribe(a, "n/+", Options{QoS: 0, SubID: 2})
	var m Matches
	tb.Match([]byte("n/l"), a, []byte("a"), &m)
	if len(m.List) != 2 {
		t.Fatalf("got %+v", m.List)
	}
	for _, e := range m.List {
		if e.Sub == a && (e.QoS != 0 || !slices.Equal(e.SubIDs, []uint32{2})) {
			t.Errorf("a via n/+: got %+v", e)
		}
	}
}

// [MQTT-3.8.4-3]
func TestSubscribeReplaces(t *testing.T) {
	tb := NewTable(0, RoundRobin)
	a := newSub("a")
	if tb.Subscribe(a, "r/s", Options{QoS: 0, SubID: 1}) {
		t.Fatal("first Subscribe reported existed")
	}
	if !tb.Subscribe(a, "r/s", Options{QoS: 2, SubID: 7}) {
		t.Fatal("second Subscribe did not report existed")
	}
	if tb.Count() != 1 {
		t.Fatalf("Count = %d, want 1", tb.Count())
	}
	var m Matches
	tb.Match([]byte("r/s"), nil, nil, &m)
	if len(m.List) != 1 || m.List[0].QoS != 2 || !slices.Equal(m.List[0].SubIDs, []uint32{7}) {
		t.Fatalf("got %+v, want the replaced options", m.List)
	}
	// Another subscriber, or the same subscriber in a shared group, is a
	// different subscription.
	if tb.Subscribe(newSub("b"), "r/s", Options{}) || tb.Subscribe(a, "$share/g/r/s", Options{}) {
		t.Fatal("distinct subscription reported existed")
	}
	if !tb.Subscribe(a, "$share/g/r/s", Options{QoS: 1}) {
		t.Fatal("shared re-subscribe did not report existed")
	}
	if tb.Count() != 3 {
		t.Fatalf("Count = %d, want 3", tb.Count())
	}
}

func TestUnsubscribePrunes(t *testing.T) {
	tb := NewTable(8, RoundRobin)
	a, b := newSub("a"), newSub("b")
	filters := []string{
		"a", "a/b", "a/b/c", "a/+/c", "a/#", "#", "+", "+/+", "/", "//", "a//b",
		"$SYS/#", "$share/g/a/b", "$share/h/a/b", "$share/g/+/x", "$share/g/#",
		"$share/bad", "$share//x", "sp+rt/#/x", "",
	}
	// Enough siblings to switch a node to a map and back.
	for i := range 3 * maxListKids {
		filters = append(filters, fmt.Sprintf("wide/%d/x", i))
	}
	for _, s := range []*testSub{a, b} {
		for _, f := range filters {
			tb.Subscribe(s, f, Options{QoS: 1})
		}
	}
	if got, want := tb.Count(), 2*len(filters); got != want {
		t.Fatalf("Count = %d, want %d", got, want)
	}
	if tb.Unsubscribe(a, "not/there") || tb.Unsubscribe(a, "a/b/c/d") || tb.Unsubscribe(a, "$share/zz/a/b") {
		t.Fatal("Unsubscribe of a missing filter reported existed")
	}
	for _, f := range filters {
		if !tb.Unsubscribe(a, f) {
			t.Fatalf("Unsubscribe(a, %q) = false", f)
		}
		if tb.Unsubscribe(a, f) {
			t.Fatalf("second Unsubscribe(a, %q) = true", f)
		}
	}
	// b's subscriptions survived a's removals.
	if got := matchIDs(tb, "a/b", nil, ""); !slices.Equal(got, []string{"b", "b*", "b*", "b*"}) {
		t.Fatalf("a/b after removing a: %v", got)
	}
	if got := matchIDs(tb, "wide/17/x", nil, ""); !slices.Equal(got, []string{"b", "b*"}) {
		t.Fatalf("wide/17/x: %v", got)
	}
	for i := len(filters) - 1; i >= 0; i-- { // reverse order: parents go last
		if !tb.Unsubscribe(b, filters[i]) {
			t.Fatalf("Unsubscribe(b, %q) = false", filters[i])
		}
	}
	if tb.Count() != 0 || tb.nodeCount() != 0 {
		t.Fatalf("after removing everything: Count %d, nodes %d; want 0, 0", tb.Count(), tb.nodeCount())
	}
	if got := matchIDs(tb, "a/b", nil, ""); len(got) != 0 {
		t.Fatalf("empty table matched %v", got)
	}
}

// Removing a parent filter keeps its children and vice versa.
func TestUnsubscribeKeepsNeighbours(t *testing.T) {
	tb := NewTable(0, RoundRobin)
	a := newSub("a")
	tb.Subscribe(a, "p", Options{})
	tb.Subscribe(a, "p/q", Options{})
	tb.Subscribe(a, "p/q/r", Options{})
	tb.Unsubscribe(a, "p/q")
	for topic, want := range map[string]int{"p": 1, "p/q": 0, "p/q/r": 1} {
		if got := len(matchIDs(tb, topic, nil, "")); got != want {
			t.Errorf("%s: %d matches, want %d", topic, got, want)
		}
	}
	if n := tb.nodeCount(); n != 3 {
		t.Errorf("nodes = %d, want 3 (p, q, r)", n)
	}
	tb.Unsubscribe(a, "p/q/r")
	if n := tb.nodeCount(); n != 1 {
		t.Errorf("nodes = %d, want 1", n)
	}
}

func TestMatchAppendsAndReset(t *testing.T) {
	tb := NewTable(0, RoundRobin)
	a := newSub("a")
	tb.Subscribe(a, "x", Options{SubID: 1})
	tb.Subscribe(a, "+", Options{SubID: 2})
	var m Matches
	tb.Match([]byte("x"), nil, nil, &m)
	tb.Match([]byte("x"), nil, nil, &m) // appends; de-duplicates only within a call
	if len(m.List) != 2 || len(m.List[0].SubIDs) != 2 || len(m.List[1].SubIDs) != 2 {
		t.Fatalf("got %+v", m.List)
	}
	m.Reset()
	if len(m.List) != 0 || m.List[:1][0].Sub != nil {
		t.Fatal("Reset kept entries or subscriber references")
	}
}

func TestNewTableShards(t *testing.T) {
	for _, c := range []struct{ in, want int }{{0, DefaultShards}, {-3, DefaultShards}, {1, 1}, {5, 8}, {64, 64}, {1 << 30, maxShards}} {
		if got := len(NewTable(c.in, RoundRobin).shards); got != c.want {
			t.Errorf("NewTable(%d): %d shards, want %d", c.in, got, c.want)
		}
	}
}

// Subscribers and matchers in parallel; run with -race.
func TestTableConcurrent(t *testing.T) {
	tb := NewTable(4, RoundRobin)
	subs := make([]*testSub, 8)
	for i := range subs {
		subs[i] = newSub(fmt.Sprint("s", i))
	}
	filters := []string{"c/a", "c/+", "c/#", "#", "+/a", "d/a/b", "$share/g/c/a", "$share/h/+/a", "$SYS/x"}
	topics := []string{"c/a", "d/a", "d/a/b", "$SYS/x", "e"}
	const rounds = 2000

	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 1))
			for range rounds {
				s := subs[r.IntN(len(subs))]
				f := filters[r.IntN(len(filters))]
				if r.IntN(2) == 0 {
					tb.Subscribe(s, f, Options{QoS: byte(r.IntN(3)), SubID: uint32(r.IntN(3))})
				} else {
					tb.Unsubscribe(s, f)
				}
			}
		})
	}
	for w := range 4 {
		wg.Go(func() {
			var m Matches
			for i := range rounds {
				m.Reset()
				tb.Match([]byte(topics[(i+w)%len(topics)]), subs[w], []byte(subs[w].id), &m)
				seen := make(map[Subscriber]bool)
				for _, e := range m.List {
					if !e.Shared {
						if seen[e.Sub] {
							t.Errorf("duplicate non-shared match for %s", e.Sub.ClientID())
							return
						}
						seen[e.Sub] = true
					}
				}
				_ = tb.Count()
			}
		})
	}
	wg.Wait()
	for _, s := range subs {
		for _, f := range filters {
			tb.Unsubscribe(s, f)
		}
	}
	if tb.Count() != 0 || tb.nodeCount() != 0 {
		t.Fatalf("after cleanup: Count %d, nodes %d", tb.Count(), tb.nodeCount())
	}
}
