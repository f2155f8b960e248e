package codec

// Ack is a PUBACK, PUBREC, PUBREL or PUBCOMP [MQTT-3.4] .. [MQTT-3.7].
type Ack struct {
	Type     Type
	PacketID uint16
	Code     ReasonCode // MQTT 5 only; Success otherwise
	Props    Properties
}

// validAckCodes lists the reason codes each acknowledgement may carry
// (MQTT 5 sections 3.4.2.1, 3.5.2.1, 3.6.2.1, 3.7.2.1).
var validAckCodes = [16]map[ReasonCode]bool{
	PUBACK: {Success: true, NoMatchingSubscribers: true, UnspecifiedError: true, ImplementationSpecific: true,
		NotAuthorized: true, TopicNameInvalid: true, PacketIDInUse: true, QuotaExceeded: true, PayloadFormatInvalid: true},
	PUBREC: {Success: true, NoMatchingSubscribers: true, UnspecifiedError: true, ImplementationSpecific: true,
		NotAuthorized: true, TopicNameInvalid: true, PacketIDInUse: true, QuotaExceeded: true, PayloadFormatInvalid: true},
	PUBREL:  {Success: true, PacketIDNotFound: true},
	PUBCOMP: {Success: true, PacketIDNotFound: true},
}

// Decode parses an acknowledgement body of type t for protocol level v.
// In MQTT 5 the reason code and properties may be omitted
// [MQTT-3.4.2.1], [MQTT-3.4.2.2.1].
func (a *Ack) Decode(t Type, body []byte, v byte) error {
	r := reader{b: body}
	a.Type = t
	a.PacketID = r.u16()
	a.Code = Success
	a.Props.Reset()
	if r.err != nil {
		return r.err
	}
	if a.PacketID == 0 {
		return ErrPacketIDZero // [MQTT-2.2.1-3]
	}
	if v == V5 {
		if r.left() > 0 {
			a.Code = ReasonCode(r.u8())
			if !validAckCodes[t][a.Code] {
				return ErrReasonCode
			}
		}
		if r.left() > 0 {
			r.props(&a.Props, ackProps, false)
		}
	}
	return r.done()
}

// Append appends the acknowledgement for protocol level v, in its shortest
// form: a v5 success without properties is just the packet id.
func (a *Ack) Append(dst []byte, v byte) []byte {
	var flags byte
	if a.Type == PUBREL {
		flags = 2 // [MQTT-3.6.1-1]
	}
	if v < V5 || (a.Code == Success && a.Props.Present == 0) {
		return appendU16(AppendHeader(dst, a.Type, flags, 2), a.PacketID)
	}
	if a.Props.Present == 0 {
		dst = AppendHeader(dst, a.Type, flags, 3)
		return append(appendU16(dst, a.PacketID), byte(a.Code))
	}
	dst = AppendHeader(dst, a.Type, flags, 3+a.Props.blockSize())
	dst = append(appendU16(dst, a.PacketID), byte(a.Code))
	return a.Props.Append(dst)
}

// AppendAck appends a property-less acknowledgement of type t: the common
// case on the hot path, with no struct to fill.
func AppendAck(dst []byte, t Type, id uint16, code ReasonCode, v byte) []byte {
	var flags byte
	if t == PUBREL {
		flags = 2
	}
	if v < V5 || code == Success {
		return appendU16(AppendHeader(dst, t, flags, 2), id)
	}
	return append(appendU16(AppendHeader(dst, t, flags, 3), id), byte(code))
}

// Subscription is one topic filter of a SUBSCRIBE with its options
// [MQTT-3.8.3.1].
type Subscription struct {
	Filter            []byte
	QoS               byte
	NoLocal           bool
	RetainAsPublished bool
	RetainHandling    byte
}

// Subscribe is a SUBSCRIBE packet [MQTT-3.8].
type Subscribe struct {
	PacketID uint16
	Props    Properties
	Filters  []Subscription
}

