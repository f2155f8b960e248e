package conn

import (
	"unsafe"

	"github.com/shoalmq/shoal/codec"
	"github.com/shoalmq/shoal/internal/limit"
	"github.com/shoalmq/shoal/internal/retained"
	"github.com/shoalmq/shoal/router"
	"github.com/shoalmq/shoal/session"
)

// onSubscribe handles SUBSCRIBE [MQTT-3.8]: each filter is validated on its
// own and answered with its own code; retained messages follow the SUBACK,
// at the client's pace (retained.go).
func (c *client) onSubscribe(ls *loopState, body []byte) error {
	h := c.h
	p := &ls.subscribe
	if err := p.Decode(body, c.version); err != nil {
		return err
	}
	var subID uint32
	if len(p.Props.SubIDs) > 0 {
		subID = p.Props.SubIDs[0]
	}
	ack := &ls.suback
	*ack = codec.Suback{Type: codec.SUBACK, PacketID: p.PacketID, Codes: ack.Codes[:0]} // [MQTT-3.8.4-2]
	retainedFor := ls.retainedFor[:0]
	s := c.sess
	lim := h.limits()
	for i := range p.Filters {
		f := &p.Filters[i]
		if err := codec.CheckFilter(f.Filter); err != nil {
			ack.Codes = append(ack.Codes, c.subFailure(codec.TopicFilterInvalid))
			continue
		}
		shared := codec.IsShared(f.Filter)
		if shared && f.NoLocal {
			return errSharedNoLocal // [MQTT-3.8.3-4]
		}
		filter := string(f.Filter)
		if code := c.mayNotSubscribe(filter, lim); code != 0 {
			h.stats.RefusedSubs.Add(1)
			ack.Codes = append(ack.Codes, c.subFailure(code))
			continue
		}
		o := router.Options{
			QoS:               min(f.QoS, h.cfg.MaxQoS), // never above what was asked [MQTT-3.8.4-6]
			NoLocal:           f.NoLocal,
			RetainAsPublished: f.RetainAsPublished,
			RetainHandling:    f.RetainHandling,
			SubID:             subID,
		}
		if c.ext != nil && c.ext.bridge {
			o.NoLocal, o.RetainAsPublished = true, true // Mosquitto's bridge semantics for 3.x
		}
		s.Lock()
		if !c.ownsLocked() {
			s.Unlock()
			return errSuperseded
		}
		if subs := s.SubsLocked(); len(subs) >= lim.MaxSubscriptions && !hasSub(subs, filter) {
			s.Unlock()
			h.stats.RefusedSubs.Add(1)
			ack.Codes = append(ack.Codes, c.subFailure(codec.QuotaExceeded))
			continue
		}
		// The table changes under the session lock (LOCKORDER 1 -> 3), so a
		// clean start clearing the session can't slip in between.
		existed := s.AddSubLocked(filter, o)
		h.subs.Subscribe(s, filter, o) // replaces an existing one [MQTT-3.8.4-3]
		s.Unlock()
		ack.Codes = append(ack.Codes, codec.ReasonCode(o.QoS))
		// Retained messages: not for shared subscriptions (MQTT 5 section 4.8.2),
		// and per Retain Handling in MQTT 5 [MQTT-3.3.1-9], [MQTT-3.3.1-10].
		if !shared && (o.RetainHandling == 0 || (o.RetainHandling == 1 && !existed)) {
			retainedFor = append(retainedFor, retained.Req{Filter: filter, Opts: o})
		} else if existed && c.hasRetained() {
			c.ext.retained.Resubscribed(filter, o)
		}
	}
	ls.retainedFor = retainedFor
	c.storeSubscriptions(ls)
	if len(retainedFor) > 0 && h.barrier != nil {
		buf := c.conn.Buffer()
		buf.B = ack.Append(buf.B, c.version)
		c.awaitRetained(retainedFor)
		clear(ls.retainedFor)
		return nil
	}
	if len(retainedFor) > 0 {
		// Messages already routed to this loop (their publishers may hold
		// PUBACKs for them) go out before the retained ones this SUBSCRIBE
		// adds, so acknowledged-before is delivered-before.
		h.disp.Drain(c.conn.Loop())
	}
	buf := c.conn.Buffer()
	buf.B = ack.Append(buf.B, c.version)
	started := false
	for _, r := range retainedFor {
		started = c.startRetained(ls, r.Filter, r.Opts) || started
	}
	clear(ls.retainedFor) // drop filter strings
	if started {
		c.pumpRetained(ls)
	}
	return nil
}

