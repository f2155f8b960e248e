package conn

import (
	"strconv"
	"time"
	"unsafe"

	"github.com/shoalmq/shoal/codec"
	"github.com/shoalmq/shoal/internal/counters"
	"github.com/shoalmq/shoal/internal/limit"
	"github.com/shoalmq/shoal/internal/reason"
	"github.com/shoalmq/shoal/internal/sys"
	"github.com/shoalmq/shoal/router"
	"github.com/shoalmq/shoal/session"
)

// connectParams is what CONNECT decided that is applied once the client
// is authenticated. It outlives the frame (an enhanced authentication
// exchange sits between CONNECT and CONNACK), so it holds no frame slices.
type connectParams struct {
	id              string
	expiry          uint32
	assigned        bool // the broker chose the client id
	clean           bool
	serverKeepAlive bool // keep-alive was capped: announce it
	expiryCapped    bool // session expiry was capped: announce it
	responseInfo    bool // the client asked for Response Information

	// The user name, for the log line of a refusal that comes after the
	// frame is gone (a login, an authentication exchange); set only then.
	user    string
	hasUser bool
}

// onConnect handles CONNECT [MQTT-3.1]: it validates and applies what
// concerns the connection, then either starts an enhanced authentication
// exchange or goes straight on to finishConnect.
func (c *client) onConnect(ls *loopState, body []byte) error {
	h := c.h
	p := &ls.connect
	err := p.Decode(body)
	c.version = p.Version
	if err != nil {
		ls.connectOf = nil // what p holds is not a CONNECT to name the client by
		return err
	}
	ls.connectOf = c
	ls.ctr.Connects.Add(1)
	cp := connectParams{clean: p.CleanStart}
	if p.Bridge && c.version < codec.V5 {
		// MQTT 5 bridges ask for No Local and Retain As Published
		// themselves; Mosquitto's mark means nothing more for them.
		c.extra().bridge = true
	}
	internal := false
	if o := c.conn.Origin(); o != nil && o.Internal {
		internal = true
		c.extra().internal = true
	}

	// Limits first: a refused client costs no more than its CONNECT.
	lim := h.limits()
	if h.overConnections(lim) {
		h.stats.RefusedConnections.Add(1)
		return errTooManyConns
	}
	if lim.ConnectRate > 0 && !internal && !h.connRate.Allow(limit.AddrOf(c.conn.RemoteAddr()), c.conn.Loop().Now(), lim.ConnectRate, lim.ConnectBurst) {
		h.stats.RefusedRate.Add(1)
		return errConnectRate
	}
	if len(p.ClientID) > lim.MaxClientIDLength {
		h.stats.RefusedClientID.Add(1)
		return errClientIDLength
	}

	// Client identifier [MQTT-3.1.3-5] .. [MQTT-3.1.3-9].
	cp.id = string(p.ClientID)
	if cp.id == "" {
		switch {
		case c.version == codec.V31:
			return errClientID.Because("empty client id: MQTT 3.1 needs one")
		case c.version == codec.V311 && !p.CleanStart:
			return errClientID.Because("empty client id with clean session 0") // [MQTT-3.1.3-8]
		case !h.cfg.AssignClientIDs:
			return errClientID.Because("empty client id, and assign_client_ids is off") // [MQTT-3.1.3-9]
		}
		cp.id = h.cfg.AssignedIDPrefix + strconv.FormatUint(h.clientID.Add(1), 36) + "-" +
			strconv.FormatInt(time.Now().UnixNano()&0xffffff, 36)
		cp.assigned = true
	}

	// Keep-alive, capped by the broker.
	c.keepAlive = p.KeepAlive
	if max := lim.MaxKeepAlive; max > 0 && (c.keepAlive == 0 || c.keepAlive > max) {
		c.keepAlive = max
		cp.serverKeepAlive = c.version == codec.V5 // [MQTT-3.2.2-21]
	}

	// Session lifetime: 3.x clean session 0 keeps it forever; MQTT 5 says
	// how long in Session Expiry Interval [MQTT-3.1.2-23].
	switch {
	case c.version < codec.V5 && !p.CleanStart:
		cp.expiry = session.NeverExpire
	case c.version == codec.V5 && p.Props.Has(codec.PropSessionExpiry):
		cp.expiry = p.Props.SessionExpiry
	}
	if max := lim.MaxSessionExpiry; max > 0 && cp.expiry > 0 && time.Duration(cp.expiry)*time.Second > max {
		cp.expiry = uint32(max / time.Second)
		cp.expiryCapped = c.version == codec.V5
	}

	// What the client can take.
	c.window = uint16(lim.MaxInflight)
	if c.version == codec.V5 {
		if p.Props.Has(codec.PropReceiveMaximum) && p.Props.ReceiveMaximum < c.window {
			c.window = p.Props.ReceiveMaximum // [MQTT-3.3.4-9]
		}
		if p.Props.Has(codec.PropMaximumPacketSize) {
			c.extra().maxOut = p.Props.MaximumPacketSize // [MQTT-3.1.2-24]
		}
		if n := min(h.cfg.OutboundTopicAliases, p.Props.TopicAliasMaximum); n > 0 {
			c.extra().aliasOut.Max = n // never above the client's maximum [MQTT-3.3.2-10]
		}
		cp.responseInfo = p.Props.RequestResponseInfo == 1
	}

	// A will the broker could not publish as asked is refused up front.
	if p.WillFlag && p.WillQoS > h.cfg.MaxQoS {
		return errQoSNotSupported.Because("will QoS %d above max_qos (%d)", p.WillQoS, h.cfg.MaxQoS) // [MQTT-3.2.2-12]
	}
	if p.WillFlag && p.WillRetain && !h.cfg.RetainAvailable {
		return errRetainNotSupported.Because("will retain flag set while retain_available is false") // [MQTT-3.2.2-13]
	}
	// A will is a PUBLISH made later: the same topics are closed to it.
	if p.WillFlag && sys.Own(p.WillTopic) {
		h.stats.RefusedLogin.Add(1)
		return errWillDenied.Because("will topic %q is under $SYS, the broker's own", reason.Clip(string(p.WillTopic)))
	}
	if p.WillFlag && limit.TopicOver(p.WillTopic, lim) {
		h.stats.DropsTopicLimit.Add(1)
		return errWillTopicLimit.Because("%s", limit.TopicRule("will topic", p.WillTopic, lim))
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
		idb := unsafe.Slice(unsafe.StringData(cp.id), len(cp.id))
		c.extra().will = router.NewMessage(p.WillTopic, p.WillPayload, fwd, idb, p.WillQoS, p.WillRetain, exp, nil)
	}

	if h.lg().Debug().Enabled() {
		h.lg().Debug().Str("client", cp.id).Uint8("version", c.version).Bool("clean", cp.clean).
			Str("remote", c.conn.RemoteAddr().String()).Msg("connecting")
	}
	// Who it is and what it may do; the CONNACK waits for the answer
	// (package admit, through admit.go).
	return c.login(ls, p, cp)
}

