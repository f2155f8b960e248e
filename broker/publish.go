package broker

import (
	"time"
	"unsafe"

	"github.com/shoalmq/shoal/codec"
	"github.com/shoalmq/shoal/eventloop"
	"github.com/shoalmq/shoal/router"
	"github.com/shoalmq/shoal/session"
)

// onPublish handles a PUBLISH from the client [MQTT-3.3]: one copy into a
// pooled Message, the acknowledgement, and the hand-off to a router worker.
func (c *client) onPublish(ls *loopState, flags byte, body []byte) error {
	b := c.b
	lim := b.limits()
	if lim.PublishRate > 0 && !c.extra().pub.take(c.conn.Loop().Now(), lim.PublishRate, lim.PublishBurst) {
		// Over its rate: the client is not read until it has a token
		// again, so TCP slows it down and nothing is lost.
		b.stats.publishThrottled.Add(1)
		c.ext.wakeForToken(c.conn.Loop(), lim.PublishRate)
		return eventloop.ErrPause
	}
	p := &ls.publish
	if err := p.Decode(flags, body, c.version); err != nil {
		if err == codec.ErrPayloadFormat {
			// The packet is sound, only its payload isn't the UTF-8 it
			// claims: refuse this message and keep the connection (MQTT 5
			// section 3.3.2.3.2, reason 0x99).
			c.ackRefused(p, codec.PayloadFormatInvalid)
			return nil
		}
		return err
	}
	ls.ctr.pubIn[p.QoS]++
	if p.QoS > b.cfg.MaxQoS {
		return errQoSNotSupported // MQTT 5 section 3.2.2.3.4
	}
	if p.Retain && !b.cfg.RetainAvailable {
		return errRetainNotSupported // [MQTT-3.2.2-14]
	}
	topic := p.Topic
	if c.version == codec.V5 && p.Props.Has(codec.PropTopicAlias) {
		t, err := c.resolveAlias(p.Props.TopicAlias, topic)
		if err != nil {
			return err
		}
		topic = t
	}
	if isSys(topic) {
		// The broker's own: clients may read, not write. MQTT 5 clients
		// hear 0x87; 3.x ones are acknowledged and dropped.
		b.stats.dropsUnauthorized.Add(1)
		c.ackRefused(p, codec.NotAuthorized)
		return nil
	}
	if topicOverLimit(topic, lim) {
		b.stats.dropsTopicLimit.Add(1)
		if c.version < codec.V5 {
			return errTopicLimit.because("%s", topicRule("topic", topic, lim)) // 3.x has no way to refuse one message
		}
		c.ackRefused(p, codec.TopicNameInvalid)
		return nil
	}
	if e := c.ext; e != nil && e.perms != nil && !e.perms.CanPublish(topic) {
		// MQTT 5 clients hear 0x87; 3.x ones are acknowledged and the
		// message dropped, as MQTT 3.1.1 section 3.3.5 allows.
		b.stats.dropsUnauthorized.Add(1)
		c.ackRefused(p, codec.NotAuthorized)
		return nil
	}
	if max := b.cfg.MaxMessageSize; max > 0 && len(p.Payload) > max {
		// Refused alone, the connection kept: 0x83 is the code a PUBACK
		// or PUBREC may carry for it (MQTT 5 section 3.4.2.1).
		b.stats.dropsTooLarge.Add(1)
		c.ackRefused(p, codec.ImplementationSpecific)
		return nil
	}
	s := c.sess

	// A QoS 2 PUBLISH whose id awaits PUBREL is a resend: acknowledge it
	// again, but don't deliver it twice [MQTT-4.3.3-10].
	if p.QoS == 2 {
		s.Lock()
		owns := c.ownsLocked()
		dup := s.AwaitingRelLocked(p.PacketID)
		full := s.AwaitRelCountLocked() >= int(b.cfg.ReceiveMaximum)
		s.Unlock()
		switch {
		case !owns:
			return errSuperseded
		case dup:
			return c.pubrecAgain(ls, p.PacketID)
		case full:
			// MQTT 5: 0x93 [MQTT-3.3.4-7]. MQTT 3.x has no Receive Maximum
			// but the same bound keeps one client from holding 65,535 ids
			// (each PUBLISH would scan them); it is closed.
			return errReceiveMaximum
		}
	}

	// Inline when the publisher's order allows it (doc.go, "Two paths, one
	// order"); the worker, picked by a hash of the client id, only when not.
	inline := !c.viaWorkers && c.routing.Load() == 0 && b.inlineAllowed()
	var w *worker
	if !inline {
		w = b.worker(c.id()) // by client id: one publisher's messages stay in order
	}
	if !inline && p.QoS == 0 && w.full() {
		// At most once, and the router has no room: drop it before paying
		// for the copy.
		b.stats.dropsWorkerFull.Add(1)
		return nil
	}
	var expiry int64
	if p.Props.Has(codec.PropMessageExpiry) {
		expiry = c.conn.Loop().Now() + int64(p.Props.MessageExpiry)*int64(time.Second)
	}
	var fwd []byte
	if c.version == codec.V5 && p.Props.Present != 0 {
		fwd = p.Props.ForwardProps(ls.props[:0])
		ls.props = fwd
	}
	m := router.NewMessage(topic, p.Payload, fwd, c.id(), p.QoS, p.Retain, expiry, s)
	j := job{m: m, from: c}
	switch p.QoS {
	case 1:
		j.ack, j.ackID, j.ackT = c, p.PacketID, codec.PUBACK // [MQTT-4.3.2-2]
	case 2:
		j.ack, j.ackID, j.ackT = c, p.PacketID, codec.PUBREC // [MQTT-4.3.3-8]
	}
	if inline {
		if p.QoS == 2 {
			c.awaitRel(ls, p.PacketID)
		}
		if b.routeInline(c.conn.Loop(), ls, j) {
			c.viaWorkers = true
		}
		return nil
	}
	b.flushFan(ls, c.LoopIndex()) // what this loop routed goes first
	c.routing.Add(1)
	if !w.submit(j) {
		c.routing.Add(-1)
		m.Release()
		if p.QoS == 0 {
			b.stats.dropsWorkerFull.Add(1) // QoS 0 is at most once: drop
			return nil
		}
		// Not acknowledged and not consumed: the frame stays in the
		// connection's buffer and is tried again shortly, in order. The
		// publisher's own in-flight window stops it from sending more.
		b.stats.publishPauses.Add(1)
		return eventloop.ErrPause
	}
	if p.QoS == 2 {
		c.awaitRel(ls, p.PacketID)
	}
	return nil
}

