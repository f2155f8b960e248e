package conn

import (
	"time"

	"github.com/shoalmq/shoal/codec"
	"github.com/shoalmq/shoal/internal/persist"
	"github.com/shoalmq/shoal/session"
)

// Egress: messages to the client. A delivery goes out at once while the
// client's in-flight window (its Receive Maximum, at most max_inflight)
// has room, and waits in its session's queue otherwise; each
// acknowledgement that frees a slot sends the next (slotFreedLocked). What
// is stored gets its packet id recorded before the PUBLISH goes out
// (pushInflightLocked). A resumed session resends what was in flight, in
// order [MQTT-4.4.0-1].

// DeliverLocked implements session.Owner: it sends d now, or queues it
// behind the in-flight window; false when the connection is no longer
// connected or is closing. c.sess.mu must be held.
func (c *client) DeliverLocked(d session.Delivery, now int64) bool {
	if c.state != stateConnected || c.conn.Closing() {
		return false
	}
	c.sendLocked(c.h.loops[c.LoopIndex()], d, now)
	return true
}

// sendLocked puts one delivery on the wire, or queues it when the in-flight
// window is full. It takes over d's reference. c.sess.mu must be held.
func (c *client) sendLocked(ls *loopState, d session.Delivery, now int64) {
	h := c.h
	s := c.sess
	m := d.Msg
	if m.Expired(now) {
		h.stats.DropsExpired.Add(1) // [MQTT-3.3.2-5]
		persist.Forget(ls.persist.W, s, d.Seq)
		ls.d.Release(m)
		return
	}
	if d.QoS == 0 {
		if c.conn.Backlog() > slowClientBytes {
			h.stats.DropsSlowClient.Add(1)
		} else {
			c.writePublish(ls, &d, 0, false, now)
		}
		ls.d.Release(m)
		return
	}
	if s.QueueLen() > 0 || s.InflightLen() >= int(c.window) || !h.gate.Serving() {
		// Behind the window — or held on a node that does not serve,
		// which may hold a session the cluster moved (drainQueueLocked).
		c.enqueueLocked(ls, d)
		return
	}
	c.sendInflightLocked(ls, d, now)
}

// sendInflightLocked writes a QoS 1/2 delivery with a free packet id and
// records it in flight; with no id free it queues d, and it reports
// false. A delivery too large for the client is dropped as if delivered
// [MQTT-3.1.2-25]. It takes over d's reference. c.sess.mu must be held.
func (c *client) sendInflightLocked(ls *loopState, d session.Delivery, now int64) bool {
	s := c.sess
	id, ok := s.NextIDLocked()
	if !ok {
		c.enqueueLocked(ls, d)
		return false
	}
	if !c.writePublish(ls, &d, id, false, now) {
		persist.Forget(ls.persist.W, s, d.Seq)
		d.Release()
		return true
	}
	c.pushInflightLocked(ls, d, id, now)
	return true
}

// pushInflightLocked records d as sent with packet id id, in the session
// and, for a stored delivery, in the store: a QoS 2 message must be resent
// with the same id after a restart, or the client would take it for a new
// one [MQTT-4.4.0-1]. c.sess.mu must be held.
func (c *client) pushInflightLocked(ls *loopState, d session.Delivery, id uint16, now int64) {
	if d.Seq != 0 && ls.persist.W != nil {
		st := session.AwaitPuback
		if d.QoS == 2 {
			st = session.AwaitPubrec
			c.needSync(ls) // before the PUBLISH goes out
		}
		ls.persist.W.MarkSent(c.sess.ClientID(), d.Seq, id, st)
	}
	c.sess.PushInflightLocked(d, id, now)
}

// slowClientBytes is how much unsent output a connection may have before
// QoS 0 messages to it are dropped: 4 MiB absorbs bursts of a fast fan-out
// while bounding a stalled subscriber's cost.
const slowClientBytes = 4 << 20

// enqueueLocked queues d behind the client's full in-flight window. A full
// queue means the client takes messages slower than they come: the
// slow-consumer policy decides whether it stays connected. c.sess.mu must
// be held.
func (c *client) enqueueLocked(ls *loopState, d session.Delivery) {
	h := c.h
	if !h.disp.EnqueueLocked(ls.persist.W, c.sess, d) {
		return
	}
	if c.ext != nil && c.ext.internal {
		return // a bridge's queue is its buffer while its remote is down
	}
	if lim := h.limits(); lim.DisconnectSlow && c.state == stateConnected && !c.conn.Closing() {
		h.stats.SlowConsumerKicks.Add(1)
		c.closeWith(0, errSlowConsumer)
	}
}

