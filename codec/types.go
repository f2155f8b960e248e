package codec

import "strconv"

// Type is an MQTT control packet type, the high nibble of the first byte.
type Type byte

// Control packet types [MQTT-2.1.2].
const (
	CONNECT     Type = 1
	CONNACK     Type = 2
	PUBLISH     Type = 3
	PUBACK      Type = 4
	PUBREC      Type = 5
	PUBREL      Type = 6
	PUBCOMP     Type = 7
	SUBSCRIBE   Type = 8
	SUBACK      Type = 9
	UNSUBSCRIBE Type = 10
	UNSUBACK    Type = 11
	PINGREQ     Type = 12
	PINGRESP    Type = 13
	DISCONNECT  Type = 14
	AUTH        Type = 15
)

var typeNames = [...]string{"RESERVED", "CONNECT", "CONNACK", "PUBLISH", "PUBACK", "PUBREC",
	"PUBREL", "PUBCOMP", "SUBSCRIBE", "SUBACK", "UNSUBSCRIBE", "UNSUBACK", "PINGREQ", "PINGRESP",
	"DISCONNECT", "AUTH"}

func (t Type) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return "Type(" + strconv.Itoa(int(t)) + ")"
}

// Protocol levels, as carried in CONNECT.
const (
	V31  byte = 3 // MQTT 3.1, protocol name "MQIsdp"
	V311 byte = 4 // MQTT 3.1.1
	V5   byte = 5 // MQTT 5.0
)

// ReasonCode is an MQTT 5 reason code [MQTT-2.4]. For MQTT 3.x the codec maps
// the few that exist there (CONNACK return codes, SUBACK failure).
type ReasonCode byte

// Reason codes of MQTT 5.0, section 2.4.
const (
	Success                     ReasonCode = 0x00 // also Normal Disconnection, Granted QoS 0
	GrantedQoS1                 ReasonCode = 0x01
	GrantedQoS2                 ReasonCode = 0x02
	DisconnectWithWill          ReasonCode = 0x04
	NoMatchingSubscribers       ReasonCode = 0x10
	NoSubscriptionExisted       ReasonCode = 0x11
	ContinueAuthentication      ReasonCode = 0x18
	ReAuthenticate              ReasonCode = 0x19
	UnspecifiedError            ReasonCode = 0x80
	MalformedPacket             ReasonCode = 0x81
	ProtocolError               ReasonCode = 0x82
	ImplementationSpecific      ReasonCode = 0x83
	UnsupportedProtocolVersion  ReasonCode = 0x84
	ClientIDNotValid            ReasonCode = 0x85
	BadUsernameOrPassword       ReasonCode = 0x86
	NotAuthorized               ReasonCode = 0x87
	ServerUnavailable           ReasonCode = 0x88
	ServerBusy                  ReasonCode = 0x89
	Banned                      ReasonCode = 0x8A
	ServerShuttingDown          ReasonCode = 0x8B
	BadAuthenticationMethod     ReasonCode = 0x8C
	KeepAliveTimeout            ReasonCode = 0x8D
	SessionTakenOver            ReasonCode = 0x8E
	TopicFilterInvalid          ReasonCode = 0x8F
	TopicNameInvalid            ReasonCode = 0x90
	PacketIDInUse               ReasonCode = 0x91
	PacketIDNotFound            ReasonCode = 0x92
	ReceiveMaximumExceeded      ReasonCode = 0x93
	TopicAliasInvalid           ReasonCode = 0x94
	PacketTooLarge              ReasonCode = 0x95
	MessageRateTooHigh          ReasonCode = 0x96
	QuotaExceeded               ReasonCode = 0x97
	AdministrativeAction        ReasonCode = 0x98
	PayloadFormatInvalid        ReasonCode = 0x99
	RetainNotSupported          ReasonCode = 0x9A
	QoSNotSupported             ReasonCode = 0x9B
	UseAnotherServer            ReasonCode = 0x9C
	ServerMoved                 ReasonCode = 0x9D
	SharedSubsNotSupported      ReasonCode = 0x9E
	ConnectionRateExceeded      ReasonCode = 0x9F
	MaximumConnectTime          ReasonCode = 0xA0
	SubscriptionIDsNotSupported ReasonCode = 0xA1
	WildcardSubsNotSupported    ReasonCode = 0xA2
)

