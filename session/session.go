package session

import (
	"math"
	"sync"
	"sync/atomic"

	"github.com/shoalmq/shoal/router"
)

// NeverExpire is the session expiry interval meaning "keep forever"
// [MQTT-3.1.2-23] (0xFFFFFFFF in MQTT 5, clean session 0 in 3.1.1).
const NeverExpire = math.MaxUint32

// Delivery is one message owed to the session's client.
type Delivery struct {
	Msg *router.Message
	// SubIDs are the Subscription Identifiers to send with it when there
	// are several (overlapping subscriptions, each with one), owned; one
	// alone is SubID, so that the common case costs no allocation per
	// delivery. Read them with IDs, set them with SetIDs.
	SubIDs []uint32
	// Group is the shared subscription ("$share/g/f") the delivery came
	// through, "" if none: should the session end before the client has
	// it, another member of the group gets it (MQTT 5 section 4.8.2).
	Group  string
	QoS    byte // delivery QoS: min(published, granted)
	Retain bool // RETAIN flag as it goes out
	// SubID is the one Subscription Identifier to send with it; 0: none,
	// or several, in SubIDs.
	SubID uint32
	// Seq identifies the delivery in the broker's persistent store; 0 when
	// it is not stored (persistence off, QoS 0, or a session that ends
	// with its connection).
	Seq uint64
}

// Size is what d's message costs in bytes: topic, payload and
// properties, the part that grows with what clients send.
func (d *Delivery) Size() int {
	if m := d.Msg; m != nil {
		return len(m.Topic) + len(m.Payload) + len(m.Props)
	}
	return 0
}

// IDs returns d's Subscription Identifiers, using buf for a single one:
// the slice is valid while buf and d are unchanged.
func (d *Delivery) IDs(buf *[1]uint32) []uint32 {
	if d.SubIDs != nil || d.SubID == 0 {
		return d.SubIDs
	}
	buf[0] = d.SubID
	return buf[:]
}

// SetIDs sets d's Subscription Identifiers to ids, which the caller keeps:
// a single one is held in d itself, several are copied.
func (d *Delivery) SetIDs(ids []uint32) {
	d.SubID, d.SubIDs = 0, nil
	switch len(ids) {
	case 0:
	case 1:
		d.SubID = ids[0]
	default:
		d.SubIDs = append([]uint32(nil), ids...)
	}
}

// Release gives back the delivery's message reference.
func (d *Delivery) Release() {
	if d.Msg != nil {
		d.Msg.Release()
		d.Msg = nil
	}
}

// Outbound QoS states of an in-flight message [MQTT-4.3].
const (
	AwaitPuback  uint8 = iota + 1 // QoS 1 sent, PUBACK expected
	AwaitPubrec                   // QoS 2 sent, PUBREC expected
	AwaitPubcomp                  // PUBREL sent, PUBCOMP expected; message released
)

// Inflight is a QoS 1/2 message sent and not yet fully acknowledged.
type Inflight struct {
	Delivery
	ID    uint16
	State uint8
	Sent  int64 // Unix ns of the last send, for the 3.x retry interval
}

// Sub is one of the session's subscriptions, kept so that they can be
// removed from the router when the session ends, and so that a
// persistent store can save them.
type Sub struct {
	Filter string
	Opts   router.Options
}

// Owner is the connection a session is attached to. The connection type of
// internal/conn implements it, and internal/dispatch reaches connections
// through it (its Conn interface extends Owner); a connection on another
// node of a cluster would implement it too.
type Owner interface {
	// LoopIndex is the event loop that owns the connection.
	LoopIndex() int
	// DeliverLocked sends d to the connection now, or queues it behind
	// its in-flight window, taking over d's reference; now is the loop's
	// time. It reports false, d still the caller's, when the connection
	// takes no more messages (it is closing): d then follows the session
	// offline. The session is locked, and the caller runs on the
	// connection's loop. It is here rather than in dispatch's Conn so
	// that a delivery costs no type assertion.
	DeliverLocked(d Delivery, now int64) bool
}

