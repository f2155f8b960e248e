package codec

// PropID identifies an MQTT 5 property [MQTT-2.2.2.2].
type PropID byte

// Property identifiers of MQTT 5.0, table 2-4.
const (
	PropPayloadFormat        PropID = 0x01
	PropMessageExpiry        PropID = 0x02
	PropContentType          PropID = 0x03
	PropResponseTopic        PropID = 0x08
	PropCorrelationData      PropID = 0x09
	PropSubscriptionID       PropID = 0x0B
	PropSessionExpiry        PropID = 0x11
	PropAssignedClientID     PropID = 0x12
	PropServerKeepAlive      PropID = 0x13
	PropAuthMethod           PropID = 0x15
	PropAuthData             PropID = 0x16
	PropRequestProblemInfo   PropID = 0x17
	PropWillDelay            PropID = 0x18
	PropRequestResponseInfo  PropID = 0x19
	PropResponseInfo         PropID = 0x1A
	PropServerReference      PropID = 0x1C
	PropReasonString         PropID = 0x1F
	PropReceiveMaximum       PropID = 0x21
	PropTopicAliasMaximum    PropID = 0x22
	PropTopicAlias           PropID = 0x23
	PropMaximumQoS           PropID = 0x24
	PropRetainAvailable      PropID = 0x25
	PropUser                 PropID = 0x26
	PropMaximumPacketSize    PropID = 0x27
	PropWildcardSubAvailable PropID = 0x28
	PropSubIDAvailable       PropID = 0x29
	PropSharedSubAvailable   PropID = 0x2A
)

// propKind is how a property's value is encoded.
type propKind uint8

const (
	kindNone propKind = iota
	kindByte
	kindU16
	kindU32
	kindVarint
	kindStr
	kindBin
	kindPair
)

var propKinds = [64]propKind{
	PropPayloadFormat: kindByte, PropMessageExpiry: kindU32, PropContentType: kindStr,
	PropResponseTopic: kindStr, PropCorrelationData: kindBin, PropSubscriptionID: kindVarint,
	PropSessionExpiry: kindU32, PropAssignedClientID: kindStr, PropServerKeepAlive: kindU16,
	PropAuthMethod: kindStr, PropAuthData: kindBin, PropRequestProblemInfo: kindByte,
	PropWillDelay: kindU32, PropRequestResponseInfo: kindByte, PropResponseInfo: kindStr,
	PropServerReference: kindStr, PropReasonString: kindStr, PropReceiveMaximum: kindU16,
	PropTopicAliasMaximum: kindU16, PropTopicAlias: kindU16, PropMaximumQoS: kindByte,
	PropRetainAvailable: kindByte, PropUser: kindPair, PropMaximumPacketSize: kindU32,
	PropWildcardSubAvailable: kindByte, PropSubIDAvailable: kindByte, PropSharedSubAvailable: kindByte,
}

// Property sets: which properties each packet may carry (table 2-4).
// willProps is the will-properties block of CONNECT [MQTT-3.1.3.2].
type propSet uint64

func setOf(ids ...PropID) propSet {
	var s propSet
	for _, id := range ids {
		s |= 1 << id
	}
	return s
}

