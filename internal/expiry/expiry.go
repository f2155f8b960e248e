package expiry

import (
	"sync/atomic"
	"time"

	"github.com/shoalmq/shoal/internal/deadline"
	"github.com/shoalmq/shoal/internal/dispatch"
	"github.com/shoalmq/shoal/internal/persist"
	"github.com/shoalmq/shoal/router"
	"github.com/shoalmq/shoal/session"
	"github.com/shoalmq/shoal/store"
)

// Parts are what Sessions works with, built by package broker.
type Parts struct {
	Clock    deadline.Clock // the time of session expiry and will delays
	Sessions session.Store
	Subs     router.Subscriptions
	Persist  *persist.Keeper
	Dispatch *dispatch.Dispatcher // wills are routed like any PUBLISH
	// Closing is set when the broker begins to close: deadlines that come
	// then neither end sessions nor publish wills.
	Closing *atomic.Bool
	// Wills keeps delayed wills for a cluster (wills.go); nil on a single
	// node.
	Wills WillStore
}

// Sessions ends sessions and runs the offline ones' deadlines. An offline
// session has at most one entry in its queue, keyed by the session: the
// sooner of the end of its Session Expiry Interval (s.ExpireAt) and of its
// will's Will Delay Interval. The entry is set and cancelled with the
// session locked: set as the connection leaves or when the store is
// loaded (ArmLocked), cancelled when a connection attaches
// (DisarmLocked). Only the timer goroutine (Run) ends sessions by expiry
// or publishes delayed wills.
type Sessions struct {
	clock    deadline.Clock
	timers   *deadline.Queue[*session.Session, *pendingWill]
	sessions session.Store
	subs     router.Subscriptions
	persist  *persist.Keeper
	disp     *dispatch.Dispatcher
	closing  *atomic.Bool
	wills    WillStore // nil: a single node
	// dueWills is the timer goroutine's scratch: wills to publish.
	dueWills []dueWill

	// Visits counts the sessions the timer goroutine locked: one per
	// deadline that came, none for the sessions still waiting.
	Visits atomic.Int64
	// RouterFull counts wills dropped because their router worker's
	// queue was full.
	RouterFull atomic.Int64
	// WillsResent counts the sends of wills made again because the
	// cluster's forward stream did not take them for some node.
	WillsResent atomic.Int64
}

// pendingWill is a will waiting for its Will Delay Interval: the value of
// its session's entry in the queue.
type pendingWill struct {
	msg *router.Message
	at  int64  // when it is due, Unix ns on the clock
	gen uint32 // the session's attachment it belongs to [MQTT-3.1.3-9]
}

// New returns the Sessions of p. Its deadlines fire once Run runs.
func New(p Parts) *Sessions {
	x := &Sessions{clock: p.Clock, sessions: p.Sessions, subs: p.Subs, persist: p.Persist,
		disp: p.Dispatch, closing: p.Closing, wills: p.Wills}
	x.timers = deadline.New(x.clock, x.fire)
	return x
}

// Now is the deadline clock's time, Unix ns.
func (x *Sessions) Now() int64 { return x.clock.Now() }

// secs is n seconds in nanoseconds.
func secs(n uint32) int64 { return int64(n) * int64(time.Second) }

// ArmLocked gives offline session s its deadline: the sooner of its expiry
// (s.ExpireAt, 0: none) and, with a will (nil: none), the will's, due at
// willAt on the clock; the will's reference goes with it, and it belongs
// to s's current attachment (s.Gen). In a cluster the will is also put
// where every node sees it (WillStore). s.mu must be held.
func (x *Sessions) ArmLocked(s *session.Session, will *router.Message, willAt int64) {
	var pw *pendingWill
	if will != nil {
		pw = &pendingWill{msg: will, at: willAt, gen: s.Gen}
		if x.wills != nil {
			x.wills.Put(s.ClientID(), will, x.wall(willAt))
		}
	}
	x.armLocked(s, pw)
}

