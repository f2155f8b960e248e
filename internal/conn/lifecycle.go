package conn

import (
	"errors"
	"fmt"

	"github.com/rs/zerolog"

	"github.com/shoalmq/shoal/codec"
	"github.com/shoalmq/shoal/eventloop"
	"github.com/shoalmq/shoal/internal/admit"
	"github.com/shoalmq/shoal/internal/counters"
	"github.com/shoalmq/shoal/internal/limit"
	"github.com/shoalmq/shoal/internal/reason"
)

// Connection lifecycle log lines — connected, refused (with the rule),
// disconnected (with the reason and the rule), taken over — at info
// level, rate-limited per loop so that a reconnect storm cannot flood the
// log (and none at all when LogConnections is off): a burst of
// lifecycleBurst lines, then lifecycleRate a second (limit.Lines); what is
// held back is counted and reported once a tick. Loop goroutine only: no
// locks.
const (
	lifecycleBurst = 100
	lifecycleRate  = 20 // lines per second, per loop
)

// lifecycle returns a log event for one lifecycle line at now, or nil when
// the line is not logged (level above info, or over the rate).
func (h *Handler) lifecycle(ls *loopState, now int64) *zerolog.Event {
	if !h.cfg.LogConnections || !h.lg().Info().Enabled() || !ls.life.Allow(now) {
		return nil
	}
	return h.lg().Info()
}

// reportSuppressed logs how many lifecycle lines loop ls held back since
// the last report. Called on the loop's tick.
func (h *Handler) reportSuppressed(ls *loopState) {
	if n := ls.life.Held(); n > 0 {
		h.lg().Warn().Int("lines", n).Msg("connection events not logged: over the rate limit")
	}
}

// Closes before CONNACK that answer nothing: the connect timeout. Code 0:
// no reason code is sent or logged.
var (
	errNoConnect   = &reason.Error{Msg: "no CONNECT within connect_timeout"}
	errNoVerdict   = &reason.Error{Msg: "the authenticator did not answer within connect_timeout"}
	errAuthTooSlow = &reason.Error{Msg: "authentication exchange not complete within connect_timeout"}
)

// logRefusal writes the line for a connection refused before CONNACK:
// who it claimed to be, and which rule refused it. err is the rule, in
// the packet that broke it (0: none); connack says whether a CONNACK told
// the client (MQTT 3.x clients read its 3.1.1 return code). Called once
// per connection, when it is refused.
func (c *client) logRefusal(ls *loopState, in codec.Type, err error, connack bool) {
	ev := c.h.lifecycle(ls, c.conn.Loop().Now())
	if ev == nil {
		return
	}
	id, user, hasUser := c.claimed(ls)
	ev.Str("client", reason.Clip(id))
	if hasUser {
		ev.Str("username", reason.Clip(user)) // never the password
	}
	ev.Str("remote", c.conn.RemoteAddr().String())
	if p, ok := protocolNames[c.version]; ok {
		ev.Str("protocol", p)
	}
	if code := reason.Code(err); code.IsError() {
		ev.Str("reason_code", code.String()).Str("reason_name", code.Name())
	}
	ev.Str("reason", c.rule(ls, in, err)).Bool("connack", connack).Msg("connection refused")
}

// claimed is the client id and user name the connection's CONNECT
// carried, for a refusal line: those of the CONNECT waiting for a login
// or an authentication exchange, else those of the CONNECT the loop
// decoded last if it was this connection's; none before a CONNECT was
// decoded.
func (c *client) claimed(ls *loopState) (id, user string, hasUser bool) {
	if e := c.ext; e != nil && e.pending != nil {
		return e.pending.id, e.pending.user, e.pending.hasUser
	}
	if ls.connectOf == c {
		p := &ls.connect
		return string(p.ClientID), string(p.Username), p.UsernameFlag
	}
	return "", "", false
}

