package conn

import (
	"time"

	"github.com/shoalmq/shoal/internal/deadline"
	"github.com/shoalmq/shoal/internal/dispatch"
	"github.com/shoalmq/shoal/router"
	"github.com/shoalmq/shoal/session"
	"github.com/shoalmq/shoal/store"
)

// Offline sessions' deadlines. An offline session has at most one entry in
// h.timers, keyed by the session: the sooner of the end of its Session
// Expiry Interval (s.ExpireAt) and of its will's Will Delay Interval. The
// entry is set and cancelled with the session locked: set as the
// connection leaves (client.leave) or when the store is loaded (ArmLocked),
// cancelled when a connection attaches (finishConnect). Only the timer
// goroutine (h.timers.Run) ends sessions by expiry or publishes delayed
// wills, touching only the sessions that are due.

// pendingWill is a will waiting for its Will Delay Interval: the value of
// its session's entry in h.timers.
type pendingWill struct {
	msg *router.Message
	at  int64  // when it is due, Unix ns on h.clock
	gen uint32 // the session's attachment it belongs to [MQTT-3.1.3-9]
}

// sessionTimers is the broker's timer queue.
type sessionTimers = deadline.Queue[*session.Session, *pendingWill]

// secs is n seconds in nanoseconds.
func secs(n uint32) int64 { return int64(n) * int64(time.Second) }

// armLocked gives offline session s its deadline: the sooner of its expiry
// and pw's (nil: no will waits). s.mu must be held.
func (h *Handler) armLocked(s *session.Session, pw *pendingWill) {
	when := s.ExpireAt
	if pw != nil && (when == 0 || pw.at < when) {
		when = pw.at
	}
	if when == 0 {
		return // kept forever, no will waiting
	}
	if old, _ := h.timers.Set(s, when, pw); old != nil && old != pw {
		old.msg.Release() // none expected: attaching cancels the entry
	}
}

// disarmLocked cancels s's deadline as a connection attaches to it, and
// returns the will that was waiting, if any, to be published now: when
// the connection cleans the session (it ends), or when the will's delay
// had passed before the connection came, the timer goroutine not having
// got to it yet. A will whose delay has not passed is released: the
// client came back in time [MQTT-3.1.3-9]. s.mu must be held.
func (h *Handler) disarmLocked(s *session.Session, clean bool) *router.Message {
	pw, _ := h.timers.Cancel(s)
	switch {
	case pw == nil:
		return nil
	case clean || pw.at <= h.clock.Now():
		return pw.msg
	}
	pw.msg.Release()
	return nil
}

// fireTimers runs on the timer goroutine with the sessions whose deadline
// came; each is locked once. A shutting-down broker neither ends sessions
// nor publishes wills: a stored will is published after the restart, as
// the wills of the connections the shutdown closed are not.
func (h *Handler) fireTimers(now int64, due []deadline.Item[*session.Session, *pendingWill]) {
	h.stats.TimerVisits.Add(int64(len(due)))
	if h.closing.Load() {
		for _, it := range due {
			if it.Value != nil {
				it.Value.msg.Release()
			}
		}
		return
	}
	wills := h.dueWills[:0]
	h.persist.WithBG(func(w store.Writer) {
		for _, it := range due {
			if m := h.fireSession(w, it.Key, it.Value, now); m != nil {
				wills = append(wills, m)
			}
		}
	})
	for i, m := range wills {
		h.sendWill(m)
		wills[i] = nil
	}
	h.dueWills = wills[:0]
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
func (h *Handler) fireSession(w store.Writer, s *session.Session, pw *pendingWill, now int64) (will *router.Message) {
	var orphans []session.Delivery
	s.Lock()
	ended := s.EndedLocked()
	if !ended && s.OwnerLocked() == nil && s.ExpireAt != 0 && s.ExpireAt <= now {
		orphans = h.endSessionLocked(w, s)
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
			h.persist.StoreSessionLocked(w, s, nil, 0) // published: not again after a restart
		}
	}
	if current && !ended {
		h.armLocked(s, pw) // the expiry still to come
	}
	s.Unlock()
	h.disp.Reroute(w, orphans)
	return will
}

// sendWill routes a will like any PUBLISH. Its Message Expiry Interval,
// kept relative until now, starts counting when it is published
// (MQTT 5 section 3.1.3.2.4), on the system clock that message expiry
// is checked against.
func (h *Handler) sendWill(will *router.Message) {
	if will.Expiry != 0 {
		will.Expiry += time.Now().UnixNano()
	}
	if !h.disp.Submit(dispatch.Job{Msg: will}) {
		h.stats.DropsWorkerFull.Add(1)
		will.Release()
	}
}

// ArmLocked gives offline session s its deadline: its expiry (s.ExpireAt)
// and, with a will (nil: none), the will's, due at willAt on the deadline
// clock; the will's reference goes with it. For sessions the store
// restores (persist.Target.ArmLocked). s.mu must be held.
func (h *Handler) ArmLocked(s *session.Session, will *router.Message, willAt int64) {
	var pw *pendingWill
	if will != nil {
		pw = &pendingWill{msg: will, at: willAt, gen: s.Gen}
	}
	h.armLocked(s, pw)
}

// RunTimers ends offline sessions when their expiry comes and publishes
// delayed wills, until stop is closed. Start it once the router and the
// loops run: restored deadlines may be due at once.
func (h *Handler) RunTimers(stop <-chan struct{}) { h.timers.Run(stop) }

// ClearTimers drops every deadline, releasing the wills that waited: no
// timer fires after Close, and a will still waiting is not published (its
// stored record is, after a restart).
func (h *Handler) ClearTimers() {
	h.timers.Clear(func(_ *session.Session, pw *pendingWill) {
		if pw != nil {
			pw.msg.Release()
		}
	})
}

// SyncTimers waits until the timer goroutine has handled every deadline
// due at its clock's time; false if it has stopped. For tests.
func (h *Handler) SyncTimers() bool { return h.timers.Sync() }

// PendingTimers is the number of offline sessions waiting for a deadline
// (their expiry or their will's delay). For tests.
func (h *Handler) PendingTimers() int { return h.timers.Len() }