// Session is the state of one client identifier. See the package
// documentation for who may touch it when.
type Session struct {
	mu sync.Mutex

	id string

	// loop is the owning connection's loop index, -1 while offline, or
	// loopEnded once the session has ended. Written with mu held; read
	// without it by router workers as a hint, which they confirm under mu.
	loop atomic.Int32
	// flags holds flagBusy, flagPersistent and flagStored: one word rather
	// than three, so that an idle session stays at 96 bytes. Written with
	// mu held; busy and persistent are read without it.
	flags atomic.Uint32

	// Fields below are guarded by mu.

	// Expiry is how long, in seconds, the session outlives its connection:
	// 0 ends it with the connection, NeverExpire keeps it. Set it with
	// SetExpiryLocked.
	Expiry uint32
	// Gen counts attachments; a delayed will checks it to see whether its
	// client came back [MQTT-3.1.3-9].
	Gen uint32
	// ExpireAt is when an offline session ends, in Unix ns; 0 while
	// connected or never.
	ExpireAt int64

	owner Owner
	subs  []Sub
	// fl holds the message state. Idle sessions — most of them at high
	// connection counts — never allocate it: this keeps an idle session at
	// 96 bytes instead of 184.
	fl *flight
}

// Bits of Session.flags.
const (
	// flagBusy is set while messages wait in the queue: the client is
	// offline or not keeping up with its in-flight window; read by
	// shared-subscription picks.
	flagBusy uint32 = 1 << iota
	// flagPersistent mirrors Expiry != 0, for router workers deciding
	// without the lock whether a delivery goes to the persistent store.
	flagPersistent
	// flagStored is set while the broker's persistent store has a record
	// of the session.
	flagStored
)

// setFlag sets or clears bit. s.mu must be held.
func (s *Session) setFlag(bit uint32, on bool) {
	if on {
		s.flags.Or(bit)
	} else {
		s.flags.And(^bit)
	}
}

// StoredLocked reports whether the persistent store has a record of the
// session.
func (s *Session) StoredLocked() bool { return s.flags.Load()&flagStored != 0 }

// SetStoredLocked records whether the persistent store has a record of the
// session.
func (s *Session) SetStoredLocked(on bool) { s.setFlag(flagStored, on) }

// flight is a session's message state, allocated on first use.
type flight struct {
	inflight []Inflight // in send order [MQTT-4.6.0-1]
	queue    []Delivery // ring buffer
	qhead    int32
	qlen     int32
	qbytes   int      // Delivery.Size of every queued delivery
	awaitRel []uint16 // inbound QoS 2 ids with PUBREC sent, PUBREL not yet received
	nextID   uint16
	// dropped counts the messages a full queue cost this session
	// (EnqueueLocked, CountDropLocked), for whoever watches one session:
	// a bridge reports its own.
	dropped uint64
}

func (s *Session) flight() *flight {
	if s.fl == nil {
		s.fl = &flight{}
	}
	return s.fl
}

// New returns an offline session for client identifier id.
func New(id string) *Session {
	s := &Session{id: id}
	s.loop.Store(-1)
	return s
}

// SetExpiryLocked sets Expiry.
func (s *Session) SetExpiryLocked(e uint32) {
	s.Expiry = e
	s.setFlag(flagPersistent, e != 0)
}

// Persistent reports whether the session outlives its connection (Expiry
// is not 0), without locking: a hint, as for LoopHint.
func (s *Session) Persistent() bool { return s.flags.Load()&flagPersistent != 0 }

// ClientID returns the session's client identifier. Safe for concurrent use.
func (s *Session) ClientID() string { return s.id }

// Lock takes the session's mutex.
func (s *Session) Lock() { s.mu.Lock() }

// Unlock releases it.
func (s *Session) Unlock() { s.mu.Unlock() }

// LoopHint returns the owning loop's index, or a negative value while
// offline or ended, without locking. It may be stale: confirm with
// OwnerLocked.
func (s *Session) LoopHint() int { return int(s.loop.Load()) }

// Busy reports, without locking, whether messages are queued for the
// session: its client is offline or slower than the traffic.
func (s *Session) Busy() bool { return s.flags.Load()&flagBusy != 0 }

// loopEnded marks an ended session in Session.loop; kept there rather than
// in a field of its own so that an idle session stays at 96 bytes.
const loopEnded = -2

// EndLocked marks the session ended: it has been (or is being) removed from
// its Store, so messages routed to it late must not be queued in it. The
// session must be offline.
func (s *Session) EndLocked() { s.loop.Store(loopEnded) }

// EndedLocked reports whether EndLocked was called.
func (s *Session) EndedLocked() bool { return s.loop.Load() == loopEnded }

