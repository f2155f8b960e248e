package broker

import (
	"sync"
	"sync/atomic"

	"golang.org/x/sys/cpu"

	"github.com/shoalmq/shoal/codec"
	"github.com/shoalmq/shoal/eventloop"
	"github.com/shoalmq/shoal/router"
	"github.com/shoalmq/shoal/session"
	"github.com/shoalmq/shoal/store"
)

// loopState is the broker's per-loop state: an inbox other goroutines post
// to, and scratch packets the loop decodes into so that decoding allocates
// nothing.
type loopState struct {
	mu     sync.Mutex // guards items and closed
	room   sync.Cond  // on mu: signalled when the loop takes its items
	items  []pending
	closed bool      // the broker is stopping: nobody waits for room
	spare  []pending // the slice being processed; loop goroutine only

	// Scratch, loop goroutine only.
	connect     codec.Connect
	connectOf   *client // whose CONNECT connect holds, for a refusal line (claimed)
	publish     codec.Publish
	ack         codec.Ack
	subscribe   codec.Subscribe
	unsubscribe codec.Unsubscribe
	suback      codec.Suback
	disconnect  codec.Disconnect
	out         codec.Outgoing
	ids         [1]uint32 // out's Subscription Identifier (session.Delivery.IDs)
	props       []byte
	retainedFor []retainedReq
	snapshots   [][]*router.Message // retained snapshot lists for reuse (retained.go)

	// sw is the loop's store writer (nil: persistence off), committed
	// before each flush; needSync asks that commit to sync (persist.go).
	sw       store.Writer
	needSync bool
	// Group commit across a poll (handler.BeforeFlush): whether holding
	// output pays now, read bursts held since the last sync, and when the
	// loop last synced after a read burst (Unix ns).
	holdPays   bool
	heldBursts int
	lastSync   int64

	// fan is the scratch of messages the loop routes itself (routeInline);
	// its sw is sw. Deliveries it holds for other loops (and offline
	// sessions) wait for flushFan at the end of the event; fanPending says
	// there are some.
	fan        fanout
	fanPending bool
	// queued mirrors len(items) for other loops deciding, without the
	// lock, whether to route inline (inlineRoom, on every PUBLISH of every
	// loop). It has a cache line of its own: the loop's per-packet
	// counters (ctr), written for every packet, would otherwise share it,
	// and each write would cost the readers a cache miss.
	_      cpu.CacheLinePad
	queued atomic.Int32
	_      cpu.CacheLinePad

	ctr  loopCounters // stats.go
	life lifecycleLog // lifecycle.go

	// Releases of delivered messages, gathered: consecutive deliveries of
	// one message (a fan-out's, as posted) give back their references in
	// one atomic operation. Flushed at the end of each drain and frame.
	relMsg *router.Message
	relN   int32
}

// release gives back one reference to m, gathered with the previous ones
// of the same message.
func (ls *loopState) release(m *router.Message) {
	if m == ls.relMsg {
		ls.relN++
		return
	}
	ls.flushReleases()
	ls.relMsg, ls.relN = m, 1
}

// flushReleases gives back the gathered references.
func (ls *loopState) flushReleases() {
	if ls.relMsg != nil {
		ls.relMsg.ReleaseN(ls.relN)
		ls.relMsg, ls.relN = nil, 0
	}
}

// pending is one inbox entry: a delivery for a session, or a command.
type pending struct {
	sess      *session.Session
	d         session.Delivery
	ack       *client // set: send ackT for ackID to this client, its message is routed
	ackID     uint16
	ackT      codec.Type
	ackSync   bool      // the message was stored: sync before the ack goes out
	kick      *client   // set: disconnect this client, its session was taken over
	kickClean bool      // the taking connection's Clean Start
	kickAdmin bool      // not taken over: the admin API kicks it
	login     *loginJob // set: the login pool's verdict for its client
}

