package persist

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/shoalmq/shoal/router"
	"github.com/shoalmq/shoal/session"
	"github.com/shoalmq/shoal/store"
)

// countingWriter counts the commits that sync.
type countingWriter struct {
	store.Writer
	syncs int
}

func (w *countingWriter) Commit(sync bool) error {
	if sync {
		w.syncs++
	}
	return w.Writer.Commit(sync)
}

func newKeeper(strict bool) *Keeper {
	var log atomic.Pointer[zerolog.Logger]
	nop := zerolog.Nop()
	log.Store(&nop)
	k := New(&log)
	k.Use(store.NewMem(), strict)
	return k
}

// TestBeforeFlushHolds: a loop holds its output for the rest of a poll
// only once two syncs came within syncMergeWindow, and stops holding when a
// held round gathered a single read burst; a relaxed store never syncs.
func TestBeforeFlushHolds(t *testing.T) {
	k := newKeeper(true)
	w := &countingWriter{Writer: k.Writer()}
	l := &Loop{W: w}
	now := int64(time.Hour)
	round := func(mayHold bool) bool {
		l.NeedSync()
		return k.BeforeFlush(l, now, mayHold)
	}
	if round(true) {
		t.Fatal("held on the first sync: nothing says holding pays")
	}
	now += int64(syncMergeWindow / 2)
	if round(true) {
		t.Fatal("held on the second sync: it decides whether the next holds")
	}
	now += int64(syncMergeWindow / 2)
	if !round(true) {
		t.Fatal("syncs closer than syncMergeWindow, and the next read burst was not held")
	}
	if k.BeforeFlush(l, now, false) { // the end of the poll: the held output goes
		t.Fatal("held at the end of a poll")
	}
	if w.syncs != 3 {
		t.Fatalf("%d syncs, want 3 (one per round that was not held)", w.syncs)
	}
	// That held round gathered one read burst: holding stops paying.
	now += int64(syncMergeWindow / 2)
	if round(true) {
		t.Fatal("held again after a held round of a single burst")
	}

	relaxed := newKeeper(false)
	rw := &countingWriter{Writer: relaxed.Writer()}
	rl := &Loop{W: rw}
	rl.NeedSync()
	if relaxed.BeforeFlush(rl, now, true) || rw.syncs != 0 {
		t.Fatalf("relaxed: held or synced (%d syncs)", rw.syncs)
	}
}

// TestLoadRestores: what Keeper stored for a session comes back through
// Load: the session, its subscription, its queued delivery with its Seq
// (numbering goes on above it) and its will, armed.
func TestLoadRestores(t *testing.T) {
	k := newKeeper(true)
	w := k.Writer()
	s := session.New("c1")
	s.Lock()
	s.SetExpiryLocked(60)
	s.AddSubLocked("a/#", router.Options{QoS: 1})
	will := router.NewMessage([]byte("will/c1"), []byte("gone"), nil, []byte("c1"), 1, false, 0, nil)
	k.StoreSessionLocked(w, s, will, 30)
	s.Unlock()
	m := router.NewMessage([]byte("a/b"), []byte("x"), nil, []byte("p"), 1, false, 0, nil)
	d := session.Delivery{Msg: m, QoS: 1}
	var ids [1]uint32
	k.PutDelivery(w, s, &d, &ids)
	k.Commit(w)

	k2 := &Keeper{log: k.log, st: k.st, strict: true}
	sessions := session.NewMemStore()
	subs := router.NewTable(0, router.RoundRobin)
	var armed []string
	err := k2.Load(Target{Sessions: sessions, Subs: subs, Retained: router.NewRetained(), Clock: 1000,
		ArmLocked: func(s *session.Session, will *router.Message, at int64) {
			if will != nil {
				armed = append(armed, s.ClientID()+" "+string(will.Topic))
				will.Release()
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	got := sessions.Get("c1")
	if got == nil || subs.Count() != 1 || got.QueueLen() != 1 {
		t.Fatalf("session %v, %d subscriptions, queue %d; want the session, 1, 1", got, subs.Count(), got.QueueLen())
	}
	if len(armed) != 1 || armed[0] != "c1 will/c1" {
		t.Fatalf("wills armed: %q", armed)
	}
	if k2.seq.Load() != d.Seq {
		t.Fatalf("seq %d after Load, want %d", k2.seq.Load(), d.Seq)
	}
}
