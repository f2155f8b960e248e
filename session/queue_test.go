package session_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/shoalmq/shoal/router"
	"github.com/shoalmq/shoal/session"
)

// Tests of the queue behind the in-flight window, and of allocations. The
// reference-counting helpers are in session_test.go.

// drain dequeues everything and returns the payloads in order,
// releasing each delivery.
func drain(s *session.Session) []string {
	var out []string
	for {
		d, ok := s.DequeueLocked()
		if !ok {
			return out
		}
		out = append(out, string(d.Msg.Payload))
		d.Release()
	}
}

// TestQueueFIFO checks the queue against a slice model through random
// interleavings of enqueues and dequeues, which take the ring through
// growth while wrapped, wrap-around, drops at the limit under both
// policies, and the shrink after draining a ring of more than 64.
func TestQueueFIFO(t *testing.T) {
	tests := []struct {
		max        int
		dropOldest bool
		seed       uint64
	}{
		{max: 1, dropOldest: false, seed: 1},
		{max: 1, dropOldest: true, seed: 2},
		{max: 5, dropOldest: false, seed: 3},
		{max: 8, dropOldest: true, seed: 4},
		{max: 9, dropOldest: false, seed: 5},
		{max: 100, dropOldest: true, seed: 6},
		{max: 300, dropOldest: false, seed: 7},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("max=%d dropOldest=%v", tt.max, tt.dropOldest), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(tt.seed, 0))
			s := session.New("c")
			s.Lock()
			defer s.Unlock()
			var model []string
			sizes := map[string]int{} // Delivery.Size by payload
			seq := 0
			for round := 0; round < 60; round++ {
				// Bursts of enqueues bigger than the dequeues, so that
				// the ring fills, wraps and grows; every tenth round
				// drains it completely.
				for range rng.IntN(2*tt.max + 3) {
					p := fmt.Sprintf("m%d", seq)
					seq++
					m := newMsg(p)
					d := held(m, 1)
					sizes[p] = d.Size()
					dropped := wasDropped(s.EnqueueLocked(d, tt.max, tt.dropOldest))
					wantDropped := len(model) >= tt.max
					var gone string
					switch {
					case !wantDropped:
						model = append(model, p)
					case tt.dropOldest:
						gone, model = model[0], append(model[1:], p)
					default:
						gone = p
					}
					if dropped != wantDropped {
						t.Fatalf("round %d: EnqueueLocked(%s) with %d queued = %v, want %v", round, p, len(model), dropped, wantDropped)
					}
					// The test keeps its reference to each message
					// only until it is queued; a dropped one must
					// now be down to that reference.
					if wantDropped && gone == p {
						wantReleasedOnce(t, "refused message", m)
					} else {
						m.Release()
					}
				}
				n := rng.IntN(tt.max + 1)
				if round%10 == 9 {
					n = len(model) + 1
				}
				for range n {
					d, ok := s.DequeueLocked()
					if len(model) == 0 {
						if ok {
							t.Fatalf("round %d: DequeueLocked from an empty queue returned %+v", round, d)
						}
						break
					}
					if !ok {
						t.Fatalf("round %d: DequeueLocked failed with %d queued", round, len(model))
					}
					if got := string(d.Msg.Payload); got != model[0] {
						t.Fatalf("round %d: dequeued %s, want %s", round, got, model[0])
					}
					model = model[1:]
					d.Release()
				}
				if s.QueueLen() != len(model) {
					t.Fatalf("round %d: QueueLen %d, want %d", round, s.QueueLen(), len(model))
				}
				want := 0
				for _, p := range model {
					want += sizes[p]
				}
				if got := s.QueueBytesLocked(); got != want {
					t.Fatalf("round %d: QueueBytesLocked %d, want %d", round, got, want)
				}
				if s.Busy() != (len(model) > 0) {
					t.Fatalf("round %d: Busy() = %v with %d queued", round, s.Busy(), len(model))
				}
			}
			if got := drain(s); !slices.Equal(got, model) {
				t.Fatalf("final drain %v, want %v", got, model)
			}
			if s.Busy() {
				t.Fatal("Busy() after draining the queue")
			}
		})
	}
}

