package conn

import (
	"errors"
	"time"
	"unsafe"

	"github.com/shoalmq/shoal/auth"
	"github.com/shoalmq/shoal/codec"
	"github.com/shoalmq/shoal/eventloop"
	"github.com/shoalmq/shoal/internal/admit"
	"github.com/shoalmq/shoal/internal/alias"
	"github.com/shoalmq/shoal/internal/counters"
	"github.com/shoalmq/shoal/internal/dispatch"
	"github.com/shoalmq/shoal/internal/limit"
	"github.com/shoalmq/shoal/internal/reason"
	"github.com/shoalmq/shoal/internal/retained"
	"github.com/shoalmq/shoal/router"
	"github.com/shoalmq/shoal/session"
)

// Connection states.
const (
	stateNew       uint8 = iota // waiting for CONNECT
	stateAuth                   // CONNECT received, enhanced authentication in progress
	stateConnected              // CONNACK sent
	stateClosed                 // DISCONNECT received or connection failed
)

// client is one network connection and its MQTT state. It belongs to the
// event loop of its connection: only that goroutine touches it. An idle
// connection costs this struct (48 bytes), an eventloop.Conn, gnet's
// connection and its session, so what only some clients need lives in
// clientExt, allocated on demand.
type client struct {
	h    *Handler
	conn *eventloop.Conn
	sess *session.Session
	ext  *clientExt

	// lastRecv is when the last packet came, in Unix ns, for keep-alive;
	// before CONNECT, when the connection opened, for the connect timeout.
	lastRecv int64

	gen       uint32 // the session's attachment generation this client holds, for the will
	window    uint16 // outbound in-flight limit: min(MaxInflight, Receive Maximum)
	keepAlive uint16 // seconds; 0 disables [MQTT-3.1.2-10]
	version   byte
	state     uint8
	dropWill  bool // normal DISCONNECT: no will [MQTT-3.1.2-10], [MQTT-3.14.4-3]

	// pub is the client's routing state as a publisher: which path its
	// next message may take (package dispatch, "Two paths, one order").
	pub dispatch.Publisher
	// why is the reason the connection ends, for the close counters; set
	// where the end is decided, network (0) otherwise.
	why counters.CloseReason
}

// clientExt holds what a minority of clients need: a will, MQTT 5 limits,
// topic aliases, retained messages still to send.
type clientExt struct {
	will      *router.Message // published on abnormal close
	willDelay uint32          // Will Delay Interval, seconds
	// stood: the will stands in the cluster while the connection is on
	// this node (expiry.StandWill); leave replaces or drops it.
	stood  bool
	maxOut uint32 // client's Maximum Packet Size; 0: protocol maximum
	// Topic aliases (MQTT 5): those the client sets, those the broker
	// assigns.
	aliasIn  alias.In
	aliasOut alias.Out

	// adm is the client's admission (package admit): an enhanced
	// authentication exchange, a login out with the login pool. pending
	// is the CONNECT waiting for either (admit.go).
	adm     admit.State
	pending *connectParams
	// perms are the client's topic rights (nil: no Authorizer);
	// checkRead says a subscription was granted that covers topics the
	// client may not read, so each message to it is checked.
	perms     auth.Permissions
	checkRead bool

	// pub is the client's publish rate limit (Limits.PublishRate).
	pub limit.Throttle

	// retained are the retained messages its SUBSCRIBEs matched that are
	// still to send (retained.go); behind are the SUBSCRIBEs still
	// waiting on the Barrier to read theirs, oldest first.
	retained retained.Queue
	behind   retained.Waits

	// endErr is the error the broker closed the connected client with,
	// and endIn the packet that broke the rule (0: none), for the
	// disconnect line (endFields).
	endErr error
	endIn  codec.Type
	// bridge: an MQTT 3.x CONNECT carried the bridge bit (codec.Connect.
	// Bridge): each subscription gets No Local and Retain As Published,
	// which 3.x cannot ask for, so the bridge's own messages do not come
	// back to it and retained ones cross it as retained.
	bridge bool
	// internal: the connection came from Broker.DialInternal (a bridge in
	// this process): admitted without credentials or rights checks, and
	// never disconnected as a slow consumer — its session queue is where
	// a bridge's messages wait for a remote broker that is down.
	internal bool
}

func (c *client) extra() *clientExt {
	if c.ext == nil {
		c.ext = &clientExt{}
	}
	return c.ext
}

