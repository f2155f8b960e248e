package dispatch

import "github.com/shoalmq/shoal/router"

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
func (w *Worker) do(j Job) {
	stored := w.sw != nil // an acknowledgement alone: of a stored message
	if j.Msg != nil {
		stored = w.routeJob(w.d, &j)
		j.Msg.Release()
	}
	if j.From != nil {
		w.done = append(w.done, j.From)
	}
	if j.Ack != nil {
		li := j.Ack.LoopIndex()
		w.perLoop[li] = append(w.perLoop[li], item{to: j.Ack, ackID: j.AckID, ackT: j.AckType, ackSync: stored})
	}
}

// Route routes m with the worker's scratch and stops there, as the worker
// does in the middle of a batch: nothing committed, nothing posted (Post
// ends the batch). For tests, on a worker nobody else uses meanwhile; the
// caller keeps its reference to m.
func (w *Worker) Route(m *router.Message) { w.route(w.d, m, false) }

// Post hands the deliveries gathered so far to their loops: one inbox
// append and one wake-up per loop. What the worker stored is committed
// first, so that the loops' syncs and deletes come after it. Worker
// goroutine only (tests: see Route).
func (w *Worker) Post() {
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
	for i, p := range w.done {
		p.routing.Add(-1) // its deliveries are in the inboxes now
		w.done[i] = nil
	}
	w.done = w.done[:0]
}
