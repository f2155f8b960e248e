package cluster

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/shoalmq/shoal/router"
)

// sent records the wills a node published, with when.
type sent struct {
	mu   sync.Mutex
	msgs []*router.Message
	at   []time.Time
}

func (s *sent) SendWill(m *router.Message) {
	s.mu.Lock()
	s.msgs = append(s.msgs, m)
	s.at = append(s.at, time.Now())
	s.mu.Unlock()
}

func (s *sent) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.msgs)
}

// startWills opens a Wills with grace on each node, each publishing to its
// own sent.
func startWills(t *testing.T, nodes []*Node, grace time.Duration) ([]*Wills, []*sent) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ws := make([]*Wills, len(nodes))
	ss := make([]*sent, len(nodes))
	for i, n := range nodes {
		ss[i] = &sent{}
		ws[i] = NewWills()
		ws[i].Grace = grace
		if err := ws[i].Open(ctx, n, ss[i], zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(ws[i].Close)
	}
	return ws, ss
}

func willOf(id string) *router.Message {
	return router.NewMessage([]byte("will/"+id), []byte("gone"), []byte{0x03, 0, 1, 'x'}, []byte(id), 1, true,
		int64(time.Minute), nil)
}

// has reports whether w knows a will of clientID.
func (w *Wills) has(clientID string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.known[willKey(clientID)] != nil
}

// settle waits until no node knows clientID's will and each has made every
// write queued: nothing is left that could publish it.
func settle(t *testing.T, ws []*Wills, clientID string) {
	t.Helper()
	waitFor(t, "the will to be gone everywhere", func() bool {
		for _, w := range ws {
			if w.has(clientID) {
				return false
			}
		}
		return true
	})
	for _, w := range ws {
		w.sync()
	}
}

// total is the number of wills published on all nodes.
func total(ss []*sent) int {
	n := 0
	for _, s := range ss {
		n += s.count()
	}
	return n
}

// waitSent waits for a will on any of ss.
func waitSent(t *testing.T, ss []*sent) {
	t.Helper()
	waitFor(t, "a will to be published", func() bool { return total(ss) > 0 })
}