// OwnerLocked returns the attached connection, or nil while offline.
func (s *Session) OwnerLocked() Owner { return s.owner }

// AttachLocked attaches the session to o and returns the owner it had
// (nil if offline), which the caller must disconnect.
func (s *Session) AttachLocked(o Owner) (prev Owner) {
	prev = s.owner
	s.owner = o
	s.loop.Store(int32(o.LoopIndex()))
	s.ExpireAt = 0
	s.Gen++
	return prev
}

// DetachLocked marks the session offline if o is still its owner and
// reports whether it was.
func (s *Session) DetachLocked(o Owner) bool {
	if s.owner != o {
		return false
	}
	s.owner = nil
	s.loop.Store(-1)
	return true
}

// AddSubLocked records a subscription, replacing the options of an existing
// one with the same filter [MQTT-3.8.4-3].
func (s *Session) AddSubLocked(filter string, o router.Options) (existed bool) {
	for i := range s.subs {
		if s.subs[i].Filter == filter {
			s.subs[i].Opts = o
			return true
		}
	}
	s.subs = append(s.subs, Sub{Filter: filter, Opts: o})
	return false
}

// RemoveSubLocked forgets a subscription and reports whether it existed.
func (s *Session) RemoveSubLocked(filter string) bool {
	for i := range s.subs {
		if s.subs[i].Filter == filter {
			last := len(s.subs) - 1
			s.subs[i] = s.subs[last]
			s.subs[last] = Sub{}
			s.subs = s.subs[:last]
			if len(s.subs) == 0 {
				s.subs = nil
			}
			return true
		}
	}
	return false
}

// SubsLocked returns the subscriptions. The slice is the session's own:
// don't keep it past the unlock.
func (s *Session) SubsLocked() []Sub { return s.subs }

// InflightLocked returns the in-flight messages in send order. The slice
// is the session's own: don't keep it past the unlock.
func (s *Session) InflightLocked() []Inflight {
	if s.fl == nil {
		return nil
	}
	return s.fl.inflight
}

// InflightLen is the number of messages in flight. s.mu must be held.
func (s *Session) InflightLen() int {
	if s.fl == nil {
		return 0
	}
	return len(s.fl.inflight)
}

// QueueLen is the number of queued messages. s.mu must be held.
func (s *Session) QueueLen() int {
	if s.fl == nil {
		return 0
	}
	return int(s.fl.qlen)
}

// CountDropLocked counts one message the session's queue could not keep,
// dropped by its caller (a bound EnqueueLocked does not know, such as
// bytes). s.mu must be held.
func (s *Session) CountDropLocked() { s.flight().dropped++ }

// DroppedLocked is the number of messages a full queue cost the session
// since it was created in this process. s.mu must be held.
func (s *Session) DroppedLocked() uint64 {
	if s.fl == nil {
		return 0
	}
	return s.fl.dropped
}

// QueueBytesLocked is the Delivery.Size of every queued message together:
// what the queue costs in message bytes. s.mu must be held.
func (s *Session) QueueBytesLocked() int {
	if s.fl == nil {
		return 0
	}
	return s.fl.qbytes
}

// NextIDLocked picks an unused packet identifier for a new outbound
// message [MQTT-2.2.1-3]: never 0, never one in flight. It reports false
// only when all 65,535 are in use.
func (s *Session) NextIDLocked() (uint16, bool) {
	f := s.flight()
	if len(f.inflight) >= math.MaxUint16 {
		return 0, false
	}
	for {
		f.nextID++
		if f.nextID == 0 {
			f.nextID = 1
		}
		if f.find(f.nextID) < 0 {
			return f.nextID, true
		}
	}
}

func (f *flight) find(id uint16) int {
	for i := range f.inflight {
		if f.inflight[i].ID == id {
			return i
		}
	}
	return -1
}

// PushInflightLocked records d as sent with packet id id at now. It takes
// over d's message reference.
func (s *Session) PushInflightLocked(d Delivery, id uint16, now int64) {
	st := AwaitPuback
	if d.QoS == 2 {
		st = AwaitPubrec
	}
	f := s.flight()
	f.inflight = append(f.inflight, Inflight{Delivery: d, ID: id, State: st, Sent: now})
}