// Decode parses a SUBSCRIBE body for protocol level v. Filter syntax is not
// judged here: the broker answers a bad filter with a failure code in SUBACK
// rather than closing the connection.
func (s *Subscribe) Decode(body []byte, v byte) error {
	r := reader{b: body}
	s.PacketID = r.u16()
	if r.err == nil && s.PacketID == 0 {
		return ErrPacketIDZero // [MQTT-2.2.1-3]
	}
	if v == V5 {
		r.props(&s.Props, subscribeProps, false)
	} else {
		s.Props.Reset()
	}
	s.Filters = s.Filters[:0]
	for r.err == nil && r.left() > 0 {
		f := r.str()
		o := r.u8()
		if r.err != nil {
			break
		}
		sub := Subscription{Filter: f, QoS: o & 0x03}
		if sub.QoS == 3 {
			return ErrInvalidQoS // [MQTT-3.8.3-4] (v3.1.1), [MQTT-3-8.3-5]
		}
		if v == V5 {
			sub.NoLocal = o&0x04 != 0
			sub.RetainAsPublished = o&0x08 != 0
			sub.RetainHandling = o >> 4 & 0x03
			if o&0xc0 != 0 {
				return ErrSubOptions // [MQTT-3.8.3-5]
			}
			if sub.RetainHandling == 3 {
				return ErrRetainHandling
			}
		} else if o&0xfc != 0 {
			return ErrSubOptions // [MQTT-3-8.3-4] (v3.1.1)
		}
		s.Filters = append(s.Filters, sub)
	}
	if r.err != nil {
		return r.err
	}
	if len(s.Filters) == 0 {
		return ErrNoFilters // [MQTT-3.8.3-3]
	}
	return nil
}

// Append appends the SUBSCRIBE for protocol level v.
func (s *Subscribe) Append(dst []byte, v byte) []byte {
	n := 2
	if v == V5 {
		n += s.Props.blockSize()
	}
	for _, f := range s.Filters {
		n += 3 + len(f.Filter)
	}
	dst = appendU16(AppendHeader(dst, SUBSCRIBE, 2, n), s.PacketID)
	if v == V5 {
		dst = s.Props.Append(dst)
	}
	for _, f := range s.Filters {
		o := f.QoS
		if v == V5 {
			if f.NoLocal {
				o |= 0x04
			}
			if f.RetainAsPublished {
				o |= 0x08
			}
			o |= f.RetainHandling << 4
		}
		dst = append(appendBin(dst, f.Filter), o)
	}
	return dst
}

// Suback is a SUBACK (or, with Type UNSUBACK, an UNSUBACK) packet
// [MQTT-3.9], [MQTT-3.11]. Codes holds one code per filter; an MQTT 3.x
// UNSUBACK has none.
type Suback struct {
	Type     Type // SUBACK or UNSUBACK; zero means SUBACK
	PacketID uint16
	Props    Properties
	Codes    []ReasonCode
}

func (s *Suback) typ() Type {
	if s.Type == 0 {
		return SUBACK
	}
	return s.Type
}

// Decode parses a SUBACK or UNSUBACK body of type t.
func (s *Suback) Decode(t Type, body []byte, v byte) error {
	r := reader{b: body}
	s.Type = t
	s.PacketID = r.u16()
	if v == V5 {
		r.props(&s.Props, ackProps, false)
	} else {
		s.Props.Reset()
	}
	s.Codes = s.Codes[:0]
	if t == UNSUBACK && v < V5 {
		return r.done() // an MQTT 3.x UNSUBACK is the packet id alone [MQTT-3.11.3]
	}
	for r.err == nil && r.left() > 0 {
		s.Codes = append(s.Codes, ReasonCode(r.u8()))
	}
	return r.err
}

// Append appends the packet for protocol level v. An MQTT 3.x UNSUBACK
// carries only the packet id [MQTT-3.11.3].
func (s *Suback) Append(dst []byte, v byte) []byte {
	t := s.typ()
	codes := len(s.Codes)
	if t == UNSUBACK && v < V5 {
		codes = 0
	}
	n := 2 + codes
	if v == V5 {
		n += s.Props.blockSize()
	}
	dst = appendU16(AppendHeader(dst, t, 0, n), s.PacketID)
	if v == V5 {
		dst = s.Props.Append(dst)
	}
	for _, c := range s.Codes[:codes] {
		dst = append(dst, byte(c))
	}
	return dst
}