// post appends one entry to loop i's inbox and wakes it.
func (b *Broker) post(i int, p pending) {
	ls := b.loops[i]
	ls.mu.Lock()
	ls.items = append(ls.items, p)
	ls.queued.Store(int32(len(ls.items)))
	ls.mu.Unlock()
	b.engine.LoopAt(i).Wake()
}

// postAll appends batch to loop i's inbox, never waiting, with one
// wake-up, and empties batch. For loops (routeInline).
func (b *Broker) postAll(i int, batch []pending) {
	ls := b.loops[i]
	ls.mu.Lock()
	ls.items = append(ls.items, batch...)
	ls.queued.Store(int32(len(ls.items)))
	ls.mu.Unlock()
	clear(batch)
	b.engine.LoopAt(i).Wake()
}

// inboxLimit bounds a loop's inbox as router workers fill it: a worker
// finding it this full waits until the loop takes it. Without the bound a
// wide fan-out outruns the loop's writes and the inbox grows without end
// (measured: 1,000-subscriber fan-out, p50 latency 7.6 s, 70% of CPU in
// re-growing the inbox, 0.3M deliveries/s). The wait propagates to the
// router queue, which pauses QoS 1/2 publishers and drops QoS 0. Measured
// with make bench's p2p and fanout (broker on one core, 2 rounds): 16,384
// gave p2p QoS 0 0.50M msg/s and fan-out 5.5M/s; 65,536 gave 0.81M and
// 7.6M with the same p99 — batches that large keep the loop's writes
// efficient. About 6 MiB of entries per loop at the limit.
const inboxLimit = 65536

// postBatch appends many entries to loop i's inbox with one lock and one
// wake-up, and empties batch. Only router workers call it: it waits while
// the inbox is over inboxLimit. Loops use post, which never waits.
func (b *Broker) postBatch(i int, batch []pending) {
	ls := b.loops[i]
	l := b.engine.LoopAt(i)
	ls.mu.Lock()
	for len(ls.items) >= inboxLimit && !ls.closed {
		l.Wake() // make sure the loop is on its way
		ls.room.Wait()
	}
	ls.items = append(ls.items, batch...)
	ls.queued.Store(int32(len(ls.items)))
	ls.mu.Unlock()
	clear(batch)
	l.Wake()
}

// closeInboxes releases workers waiting for room: the loops are stopping.
func (b *Broker) closeInboxes() {
	for _, ls := range b.loops {
		ls.mu.Lock()
		ls.closed = true
		ls.room.Broadcast()
		ls.mu.Unlock()
	}
}

// drainInbox runs on loop l: it delivers everything posted to it.
func (b *Broker) drainInbox(l *eventloop.Loop) {
	ls := b.loops[l.Index()]
	ls.mu.Lock()
	items := ls.items
	ls.items = ls.spare[:0]
	ls.queued.Store(0)
	ls.room.Broadcast()
	ls.mu.Unlock()
	now := l.Now()
	for i := range items {
		p := &items[i]
		switch {
		case p.ack != nil:
			ls.needSync = ls.needSync || p.ackSync
			p.ack.sendAck(p.ackT, p.ackID)
		case p.kick != nil && p.kickAdmin:
			if c := p.kick; c.state == stateConnected && !c.conn.Closing() {
				c.closeWith(0, errAdminKick)
			}
		case p.kick != nil:
			p.kick.takeOver(p.kickClean)
		case p.login != nil:
			p.login.c.loginDone(ls, p.login)
		default:
			b.deliverOnLoop(l, ls, p.sess, p.d, now)
		}
		items[i] = pending{}
	}
	ls.flushReleases()
	ls.spare = items[:0]
}