// awaitRel records inbound QoS 2 packet id id as received: until PUBREL, a
// PUBLISH with it is a resend [MQTT-4.3.3-10]. It is durable before PUBREC
// goes out, so that a resend after a restart is still known as one.
func (c *client) awaitRel(ls *loopState, id uint16) {
	s := c.sess
	s.Lock()
	if c.ownsLocked() {
		s.AddAwaitRelLocked(id)
		if ls.sw != nil && s.Persistent() {
			ls.sw.PutAwaitRel(s.ClientID(), id)
			ls.needSync = true
		}
	}
	s.Unlock()
}

// pubrecAgain answers a resent QoS 2 PUBLISH whose first copy was taken.
// That copy may still wait in a router worker: the PUBREC then goes through
// the same worker, behind it, so that it never comes before the message is
// routed (and stored). Otherwise it is written at once — synced first, as
// the first copy's PUBREC may still be on its way through the inbox.
func (c *client) pubrecAgain(ls *loopState, id uint16) error {
	if c.routing.Load() > 0 {
		c.routing.Add(1)
		if !c.b.worker(c.id()).submit(job{from: c, ack: c, ackID: id, ackT: codec.PUBREC}) {
			c.routing.Add(-1)
			c.b.stats.publishPauses.Add(1)
			return eventloop.ErrPause
		}
		return nil
	}
	ls.needSync = ls.needSync || ls.sw != nil
	buf := c.conn.Buffer()
	buf.B = codec.AppendAck(buf.B, codec.PUBREC, id, codec.Success, c.version)
	return nil
}

// writeAck writes an acknowledgement packet with reason code code.
func (c *client) writeAck(t codec.Type, id uint16, code codec.ReasonCode) {
	buf := c.conn.Buffer()
	buf.B = codec.AppendAck(buf.B, t, id, code, c.version)
}

// sendAck acknowledges a routed PUBLISH, if the connection it came on is
// still there; otherwise the client sends it again after reconnecting.
func (c *client) sendAck(t codec.Type, id uint16) {
	if c.state != stateConnected || c.conn.Closing() {
		return
	}
	buf := c.conn.Buffer()
	buf.B = codec.AppendAck(buf.B, t, id, codec.Success, c.version)
}

