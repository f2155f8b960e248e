package dispatch

import (
	"slices"

	"github.com/shoalmq/shoal/eventloop"
)

// inlineInboxMax is how full any loop's inbox may be for a loop to route
// a message itself (RouteInline): routing on the loop posts to the other
// loops without waiting, so it is for when they keep up. Past it, messages
// go through the router workers, whose posts wait for room.
const inlineInboxMax = 4096

// MayRouteInline reports whether p's next message may be routed by its
// loop itself (RouteInline) rather than through its worker: none of p's
// earlier messages is still with a worker, p has not been sent to the
// workers for good (Publisher.viaWorkers), the routing mode allows it,
// and the message is not retained where setting a retained message may
// block (Config.RetainedBlocks). Call it on p's loop.
func (d *Dispatcher) MayRouteInline(p *Publisher, retain bool) bool {
	return !p.viaWorkers && p.routing.Load() == 0 && !(retain && d.retainedBlocks) && d.inlineAllowed()
}

// inlineAllowed reports whether the routing mode lets a loop route a
// message itself; the publisher's order decides the rest (see doc.go).
// Safe for concurrent use.
func (d *Dispatcher) inlineAllowed() bool {
	switch Routing(d.routing.Load()) {
	case RouteInline:
		return true
	case RouteWorkers:
		return false
	}
	return d.inlineRoom()
}

// inlineRoom reports whether every loop's inbox is below inlineInboxMax.
// Safe for concurrent use.
func (d *Dispatcher) inlineRoom() bool {
	for _, l := range d.loops {
		if l.queued.Load() >= inlineInboxMax {
			return false
		}
	}
	return true
}

// RouteInline routes j on event loop el, which received it, instead of
// through a router worker: no hand-off to a worker and back, so no
// goroutine wake-up and no loop wake-up for the loop's own subscribers.
// Deliveries to the loop's own connections go out at once; those for
// other loops and for offline sessions wait for FlushFan at the end of the
// event, so that an event's messages cost one store commit and one post
// per loop, as a worker's batch does. Measured at make bench's fixed rate
// (p2p QoS 1, 10,000 msg/s), the hand-offs were a third of the broker's
// system calls (perf stat: 3.3 writes and 1.6 epoll_waits per message,
// against 2 and 0.5 for the deliveries alone). The caller checked that
// j's publisher has nothing left with a worker (MayRouteInline), so
// nothing of its overtakes anything; the loop's own inbox is delivered
// first for the same reason. The acknowledgement is written after the
// deliveries, and leaves with the event's output, after FlushFan. A
// message that had to be stored, here or by the cluster (Receipt), sends
// its publisher through the workers from then on (Publisher.viaWorkers).
//
// It reports whether it stored anything. Loop goroutine only.
func (d *Dispatcher) RouteInline(el *eventloop.Loop, j Job) (stored bool) {
	l := d.loops[el.Index()]
	f := &l.fan
	stored = f.routeJob(d, &j)
	// Forwarded to another node that must store it first (Receipt): a
	// loop never waits for that. The acknowledgement goes to the
	// publisher's worker with the receipts, where a batch shares the
	// wait, and the publisher's next messages follow it there.
	forwarded := len(f.receipts) > 0
	if forwarded {
		d.handReceipts(l, &j)
	}
	j.Msg.Release()
	if (stored || forwarded) && j.From != nil {
		j.From.viaWorkers = true
	}
	own := l.index
	for i, batch := range f.perLoop {
		if i != own && len(batch) > 0 {
			l.fanPending = true
			break
		}
	}
	if len(f.offline) > 0 {
		l.fanPending = true
	}
	if mine := f.perLoop[own]; len(mine) > 0 {
		if l.queued.Load() > 0 {
			d.Drain(el)
		}
		now := el.Now()
		for i := range mine {
			d.deliverOnLoop(l, mine[i].sess, mine[i].d, now)
			mine[i] = item{}
		}
		l.FlushReleases()
		f.perLoop[own] = mine[:0]
	}
	if j.Ack != nil {
		// The acknowledgement of the publisher's previous message, which
		// a worker routed, may still be in the inbox: it goes first
		// [MQTT-4.6.0-2].
		if l.queued.Load() > 0 {
			d.Drain(el)
		}
		j.Ack.Acknowledge(j.AckType, j.AckID, stored) // synced first: the store has it
	}
	return stored
}

// handReceipts hands the receipts of j's message, which loop l routed,
// to its publisher's worker with j's acknowledgement (then taken from j),
// after what l routed so far is posted, as before any hand-off to a
// worker. A full worker queue leaves them to the loop, which then waits
// for them itself: rare, and bounded by the cluster's own time-outs.
func (d *Dispatcher) handReceipts(l *Loop, j *Job) {
	f := &l.fan
	rs := slices.Clone(f.receipts)
	clear(f.receipts)
	f.receipts = f.receipts[:0]
	l.fanPending = true // this message's deliveries to other loops, at least
	d.FlushFan(l)
	if d.Worker(j.Msg.FromID).Submit(Job{From: j.From, Ack: j.Ack, AckID: j.AckID, AckType: j.AckType, Receipts: rs}) {
		j.Ack = nil
		return
	}
	f.receipts = append(f.receipts, rs...)
	if f.confirm(nil) && j.Ack != nil {
		j.Ack.NotStored(j.AckType, j.AckID)
		j.Ack = nil
	}
}

// FlushFan hands on what RouteInline left for other loops and offline
// sessions on loop l: committed to the store first (another loop may
// complete and delete a delivery as soon as it has it), then posted. It
// runs before the loop's output is written, and before the loop gives a
// message to a worker, which must not overtake these. Loop goroutine only.
func (d *Dispatcher) FlushFan(l *Loop) {
	if !l.fanPending {
		return
	}
	l.fanPending = false
	f := &l.fan
	if f.sw != nil && f.sw.Dirty() {
		d.persist.Commit(f.sw)
	}
	for i, batch := range f.perLoop {
		if i != l.index && len(batch) > 0 {
			d.postAll(i, batch)
			f.perLoop[i] = batch[:0]
		}
	}
	f.handOffline(d)
}
