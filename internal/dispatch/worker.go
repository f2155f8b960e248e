package dispatch

import (
	"slices"

	"github.com/shoalmq/shoal/router"
)

// Worker routes messages: retained store, subscription match, fan-out to
// loops. Its queue is safe for concurrent use; the rest belongs to the
// goroutine running it (Run).
type Worker struct {
	fanout // its sw is committed before each post
	d      *Dispatcher
	ch     chan Job
	// done are the publishers of the jobs routed since the last post:
	// their routing counts drop once the deliveries are posted.
	done []*Publisher
	// acks are the batch's acknowledgements, by loop: posted behind the
	// deliveries, and, when the batch forwarded messages to other nodes,
	// only once their receipts are in (Post).
	acks [][]item
	// held are the acknowledgements that wait for receipts
	// (Peer.Forward): Post marks those whose receipts failed.
	held []heldAck
	// routed are the jobs that want to know how their receipts went
	// (Job.Routed), told by Post.
	routed []routedJob
	// streamAcks are the batch's messages from the cluster's stream
	// (Job.Done), acknowledged once the batch is routed and on disk;
	// streamStored says whether any of them left something in the store.
	streamAcks   []Acker
	streamStored bool
	stop         <-chan struct{} // Run's
}

// heldAck is an acknowledgement in acks[loop][at] waiting for the
// receipts [from, to) of the worker's batch.
type heldAck struct {
	loop, at, from, to int
}

// routedJob is a Job's Routed, told whether any of the receipts [from,
// to) of the worker's batch failed.
type routedJob struct {
	from, to int
	fn       func(failed bool)
}

// Full reports whether w's queue has no room now. Safe for concurrent use.
func (w *Worker) Full() bool { return len(w.ch) == cap(w.ch) }

// Submit queues j without blocking, counting it among its publisher's
// messages with a worker; false means the queue is full and the caller
// still owns j.Msg. Safe for concurrent use.
func (w *Worker) Submit(j Job) bool {
	if j.From != nil {
		j.From.routing.Add(1) // before the worker can take it and count it done
	}
	select {
	case w.ch <- j:
		return true
	default:
		if j.From != nil {
			j.From.routing.Add(-1)
		}
		return false
	}
}

// workerBatch bounds how many queued messages a worker routes before it
// posts their deliveries to the loops. Posting once per batch collapses the
// loops' wake-ups (each costs a gnet task) when traffic is heavy, while a
// lone message is still posted at once.
const workerBatch = 256