// id is the client identifier as bytes, aliasing the session's string:
// read-only, valid as long as the session.
func (c *client) id() []byte {
	if c.sess == nil {
		return nil
	}
	id := c.sess.ClientID()
	return unsafe.Slice(unsafe.StringData(id), len(id))
}

// ownsLocked reports whether c still owns its session. Between a takeover
// on another loop and the kick reaching c's loop, the old connection may
// still send packets: it must not change the session the new one now owns.
// c.sess.mu must be held.
func (c *client) ownsLocked() bool { return c.sess.OwnerLocked() == session.Owner(c) }

// LoopIndex implements session.Owner.
func (c *client) LoopIndex() int { return c.conn.Loop().Index() }

// handle dispatches one packet. An error closes the connection after
// fail has answered it.
func (c *client) handle(h codec.Header, body []byte) error {
	ls := c.h.loops[c.conn.Loop().Index()]
	if c.state == stateNew {
		if h.Type != codec.CONNECT {
			return errNotConnected // [MQTT-3.1.0-1]
		}
		return c.onConnect(ls, body)
	}
	if c.state == stateAuth {
		switch h.Type {
		case codec.AUTH:
			return c.onAuth(ls, body)
		case codec.DISCONNECT:
			c.state = stateClosed
			c.conn.Close()
			return nil
		}
		return errAuthPending
	}
	if c.state != stateConnected {
		return errClosed
	}
	switch h.Type {
	case codec.PUBLISH:
		return c.onPublish(ls, h.Flags, body)
	case codec.PUBACK, codec.PUBREC, codec.PUBREL, codec.PUBCOMP:
		return c.onAck(ls, h.Type, body)
	case codec.SUBSCRIBE:
		return c.onSubscribe(ls, body)
	case codec.UNSUBSCRIBE:
		return c.onUnsubscribe(ls, body)
	case codec.PINGREQ:
		if len(body) != 0 {
			return codec.ErrTrailingBytes
		}
		buf := c.conn.Buffer()
		buf.B = codec.AppendPing(buf.B, codec.PINGRESP) // [MQTT-3.12.4-1]
		return nil
	case codec.DISCONNECT:
		return c.onDisconnect(ls, body)
	case codec.CONNECT:
		return errSecondConnect // [MQTT-3.1.0-2]
	case codec.AUTH:
		if c.version < codec.V5 {
			return errUnexpectedPacket
		}
		return c.onAuth(ls, body)
	}
	return errUnexpectedPacket // a server-to-client packet type
}

// Protocol and policy errors found above the codec.
var (
	errNotConnected       = &reason.Error{Code: codec.ProtocolError, Msg: "first packet is not CONNECT"}
	errSecondConnect      = &reason.Error{Code: codec.ProtocolError, Msg: "second CONNECT"}
	errUnexpectedPacket   = &reason.Error{Code: codec.ProtocolError, Msg: "packet type not sent by clients"}
	errClosed             = &reason.Error{Code: codec.ProtocolError, Msg: "packet after DISCONNECT"}
	errAuthPending        = &reason.Error{Code: codec.ProtocolError, Msg: "packet other than AUTH or DISCONNECT during authentication"}
	errClientID           = &reason.Error{Code: codec.ClientIDNotValid, Msg: "client identifier not allowed"}
	errAliasInvalid       = &reason.Error{Code: codec.TopicAliasInvalid, Msg: "topic alias out of range"}
	errAliasUnknown       = &reason.Error{Code: codec.ProtocolError, Msg: "topic alias not set"}
	errSharedNoLocal      = &reason.Error{Code: codec.ProtocolError, Msg: "No Local on a shared subscription"}
	errReceiveMaximum     = &reason.Error{Code: codec.ReceiveMaximumExceeded, Msg: "too many QoS 2 messages awaiting PUBREL"}
	errKeepAlive          = &reason.Error{Code: codec.KeepAliveTimeout, Msg: "keep-alive timeout"}
	errQoSNotSupported    = &reason.Error{Code: codec.QoSNotSupported, Msg: "QoS above the server's Maximum QoS"}
	errSuperseded         = &reason.Error{Code: codec.SessionTakenOver, Msg: "another connection took the session over"}
	errOutputBacklog      = &reason.Error{Code: codec.QuotaExceeded, Msg: "client does not read its replies"}
	errSlowConsumer       = &reason.Error{Code: codec.QuotaExceeded, Msg: "client takes messages slower than they come: its queue is full"}
	errAdminKick          = &reason.Error{Code: codec.AdministrativeAction, Msg: "disconnected by the administrator"}
	errRetainNotSupported = &reason.Error{Code: codec.RetainNotSupported, Msg: "retained messages are not available"}
	errTopicLimit         = &reason.Error{Code: codec.TopicNameInvalid, Msg: "topic longer than max_topic_length or max_topic_levels"}
	errNotStored          = &reason.Error{Code: codec.UnspecifiedError, Msg: "a message could not be stored with the cluster's replication"}

	// Refusals of a CONNECT, answered with a CONNACK in every protocol
	// version (closeWith).
	errWillDenied     = &reason.Error{Code: codec.NotAuthorized, Msg: "will topic not allowed"}
	errWillTopicLimit = &reason.Error{Code: codec.TopicNameInvalid, Msg: "will topic longer than max_topic_length or max_topic_levels"}
	errTooManyConns   = &reason.Error{Code: codec.QuotaExceeded, Msg: "max_connections reached"}
	errConnectRate    = &reason.Error{Code: codec.ConnectionRateExceeded, Msg: "too many connections from this address"}
	errClientIDLength = &reason.Error{Code: codec.ClientIDNotValid, Msg: "client identifier longer than max_client_id_length"}
)

