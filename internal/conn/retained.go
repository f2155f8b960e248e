package conn

import (
	"github.com/shoalmq/shoal/internal/retained"
	"github.com/shoalmq/shoal/router"
	"github.com/shoalmq/shoal/session"
)

// Retained messages on SUBSCRIBE [MQTT-3.3.1-8] go out at the pace the
// client takes them (package retained says how and why): from the
// client's retained.Queue, as its in-flight window and its socket allow.

// hasRetained reports whether retained messages wait for the client.
func (c *client) hasRetained() bool { return c.ext != nil && c.ext.retained.Len() > 0 }

// startRetained takes the snapshot of the retained messages matching
// filter for a subscription granted with o, replacing any cursor of the
// same filter, and reports whether there are any.
func (c *client) startRetained(ls *loopState, filter string, o router.Options) bool {
	list := c.h.retained.Collect(filter, ls.snapshots.Get())
	if len(list) == 0 && !c.hasRetained() {
		ls.snapshots.Put(list)
		return false
	}
	return c.extra().retained.Replace(&ls.snapshots, filter, list, o)
}

// awaitRetained holds reqs until the Barrier lets them read the retained
// messages: a note brings the client back to retainedReady.
func (c *client) awaitRetained(reqs []retained.Req) {
	w := c.extra().behind.Add(reqs)
	h := c.h
	h.barrier.After(func() {
		w.Done()
		h.disp.Notify(c, noteRetained)
	})
}

// retainedReady starts the retained messages of the SUBSCRIBEs whose wait
// is over, in the order they came, as a SUBSCRIBE without a wait does.
// On the client's loop.
func (c *client) retainedReady() {
	if c.ext == nil {
		return
	}
	ls := c.h.loops[c.conn.Loop().Index()]
	live := c.state == stateConnected && !c.conn.Closing() // owed to this connection only
	started := false
	c.ext.behind.Ready(func(r retained.Req) {
		started = live && c.startRetained(ls, r.Filter, r.Opts) || started
	})
	if started {
		c.pumpRetained(ls)
	}
}

// dropRetained drops the cursors of filter, or every cursor when filter
// is "" (retained.Queue.Drop).
func (c *client) dropRetained(ls *loopState, filter string) {
	if c.ext != nil {
		c.ext.retained.Drop(&ls.snapshots, filter)
	}
}

// pumpRetained sends what the client can take now from its cursors.
func (c *client) pumpRetained(ls *loopState) {
	s := c.sess
	s.Lock()
	c.pumpRetainedLocked(ls, c.conn.Loop().Now())
	s.Unlock()
}

// pumpRetainedLocked sends retained messages from the cursors, in order,
// while the client's output is under retained.Backlog and, for QoS 1/2, its
// in-flight window has a slot no queued live message wants. It stops for
// a full window (a freed slot calls it again) or a full backlog (OnDrained
// does). A client no longer connected, or no longer owning its session,
// drops its cursors. c.sess.mu must be held.
func (c *client) pumpRetainedLocked(ls *loopState, now int64) {
	if !c.hasRetained() {
		return
	}
	if c.state != stateConnected || c.conn.Closing() || !c.ownsLocked() {
		c.dropRetained(ls, "")
		return
	}
	s := c.sess
	rq := &c.ext.retained
	for {
		m, o, ok := rq.Peek(&ls.snapshots)
		if !ok {
			return
		}
		if c.conn.Backlog() >= retained.Backlog {
			if !rq.Watching {
				rq.Watching = true
				c.conn.NotifyDrained(retained.Backlog / 2)
			}
			return
		}
		d := session.Delivery{Msg: m, SubID: o.SubID, QoS: min(m.QoS, o.QoS), Retain: true} // [MQTT-3.3.1-8]
		var id uint16
		if d.QoS > 0 && !m.Superseded() && !m.Expired(now) {
			if s.QueueLen() > 0 || s.InflightLen() >= int(c.window) {
				return // live messages first; a freed slot brings the cursor back
			}
			if id, ok = s.NextIDLocked(); !ok {
				return
			}
		}
		rq.Take() // its reference goes with d
		c.sendRetainedLocked(ls, d, id, now)
	}
}

// sendRetainedLocked writes one retained message from a cursor with packet
// id id (QoS 1/2), taking over d's reference. A message the store has
// replaced or cleared since the snapshot is skipped: its successor went to
// the client live. c.sess.mu must be held.
func (c *client) sendRetainedLocked(ls *loopState, d session.Delivery, id uint16, now int64) {
	m := d.Msg
	switch {
	case m.Superseded():
		m.Release()
	case m.Expired(now):
		c.h.stats.DropsExpired.Add(1) // [MQTT-3.3.2-5]
		m.Release()
	case !c.writePublish(ls, &d, id, false, now) || d.QoS == 0:
		// QoS 0 is done once written; a message the client may not read
		// or that is too large for it is dropped as if delivered
		// [MQTT-3.1.2-25].
		m.Release()
	default:
		c.pushInflightLocked(ls, d, id, now) // not stored: Seq is 0
	}
}

// slotFreedLocked runs when an acknowledgement ends an in-flight delivery:
// the session queue's live messages take the free slots first, then the
// retained cursors. c.sess.mu must be held.
func (c *client) slotFreedLocked(ls *loopState, now int64) {
	c.drainQueueLocked(ls, now)
	c.pumpRetainedLocked(ls, now)
}