func TestEnqueueAtLimit(t *testing.T) {
	tests := []struct {
		name        string
		max         int
		dropOldest  bool
		queued      int // messages queued before the one under test
		wantDropped bool
		wantQueue   []string // payloads after enqueueing "new"
		wantGone    string   // the payload released, if any
	}{
		{name: "below the limit", max: 3, queued: 2, wantQueue: []string{"m0", "m1", "new"}},
		{name: "full, drop new", max: 3, queued: 3, wantDropped: true, wantQueue: []string{"m0", "m1", "m2"}, wantGone: "new"},
		{name: "full, drop oldest", max: 3, dropOldest: true, queued: 3, wantDropped: true, wantQueue: []string{"m1", "m2", "new"}, wantGone: "m0"},
		{name: "limit 1, drop oldest", max: 1, dropOldest: true, queued: 1, wantDropped: true, wantQueue: []string{"new"}, wantGone: "m0"},
		{name: "limit 0 refuses", max: 0, wantDropped: true, wantGone: "new"},
		{name: "limit 0 refuses even dropping oldest", max: 0, dropOldest: true, wantDropped: true, wantGone: "new"},
		{name: "negative limit refuses", max: -1, wantDropped: true, wantGone: "new"},
		{name: "full ring wraps on drop oldest", max: 8, dropOldest: true, queued: 8, wantDropped: true,
			wantQueue: []string{"m1", "m2", "m3", "m4", "m5", "m6", "m7", "new"}, wantGone: "m0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := session.New("c")
			s.Lock()
			defer s.Unlock()
			msgs := map[string]*router.Message{}
			for i := range tt.queued {
				p := fmt.Sprintf("m%d", i)
				msgs[p] = newMsg(p)
				if wasDropped(s.EnqueueLocked(held(msgs[p], 1), tt.max, tt.dropOldest)) {
					t.Fatalf("filling: %s dropped", p)
				}
			}
			msgs["new"] = newMsg("new")
			if got := wasDropped(s.EnqueueLocked(held(msgs["new"], 1), tt.max, tt.dropOldest)); got != tt.wantDropped {
				t.Fatalf("EnqueueLocked = %v, want %v", got, tt.wantDropped)
			}
			if s.QueueLen() != len(tt.wantQueue) {
				t.Errorf("QueueLen %d, want %d", s.QueueLen(), len(tt.wantQueue))
			}
			if s.Busy() != (len(tt.wantQueue) > 0) {
				t.Errorf("Busy() = %v with %d queued", s.Busy(), len(tt.wantQueue))
			}
			if tt.wantGone != "" {
				wantReleasedOnce(t, "dropped "+tt.wantGone, msgs[tt.wantGone])
			}
			if got := drain(s); !slices.Equal(got, tt.wantQueue) {
				t.Errorf("queue %v, want %v", got, tt.wantQueue)
			}
			for p, m := range msgs {
				if p != tt.wantGone {
					wantReleasedOnce(t, "dequeued "+p, m)
				}
			}
		})
	}
}

// An idle session allocates its message state only on first use (see the
// package documentation), and a warmed-up queue allocates nothing per
// message (STYLE item 12).
func TestSessionAllocs(t *testing.T) {
	idle := testing.AllocsPerRun(100, func() {
		s := session.New("c")
		s.Lock()
		s.PubackLocked(1)
		s.PubrecLocked(1, false, 0)
		s.PubcompLocked(1)
		s.DequeueLocked()
		s.AwaitingRelLocked(1)
		s.ReleaseLocked(1)
		_ = s.InflightLen() + s.QueueLen() + s.AwaitRelCountLocked()
		s.ClearLocked()
		s.Unlock()
	})
	if idle != 1 {
		t.Errorf("idle session: %v allocations, want 1 (the Session)", idle)
	}

	s := session.New("c")
	s.Lock()
	defer s.Unlock()
	for range 20 {
		s.EnqueueLocked(session.Delivery{QoS: 1}, 16, true)
	}
	empty := func() {
		for {
			if _, ok := s.DequeueLocked(); !ok {
				return
			}
		}
	}
	empty()
	steady := testing.AllocsPerRun(100, func() {
		for range 10 {
			s.EnqueueLocked(session.Delivery{QoS: 1}, 16, true)
		}
		id, _ := s.NextIDLocked()
		d, _ := s.DequeueLocked()
		s.PushInflightLocked(d, id, 0)
		s.PubackLocked(id)
		empty()
	})
	if steady != 0 {
		t.Errorf("warmed-up queue: %v allocations per run, want 0", steady)
	}
}

// TestTakeShared: shared deliveries not yet received for certain leave the
// session (queued, and in flight before PUBREC); the rest stays in order.
func TestTakeShared(t *testing.T) {
	s := session.New("c")
	s.Lock()
	defer s.Unlock()
	mk := func(group string, qos byte) session.Delivery {
		return session.Delivery{Msg: router.NewMessage([]byte("t"), []byte(group), nil, nil, qos, false, 0, nil), QoS: qos, Group: group}
	}
	s.PushInflightLocked(mk("$share/g/t", 1), 1, 0) // unacknowledged: taken
	s.PushInflightLocked(mk("", 1), 2, 0)           // not shared: stays
	s.PushInflightLocked(mk("$share/g/t", 2), 3, 0)
	if !ok(s.PubrecLocked(3, false, 0)) { // past PUBREC: the client has it, stays
		t.Fatal("PUBREC 3")
	}
	for i, g := range []string{"", "$share/g/t", "", "$share/h/t", ""} {
		d := mk(g, 1)
		d.SubIDs = []uint32{uint32(i)}
		s.EnqueueLocked(d, 10, true)
	}
	got := s.TakeSharedLocked()
	if len(got) != 3 {
		t.Fatalf("took %d deliveries, want 3", len(got))
	}
	for _, d := range got {
		if d.Group == "" {
			t.Fatalf("took a non-shared delivery: %+v", d)
		}
		d.Release()
	}
	if n := s.InflightLen(); n != 2 {
		t.Fatalf("%d in flight, want 2", n)
	}
	var order []uint32
	for {
		d, ok := s.DequeueLocked()
		if !ok {
			break
		}
		order = append(order, d.SubIDs[0])
		d.Release()
	}
	if fmt.Sprint(order) != "[0 2 4]" {
		t.Fatalf("queue after = %v, want [0 2 4]", order)
	}
	if s.Busy() {
		t.Fatal("busy with an empty queue")
	}
	s.ClearLocked()
}
