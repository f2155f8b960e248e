package codec

// Publish is a PUBLISH packet [MQTT-3.3].
type Publish struct {
	Dup      bool
	QoS      byte
	Retain   bool
	Topic    []byte
	PacketID uint16 // only for QoS 1 and 2
	Props    Properties
	Payload  []byte
}

// Decode parses a PUBLISH with fixed-header flags and body, for protocol
// level v. An empty topic is accepted only in MQTT 5 with a Topic Alias; the
// caller resolves aliases.
func (p *Publish) Decode(flags byte, body []byte, v byte) error {
	p.Dup = flags&0x08 != 0
	p.QoS = flags >> 1 & 0x03
	p.Retain = flags&0x01 != 0
	if p.QoS == 3 {
		return ErrInvalidQoS // [MQTT-3.3.1-4]
	}
	if p.Dup && p.QoS == 0 {
		return ErrDupQoS0 // [MQTT-3.3.1-2]
	}
	r := reader{b: body}
	p.Topic = r.str()
	p.PacketID = 0
	if p.QoS > 0 {
		p.PacketID = r.u16()
		if r.err == nil && p.PacketID == 0 {
			return ErrPacketIDZero // [MQTT-2.2.1-3]
		}
	}
	if v == V5 {
		r.props(&p.Props, publishProps, false) // only the server may send several Subscription Identifiers
	} else {
		p.Props.Reset()
	}
	if r.err != nil {
		return r.err
	}
	p.Payload = r.rest()
	if len(p.SubIDs()) > 0 {
		return ErrClientSubID // [MQTT-3.3.4-6]
	}
	if len(p.Topic) == 0 {
		if v != V5 {
			return ErrTopicEmpty // [MQTT-4.7.3-1]
		}
		if !p.Props.Has(PropTopicAlias) {
			return ErrTopicNoAlias // [MQTT-3.3.2-1], 3.3.2.3.4
		}
	} else if err := checkTopicChars(p.Topic); err != nil {
		return err // [MQTT-3.3.2-2]
	}
	if p.Props.Has(PropPayloadFormat) && p.Props.PayloadFormat == 1 && !ValidUTF8(p.Payload) {
		return ErrPayloadFormat // [MQTT-3.3.2-4] ... 0x99
	}
	return nil
}

// SubIDs returns the packet's Subscription Identifiers.
func (p *Publish) SubIDs() []uint32 { return p.Props.SubIDs }

// DecodeClient is Decode for a PUBLISH received by a client, where several
// Subscription Identifiers may appear [MQTT-3.3.4-3].
func (p *Publish) DecodeClient(flags byte, body []byte, v byte) error {
	p.Dup = flags&0x08 != 0
	p.QoS = flags >> 1 & 0x03
	p.Retain = flags&0x01 != 0
	if p.QoS == 3 {
		return ErrInvalidQoS
	}
	r := reader{b: body}
	p.Topic = r.str()
	p.PacketID = 0
	if p.QoS > 0 {
		p.PacketID = r.u16()
	}
	if v == V5 {
		r.props(&p.Props, publishProps, true)
	} else {
		p.Props.Reset()
	}
	if r.err != nil {
		return r.err
	}
	p.Payload = r.rest()
	return nil
}

func (p *Publish) flags() byte {
	f := p.QoS << 1
	if p.Dup {
		f |= 0x08
	}
	if p.Retain {
		f |= 0x01
	}
	return f
}

// Append appends the PUBLISH for protocol level v.
func (p *Publish) Append(dst []byte, v byte) []byte {
	n := 2 + len(p.Topic) + len(p.Payload)
	if p.QoS > 0 {
		n += 2
	}
	if v == V5 {
		n += p.Props.blockSize()
	}
	dst = AppendHeader(dst, PUBLISH, p.flags(), n)
	dst = appendBin(dst, p.Topic)
	if p.QoS > 0 {
		dst = appendU16(dst, p.PacketID)
	}
	if v == V5 {
		dst = p.Props.Append(dst)
	}
	return append(dst, p.Payload...)
}

// Outgoing is a PUBLISH the broker sends to a subscriber, built from a
// stored message without decoding its properties again: RawProps are the
// forwarded properties (see Properties.ForwardProps) and the per-delivery
// ones are added here.
type Outgoing struct {
	Topic    []byte
	Payload  []byte
	RawProps []byte
	// Expiry is the remaining Message Expiry Interval in seconds, sent when
	// HasExpiry [MQTT-3.3.2-6].
	Expiry     uint32
	HasExpiry  bool
	SubIDs     []uint32 // [MQTT-3.3.4-3]
	TopicAlias uint16   // 0: none
	PacketID   uint16
	QoS        byte
	Retain     bool
	Dup        bool
}

func (o *Outgoing) propsSize() int {
	n := len(o.RawProps)
	if o.HasExpiry {
		n += 5
	}
	for _, id := range o.SubIDs {
		n += 1 + VarintSize(int(id))
	}
	if o.TopicAlias != 0 {
		n += 3
	}
	return n
}

// Size is the size of the whole frame for protocol level v.
func (o *Outgoing) Size(v byte) int {
	n := o.remaining(v)
	return 1 + VarintSize(n) + n
}

func (o *Outgoing) remaining(v byte) int {
	n := 2 + len(o.Topic) + len(o.Payload)
	if o.QoS > 0 {
		n += 2
	}
	if v == V5 {
		ps := o.propsSize()
		n += VarintSize(ps) + ps
	}
	return n
}

// Append appends the PUBLISH for protocol level v. For levels below 5 all
// properties are dropped, as a 3.x client cannot receive them.
func (o *Outgoing) Append(dst []byte, v byte) []byte {
	f := o.QoS << 1
	if o.Dup {
		f |= 0x08
	}
	if o.Retain {
		f |= 0x01
	}
	dst = AppendHeader(dst, PUBLISH, f, o.remaining(v))
	dst = appendBin(dst, o.Topic)
	if o.QoS > 0 {
		dst = appendU16(dst, o.PacketID)
	}
	if v == V5 {
		dst = AppendVarint(dst, o.propsSize())
		if o.HasExpiry {
			dst = appendU32(append(dst, byte(PropMessageExpiry)), o.Expiry)
		}
		for _, id := range o.SubIDs {
			dst = AppendVarint(append(dst, byte(PropSubscriptionID)), int(id))
		}
		if o.TopicAlias != 0 {
			dst = appendU16(append(dst, byte(PropTopicAlias)), o.TopicAlias)
		}
		dst = append(dst, o.RawProps...)
	}
	return append(dst, o.Payload...)
}