// Run routes jobs until stop is closed. Worker queues are never closed: a
// loop still running (the engine's Stop may time out) may submit, and a
// send on a closed channel panics.
func (w *Worker) Run(stop <-chan struct{}) {
	w.stop = stop
	for {
		select {
		case <-stop:
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
		w.Post()
		if len(w.ch) == 0 {
			w.d.engine.WakePaused() // room again: paused publishers may go on
		}
	}
}

// do routes one job and queues its acknowledgement behind its deliveries:
// the publisher hears PUBACK or PUBREC only once the message is in every
// subscriber's hands or queue, so its in-flight window bounds what it has
// in the router [MQTT-4.3.2-2], [MQTT-4.3.3-2].
//
// A message forwarded to other nodes that must store it first (Receipt)
// has its acknowledgement held until Post has the receipts; one that came
// from the cluster's stream (Done) is acknowledged to the stream by Post,
// once routed and on disk.
func (w *Worker) do(j Job) {
	stored := w.sw != nil // an acknowledgement alone: of a stored message
	from := len(w.receipts)
	if j.Msg != nil {
		stored = w.routeJob(w.d, &j)
		j.Msg.Release()
	}
	if j.From != nil {
		w.done = append(w.done, j.From)
	}
	if j.Done != nil {
		w.streamAcks = append(w.streamAcks, j.Done)
		w.streamStored = w.streamStored || stored
	}
	w.receipts = append(w.receipts, j.Receipts...)
	if j.Routed != nil {
		if to := len(w.receipts); to > from {
			w.routed = append(w.routed, routedJob{from: from, to: to, fn: j.Routed})
		} else {
			j.Routed(false) // for this node alone, or QoS 0: nothing to wait for
		}
	}
	if j.Ack != nil {
		li := j.Ack.LoopIndex()
		if to := len(w.receipts); to > from {
			w.held = append(w.held, heldAck{loop: li, at: len(w.acks[li]), from: from, to: to})
		}
		w.acks[li] = append(w.acks[li], item{to: j.Ack, ackID: j.AckID, ackT: j.AckType, ackSync: stored})
	}
}

// Route routes m with the worker's scratch and stops there, as the worker
// does in the middle of a batch: nothing committed, nothing posted (Post
// ends the batch). For tests, on a worker nobody else uses meanwhile; the
// caller keeps its reference to m.
func (w *Worker) Route(m *router.Message) { w.route(w.d, m, false, "") }

// Post hands the deliveries gathered so far to their loops: one inbox
// append and one wake-up per loop. What the worker stored is committed
// first, so that the loops' syncs and deletes come after it. Worker
// goroutine only (tests: see Route).
//
// When the batch forwarded messages that other nodes must store
// (Receipt), its deliveries here go out first, and its acknowledgements —
// all of them, so that each publisher's stay in order [MQTT-4.6.0-2] —
// once the receipts are in: a stream that is slow to answer holds the
// publishers, not the subscribers.
func (w *Worker) Post() {
	waiting := len(w.receipts) > 0
	if !waiting { // the common case: behind the deliveries, in the same post
		for i, acks := range w.acks {
			if len(acks) > 0 {
				w.perLoop[i] = append(w.perLoop[i], acks...)
				clear(acks)
				w.acks[i] = acks[:0]
			}
		}
	}
	if w.sw != nil && w.sw.Dirty() {
		w.d.persist.Commit(w.sw)
	}
	for i, batch := range w.perLoop {
		if len(batch) > 0 {
			w.d.postBatch(i, batch)
			w.perLoop[i] = batch[:0]
		}
	}
	w.handOffline(w.d)
	if w.sw != nil && w.sw.Dirty() { // what the queues dropped
		w.d.persist.Commit(w.sw)
	}
	if waiting {
		w.confirmHeld()
		for i, acks := range w.acks {
			if len(acks) > 0 {
				w.d.postBatch(i, acks)
				w.acks[i] = acks[:0]
			}
		}
	}
	// Only now may a publisher's next message be routed inline: its
	// acknowledgement must not overtake these.
	for i, p := range w.done {
		p.routing.Add(-1) // its deliveries are in the inboxes now
		w.done[i] = nil
	}
	w.done = w.done[:0]
	w.ackStream()
}

// confirmHeld waits for the batch's receipts — one wait per batch, while
// the next batch gathers in the queue — and turns each held
// acknowledgement whose message some node could not store into a refusal
// (Conn.NotStored).
func (w *Worker) confirmHeld() {
	if len(w.receipts) == 0 {
		return
	}
	anyFailed := w.confirm(w.stop)
	for i, r := range w.routed {
		r.fn(anyFailed && slices.Contains(w.failed[r.from:r.to], true))
		w.routed[i] = routedJob{}
	}
	w.routed = w.routed[:0]
	if !anyFailed {
		w.held = w.held[:0]
		return
	}
	for _, h := range w.held {
		if slices.Contains(w.failed[h.from:h.to], true) {
			w.acks[h.loop][h.at].ackFail = true
		}
	}
	w.held = w.held[:0]
}

// ackStream acknowledges the batch's messages from the cluster's stream,
// now routed, once what they left in persistent sessions is on disk: the
// stream keeps each until then, and sends it again if this node stops
// first.
func (w *Worker) ackStream() {
	if len(w.streamAcks) == 0 {
		return
	}
	if w.streamStored && w.sw != nil {
		w.d.persist.CommitSync(w.sw)
	}
	for i, a := range w.streamAcks {
		_ = a.Ack() // lost, the message comes again: at least once
		w.streamAcks[i] = nil
	}
	w.streamAcks = w.streamAcks[:0]
	w.streamStored = false
}
