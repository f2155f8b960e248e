package router

import (
	"fmt"
	"slices"
	"testing"
)

// [MQTT-4.8.2-1], [MQTT-4.8.2-2]
func TestParseShared(t *testing.T) {
	cases := []struct {
		filter, group, inner string
		ok                   bool
	}{
		{"$share/g/a/+", "g", "a/+", true},
		{"$share/g/#", "g", "#", true},
		{"$share/g//", "g", "/", true},
		{"$share/g/$share/h/x", "g", "$share/h/x", true},
		{"a/b", "", "a/b", false},
		{"$share", "", "$share", false},
		{"$SHARE/g/a", "", "$SHARE/g/a", false},
		{"$share/", "", "", false},     // [MQTT-4.8.2-1] no ShareName
		{"$share//a", "", "", false},   // [MQTT-4.8.2-1] empty ShareName
		{"$share/g", "", "", false},    // [MQTT-4.8.2-2] no '/' after ShareName
		{"$share/g/", "", "", false},   // [MQTT-4.8.2-2] no filter after '/'
		{"$share/g+/a", "", "", false}, // [MQTT-4.8.2-2]
		{"$share/#/a", "", "", false},  // [MQTT-4.8.2-2]
	}
	for _, c := range cases {
		g, in, ok := ParseShared(c.filter)
		if g != c.group || in != c.inner || ok != c.ok {
			t.Errorf("ParseShared(%q) = %q, %q, %v; want %q, %q, %v", c.filter, g, in, ok, c.group, c.inner, c.ok)
		}
	}
}

func TestSharedStrategyNames(t *testing.T) {
	for _, s := range []SharedStrategy{RoundRobin, Random, HashClient, HashTopic} {
		got, err := ParseSharedStrategy(s.String())
		if err != nil || got != s {
			t.Errorf("ParseSharedStrategy(%q) = %v, %v", s.String(), got, err)
		}
	}
	if _, err := ParseSharedStrategy("fastest"); err == nil {
		t.Error("ParseSharedStrategy accepted an unknown name")
	}
	if s := SharedStrategy(9).String(); s != "SharedStrategy(9)" {
		t.Errorf("String of unknown = %q", s)
	}
}

// sharedTable returns a table with members m0..m{n-1} in group g on "s/+".
func sharedTable(st SharedStrategy, n int) (*Table, []*testSub) {
	tb := NewTable(0, st)
	members := make([]*testSub, n)
	for i := range members {
		members[i] = newSub(fmt.Sprint("m", i))
		tb.Subscribe(members[i], "$share/g/s/+", Options{QoS: byte(i % 3), SubID: uint32(10 + i)})
	}
	return tb, members
}

// Each message reaches exactly one member of the group; round-robin is fair.
func TestSharedRoundRobin(t *testing.T) {
	tb, members := sharedTable(RoundRobin, 3)
	got := make(map[Subscriber]int)
	var m Matches
	for i := range 300 {
		m.Reset()
		tb.Match([]byte("s/x"), nil, []byte(fmt.Sprint("pub", i)), &m)
		if len(m.List) != 1 || !m.List[0].Shared {
			t.Fatalf("message %d: got %+v, want one shared entry", i, m.List)
		}
		got[m.List[0].Sub]++
	}
	for _, s := range members {
		if got[s] != 100 {
			t.Errorf("%s got %d of 300, want 100", s.id, got[s])
		}
	}
}

// A member's own granted QoS and identifier go with it [MQTT-4.8.2-3].
func TestSharedMemberOptions(t *testing.T) {
	tb, members := sharedTable(RoundRobin, 3)
	var m Matches
	for range 3 {
		m.Reset()
		tb.Match([]byte("s/x"), nil, nil, &m)
		e := m.List[0]
		i := slices.Index(members, e.Sub.(*testSub))
		if e.QoS != byte(i%3) || !slices.Equal(e.SubIDs, []uint32{uint32(10 + i)}) {
			t.Errorf("member %d: got QoS %d SubIDs %v", i, e.QoS, e.SubIDs)
		}
	}
}

