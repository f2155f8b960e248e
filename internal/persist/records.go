package persist

import (
	"math"

	"github.com/shoalmq/shoal/router"
	"github.com/shoalmq/shoal/session"
	"github.com/shoalmq/shoal/store"
)

// Message views m as a store record, aliasing its bytes: valid while m is.
func Message(m *router.Message) store.Message {
	return store.Message{Topic: m.Topic, Payload: m.Payload, Props: m.Props, From: m.FromID,
		QoS: m.QoS, Retain: m.Retain, Expiry: m.Expiry, Origin: m.Origin}
}

// PutDelivery stores d (QoS 1/2) for persistent session s through w and
// sets d.Seq. ids is scratch owned by the caller's goroutine
// (session.Delivery.IDs).
func (k *Keeper) PutDelivery(w store.Writer, s *session.Session, d *session.Delivery, ids *[1]uint32) {
	d.Seq = k.seq.Add(1)
	rec := store.Delivery{Seq: d.Seq, Msg: Message(d.Msg), QoS: d.QoS, Retain: d.Retain,
		SubIDs: d.IDs(ids), Group: d.Group}
	w.PutDelivery(s.ClientID(), rec)
}

// Owed is the session delivery a stored (or handed over) one stands for,
// with a message of its own; its Seq is the caller's to set.
func Owed(rec *store.Delivery) session.Delivery {
	m := rec.Msg
	d := session.Delivery{
		Msg:    router.NewMessage(m.Topic, m.Payload, m.Props, m.From, m.QoS, m.Retain, m.Expiry, nil),
		QoS:    rec.QoS,
		Retain: rec.Retain,
		Group:  rec.Group,
	}
	d.Msg.Origin = m.Origin
	d.SetIDs(rec.SubIDs)
	return d
}

// OweLocked gives s d, which rec says is in flight — resent with its
// packet id when the client resumes [MQTT-4.4.0-1] — or queued, behind
// what s has kept (no limit: what was owed stays). s.mu must be held.
func OweLocked(s *session.Session, d session.Delivery, rec *store.Delivery, now int64) {
	if rec.State == 0 {
		s.EnqueueLocked(d, math.MaxInt32, false)
		return
	}
	s.PushInflightLocked(d, rec.PacketID, now)
	if rec.State == session.AwaitPubcomp {
		s.PubrecLocked(rec.PacketID, false, now)
	}
}

// Forget removes a stored delivery that will not be delivered. w may be
// nil (persistence off); seq 0 is a delivery that was never stored.
func Forget(w store.Writer, s *session.Session, seq uint64) {
	if w != nil && seq != 0 {
		w.DeleteDelivery(s.ClientID(), seq)
	}
}

// KeepsReceipts reports whether w keeps receipts (store.ReceiptWriter):
// only then does a PUBREC need its message's Origin (Received).
func KeepsReceipts(w store.Writer) bool {
	_, ok := w.(store.ReceiptWriter)
	return ok
}

// Received tells w, if it keeps receipts (store.ReceiptWriter: the
// cluster's copy of the sessions), that s's client received the message
// of Origin origin. w may be nil (persistence off).
func Received(w store.Writer, s *session.Session, origin uint64) {
	if rw, ok := w.(store.ReceiptWriter); ok && origin != 0 {
		rw.Received(s.ClientID(), origin)
	}
}

// StoreSessionLocked writes s's record if it outlives its connection, or
// removes it if it no longer does. will is the will to keep with it (nil:
// none). w nil (persistence off) does nothing. s.mu must be held.
//
// Session records are committed at once, under the session lock: the next
// holder of the lock may be another loop with a writer of its own, whose
// newer record must not be overwritten by this one committed late.
func (k *Keeper) StoreSessionLocked(w store.Writer, s *session.Session, will *router.Message, willDelay uint32) {
	if w == nil {
		return
	}
	if s.Expiry == 0 {
		k.DeleteSessionLocked(w, s)
		return
	}
	subs := s.SubsLocked()
	rec := store.Session{ClientID: s.ClientID(), Expiry: s.Expiry, ExpireAt: s.ExpireAt,
		Subs: make([]store.Sub, len(subs))}
	for i, sub := range subs {
		rec.Subs[i] = store.Sub{Filter: sub.Filter, Opts: sub.Opts}
	}
	if will != nil && willDelay > 0 {
		m := Message(will)
		rec.Will, rec.WillDelay = &m, willDelay
	}
	w.PutSession(&rec)
	s.SetStoredLocked(true)
	k.Commit(w)
}

// DeleteSessionLocked removes s's records, if it has any, committed at
// once as StoreSessionLocked's are. s.mu must be held.
func (k *Keeper) DeleteSessionLocked(w store.Writer, s *session.Session) {
	if w != nil && s.StoredLocked() {
		w.DeleteSession(s.ClientID())
		s.SetStoredLocked(false)
		k.Commit(w)
	}
}
