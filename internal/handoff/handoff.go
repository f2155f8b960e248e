package handoff

import (
	"errors"
	"fmt"
	"time"

	"github.com/shoalmq/shoal/internal/dispatch"
	"github.com/shoalmq/shoal/internal/expiry"
	"github.com/shoalmq/shoal/internal/persist"
	"github.com/shoalmq/shoal/router"
	"github.com/shoalmq/shoal/session"
	"github.com/shoalmq/shoal/store"
)

// Conns are the node's connections, as Give needs them: package conn's
// Handler.
type Conns interface {
	// TakeOver closes the connection attached to clientID's session, if
	// there is one, as a takeover does (MQTT 5: DISCONNECT 0x8E); clean
	// says the new connection cleans the session.
	TakeOver(clientID string, clean bool) bool
}

// Sessions are this node's sessions, and what moving them touches.
type Sessions struct {
	Store    session.Store
	Subs     router.Subscriptions
	Expiry   *expiry.Sessions
	Persist  *persist.Keeper
	Dispatch *dispatch.Dispatcher
	Conns    Conns
	// Clock is the time of the deliveries' resend bookkeeping (Unix ns).
	Clock func() int64
}

// detachWait bounds how long Give waits for a connection it took over to
// let go of its session: its loop closes it at its next turn.
const detachWait = 5 * time.Second

// ErrStillAttached says the connection Give took over did not let go of
// the session in time; the session stays here.
var ErrStillAttached = errors.New("handoff: the session's connection did not close")

// Give ends clientID's session on this node and returns it as an encoded
// store.Bundle, for the node its client now connects to; nil when this
// node has none, or when clean (the new connection starts afresh: the
// session is ended here, and its shared-subscription messages go to other
// members). A connection attached to it is taken over first.
func (x *Sessions) Give(clientID string, clean bool) ([]byte, error) {
	s := x.Store.Get(clientID)
	if s == nil {
		return nil, nil
	}
	if x.Conns.TakeOver(clientID, clean) {
		deadline := time.Now().Add(detachWait)
		for {
			s.Lock()
			attached := s.OwnerLocked() != nil
			s.Unlock()
			if !attached {
				break
			}
			if time.Now().After(deadline) {
				return nil, ErrStillAttached
			}
			time.Sleep(time.Millisecond)
		}
	}
	var out []byte
	var orphans []session.Delivery
	x.Persist.WithBG(func(w store.Writer) {
		s.Lock()
		defer s.Unlock()
		if s.OwnerLocked() != nil || x.Store.Get(clientID) != s {
			return // reconnected here meanwhile, or ended: nothing to give
		}
		if !clean {
			b, queued := bundleLocked(s)
			out = store.AppendBundle(nil, b)
			for _, d := range queued {
				d.Release()
			}
		}
		x.Expiry.HandOffLocked(s, clean)
		orphans = x.Expiry.EndLocked(w, s)
	})
	if clean {
		x.Persist.WithBG(func(w store.Writer) { x.Dispatch.Reroute(w, orphans) })
	} else {
		for _, d := range orphans {
			d.Release() // they went with the bundle
		}
	}
	return out, nil
}

// Filters returns the filters of clientID's session here; none when there
// is no session.
func (x *Sessions) Filters(clientID string) []string {
	s := x.Store.Get(clientID)
	if s == nil {
		return nil
	}
	s.Lock()
	defer s.Unlock()
	var out []string
	for _, sub := range s.SubsLocked() {
		out = append(out, sub.Filter)
	}
	return out
}

// bundleLocked is s as a store.Bundle, aliasing its messages, and the
// deliveries it took from s's queue for it: encode the bundle, then
// release them. s.mu must be held.
func bundleLocked(s *session.Session) (*store.Bundle, []session.Delivery) {
	b := &store.Bundle{Session: store.Session{ClientID: s.ClientID(), Expiry: s.Expiry, ExpireAt: s.ExpireAt}}
	for _, sub := range s.SubsLocked() {
		b.Session.Subs = append(b.Session.Subs, store.Sub{Filter: sub.Filter, Opts: sub.Opts})
	}
	var ids [1]uint32
	for _, f := range s.InflightLocked() {
		b.Deliveries = append(b.Deliveries, delivery(&f.Delivery, &ids, f.ID, f.State))
	}
	var queued []session.Delivery
	for {
		d, ok := s.DequeueLocked()
		if !ok {
			break
		}
		queued = append(queued, d)
		b.Deliveries = append(b.Deliveries, delivery(&d, &ids, 0, 0))
	}
	b.AwaitRel = append(b.AwaitRel, s.AwaitRelLocked()...)
	return b, queued
}