// deliverOnLoop hands d to s's client if it is still connected on loop l;
// otherwise it follows the session: to its new loop, into its queue, or
// away if the session is gone.
func (b *Broker) deliverOnLoop(l *eventloop.Loop, ls *loopState, s *session.Session, d session.Delivery, now int64) {
	s.Lock()
	defer s.Unlock()
	if c, _ := s.OwnerLocked().(*client); c != nil {
		if c.conn.Loop() == l {
			if c.state == stateConnected && !c.conn.Closing() {
				c.sendLocked(ls, d, now)
				return
			}
		} else {
			b.post(c.LoopIndex(), pending{sess: s, d: d}) // taken over on another loop
			return
		}
	}
	b.queueOfflineLocked(ls.sw, s, d)
}

// queueOfflineLocked keeps a delivery for a session without a usable
// connection: QoS 1/2 wait in its queue if the session outlives the
// connection; QoS 0 is dropped (MQTT 3.1.1 4.1 lets a broker keep it; we
// don't, so offline queues hold only what was promised). What is not kept
// is forgotten by the store through w (nil: persistence off). s.mu must be
// held.
func (b *Broker) queueOfflineLocked(w store.Writer, s *session.Session, d session.Delivery) {
	if d.QoS == 0 || s.Expiry == 0 || s.EndedLocked() {
		forget(w, s, d.Seq)
		d.Release()
		return
	}
	b.enqueueLocked(w, s, d)
}

// enqueueLocked queues d for s within MaxQueued messages and
// MaxQueuedBytes, dropping by QueuePolicy what does not fit; what is
// dropped is forgotten by the store through w. It reports whether
// something was dropped. s.mu must be held.
func (b *Broker) enqueueLocked(w store.Writer, s *session.Session, d session.Delivery) (dropped bool) {
	lim := b.limits()
	oldest := lim.QueuePolicy == DropOldest
	if lim.MaxQueuedBytes > 0 {
		for size := d.Size(); s.QueueBytesLocked()+size > lim.MaxQueuedBytes; {
			if !oldest || s.QueueLen() == 0 {
				b.stats.dropsQueueFull.Add(1)
				s.CountDropLocked()
				forget(w, s, d.Seq)
				d.Release()
				return true
			}
			old, _ := s.DequeueLocked()
			b.stats.dropsQueueFull.Add(1)
			s.CountDropLocked()
			forget(w, s, old.Seq)
			old.Release()
			dropped = true
		}
	}
	if lost, seq := s.EnqueueLocked(d, lim.MaxQueued, oldest); lost {
		b.stats.dropsQueueFull.Add(1)
		forget(w, s, seq)
		dropped = true
	}
	return dropped
}

// worker routes messages: retained store, subscription match, fan-out to
// loops.
type worker struct {
	fanout // its sw is committed before each post
	b      *Broker
	ch     chan job
	// done are the publishers of the jobs routed since the last post:
	// their routing counts drop once the deliveries are posted.
	done []*client
}

// full reports whether w's queue has no room now. Safe for concurrent use.
func (w *worker) full() bool { return len(w.ch) == cap(w.ch) }

// submit queues j without blocking; false means the queue is full and the
// caller still owns j.m. Safe for concurrent use.
func (w *worker) submit(j job) bool {
	select {
	case w.ch <- j:
		return true
	default:
		return false
	}
}

func newWorker(b *Broker, queue, loops int) *worker {
	return &worker{fanout: newFanout(loops), b: b, ch: make(chan job, queue)}
}

// usableMember tells shared-subscription picks to pass over a member that
// is offline or has messages queued, so that the group's messages go to
// members that take them now (MQTT 5 section 4.8.2).
func usableMember(s router.Subscriber) bool {
	ss, ok := s.(*session.Session)
	return ok && ss.LoopHint() >= 0 && !ss.Busy()
}

// workerBatch bounds how many queued messages a worker routes before it
// posts their deliveries to the loops. Posting once per batch collapses the
// loops' wake-ups (each costs a gnet task) when traffic is heavy, while a
// lone message is still posted at once.
const workerBatch = 256

