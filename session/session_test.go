package session_test

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/shoalmq/shoal/router"
	"github.com/shoalmq/shoal/session"
)

// None of these tests run in parallel: refsLeft releases a message past its
// last reference, which is only safe while no other goroutine can take the
// recycled Message from router's pool.

// owner is a connection as the session sees it. Tests use pointers so that
// two owners on the same loop are still different owners.
type owner struct{ loop int }

func (o *owner) LoopIndex() int { return o.loop }

func (o *owner) DeliverLocked(session.Delivery, int64) bool { return false }

// newMsg returns a message holding one reference, identified by payload.
func newMsg(payload string) *router.Message {
	return router.NewMessage([]byte("t/"+payload), []byte(payload), nil, []byte("pub"), 1, false, 0, nil)
}

// held returns a delivery of m at qos carrying its own reference, so that
// the test keeps the one NewMessage gave it: once the session has released
// the delivery, refsLeft(m) must be exactly 1.
func held(m *router.Message, qos byte) session.Delivery {
	return session.Delivery{Msg: m.Ref(), QoS: qos}
}

// overRelease is the panic router.Message.Release raises when released once
// more than it was referenced.
const overRelease = "released more often than referenced"

// refsLeft releases m until Release panics with overRelease and returns how
// many releases succeeded: the references still held when it was called. It
// is the only way to count references from outside package router, and it
// consumes m: call it last. A session that released its reference exactly
// once leaves 1 (the test's own); one that never released it leaves 2; one
// that released it twice leaves 0.
func refsLeft(t *testing.T, m *router.Message) int {
	t.Helper()
	for n := 0; n < 16; n++ {
		if panicked := releasePanics(t, m); panicked {
			return n
		}
	}
	t.Fatalf("message %p still referenced after 16 releases", m)
	return -1
}

// releasePanics calls m.Release and reports whether it panicked with
// overRelease; any other panic fails the test.
func releasePanics(t *testing.T, m *router.Message) (panicked bool) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			if s, ok := r.(string); !ok || !strings.Contains(s, overRelease) {
				t.Fatalf("Release panicked with %v, want %q", r, overRelease)
			}
			panicked = true
		}
	}()
	m.Release()
	return false
}

// wantReleasedOnce fails unless the session released each of msgs exactly
// once, leaving the test's own reference.
func wantReleasedOnce(t *testing.T, what string, msgs ...*router.Message) {
	t.Helper()
	for i, m := range msgs {
		if n := refsLeft(t, m); n != 1 {
			t.Errorf("%s: message %d: %d references left, want 1 (the test's): the session released it %d times, want once",
				what, i, n, 2-n)
		}
	}
}

func TestRefsLeftCountsReferences(t *testing.T) {
	// The helper everything below relies on.
	m := newMsg("x")
	m.Ref()
	m.Ref()
	if n := refsLeft(t, m); n != 3 {
		t.Fatalf("refsLeft = %d, want 3", n)
	}
}

func TestNewIsOffline(t *testing.T) {
	s := session.New("client-1")
	s.Lock()
	defer s.Unlock()
	if s.ClientID() != "client-1" {
		t.Errorf("ClientID = %q", s.ClientID())
	}
	if s.LoopHint() != -1 || s.OwnerLocked() != nil {
		t.Errorf("new session: LoopHint %d, owner %v; want -1, nil", s.LoopHint(), s.OwnerLocked())
	}
	if s.Gen != 0 || s.Busy() || s.InflightLen() != 0 || s.QueueLen() != 0 || s.AwaitRelCountLocked() != 0 ||
		s.SubsLocked() != nil || s.InflightLocked() != nil {
		t.Error("new session is not empty")
	}
}

