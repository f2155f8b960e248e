package router

import (
	"slices"
	"sort"
	"testing"
)

func newRetainedMsg(topic, payload string) *Message {
	return NewMessage([]byte(topic), []byte(payload), nil, []byte("pub"), 1, true, 0, nil)
}

// count is the number of retained messages in r, '$' topics included.
func count(r Retained) int {
	user, dollar := r.Count()
	return user + dollar
}

// retainedTopics returns the topics Match reports for filter, sorted.
func retainedTopics(r Retained, filter string) []string {
	var out []string
	r.Match(filter, func(m *Message) bool {
		out = append(out, string(m.Topic))
		return true
	})
	sort.Strings(out)
	return out
}

// [MQTT-3.3.1-5], [MQTT-3.3.1-6], [MQTT-3.3.1-7]
func TestRetainedSetReplaceClear(t *testing.T) {
	r := NewRetained()
	m1 := newRetainedMsg("a/b", "one")
	r.Set(m1)
	if got := m1.refs.Load(); got != 2 {
		t.Fatalf("after Set: refs = %d, want 2 (caller + store)", got)
	}
	if count(r) != 1 {
		t.Fatalf("Count = %d, want 1", count(r))
	}

	m2 := newRetainedMsg("a/b", "two")
	r.Set(m2) // [MQTT-3.3.1-5] replaces
	if got := m1.refs.Load(); got != 1 {
		t.Fatalf("replaced message: refs = %d, want 1 (store released its own)", got)
	}
	var payloads []string
	r.Match("a/b", func(m *Message) bool { payloads = append(payloads, string(m.Payload)); return true })
	if !slices.Equal(payloads, []string{"two"}) || count(r) != 1 {
		t.Fatalf("after replace: %v, Count %d", payloads, count(r))
	}

	clr := newRetainedMsg("a/b", "")
	r.Set(clr) // [MQTT-3.3.1-6] removes, [MQTT-3.3.1-7] not stored
	if got := m2.refs.Load(); got != 1 {
		t.Fatalf("cleared message: refs = %d, want 1", got)
	}
	if got := clr.refs.Load(); got != 1 {
		t.Fatalf("empty-payload message: refs = %d, want 1 (not stored)", got)
	}
	if count(r) != 0 || len(retainedTopics(r, "#")) != 0 {
		t.Fatalf("after clear: Count %d", count(r))
	}
	if !r.root.empty() {
		t.Fatal("clear left trie nodes behind")
	}

	// Clearing a topic with nothing retained is a no-op.
	r.Set(clr)
	if count(r) != 0 || clr.refs.Load() != 1 {
		t.Fatal("clearing an absent topic changed something")
	}
	m1.Release()
	m2.Release()
	clr.Release()
}

// Count keeps the '$' topics apart [MQTT-4.7.2-1] through sets, replaces
// and clears, with no walk of the trie.
func TestRetainedCountDollar(t *testing.T) {
	r := NewRetained()
	check := func(when string, wantUser, wantDollar int) {
		t.Helper()
		if user, dollar := r.Count(); user != wantUser || dollar != wantDollar {
			t.Errorf("%s: Count = %d user, %d dollar; want %d, %d", when, user, dollar, wantUser, wantDollar)
		}
	}
	var msgs []*Message
	set := func(topic, payload string) {
		m := newRetainedMsg(topic, payload)
		r.Set(m)
		msgs = append(msgs, m)
	}
	set("a/b", "1")
	set("$SYS/broker/uptime", "1")
	set("$SYS/broker/version", "1")
	set("$app/x", "1") // any '$' topic: reserved, not matched by '#'
	set("b/$c", "1")   // '$' below the first level is an ordinary topic
	check("after five sets", 2, 3)
	set("$SYS/broker/uptime", "2") // replaced: no new message
	set("a/b", "2")
	check("after two replaces", 2, 3)
	set("$SYS/broker/version", "") // cleared [MQTT-3.3.1-6]
	set("b/$c", "")
	set("$nothing/here", "") // clearing an absent topic changes nothing
	check("after clears", 1, 2)
	if user, _ := r.Count(); user != len(retainedTopics(r, "#")) {
		t.Errorf("user count %d, but '#' matches %v", user, retainedTopics(r, "#"))
	}
	for _, tp := range []string{"a/b", "$SYS/broker/uptime", "$app/x"} {
		clearTopic(r, tp)
	}
	check("after clearing all", 0, 0)
	for _, m := range msgs {
		m.Release()
	}
}

