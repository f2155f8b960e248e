package codec

// Connect is a CONNECT packet [MQTT-3.1].
type Connect struct {
	ProtocolName []byte // "MQTT", or "MQIsdp" for 3.1
	Version      byte   // V31, V311 or V5
	// Bridge is the top bit of the protocol level byte (0x83, 0x84, 0x85
	// on the wire): Mosquitto's "try_private" mark of a broker bridging
	// to this one. MQTT reserves no such bit; Mosquitto and Shoal read it
	// as "a bridge, not a client". Version holds the level without it.
	Bridge     bool
	CleanStart bool   // Clean Session in 3.x
	KeepAlive  uint16 // seconds
	Props      Properties

	ClientID []byte

	WillFlag    bool
	WillQoS     byte
	WillRetain  bool
	WillProps   Properties
	WillTopic   []byte
	WillPayload []byte

	UsernameFlag bool
	PasswordFlag bool
	Username     []byte
	Password     []byte
}

// bridgeBit marks a bridge's CONNECT in the protocol level byte (see
// Connect.Bridge).
const bridgeBit = 0x80

var (
	nameMQTT   = []byte("MQTT")
	nameMQIsdp = []byte("MQIsdp")
)

// Decode parses a CONNECT body. A protocol name or level the broker does not
// speak yields ErrProtocolName or ErrProtocolVersion with c.Version set as
// far as it was read, so the caller can answer with the right CONNACK
// [MQTT-3.1.2-2].
func (c *Connect) Decode(body []byte) error {
	r := reader{b: body}
	c.ProtocolName = r.str()
	c.Version = r.u8()
	if r.err != nil {
		return r.err
	}
	c.Bridge = c.Version&bridgeBit != 0 && c.Version&^bridgeBit >= V31 && c.Version&^bridgeBit <= V5
	if c.Bridge {
		c.Version &^= bridgeBit
	}
	switch {
	case string(c.ProtocolName) == "MQTT" && (c.Version == V311 || c.Version == V5):
	case string(c.ProtocolName) == "MQIsdp" && c.Version == V31:
	case string(c.ProtocolName) == "MQTT" || string(c.ProtocolName) == "MQIsdp":
		return ErrProtocolVersion
	default:
		return ErrProtocolName // [MQTT-3.1.2-1]
	}
	flags := r.u8()
	c.KeepAlive = r.u16()
	if r.err != nil {
		return r.err
	}
	if flags&0x01 != 0 {
		return ErrConnectReserved // [MQTT-3.1.2-3]
	}
	c.CleanStart = flags&0x02 != 0
	c.WillFlag = flags&0x04 != 0
	c.WillQoS = flags >> 3 & 0x03
	c.WillRetain = flags&0x20 != 0
	c.PasswordFlag = flags&0x40 != 0
	c.UsernameFlag = flags&0x80 != 0
	if c.WillQoS == 3 {
		return ErrInvalidQoS // [MQTT-3.1.2-14]
	}
	if !c.WillFlag && (c.WillQoS != 0 || c.WillRetain) {
		return ErrWillFlags // [MQTT-3.1.2-11], [MQTT-3.1.2-13], [MQTT-3.1.2-15]
	}
	if c.Version < V5 && c.PasswordFlag && !c.UsernameFlag {
		return ErrPasswordNoUser // [MQTT-3.1.2-22] (3.1.1; MQTT 5 allows it)
	}
	if c.Version == V5 {
		r.props(&c.Props, connectProps, false)
	} else {
		c.Props.Reset()
	}
	c.ClientID = r.str() // [MQTT-3.1.3-4]
	c.WillProps.Reset()
	c.WillTopic, c.WillPayload = nil, nil
	if c.WillFlag {
		if c.Version == V5 {
			r.props(&c.WillProps, willProps, false)
		}
		c.WillTopic = r.str()
		c.WillPayload = r.bin()
	}
	c.Username, c.Password = nil, nil
	if c.UsernameFlag {
		c.Username = r.str() // [MQTT-3.1.3-11]
	}
	if c.PasswordFlag {
		c.Password = r.bin()
	}
	if err := r.done(); err != nil {
		return err
	}
	if c.WillFlag {
		if err := CheckTopicName(c.WillTopic); err != nil {
			return ErrWillTopic // [MQTT-3.1.3-10]
		}
		if c.WillProps.Has(PropPayloadFormat) && c.WillProps.PayloadFormat == 1 && !ValidUTF8(c.WillPayload) {
			return ErrPayloadFormat // [MQTT-3.1.3-14]
		}
	}
	return nil
}