func (w *worker) run() {
	for {
		select {
		case <-w.b.stop:
			return
		case j := <-w.ch:
			w.do(j)
		}
	batch:
		for n := 1; n < workerBatch; n++ {
			select {
			case j := <-w.ch:
				w.do(j)
			default:
				break batch
			}
		}
		w.post()
		if len(w.ch) == 0 {
			w.b.engine.WakePaused() // room again: paused publishers may go on
		}
	}
}

// do routes one job and queues its acknowledgement behind its deliveries:
// the publisher hears PUBACK or PUBREC only once the message is in every
// subscriber's hands or queue, so its in-flight window bounds what it has
// in the router [MQTT-4.3.2-2], [MQTT-4.3.3-2].
func (w *worker) do(j job) {
	stored := w.sw != nil // an acknowledgement alone: of a stored message
	if j.m != nil {
		stored = w.route(w.b, j.m)
		j.m.Release()
	}
	if j.from != nil {
		w.done = append(w.done, j.from)
	}
	if j.ack != nil {
		li := j.ack.LoopIndex()
		w.perLoop[li] = append(w.perLoop[li], pending{ack: j.ack, ackID: j.ackID, ackT: j.ackT, ackSync: stored})
	}
}

// post hands the deliveries gathered so far to their loops: one inbox
// append and one wake-up per loop. What the worker stored is committed
// first, so that the loops' syncs and deletes come after it.
func (w *worker) post() {
	if w.sw != nil && w.sw.Dirty() {
		if err := w.sw.Commit(false); err != nil {
			w.b.commitFailed(err)
		}
	}
	for i, batch := range w.perLoop {
		if len(batch) > 0 {
			w.b.postBatch(i, batch)
			w.perLoop[i] = batch[:0]
		}
	}
	w.handOffline(w.b)
	if w.sw != nil && w.sw.Dirty() { // what the queues dropped
		if err := w.sw.Commit(false); err != nil {
			w.b.commitFailed(err)
		}
	}
	for i, c := range w.done {
		c.routing.Add(-1) // its deliveries are in the inboxes now
		w.done[i] = nil
	}
	w.done = w.done[:0]
}

// fanout is the scratch of routing, so that routing allocates nothing:
// each router worker has one, and each loop one for the messages it routes
// itself (routeInline).
type fanout struct {
	matches router.Matches
	perLoop [][]pending  // deliveries grouped by loop
	sw      store.Writer // the owner's store writer; nil: persistence off
	// offline are stored deliveries to sessions that were offline, for
	// handOffline once sw is committed.
	offline []pending
	ids     [1]uint32 // putDelivery's scratch
}

// handOffline puts the gathered deliveries to offline sessions into their
// queues — or, for a session that came back meanwhile, posts them to its
// loop. Call it after committing f.sw: its deletes must follow the puts.
func (f *fanout) handOffline(b *Broker) {
	for i := range f.offline {
		p := &f.offline[i]
		s := p.sess
		s.Lock()
		if c, _ := s.OwnerLocked().(*client); c != nil {
			b.post(c.LoopIndex(), pending{sess: s, d: p.d})
		} else {
			b.queueOfflineLocked(f.sw, s, p.d)
		}
		s.Unlock()
		f.offline[i] = pending{}
	}
	f.offline = f.offline[:0]
}

func newFanout(loops int) fanout {
	f := fanout{perLoop: make([][]pending, loops)}
	f.matches.Usable = usableMember
	return f
}