// delivery is d as a store record, in flight with packetID in state (0:
// queued). A QoS 2 delivery whose PUBREL went out has let go of its
// message (session.AwaitPubcomp): only its packet id is left to give.
func delivery(d *session.Delivery, ids *[1]uint32, packetID uint16, state uint8) store.Delivery {
	var m store.Message
	if d.Msg != nil {
		m = persist.Message(d.Msg)
	}
	return store.Delivery{Msg: m, QoS: d.QoS, Retain: d.Retain,
		SubIDs: append([]uint32(nil), d.IDs(ids)...), Group: d.Group, PacketID: packetID, State: state}
}

// Adopt makes the session another node gave (Give's bundle) this node's,
// before its client attaches: subscriptions in the table, deliveries in
// flight and queued, QoS 2 ids awaiting PUBREL, stored if it outlives its
// connection and persistence is on. A session of clientID this node
// still had is replaced.
func (x *Sessions) Adopt(clientID string, bundle []byte) error {
	var b store.Bundle
	if err := store.DecodeBundle(bundle, &b); err != nil {
		return fmt.Errorf("handoff: %q's session: %w", clientID, err)
	}
	if b.Session.ClientID != clientID {
		return fmt.Errorf("handoff: a session of %q came for %q", b.Session.ClientID, clientID)
	}
	now := x.Clock()
	var orphans []session.Delivery
	x.Persist.WithBG(func(w store.Writer) {
		s, _ := x.Store.GetOrCreate(clientID)
		s.Lock()
		defer s.Unlock()
		orphans = x.Expiry.ClearLocked(w, s) // what this node had of it is older
		s.SetExpiryLocked(b.Session.Expiry)
		s.ExpireAt = b.Session.ExpireAt
		for _, sub := range b.Session.Subs {
			s.AddSubLocked(sub.Filter, sub.Opts)
			x.Subs.Subscribe(s, sub.Filter, sub.Opts)
		}
		if w != nil && s.Expiry != 0 {
			x.Persist.StoreSessionLocked(w, s, nil, 0)
		}
		var ids [1]uint32
		for i := range b.Deliveries {
			rec := &b.Deliveries[i]
			d := persist.Owed(rec)
			if w != nil && s.Expiry != 0 {
				x.Persist.PutDelivery(w, s, &d, &ids)
				if rec.State != 0 {
					w.MarkSent(clientID, d.Seq, rec.PacketID, rec.State)
				}
			}
			persist.OweLocked(s, d, rec, now)
		}
		for _, id := range b.AwaitRel {
			s.AddAwaitRelLocked(id)
			if w != nil && s.Expiry != 0 {
				w.PutAwaitRel(clientID, id)
			}
		}
		if s.OwnerLocked() == nil && s.Expiry != 0 {
			x.Expiry.ArmLocked(s, nil, 0) // offline until its client attaches
		}
	})
	for _, d := range orphans {
		d.Release()
	}
	return nil
}

// Rewrite writes clientID's session whole into w — its record (without
// its will), its deliveries in flight and queued under the Seq they have
// here, its QoS 2 ids awaiting PUBREL — and commits w, without sync,
// before the session can change again; it reports whether it had one to
// write. For the cluster's replicated copy, which a node that restarted
// writes anew under its new claim (package replica's CopyWriter), and
// which a node repairs after the stream missed a change (RepairWith).
// Committed later, the copy could get a record after the change that
// removed it.
func (x *Sessions) Rewrite(clientID string, w store.Writer) bool {
	s := x.Store.Get(clientID)
	if s == nil {
		return false
	}
	s.Lock()
	defer s.Unlock()
	if s.Expiry == 0 || s.EndedLocked() {
		return false
	}
	rec := store.Session{ClientID: clientID, Expiry: s.Expiry, ExpireAt: s.ExpireAt}
	for _, sub := range s.SubsLocked() {
		rec.Subs = append(rec.Subs, store.Sub{Filter: sub.Filter, Opts: sub.Opts})
	}
	w.PutSession(&rec)
	var ids [1]uint32
	for _, f := range s.InflightLocked() {
		if f.Seq != 0 {
			d := delivery(&f.Delivery, &ids, f.ID, f.State)
			d.Seq = f.Seq
			w.PutDelivery(clientID, d)
		}
	}
	s.RangeQueuedLocked(func(q *session.Delivery) {
		if q.Seq != 0 {
			d := delivery(q, &ids, 0, 0)
			d.Seq = q.Seq
			w.PutDelivery(clientID, d)
		}
	})
	for _, id := range s.AwaitRelLocked() {
		w.PutAwaitRel(clientID, id)
	}
	_ = w.Commit(false) // a failure is the copy's to count and repair
	return true
}