func TestSharedHashStable(t *testing.T) {
	for _, st := range []SharedStrategy{HashClient, HashTopic} {
		tb, _ := sharedTable(st, 4)
		var m Matches
		first := make(map[string]Subscriber)
		distinct := make(map[Subscriber]bool)
		for round := range 3 {
			for i := range 64 {
				key := fmt.Sprint(i)
				topic, from := "s/x", "c"+key
				if st == HashTopic {
					topic, from = "s/"+key, "c"
				}
				m.Reset()
				tb.Match([]byte(topic), nil, []byte(from), &m)
				if len(m.List) != 1 {
					t.Fatalf("%v: got %d entries", st, len(m.List))
				}
				s := m.List[0].Sub
				if round == 0 {
					first[key] = s
					distinct[s] = true
				} else if first[key] != s {
					t.Fatalf("%v: key %s moved from %v to %v", st, key, first[key], s)
				}
			}
		}
		if len(distinct) < 3 {
			t.Errorf("%v: 64 keys used only %d of 4 members", st, len(distinct))
		}
	}
}

func TestSharedRandom(t *testing.T) {
	tb, members := sharedTable(Random, 3)
	got := make(map[Subscriber]int)
	var m Matches
	for range 300 {
		m.Reset()
		tb.Match([]byte("s/x"), nil, nil, &m)
		if len(m.List) != 1 {
			t.Fatalf("got %d entries, want 1", len(m.List))
		}
		got[m.List[0].Sub]++
	}
	for _, s := range members {
		if got[s] == 0 {
			t.Errorf("%s never picked in 300 messages", s.id)
		}
	}
}

// A group is (name, filter): each matching group gives one member, and a
// subscriber with a normal and a shared match appears twice.
func TestSharedGroups(t *testing.T) {
	tb := NewTable(0, RoundRobin)
	a, b := newSub("a"), newSub("b")
	tb.Subscribe(a, "$share/g/s/+", Options{})
	tb.Subscribe(b, "$share/g/s/+", Options{})
	tb.Subscribe(a, "$share/g/s/x", Options{}) // same name, other filter: other group
	tb.Subscribe(b, "$share/h/s/+", Options{}) // other name, same filter: other group
	tb.Subscribe(a, "s/x", Options{})          // normal subscription

	var m Matches
	tb.Match([]byte("s/x"), nil, nil, &m)
	shared, normal := 0, 0
	for _, e := range m.List {
		if e.Shared {
			shared++
		} else {
			normal++
			if e.Sub != a {
				t.Errorf("normal entry for %v", e.Sub)
			}
		}
	}
	if shared != 3 || normal != 1 {
		t.Fatalf("got %d shared and %d normal entries, want 3 and 1: %+v", shared, normal, m.List)
	}

	if got := tb.Members("g", "s/+"); !slices.Equal(got, []Subscriber{a, b}) {
		t.Errorf("Members(g, s/+) = %v", got)
	}
	if got := tb.Members("g", "s/nope"); got != nil {
		t.Errorf("Members of a missing filter = %v", got)
	}
	if got := tb.Members("zz", "s/+"); got != nil {
		t.Errorf("Members of a missing group = %v", got)
	}
	tb.Unsubscribe(a, "$share/g/s/+")
	if got := tb.Members("g", "s/+"); !slices.Equal(got, []Subscriber{b}) {
		t.Errorf("Members after leave = %v", got)
	}
	if got := tb.Members("g", "s/x"); !slices.Equal(got, []Subscriber{a}) {
		t.Errorf("Members(g, s/x) = %v", got)
	}
}

