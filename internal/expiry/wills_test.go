package expiry

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/shoalmq/shoal/internal/deadline"
	"github.com/shoalmq/shoal/internal/dispatch"
	"github.com/shoalmq/shoal/internal/limit"
	"github.com/shoalmq/shoal/internal/persist"
	"github.com/shoalmq/shoal/router"
	"github.com/shoalmq/shoal/session"
)

// willLog is a WillStore that records what it is asked.
type willLog struct {
	mu  sync.Mutex
	ops []string
	at  []int64 // Put's due times
}

func (l *willLog) add(op string) {
	l.mu.Lock()
	l.ops = append(l.ops, op)
	l.mu.Unlock()
}

func (l *willLog) Put(id string, will *router.Message, at int64) {
	l.mu.Lock()
	l.at = append(l.at, at)
	l.mu.Unlock()
	l.add("put " + id + " " + string(will.Topic))
}

func (l *willLog) Cancel(id string, mine bool) {
	if mine {
		l.add("cancel-mine " + id)
	} else {
		l.add("cancel " + id)
	}
}

func (l *willLog) Stand(id string, will *router.Message, delay time.Duration) {
	l.add(fmt.Sprintf("stand %s %s %v", id, will.Topic, delay))
}

func (l *willLog) Claim(id string, will *router.Message) {
	if will == nil {
		l.add("claim " + id + " any")
		return
	}
	l.add("claim " + id + " " + string(will.Topic))
	will.Release()
}

func (l *willLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.ops
	l.ops = nil
	return out
}

func newClusterFixture(t *testing.T, wills WillStore) *fixture {
	t.Helper()
	var log atomic.Pointer[zerolog.Logger]
	nop := zerolog.Nop()
	log.Store(&nop)
	var lim atomic.Pointer[limit.Limits]
	lim.Store(&limit.Limits{})
	f := &fixture{clock: deadline.NewFake(time.Unix(1000, 0)), sessions: session.NewMemStore(),
		subs: router.NewTable(0, router.RoundRobin), stop: make(chan struct{})}
	keeper := persist.New(&log)
	d := dispatch.New(dispatch.Config{Loops: 1, Workers: 1, WorkerQueue: 1, Subs: f.subs,
		Retained: router.NewRetained(), Persist: keeper, Limits: &lim})
	f.worker = d.Workers()[0]
	f.x = New(Parts{Clock: f.clock, Sessions: f.sessions, Subs: f.subs, Persist: keeper, Dispatch: d,
		Closing: new(atomic.Bool), Wills: wills})
	go f.x.Run(f.stop)
	t.Cleanup(func() { close(f.stop) })
	return f
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestWillStore: in a cluster, a delayed will goes to the WillStore as its
// connection leaves (due on the system clock), is claimed there when its
// delay passes instead of published here, is cancelled by a client back
// in time, claimed by a Clean Start (this node's copy, or any node's),
// cancelled as this node's own on a handoff; a restored will is not put
// again.
func TestWillStore(t *testing.T) {
	l := &willLog{}
	f := newClusterFixture(t, l)
	will := func(id string) *router.Message {
		return router.NewMessage([]byte("will/"+id), []byte("gone"), nil, []byte(id), 0, false, 0, nil)
	}
	check := func(what string, want ...string) {
		t.Helper()
		if got := l.take(); !equal(got, want) {
			t.Fatalf("%s: %q, want %q", what, got, want)
		}
	}

	before := time.Now().UnixNano()
	f.offline("c", 60, will("c"), 5)
	check("leaving", "put c will/c")
	if at := l.at[0]; at < before+secs(5) || at > time.Now().UnixNano()+secs(5) {
		t.Fatalf("put due %v from now, want 5s", time.Duration(at-time.Now().UnixNano()))
	}
	f.clock.Advance(5 * time.Second)
	f.x.Sync()
	check("its delay passed", "claim c will/c")
	if f.worker.Full() {
		t.Fatal("published here, not claimed")
	}

	back := func(id string, clean bool) {
		s := f.sessions.Get(id)
		s.Lock()
		if m := f.x.DisarmLocked(s, clean); m != nil {
			t.Fatalf("%s: DisarmLocked returned a will in a cluster", id)
		}
		s.Unlock()
	}
	f.offline("d", 60, will("d"), 5)
	back("d", false)
	check("back in time", "put d will/d", "cancel d")
	f.offline("e", 60, will("e"), 5)
	back("e", true)
	check("back with Clean Start", "put e will/e", "claim e will/e")
	f.offline("g", 60, nil, 0)
	back("g", true)
	check("Clean Start, the will put elsewhere", "claim g any")
	f.offline("h", 60, nil, 0)
	back("h", false)
	check("back, the will put elsewhere", "cancel h")

	f.offline("i", 60, will("i"), 5)
	s := f.sessions.Get("i")
	s.Lock()
	f.x.HandOffLocked(s, false)
	s.Unlock()
	check("handed over", "put i will/i", "cancel-mine i")
	f.offline("j", 60, will("j"), 5)
	s = f.sessions.Get("j")
	s.Lock()
	f.x.HandOffLocked(s, true)
	s.Unlock()
	check("handed over with Clean Start", "put j will/j", "claim j will/j")

	k, _ := f.sessions.GetOrCreate("k")
	k.Lock()
	k.SetExpiryLocked(60)
	k.ExpireAt = f.x.Now() + secs(60)
	f.x.RestoreLocked(k, will("k"), f.x.Now()+secs(1))
	k.Unlock()
	check("restored")
	f.clock.Advance(time.Second)
	f.x.Sync()
	check("restored, due", "claim k will/k")
}