// armLocked gives offline session s its deadline: the sooner of its expiry
// and pw's (nil: no will waits). s.mu must be held.
func (x *Sessions) armLocked(s *session.Session, pw *pendingWill) {
	when := s.ExpireAt
	if pw != nil && (when == 0 || pw.at < when) {
		when = pw.at
	}
	if when == 0 {
		return // kept forever, no will waiting
	}
	if old, _ := x.timers.Set(s, when, pw); old != nil && old != pw {
		old.msg.Release() // none expected: attaching cancels the entry
	}
}

// DisarmLocked cancels s's deadline as a connection attaches to it, and
// returns the will that was waiting, if any, to be published now: when
// the connection cleans the session (it ends), or when the will's delay
// had passed before the connection came, the timer goroutine not having
// got to it yet. A will whose delay has not passed is released: the
// client came back in time [MQTT-3.1.3-9]. In a cluster the will is
// never returned: the WillStore publishes it, or drops it, and the will
// another node put for this client id with it (disarmCluster). s.mu must
// be held.
func (x *Sessions) DisarmLocked(s *session.Session, clean bool) *router.Message {
	pw, _ := x.timers.Cancel(s)
	if x.wills != nil {
		x.disarmCluster(s.ClientID(), pw, clean)
		return nil
	}
	switch {
	case pw == nil:
		return nil
	case clean || pw.at <= x.clock.Now():
		return pw.msg
	}
	pw.msg.Release()
	return nil
}

// EndLocked removes s and everything it holds, also from the store
// through w (nil: persistence off). s.mu must be held. It returns the
// shared-subscription deliveries s had not completed: pass them to
// dispatch's Reroute once s is unlocked.
func (x *Sessions) EndLocked(w store.Writer, s *session.Session) []session.Delivery {
	s.EndLocked() // late deliveries (a worker that matched it before) are refused
	orphans := x.ClearLocked(w, s)
	x.sessions.Delete(s.ClientID(), s)
	return orphans
}

// ClearLocked empties s — subscriptions (also from the router), messages
// both ways, its store records — and returns its unfinished shared
// deliveries, as EndLocked does.
func (x *Sessions) ClearLocked(w store.Writer, s *session.Session) []session.Delivery {
	x.persist.DeleteSessionLocked(w, s)
	orphans := s.TakeSharedLocked()
	for _, sub := range s.ClearLocked() {
		x.subs.Unsubscribe(s, sub.Filter)
	}
	return orphans
}

// fire runs on the timer goroutine with the sessions whose deadline came;
// each is locked once. A shutting-down broker neither ends sessions nor
// publishes wills: a stored will is published after the restart, as the
// wills of the connections the shutdown closed are not.
func (x *Sessions) fire(now int64, due []deadline.Item[*session.Session, *pendingWill]) {
	x.Visits.Add(int64(len(due)))
	if x.closing.Load() {
		for _, it := range due {
			if it.Value != nil {
				it.Value.msg.Release()
			}
		}
		return
	}
	wills := x.dueWills[:0]
	x.persist.WithBG(func(w store.Writer) {
		for _, it := range due {
			if m := x.fireSession(w, it.Key, it.Value, now); m != nil {
				wills = append(wills, dueWill{id: it.Key.ClientID(), msg: m})
			}
		}
	})
	for i, dw := range wills {
		x.sendDelayed(dw.id, dw.msg)
		wills[i] = dueWill{}
	}
	x.dueWills = wills[:0]
}