// endFields adds to a "client disconnected" line what ended the
// connection: detail, the rule in words (a malformed packet's fault, a
// limit and its value, the client's own DISCONNECT reason code), and
// reason_code, the code the broker sent in DISCONNECT (MQTT 5 only: 3.x
// has no way to say why).
func (c *client) endFields(ls *loopState, ev *zerolog.Event) {
	var sent codec.ReasonCode
	switch c.why {
	case counters.CloseTakeover:
		sent = codec.SessionTakenOver
	case counters.CloseShutdown:
		sent = codec.ServerShuttingDown
	case counters.CloseCutOff:
		sent = codec.UseAnotherServer
	case counters.CloseNormal:
		// leave runs within onDisconnect: ls.disconnect is this client's.
		if d := &ls.disconnect; c.version == codec.V5 && d.Code.IsError() {
			detail := "client sent DISCONNECT " + d.Code.String() + " (" + d.Code.Name() + ")"
			if d.Props.Has(codec.PropReasonString) {
				detail += ": " + reason.Clip(string(d.Props.ReasonString))
			}
			ev.Str("detail", detail)
		}
	}
	if e := c.ext; e != nil && e.endErr != nil {
		sent = reason.Code(e.endErr)
		ev.Str("detail", c.rule(ls, e.endIn, e.endErr))
	}
	if c.version == codec.V5 && sent.IsError() {
		ev.Str("reason_code", sent.String()).Str("reason_name", sent.Name())
	}
}

// rule says in words which rule err enforces, with the limit's value when
// there is one: the reason of a refusal line, the detail of a disconnect
// line. in is the packet that broke it (0: none, as for a framing error
// or a timer). Only for a line that is written: it formats.
func (c *client) rule(ls *loopState, in codec.Type, err error) string {
	h := c.h
	lim := h.limits()
	var be *reason.Error
	if errors.As(err, &be) && be.Detail != "" {
		return be.Detail
	}
	switch err {
	case errTooManyConns:
		return fmt.Sprintf("max_connections reached (%d)", lim.MaxConnections)
	case errConnectRate:
		return fmt.Sprintf("connect_rate exceeded for %v (%g a second, burst %d)",
			limit.AddrOf(c.conn.RemoteAddr()), lim.ConnectRate, lim.ConnectBurst)
	case errClientIDLength:
		id, _, _ := c.claimed(ls)
		return fmt.Sprintf("client id of %d bytes longer than max_client_id_length (%d)", len(id), lim.MaxClientIDLength)
	case admit.ErrLoginBusy:
		return fmt.Sprintf("auth_queue full: %d logins waiting for the authenticator", h.gate.Queue())
	case errNoConnect, errNoVerdict, errAuthTooSlow:
		return fmt.Sprintf("%s (%v)", err.(*reason.Error).Msg, lim.ConnectTimeout)
	case errKeepAlive:
		return fmt.Sprintf("no packet within 1.5 times keep_alive (%d s)", c.keepAlive)
	case errReceiveMaximum:
		return fmt.Sprintf("more than receive_maximum (%d) QoS 2 messages awaiting PUBREL", h.cfg.ReceiveMaximum)
	case errQoSNotSupported:
		return fmt.Sprintf("PUBLISH QoS above max_qos (%d)", h.cfg.MaxQoS)
	case errRetainNotSupported:
		return "retained PUBLISH while retain_available is false"
	case errAliasInvalid:
		return fmt.Sprintf("topic alias 0 or above topic_alias_maximum (%d)", h.cfg.TopicAliasMaximum)
	case errSlowConsumer:
		return fmt.Sprintf("session queue full (max_queued %d messages, max_queued_bytes %d) and slow_consumer is disconnect",
			lim.MaxQueued, lim.MaxQueuedBytes)
	case errOutputBacklog:
		return fmt.Sprintf("over %d bytes of replies unread while still sending", maxReplyBacklog)
	case eventloop.ErrInputBacklog:
		return fmt.Sprintf("over %d bytes of input waiting while reading was paused", eventloop.MaxPausedInput)
	case codec.ErrPacketTooLarge:
		return fmt.Sprintf("packet larger than max_packet_size (%d bytes)", h.cfg.MaxPacketSize)
	case codec.ErrProtocolVersion:
		return fmt.Sprintf("unsupported protocol version (level %d)", c.version)
	}
	code, msg := reason.Describe(err)
	var ce *codec.Error
	if errors.As(err, &ce) && in != 0 {
		if code == codec.MalformedPacket {
			return "malformed " + in.String() + ": " + msg
		}
		return in.String() + ": " + msg
	}
	if msg == "" {
		return err.Error()
	}
	return msg
}