// writePublish encodes a PUBLISH for d with packet id id. It reports false
// when the packet exceeds the client's Maximum Packet Size and was not
// written.
func (c *client) writePublish(ls *loopState, d *session.Delivery, id uint16, dup bool, now int64) bool {
	m := d.Msg
	if e := c.ext; e != nil && e.checkRead && !e.perms.CanReceive(m.Topic) {
		// A topic its subscription covers but its rights do not. A resend
		// (dup) not sent keeps its in-flight slot unacknowledged: it was
		// sent under other rights, to a session another client resumed.
		c.h.stats.DropsUnauthorized.Add(1)
		return false
	}
	o := &ls.out
	*o = codec.Outgoing{
		Topic:    m.Topic,
		Payload:  m.Payload,
		PacketID: id,
		QoS:      d.QoS,
		Retain:   d.Retain,
		Dup:      dup,
	}
	if c.version == codec.V5 {
		o.RawProps = m.Props
		o.SubIDs = d.IDs(&ls.ids)
		if m.Expiry != 0 {
			o.HasExpiry = true
			left := (m.Expiry - now + int64(time.Second) - 1) / int64(time.Second) // [MQTT-3.3.2-6]
			o.Expiry = uint32(max(left, 1))
		}
		// Judged with the full topic, and before an alias is assigned: a
		// message not sent must not leave an alias the client never saw.
		if c.ext != nil && c.ext.maxOut != 0 && o.Size(codec.V5) > int(c.ext.maxOut) {
			c.h.stats.DropsTooLarge.Add(1)
			return false
		}
		if c.ext != nil && c.ext.aliasOut.Max > 0 {
			c.ext.aliasOut.Apply(o)
		}
	}
	// A delivery, which the client did not just ask for: it may wait a
	// little to go out with the next ones (coalesce).
	buf := c.conn.PushBuffer()
	buf.B = o.Append(buf.B, c.version)
	ls.ctr.PubOut[d.QoS]++
	return true
}

// drainQueueLocked sends queued messages while the in-flight window has
// room, on a node that serves (admit.Gate.Serving). c.sess.mu must be
// held.
func (c *client) drainQueueLocked(ls *loopState, now int64) {
	if !c.h.gate.Serving() {
		// A node cut off from its cluster, or back and not yet settled,
		// may hold a session the cluster moved: what is queued waits.
		return
	}
	s := c.sess
	for s.QueueLen() > 0 && s.InflightLen() < int(c.window) {
		d, _ := s.DequeueLocked()
		if d.Msg.Expired(now) {
			c.h.stats.DropsExpired.Add(1)
			persist.Forget(ls.persist.W, s, d.Seq)
			d.Release()
			continue
		}
		if !c.sendInflightLocked(ls, d, now) {
			return
		}
	}
}

// resendLocked resends everything in flight, in order, as a resumed session
// requires [MQTT-4.4.0-1]: PUBLISH with DUP [MQTT-3.3.1-1], or PUBREL
// where the PUBREC already came [MQTT-4.4.0-1]. c.sess.mu must be held.
func (c *client) resendLocked(now int64) {
	ls := c.h.loops[c.conn.Loop().Index()]
	inf := c.sess.InflightLocked()
	for i := range inf {
		c.resendOne(ls, &inf[i], now)
	}
}

func (c *client) resendOne(ls *loopState, e *session.Inflight, now int64) {
	e.Sent = now
	if e.State == session.AwaitPubcomp {
		buf := c.conn.Buffer()
		buf.B = codec.AppendAck(buf.B, codec.PUBREL, e.ID, codec.Success, c.version)
		return
	}
	c.writePublish(ls, &e.Delivery, e.ID, true, now)
}

// retry resends in-flight messages unacknowledged for RetryInterval to a
// connected MQTT 3.x client. MQTT 5 allows resending only on reconnect
// [MQTT-4.4.0-1], so it never runs for v5.
func (c *client) retry(now int64) {
	s := c.sess
	ls := c.h.loops[c.conn.Loop().Index()]
	limit := int64(c.h.limits().RetryInterval)
	s.Lock()
	if !c.ownsLocked() {
		s.Unlock()
		return
	}
	inf := s.InflightLocked()
	for i := range inf {
		if now-inf[i].Sent >= limit {
			c.resendOne(ls, &inf[i], now)
		}
	}
	s.Unlock()
}
