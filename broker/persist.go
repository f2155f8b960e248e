package broker

import (
	"errors"
	"fmt"
	"github.com/shoalmq/shoal/internal/enum"
	"math"
	"time"

	"github.com/shoalmq/shoal/router"
	"github.com/shoalmq/shoal/session"
	"github.com/shoalmq/shoal/store"
)

// Persistence (README "Persistence"). What is stored, by whom:
//
//   - router workers store each QoS 1/2 delivery to a persistent session
//     (Seq from b.seq) and retained messages, and commit before they post
//     to the loops;
//   - loops store session records (CONNECT, SUBSCRIBE, UNSUBSCRIBE, close),
//     packet ids as messages go out, their removal as acknowledgements come
//     in, and inbound QoS 2 ids;
//   - the timer goroutine (will.go) stores the end of expired sessions and
//     of delayed wills.
//
// The durability contract: in strict mode a loop syncs the store before it
// writes PUBACK or PUBREC for a message some persistent session must
// receive, before a QoS 2 PUBLISH or PUBREL goes out with a packet id the
// store must remember, and before CONNACK, SUBACK or UNSUBACK that change
// a persistent session. One sync covers everything committed before it, by
// any writer, and Pebble shares one fsync among the commits that arrive
// together: the cost is one disk sync per loop iteration that needs it,
// never one per message. In relaxed mode nothing waits for the disk and
// the store is synced once a second: a crash of the machine (not of the
// process alone) can lose the last second of acknowledged messages.

// Durability says when the persistent store is synced to disk.
type Durability uint8

const (
	// Strict syncs before acknowledging (default): what the broker
	// acknowledged survives a power cut.
	Strict Durability = iota
	// Relaxed syncs once a second.
	Relaxed
)

// String returns the config-file spelling.
func (d Durability) String() string { return durabilities.String(d) }

// ParseDurability reads the config-file spelling of a Durability.
func ParseDurability(s string) (Durability, error) { return durabilities.Parse(s) }

// durabilities spells the Durability values, in order.
var durabilities = enum.New[Durability]("Durability", "durability", "strict", "relaxed")

// openStore opens the configured store, if any: Config.Store as given, or a
// Pebble store in Config.DataDir, which the broker then owns and closes.
func (b *Broker) openStore() error {
	switch {
	case b.cfg.Store != nil:
		b.store = b.cfg.Store
	case b.cfg.DataDir != "":
		p, err := store.OpenPebble(b.cfg.DataDir, store.PebbleOptions{Logger: *b.lg(), OnDamage: b.cfg.OnDamage})
		if err != nil {
			return err
		}
		b.store, b.ownStore = p, true
	default:
		return nil
	}
	b.strict = b.cfg.Durability == Strict
	return nil
}

// makeWriters gives every loop, every worker and the timer goroutine
// their store writers. After restore: Load may replace the store's
// database (salvage), and writers made before would write to the old one.
func (b *Broker) makeWriters() {
	if b.store == nil {
		return
	}
	b.bgMu.Lock()
	b.bgw = b.store.NewWriter()
	b.bgMu.Unlock()
	for _, w := range b.workers {
		w.sw = b.store.NewWriter()
	}
	for _, ls := range b.loops {
		ls.sw = b.store.NewWriter()
		ls.fan.sw = ls.sw
	}
}

// closeStore syncs and, if the broker opened it, closes the store. Loops
// and workers have stopped, and so has the timer goroutine; anything that
// still called withBG would find storeClosed and leave the store alone.
func (b *Broker) closeStore() error {
	if b.store == nil {
		return nil
	}
	b.bgMu.Lock()
	defer b.bgMu.Unlock()
	b.storeClosed = true
	var errs []error
	if b.bgw != nil { // writers exist once restore is done
		for _, ls := range b.loops {
			errs = append(errs, ls.sw.Commit(false))
		}
		for _, w := range b.workers {
			errs = append(errs, w.sw.Commit(false))
		}
		errs = append(errs, b.bgw.Commit(false))
	}
	if b.ownStore {
		errs = append(errs, b.store.Close())
	} else {
		errs = append(errs, b.store.Sync())
	}
	return errors.Join(errs...)
}