func TestAttachDetach(t *testing.T) {
	a, b := &owner{loop: 3}, &owner{loop: 1}
	type step struct {
		name   string
		attach session.Owner // attach this owner, or
		detach session.Owner // detach this one

		wantPrev     session.Owner // AttachLocked's result
		wantDetached bool          // DetachLocked's result
		wantOwner    session.Owner
		wantHint     int
		wantGen      uint32
	}
	steps := []step{
		{name: "attach a to an offline session", attach: a, wantPrev: nil, wantOwner: a, wantHint: 3, wantGen: 1},
		{name: "b takes over from a", attach: b, wantPrev: a, wantOwner: b, wantHint: 1, wantGen: 2},
		{name: "late detach by a is refused", detach: a, wantDetached: false, wantOwner: b, wantHint: 1, wantGen: 2},
		{name: "detach by current owner b", detach: b, wantDetached: true, wantOwner: nil, wantHint: -1, wantGen: 2},
		{name: "second detach by b is refused", detach: b, wantDetached: false, wantOwner: nil, wantHint: -1, wantGen: 2},
		{name: "a comes back", attach: a, wantPrev: nil, wantOwner: a, wantHint: 3, wantGen: 3},
		{name: "a attaches again over itself", attach: a, wantPrev: a, wantOwner: a, wantHint: 3, wantGen: 4},
	}
	s := session.New("c")
	s.Lock()
	defer s.Unlock()
	for _, st := range steps {
		s.ExpireAt = 12345 // an offline deadline that attaching must cancel
		if st.attach != nil {
			if prev := s.AttachLocked(st.attach); prev != st.wantPrev {
				t.Errorf("%s: AttachLocked returned %v, want %v", st.name, prev, st.wantPrev)
			}
			if s.ExpireAt != 0 {
				t.Errorf("%s: ExpireAt = %d after attach, want 0", st.name, s.ExpireAt)
			}
		} else if got := s.DetachLocked(st.detach); got != st.wantDetached {
			t.Errorf("%s: DetachLocked = %v, want %v", st.name, got, st.wantDetached)
		}
		if s.OwnerLocked() != st.wantOwner {
			t.Errorf("%s: owner %v, want %v", st.name, s.OwnerLocked(), st.wantOwner)
		}
		if s.LoopHint() != st.wantHint {
			t.Errorf("%s: LoopHint %d, want %d", st.name, s.LoopHint(), st.wantHint)
		}
		if s.Gen != st.wantGen {
			t.Errorf("%s: Gen %d, want %d", st.name, s.Gen, st.wantGen)
		}
	}
}