// Round-robin stays fair while members come and go.
func TestSharedRoundRobinAfterLeave(t *testing.T) {
	tb, members := sharedTable(RoundRobin, 4)
	tb.Unsubscribe(members[1], "$share/g/s/+")
	got := make(map[Subscriber]int)
	var m Matches
	for range 300 {
		m.Reset()
		tb.Match([]byte("s/y"), nil, nil, &m)
		got[m.List[0].Sub]++
	}
	if got[members[1]] != 0 {
		t.Error("a member that left still receives")
	}
	for _, i := range []int{0, 2, 3} {
		if got[members[i]] != 100 {
			t.Errorf("member %d got %d of 300", i, got[members[i]])
		}
	}
}

// TestSharedSkipsUnusable: a member the caller marks unusable (offline or
// stalled) is passed over for the next usable one, for every strategy, so it
// can't black-hole the group's messages (MQTT 5 section 4.8.2); with no
// usable member the strategy's pick stands.
func TestSharedSkipsUnusable(t *testing.T) {
	for _, st := range []SharedStrategy{RoundRobin, Random, HashClient, HashTopic} {
		t.Run(st.String(), func(t *testing.T) {
			tb, subs := sharedTable(st, 3)
			down := map[Subscriber]bool{subs[1]: true}
			var m Matches
			m.Usable = func(s Subscriber) bool { return !down[s] }
			got := map[string]int{}
			for i := 0; i < 300; i++ {
				m.Reset()
				tb.Match([]byte("s/x"), nil, []byte(fmt.Sprint("pub", i)), &m)
				if len(m.List) != 1 {
					t.Fatalf("%d receivers, want 1", len(m.List))
				}
				got[m.List[0].Sub.ClientID()]++
			}
			if got[subs[1].ClientID()] != 0 {
				t.Fatalf("unusable member got %d of 300: %v", got[subs[1].ClientID()], got)
			}
			// Round robin draws again past an unusable member: the usable
			// ones share evenly (the next one in line would get two turns).
			if a, c := got[subs[0].ClientID()], got[subs[2].ClientID()]; st == RoundRobin && a != c {
				t.Fatalf("round robin gave the usable members %d and %d of 300, want 150 each", a, c)
			}
			down[subs[0]], down[subs[2]] = true, true
			m.Reset()
			tb.Match([]byte("s/x"), nil, []byte("x"), &m)
			if len(m.List) != 1 {
				t.Fatalf("all unusable: %d receivers, want 1 (the strategy's pick)", len(m.List))
			}
		})
	}
}

// TestPickShared: a message a leaving member didn't finish goes to another
// member of the same group (MQTT 5 section 4.8.2), chosen with the same
// strategy and Usable check, with that member's own options.
func TestPickShared(t *testing.T) {
	tb, subs := sharedTable(RoundRobin, 3)
	gone := subs[0]
	tb.Unsubscribe(gone, "$share/g/s/+")
	seen := map[Subscriber]int{}
	for i := 0; i < 6; i++ {
		m, ok := tb.PickShared("$share/g/s/+", func(s Subscriber) bool { return s != subs[2] })
		if !ok {
			t.Fatal("group not found")
		}
		if m.Group != "$share/g/s/+" || !m.Shared {
			t.Fatalf("match = %+v", m)
		}
		seen[m.Sub]++
	}
	if seen[subs[1]] != 6 {
		t.Fatalf("picks = %v, want all 6 to the only usable member", seen)
	}
	if _, ok := tb.PickShared("$share/other/s/+", nil); ok {
		t.Fatal("found a group that doesn't exist")
	}
	if _, ok := tb.PickShared("s/+", nil); ok {
		t.Fatal("a non-shared filter is not a group")
	}
	// Match reports the group of shared entries too.
	var m Matches
	tb.Match([]byte("s/x"), nil, nil, &m)
	if len(m.List) != 1 || m.List[0].Group != "$share/g/s/+" {
		t.Fatalf("Match = %+v", m.List)
	}
}