// ackRefused answers a PUBLISH the broker won't take with a failure reason
// code in PUBACK or PUBREC (QoS 1/2); a QoS 0 message is dropped.
func (c *client) ackRefused(p *codec.Publish, code codec.ReasonCode) {
	t := codec.PUBACK
	switch p.QoS {
	case 0:
		return
	case 2:
		t = codec.PUBREC
	}
	buf := c.conn.Buffer()
	buf.B = codec.AppendAck(buf.B, t, p.PacketID, code, c.version)
}

// resolveAlias applies an MQTT 5 Topic Alias [MQTT-3.3.2.3.4]: a topic with
// an alias sets it, an empty topic uses it.
func (c *client) resolveAlias(alias uint16, topic []byte) ([]byte, error) {
	max := c.b.cfg.TopicAliasMaximum
	if alias == 0 || alias > max {
		return nil, errAliasInvalid // [MQTT-3.3.2-9]
	}
	e := c.extra()
	if len(topic) > 0 {
		if e.aliases == nil {
			e.aliases = make([]string, int(max)+1) // int: max may be 65535
		}
		if e.aliases[alias] != string(topic) {
			e.aliases[alias] = string(topic)
		}
		return topic, nil
	}
	if e.aliases == nil || e.aliases[alias] == "" {
		return nil, errAliasUnknown
	}
	t := e.aliases[alias]
	return unsafe.Slice(unsafe.StringData(t), len(t)), nil
}

// onAck handles PUBACK, PUBREC, PUBREL and PUBCOMP from the client.
func (c *client) onAck(ls *loopState, t codec.Type, body []byte) error {
	a := &ls.ack
	if err := a.Decode(t, body, c.version); err != nil {
		return err
	}
	s := c.sess
	now := c.conn.Loop().Now()
	s.Lock()
	defer s.Unlock()
	if !c.ownsLocked() {
		return errSuperseded
	}
	switch t {
	case codec.PUBACK:
		// An unknown id is ignored: it may be a late answer to a message
		// the session has since dropped.
		if seq, ok := s.PubackLocked(a.PacketID); ok {
			forget(ls.sw, s, seq)
			c.slotFreedLocked(ls, now)
		}
	case codec.PUBREC:
		if seq, ok := s.PubrecLocked(a.PacketID, a.Code.IsError(), now); ok {
			if !a.Code.IsError() {
				if seq != 0 && ls.sw != nil {
					// Once PUBREL is out, resending the PUBLISH would be a
					// second delivery: the store must know first.
					ls.sw.MarkSent(s.ClientID(), seq, a.PacketID, session.AwaitPubcomp)
					ls.needSync = true
				}
				c.writeAck(codec.PUBREL, a.PacketID, codec.Success) // [MQTT-4.3.3-4]
			} else {
				forget(ls.sw, s, seq)
				c.slotFreedLocked(ls, now)
			}
		} else if c.version == codec.V5 {
			c.writeAck(codec.PUBREL, a.PacketID, codec.PacketIDNotFound)
		}
	case codec.PUBREL:
		code := codec.Success
		if !s.ReleaseLocked(a.PacketID) {
			code = codec.PacketIDNotFound // still answer, so the client can finish [MQTT-4.3.3-11]
		} else if ls.sw != nil && s.Persistent() {
			ls.sw.DeleteAwaitRel(s.ClientID(), a.PacketID)
		}
		c.writeAck(codec.PUBCOMP, a.PacketID, code)
	case codec.PUBCOMP:
		if seq, ok := s.PubcompLocked(a.PacketID); ok {
			forget(ls.sw, s, seq)
			c.slotFreedLocked(ls, now)
		}
	}
	return nil
}

