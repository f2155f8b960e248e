package codec

import "unsafe"

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

// propDef is everything about one property that its identifier decides:
// how it is encoded, where Properties keeps it, and which values are
// protocol errors. The decoder, Size and AppendBody all work from this
// table, so a property is described once.
type propDef struct {
	kind propKind
	// off is where the value lives in Properties: a byte, uint16, uint32
	// or []byte as kind says (not used for kindVarint and kindPair, which
	// have SubIDs and User). An offset, not an accessor function: a
	// pointer passed to a function value escapes, and Properties values
	// on the stack would then be allocated.
	off uintptr
	// max is the highest value a kindByte property may have (they are
	// all 0 or 1); zero is the error a value of 0 is, for the properties
	// where 0 is not allowed.
	max  byte
	zero error
}

var propDefs = [64]propDef{
	PropPayloadFormat:        {kind: kindByte, off: unsafe.Offsetof(Properties{}.PayloadFormat), max: 1},
	PropMessageExpiry:        {kind: kindU32, off: unsafe.Offsetof(Properties{}.MessageExpiry)},
	PropContentType:          {kind: kindStr, off: unsafe.Offsetof(Properties{}.ContentType)},
	PropResponseTopic:        {kind: kindStr, off: unsafe.Offsetof(Properties{}.ResponseTopic)},
	PropCorrelationData:      {kind: kindBin, off: unsafe.Offsetof(Properties{}.CorrelationData)},
	PropSubscriptionID:       {kind: kindVarint, zero: ErrPropertyValue}, // [MQTT-3.3.4.1] value 0 is a protocol error
	PropSessionExpiry:        {kind: kindU32, off: unsafe.Offsetof(Properties{}.SessionExpiry)},
	PropAssignedClientID:     {kind: kindStr, off: unsafe.Offsetof(Properties{}.AssignedClientID)},
	PropServerKeepAlive:      {kind: kindU16, off: unsafe.Offsetof(Properties{}.ServerKeepAlive)},
	PropAuthMethod:           {kind: kindStr, off: unsafe.Offsetof(Properties{}.AuthMethod)},
	PropAuthData:             {kind: kindBin, off: unsafe.Offsetof(Properties{}.AuthData)},
	PropRequestProblemInfo:   {kind: kindByte, off: unsafe.Offsetof(Properties{}.RequestProblemInfo), max: 1},
	PropWillDelay:            {kind: kindU32, off: unsafe.Offsetof(Properties{}.WillDelay)},
	PropRequestResponseInfo:  {kind: kindByte, off: unsafe.Offsetof(Properties{}.RequestResponseInfo), max: 1},
	PropResponseInfo:         {kind: kindStr, off: unsafe.Offsetof(Properties{}.ResponseInfo)},
	PropServerReference:      {kind: kindStr, off: unsafe.Offsetof(Properties{}.ServerReference)},
	PropReasonString:         {kind: kindStr, off: unsafe.Offsetof(Properties{}.ReasonString)},
	PropReceiveMaximum:       {kind: kindU16, off: unsafe.Offsetof(Properties{}.ReceiveMaximum), zero: ErrPropertyValue}, // [MQTT-3.1.2.11.3], [MQTT-3.2.2.3.3]
	PropTopicAliasMaximum:    {kind: kindU16, off: unsafe.Offsetof(Properties{}.TopicAliasMaximum)},
	PropTopicAlias:           {kind: kindU16, off: unsafe.Offsetof(Properties{}.TopicAlias), zero: ErrTopicAliasZero}, // [MQTT-3.3.2-8]
	PropMaximumQoS:           {kind: kindByte, off: unsafe.Offsetof(Properties{}.MaximumQoS), max: 1},
	PropRetainAvailable:      {kind: kindByte, off: unsafe.Offsetof(Properties{}.RetainAvailable), max: 1},
	PropUser:                 {kind: kindPair},
	PropMaximumPacketSize:    {kind: kindU32, off: unsafe.Offsetof(Properties{}.MaximumPacketSize), zero: ErrPropertyValue}, // [MQTT-3.1.2.11.4]
	PropWildcardSubAvailable: {kind: kindByte, off: unsafe.Offsetof(Properties{}.WildcardSubAvailable), max: 1},
	PropSubIDAvailable:       {kind: kindByte, off: unsafe.Offsetof(Properties{}.SubIDAvailable), max: 1},
	PropSharedSubAvailable:   {kind: kindByte, off: unsafe.Offsetof(Properties{}.SharedSubAvailable), max: 1},
}