// mayNotSubscribe returns the reason code refusing filter — over the
// topic limits, or not allowed by the Authorizer — or 0. A filter granted
// although it covers topics the client may not read turns on the check of
// each message to the client: what it must not read, it does not get,
// retained messages included.
func (c *client) mayNotSubscribe(filter string, lim *limit.Limits) codec.ReasonCode {
	inner := innerFilter(filter)
	if limit.TopicOver(inner, lim) {
		return codec.TopicFilterInvalid
	}
	if e := c.ext; e != nil && e.perms != nil {
		ok, each := e.perms.CanSubscribe(inner)
		if !ok {
			return codec.NotAuthorized
		}
		if each {
			e.checkRead = true
		}
	}
	return 0
}

// innerFilter is the filter the rights are about — a shared
// subscription's inner one (router.ParseShared), or filter itself — as a
// read-only view of its bytes.
func innerFilter(filter string) []byte {
	if _, inner, ok := router.ParseShared(filter); ok {
		filter = inner
	}
	return unsafe.Slice(unsafe.StringData(filter), len(filter))
}

// recheckSubsLocked holds a resumed session's subscriptions to the rights
// of the client resuming it, which may not be the one that made them
// (another user with the same client id, or new rules since): those it may
// not make are removed, and every message to it is checked, as its queue
// was filled under the old rights. s.mu must be held.
func (c *client) recheckSubsLocked(s *session.Session) {
	e := c.ext
	e.checkRead = true
	var gone []string
	for _, sub := range s.SubsLocked() {
		if ok, _ := e.perms.CanSubscribe(innerFilter(sub.Filter)); !ok {
			gone = append(gone, sub.Filter)
		}
	}
	for _, f := range gone {
		s.RemoveSubLocked(f)
		c.h.subs.Unsubscribe(s, f)
	}
}

// hasSub reports whether subs holds filter.
func hasSub(subs []session.Sub, filter string) bool {
	for i := range subs {
		if subs[i].Filter == filter {
			return true
		}
	}
	return false
}

// subFailure is the SUBACK code for a refused filter: the MQTT 5 reason,
// or 0x80 for 3.x [MQTT-3.9.3-2].
func (c *client) subFailure(code codec.ReasonCode) codec.ReasonCode {
	if c.version < codec.V5 {
		return codec.ReasonCode(codec.V3SubackFailure)
	}
	return code
}

// onUnsubscribe handles UNSUBSCRIBE [MQTT-3.10].
func (c *client) onUnsubscribe(ls *loopState, body []byte) error {
	h := c.h
	p := &ls.unsubscribe
	if err := p.Decode(body, c.version); err != nil {
		return err
	}
	ack := &ls.suback
	*ack = codec.Suback{Type: codec.UNSUBACK, PacketID: p.PacketID, Codes: ack.Codes[:0]} // [MQTT-3.10.4-4]
	s := c.sess
	for _, f := range p.Filters {
		filter := string(f)
		s.Lock()
		if !c.ownsLocked() {
			s.Unlock()
			return errSuperseded
		}
		had := s.RemoveSubLocked(filter)
		if had {
			h.subs.Unsubscribe(s, filter) // [MQTT-3.10.4-1]
		}
		s.Unlock()
		if had && c.hasRetained() {
			c.dropRetained(ls, filter) // its retained messages are no longer wanted either
		}
		if had {
			ack.Codes = append(ack.Codes, codec.Success)
		} else {
			ack.Codes = append(ack.Codes, codec.NoSubscriptionExisted)
		}
	}
	c.storeSubscriptions(ls)
	buf := c.conn.Buffer()
	buf.B = ack.Append(buf.B, c.version) // 3.x UNSUBACK has no codes [MQTT-3.11.3]
	return nil
}

// storeSubscriptions rewrites a persistent session's record after SUBSCRIBE
// or UNSUBSCRIBE, durable before the SUBACK or UNSUBACK goes out.
func (c *client) storeSubscriptions(ls *loopState) {
	if ls.persist.W == nil {
		return
	}
	s := c.sess
	s.Lock()
	if c.ownsLocked() && s.Expiry != 0 {
		will, delay := c.will()
		c.h.persist.StoreSessionLocked(ls.persist.W, s, will, delay)
		c.needSync(ls)
	}
	s.Unlock()
}
