package persist

import (
	"fmt"
	"time"

	"github.com/shoalmq/shoal/router"
	"github.com/shoalmq/shoal/session"
	"github.com/shoalmq/shoal/store"
)

// Target is what Load fills: the broker's sessions, subscriptions and
// retained messages, and its deadlines.
type Target struct {
	Sessions session.Store
	Subs     router.Subscriptions
	Retained router.Retained
	// Clock is the deadline clock's time now (Unix ns): sessions' expiry
	// and wills' delays count from it.
	Clock int64
	// ArmLocked gives offline session s its deadline: its expiry
	// (s.ExpireAt, 0: none) and, when will is not nil, its will's, due at
	// willAt on the deadline clock; the will's reference goes with it.
	// s.mu is held.
	ArmLocked func(s *session.Session, will *router.Message, willAt int64)
}

// restorer loads the store into a starting broker: the store.Loader.
type restorer struct {
	k   *Keeper
	t   *Target
	now int64 // for messages' expiry: the system clock's Unix ns
	// wills counts the wills restored, for the log line.
	wills int
}

// Load loads the stored state into t before the listener opens. Offline
// sessions get their deadlines, and stored wills, whose connections were
// lost with the broker, theirs: the timer goroutine, started once the
// workers and loops run, publishes them. With persistence off it does
// nothing.
func (k *Keeper) Load(t Target) error {
	if k.st == nil {
		return nil
	}
	start := time.Now()
	r := &restorer{k: k, t: &t, now: start.UnixNano()}
	if err := k.st.Load(r); err != nil {
		return fmt.Errorf("broker: loading the persistent store: %w", err)
	}
	user, sys := t.Retained.Count()
	k.log.Load().Info().Int("sessions", t.Sessions.Len()).Int("retained", user+sys).
		Int("wills", r.wills).Int64("took_ms", time.Since(start).Milliseconds()).Msg("persistent state loaded")
	return nil
}

// secs is n seconds in nanoseconds.
func secs(n uint32) int64 { return int64(n) * int64(time.Second) }

func (r *restorer) Session(rec *store.Session) bool {
	t := r.t
	if rec.ExpireAt != 0 && rec.ExpireAt <= t.Clock {
		return false // expired while the broker was down [MQTT-3.1.2-23]
	}
	s, _ := t.Sessions.GetOrCreate(rec.ClientID)
	s.Lock()
	defer s.Unlock()
	s.SetExpiryLocked(rec.Expiry)
	s.SetStoredLocked(true)
	for _, sub := range rec.Subs {
		s.AddSubLocked(sub.Filter, sub.Opts)
		t.Subs.Subscribe(s, sub.Filter, sub.Opts)
	}
	// A session connected when the broker stopped counts its expiry from
	// now, as if its connection had just closed.
	s.ExpireAt = rec.ExpireAt
	if s.ExpireAt == 0 && rec.Expiry != session.NeverExpire {
		s.ExpireAt = t.Clock + secs(rec.Expiry)
	}
	var will *router.Message
	var willAt int64
	if w := rec.Will; w != nil {
		// Its delay counts from now; its Message Expiry stays relative
		// until it is published.
		will = router.NewMessage(w.Topic, w.Payload, w.Props, w.From, w.QoS, w.Retain, w.Expiry, nil)
		willAt = t.Clock + secs(min(rec.WillDelay, rec.Expiry))
		r.wills++
	}
	t.ArmLocked(s, will, willAt)
	return true
}

func (r *restorer) Delivery(clientID string, rec *store.Delivery) bool {
	k := r.k
	if rec.Seq > k.seq.Load() {
		k.seq.Store(rec.Seq)
	}
	s := r.t.Sessions.Get(clientID)
	if s == nil || (rec.State == 0 && rec.Msg.Expiry != 0 && rec.Msg.Expiry <= r.now) {
		// Session gone, or a queued message expired; one already sent is
		// on its way and finishes [MQTT-3.3.2-5].
		return false
	}
	d := Owed(rec)
	d.Seq = rec.Seq
	s.Lock()
	OweLocked(s, d, rec, r.now)
	s.Unlock()
	return true
}

func (r *restorer) AwaitRel(clientID string, id uint16) bool {
	s := r.t.Sessions.Get(clientID)
	if s == nil {
		return false
	}
	s.Lock()
	s.AddAwaitRelLocked(id)
	s.Unlock()
	return true
}

func (r *restorer) Retained(rec *store.Message) bool {
	if rec.Expiry != 0 && rec.Expiry <= r.now {
		return false
	}
	m := router.NewMessage(rec.Topic, rec.Payload, rec.Props, rec.From, rec.QoS, true, rec.Expiry, nil)
	r.t.Retained.Set(m)
	m.Release()
	return true
}

func (r *restorer) Corrupt(what string, err error) {
	r.k.log.Load().Error().Err(err).Str("record", what).Msg("persistent store: unreadable, skipped")
	r.k.Corrupt.Add(1)
}