func (f *flight) remove(i int) {
	f.inflight[i].Release()
	copy(f.inflight[i:], f.inflight[i+1:])
	f.inflight[len(f.inflight)-1] = Inflight{}
	f.inflight = f.inflight[:len(f.inflight)-1]
}

// lookup finds in-flight id; the index is -1 when it is not in flight.
func (s *Session) lookup(id uint16) (*flight, int) {
	if s.fl == nil {
		return nil, -1
	}
	return s.fl, s.fl.find(id)
}

// PubackLocked completes a QoS 1 delivery [MQTT-4.3.2]. It reports whether
// id was awaiting a PUBACK, and the delivery's Seq.
func (s *Session) PubackLocked(id uint16) (seq uint64, ok bool) {
	f, i := s.lookup(id)
	if i < 0 || f.inflight[i].State != AwaitPuback {
		return 0, false
	}
	seq = f.inflight[i].Seq
	f.remove(i)
	return seq, true
}

// OriginLocked returns the Origin (router.Message.Origin) of the message
// in flight under id, 0 when there is none or its message is already
// released (past PUBREC). s.mu must be held.
func (s *Session) OriginLocked(id uint16) uint64 {
	f, i := s.lookup(id)
	if i < 0 || f.inflight[i].Msg == nil {
		return 0
	}
	return f.inflight[i].Msg.Origin
}

// PubrecLocked moves a QoS 2 delivery to awaiting PUBCOMP and releases its
// message: from now on only PUBREL is resent [MQTT-4.3.3]. A PUBREC with a
// failure code (failed, MQTT 5 only) ends the delivery instead. It reports
// whether id was awaiting a PUBREC, or is already past it, as after a
// resent PUBREC, and the delivery's Seq.
func (s *Session) PubrecLocked(id uint16, failed bool, now int64) (seq uint64, ok bool) {
	f, i := s.lookup(id)
	if i < 0 {
		return 0, false
	}
	e := &f.inflight[i]
	seq = e.Seq
	switch {
	case e.State == AwaitPubcomp:
		return seq, true // duplicate PUBREC: answer with PUBREL again
	case e.State != AwaitPubrec:
		return 0, false
	case failed:
		f.remove(i)
		return seq, true
	}
	e.Release()
	e.State = AwaitPubcomp
	e.Sent = now
	return seq, true
}

// PubcompLocked completes a QoS 2 delivery and reports whether id was
// awaiting a PUBCOMP, and the delivery's Seq.
func (s *Session) PubcompLocked(id uint16) (seq uint64, ok bool) {
	f, i := s.lookup(id)
	if i < 0 || f.inflight[i].State != AwaitPubcomp {
		return 0, false
	}
	seq = f.inflight[i].Seq
	f.remove(i)
	return seq, true
}

// EnqueueLocked queues d (taking over its reference) behind the in-flight
// window. With max messages already queued, dropOldest discards the oldest
// to make room; otherwise d is discarded. It reports whether something was
// dropped, and the dropped delivery's Seq.
func (s *Session) EnqueueLocked(d Delivery, max int, dropOldest bool) (dropped bool, seq uint64) {
	if max <= 0 {
		s.flight().dropped++
		d.Release()
		return true, d.Seq
	}
	f := s.flight()
	if int(f.qlen) >= max {
		f.dropped++
		if !dropOldest {
			d.Release()
			return true, d.Seq
		}
		old, _ := s.DequeueLocked()
		old.Release()
		dropped, seq = true, old.Seq
	}
	if int(f.qlen) == len(f.queue) {
		f.grow(max)
	}
	f.queue[(int(f.qhead)+int(f.qlen))%len(f.queue)] = d
	f.qlen++
	f.qbytes += d.Size()
	s.setFlag(flagBusy, true)
	return dropped, seq
}

func (f *flight) grow(limit int) {
	n := min(max(2*len(f.queue), 8), limit)
	q := make([]Delivery, n)
	for i := 0; i < int(f.qlen); i++ {
		q[i] = f.queue[(int(f.qhead)+i)%len(f.queue)]
	}
	f.queue, f.qhead = q, 0
}

// RangeQueuedLocked calls fn with each queued delivery, oldest first,
// leaving it queued. s.mu must be held.
func (s *Session) RangeQueuedLocked(fn func(d *Delivery)) {
	f := s.fl
	if f == nil {
		return
	}
	for i := 0; i < int(f.qlen); i++ {
		fn(&f.queue[(int(f.qhead)+i)%len(f.queue)])
	}
}