// The fields of p at offset off, by type (propDef.off).
func (p *Properties) u8At(off uintptr) *byte    { return (*byte)(unsafe.Add(unsafe.Pointer(p), off)) }
func (p *Properties) u16At(off uintptr) *uint16 { return (*uint16)(unsafe.Add(unsafe.Pointer(p), off)) }
func (p *Properties) u32At(off uintptr) *uint32 { return (*uint32)(unsafe.Add(unsafe.Pointer(p), off)) }
func (p *Properties) bytesAt(off uintptr) *[]byte {
	return (*[]byte)(unsafe.Add(unsafe.Pointer(p), off))
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
		if idv >= 64 || propDefs[idv].kind == kindNone {
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
	d := &propDefs[id]
	var err error
	switch d.kind {
	case kindByte:
		v := r.u8()
		*p.u8At(d.off) = v
		if v > d.max {
			err = ErrPropertyValue
		}
	case kindU16:
		v := r.u16()
		*p.u16At(d.off) = v
		if v == 0 {
			err = d.zero
		}
	case kindU32:
		v := r.u32()
		*p.u32At(d.off) = v
		if v == 0 {
			err = d.zero
		}
	case kindVarint:
		v := r.varint()
		p.SubIDs = append(p.SubIDs, v)
		if v == 0 {
			err = d.zero
		}
	case kindStr:
		*p.bytesAt(d.off) = r.str()
	case kindBin:
		*p.bytesAt(d.off) = r.bin()
	case kindPair:
		k := r.str()
		v := r.str()
		p.User = append(p.User, UserProperty{Key: k, Value: v})
	}
	if err != nil && r.err == nil {
		r.fail(err)
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
		switch d := &propDefs[id]; d.kind {
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
			n += 3 + len(*p.bytesAt(d.off))
		case kindPair:
			for _, u := range p.User {
				n += 5 + len(u.Key) + len(u.Value)
			}
		}
	}
	return n
}

// AppendBody appends the properties without their length prefix, in
// identifier order.
func (p *Properties) AppendBody(dst []byte) []byte { return p.appendBody(dst, p.Present) }

// appendBody appends the properties in present, those of p's that are set
// and wanted.
func (p *Properties) appendBody(dst []byte, present uint64) []byte {
	if present == 0 {
		return dst
	}
	for id := PropID(1); id < 64; id++ {
		if present&(1<<id) == 0 {
			continue
		}
		switch d := &propDefs[id]; d.kind {
		case kindByte:
			dst = append(dst, byte(id), *p.u8At(d.off))
		case kindU16:
			dst = appendU16(append(dst, byte(id)), *p.u16At(d.off))
		case kindU32:
			dst = appendU32(append(dst, byte(id)), *p.u32At(d.off))
		case kindVarint:
			for _, v := range p.SubIDs {
				dst = AppendVarint(append(dst, byte(id)), int(v))
			}
		case kindStr, kindBin:
			dst = appendBin(append(dst, byte(id)), *p.bytesAt(d.off))
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
	return p.appendBody(dst, p.Present&forwardedProps)
}

var forwardedProps = uint64(setOf(PropPayloadFormat, PropContentType, PropResponseTopic,
	PropCorrelationData, PropUser))