func TestRetainedMatch(t *testing.T) {
	r := NewRetained()
	topics := []string{"a", "a/b", "a/c", "a/b/c", "a//b", "/x", "$SYS/x", "$SYS/y/z", "b/$x", "sport/"}
	for i := range 3 * maxListKids { // a wide level switches to a map
		topics = append(topics, "w/"+string(rune('A'+i)))
	}
	var msgs []*Message
	for _, tp := range topics {
		m := newRetainedMsg(tp, "p")
		r.Set(m)
		msgs = append(msgs, m)
	}
	cases := []struct {
		clause, filter string
		want           []string
	}{
		{"literal", "a/b", []string{"a/b"}},
		{"literal", "a/x", nil},
		{"[MQTT-4.7.1-2]", "a/+", []string{"a/b", "a/c"}},
		{"[MQTT-4.7.1-2] empty level", "a/+/b", []string{"a//b"}},
		{"[MQTT-4.7.1-2] empty first level", "+/x", []string{"/x"}},
		{"[MQTT-4.7.1-2]", "sport/+", []string{"sport/"}},
		{"[MQTT-4.7.1-1] parent", "a/#", []string{"a", "a//b", "a/b", "a/b/c", "a/c"}},
		{"[MQTT-4.7.1-1]", "a/b/#", []string{"a/b", "a/b/c"}},
		{"[MQTT-4.7.2-1] # skips $", "#", []string{"/x", "a", "a//b", "a/b", "a/b/c", "a/c", "b/$x", "sport/"}},
		{"[MQTT-4.7.2-1] + skips $", "+/x", []string{"/x"}},
		{"[MQTT-4.7.2-1] +/+/+ skips $", "+/+/+", []string{"a//b", "a/b/c"}},
		{"[MQTT-4.7.2-1] $SYS/#", "$SYS/#", []string{"$SYS/x", "$SYS/y/z"}},
		{"[MQTT-4.7.2-1] $SYS/+", "$SYS/+", []string{"$SYS/x"}},
		{"[MQTT-4.7.2-1] $ below the root", "b/+", []string{"b/$x"}},
	}
	for _, c := range cases {
		got := retainedTopics(r, c.filter)
		if c.filter == "#" {
			got = slices.DeleteFunc(got, func(s string) bool { return len(s) > 2 && s[:2] == "w/" })
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%s: Match(%q) = %v, want %v", c.clause, c.filter, got, c.want)
		}
	}
	if got := retainedTopics(r, "w/+"); len(got) != 3*maxListKids {
		t.Errorf("w/+ matched %d, want %d", len(got), 3*maxListKids)
	}

	// Stop early, and every reference Match took is given back.
	calls := 0
	r.Match("#", func(*Message) bool { calls++; return false })
	if calls != 1 {
		t.Errorf("fn called %d times after returning false", calls)
	}
	for i, m := range msgs {
		if got := m.refs.Load(); got != 2 {
			t.Errorf("%s: refs = %d after Match, want 2", topics[i], got)
		}
	}

	// fn may keep a message, and may call back into the store.
	var kept *Message
	r.Match("a/b", func(m *Message) bool {
		kept = m.Ref()
		clearTopic(r, "a/b")
		return true
	})
	if string(kept.Payload) != "p" || kept.refs.Load() != 2 { // caller's msgs ref + kept
		t.Errorf("kept message: payload %q refs %d", kept.Payload, kept.refs.Load())
	}
	kept.Release()

	for _, tp := range topics {
		clearTopic(r, tp)
	}
	if count(r) != 0 || !r.root.empty() {
		t.Fatalf("after clearing all: Count %d, root empty %v", count(r), r.root.empty())
	}
	for _, m := range msgs {
		if got := m.refs.Load(); got != 1 {
			t.Errorf("%s: refs = %d after clear, want 1", m.Topic, got)
		}
		m.Release()
	}
}

// clearTopic clears topic's retained message the way the broker does: with
// an empty-payload message it releases after Set.
func clearTopic(r Retained, topic string) {
	m := newRetainedMsg(topic, "")
	r.Set(m)
	m.Release()
}

// Collect hands out a snapshot: one reference per message, kept past the
// call and past changes to the store; a message the store replaces or
// clears meanwhile is marked superseded, one it keeps is not.
func TestRetainedCollectSnapshot(t *testing.T) {
	r := NewRetained()
	a, b, c := newRetainedMsg("s/a", "a1"), newRetainedMsg("s/b", "b1"), newRetainedMsg("s/c", "c1")
	for _, m := range []*Message{a, b, c} {
		r.Set(m)
		m.Release() // the store's reference is the only one left
	}
	snap := r.Collect("s/+", nil)
	if len(snap) != 3 {
		t.Fatalf("Collect(s/+) = %d messages, want 3", len(snap))
	}
	for _, m := range snap {
		if got := m.Refs(); got != 2 {
			t.Errorf("%s: refs = %d in the snapshot, want 2 (store + snapshot)", m.Topic, got)
		}
		if m.Superseded() {
			t.Errorf("%s: superseded before anything changed", m.Topic)
		}
	}

	a2 := newRetainedMsg("s/a", "a2")
	r.Set(a2) // [MQTT-3.3.1-5] replaces a
	a2.Release()
	clearTopic(r, "s/b") // [MQTT-3.3.1-6] removes b
	if !a.Superseded() || !b.Superseded() || c.Superseded() || a2.Superseded() {
		t.Errorf("superseded: a %v b %v c %v a2 %v, want true true false false",
			a.Superseded(), b.Superseded(), c.Superseded(), a2.Superseded())
	}
	if string(a.Payload) != "a1" || string(b.Payload) != "b1" {
		t.Errorf("snapshot messages changed: %q %q", a.Payload, b.Payload)
	}
	if a.Refs() != 1 || b.Refs() != 1 || c.Refs() != 2 {
		t.Errorf("refs a %d b %d c %d, want 1 1 2: only the snapshot holds a and b", a.Refs(), b.Refs(), c.Refs())
	}
	for _, m := range snap {
		m.Release()
	}
	if got := retainedTopics(r, "s/+"); !slices.Equal(got, []string{"s/a", "s/c"}) {
		t.Errorf("store after the changes: %v", got)
	}
	clearTopic(r, "s/a")
	clearTopic(r, "s/c")
}
