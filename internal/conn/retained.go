package conn

import (
	"github.com/shoalmq/shoal/router"
	"github.com/shoalmq/shoal/session"
)

// Retained messages on SUBSCRIBE [MQTT-3.3.1-8] go out at the pace the
// client takes them, not all at once: a filter can match more retained
// messages than the client's in-flight window, its session queue or its
// socket would hold, and none of those limits is a sign of a slow client
// here — the broker made the burst, not the publishers.
//
// So SUBSCRIBE takes a snapshot of the matching messages (Retained.Collect:
// one reference each, no copies; 8 bytes a message, as retained messages
// are in memory anyway) into a retainedCursor, and the cursor is drained
// like the session queue is:
//
//   - QoS 1/2 messages take free in-flight slots only, and only when no
//     live message waits in the session queue; a PUBACK, PUBCOMP or
//     refusing PUBREC that frees a slot sends the next (slotFreedLocked).
//   - Every message waits while the connection's unsent output is at
//     retainedBacklog or more; the loop calls OnDrained once it has gone
//     down (eventloop.Conn.NotifyDrained).
//
// Nothing from a cursor is queued in the session, counted against
// max_queued, dropped as a slow client's QoS 0 or taken for a slow
// consumer. Memory: a draining client holds its snapshots' lists (8 bytes
// per message matched, until its cursor is done; a "#" over a million
// retained messages is 8 MB), a reference to each message not yet sent
// (so a message the store replaces meanwhile lives on until the cursor
// passes it), and at most about retainedBacklog bytes of their output.
// Taking the snapshot walks the trie under its read lock on the loop, as
// sending all at once did.
//
// Ordering. The messages of one SUBSCRIBE follow its SUBACK, filter by
// filter, each filter's in the store's order. Live messages routed to the
// client meanwhile go out as they come (MQTT only orders retained messages
// after the SUBACK): a live QoS 0 message at once, a live QoS 1/2 message
// ahead of any retained one waiting for a slot. One ordering is kept on
// top: the client never gets an older retained message of topic T after a
// newer retained one of T that was published after the snapshot. Such a
// message supersedes the snapshot's copy in the store (Message.Superseded),
// and it reaches the client live — it matches the subscription, which was
// in the table before the snapshot was taken — so the cursor skips the
// stale copy. A live message published without RETAIN on T may arrive
// before T's retained copy; that copy carries RETAIN 1, which says it is
// the stored state and not news.
//
// What is not yet sent when the client goes (DISCONNECT, a lost
// connection, a takeover) is released, not kept: MQTT owes retained
// messages to the subscribing connection only. What was sent and not yet
// acknowledged is in flight in the session like any message, and resent on
// reconnect as such.

// retainedBacklog is how much unsent output a connection may have for its
// cursors to add more: about 64 messages of 1 KiB, or 2,000 of 30 bytes,
// per round. A round ends when the kernel takes no more; the loop wakes
// the cursor again when half of it has gone. Measured with 10,000
// retained 1 KiB messages to mosquitto_sub over loopback (3 runs of each
// QoS): 16 KiB and 64 KiB took the same time (65 to 90 ms at QoS 0, 140
// to 190 ms at QoS 1), 256 KiB was slower (80 to 117 ms, 234 to 238 ms);
// of the two, 64 KiB needs a quarter of the rounds, which counts with
// small messages. It is also what a stalled client costs in output.
const retainedBacklog = 64 << 10

// retainedCursor is one filter's retained messages still to send.
type retainedCursor struct {
	list   []*router.Message // the snapshot; list[next:] hold one reference each
	next   int
	filter string
	opts   router.Options // its Subscription Identifier goes with each message
}

// retainedQueue is a client's cursors, in SUBSCRIBE order.
type retainedQueue struct {
	cursors []retainedCursor
	// watching says NotifyDrained was asked and OnDrained has not come.
	watching bool
}

// hasRetained reports whether retained messages wait for the client.
func (c *client) hasRetained() bool { return c.ext != nil && len(c.ext.retained.cursors) > 0 }