// fireSession handles s's deadline, taken off the queue with pw (nil: no
// will was waiting), at now: it ends s if its expiry has passed
// [MQTT-3.1.2-23] and returns pw's will if it is to be published now.
//
// The entry may be stale — s came back, or went offline again with a new
// entry, after the queue handed it out — so everything is checked again
// under s's lock: an expiry is s.ExpireAt's, not the entry's. A will of an
// earlier attachment (pw.gen != s.Gen) is still published: a connection
// that attaches cancels the entry under s's lock, so this one had left the
// queue, due, before the client came back — too late to stop it
// [MQTT-3.1.3-9] allows suppressing only a will whose delay had not passed.
func (x *Sessions) fireSession(w store.Writer, s *session.Session, pw *pendingWill, now int64) (will *router.Message) {
	var orphans []session.Delivery
	s.Lock()
	ended := s.EndedLocked()
	if !ended && s.OwnerLocked() == nil && s.ExpireAt != 0 && s.ExpireAt <= now {
		orphans = x.EndLocked(w, s)
		ended = true
	}
	current := pw != nil && pw.gen == s.Gen
	switch {
	case pw != nil && !current:
		will, pw = pw.msg, nil // due before the client came back
	case current && (ended || pw.at <= now):
		// The delay passed, or the session ended first (MQTT 5 section
		// 3.1.3.2.2: the shorter of Will Delay and Session Expiry).
		will, pw = pw.msg, nil
		if !ended && s.StoredLocked() {
			x.persist.StoreSessionLocked(w, s, nil, 0) // published: not again after a restart
		}
	}
	if current && !ended {
		x.armLocked(s, pw) // the expiry still to come
	}
	s.Unlock()
	x.disp.Reroute(w, orphans)
	return will
}

// SendWill routes a will like any PUBLISH, taking over the caller's
// reference. Its Message Expiry Interval, kept relative until now, starts
// counting when it is published (MQTT 5 section 3.1.3.2.4), on the system
// clock that message expiry is checked against.
func (x *Sessions) SendWill(will *router.Message) {
	if will.Expiry != 0 {
		will.Expiry += time.Now().UnixNano()
	}
	x.sendWill(will, willSends)
}

// willSends bounds the sends of one will, and willResend is the wait
// before the next: in a cluster, a will the forward stream did not take
// for some node (the stream electing a leader: a node died, maybe the
// will's own) is sent again, whole, a few times over some seconds. A
// subscriber the first send reached gets it again: a will is at least
// once where its stream fails.
const (
	willSends  = 5
	willResend = 2 * time.Second
)

// sendWill routes will with tries sends left (the first included).
func (x *Sessions) sendWill(will *router.Message, tries int) {
	j := dispatch.Job{Msg: will}
	if tries > 1 && will.QoS > 0 && x.wills != nil {
		again := will.Ref() // for the next send, if there is one
		j.Routed = func(failed bool) {
			if !failed || x.closing.Load() {
				again.Release()
				return
			}
			x.WillsResent.Add(1)
			time.AfterFunc(willResend, func() { x.sendWill(again, tries-1) })
		}
	}
	if !x.disp.Submit(j) {
		x.RouterFull.Add(1)
		will.Release()
		if j.Routed != nil {
			will.Release() // again: no send to come
		}
	}
}

// Run ends offline sessions when their expiry comes and publishes delayed
// wills, until stop is closed. Start it once the router and the loops
// run: restored deadlines may be due at once.
func (x *Sessions) Run(stop <-chan struct{}) { x.timers.Run(stop) }

// Clear drops every deadline, releasing the wills that waited: no timer
// fires after Close, and a will still waiting is not published (its
// stored record is, after a restart).
func (x *Sessions) Clear() {
	x.timers.Clear(func(_ *session.Session, pw *pendingWill) {
		if pw != nil {
			pw.msg.Release()
		}
	})
}

// Sync waits until the timer goroutine has handled every deadline due at
// its clock's time; false if it has stopped. For tests.
func (x *Sessions) Sync() bool { return x.timers.Sync() }

// Len is the number of offline sessions waiting for a deadline (their
// expiry or their will's delay). For tests.
func (x *Sessions) Len() int { return x.timers.Len() }