// IsError reports whether rc signals failure (0x80 and above) [MQTT-2.4].
func (rc ReasonCode) IsError() bool { return rc >= 0x80 }

// String is the code in hex, as the specification writes it: "0x87".
func (rc ReasonCode) String() string {
	return "0x" + strconv.FormatUint(uint64(rc), 16)
}

// Name is the code's name in the specification's words, lower case, for
// logs: "not authorized". A code below 0x80 means different things in
// different packets (0x00 is Success, Normal Disconnection and Granted
// QoS 0); Name gives the meaning in CONNACK and DISCONNECT. An unknown
// code is "unknown".
func (rc ReasonCode) Name() string {
	if n := reasonNames[rc]; n != "" {
		return n
	}
	return "unknown"
}

var reasonNames = [256]string{
	Success:                     "success",
	GrantedQoS1:                 "granted QoS 1",
	GrantedQoS2:                 "granted QoS 2",
	DisconnectWithWill:          "disconnect with will message",
	NoMatchingSubscribers:       "no matching subscribers",
	NoSubscriptionExisted:       "no subscription existed",
	ContinueAuthentication:      "continue authentication",
	ReAuthenticate:              "re-authenticate",
	UnspecifiedError:            "unspecified error",
	MalformedPacket:             "malformed packet",
	ProtocolError:               "protocol error",
	ImplementationSpecific:      "implementation specific error",
	UnsupportedProtocolVersion:  "unsupported protocol version",
	ClientIDNotValid:            "client identifier not valid",
	BadUsernameOrPassword:       "bad user name or password",
	NotAuthorized:               "not authorized",
	ServerUnavailable:           "server unavailable",
	ServerBusy:                  "server busy",
	Banned:                      "banned",
	ServerShuttingDown:          "server shutting down",
	BadAuthenticationMethod:     "bad authentication method",
	KeepAliveTimeout:            "keep alive timeout",
	SessionTakenOver:            "session taken over",
	TopicFilterInvalid:          "topic filter invalid",
	TopicNameInvalid:            "topic name invalid",
	PacketIDInUse:               "packet identifier in use",
	PacketIDNotFound:            "packet identifier not found",
	ReceiveMaximumExceeded:      "receive maximum exceeded",
	TopicAliasInvalid:           "topic alias invalid",
	PacketTooLarge:              "packet too large",
	MessageRateTooHigh:          "message rate too high",
	QuotaExceeded:               "quota exceeded",
	AdministrativeAction:        "administrative action",
	PayloadFormatInvalid:        "payload format invalid",
	RetainNotSupported:          "retain not supported",
	QoSNotSupported:             "QoS not supported",
	UseAnotherServer:            "use another server",
	ServerMoved:                 "server moved",
	SharedSubsNotSupported:      "shared subscriptions not supported",
	ConnectionRateExceeded:      "connection rate exceeded",
	MaximumConnectTime:          "maximum connect time",
	SubscriptionIDsNotSupported: "subscription identifiers not supported",
	WildcardSubsNotSupported:    "wildcard subscriptions not supported",
}

// MQTT 3.1/3.1.1 CONNACK return codes [MQTT-3.2.2.3].
const (
	V3Accepted             byte = 0
	V3BadProtocolVersion   byte = 1
	V3IdentifierRejected   byte = 2
	V3ServerUnavailable    byte = 3
	V3BadUsernameOrPass    byte = 4
	V3NotAuthorized        byte = 5
	V3SubackFailure        byte = 0x80
	v3ConnackReturnCodeMax      = V3NotAuthorized
)

