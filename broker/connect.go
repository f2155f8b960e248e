package broker

import (
	"strconv"
	"time"
	"unsafe"

	"github.com/shoalmq/shoal/codec"
	"github.com/shoalmq/shoal/router"
	"github.com/shoalmq/shoal/session"
)

// onConnect handles CONNECT [MQTT-3.1]: it validates, takes over or creates
// the session, answers CONNACK and resumes what the session owes.
func (c *client) onConnect(ls *loopState, body []byte) error {
	b := c.b
	p := &ls.connect
	err := p.Decode(body)
	c.version = p.Version
	if err != nil {
		return err
	}
	b.stats.connects.Add(1)

	// Client identifier [MQTT-3.1.3-5] .. [MQTT-3.1.3-9].
	assigned := false
	id := string(p.ClientID)
	if id == "" {
		if c.version == codec.V31 || (c.version == codec.V311 && !p.CleanStart) {
			return errClientID // [MQTT-3.1.3-8]
		}
		id = "shoal-" + strconv.FormatUint(b.clientID.Add(1), 36) + "-" +
			strconv.FormatInt(time.Now().UnixNano()&0xffffff, 36)
		assigned = true
	}

	// Keep-alive, capped by the broker.
	c.keepAlive = p.KeepAlive
	serverKeepAlive := false
	if max := b.cfg.MaxKeepAlive; max > 0 && (c.keepAlive == 0 || c.keepAlive > max) {
		c.keepAlive = max
		serverKeepAlive = c.version == codec.V5 // [MQTT-3.2.2-21]
	}

	// Session lifetime: 3.x clean session 0 keeps it forever; MQTT 5 says
	// how long in Session Expiry Interval [MQTT-3.1.2-23].
	var expiry uint32
	switch {
	case c.version < codec.V5 && !p.CleanStart:
		expiry = session.NeverExpire
	case c.version == codec.V5 && p.Props.Has(codec.PropSessionExpiry):
		expiry = p.Props.SessionExpiry
	}
	expiryCapped := false
	if max := b.cfg.MaxSessionExpiry; max > 0 && expiry > 0 && time.Duration(expiry)*time.Second > max {
		expiry = uint32(max / time.Second)
		expiryCapped = c.version == codec.V5
	}

	// What the client can take.
	c.window = uint16(b.cfg.MaxInflight)
	if c.version == codec.V5 {
		if p.Props.Has(codec.PropReceiveMaximum) && p.Props.ReceiveMaximum < c.window {
			c.window = p.Props.ReceiveMaximum // [MQTT-3.3.4-9]
		}
		if p.Props.Has(codec.PropMaximumPacketSize) {
			c.extra().maxOut = p.Props.MaximumPacketSize // [MQTT-3.1.2-24]
		}
		if n := min(b.cfg.OutboundTopicAliases, p.Props.TopicAliasMaximum); n > 0 {
			c.extra().outMax = n // never above the client's maximum [MQTT-3.3.2-10]
		}
	}

	// The will, copied out of the frame now: it outlives it.
	if p.WillFlag {
		var fwd []byte
		var exp int64
		if c.version == codec.V5 {
			fwd = p.WillProps.ForwardProps(ls.props[:0])
			ls.props = fwd
			if p.WillProps.Has(codec.PropMessageExpiry) {
				exp = int64(p.WillProps.MessageExpiry) * int64(time.Second) // relative until published
			}
			c.extra().willDelay = p.WillProps.WillDelay
		}
		idb := unsafe.Slice(unsafe.StringData(id), len(id))
		c.extra().will = router.NewMessage(p.WillTopic, p.WillPayload, fwd, idb, p.WillQoS, p.WillRetain, exp, nil)
	}

	// Take the session over or start one [MQTT-3.1.2-4], [MQTT-3.1.4-3].
	s, created := b.sessions.GetOrCreate(id)
	s.Lock()
	for b.sessions.Get(id) != s {
		// The session ended between lookup and lock; take the new one.
		s.Unlock()
		s, created = b.sessions.GetOrCreate(id)
		s.Lock()
	}
	prev := s.AttachLocked(c)
	present := !created && !p.CleanStart && (s.Expiry > 0 || prev != nil)
	if p.CleanStart || (!created && s.Expiry == 0 && prev == nil) {
		for _, sub := range s.ClearLocked() {
			b.subs.Unsubscribe(s, sub.Filter)
		}
		present = false
	}
	s.Expiry = expiry
	s.ExpireAt = 0
	c.sess = s
	c.state = stateConnected

	// CONNACK comes first [MQTT-3.2.0-1].
	ack := codec.Connack{SessionPresent: present, Code: codec.Success}
	if c.version == codec.V5 {
		pr := &ack.Props
		if assigned {
			pr.Set(codec.PropAssignedClientID)
			pr.AssignedClientID = c.id()
		}
		if serverKeepAlive {
			pr.Set(codec.PropServerKeepAlive)
			pr.ServerKeepAlive = c.keepAlive
		}
		if expiryCapped {
			pr.Set(codec.PropSessionExpiry)
			pr.SessionExpiry = expiry
		}
		pr.Set(codec.PropMaximumPacketSize)
		pr.MaximumPacketSize = uint32(b.cfg.MaxPacketSize)
		if b.cfg.TopicAliasMaximum > 0 {
			pr.Set(codec.PropTopicAliasMaximum) // absent means 0: no aliases [MQTT-3.2.2-17]
			pr.TopicAliasMaximum = b.cfg.TopicAliasMaximum
		}
		if b.cfg.ReceiveMaximum < 65535 {
			pr.Set(codec.PropReceiveMaximum)
			pr.ReceiveMaximum = b.cfg.ReceiveMaximum
		}
		if b.cfg.MaxQoS < 2 {
			pr.Set(codec.PropMaximumQoS)
			pr.MaximumQoS = b.cfg.MaxQoS
		}
		if !b.cfg.RetainAvailable {
			pr.Set(codec.PropRetainAvailable)
			pr.RetainAvailable = 0
		}
		// Wildcards, subscription identifiers and shared subscriptions are
		// always available: absent properties say so [MQTT-3.2.2.3.11..13].
		if p.Props.RequestResponseInfo == 1 && b.cfg.ResponseInformation != "" {
			pr.Set(codec.PropResponseInfo)
			pr.ResponseInfo = []byte(b.cfg.ResponseInformation)
		}
	}
	buf := c.conn.Buffer()
	buf.B = ack.Append(buf.B, c.version)

	// Resend what was in flight, in order, then what was queued
	// [MQTT-4.4.0-1].
	if present {
		c.resendLocked(time.Now().UnixNano())
	}
	c.drainQueueLocked(ls, time.Now().UnixNano())
	s.Unlock()
	b.unexpire(s)

	if prev != nil {
		b.kick(prev.(*client))
	}
	if b.log.Debug().Enabled() {
		b.log.Debug().Str("client", id).Uint8("version", c.version).Bool("clean", p.CleanStart).
			Bool("present", present).Str("remote", c.conn.RemoteAddr().String()).Msg("connected")
	}
	return nil
}