// route gathers m's deliveries to every matching subscriber [MQTT-3.3.4]
// into f.perLoop, for the caller to hand on. It reports whether it stored
// anything: a retained message, or a delivery to a persistent session.
func (f *fanout) route(b *Broker, m *router.Message) (stored bool) {
	if m.Retain {
		b.retained.Set(m)                   // empty payload clears [MQTT-3.3.1-6], [MQTT-3.3.1-7]
		if f.sw != nil && !isSys(m.Topic) { // $SYS is republished, not restored
			if len(m.Payload) == 0 {
				f.sw.DeleteRetained(m.Topic)
			} else {
				rec := storeMessage(m)
				f.sw.PutRetained(rec)
			}
			stored = true
		}
	}
	f.matches.Reset()
	b.subs.Match(m.Topic, m.From, m.FromID, &f.matches)
	// Deliveries handed to loops share m; their references are taken in
	// one atomic add after the loop below (the caller's own reference
	// keeps m alive meanwhile, and nothing is handed on before route
	// returns).
	refs := int32(0)
	for i := range f.matches.List {
		mt := &f.matches.List[i]
		s, ok := mt.Sub.(*session.Session)
		if !ok {
			continue
		}
		d := session.Delivery{
			QoS: min(m.QoS, mt.QoS), // [MQTT-3.8.4-8]
			// Retain is cleared on normal delivery unless Retain As
			// Published [MQTT-3.3.1-12], [MQTT-3.3.1-13].
			Retain: m.Retain && mt.RetainAsPublished,
		}
		d.SetIDs(mt.SubIDs) // one identifier, the common case, costs no allocation
		if mt.Shared && d.QoS > 0 {
			d.Group = mt.Group // for reroute, should the member's session end
		}
		d.Msg = m
		if d.QoS > 0 && f.sw != nil && s.Persistent() {
			b.putDelivery(f.sw, s, &d, &f.ids)
			stored = true
		}
		if li := s.LoopHint(); li >= 0 {
			refs++
			f.perLoop[li] = append(f.perLoop[li], pending{sess: s, d: d})
			continue
		}
		if d.QoS == 0 {
			continue // offline: QoS 0 is not kept
		}
		if d.Seq != 0 {
			// Stored: into the session only once the store has it, or the
			// session's own loop could complete and delete it first and the
			// late commit would bring it back (handOffline).
			m.Ref()
			f.offline = append(f.offline, pending{sess: s, d: d})
			continue
		}
		s.Lock()
		if c, _ := s.OwnerLocked().(*client); c != nil {
			// Came online since the hint: deliver through its loop.
			li := c.LoopIndex()
			refs++
			f.perLoop[li] = append(f.perLoop[li], pending{sess: s, d: d})
		} else {
			m.Ref() // the queue may release it at once (drop policy)
			b.queueOfflineLocked(f.sw, s, d)
		}
		s.Unlock()
	}
	m.RefN(refs)
	return stored
}

// reroute gives the shared-subscription deliveries of a session that ended
// to another member of their group, so that a member leaving does not lose
// the group's QoS 1/2 messages (MQTT 5 section 4.8.2). A group that has no
// members left drops them. Deliveries to a persistent member are stored
// through w (nil: persistence off), committed before they are posted.
// Call with no session locked.
func (b *Broker) reroute(w store.Writer, orphans []session.Delivery) {
	if len(orphans) == 0 {
		return
	}
	for _, d := range orphans {
		mt, ok := b.subs.PickShared(d.Group, usableMember)
		s, _ := mt.Sub.(*session.Session)
		if !ok || s == nil {
			d.Release()
			continue
		}
		d = session.Delivery{Msg: d.Msg, Group: mt.Group,
			QoS: min(d.Msg.QoS, mt.QoS), Retain: d.Msg.Retain && mt.RetainAsPublished}
		d.SetIDs(mt.SubIDs)
		if d.QoS == 0 {
			d.Group = ""
		}
		if d.QoS > 0 && w != nil && s.Persistent() {
			var ids [1]uint32
			b.putDelivery(w, s, &d, &ids)
			if err := w.Commit(false); err != nil { // before another loop can acknowledge it
				b.commitFailed(err)
			}
		}
		s.Lock()
		if c, _ := s.OwnerLocked().(*client); c != nil {
			b.post(c.LoopIndex(), pending{sess: s, d: d})
		} else {
			b.queueOfflineLocked(w, s, d)
		}
		s.Unlock()
	}
}