// reasonOf classifies the error a connection is closed with.
func reasonOf(err error) counters.CloseReason {
	switch {
	case errors.Is(err, errKeepAlive):
		return counters.CloseKeepAlive
	case errors.Is(err, errSuperseded):
		return counters.CloseTakeover
	case errors.Is(err, errSlowConsumer), errors.Is(err, errOutputBacklog):
		return counters.CloseSlowConsumer
	case errors.Is(err, errAdminKick):
		return counters.CloseAdmin
	}
	return counters.CloseProtocol
}

// fail closes the connection for a protocol or resource error in what the
// client sent; in is the packet at fault (0: none, as for a framing
// error).
func (c *client) fail(in codec.Type, err error) {
	c.h.stats.ProtocolFailures.Add(1)
	c.closeWith(in, err)
}

// closeWith answers err on the wire — the one place that turns errors into
// packets — and marks the connection for closing. Before CONNACK it
// answers with a CONNACK refusal [MQTT-3.2.2-6]; after, MQTT 5 clients get
// DISCONNECT with the reason code [MQTT-4.13.1-1]; MQTT 3.x clients are
// just disconnected, as 3.1.1 has no way to say why [MQTT-4.8.0-1].
// in is the packet that broke the rule (0: none). A refusal is logged
// here (logRefusal), a disconnect when the connection leaves (endFields).
func (c *client) closeWith(in codec.Type, err error) {
	code := reason.Code(err)
	if c.state == stateConnected && c.why == counters.CloseNetwork {
		c.why = reasonOf(err)
		e := c.extra()
		e.endErr, e.endIn = err, in
	}
	connack := true
	switch {
	case c.state < stateConnected && err == codec.ErrProtocolVersion:
		// Answer in a version the client understands [MQTT-3.1.2-2].
		c.refuse(codec.UnsupportedProtocolVersion)
	case c.state < stateConnected && (c.version == codec.V5 || connackRefusal(code)):
		c.refuse(code)
	case c.state == stateConnected && c.version == codec.V5:
		_, why := reason.Describe(err) // allowed even with Request Problem Information 0 [MQTT-3.1.2-29]
		c.sendDisconnect(code, why)
	default:
		connack = false
	}
	if c.state < stateConnected {
		c.logRefusal(c.h.loops[c.LoopIndex()], in, err, connack)
		c.state = stateClosed
	}
	c.conn.Close()
}

// refuse answers a CONNECT with a refusing CONNACK [MQTT-3.2.2-6]: the MQTT
// 5 reason code, or its nearest MQTT 3.x return code.
func (c *client) refuse(code codec.ReasonCode) {
	v := c.version
	ack := codec.Connack{Code: code}
	if v != codec.V5 {
		// 3.x, or a level we don't speak: 3.1.1's form is what such a
		// client most likely reads.
		v = codec.V311
		ack.Code = codec.ReasonCode(codec.V3ConnackCode(code))
	}
	buf := c.conn.Buffer()
	buf.B = ack.Append(buf.B, v)
}