// kick disconnects a client whose session was taken over, on its own loop.
func (b *Broker) kick(old *client) {
	b.post(old.conn.Loop().Index(), pending{kick: old})
}

// takeOver runs on the old client's loop: tell an MQTT 5 client why and
// close [MQTT-3.1.4-3]. Its will is not published: a new connection for the
// client id opened before the will could be due (MQTT 5 section 3.1.2.5),
// and the session lives on in the new connection.
func (c *client) takeOver() {
	if c.state != stateConnected || c.conn.Closing() {
		return
	}
	c.dropWill = true
	c.sendDisconnect(codec.SessionTakenOver, "another connection took the session over")
	c.conn.Close()
}

// onDisconnect handles a client's DISCONNECT [MQTT-3.14].
func (c *client) onDisconnect(ls *loopState, body []byte) error {
	d := &ls.disconnect
	if err := d.Decode(codec.DISCONNECT, body, c.version); err != nil {
		return err
	}
	if c.version == codec.V5 {
		if d.Props.Has(codec.PropSessionExpiry) {
			c.sess.Lock()
			cur := c.sess.Expiry
			if cur == 0 && d.Props.SessionExpiry != 0 {
				c.sess.Unlock()
				return &codec.Error{Code: codec.ProtocolError, Msg: "session expiry set at DISCONNECT after 0 at CONNECT"} // [MQTT-3.14.2-2]
			}
			c.sess.Expiry = d.Props.SessionExpiry
			c.sess.Unlock()
		}
		// 0x04 asks for the will to be published anyway [MQTT-3.14.2.1].
		c.dropWill = d.Code != codec.DisconnectWithWill
	} else {
		c.dropWill = true // [MQTT-3.14.4-3]
	}
	c.conn.Close()
	return nil
}