// Append appends the CONNECT packet.
func (c *Connect) Append(dst []byte) []byte {
	name := c.ProtocolName
	if name == nil {
		name = nameMQTT
		if c.Version == V31 {
			name = nameMQIsdp
		}
	}
	n := 2 + len(name) + 1 + 1 + 2 + 2 + len(c.ClientID)
	if c.Version == V5 {
		n += c.Props.blockSize()
	}
	if c.WillFlag {
		if c.Version == V5 {
			n += c.WillProps.blockSize()
		}
		n += 4 + len(c.WillTopic) + len(c.WillPayload)
	}
	if c.UsernameFlag {
		n += 2 + len(c.Username)
	}
	if c.PasswordFlag {
		n += 2 + len(c.Password)
	}
	var flags byte
	if c.CleanStart {
		flags |= 0x02
	}
	if c.WillFlag {
		flags |= 0x04 | c.WillQoS<<3
		if c.WillRetain {
			flags |= 0x20
		}
	}
	if c.PasswordFlag {
		flags |= 0x40
	}
	if c.UsernameFlag {
		flags |= 0x80
	}
	dst = AppendHeader(dst, CONNECT, 0, n)
	dst = appendBin(dst, name)
	level := c.Version
	if c.Bridge {
		level |= bridgeBit
	}
	dst = append(dst, level, flags)
	dst = appendU16(dst, c.KeepAlive)
	if c.Version == V5 {
		dst = c.Props.Append(dst)
	}
	dst = appendBin(dst, c.ClientID)
	if c.WillFlag {
		if c.Version == V5 {
			dst = c.WillProps.Append(dst)
		}
		dst = appendBin(dst, c.WillTopic)
		dst = appendBin(dst, c.WillPayload)
	}
	if c.UsernameFlag {
		dst = appendBin(dst, c.Username)
	}
	if c.PasswordFlag {
		dst = appendBin(dst, c.Password)
	}
	return dst
}

// Connack is a CONNACK packet [MQTT-3.2].
type Connack struct {
	SessionPresent bool
	// Code is the MQTT 5 reason code; for 3.x it is the return code byte
	// as it goes on the wire (see V3ConnackCode).
	Code  ReasonCode
	Props Properties
}

// Decode parses a CONNACK body of protocol level v.
func (c *Connack) Decode(body []byte, v byte) error {
	r := reader{b: body}
	flags := r.u8()
	c.Code = ReasonCode(r.u8())
	if r.err != nil {
		return r.err
	}
	if flags&^1 != 0 {
		return ErrConnackFlags // [MQTT-3.2.2-1]
	}
	c.SessionPresent = flags == 1
	if v == V5 {
		r.props(&c.Props, connackProps, false)
	} else {
		c.Props.Reset()
	}
	return r.done()
}

// Append appends the CONNACK packet for protocol level v.
func (c *Connack) Append(dst []byte, v byte) []byte {
	n := 2
	if v == V5 {
		n += c.Props.blockSize()
	}
	dst = AppendHeader(dst, CONNACK, 0, n)
	var flags byte
	if c.SessionPresent {
		flags = 1
	}
	dst = append(dst, flags, byte(c.Code))
	if v == V5 {
		dst = c.Props.Append(dst)
	}
	return dst
}
