package deadline

import (
	"sync"
	"time"
)

// Clock is where a Queue reads the time and how it sleeps: Real in
// production, a Fake in tests that decide when time passes.
type Clock interface {
	// Now is the current time in Unix nanoseconds.
	Now() int64
	// NewTimer returns a stopped Timer.
	NewTimer() Timer
}

// Timer wakes one goroutine at a time on the Clock. Its methods are not
// safe for concurrent use: it belongs to the goroutine that waits on C.
type Timer interface {
	// C receives once the timer's time has come.
	C() <-chan time.Time
	// Set arms the timer for when (Unix ns; in the past: at once). A
	// firing of an earlier setting not yet received is discarded.
	Set(when int64)
	// Stop disarms the timer and discards a firing not yet received.
	Stop()
}

// Real returns the system clock. Its deadlines are wall-clock times, like
// the expiry deadlines the broker stores: a wall clock set back makes the
// queue wake early and sleep again; one set forward ends sleeps sooner.
func Real() Clock { return realClock{} }

type realClock struct{}

func (realClock) Now() int64 { return time.Now().UnixNano() }

func (realClock) NewTimer() Timer {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return realTimer{t}
}

// realTimer relies on the timer semantics of Go 1.23 and later (go.mod
// asks for newer): after Reset or Stop, C never yields a stale value.
type realTimer struct{ t *time.Timer }

func (r realTimer) C() <-chan time.Time { return r.t.C }

func (r realTimer) Set(when int64) { r.t.Reset(time.Duration(when - time.Now().UnixNano())) }

func (r realTimer) Stop() { r.t.Stop() }

// Fake is a Clock that moves only when told to, for tests. Its methods are
// safe for concurrent use.
type Fake struct {
	mu     sync.Mutex // guards the fields below; a leaf
	now    int64
	timers []*fakeTimer
}

// NewFake returns a Fake clock showing start.
func NewFake(start time.Time) *Fake { return &Fake{now: start.UnixNano()} }

// Now implements Clock.
func (f *Fake) Now() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// NewTimer implements Clock.
func (f *Fake) NewTimer() Timer {
	t := &fakeTimer{f: f, c: make(chan time.Time, 1)}
	f.mu.Lock()
	f.timers = append(f.timers, t)
	f.mu.Unlock()
	return t
}

// Advance moves the clock d forward and fires every timer whose time has
// come. The goroutines waiting on them run afterwards, on their own
// schedule: a test that must see what they did waits for it, as
// Queue.Sync does for a Queue.
func (f *Fake) Advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now += int64(d)
	for _, t := range f.timers {
		if t.armed && t.when <= f.now {
			t.fireLocked()
		}
	}
}

type fakeTimer struct {
	f     *Fake
	c     chan time.Time // holds at most one firing
	when  int64          // guarded by f.mu
	armed bool           // guarded by f.mu
}

func (t *fakeTimer) C() <-chan time.Time { return t.c }

func (t *fakeTimer) Set(when int64) {
	t.f.mu.Lock()
	defer t.f.mu.Unlock()
	t.drain()
	t.when, t.armed = when, true
	if when <= t.f.now {
		t.fireLocked()
	}
}

func (t *fakeTimer) Stop() {
	t.f.mu.Lock()
	defer t.f.mu.Unlock()
	t.drain()
	t.armed = false
}

// fireLocked delivers the firing. f.mu must be held.
func (t *fakeTimer) fireLocked() {
	t.armed = false
	select {
	case t.c <- time.Unix(0, t.f.now):
	default: // one not yet received stands for both
	}
}

func (t *fakeTimer) drain() {
	select {
	case <-t.c:
	default:
	}
}