// [MQTT-3.8.4-3]: a SUBSCRIBE for a filter the session already has replaces
// the subscription's options instead of adding a second one.
func TestAddSubLocked(t *testing.T) {
	type add struct {
		filter      string
		opts        router.Options
		wantExisted bool
	}
	tests := []struct {
		name string
		adds []add
		want []session.Sub // in order of first subscription
	}{
		{
			name: "distinct filters are kept in order",
			adds: []add{
				{filter: "a/b", opts: router.Options{QoS: 1}},
				{filter: "a/+", opts: router.Options{QoS: 2}},
				{filter: "#", opts: router.Options{QoS: 0}},
			},
			want: []session.Sub{
				{Filter: "a/b", Opts: router.Options{QoS: 1}},
				{Filter: "a/+", Opts: router.Options{QoS: 2}},
				{Filter: "#", Opts: router.Options{QoS: 0}},
			},
		},
		{
			name: "same filter replaces its options [MQTT-3.8.4-3]",
			adds: []add{
				{filter: "a/b", opts: router.Options{QoS: 1}},
				{filter: "c", opts: router.Options{QoS: 0}},
				{filter: "a/b", opts: router.Options{QoS: 2, NoLocal: true, SubID: 7}, wantExisted: true},
			},
			want: []session.Sub{
				{Filter: "a/b", Opts: router.Options{QoS: 2, NoLocal: true, SubID: 7}},
				{Filter: "c", Opts: router.Options{QoS: 0}},
			},
		},
		{
			name: "replacing with identical options still reports existed",
			adds: []add{
				{filter: "x", opts: router.Options{QoS: 1}},
				{filter: "x", opts: router.Options{QoS: 1}, wantExisted: true},
			},
			want: []session.Sub{{Filter: "x", Opts: router.Options{QoS: 1}}},
		},
		{
			name: "filters differing only in case are different",
			adds: []add{
				{filter: "A", opts: router.Options{QoS: 1}},
				{filter: "a", opts: router.Options{QoS: 2}},
			},
			want: []session.Sub{
				{Filter: "A", Opts: router.Options{QoS: 1}},
				{Filter: "a", Opts: router.Options{QoS: 2}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := session.New("c")
			s.Lock()
			defer s.Unlock()
			for _, a := range tt.adds {
				if got := s.AddSubLocked(a.filter, a.opts); got != a.wantExisted {
					t.Errorf("AddSubLocked(%q) = %v, want %v", a.filter, got, a.wantExisted)
				}
			}
			if got := s.SubsLocked(); !slices.Equal(got, tt.want) {
				t.Errorf("subs = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestRemoveSubLocked(t *testing.T) {
	tests := []struct {
		name    string
		have    []string
		remove  []string
		want    []bool   // RemoveSubLocked results
		wantLen int      // subscriptions left
		left    []string // the filters left, in any order
	}{
		{name: "first", have: []string{"a", "b", "c"}, remove: []string{"a"}, want: []bool{true}, left: []string{"b", "c"}},
		{name: "middle", have: []string{"a", "b", "c"}, remove: []string{"b"}, want: []bool{true}, left: []string{"a", "c"}},
		{name: "last", have: []string{"a", "b", "c"}, remove: []string{"c"}, want: []bool{true}, left: []string{"a", "b"}},
		{name: "unknown", have: []string{"a", "b"}, remove: []string{"z"}, want: []bool{false}, left: []string{"a", "b"}},
		{name: "twice", have: []string{"a", "b"}, remove: []string{"a", "a"}, want: []bool{true, false}, left: []string{"b"}},
		{name: "all", have: []string{"a", "b"}, remove: []string{"b", "a"}, want: []bool{true, true}, left: nil},
		{name: "from none", have: nil, remove: []string{"a"}, want: []bool{false}, left: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := session.New("c")
			s.Lock()
			defer s.Unlock()
			for i, f := range tt.have {
				s.AddSubLocked(f, router.Options{QoS: byte(i % 3)})
			}
			for i, f := range tt.remove {
				if got := s.RemoveSubLocked(f); got != tt.want[i] {
					t.Errorf("RemoveSubLocked(%q) #%d = %v, want %v", f, i, got, tt.want[i])
				}
			}
			var left []string
			for _, sub := range s.SubsLocked() {
				left = append(left, sub.Filter)
				// The survivors keep their own options.
				want := router.Options{QoS: byte(slices.Index(tt.have, sub.Filter) % 3)}
				if sub.Opts != want {
					t.Errorf("%q: options %+v, want %+v", sub.Filter, sub.Opts, want)
				}
			}
			slices.Sort(left)
			if !slices.Equal(left, tt.left) {
				t.Errorf("left %q, want %q", left, tt.left)
			}
		})
	}
}

// [MQTT-2.2.1-3]: a packet identifier is never 0 and never one still in use.
func TestNextIDLocked(t *testing.T) {
	t.Run("counts from 1", func(t *testing.T) {
		s := session.New("c")
		s.Lock()
		defer s.Unlock()
		for want := uint16(1); want <= 3; want++ {
			if id, ok := s.NextIDLocked(); !ok || id != want {
				t.Fatalf("NextIDLocked = %d, %v; want %d, true", id, ok, want)
			}
		}
	})
	t.Run("wraps past 65535 to 1, never 0", func(t *testing.T) {
		s := session.New("c")
		s.Lock()
		defer s.Unlock()
		for want := 1; want <= math.MaxUint16; want++ {
			id, ok := s.NextIDLocked()
			if !ok || int(id) != want {
				t.Fatalf("call %d: NextIDLocked = %d, %v; want %d, true", want, id, ok, want)
			}
		}
		if id, ok := s.NextIDLocked(); !ok || id != 1 {
			t.Fatalf("after 65535: NextIDLocked = %d, %v; want 1, true", id, ok)
		}
	})
	t.Run("skips ids in flight across the wrap", func(t *testing.T) {
		s := session.New("c")
		s.Lock()
		defer s.Unlock()
		busy := []uint16{1, 2, 100, math.MaxUint16 - 1, math.MaxUint16}
		for _, id := range busy {
			s.PushInflightLocked(session.Delivery{QoS: 1}, id, 0)
		}
		free := math.MaxUint16 - len(busy)
		seen := make(map[uint16]bool, free)
		var first uint16
		for i := 0; i < free; i++ {
			id, ok := s.NextIDLocked()
			switch {
			case !ok:
				t.Fatalf("call %d: NextIDLocked failed with %d in flight", i, len(busy))
			case id == 0:
				t.Fatalf("call %d: NextIDLocked returned 0", i)
			case slices.Contains(busy, id):
				t.Fatalf("call %d: NextIDLocked returned %d, which is in flight", i, id)
			case seen[id]:
				t.Fatalf("call %d: NextIDLocked returned %d twice in one cycle", i, id)
			}
			if i == 0 {
				first = id
			}
			seen[id] = true
		}
		if first != 3 {
			t.Errorf("first id = %d, want 3 (1 and 2 are in flight)", first)
		}
		// A full cycle later it comes round to the first free id again,
		// having skipped 65534, 65535, 0, 1 and 2.
		if id, ok := s.NextIDLocked(); !ok || id != 3 {
			t.Errorf("after a full cycle: NextIDLocked = %d, %v; want 3, true", id, ok)
		}
	})
	t.Run("all 65535 in flight", func(t *testing.T) {
		s := session.New("c")
		s.Lock()
		defer s.Unlock()
		for id := 1; id <= math.MaxUint16; id++ {
			s.PushInflightLocked(session.Delivery{QoS: 1}, uint16(id), 0)
		}
		if id, ok := s.NextIDLocked(); ok {
			t.Fatalf("NextIDLocked = %d, true with every id in flight; want false", id)
		}
		if !ok(s.PubackLocked(300)) {
			t.Fatal("PubackLocked(300) = false")
		}
		if id, ok := s.NextIDLocked(); !ok || id != 300 {
			t.Fatalf("after freeing 300: NextIDLocked = %d, %v; want 300, true", id, ok)
		}
	})
}

// inflightIDs returns the ids in flight, in send order.
func inflightIDs(s *session.Session) []uint16 {
	var ids []uint16
	for _, e := range s.InflightLocked() {
		ids = append(ids, e.ID)
	}
	return ids
}

// [MQTT-4.3.2]: QoS 1 completes on PUBACK, once.
func TestQoS1Flow(t *testing.T) {
	tests := []struct {
		name string
		// ack is called with the session holding a QoS 1 message with
		// packet id 10 and a QoS 2 one with id 20, and reports what
		// each call returned.
		ack          func(s *session.Session) []bool
		want         []bool
		wantInflight []uint16
		wantQoS1Rel  bool // the QoS 1 message was released by the acks
	}{
		{
			name:         "PUBACK completes, once",
			ack:          func(s *session.Session) []bool { return []bool{ok(s.PubackLocked(10)), ok(s.PubackLocked(10))} },
			want:         []bool{true, false},
			wantInflight: []uint16{20},
			wantQoS1Rel:  true,
		},
		{
			name:         "PUBACK for an unknown id",
			ack:          func(s *session.Session) []bool { return []bool{ok(s.PubackLocked(11)), ok(s.PubackLocked(0))} },
			want:         []bool{false, false},
			wantInflight: []uint16{10, 20},
		},
		{
			name:         "PUBACK for a QoS 2 delivery is the wrong state",
			ack:          func(s *session.Session) []bool { return []bool{ok(s.PubackLocked(20))} },
			want:         []bool{false},
			wantInflight: []uint16{10, 20},
		},
		{
			name: "PUBREC and PUBCOMP for a QoS 1 delivery are the wrong state",
			ack: func(s *session.Session) []bool {
				return []bool{ok(s.PubrecLocked(10, false, 5)), ok(s.PubrecLocked(10, true, 5)), ok(s.PubcompLocked(10))}
			},
			want:         []bool{false, false, false},
			wantInflight: []uint16{10, 20},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := session.New("c")
			s.Lock()
			defer s.Unlock()
			m1, m2 := newMsg("q1"), newMsg("q2")
			s.PushInflightLocked(held(m1, 1), 10, 100)
			s.PushInflightLocked(held(m2, 2), 20, 100)
			if got := tt.ack(s); !slices.Equal(got, tt.want) {
				t.Errorf("acks returned %v, want %v", got, tt.want)
			}
			if got := inflightIDs(s); !slices.Equal(got, tt.wantInflight) {
				t.Errorf("in flight %v, want %v", got, tt.wantInflight)
			}
			for _, e := range s.InflightLocked() {
				// What is still in flight still holds a usable message.
				if e.Msg == nil || string(e.Msg.Topic) != "t/"+string(e.Msg.Payload) {
					t.Errorf("id %d: message %+v is no longer intact", e.ID, e.Msg)
				}
			}
			if tt.wantQoS1Rel {
				wantReleasedOnce(t, "acknowledged QoS 1 message", m1)
			}
			// Clearing releases whatever is left: each message must have
			// been released exactly once, whatever the path.
			s.ClearLocked()
			if !tt.wantQoS1Rel {
				wantReleasedOnce(t, "QoS 1 message after clear", m1)
			}
			wantReleasedOnce(t, "QoS 2 message after clear", m2)
		})
	}
}

// [MQTT-4.3.3]: QoS 2 goes PUBLISH → PUBREC → PUBREL → PUBCOMP; the message
// is released at PUBREC, after which only PUBREL is resent.
func TestQoS2Flow(t *testing.T) {
	t.Run("PUBREC then PUBCOMP", func(t *testing.T) {
		s := session.New("c")
		s.Lock()
		defer s.Unlock()
		m := newMsg("q2")
		s.PushInflightLocked(held(m, 2), 7, 100)
		if e := s.InflightLocked()[0]; e.State != session.AwaitPubrec || e.ID != 7 || e.Sent != 100 || e.Msg != m {
			t.Fatalf("after push: %+v, want AwaitPubrec id 7 sent 100", e)
		}
		if !ok(s.PubrecLocked(7, false, 200)) {
			t.Fatal("PubrecLocked = false")
		}
		e := s.InflightLocked()[0]
		if e.State != session.AwaitPubcomp || e.Sent != 200 || e.Msg != nil {
			t.Fatalf("after PUBREC: state %d sent %d msg %v; want AwaitPubcomp, 200, nil", e.State, e.Sent, e.Msg)
		}
		if s.InflightLen() != 1 {
			t.Fatalf("InflightLen = %d after PUBREC, want 1 (PUBCOMP still owed)", s.InflightLen())
		}
		// The test's own reference keeps the message intact...
		if string(m.Payload) != "q2" || string(m.Topic) != "t/q2" {
			t.Fatalf("message damaged after PUBREC: %q %q", m.Topic, m.Payload)
		}
		// ...and is the only one left: the session released its own at
		// PUBREC. Later steps must not release it again (refsLeft has
		// consumed m; a second release would panic in the session).
		wantReleasedOnce(t, "message after PUBREC", m)

		if !ok(s.PubrecLocked(7, false, 300)) {
			t.Error("duplicate PUBREC = false, want true (answer with PUBREL again)")
		}
		if e := s.InflightLocked()[0]; e.State != session.AwaitPubcomp || e.Sent != 200 {
			t.Errorf("duplicate PUBREC changed the entry: %+v", e)
		}
		if ok(s.PubackLocked(7)) {
			t.Error("PUBACK accepted for a QoS 2 delivery")
		}
		if !ok(s.PubcompLocked(7)) {
			t.Fatal("PubcompLocked = false")
		}
		if s.InflightLen() != 0 {
			t.Fatalf("InflightLen = %d after PUBCOMP", s.InflightLen())
		}
		if ok(s.PubcompLocked(7)) || ok(s.PubrecLocked(7, false, 400)) {
			t.Error("ack for a completed id accepted")
		}
	})
	t.Run("PUBCOMP before PUBREC is the wrong state", func(t *testing.T) {
		s := session.New("c")
		s.Lock()
		defer s.Unlock()
		m := newMsg("q2")
		s.PushInflightLocked(held(m, 2), 7, 100)
		if ok(s.PubcompLocked(7)) {
			t.Fatal("PubcompLocked = true before PUBREC")
		}
		if e := s.InflightLocked()[0]; e.State != session.AwaitPubrec || e.Msg != m {
			t.Fatalf("early PUBCOMP changed the entry: %+v", e)
		}
		s.ClearLocked()
		wantReleasedOnce(t, "message after clear", m)
	})
	t.Run("failed PUBREC ends the delivery", func(t *testing.T) {
		s := session.New("c")
		s.Lock()
		defer s.Unlock()
		m, other := newMsg("q2"), newMsg("other")
		s.PushInflightLocked(held(m, 2), 7, 100)
		s.PushInflightLocked(held(other, 2), 8, 100)
		if !ok(s.PubrecLocked(7, true, 200)) {
			t.Fatal("failed PubrecLocked = false, want true")
		}
		if got := inflightIDs(s); !slices.Equal(got, []uint16{8}) {
			t.Fatalf("in flight %v after failed PUBREC, want [8]", got)
		}
		if ok(s.PubcompLocked(7)) {
			t.Error("PUBCOMP accepted after a failed PUBREC")
		}
		wantReleasedOnce(t, "message after failed PUBREC", m)
		s.ClearLocked()
		wantReleasedOnce(t, "other message after clear", other)
	})
	t.Run("PUBREC for an unknown id", func(t *testing.T) {
		s := session.New("c")
		s.Lock()
		defer s.Unlock()
		if ok(s.PubrecLocked(7, false, 1)) || ok(s.PubrecLocked(7, true, 1)) || ok(s.PubcompLocked(7)) {
			t.Error("ack for an id never sent accepted on an idle session")
		}
		s.PushInflightLocked(session.Delivery{QoS: 2}, 8, 0)
		if ok(s.PubrecLocked(7, false, 1)) {
			t.Error("PUBREC for an unknown id accepted")
		}
	})
}

// [MQTT-4.6.0-1]: acknowledging one message keeps the others in send order.
func TestInflightOrderKeptOnRemoval(t *testing.T) {
	s := session.New("c")
	s.Lock()
	defer s.Unlock()
	for id := uint16(1); id <= 5; id++ {
		qos := byte(1)
		if id%2 == 0 {
			qos = 2
		}
		s.PushInflightLocked(session.Delivery{QoS: qos}, id, int64(id))
	}
	s.PubackLocked(3)
	s.PubrecLocked(2, false, 9)
	s.PubackLocked(1)
	if got := inflightIDs(s); !slices.Equal(got, []uint16{2, 4, 5}) {
		t.Fatalf("in flight %v, want [2 4 5]", got)
	}
	s.PubcompLocked(2)
	if got := inflightIDs(s); !slices.Equal(got, []uint16{4, 5}) {
		t.Fatalf("in flight %v, want [4 5]", got)
	}
}

func TestDeliveryRelease(t *testing.T) {
	m := newMsg("d")
	d := held(m, 1)
	d.Release()
	if d.Msg != nil {
		t.Fatal("Release left Msg set")
	}
	d.Release() // a second call is a no-op, not a second release
	wantReleasedOnce(t, "delivery released twice", m)
}

func TestAwaitRel(t *testing.T) {
	s := session.New("c")
	s.Lock()
	defer s.Unlock()
	if s.AwaitingRelLocked(1) || s.ReleaseLocked(1) || s.AwaitRelCountLocked() != 0 {
		t.Fatal("idle session reports an inbound QoS 2 id")
	}
	for _, id := range []uint16{1, 2, 3} {
		s.AddAwaitRelLocked(id)
	}
	tests := []struct {
		op        string // "release" or "check"
		id        uint16
		want      bool
		wantCount int
	}{
		{op: "check", id: 2, want: true, wantCount: 3}, // [MQTT-4.3.3-10] a resend
		{op: "check", id: 4, want: false, wantCount: 3},
		{op: "release", id: 2, want: true, wantCount: 2}, // [MQTT-4.3.3-11]
		{op: "release", id: 2, want: false, wantCount: 2},
		{op: "check", id: 2, want: false, wantCount: 2},
		{op: "check", id: 1, want: true, wantCount: 2},
		{op: "check", id: 3, want: true, wantCount: 2},
		{op: "release", id: 9, want: false, wantCount: 2},
		{op: "release", id: 3, want: true, wantCount: 1},
		{op: "release", id: 1, want: true, wantCount: 0},
		{op: "check", id: 1, want: false, wantCount: 0},
	}
	for i, tt := range tests {
		var got bool
		if tt.op == "release" {
			got = s.ReleaseLocked(tt.id)
		} else {
			got = s.AwaitingRelLocked(tt.id)
		}
		if got != tt.want || s.AwaitRelCountLocked() != tt.wantCount {
			t.Errorf("step %d: %s(%d) = %v, count %d; want %v, count %d",
				i, tt.op, tt.id, got, s.AwaitRelCountLocked(), tt.want, tt.wantCount)
		}
	}
}

// [MQTT-3.1.2-4]: a clean start drops all session state.
func TestClearLocked(t *testing.T) {
	s := session.New("c")
	s.Lock()
	defer s.Unlock()
	subs := []session.Sub{
		{Filter: "a/#", Opts: router.Options{QoS: 1}},
		{Filter: "b", Opts: router.Options{QoS: 2, SubID: 3}},
	}
	for _, sub := range subs {
		s.AddSubLocked(sub.Filter, sub.Opts)
	}
	var msgs []*router.Message
	msg := func(p string) *router.Message {
		m := newMsg(p)
		msgs = append(msgs, m)
		return m
	}
	s.PushInflightLocked(held(msg("q1"), 1), 1, 0)
	s.PushInflightLocked(held(msg("q2"), 2), 2, 0)
	s.PushInflightLocked(held(msg("q2-released"), 2), 3, 0)
	s.PubrecLocked(3, false, 1) // AwaitPubcomp: its message is already gone
	// A wrapped ring: 8 queued, 3 dequeued, 3 more queued.
	for i := range 8 {
		s.EnqueueLocked(held(msg(fmt.Sprintf("q%d", i)), 1), 100, false)
	}
	for range 3 {
		d, _ := s.DequeueLocked()
		d.Release()
	}
	for i := range 3 {
		s.EnqueueLocked(held(msg(fmt.Sprintf("r%d", i)), 1), 100, false)
	}
	s.AddAwaitRelLocked(5)

	got := s.ClearLocked()
	if !slices.Equal(got, subs) {
		t.Errorf("ClearLocked returned %+v, want %+v", got, subs)
	}
	if s.SubsLocked() != nil || s.InflightLen() != 0 || s.QueueLen() != 0 || s.AwaitRelCountLocked() != 0 || s.AwaitingRelLocked(5) {
		t.Errorf("after clear: %d subs, %d in flight, %d queued, %d awaiting PUBREL",
			len(s.SubsLocked()), s.InflightLen(), s.QueueLen(), s.AwaitRelCountLocked())
	}
	if s.Busy() {
		t.Error("Busy() after clear")
	}
	wantReleasedOnce(t, "message after clear", msgs...)

	// The session is usable afterwards, from a fresh state.
	if s.ClearLocked() != nil {
		t.Error("second ClearLocked returned subscriptions")
	}
	if id, ok := s.NextIDLocked(); !ok || id != 1 {
		t.Errorf("NextIDLocked after clear = %d, %v; want 1, true", id, ok)
	}
	m := newMsg("after")
	if wasDropped(s.EnqueueLocked(held(m, 1), 1, false)) {
		t.Error("enqueue after clear dropped")
	}
	if got := drain(s); !slices.Equal(got, []string{"after"}) {
		t.Errorf("queue after clear %v", got)
	}
	wantReleasedOnce(t, "message queued after clear", m)
}

// ok is the second result of PubackLocked, PubrecLocked and PubcompLocked.
func ok(_ uint64, ok bool) bool { return ok }

// wasDropped is the first result of EnqueueLocked.
func wasDropped(dropped bool, _ uint64) bool { return dropped }

// TestDeliveryIDs: one Subscription Identifier is held in the delivery
// itself, several are copied, and IDs gives them back either way.
func TestDeliveryIDs(t *testing.T) {
	var buf [1]uint32
	for _, ids := range [][]uint32{nil, {7}, {7, 9, 11}} {
		var d session.Delivery
		src := append([]uint32(nil), ids...)
		d.SetIDs(src)
		if len(ids) == 1 && (d.SubID != 7 || d.SubIDs != nil) {
			t.Errorf("SetIDs(%v): SubID %d, SubIDs %v, want the one id held inline", ids, d.SubID, d.SubIDs)
		}
		if got := d.IDs(&buf); !slices.Equal(got, ids) {
			t.Errorf("SetIDs(%v): IDs() = %v", ids, got)
		}
		if len(src) > 1 {
			src[0] = 0 // the caller's slice is its own again
			if got := d.IDs(&buf); got[0] != 7 {
				t.Errorf("SetIDs(%v) kept the caller's slice: %v after the caller changed it", ids, got)
			}
		}
	}
}