// V3ConnackCode maps an MQTT 5 CONNACK reason code to the nearest MQTT 3.x
// return code.
func V3ConnackCode(rc ReasonCode) byte {
	switch rc {
	case Success:
		return V3Accepted
	case UnsupportedProtocolVersion:
		return V3BadProtocolVersion
	case ClientIDNotValid:
		return V3IdentifierRejected
	case BadUsernameOrPassword, BadAuthenticationMethod:
		return V3BadUsernameOrPass
	case NotAuthorized, Banned:
		return V3NotAuthorized
	}
	return V3ServerUnavailable
}

// Error is a decode or validation failure. Code is the reason code to answer
// with; Msg says what was wrong.
type Error struct {
	Code ReasonCode
	Msg  string
}

func (e *Error) Error() string { return "codec: " + e.Msg }

// Errors returned by this package, one per cause. Compare with ==.
var (
	// ErrShort means the buffer ends before the fixed header does: wait for
	// more bytes. It is not a protocol error.
	ErrShort = &Error{Success, "incomplete fixed header"}

	ErrMalformedVarint   = &Error{MalformedPacket, "malformed variable byte integer"}
	ErrReservedType      = &Error{MalformedPacket, "reserved packet type 0"}
	ErrReservedFlags     = &Error{MalformedPacket, "invalid fixed header flags"}
	ErrPacketTooLarge    = &Error{PacketTooLarge, "packet exceeds the maximum packet size"}
	ErrTruncated         = &Error{MalformedPacket, "packet shorter than its fields"}
	ErrTrailingBytes     = &Error{MalformedPacket, "bytes after the last field"}
	ErrInvalidUTF8       = &Error{MalformedPacket, "invalid UTF-8 string"}
	ErrProtocolName      = &Error{ProtocolError, "unknown protocol name"}
	ErrProtocolVersion   = &Error{UnsupportedProtocolVersion, "unsupported protocol version"}
	ErrConnectReserved   = &Error{MalformedPacket, "CONNECT reserved flag set"}
	ErrWillFlags         = &Error{MalformedPacket, "will QoS or retain set without will flag"}
	ErrInvalidQoS        = &Error{MalformedPacket, "QoS 3"}
	ErrPasswordNoUser    = &Error{MalformedPacket, "password flag without username flag"}
	ErrDupQoS0           = &Error{MalformedPacket, "DUP set on a QoS 0 PUBLISH"}
	ErrPacketIDZero      = &Error{MalformedPacket, "packet identifier 0"}
	ErrTopicWildcard     = &Error{TopicNameInvalid, "wildcard in topic name"}
	ErrTopicEmpty        = &Error{TopicNameInvalid, "empty topic name"}
	ErrTopicNoAlias      = &Error{ProtocolError, "empty topic name without a topic alias"}
	ErrTopicAliasZero    = &Error{TopicAliasInvalid, "topic alias 0"}
	ErrClientSubID       = &Error{ProtocolError, "subscription identifier in a PUBLISH from a client"}
	ErrNoFilters         = &Error{ProtocolError, "SUBSCRIBE or UNSUBSCRIBE without topic filters"}
	ErrSubOptions        = &Error{MalformedPacket, "reserved subscription option bits set"}
	ErrRetainHandling    = &Error{ProtocolError, "retain handling 3"}
	ErrPropertyLength    = &Error{MalformedPacket, "property length exceeds packet"}
	ErrPropertyUnknown   = &Error{MalformedPacket, "unknown property identifier"}
	ErrPropertyNotHere   = &Error{MalformedPacket, "property not allowed in this packet"}
	ErrPropertyDuplicate = &Error{ProtocolError, "property included more than once"}
	ErrPropertyValue     = &Error{ProtocolError, "invalid property value"}
	ErrReasonCode        = &Error{MalformedPacket, "invalid reason code"}
	ErrConnackFlags      = &Error{MalformedPacket, "CONNACK reserved flags set"}
	ErrWillTopic         = &Error{MalformedPacket, "invalid will topic"}
	ErrPayloadFormat     = &Error{PayloadFormatInvalid, "payload is not UTF-8"}
)
