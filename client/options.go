package client

import (
	"errors"
	"fmt"
	"net"

	"github.com/shoalmq/shoal/codec"
)

// Options configures one connection. Zero values mean the documented
// defaults.
type Options struct {
	// Addr is the broker's "host:port".
	Addr string
	// ClientID may be empty for MQTT 3.1.1 and 5 (the broker assigns one;
	// 3.1.1 then requires CleanStart [MQTT-3.1.3-7]).
	ClientID string
	// Version is the protocol level: 3 (MQTT 3.1), 4 (3.1.1) or 5.
	// Default 4.
	Version byte
	// KeepAlive in seconds; 0 turns keep-alive off. In MQTT 5 the broker's
	// Server Keep Alive replaces it [MQTT-3.2.2-21].
	KeepAlive  uint16
	CleanStart bool
	// Username and Password are sent when non-empty. MQTT 3.x allows a
	// password only with a username [MQTT-3.1.2-22].
	Username, Password string
	// LocalAddr is the source IP to connect from; "" lets the kernel
	// choose. Several source addresses multiply the ephemeral ports
	// available towards one broker address. On Linux the port is chosen
	// at connect time (IP_BIND_ADDRESS_NO_PORT), see dial_linux.go.
	LocalAddr string
	// SessionExpiry is the MQTT 5 Session Expiry Interval in seconds.
	SessionExpiry uint32
	// Will, when non-nil, is the Will Message.
	Will *Will

	// MaxInflight bounds the outbound QoS 1 and 2 messages awaiting
	// acknowledgement. Default 64; in MQTT 5 never more than the broker's
	// Receive Maximum [MQTT-3.3.4-7].
	MaxInflight uint16
	// MaxQueued bounds, in bytes, the output that is queued but not yet
	// accepted by the kernel; beyond it Publish returns ErrQueueFull.
	// Default 1 MiB: at 256-byte messages that is 4,000 messages, far more
	// than a round trip's worth on a LAN.
	MaxQueued int
	// MaxPacketSize bounds inbound packets; a larger one closes the
	// connection. 0: no limit beyond the protocol's.
	MaxPacketSize int

	// OnMessage is called on the connection's loop for each inbound
	// PUBLISH. The Message and its slices are valid only during the call.
	OnMessage func(m *Message)
	// OnClose is called on the connection's loop once a connection that
	// Connect returned has closed: err is nil after Disconnect or Close,
	// otherwise the cause (a *ReasonError for a broker's DISCONNECT).
	OnClose func(err error)
	// OnWritable is called on the connection's loop when CanPublish, having
	// returned false (or Publish ErrQueueFull), would now return true.
	OnWritable func()
}

// Will is a Will Message [MQTT-3.1.2-8].
type Will struct {
	Topic   string
	Payload []byte
	QoS     byte
	Retain  bool
	// DelaySeconds is the MQTT 5 Will Delay Interval.
	DelaySeconds uint32
}

// Message is an inbound PUBLISH. It and its slices are valid only during
// the OnMessage call.
type Message struct {
	Topic    []byte
	Payload  []byte
	QoS      byte
	Retain   bool
	Dup      bool
	PacketID uint16
	// Props are the MQTT 5 properties; nil for MQTT 3.x.
	Props *codec.Properties
}

// Defaults.
const (
	defaultMaxInflight = 64
	defaultMaxQueued   = 1 << 20
)

// Errors, one per cause.
var (
	// ErrClosed is returned for work on a closed connection, and wrapped
	// (errors.Is) by the error of every operation the close cut short.
	ErrClosed = errors.New("client: connection closed")
	// ErrEngineClosed is the cause when Engine.Close ended a connection.
	ErrEngineClosed = errors.New("client: engine closed")
	// ErrQueueFull means the connection already holds Options.MaxQueued
	// bytes of unsent output; retry after OnWritable.
	ErrQueueFull = errors.New("client: output queue full")
	// ErrKeepAlive means no PINGRESP came within the keep-alive period.
	ErrKeepAlive = errors.New("client: no PINGRESP within the keep-alive period")
	// ErrUnexpected means the broker sent a packet a client never expects
	// (or one before CONNACK).
	ErrUnexpected = errors.New("client: unexpected packet from the broker")
	// ErrDisconnectTimeout means the socket did not drain within the
	// time Disconnect allows, so the rest of the output was dropped.
	ErrDisconnectTimeout = errors.New("client: output not drained before disconnect")
)

// ReasonError is a failure reason code sent by the broker: a refused
// CONNECT (CONNACK), a failed subscription (SUBACK, UNSUBACK), a refused
// publication (PUBACK, PUBREC) or a server DISCONNECT. MQTT 3.x CONNACK
// return codes are given as their MQTT 5 equivalents (2, identifier
// rejected, is ClientIDNotValid 0x85).
type ReasonError struct {
	Packet codec.Type
	Code   codec.ReasonCode
	Reason string // MQTT 5 Reason String, if the broker sent one
}

