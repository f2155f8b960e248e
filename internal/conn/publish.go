package conn

import (
	"time"

	"github.com/shoalmq/shoal/codec"
	"github.com/shoalmq/shoal/eventloop"
	"github.com/shoalmq/shoal/internal/dispatch"
	"github.com/shoalmq/shoal/internal/limit"
	"github.com/shoalmq/shoal/internal/persist"
	"github.com/shoalmq/shoal/internal/sys"
	"github.com/shoalmq/shoal/router"
	"github.com/shoalmq/shoal/session"
)

// onPublish handles a PUBLISH from the client [MQTT-3.3]: one copy into a
// pooled Message, the acknowledgement, and the hand-off to a router worker.
func (c *client) onPublish(ls *loopState, flags byte, body []byte) error {
	h := c.h
	lim := h.limits()
	if lim.PublishRate > 0 && !c.extra().pub.Take(c.conn.Loop().Now(), lim.PublishRate, lim.PublishBurst, c.conn.Loop()) {
		// Over its rate: the client is not read until it has a token
		// again, so TCP slows it down and nothing is lost.
		h.stats.PublishThrottled.Add(1)
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
	ls.ctr.PubIn[p.QoS]++
	if p.QoS > h.cfg.MaxQoS {
		return errQoSNotSupported // MQTT 5 section 3.2.2.3.4
	}
	if p.Retain && !h.cfg.RetainAvailable {
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
	if sys.Own(topic) {
		// The broker's own: clients may read, not write. MQTT 5 clients
		// hear 0x87; 3.x ones are acknowledged and dropped.
		h.stats.DropsUnauthorized.Add(1)
		c.ackRefused(p, codec.NotAuthorized)
		return nil
	}
	if limit.TopicOver(topic, lim) {
		h.stats.DropsTopicLimit.Add(1)
		if c.version < codec.V5 {
			return errTopicLimit.Because("%s", limit.TopicRule("topic", topic, lim)) // 3.x has no way to refuse one message
		}
		c.ackRefused(p, codec.TopicNameInvalid)
		return nil
	}
	if e := c.ext; e != nil && e.perms != nil && !e.perms.CanPublish(topic) {
		// MQTT 5 clients hear 0x87; 3.x ones are acknowledged and the
		// message dropped, as MQTT 3.1.1 section 3.3.5 allows.
		h.stats.DropsUnauthorized.Add(1)
		c.ackRefused(p, codec.NotAuthorized)
		return nil
	}
	if max := h.cfg.MaxMessageSize; max > 0 && len(p.Payload) > max {
		// Refused alone, the connection kept: 0x83 is the code a PUBACK
		// or PUBREC may carry for it (MQTT 5 section 3.4.2.1).
		h.stats.DropsTooLarge.Add(1)
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
		full := s.AwaitRelCountLocked() >= int(h.cfg.ReceiveMaximum)
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
	if p.QoS > 0 && !h.gate.Serving() {
		// Cut off from the cluster's majority, which alone can store it
		// with its replication: refused as a message the cluster did not
		// store (NotStored) is.
		h.stats.DropsNotStored.Add(1)
		if c.version < codec.V5 {
			return errNotStored
		}
		c.ackRefused(p, codec.UnspecifiedError)
		return nil
	}

	// Inline when the publisher's order allows it (package dispatch, "Two
	// paths, one order"); the worker, picked by a hash of the client id,
	// only when not.
	inline := h.disp.MayRouteInline(&c.pub, p.Retain)
	var w *dispatch.Worker
	if !inline {
		w = h.disp.Worker(c.id()) // by client id: one publisher's messages stay in order
	}
	if !inline && p.QoS == 0 && w.Full() {
		// At most once, and the router has no room: drop it before paying
		// for the copy.
		h.stats.DropsWorkerFull.Add(1)
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
	j := dispatch.Job{Msg: m, From: &c.pub}
	switch p.QoS {
	case 1:
		j.Ack, j.AckID, j.AckType = c, p.PacketID, codec.PUBACK // [MQTT-4.3.2-2]
	case 2:
		j.Ack, j.AckID, j.AckType = c, p.PacketID, codec.PUBREC // [MQTT-4.3.3-8]
	}
	if inline {
		if p.QoS == 2 {
			c.awaitRel(ls, p.PacketID)
		}
		h.disp.RouteInline(c.conn.Loop(), j)
		return nil
	}
	h.disp.FlushFan(ls.d) // what this loop routed goes first
	if !w.Submit(j) {
		m.Release()
		if p.QoS == 0 {
			h.stats.DropsWorkerFull.Add(1) // QoS 0 is at most once: drop
			return nil
		}
		// Not acknowledged and not consumed: the frame stays in the
		// connection's buffer and is tried again shortly, in order. The
		// publisher's own in-flight window stops it from sending more.
		h.stats.PublishPauses.Add(1)
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
		if ls.persist.W != nil && s.Persistent() {
			ls.persist.W.PutAwaitRel(s.ClientID(), id)
			c.needSync(ls)
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
	if c.pub.Busy() {
		if !c.h.disp.Worker(c.id()).Submit(dispatch.Job{From: &c.pub, Ack: c, AckID: id, AckType: codec.PUBREC}) {
			c.h.stats.PublishPauses.Add(1)
			return eventloop.ErrPause
		}
		return nil
	}
	if ls.persist.W != nil {
		c.needSync(ls)
	}
	buf := c.conn.Buffer()
	buf.B = codec.AppendAck(buf.B, codec.PUBREC, id, codec.Success, c.version)
	return nil
}

// writeAck writes an acknowledgement packet with reason code code.
func (c *client) writeAck(t codec.Type, id uint16, code codec.ReasonCode) {
	buf := c.conn.Buffer()
	buf.B = codec.AppendAck(buf.B, t, id, code, c.version)
}

// Acknowledge implements dispatch.Conn: it acknowledges a routed PUBLISH,
// if the connection it came on is still there; otherwise the client sends
// it again after reconnecting.
func (c *client) Acknowledge(t codec.Type, id uint16, sync bool) {
	if c.state != stateConnected || c.conn.Closing() {
		return
	}
	if sync {
		c.needSync(c.h.loops[c.LoopIndex()])
	}
	buf := c.conn.Buffer()
	buf.B = codec.AppendAck(buf.B, t, id, codec.Success, c.version)
}

// NotStored implements dispatch.Conn: a message the client published
// could not be stored with the cluster's replication, so it is not
// acknowledged as taken. A QoS 2 packet id is forgotten first, so that the
// message sent again is taken as a new one, not as a resend of one taken
// [MQTT-4.3.3-10]. An MQTT 5 client hears 0x80 (Unspecified error) in its
// PUBACK or PUBREC, which ends the exchange and leaves it to the client to
// publish again; MQTT 3.x has no failure code for one message, so the
// connection is closed and the client sends the message again when it
// reconnects [MQTT-4.4.0-1]. The id is forgotten even when the
// connection is gone or going — closed for an earlier refusal of the same
// batch, say — as the client sends the message again on its next one.
// (A new connection that sends it again before the refusal came is still
// answered as for a message taken: that window stays open.)
func (c *client) NotStored(t codec.Type, id uint16) {
	c.h.stats.DropsNotStored.Add(1)
	if s := c.sess; t == codec.PUBREC && s != nil {
		ls := c.h.loops[c.LoopIndex()]
		s.Lock()
		if s.ReleaseLocked(id) && ls.persist.W != nil && s.Persistent() {
			ls.persist.W.DeleteAwaitRel(s.ClientID(), id)
		}
		s.Unlock()
	}
	if c.state != stateConnected || c.conn.Closing() {
		return
	}
	if c.version == codec.V5 {
		c.writeAck(t, id, codec.UnspecifiedError)
		return
	}
	c.closeWith(0, errNotStored)
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
func (c *client) resolveAlias(a uint16, topic []byte) ([]byte, error) {
	max := c.h.cfg.TopicAliasMaximum
	if a == 0 || a > max {
		return nil, errAliasInvalid // [MQTT-3.3.2-9]
	}
	e := c.extra()
	if len(topic) > 0 {
		e.aliasIn.Set(a, max, topic)
		return topic, nil
	}
	if t, ok := e.aliasIn.Topic(a); ok {
		return t, nil
	}
	return nil, errAliasUnknown
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
	if (t == codec.PUBREC || t == codec.PUBREL) && !c.h.gate.Serving() && c.retire() {
		// A node that does not serve (cut off, or back and not yet
		// settled) cannot make its replicated copy of the session confirm
		// the step; were it to answer, and the cluster to have moved the
		// session meanwhile, the session's new owner would go by a copy
		// that lacks it: send the PUBLISH again (a second delivery) or
		// take a new message under the id for the old one (a loss). The
		// client says it again on its next connection.
		return nil
	}
	switch t {
	case codec.PUBACK:
		// An unknown id is ignored: it may be a late answer to a message
		// the session has since dropped.
		if seq, ok := s.PubackLocked(a.PacketID); ok {
			persist.Forget(ls.persist.W, s, seq)
			c.slotFreedLocked(ls, now)
		}
	case codec.PUBREC:
		var origin uint64
		if persist.KeepsReceipts(ls.persist.W) {
			origin = s.OriginLocked(a.PacketID) // PubrecLocked releases the message
		}
		if seq, ok := s.PubrecLocked(a.PacketID, a.Code.IsError(), now); ok {
			if !a.Code.IsError() {
				if seq != 0 && ls.persist.W != nil {
					// Once PUBREL is out, resending the PUBLISH would be a
					// second delivery: the store must know first. So must
					// the session's next node, should the message come
					// to it again once the record is gone (PUBCOMP).
					ls.persist.W.MarkSent(s.ClientID(), seq, a.PacketID, session.AwaitPubcomp)
					persist.Received(ls.persist.W, s, origin)
					c.needSync(ls)
				}
				c.writeAck(codec.PUBREL, a.PacketID, codec.Success) // [MQTT-4.3.3-4]
			} else {
				persist.Forget(ls.persist.W, s, seq)
				c.slotFreedLocked(ls, now)
			}
		} else if c.version == codec.V5 {
			c.writeAck(codec.PUBREL, a.PacketID, codec.PacketIDNotFound)
		}
	case codec.PUBREL:
		code := codec.Success
		if !s.ReleaseLocked(a.PacketID) {
			code = codec.PacketIDNotFound // still answer, so the client can finish [MQTT-4.3.3-11]
		} else if ls.persist.W != nil && s.Persistent() {
			ls.persist.W.DeleteAwaitRel(s.ClientID(), a.PacketID)
		}
		c.writeAck(codec.PUBCOMP, a.PacketID, code)
	case codec.PUBCOMP:
		if seq, ok := s.PubcompLocked(a.PacketID); ok {
			persist.Forget(ls.persist.W, s, seq)
			c.slotFreedLocked(ls, now)
		}
	}
	return nil
}