// TestWills: a delayed will in the cluster's bucket is published once,
// whoever fires; a cancelled one never; one whose owner is gone by a
// survivor, after the grace.
func TestWills(t *testing.T) {
	nodes := startCluster(t, 3)

	// The owner's timer fires and wins: the will it had,
	// once, with its message whole (Message Expiry Interval still
	// relative); the others' grace timers are cancelled by the delete.
	t.Run("PutFiresOnce", func(t *testing.T) {
		ws, ss := startWills(t, nodes, time.Minute)
		due := time.Now().Add(200 * time.Millisecond).UnixNano()
		ws[0].Put("a.b c", willOf("a.b c"), due)
		waitFor(t, "every node to know the will", func() bool { return ws[1].has("a.b c") && ws[2].has("a.b c") })
		ws[0].Claim("a.b c", willOf("a.b c"))
		settle(t, ws, "a.b c")
		if n := total(ss); n != 1 || ss[0].count() != 1 {
			t.Fatalf("%d wills published (%d by the owner), want 1 by the owner", n, ss[0].count())
		}
		m := ss[0].msgs[0]
		if string(m.Topic) != "will/a.b c" || string(m.Payload) != "gone" || m.QoS != 1 || !m.Retain || m.Expiry != int64(time.Minute) {
			t.Fatalf("published %+v", m)
		}
	})

	// A standing will — its connection still on node 0 — is published
	// by nobody until node 0 is found gone; then once, by a survivor,
	// after its delay. One cancelled first (its connection left without
	// a will), or whose node comes back first, is not published.
	t.Run("StandingWhenGone", func(t *testing.T) {
		ws, ss := startWills(t, nodes, time.Minute)
		const delay = 300 * time.Millisecond
		ws[0].Stand("st", willOf("st"), delay)
		ws[0].Stand("left", willOf("left"), delay)
		ws[0].Stand("back", willOf("back"), time.Minute) // its node is back before
		waitFor(t, "every node to know the standing wills", func() bool {
			return ws[1].has("st") && ws[2].has("st") && ws[1].has("left") && ws[2].has("back")
		})
		ws[0].Cancel("left", true)
		waitFor(t, "the cancelled will to be gone", func() bool { return !ws[1].has("left") && !ws[2].has("left") })
		if n := total(ss); n != 0 {
			t.Fatalf("%d wills published while their connections were up", n)
		}
		gone := time.Now()
		for _, w := range ws[1:] {
			w.NodeGone("n0", true)
		}
		waitSent(t, ss[1:])
		at := time.Now()
		for _, w := range ws[1:] {
			w.NodeGone("n0", false) // back: "back" stands again
		}
		settle(t, ws, "st")
		if n := total(ss); n != 1 || ss[0].count() != 0 {
			t.Fatalf("%d wills published (%d by node 0), want 1 by a survivor", n, ss[0].count())
		}
		for _, s := range ss[1:] {
			for _, m := range s.msgs {
				if string(m.Topic) != "will/st" {
					t.Fatalf("published %s", m.Topic)
				}
			}
		}
		if at.Sub(gone) < delay {
			t.Errorf("published %v after the node was found gone, before its delay (%v)", at.Sub(gone), delay)
		}
		if !ws[1].has("back") || !ws[2].has("back") {
			t.Error("the will of a node back in time was dropped")
		}
	})

	// A node that starts again publishes the wills its last run left
	// standing: their connections ended when it stopped.
	t.Run("StandingRestarted", func(t *testing.T) {
		ws, ss := startWills(t, nodes, time.Minute)
		ws[0].Stand("rs", willOf("rs"), 100*time.Millisecond)
		waitFor(t, "every node to know the standing will", func() bool { return ws[1].has("rs") && ws[2].has("rs") })
		ws[1].Restarted() // not its own: nothing
		ws[1].sync()
		ws[0].Restarted()
		waitSent(t, ss)
		settle(t, ws, "rs")
		if n := total(ss); n != 1 || ss[0].count() != 1 {
			t.Fatalf("%d wills published (%d by node 0), want 1 by node 0", n, ss[0].count())
		}
	})

	// A node that did not put it publishes the bucket's copy, decoded
	// whole.
	t.Run("ClaimElsewhere", func(t *testing.T) {
		ws, ss := startWills(t, nodes, time.Minute)
		ws[0].Put("c1", willOf("c1"), time.Now().Add(time.Hour).UnixNano())
		waitFor(t, "node 2 to know the will", func() bool { return ws[2].has("c1") })
		ws[2].Claim("c1", nil)
		settle(t, ws, "c1")
		if total(ss) != 1 || ss[2].count() != 1 {
			t.Fatalf("%d wills published, %d by node 2; want 1 by node 2", total(ss), ss[2].count())
		}
		m := ss[2].msgs[0]
		if string(m.Topic) != "will/c1" || string(m.Payload) != "gone" || string(m.Props) != "\x03\x00\x01x" ||
			string(m.FromID) != "c1" || m.QoS != 1 || !m.Retain || m.Expiry != int64(time.Minute) {
			t.Fatalf("published %+v", m)
		}
	})

	// A client back in time, on another node: no node publishes, and no
	// timer is left.
	t.Run("CancelNeverFires", func(t *testing.T) {
		ws, ss := startWills(t, nodes, 50*time.Millisecond)
		ws[0].Put("c2", willOf("c2"), time.Now().Add(500*time.Millisecond).UnixNano())
		waitFor(t, "node 1 to know the will", func() bool { return ws[1].has("c2") })
		ws[1].Cancel("c2", false)
		settle(t, ws, "c2")
		ws[0].Claim("c2", willOf("c2")) // the owner's timer, late
		for _, w := range ws {
			w.sync()
			if _, ok := w.timers.Cancel(willKey("c2")); ok {
				t.Fatal("a timer left")
			}
		}
		if n := total(ss); n != 0 {
			t.Fatalf("%d wills published after a cancel", n)
		}
	})

	// A cancel of this node's own will only (a session handed over)
	// leaves a will another node put since.
	t.Run("CancelMine", func(t *testing.T) {
		ws, ss := startWills(t, nodes, time.Minute)
		ws[1].Put("c3", willOf("c3"), time.Now().Add(time.Hour).UnixNano())
		waitFor(t, "node 0 to know node 1's will", func() bool { return ws[0].has("c3") })
		ws[0].Cancel("c3", true)
		ws[0].Claim("c3", willOf("c3")) // node 0's timer of a will of its own, superseded
		ws[0].sync()
		ws[1].sync()
		if !ws[0].has("c3") || !ws[1].has("c3") || total(ss) != 0 {
			t.Fatalf("node 1's will: known %v, %d published; want kept, none", ws[1].has("c3"), total(ss))
		}
		ws[1].Cancel("c3", true)
		settle(t, ws, "c3")
	})

	// Every node fires at once — the owner's timer and the others' at
	// due plus no grace — and the will is published once.
	t.Run("RaceOnce", func(t *testing.T) {
		for round := range 5 {
			ws, ss := startWills(t, nodes, 0)
			id := "race" + string(rune('a'+round))
			due := time.Now().Add(300 * time.Millisecond)
			ws[0].Put(id, willOf(id), due.UnixNano())
			waitFor(t, "every node to know the will", func() bool { return ws[1].has(id) && ws[2].has(id) })
			time.AfterFunc(time.Until(due), func() { ws[0].Claim(id, willOf(id)) })
			waitSent(t, ss)
			settle(t, ws, id)
			if n := total(ss); n != 1 {
				t.Fatalf("round %d: %d wills published", round, n)
			}
			for _, w := range ws {
				w.Close()
			}
		}
	})

	// The owner leaves without a word (its Wills closed, its timer gone):
	// a survivor publishes the will once, not before the grace passed.
	t.Run("OwnerGone", func(t *testing.T) {
		const grace = 300 * time.Millisecond
		ws, ss := startWills(t, nodes, grace)
		due := time.Now().Add(200 * time.Millisecond)
		ws[0].Put("c4", willOf("c4"), due.UnixNano())
		waitFor(t, "every node to know the will", func() bool { return ws[1].has("c4") && ws[2].has("c4") })
		ws[0].Close()
		waitSent(t, ss[1:])
		settle(t, ws[1:], "c4")
		if n := total(ss); n != 1 {
			t.Fatalf("%d wills published, want 1", n)
		}
		for _, s := range ss[1:] {
			for _, at := range s.at {
				if at.Before(due.Add(grace)) {
					t.Fatalf("published %v before the due time plus grace", due.Add(grace).Sub(at))
				}
			}
		}
	})
}

// TestWillRecord: a will's record, due or standing, decodes to what was
// put.
func TestWillRecord(t *testing.T) {
	m := willOf("x")
	defer m.Release()
	for _, standing := range []bool{false, true} {
		b := appendWill(nil, "n1", 12345, standing, appendFrame(nil, m, "", 0))
		node, due, st, got, err := decodeWill(b)
		if err != nil || node != "n1" || due != 12345 || st != standing || string(got.Topic) != "will/x" || got.Expiry != m.Expiry {
			t.Fatalf("decoded %q %d %v %+v %v", node, due, st, got, err)
		}
		got.Release()
		for i := range len(b) - len(m.Payload) { // cut in the payload, it is a shorter one
			if _, _, _, m, err := decodeWill(b[:i]); err == nil {
				m.Release()
				t.Fatalf("a record cut at %d decoded", i)
			}
		}
	}
}