var (
	connectProps = setOf(PropSessionExpiry, PropAuthMethod, PropAuthData, PropRequestProblemInfo,
		PropRequestResponseInfo, PropReceiveMaximum, PropTopicAliasMaximum, PropUser, PropMaximumPacketSize)
	willProps = setOf(PropPayloadFormat, PropMessageExpiry, PropContentType, PropResponseTopic,
		PropCorrelationData, PropWillDelay, PropUser)
	connackProps = setOf(PropSessionExpiry, PropAssignedClientID, PropServerKeepAlive, PropAuthMethod,
		PropAuthData, PropResponseInfo, PropServerReference, PropReasonString, PropReceiveMaximum,
		PropTopicAliasMaximum, PropMaximumQoS, PropRetainAvailable, PropUser, PropMaximumPacketSize,
		PropWildcardSubAvailable, PropSubIDAvailable, PropSharedSubAvailable)
	publishProps = setOf(PropPayloadFormat, PropMessageExpiry, PropContentType, PropResponseTopic,
		PropCorrelationData, PropSubscriptionID, PropTopicAlias, PropUser)
	ackProps         = setOf(PropReasonString, PropUser)
	subscribeProps   = setOf(PropSubscriptionID, PropUser)
	unsubscribeProps = setOf(PropUser)
	disconnectProps  = setOf(PropSessionExpiry, PropServerReference, PropReasonString, PropUser)
	authProps        = setOf(PropAuthMethod, PropAuthData, PropReasonString, PropUser)
)

// UserProperty is one name/value pair; both alias the frame.
type UserProperty struct {
	Key, Value []byte
}

// Properties holds the MQTT 5 properties of one packet. Present has bit
// 1<<id set for every property that was decoded or is to be encoded; the
// typed fields hold the values. User and SubIDs keep wire order.
type Properties struct {
	Present uint64

	PayloadFormat        byte
	RequestProblemInfo   byte
	RequestResponseInfo  byte
	MaximumQoS           byte
	RetainAvailable      byte
	WildcardSubAvailable byte
	SubIDAvailable       byte
	SharedSubAvailable   byte

	ServerKeepAlive   uint16
	ReceiveMaximum    uint16
	TopicAliasMaximum uint16
	TopicAlias        uint16

	MessageExpiry     uint32
	SessionExpiry     uint32
	WillDelay         uint32
	MaximumPacketSize uint32

	ContentType      []byte
	ResponseTopic    []byte
	CorrelationData  []byte
	AssignedClientID []byte
	AuthMethod       []byte
	AuthData         []byte
	ResponseInfo     []byte
	ServerReference  []byte
	ReasonString     []byte

	SubIDs []uint32
	User   []UserProperty
}

// Has reports whether property id is present.
func (p *Properties) Has(id PropID) bool { return p.Present&(1<<id) != 0 }

// Set marks property id present; assign its field as well.
func (p *Properties) Set(id PropID) { p.Present |= 1 << id }

// Reset clears p, keeping the storage of User and SubIDs for reuse.
func (p *Properties) Reset() {
	user, subs := p.User[:0], p.SubIDs[:0]
	*p = Properties{User: user, SubIDs: subs}
}

// decodeProps reads a property block (length, then properties) allowed by
// set. multiSub allows repeated Subscription Identifiers (PUBLISH only).
func (r *reader) props(p *Properties, set propSet, multiSub bool) {
	p.Reset()
	n := int(r.varint())
	if r.err != nil {
		return
	}
	if n > r.left() {
		r.fail(ErrPropertyLength)
		return
	}
	end := r.off + n
	sub := reader{b: r.b[:end], off: r.off}
	for sub.off < end && sub.err == nil {
		idv := sub.varint()
		if sub.err != nil {
			break
		}
		if idv >= 64 || propKinds[idv] == kindNone {
			sub.fail(ErrPropertyUnknown)
			break
		}
		id := PropID(idv)
		if set&(1<<id) == 0 {
			sub.fail(ErrPropertyNotHere)
			break
		}
		if p.Has(id) && id != PropUser && !(id == PropSubscriptionID && multiSub) {
			sub.fail(ErrPropertyDuplicate)
			break
		}
		p.Set(id)
		sub.prop(p, id)
	}
	r.off = end
	r.fail(sub.err)
}