// commitFailed reports a store commit that failed. Nothing acknowledged may
// be lost, so the broker cannot go on pretending: it stops taking work.
func (b *Broker) commitFailed(err error) {
	b.lg().Error().Err(err).Msg("persistent store commit failed; shutting down")
	panic(fmt.Sprintf("broker: persistent store commit failed: %v", err))
}

// withBG runs fn with the background writer and commits what fn wrote.
// For goroutines that are neither a loop nor a worker.
// With persistence off, or once the store is closed, fn gets nil.
func (b *Broker) withBG(fn func(w store.Writer)) {
	if b.store == nil {
		fn(nil)
		return
	}
	b.bgMu.Lock()
	defer b.bgMu.Unlock()
	if b.storeClosed {
		fn(nil)
		return
	}
	fn(b.bgw)
	if err := b.bgw.Commit(false); err != nil {
		b.commitFailed(err)
	}
}

// syncLoop runs on loop ls before its output is written (eventloop's
// Flusher): it commits what the loop gathered, syncing when something
// about to go out needs it.
func (b *Broker) syncLoop(ls *loopState) {
	if ls.sw == nil || (!ls.needSync && !ls.sw.Dirty()) {
		return
	}
	sync := ls.needSync && b.strict
	ls.needSync = false
	if !sync {
		if err := ls.sw.Commit(false); err != nil {
			b.commitFailed(err)
		}
		return
	}
	start := time.Now()
	if err := ls.sw.Commit(true); err != nil {
		b.commitFailed(err)
	}
	ls.ctr.syncs.observe(time.Since(start))
}

// storeMessage views m as a store record, aliasing its bytes.
func storeMessage(m *router.Message) store.Message {
	return store.Message{Topic: m.Topic, Payload: m.Payload, Props: m.Props, From: m.FromID,
		QoS: m.QoS, Retain: m.Retain, Expiry: m.Expiry}
}

// putDelivery stores d (QoS 1/2) for persistent session s and sets d.Seq.
// ids is scratch owned by the caller's goroutine (session.Delivery.IDs).
func (b *Broker) putDelivery(w store.Writer, s *session.Session, d *session.Delivery, ids *[1]uint32) {
	d.Seq = b.seq.Add(1)
	rec := store.Delivery{Seq: d.Seq, Msg: storeMessage(d.Msg), QoS: d.QoS, Retain: d.Retain,
		SubIDs: d.IDs(ids), Group: d.Group}
	w.PutDelivery(s.ClientID(), rec)
}

// forget removes a stored delivery that will not be delivered. w may be
// nil (persistence off).
func forget(w store.Writer, s *session.Session, seq uint64) {
	if w != nil && seq != 0 {
		w.DeleteDelivery(s.ClientID(), seq)
	}
}

// storeSessionLocked writes s's record if it outlives its connection, or
// removes it if it no longer does. will is the will to keep with it (nil:
// none). s.mu must be held.
//
// Session records are committed at once, under the session lock: the next
// holder of the lock may be another loop with a writer of its own, whose
// newer record must not be overwritten by this one committed late.
func (b *Broker) storeSessionLocked(w store.Writer, s *session.Session, will *router.Message, willDelay uint32) {
	if w == nil {
		return
	}
	if s.Expiry == 0 {
		b.deleteSessionLocked(w, s)
		return
	}
	subs := s.SubsLocked()
	rec := store.Session{ClientID: s.ClientID(), Expiry: s.Expiry, ExpireAt: s.ExpireAt,
		Subs: make([]store.Sub, len(subs))}
	for i, sub := range subs {
		rec.Subs[i] = store.Sub{Filter: sub.Filter, Opts: sub.Opts}
	}
	if will != nil && willDelay > 0 {
		m := storeMessage(will)
		rec.Will, rec.WillDelay = &m, willDelay
	}
	w.PutSession(&rec)
	s.SetStoredLocked(true)
	b.commitNow(w)
}

// deleteSessionLocked removes s's records, if it has any, committed at
// once as storeSessionLocked's are. s.mu must be held.
func (b *Broker) deleteSessionLocked(w store.Writer, s *session.Session) {
	if w != nil && s.StoredLocked() {
		w.DeleteSession(s.ClientID())
		s.SetStoredLocked(false)
		b.commitNow(w)
	}
}

// commitNow commits w without syncing; the caller's next sync covers it.
func (b *Broker) commitNow(w store.Writer) {
	if err := w.Commit(false); err != nil {
		b.commitFailed(err)
	}
}

