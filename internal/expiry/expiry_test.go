package expiry

import (
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

type fixture struct {
	x        *Sessions
	clock    *deadline.Fake
	sessions *session.MemStore
	subs     router.Subscriptions
	worker   *dispatch.Worker
	stop     chan struct{}
}

func newFixture(t *testing.T) *fixture {
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
	f.x = New(Parts{Clock: f.clock, Sessions: f.sessions, Subs: f.subs, Persist: keeper, Dispatch: d, Closing: new(atomic.Bool)})
	go f.x.Run(f.stop)
	t.Cleanup(func() { close(f.stop) })
	return f
}

// offline makes an offline session of id with expiry seconds, subscribed
// to "a/#", armed with will (nil: none) due after willDelay seconds.
func (f *fixture) offline(id string, expiry uint32, will *router.Message, willDelay uint32) *session.Session {
	s, _ := f.sessions.GetOrCreate(id)
	s.Lock()
	s.SetExpiryLocked(expiry)
	s.AddSubLocked("a/#", router.Options{QoS: 1})
	f.subs.Subscribe(s, "a/#", router.Options{QoS: 1})
	now := f.x.Now()
	s.ExpireAt = now + secs(expiry)
	f.x.ArmLocked(s, will, now+secs(willDelay))
	s.Unlock()
	return s
}

// TestExpiryEndsSession: an offline session ends when its expiry passes,
// not before, and its subscriptions leave the table.
func TestExpiryEndsSession(t *testing.T) {
	f := newFixture(t)
	f.offline("c", 10, nil, 0)
	f.clock.Advance(9 * time.Second)
	f.x.Sync()
	if f.sessions.Get("c") == nil {
		t.Fatal("ended before its expiry")
	}
	f.clock.Advance(time.Second)
	f.x.Sync()
	if f.sessions.Get("c") != nil || f.subs.Count() != 0 || f.x.Len() != 0 {
		t.Fatalf("after its expiry: session %v, %d subscriptions, %d deadlines", f.sessions.Get("c"), f.subs.Count(), f.x.Len())
	}
}

// TestDelayedWill: a will waits for the shorter of its delay and the
// session's expiry, then goes to the router; a client back in time
// cancels it [MQTT-3.1.3-9].
func TestDelayedWill(t *testing.T) {
	f := newFixture(t)
	will := router.NewMessage([]byte("will/c"), []byte("gone"), nil, []byte("c"), 0, false, 0, nil)
	s := f.offline("c", 60, will, 5)
	f.clock.Advance(4 * time.Second)
	f.x.Sync()
	if f.worker.Full() {
		t.Fatal("will published before its delay")
	}
	f.clock.Advance(time.Second)
	f.x.Sync()
	if !f.worker.Full() {
		t.Fatal("will not published after its delay")
	}
	if f.sessions.Get("c") == nil || f.x.Len() != 1 {
		t.Fatalf("session %v, %d deadlines after the will: the expiry is still to come", f.sessions.Get("c"), f.x.Len())
	}

	back := router.NewMessage([]byte("will/d"), []byte("gone"), nil, []byte("d"), 0, false, 0, nil)
	d := f.offline("d", 60, back, 5)
	d.Lock()
	got := f.x.DisarmLocked(d, false)
	d.Unlock()
	if got != nil || f.x.Len() != 1 {
		t.Fatalf("a client back in time: will %v, %d deadlines; want none, 1 (c's expiry)", got, f.x.Len())
	}
	_ = s
}
