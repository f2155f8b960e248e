package dispatch

import (
	"sync"
	"sync/atomic"

	"golang.org/x/sys/cpu"

	"github.com/shoalmq/shoal/codec"
	"github.com/shoalmq/shoal/eventloop"
	"github.com/shoalmq/shoal/internal/persist"
	"github.com/shoalmq/shoal/router"
	"github.com/shoalmq/shoal/session"
	"github.com/shoalmq/shoal/store"
)

// Loop is one event loop's dispatch state: an inbox other goroutines post
// to, and the scratch of the messages the loop routes itself.
type Loop struct {
	index int

	mu     sync.Mutex // guards items and closed (LOCKORDER 5)
	room   sync.Cond  // on mu: signalled when the loop takes its items
	items  []item
	closed bool   // the broker is stopping: nobody waits for room
	spare  []item // the slice being processed; loop goroutine only

	// fan is the scratch of messages the loop routes itself (RouteInline);
	// its sw is the loop's writer. Deliveries it holds for other loops
	// (and offline sessions) wait for FlushFan at the end of the event;
	// fanPending says there are some. Loop goroutine only.
	fan        fanout
	fanPending bool

	// queued mirrors len(items) for other loops deciding, without the
	// lock, whether to route inline (inlineRoom, on every PUBLISH of every
	// loop). It has a cache line of its own: the fields the loop writes
	// for every packet would otherwise share it, and each write would
	// cost the readers a cache miss.
	_      cpu.CacheLinePad
	queued atomic.Int32
	_      cpu.CacheLinePad

	// Releases of delivered messages, gathered: consecutive deliveries of
	// one message (a fan-out's, as posted) give back their references in
	// one atomic operation. Flushed at the end of each drain and frame.
	// Loop goroutine only.
	relMsg *router.Message
	relN   int32
}

// SetWriter gives the loop's routing its store writer (the one of its
// persist.Loop). Call it before the loop runs.
func (l *Loop) SetWriter(w store.Writer) { l.fan.sw = w }

// Release gives back one reference to m, gathered with the previous ones
// of the same message. Loop goroutine only.
func (l *Loop) Release(m *router.Message) {
	if m == l.relMsg {
		l.relN++
		return
	}
	l.FlushReleases()
	l.relMsg, l.relN = m, 1
}

// FlushReleases gives back the gathered references. Loop goroutine only.
func (l *Loop) FlushReleases() {
	if l.relMsg != nil {
		l.relMsg.ReleaseN(l.relN)
		l.relMsg, l.relN = nil, 0
	}
}

// item is one inbox entry: a delivery for a session, an acknowledgement
// for a publisher, or a note for a connection.
type item struct {
	sess    *session.Session
	d       session.Delivery
	to      Conn // set: acknowledge ackID with ackT (note 0), or hand it note
	ackID   uint16
	ackT    codec.Type
	ackSync bool // the message was stored: sync before the ack goes out
	ackFail bool // the cluster could not store it: to.NotStored, no ack
	note    Note
}

// post appends one entry to loop i's inbox and wakes it. It never waits.
func (d *Dispatcher) post(i int, p item) {
	l := d.loops[i]
	l.mu.Lock()
	l.items = append(l.items, p)
	l.queued.Store(int32(len(l.items)))
	l.mu.Unlock()
	d.engine.LoopAt(i).Wake()
}

