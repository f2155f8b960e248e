package broker

import (
	"sync"
	"time"

	"github.com/shoalmq/shoal/codec"
	"github.com/shoalmq/shoal/eventloop"
	"github.com/shoalmq/shoal/router"
	"github.com/shoalmq/shoal/session"
)

// loopState is the broker's per-loop state: an inbox other goroutines post
// to, and scratch packets the loop decodes into so that decoding allocates
// nothing.
type loopState struct {
	mu    sync.Mutex // guards items
	items []pending
	spare []pending // the slice being processed; loop goroutine only

	// Scratch, loop goroutine only.
	connect     codec.Connect
	publish     codec.Publish
	ack         codec.Ack
	subscribe   codec.Subscribe
	unsubscribe codec.Unsubscribe
	suback      codec.Suback
	disconnect  codec.Disconnect
	out         codec.Outgoing
	props       []byte
	retainedFor []retainedReq
}

// pending is one inbox entry: a delivery for a session, or a command.
type pending struct {
	sess      *session.Session
	d         session.Delivery
	ack       *client // set: send ackT for ackID to this client, its message is routed
	ackID     uint16
	ackT      codec.Type
	kick      *client // set: disconnect this client, its session was taken over
	kickClean bool    // the taking connection's Clean Start
}

// post appends one entry to loop i's inbox and wakes it.
func (b *Broker) post(i int, p pending) {
	ls := b.loops[i]
	ls.mu.Lock()
	ls.items = append(ls.items, p)
	ls.mu.Unlock()
	b.engine.LoopAt(i).Wake()
}

// postBatch appends many entries to loop i's inbox with one lock and one
// wake-up, and empties batch.
func (b *Broker) postBatch(i int, batch []pending) {
	ls := b.loops[i]
	ls.mu.Lock()
	ls.items = append(ls.items, batch...)
	ls.mu.Unlock()
	clear(batch)
	b.engine.LoopAt(i).Wake()
}

// drainInbox runs on loop l: it delivers everything posted to it.
func (b *Broker) drainInbox(l *eventloop.Loop) {
	ls := b.loops[l.Index()]
	ls.mu.Lock()
	items := ls.items
	ls.items = ls.spare[:0]
	ls.mu.Unlock()
	now := time.Now().UnixNano()
	for i := range items {
		p := &items[i]
		switch {
		case p.ack != nil:
			p.ack.sendAck(p.ackT, p.ackID)
		case p.kick != nil:
			p.kick.takeOver(p.kickClean)
		default:
			b.deliverOnLoop(l, ls, p.sess, p.d, now)
		}
		items[i] = pending{}
	}
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
	b.queueOfflineLocked(s, d)
}

// queueOfflineLocked keeps a delivery for a session without a usable
// connection: QoS 1/2 wait in its queue if the session outlives the
// connection; QoS 0 is dropped (MQTT 3.1.1 4.1 lets a broker keep it; we
// don't, so offline queues hold only what was promised). s.mu must be
// held.
func (b *Broker) queueOfflineLocked(s *session.Session, d session.Delivery) {
	if d.QoS == 0 || s.Expiry == 0 {
		d.Release()
		return
	}
	if s.EnqueueLocked(d, b.cfg.MaxQueued, b.cfg.QueuePolicy == DropOldest) {
		b.stats.dropsQueueFull.Add(1)
	}
}

// worker routes messages: retained store, subscription match, fan-out to
// loops. Each has its own scratch so that routing allocates nothing.
type worker struct {
	b       *Broker
	ch      chan job
	matches router.Matches
	perLoop [][]pending // deliveries grouped by loop, flushed per message
}

func newWorker(b *Broker, queue, loops int) *worker {
	w := &worker{b: b, ch: make(chan job, queue), perLoop: make([][]pending, loops)}
	w.matches.Usable = usableMember
	return w
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
	for j := range w.ch {
		w.do(j)
	batch:
		for n := 1; n < workerBatch; n++ {
			select {
			case j, ok := <-w.ch:
				if !ok {
					break batch
				}
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
	w.route(j.m)
	j.m.Release()
	if j.ack != nil {
		li := j.ack.LoopIndex()
		w.perLoop[li] = append(w.perLoop[li], pending{ack: j.ack, ackID: j.ackID, ackT: j.ackT})
	}
}

// post hands the deliveries gathered so far to their loops: one inbox
// append and one wake-up per loop.
func (w *worker) post() {
	for i, batch := range w.perLoop {
		if len(batch) > 0 {
			w.b.postBatch(i, batch)
			w.perLoop[i] = batch[:0]
		}
	}
}

// route gathers m's deliveries to every matching subscriber [MQTT-3.3.4]
// into w.perLoop; post sends them on.
func (w *worker) route(m *router.Message) {
	b := w.b
	if m.Retain {
		b.retained.Set(m) // empty payload clears [MQTT-3.3.1-6], [MQTT-3.3.1-7]
	}
	w.matches.Reset()
	b.subs.Match(m.Topic, m.From, m.FromID, &w.matches)
	for i := range w.matches.List {
		mt := &w.matches.List[i]
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
		if len(mt.SubIDs) > 0 {
			d.SubIDs = append([]uint32(nil), mt.SubIDs...)
		}
		if mt.Shared && d.QoS > 0 {
			d.Group = mt.Group // for reroute, should the member's session end
		}
		if li := s.LoopHint(); li >= 0 {
			d.Msg = m.Ref()
			w.perLoop[li] = append(w.perLoop[li], pending{sess: s, d: d})
			continue
		}
		if d.QoS == 0 {
			continue // offline: QoS 0 is not kept
		}
		d.Msg = m.Ref()
		s.Lock()
		if c, _ := s.OwnerLocked().(*client); c != nil {
			// Came online since the hint: deliver through its loop.
			li := c.LoopIndex()
			w.perLoop[li] = append(w.perLoop[li], pending{sess: s, d: d})
		} else {
			b.queueOfflineLocked(s, d)
		}
		s.Unlock()
	}
}

// reroute gives the shared-subscription deliveries of a session that ended
// to another member of their group, so that a member leaving does not lose
// the group's QoS 1/2 messages (MQTT 5 section 4.8.2). A group that has no
// members left drops them. Call with no session locked.
func (b *Broker) reroute(orphans []session.Delivery) {
	for _, d := range orphans {
		mt, ok := b.subs.PickShared(d.Group, usableMember)
		s, _ := mt.Sub.(*session.Session)
		if !ok || s == nil {
			d.Release()
			continue
		}
		d = session.Delivery{Msg: d.Msg, SubIDs: mt.SubIDs, Group: mt.Group,
			QoS: min(d.Msg.QoS, mt.QoS), Retain: d.Msg.Retain && mt.RetainAsPublished}
		if d.QoS == 0 {
			d.Group = ""
		}
		s.Lock()
		if c, _ := s.OwnerLocked().(*client); c != nil {
			b.post(c.LoopIndex(), pending{sess: s, d: d})
		} else {
			b.queueOfflineLocked(s, d)
		}
		s.Unlock()
	}
}