// DequeueLocked takes the oldest queued delivery; the caller owns its
// reference.
func (s *Session) DequeueLocked() (Delivery, bool) {
	f := s.fl
	if f == nil || f.qlen == 0 {
		return Delivery{}, false
	}
	d := f.queue[f.qhead]
	f.queue[f.qhead] = Delivery{}
	f.qhead = int32((int(f.qhead) + 1) % len(f.queue))
	f.qlen--
	f.qbytes -= d.Size()
	if f.qlen == 0 {
		s.setFlag(flagBusy, false)
	}
	if f.qlen == 0 && len(f.queue) > 64 {
		f.queue, f.qhead = nil, 0 // don't keep a large ring once drained
	}
	return d, true
}

// AwaitingRelLocked reports whether inbound QoS 2 packet id is between
// PUBREC and PUBREL: a PUBLISH with it is a resend, not a new message
// [MQTT-4.3.3-10].
func (s *Session) AwaitingRelLocked(id uint16) bool {
	if s.fl == nil {
		return false
	}
	for _, v := range s.fl.awaitRel {
		if v == id {
			return true
		}
	}
	return false
}

// AwaitRelCountLocked is the number of inbound QoS 2 messages awaiting
// PUBREL.
func (s *Session) AwaitRelCountLocked() int {
	if s.fl == nil {
		return 0
	}
	return len(s.fl.awaitRel)
}

// AwaitRelLocked returns the inbound QoS 2 packet ids awaiting PUBREL,
// in the order they came: the session's storage, valid until it changes.
func (s *Session) AwaitRelLocked() []uint16 {
	if s.fl == nil {
		return nil
	}
	return s.fl.awaitRel
}

// AddAwaitRelLocked records inbound QoS 2 packet id as received.
func (s *Session) AddAwaitRelLocked(id uint16) {
	f := s.flight()
	f.awaitRel = append(f.awaitRel, id)
}

// ReleaseLocked forgets inbound QoS 2 packet id on PUBREL [MQTT-4.3.3-11]
// and reports whether it was known.
func (s *Session) ReleaseLocked(id uint16) bool {
	if s.fl == nil {
		return false
	}
	ids := s.fl.awaitRel
	for i, v := range ids {
		if v == id {
			last := len(ids) - 1
			ids[i] = ids[last]
			s.fl.awaitRel = ids[:last]
			return true
		}
	}
	return false
}

// TakeSharedLocked removes and returns the QoS 1/2 deliveries that came
// through a shared subscription and that the client has not received for
// certain: queued ones, and in-flight ones before PUBREC. The caller owns
// their references and hands them to another member of their group.
func (s *Session) TakeSharedLocked() []Delivery {
	f := s.fl
	if f == nil {
		return nil
	}
	var out []Delivery
	keep := f.inflight[:0]
	for _, e := range f.inflight {
		if e.Group != "" && e.State != AwaitPubcomp && e.Msg != nil {
			out = append(out, e.Delivery)
			continue
		}
		keep = append(keep, e)
	}
	clear(f.inflight[len(keep):])
	f.inflight = keep
	// Compact the ring in place, in order: slot w is always one already read.
	w := 0
	for i := 0; i < int(f.qlen); i++ {
		idx := (int(f.qhead) + i) % len(f.queue)
		d := f.queue[idx]
		f.queue[idx] = Delivery{}
		if d.Group != "" {
			f.qbytes -= d.Size()
			out = append(out, d)
			continue
		}
		f.queue[(int(f.qhead)+w)%len(f.queue)] = d
		w++
	}
	f.qlen = int32(w)
	s.setFlag(flagBusy, w > 0)
	return out
}

// ClearLocked drops all state — subscriptions, in-flight messages both
// ways, the queue — as a clean start requires [MQTT-3.1.2-4], and returns
// the subscriptions it had so the caller can remove them from the router.
func (s *Session) ClearLocked() []Sub {
	if f := s.fl; f != nil {
		for i := range f.inflight {
			f.inflight[i].Release()
		}
		for {
			d, ok := s.DequeueLocked()
			if !ok {
				break
			}
			d.Release()
		}
		s.fl = nil
	}
	subs := s.subs
	s.subs = nil
	return subs
}