// Unsubscribe is an UNSUBSCRIBE packet [MQTT-3.10].
type Unsubscribe struct {
	PacketID uint16
	Props    Properties
	Filters  [][]byte
}

// Decode parses an UNSUBSCRIBE body for protocol level v.
func (u *Unsubscribe) Decode(body []byte, v byte) error {
	r := reader{b: body}
	u.PacketID = r.u16()
	if r.err == nil && u.PacketID == 0 {
		return ErrPacketIDZero
	}
	if v == V5 {
		r.props(&u.Props, unsubscribeProps, false)
	} else {
		u.Props.Reset()
	}
	u.Filters = u.Filters[:0]
	for r.err == nil && r.left() > 0 {
		f := r.str()
		if r.err == nil {
			u.Filters = append(u.Filters, f)
		}
	}
	if r.err != nil {
		return r.err
	}
	if len(u.Filters) == 0 {
		return ErrNoFilters // [MQTT-3.10.3-2]
	}
	return nil
}

// Append appends the UNSUBSCRIBE for protocol level v.
func (u *Unsubscribe) Append(dst []byte, v byte) []byte {
	n := 2
	if v == V5 {
		n += u.Props.blockSize()
	}
	for _, f := range u.Filters {
		n += 2 + len(f)
	}
	dst = appendU16(AppendHeader(dst, UNSUBSCRIBE, 2, n), u.PacketID)
	if v == V5 {
		dst = u.Props.Append(dst)
	}
	for _, f := range u.Filters {
		dst = appendBin(dst, f)
	}
	return dst
}

// Disconnect is a DISCONNECT (or, with Type AUTH, an AUTH) packet
// [MQTT-3.14], [MQTT-3.15]. In MQTT 3.x it has no body.
type Disconnect struct {
	Type  Type // DISCONNECT or AUTH; zero means DISCONNECT
	Code  ReasonCode
	Props Properties
}

func (d *Disconnect) typ() Type {
	if d.Type == 0 {
		return DISCONNECT
	}
	return d.Type
}

// Decode parses a DISCONNECT or AUTH body of type t. An empty v5 body means
// reason Success with no properties [MQTT-3.14.2.1], [MQTT-3.15.2.1].
func (d *Disconnect) Decode(t Type, body []byte, v byte) error {
	d.Type = t
	d.Code = Success
	d.Props.Reset()
	if v < V5 {
		if len(body) != 0 {
			return ErrTrailingBytes // MQTT 3.x DISCONNECT has no variable header
		}
		return nil
	}
	r := reader{b: body}
	if r.left() > 0 {
		d.Code = ReasonCode(r.u8())
	}
	set := disconnectProps
	if t == AUTH {
		set = authProps
		if d.Code != Success && d.Code != ContinueAuthentication && d.Code != ReAuthenticate {
			return ErrReasonCode // [MQTT-3.15.2-1]
		}
	}
	if r.left() > 0 {
		r.props(&d.Props, set, false)
	}
	return r.done()
}

// Append appends the packet for protocol level v.
func (d *Disconnect) Append(dst []byte, v byte) []byte {
	t := d.typ()
	if v < V5 {
		return AppendHeader(dst, t, 0, 0)
	}
	if d.Code == Success && d.Props.Present == 0 {
		return AppendHeader(dst, t, 0, 0)
	}
	if d.Props.Present == 0 {
		return append(AppendHeader(dst, t, 0, 1), byte(d.Code))
	}
	dst = append(AppendHeader(dst, t, 0, 1+d.Props.blockSize()), byte(d.Code))
	return d.Props.Append(dst)
}

// AppendPing appends a PINGREQ or PINGRESP.
func AppendPing(dst []byte, t Type) []byte { return AppendHeader(dst, t, 0, 0) }