// restorer loads the store into a starting broker: the store.Loader.
type restorer struct {
	b   *Broker
	now int64 // for messages' expiry: the system clock's Unix ns
	// clock is b.clock's time, for sessions' expiry and wills' delays.
	clock int64
	wills int
}

// restore loads the stored state before the listener opens. Offline
// sessions get their deadlines, and stored wills, whose connections were
// lost with the broker, theirs: the timer goroutine, started once the
// workers and loops run, publishes them.
func (b *Broker) restore() error {
	if b.store == nil {
		return nil
	}
	start := time.Now()
	r := &restorer{b: b, now: start.UnixNano(), clock: b.clock.Now()}
	if err := b.store.Load(r); err != nil {
		return fmt.Errorf("broker: loading the persistent store: %w", err)
	}
	b.lg().Info().Int("sessions", b.sessions.Len()).Int("retained", b.RetainedCount()).
		Int("wills", r.wills).Int64("took_ms", time.Since(start).Milliseconds()).Msg("persistent state loaded")
	return nil
}

func (r *restorer) Session(rec *store.Session) bool {
	b := r.b
	if rec.ExpireAt != 0 && rec.ExpireAt <= r.clock {
		return false // expired while the broker was down [MQTT-3.1.2-23]
	}
	s, _ := b.sessions.GetOrCreate(rec.ClientID)
	s.Lock()
	defer s.Unlock()
	s.SetExpiryLocked(rec.Expiry)
	s.SetStoredLocked(true)
	for _, sub := range rec.Subs {
		s.AddSubLocked(sub.Filter, sub.Opts)
		b.subs.Subscribe(s, sub.Filter, sub.Opts)
	}
	// A session connected when the broker stopped counts its expiry from
	// now, as if its connection had just closed.
	s.ExpireAt = rec.ExpireAt
	if s.ExpireAt == 0 && rec.Expiry != session.NeverExpire {
		s.ExpireAt = r.clock + secs(rec.Expiry)
	}
	var pw *pendingWill
	if w := rec.Will; w != nil {
		// Its delay counts from now; its Message Expiry stays relative
		// until it is published.
		m := router.NewMessage(w.Topic, w.Payload, w.Props, w.From, w.QoS, w.Retain, w.Expiry, nil)
		pw = &pendingWill{msg: m, at: r.clock + secs(min(rec.WillDelay, rec.Expiry)), gen: s.Gen}
		r.wills++
	}
	b.armLocked(s, pw)
	return true
}

func (r *restorer) Delivery(clientID string, rec *store.Delivery) bool {
	b := r.b
	if rec.Seq > b.seq.Load() {
		b.seq.Store(rec.Seq)
	}
	s := b.sessions.Get(clientID)
	if s == nil || (rec.State == 0 && rec.Msg.Expiry != 0 && rec.Msg.Expiry <= r.now) {
		// Session gone, or a queued message expired; one already sent is
		// on its way and finishes [MQTT-3.3.2-5].
		return false
	}
	m := rec.Msg
	d := session.Delivery{
		Msg:    router.NewMessage(m.Topic, m.Payload, m.Props, m.From, m.QoS, m.Retain, m.Expiry, nil),
		QoS:    rec.QoS,
		Retain: rec.Retain,
		Group:  rec.Group,
		Seq:    rec.Seq,
	}
	d.SetIDs(rec.SubIDs)
	s.Lock()
	defer s.Unlock()
	if rec.State != 0 {
		// Resent with its packet id when the client resumes [MQTT-4.4.0-1].
		s.PushInflightLocked(d, rec.PacketID, r.now)
		if rec.State == session.AwaitPubcomp {
			s.PubrecLocked(rec.PacketID, false, r.now)
		}
		return true
	}
	s.EnqueueLocked(d, math.MaxInt32, false) // what was kept before stays
	return true
}

func (r *restorer) AwaitRel(clientID string, id uint16) bool {
	s := r.b.sessions.Get(clientID)
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
	r.b.retained.Set(m)
	m.Release()
	return true
}

func (r *restorer) Corrupt(what string, err error) {
	r.b.lg().Error().Err(err).Str("record", what).Msg("persistent store: unreadable, skipped")
	r.b.stats.storeCorrupt.Add(1)
}