// startRetained takes the snapshot of the retained messages matching
// filter for a subscription granted with o, replacing any cursor of the
// same filter — a subscription replaced sends its retained messages again
// [MQTT-3.8.4-3] — and reports whether there are any.
func (c *client) startRetained(ls *loopState, filter string, o router.Options) bool {
	list := c.h.retained.Collect(filter, ls.getSnapshot())
	if c.hasRetained() {
		c.dropRetained(ls, filter)
	}
	if len(list) == 0 {
		ls.putSnapshot(list)
		return false
	}
	cur := retainedCursor{list: list, filter: filter, opts: o}
	rq := &c.extra().retained
	rq.cursors = append(rq.cursors, cur)
	return true
}

// resubscribed gives a cursor of filter the options of the subscription
// that replaced its own without asking for retained messages again
// (Retain Handling 1 or 2): what it still sends goes out as that
// subscription says.
func (c *client) resubscribed(filter string, o router.Options) {
	rq := &c.ext.retained
	for i := range rq.cursors {
		if cur := &rq.cursors[i]; cur.filter == filter {
			cur.opts = o
		}
	}
}

// dropRetained drops the cursors of filter (UNSUBSCRIBE, or a new
// snapshot replacing one), or every cursor when filter is "" (the client
// is gone), releasing what they still hold.
func (c *client) dropRetained(ls *loopState, filter string) {
	if c.ext == nil {
		return
	}
	rq := &c.ext.retained
	keep := rq.cursors[:0]
	for i := range rq.cursors {
		cur := &rq.cursors[i]
		if filter != "" && cur.filter != filter {
			keep = append(keep, *cur)
			continue
		}
		for j := cur.next; j < len(cur.list); j++ {
			cur.list[j].Release()
			cur.list[j] = nil
		}
		ls.putSnapshot(cur.list)
	}
	clear(rq.cursors[len(keep):])
	rq.cursors = keep
	if len(keep) == 0 {
		rq.cursors = nil
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
// while the client's output is under retainedBacklog and, for QoS 1/2, its
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
	for len(rq.cursors) > 0 {
		cur := &rq.cursors[0]
		for ; cur.next < len(cur.list); cur.next++ {
			if c.conn.Backlog() >= retainedBacklog {
				if !rq.watching {
					rq.watching = true
					c.conn.NotifyDrained(retainedBacklog / 2)
				}
				return
			}
			m := cur.list[cur.next]
			d := session.Delivery{Msg: m, SubID: cur.opts.SubID, QoS: min(m.QoS, cur.opts.QoS), Retain: true} // [MQTT-3.3.1-8]
			var id uint16
			if d.QoS > 0 && !m.Superseded() && !m.Expired(now) {
				if s.QueueLen() > 0 || s.InflightLen() >= int(c.window) {
					return // live messages first; a freed slot brings the cursor back
				}
				var ok bool
				if id, ok = s.NextIDLocked(); !ok {
					return
				}
			}
			cur.list[cur.next] = nil // its reference goes with d
			c.sendRetainedLocked(ls, d, id, now)
		}
		ls.putSnapshot(cur.list)
		copy(rq.cursors, rq.cursors[1:])
		rq.cursors[len(rq.cursors)-1] = retainedCursor{}
		rq.cursors = rq.cursors[:len(rq.cursors)-1]
	}
	rq.cursors = nil
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

// maxPooledSnapshot bounds the snapshot lists a loop keeps for reuse: a
// "#" over a large store should not pin its list for ever.
const (
	maxPooledSnapshot  = 4096 // entries
	maxPooledSnapshots = 16   // lists per loop
)

// getSnapshot returns an empty list for Collect, reused if the loop has
// one: SUBSCRIBE bursts after a reconnect storm allocate little.
func (ls *loopState) getSnapshot() []*router.Message {
	if n := len(ls.snapshots); n > 0 {
		list := ls.snapshots[n-1]
		ls.snapshots[n-1] = nil
		ls.snapshots = ls.snapshots[:n-1]
		return list
	}
	return nil
}

// putSnapshot keeps a list whose references are all given back (every
// entry nil) for reuse.
func (ls *loopState) putSnapshot(list []*router.Message) {
	if cap(list) == 0 || cap(list) > maxPooledSnapshot || len(ls.snapshots) >= maxPooledSnapshots {
		return
	}
	ls.snapshots = append(ls.snapshots, list[:0])
}