func (e *ReasonError) Error() string {
	s := fmt.Sprintf("client: %v reason code %v (%s)", e.Packet, e.Code, reasonText(e.Code))
	if e.Reason != "" {
		s += ": " + e.Reason
	}
	return s
}

func reasonText(rc codec.ReasonCode) string {
	switch rc {
	case codec.UnspecifiedError:
		return "unspecified error"
	case codec.MalformedPacket:
		return "malformed packet"
	case codec.ProtocolError:
		return "protocol error"
	case codec.ImplementationSpecific:
		return "implementation specific error"
	case codec.UnsupportedProtocolVersion:
		return "unsupported protocol version"
	case codec.ClientIDNotValid:
		return "client identifier not valid"
	case codec.BadUsernameOrPassword:
		return "bad user name or password"
	case codec.NotAuthorized:
		return "not authorized"
	case codec.ServerUnavailable:
		return "server unavailable"
	case codec.ServerBusy:
		return "server busy"
	case codec.Banned:
		return "banned"
	case codec.ServerShuttingDown:
		return "server shutting down"
	case codec.KeepAliveTimeout:
		return "keep alive timeout"
	case codec.SessionTakenOver:
		return "session taken over"
	case codec.TopicFilterInvalid:
		return "topic filter invalid"
	case codec.TopicNameInvalid:
		return "topic name invalid"
	case codec.PacketIDInUse:
		return "packet identifier in use"
	case codec.ReceiveMaximumExceeded:
		return "receive maximum exceeded"
	case codec.PacketTooLarge:
		return "packet too large"
	case codec.QuotaExceeded:
		return "quota exceeded"
	case codec.QoSNotSupported:
		return "QoS not supported"
	case codec.SharedSubsNotSupported:
		return "shared subscriptions not supported"
	case codec.WildcardSubsNotSupported:
		return "wildcard subscriptions not supported"
	}
	return "failure"
}

// v3Reason maps an MQTT 3.x CONNACK return code to its MQTT 5 reason
// code [MQTT-3.2.2.3].
func v3Reason(rc byte) codec.ReasonCode {
	switch rc {
	case codec.V3Accepted:
		return codec.Success
	case codec.V3BadProtocolVersion:
		return codec.UnsupportedProtocolVersion
	case codec.V3IdentifierRejected:
		return codec.ClientIDNotValid
	case codec.V3ServerUnavailable:
		return codec.ServerUnavailable
	case codec.V3BadUsernameOrPass:
		return codec.BadUsernameOrPassword
	case codec.V3NotAuthorized:
		return codec.NotAuthorized
	}
	return codec.UnspecifiedError
}

// withDefaults validates o and fills in its defaults.
func (o Options) withDefaults() (Options, error) {
	if o.Version == 0 {
		o.Version = codec.V311
	}
	if o.Version < codec.V31 || o.Version > codec.V5 {
		return o, fmt.Errorf("client: protocol version %d is not 3, 4 or 5", o.Version)
	}
	if _, _, err := net.SplitHostPort(o.Addr); err != nil {
		return o, fmt.Errorf("client: address %q: %w", o.Addr, err)
	}
	if o.LocalAddr != "" && net.ParseIP(o.LocalAddr) == nil {
		return o, fmt.Errorf("client: local address %q is not an IP address", o.LocalAddr)
	}
	if o.Password != "" && o.Username == "" && o.Version < codec.V5 {
		return o, errors.New("client: MQTT 3.x sends a password only with a user name") // [MQTT-3.1.2-22]
	}
	if w := o.Will; w != nil {
		if err := codec.CheckTopicName([]byte(w.Topic)); err != nil {
			return o, fmt.Errorf("client: will topic: %w", err)
		}
		if w.QoS > 2 {
			return o, errors.New("client: will QoS above 2")
		}
	}
	if o.MaxInflight == 0 {
		o.MaxInflight = defaultMaxInflight
	}
	if o.MaxQueued <= 0 {
		o.MaxQueued = defaultMaxQueued
	}
	return o, nil
}

// connectPacket encodes the CONNECT for o.
func (o *Options) connectPacket() []byte {
	p := codec.Connect{
		Version:    o.Version,
		CleanStart: o.CleanStart,
		KeepAlive:  o.KeepAlive,
		ClientID:   []byte(o.ClientID),
	}
	if o.Version == codec.V5 {
		if o.SessionExpiry != 0 {
			p.Props.SessionExpiry = o.SessionExpiry
			p.Props.Set(codec.PropSessionExpiry)
		}
	}
	if w := o.Will; w != nil {
		p.WillFlag = true
		p.WillTopic = []byte(w.Topic)
		p.WillPayload = w.Payload
		p.WillQoS = w.QoS
		p.WillRetain = w.Retain
		if o.Version == codec.V5 && w.DelaySeconds != 0 {
			p.WillProps.WillDelay = w.DelaySeconds
			p.WillProps.Set(codec.PropWillDelay)
		}
	}
	if o.Username != "" {
		p.UsernameFlag = true
		p.Username = []byte(o.Username)
	}
	if o.Password != "" {
		p.PasswordFlag = true
		p.Password = []byte(o.Password)
	}
	return p.Append(nil)
}