// prop reads the value of property id into p and checks its range.
func (r *reader) prop(p *Properties, id PropID) {
	bad := false
	switch id {
	case PropPayloadFormat:
		p.PayloadFormat = r.u8()
		bad = p.PayloadFormat > 1
	case PropRequestProblemInfo:
		p.RequestProblemInfo = r.u8()
		bad = p.RequestProblemInfo > 1
	case PropRequestResponseInfo:
		p.RequestResponseInfo = r.u8()
		bad = p.RequestResponseInfo > 1
	case PropMaximumQoS:
		p.MaximumQoS = r.u8()
		bad = p.MaximumQoS > 1
	case PropRetainAvailable:
		p.RetainAvailable = r.u8()
		bad = p.RetainAvailable > 1
	case PropWildcardSubAvailable:
		p.WildcardSubAvailable = r.u8()
		bad = p.WildcardSubAvailable > 1
	case PropSubIDAvailable:
		p.SubIDAvailable = r.u8()
		bad = p.SubIDAvailable > 1
	case PropSharedSubAvailable:
		p.SharedSubAvailable = r.u8()
		bad = p.SharedSubAvailable > 1
	case PropServerKeepAlive:
		p.ServerKeepAlive = r.u16()
	case PropReceiveMaximum:
		p.ReceiveMaximum = r.u16()
		bad = p.ReceiveMaximum == 0 // [MQTT-3.1.2.11.3], [MQTT-3.2.2.3.3]
	case PropTopicAliasMaximum:
		p.TopicAliasMaximum = r.u16()
	case PropTopicAlias:
		p.TopicAlias = r.u16()
		if p.TopicAlias == 0 && r.err == nil {
			r.fail(ErrTopicAliasZero) // [MQTT-3.3.2-8]
		}
	case PropMessageExpiry:
		p.MessageExpiry = r.u32()
	case PropSessionExpiry:
		p.SessionExpiry = r.u32()
	case PropWillDelay:
		p.WillDelay = r.u32()
	case PropMaximumPacketSize:
		p.MaximumPacketSize = r.u32()
		bad = p.MaximumPacketSize == 0 // [MQTT-3.1.2.11.4]
	case PropSubscriptionID:
		v := r.varint()
		bad = v == 0 // [MQTT-3.3.4.1] value 0 is a protocol error
		p.SubIDs = append(p.SubIDs, v)
	case PropContentType:
		p.ContentType = r.str()
	case PropResponseTopic:
		p.ResponseTopic = r.str()
	case PropCorrelationData:
		p.CorrelationData = r.bin()
	case PropAssignedClientID:
		p.AssignedClientID = r.str()
	case PropAuthMethod:
		p.AuthMethod = r.str()
	case PropAuthData:
		p.AuthData = r.bin()
	case PropResponseInfo:
		p.ResponseInfo = r.str()
	case PropServerReference:
		p.ServerReference = r.str()
	case PropReasonString:
		p.ReasonString = r.str()
	case PropUser:
		k := r.str()
		v := r.str()
		p.User = append(p.User, UserProperty{Key: k, Value: v})
	}
	if bad && r.err == nil {
		r.fail(ErrPropertyValue)
	}
}

// Size is the encoded length of the properties, without the length prefix.
func (p *Properties) Size() int {
	if p.Present == 0 {
		return 0
	}
	n := 0
	for id := PropID(1); id < 64; id++ {
		if !p.Has(id) {
			continue
		}
		switch propKinds[id] {
		case kindByte:
			n += 2
		case kindU16:
			n += 3
		case kindU32:
			n += 5
		case kindVarint:
			for _, v := range p.SubIDs {
				n += 1 + VarintSize(int(v))
			}
		case kindStr, kindBin:
			n += 3 + len(p.bytesOf(id))
		case kindPair:
			for _, u := range p.User {
				n += 5 + len(u.Key) + len(u.Value)
			}
		}
	}
	return n
}