// connackRefusal reports whether code refuses a CONNECT with a CONNACK in
// MQTT 3.x too: those with a 3.1.1 return code of their own, and the
// server-side ones that 3.1.1 calls "server unavailable".
func connackRefusal(code codec.ReasonCode) bool {
	switch code {
	case codec.ClientIDNotValid, codec.BadUsernameOrPassword, codec.NotAuthorized, codec.TopicNameInvalid,
		codec.ServerUnavailable, codec.ServerBusy, codec.QuotaExceeded, codec.UseAnotherServer,
		codec.ConnectionRateExceeded, codec.Banned:
		return true
	}
	return false
}

// sendDisconnect writes an MQTT 5 DISCONNECT with code and, when not
// empty, a reason string saying why.
func (c *client) sendDisconnect(code codec.ReasonCode, why string) {
	if c.version != codec.V5 {
		return
	}
	d := codec.Disconnect{Code: code}
	if why != "" {
		d.Props.Set(codec.PropReasonString)
		d.Props.ReasonString = []byte(why)
	}
	buf := c.conn.Buffer()
	buf.B = d.Append(buf.B, codec.V5)
}

// needSync asks the loop's next commit to sync before c's output goes:
// it acknowledges what the store must have (persist.Loop.NeedSync).
func (c *client) needSync(ls *loopState) {
	ls.persist.NeedSync()
	if n := len(ls.syncing); n == 0 || ls.syncing[n-1] != c {
		ls.syncing = append(ls.syncing, c)
	}
}

// unvouched drops c's pending output, which waited for a syncing commit
// that came back store.ErrUnvouched (its node frozen, or cut off, while
// it waited), and closes the connection as retire does: MQTT 5 clients
// hear 0x9C (use another server). A QoS 2 PUBLISH or PUBREL in it would
// have been a second delivery once the session's next node sends the
// message again; a PUBACK, an acknowledgement of a message the session's
// next node may not have. The client sends and gets them again where it
// reconnects.
func (c *client) unvouched() {
	if c.conn.Closing() {
		return
	}
	c.conn.Discard()
	if c.state == stateConnected {
		c.why = counters.CloseCutOff
		c.sendDisconnect(codec.UseAnotherServer, "this node cannot vouch that its cluster has the session as this connection would see it")
		c.forgetWill()
	}
	c.conn.Close()
}

// retire closes a client's connection on a node cut off from its cluster's
// majority: MQTT 5 clients hear 0x9C (use another server). The embedding
// program's own clients stay: they are this node's. No will: the client
// did nothing wrong, and its session lives on in the cluster. It reports
// whether it closed the connection.
func (c *client) retire() bool {
	if c.state != stateConnected {
		return false
	}
	if o := c.conn.Origin(); o != nil && o.Internal {
		return false
	}
	c.why = counters.CloseCutOff
	c.sendDisconnect(codec.UseAnotherServer, "this node is cut off from its cluster's majority")
	c.forgetWill()
	c.conn.Close()
	return true
}

// shutdown is the broker closing: tell MQTT 5 clients why and skip wills.
func (c *client) shutdown() {
	if c.state != stateConnected {
		return
	}
	c.why = counters.CloseShutdown
	c.sendDisconnect(codec.ServerShuttingDown, "server shutting down")
	c.forgetWill()
	c.conn.Close()
}

// forgetWill forgets the client's will: its connection ends without it.
func (c *client) forgetWill() {
	if c.ext != nil && c.ext.will != nil {
		c.ext.will.Release()
		c.ext.will = nil
	}
}

// will returns the connection's will and its Will Delay Interval; nil if
// it has none.
func (c *client) will() (*router.Message, uint32) {
	if e := c.ext; e != nil && e.will != nil {
		return e.will, e.willDelay
	}
	return nil, 0
}

// tick enforces the connect timeout, keep-alive and the MQTT 3.x retry
// interval.
func (c *client) tick(h *Handler, now int64) {
	if c.conn.Closing() {
		return
	}
	switch c.state {
	case stateNew, stateAuth:
		if now-c.lastRecv > int64(h.limits().ConnectTimeout) {
			why := errNoConnect
			if c.waitingLogin() {
				why = errNoVerdict
			} else if c.state == stateAuth {
				why = errAuthTooSlow
			}
			c.logRefusal(h.loops[c.LoopIndex()], 0, why, false)
			c.state = stateClosed
			c.conn.Close()
		}
	case stateConnected:
		// A client silent for one and a half keep-alive periods is gone
		// [MQTT-3.1.2-22].
		if c.keepAlive > 0 && now-c.lastRecv > int64(c.keepAlive)*int64(time.Second)*3/2 {
			c.fail(0, errKeepAlive)
			return
		}
		if h.limits().RetryInterval > 0 && c.version < codec.V5 {
			c.retry(now)
		}
	}
}