// postAll appends batch to loop i's inbox, never waiting, with one
// wake-up, and empties batch. For loops (RouteInline).
func (d *Dispatcher) postAll(i int, batch []item) {
	l := d.loops[i]
	l.mu.Lock()
	l.items = append(l.items, batch...)
	l.queued.Store(int32(len(l.items)))
	l.mu.Unlock()
	clear(batch)
	d.engine.LoopAt(i).Wake()
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
func (d *Dispatcher) postBatch(i int, batch []item) {
	l := d.loops[i]
	el := d.engine.LoopAt(i)
	l.mu.Lock()
	for len(l.items) >= inboxLimit && !l.closed {
		el.Wake() // make sure the loop is on its way
		l.room.Wait()
	}
	l.items = append(l.items, batch...)
	l.queued.Store(int32(len(l.items)))
	l.mu.Unlock()
	clear(batch)
	el.Wake()
}

// CloseInboxes releases workers waiting for room: the loops are stopping.
func (d *Dispatcher) CloseInboxes() {
	for _, l := range d.loops {
		l.mu.Lock()
		l.closed = true
		l.room.Broadcast()
		l.mu.Unlock()
	}
}

// Drain runs on event loop el: it delivers everything posted to it.
func (d *Dispatcher) Drain(el *eventloop.Loop) {
	l := d.loops[el.Index()]
	l.mu.Lock()
	items := l.items
	l.items = l.spare[:0]
	l.queued.Store(0)
	l.room.Broadcast()
	l.mu.Unlock()
	now := el.Now()
	for i := range items {
		p := &items[i]
		switch {
		case p.note != 0:
			p.to.Notify(p.note)
		case p.ackFail:
			p.to.NotStored(p.ackT, p.ackID)
		case p.to != nil:
			p.to.Acknowledge(p.ackT, p.ackID, p.ackSync)
		default:
			d.deliverOnLoop(l, p.sess, p.d, now)
		}
		items[i] = item{}
	}
	l.FlushReleases()
	l.spare = items[:0]
}

// deliverOnLoop hands dv to s's connection if it is still connected on
// loop l; otherwise it follows the session: to its new loop, into its
// queue, or away if the session is gone.
func (d *Dispatcher) deliverOnLoop(l *Loop, s *session.Session, dv session.Delivery, now int64) {
	s.Lock()
	defer s.Unlock()
	if o := s.OwnerLocked(); o != nil {
		if li := o.LoopIndex(); li != l.index {
			d.post(li, item{sess: s, d: dv}) // taken over on another loop
			return
		}
		if o.DeliverLocked(dv, now) {
			return
		}
	}
	d.queueOfflineLocked(l.fan.sw, s, dv)
}

// queueOfflineLocked keeps a delivery for a session without a usable
// connection: QoS 1/2 wait in its queue if the session outlives the
// connection; QoS 0 is dropped (MQTT 3.1.1 4.1 lets a broker keep it; we
// don't, so offline queues hold only what was promised). What is not kept
// is forgotten by the store through w (nil: persistence off). s.mu must be
// held.
func (d *Dispatcher) queueOfflineLocked(w store.Writer, s *session.Session, dv session.Delivery) {
	if dv.QoS == 0 || s.Expiry == 0 || s.EndedLocked() {
		persist.Forget(w, s, dv.Seq)
		dv.Release()
		return
	}
	d.EnqueueLocked(w, s, dv)
}

// EnqueueLocked queues dv for s within MaxQueued messages and
// MaxQueuedBytes, dropping by the queue policy what does not fit; what is
// dropped is forgotten by the store through w. It reports whether
// something was dropped. s.mu must be held.
func (d *Dispatcher) EnqueueLocked(w store.Writer, s *session.Session, dv session.Delivery) (dropped bool) {
	lim := d.limits.Load()
	oldest := lim.DropOldest
	if lim.MaxQueuedBytes > 0 {
		for size := dv.Size(); s.QueueBytesLocked()+size > lim.MaxQueuedBytes; {
			if !oldest || s.QueueLen() == 0 {
				d.QueueFull.Add(1)
				s.CountDropLocked()
				persist.Forget(w, s, dv.Seq)
				dv.Release()
				return true
			}
			old, _ := s.DequeueLocked()
			d.QueueFull.Add(1)
			s.CountDropLocked()
			persist.Forget(w, s, old.Seq)
			old.Release()
			dropped = true
		}
	}
	if lost, seq := s.EnqueueLocked(dv, lim.MaxQueued, oldest); lost {
		d.QueueFull.Add(1)
		persist.Forget(w, s, seq)
		dropped = true
	}
	return dropped
}