// finishConnect takes the session over or starts one, answers CONNACK
// (with the last Authentication Data, if any) and resumes what the
// session owes.
func (c *client) finishConnect(ls *loopState, cp connectParams, authData []byte) {
	h := c.h
	// Take the session over or start one [MQTT-3.1.2-4], [MQTT-3.1.4-3].
	s, created := h.sessions.GetOrCreate(cp.id)
	s.Lock()
	for h.sessions.Get(cp.id) != s {
		// The session ended between lookup and lock; take the new one.
		s.Unlock()
		s, created = h.sessions.GetOrCreate(cp.id)
		s.Lock()
	}
	prev := s.AttachLocked(c)
	// Its deadline goes with the session offline. A will still waiting is
	// not published if the client resumed the session in time
	// [MQTT-3.1.3-9]; a Clean Start ends the session, which publishes it
	// at once (as takeOver does for a connected one; MQTT 5 section
	// 3.1.3.2.2), and so does a resume after its delay.
	waiting := h.expiry.DisarmLocked(s, cp.clean)
	present := !created && !cp.clean && (s.Expiry > 0 || prev != nil)
	var orphans []session.Delivery
	if cp.clean || (!created && s.Expiry == 0 && prev == nil) {
		orphans = h.expiry.ClearLocked(ls.persist.W, s)
		present = false
	}
	if present && c.ext != nil && c.ext.perms != nil {
		c.recheckSubsLocked(s)
	}
	s.SetExpiryLocked(cp.expiry)
	s.ExpireAt = 0
	if will, delay := c.will(); will != nil && h.expiry.Clustered() {
		h.expiry.StandWill(cp.id, will, min(delay, s.Expiry))
		c.ext.stood = true
	}
	if ls.persist.W != nil && (s.StoredLocked() || s.Expiry != 0) {
		will, delay := c.will()
		h.persist.StoreSessionLocked(ls.persist.W, s, will, delay)
		c.needSync(ls) // before CONNACK: a session present is a session kept
	}
	c.sess = s
	c.gen = s.Gen
	c.state = stateConnected
	if ls.connectOf == c {
		ls.connectOf = nil
	}
	ls.ctr.Connected.Add(1)

	// CONNACK comes first [MQTT-3.2.0-1].
	ack := codec.Connack{SessionPresent: present, Code: codec.Success}
	if c.version == codec.V5 {
		c.connackProps(&ack.Props, cp, authData)
	}
	buf := c.conn.Buffer()
	buf.B = ack.Append(buf.B, c.version)

	// Resend what was in flight, in order, then what was queued
	// [MQTT-4.4.0-1].
	now := time.Now().UnixNano()
	if present {
		c.resendLocked(now)
	}
	c.drainQueueLocked(ls, now)
	s.Unlock()
	h.disp.Reroute(ls.persist.W, orphans)
	if waiting != nil {
		h.expiry.SendWill(waiting)
	}

	if prev != nil {
		h.kick(prev.(*client), cp.clean)
	}
	if ev := h.lifecycle(ls, now); ev != nil {
		ev.Str("client", cp.id).Str("remote", c.conn.RemoteAddr().String()).Str("protocol", protocolNames[c.version]).
			Bool("clean", cp.clean).Bool("present", present).Uint16("keep_alive_s", c.keepAlive).Msg("client connected")
	}
}