// closed runs when the connection is gone: detach or end the session and
// publish the will if the close was abnormal.
func (c *client) closed() {
	if e := c.ext; e != nil {
		e.pub.Stop()
	}
	c.leave()
}

// leave detaches the client from its session — ending the session if it
// does not outlive the connection — and publishes or schedules the will
// unless a normal DISCONNECT dropped it. It runs once: at DISCONNECT, so a
// reconnect that races the socket's close already finds the session
// detached, or when the connection goes.
func (c *client) leave() {
	wasConnected := c.state == stateConnected
	c.state = stateClosed
	if !wasConnected || c.sess == nil {
		if e := c.ext; e != nil && e.will != nil {
			e.will.Release() // never connected: no will [MQTT-3.1.2-8] needs a session
			e.will = nil
		}
		return
	}
	h := c.h
	s := c.sess
	ls := h.loops[c.LoopIndex()]
	c.dropRetained(ls, "") // not owed to a connection that is gone
	sw := ls.persist.W
	ls.ctr.Connected.Add(-1)
	ls.ctr.Closes[c.why].Add(1)
	now := time.Now().UnixNano()
	if ev := h.lifecycle(ls, now); ev != nil {
		ev.Str("client", s.ClientID()).Str("remote", c.conn.RemoteAddr().String()).Stringer("reason", c.why)
		c.endFields(ls, ev)
		ev.Msg("client disconnected")
	}
	will, delay := c.will()
	if will != nil && c.dropWill {
		will.Release()
		will = nil
	}
	if c.ext != nil {
		c.ext.will = nil // will is ours now
	}
	at := h.expiry.Now()
	var orphans []session.Delivery
	var delayed *router.Message // the will, waiting for its delay
	var delayedAt int64
	s.Lock()
	detached := s.DetachLocked(c)
	if detached {
		switch {
		case s.Expiry == 0:
			orphans = h.expiry.EndLocked(sw, s)
		case s.Expiry != session.NeverExpire:
			s.ExpireAt = at + secs(s.Expiry)
		}
		if s.Expiry != 0 && sw != nil {
			// The offline session's deadline, and its will while one is
			// still to come.
			h.persist.StoreSessionLocked(sw, s, will, delay)
		}
	}
	// The will: at once, or after the shorter of its delay and the
	// session's expiry [MQTT-3.1.2-8]; not if another connection took the
	// session over meanwhile [MQTT-3.1.3-9] (a zero delay goes at once:
	// takeOver decided it).
	if will != nil {
		switch wait := min(delay, s.Expiry); {
		case wait == 0: // published below
		case c.gen != s.Gen:
			will.Release()
			will = nil
		default:
			delayed, delayedAt = will, at+secs(wait) // of this attachment: c.gen == s.Gen
			will = nil
		}
	}
	if detached && s.Expiry != 0 {
		h.expiry.ArmLocked(s, delayed, delayedAt)
	}
	if c.ext != nil && c.ext.stood && delayed == nil && c.gen == s.Gen {
		// Published below, or none: the will that stood goes. (One
		// put to wait replaces it; a connection that took the session
		// over meanwhile dropped it.)
		h.expiry.UnstandWill(s.ClientID())
	}
	s.Unlock()
	h.disp.Reroute(sw, orphans)
	if will != nil {
		h.expiry.SendWill(will)
	}
}

// secs is n seconds in nanoseconds.
func secs(n uint32) int64 { return int64(n) * int64(time.Second) }

// Notes the router carries to a client on its loop (dispatch.Notify).
const (
	noteTakeover      dispatch.Note = iota + 1 // another connection took the session over
	noteTakeoverClean                          // the same, with Clean Start
	noteAdminKick                              // the admin API disconnects it
	noteLogin                                  // the login pool's verdict is in
	noteRetained                               // retained messages may be read (Barrier)
)

// Notify implements dispatch.Conn: a note posted for the client, on its
// loop.
func (c *client) Notify(n dispatch.Note) {
	switch n {
	case noteTakeover, noteTakeoverClean:
		c.takeOver(n == noteTakeoverClean)
	case noteAdminKick:
		if c.state == stateConnected && !c.conn.Closing() {
			c.closeWith(0, errAdminKick)
		}
	case noteLogin:
		c.verdict()
	case noteRetained:
		c.retainedReady()
	}
}