// sendLocked puts one delivery on the wire, or queues it when the in-flight
// window is full. It takes over d's reference. c.sess.mu must be held.
func (c *client) sendLocked(ls *loopState, d session.Delivery, now int64) {
	b := c.b
	s := c.sess
	m := d.Msg
	if m.Expired(now) {
		b.stats.dropsExpired.Add(1) // [MQTT-3.3.2-5]
		forget(ls.sw, s, d.Seq)
		ls.release(m)
		return
	}
	if d.QoS == 0 {
		if c.conn.Backlog() > slowClientBytes {
			b.stats.dropsSlowClient.Add(1)
		} else {
			c.writePublish(ls, &d, 0, false, now)
		}
		ls.release(m)
		return
	}
	if s.QueueLen() > 0 || s.InflightLen() >= int(c.window) {
		c.enqueueLocked(ls, d)
		return
	}
	id, ok := s.NextIDLocked()
	if !ok {
		c.enqueueLocked(ls, d)
		return
	}
	if !c.writePublish(ls, &d, id, false, now) {
		forget(ls.sw, s, d.Seq)
		d.Release() // too large for the client: dropped as if delivered [MQTT-3.1.2-25]
		return
	}
	c.pushInflightLocked(ls, d, id, now)
}

// pushInflightLocked records d as sent with packet id id, in the session
// and, for a stored delivery, in the store: a QoS 2 message must be resent
// with the same id after a restart, or the client would take it for a new
// one [MQTT-4.4.0-1]. c.sess.mu must be held.
func (c *client) pushInflightLocked(ls *loopState, d session.Delivery, id uint16, now int64) {
	if d.Seq != 0 && ls.sw != nil {
		st := session.AwaitPuback
		if d.QoS == 2 {
			st = session.AwaitPubrec
			ls.needSync = true // before the PUBLISH goes out
		}
		ls.sw.MarkSent(c.sess.ClientID(), d.Seq, id, st)
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
	b := c.b
	if !b.enqueueLocked(ls.sw, c.sess, d) {
		return
	}
	if c.ext != nil && c.ext.internal {
		return // a bridge's queue is its buffer while its remote is down
	}
	if lim := b.limits(); lim.SlowConsumer == DisconnectSlow && c.state == stateConnected && !c.conn.Closing() {
		b.stats.slowConsumerKicks.Add(1)
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
		c.b.stats.dropsUnauthorized.Add(1)
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
			c.b.stats.dropsTooLarge.Add(1)
			return false
		}
		if c.ext != nil && c.ext.outMax > 0 {
			c.ext.aliasTopic(o)
		}
	}
	// A delivery, which the client did not just ask for: it may wait a
	// little to go out with the next ones (coalesce).
	buf := c.conn.PushBuffer()
	buf.B = o.Append(buf.B, c.version)
	ls.ctr.pubOut[d.QoS]++
	return true
}

// drainQueueLocked sends queued messages while the in-flight window has
// room. c.sess.mu must be held.
func (c *client) drainQueueLocked(ls *loopState, now int64) {
	s := c.sess
	for s.QueueLen() > 0 && s.InflightLen() < int(c.window) {
		d, _ := s.DequeueLocked()
		if d.Msg.Expired(now) {
			c.b.stats.dropsExpired.Add(1)
			forget(ls.sw, s, d.Seq)
			d.Release()
			continue
		}
		id, ok := s.NextIDLocked()
		if !ok {
			c.enqueueLocked(ls, d)
			return
		}
		if !c.writePublish(ls, &d, id, false, now) {
			forget(ls.sw, s, d.Seq)
			d.Release()
			continue
		}
		c.pushInflightLocked(ls, d, id, now)
	}
}

// resendLocked resends everything in flight, in order, as a resumed session
// requires [MQTT-4.4.0-1]: PUBLISH with DUP [MQTT-3.3.1-1], or PUBREL
// where the PUBREC already came [MQTT-4.4.0-1]. c.sess.mu must be held.
func (c *client) resendLocked(now int64) {
	ls := c.b.loops[c.conn.Loop().Index()]
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
	ls := c.b.loops[c.conn.Loop().Index()]
	limit := int64(c.b.limits().RetryInterval)
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

// aliasTopic replaces o's topic with an outbound Topic Alias when it has
// one, or assigns one while fewer than outMax are in use; the first PUBLISH
// with a new alias carries both [MQTT-3.3.2-12]. Aliases last as long as
// the connection [MQTT-3.3.2-11].
func (e *clientExt) aliasTopic(o *codec.Outgoing) {
	if a, ok := e.outAliases[string(o.Topic)]; ok {
		o.TopicAlias, o.Topic = a, nil
		return
	}
	if len(e.outAliases) >= int(e.outMax) {
		return
	}
	if e.outAliases == nil {
		e.outAliases = make(map[string]uint16)
	}
	a := uint16(len(e.outAliases) + 1)
	e.outAliases[string(o.Topic)] = a
	o.TopicAlias = a
}