// connackProps fills an MQTT 5 CONNACK's properties: what the broker
// assigned or capped, and what it supports.
func (c *client) connackProps(pr *codec.Properties, cp connectParams, authData []byte) {
	h := c.h
	if cp.assigned {
		pr.Set(codec.PropAssignedClientID)
		pr.AssignedClientID = c.id()
	}
	if cp.serverKeepAlive {
		pr.Set(codec.PropServerKeepAlive)
		pr.ServerKeepAlive = c.keepAlive
	}
	if cp.expiryCapped {
		pr.Set(codec.PropSessionExpiry)
		pr.SessionExpiry = cp.expiry
	}
	pr.Set(codec.PropMaximumPacketSize)
	pr.MaximumPacketSize = uint32(h.cfg.MaxPacketSize)
	if h.cfg.TopicAliasMaximum > 0 {
		pr.Set(codec.PropTopicAliasMaximum) // absent means 0: no aliases [MQTT-3.2.2-17]
		pr.TopicAliasMaximum = h.cfg.TopicAliasMaximum
	}
	if h.cfg.ReceiveMaximum < 65535 {
		pr.Set(codec.PropReceiveMaximum)
		pr.ReceiveMaximum = h.cfg.ReceiveMaximum
	}
	if h.cfg.MaxQoS < 2 {
		pr.Set(codec.PropMaximumQoS)
		pr.MaximumQoS = h.cfg.MaxQoS
	}
	if !h.cfg.RetainAvailable {
		pr.Set(codec.PropRetainAvailable)
		pr.RetainAvailable = 0
	}
	// Wildcards, subscription identifiers and shared subscriptions are
	// always available: absent properties say so (MQTT 5 3.2.2.3.11-13).
	if cp.responseInfo && h.cfg.ResponseInformation != "" {
		pr.Set(codec.PropResponseInfo)
		pr.ResponseInfo = []byte(h.cfg.ResponseInformation)
	}
	if e := c.ext; e != nil && e.adm.Method() != "" {
		pr.Set(codec.PropAuthMethod) // the CONNACK names the method it completes (MQTT 5 section 4.12)
		pr.AuthMethod = []byte(e.adm.Method())
		if len(authData) > 0 {
			pr.Set(codec.PropAuthData)
			pr.AuthData = authData
		}
	}
}

// kick disconnects a client whose session was taken over, on its own loop.
// clean is the new connection's Clean Start, which decides the old will.
func (h *Handler) kick(old *client, clean bool) {
	n := noteTakeover
	if clean {
		n = noteTakeoverClean
	}
	h.disp.Notify(old, n)
}

// takeOver runs on the old client's loop: tell an MQTT 5 client why and
// close [MQTT-3.1.4-3]. Its will is then published as section 3.1.2.5
// says: at once with no Will Delay Interval; at once if the new connection
// cleaned the session (the session ended); never if the new connection
// resumed the session before a non-zero delay ran out [MQTT-3.1.3-9].
func (c *client) takeOver(newClean bool) {
	if c.state != stateConnected || c.conn.Closing() {
		return
	}
	if e := c.ext; e != nil && e.will != nil {
		switch {
		case newClean:
			e.willDelay = 0
		case e.willDelay > 0:
			c.dropWill = true
		}
	}
	c.why = counters.CloseTakeover
	if ev := c.h.lifecycle(c.h.loops[c.LoopIndex()], c.conn.Loop().Now()); ev != nil {
		ev.Bytes("client", c.id()).Str("remote", c.conn.RemoteAddr().String()).Bool("clean", newClean).Msg("session taken over")
	}
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
			s := c.sess
			s.Lock()
			if !c.ownsLocked() {
				s.Unlock()
				return errSuperseded
			}
			if s.Expiry == 0 && d.Props.SessionExpiry != 0 {
				s.Unlock()
				return &reason.Error{Code: codec.ProtocolError, Msg: "session expiry set at DISCONNECT after 0 at CONNECT"} // [MQTT-3.14.2-2]
			}
			exp := d.Props.SessionExpiry
			if max := c.h.limits().MaxSessionExpiry; max > 0 && exp > 0 && time.Duration(exp)*time.Second > max {
				exp = uint32(max / time.Second) // the cap holds here too
			}
			s.SetExpiryLocked(exp) // stored as the connection leaves
			s.Unlock()
		}
		// 0x04 asks for the will to be published anyway [MQTT-3.14.2.1].
		c.dropWill = d.Code != codec.DisconnectWithWill
	} else {
		c.dropWill = true // [MQTT-3.14.4-3]
	}
	c.why = counters.CloseNormal
	if !c.dropWill {
		c.why = counters.CloseWithWill
	}
	c.leave()
	c.conn.Close()
	return nil
}