// inlineInboxMax is how full any loop's inbox may be for a loop to route
// a message itself (routeInline): routing on the loop posts to the other
// loops without waiting, so it is for when they keep up. Past it, messages
// go through the router workers, whose posts wait for room.
const inlineInboxMax = 4096

// Routing modes (Broker.routing).
const (
	routeAuto    = iota // inline while every loop keeps up (inlineRoom), else the workers
	routeInline         // inline whenever the publisher's order allows, whatever the pressure
	routeWorkers        // always through the workers
)

// inlineAllowed reports whether the routing mode lets a loop route a
// message itself; the publisher's order decides the rest (see doc.go).
// Safe for concurrent use.
func (b *Broker) inlineAllowed() bool {
	switch b.routing.Load() {
	case routeInline:
		return true
	case routeWorkers:
		return false
	}
	return b.inlineRoom()
}

// inlineRoom reports whether every loop's inbox is below inlineInboxMax.
// Safe for concurrent use.
func (b *Broker) inlineRoom() bool {
	for _, ls := range b.loops {
		if ls.queued.Load() >= inlineInboxMax {
			return false
		}
	}
	return true
}

// routeInline routes j on loop l, which received it, instead of through a
// router worker: no hand-off to a worker and back, so no goroutine wake-up
// and no loop wake-up for the loop's own subscribers. Deliveries to the
// loop's own connections go out at once; those for other loops and for
// offline sessions wait for flushFan at the end of the event, so that an
// event's messages cost one store commit and one post per loop, as a
// worker's batch does. Measured at
// make bench's fixed rate (p2p QoS 1, 10,000 msg/s), the hand-offs were a
// third of the broker's system calls (perf stat: 3.3 writes and 1.6
// epoll_waits per message, against 2 and 0.5 for the deliveries alone).
// The caller checked that j's publisher has nothing left with a worker, so
// nothing of its overtakes anything; the loop's own inbox is delivered
// first for the same reason. The acknowledgement is written after the
// deliveries, and leaves with the event's output, after flushFan.
//
// It reports whether it stored anything.
func (b *Broker) routeInline(l *eventloop.Loop, ls *loopState, j job) (stored bool) {
	f := &ls.fan
	stored = f.route(b, j.m)
	j.m.Release()
	if stored && j.ack != nil {
		ls.needSync = true // the store has it before the acknowledgement goes out
	}
	own := l.Index()
	for i, batch := range f.perLoop {
		if i != own && len(batch) > 0 {
			ls.fanPending = true
			break
		}
	}
	if len(f.offline) > 0 {
		ls.fanPending = true
	}
	if mine := f.perLoop[own]; len(mine) > 0 {
		if ls.queued.Load() > 0 {
			b.drainInbox(l)
		}
		now := l.Now()
		for i := range mine {
			b.deliverOnLoop(l, ls, mine[i].sess, mine[i].d, now)
			mine[i] = pending{}
		}
		ls.flushReleases()
		f.perLoop[own] = mine[:0]
	}
	if j.ack != nil {
		j.ack.sendAck(j.ackT, j.ackID)
	}
	return stored
}

// flushFan hands on what routeInline left for other loops and offline
// sessions on loop own: committed to the store first (another loop may
// complete and delete a delivery as soon as it has it), then posted. It
// runs before the loop's output is written, and before the loop gives a
// message to a worker, which must not overtake these.
func (b *Broker) flushFan(ls *loopState, own int) {
	if !ls.fanPending {
		return
	}
	ls.fanPending = false
	f := &ls.fan
	if ls.sw != nil && ls.sw.Dirty() {
		if err := ls.sw.Commit(false); err != nil {
			b.commitFailed(err)
		}
	}
	for i, batch := range f.perLoop {
		if i != own && len(batch) > 0 {
			b.postAll(i, batch)
			f.perLoop[i] = batch[:0]
		}
	}
	f.handOffline(b)
}