func (p *Properties) bytesOf(id PropID) []byte {
	switch id {
	case PropContentType:
		return p.ContentType
	case PropResponseTopic:
		return p.ResponseTopic
	case PropCorrelationData:
		return p.CorrelationData
	case PropAssignedClientID:
		return p.AssignedClientID
	case PropAuthMethod:
		return p.AuthMethod
	case PropAuthData:
		return p.AuthData
	case PropResponseInfo:
		return p.ResponseInfo
	case PropServerReference:
		return p.ServerReference
	case PropReasonString:
		return p.ReasonString
	}
	return nil
}

func (p *Properties) byteOf(id PropID) byte {
	switch id {
	case PropPayloadFormat:
		return p.PayloadFormat
	case PropRequestProblemInfo:
		return p.RequestProblemInfo
	case PropRequestResponseInfo:
		return p.RequestResponseInfo
	case PropMaximumQoS:
		return p.MaximumQoS
	case PropRetainAvailable:
		return p.RetainAvailable
	case PropWildcardSubAvailable:
		return p.WildcardSubAvailable
	case PropSubIDAvailable:
		return p.SubIDAvailable
	case PropSharedSubAvailable:
		return p.SharedSubAvailable
	}
	return 0
}

func (p *Properties) u16Of(id PropID) uint16 {
	switch id {
	case PropServerKeepAlive:
		return p.ServerKeepAlive
	case PropReceiveMaximum:
		return p.ReceiveMaximum
	case PropTopicAliasMaximum:
		return p.TopicAliasMaximum
	case PropTopicAlias:
		return p.TopicAlias
	}
	return 0
}

func (p *Properties) u32Of(id PropID) uint32 {
	switch id {
	case PropMessageExpiry:
		return p.MessageExpiry
	case PropSessionExpiry:
		return p.SessionExpiry
	case PropWillDelay:
		return p.WillDelay
	case PropMaximumPacketSize:
		return p.MaximumPacketSize
	}
	return 0
}

// AppendBody appends the properties without their length prefix, in
// identifier order.
func (p *Properties) AppendBody(dst []byte) []byte {
	if p.Present == 0 {
		return dst
	}
	for id := PropID(1); id < 64; id++ {
		if !p.Has(id) {
			continue
		}
		switch propKinds[id] {
		case kindByte:
			dst = append(dst, byte(id), p.byteOf(id))
		case kindU16:
			dst = appendU16(append(dst, byte(id)), p.u16Of(id))
		case kindU32:
			dst = appendU32(append(dst, byte(id)), p.u32Of(id))
		case kindVarint:
			for _, v := range p.SubIDs {
				dst = AppendVarint(append(dst, byte(id)), int(v))
			}
		case kindStr, kindBin:
			dst = appendBin(append(dst, byte(id)), p.bytesOf(id))
		case kindPair:
			for _, u := range p.User {
				dst = appendBin(appendBin(append(dst, byte(id)), u.Key), u.Value)
			}
		}
	}
	return dst
}

// Append appends the property length and the properties.
func (p *Properties) Append(dst []byte) []byte {
	dst = AppendVarint(dst, p.Size())
	return p.AppendBody(dst)
}

// blockSize is the size of the properties with their length prefix.
func (p *Properties) blockSize() int {
	n := p.Size()
	return VarintSize(n) + n
}

// ForwardProps appends to dst the properties of a received PUBLISH (or of
// a will) that go on to subscribers unchanged — Payload Format Indicator,
// Content Type, Response Topic, Correlation Data and User Properties in
// their order [MQTT-3.3.2-4], [MQTT-3.3.2-17], [MQTT-3.3.2-18]. Topic Alias
// and Subscription Identifier are per hop, Message Expiry is rewritten per
// delivery, and will-only properties (Will Delay Interval) are not
// PUBLISH properties, so all of those are left out.
func (p *Properties) ForwardProps(dst []byte) []byte {
	keep := *p
	keep.Present &= forwardedProps
	return keep.AppendBody(dst)
}

var forwardedProps = uint64(setOf(PropPayloadFormat, PropContentType, PropResponseTopic,
	PropCorrelationData, PropUser))
