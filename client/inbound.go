package client

import (
	"fmt"

	"github.com/shoalmq/shoal/codec"
)

// onFrame handles one inbound packet on the connection's loop. body is
// valid only during the call. Acknowledgements are appended to c.l.out,
// which OnTraffic writes once the read burst is done. A non-nil error
// closes the connection with that cause.
func (c *Conn) onFrame(h codec.Header, body []byte) error {
	l := c.l
	if !c.connected {
		if h.Type != codec.CONNACK {
			return fmt.Errorf("%w: %v before CONNACK", ErrUnexpected, h.Type) // [MQTT-3.2.0-1]
		}
		return c.onConnack(body)
	}
	switch h.Type {
	case codec.PUBLISH:
		return c.onPublish(h.Flags, body)
	case codec.PUBACK, codec.PUBREC, codec.PUBCOMP:
		if err := l.ack.Decode(h.Type, body, c.v); err != nil {
			return fmt.Errorf("client: %v: %w", h.Type, err)
		}
		c.onAck(h.Type)
	case codec.PUBREL:
		if err := l.ack.Decode(h.Type, body, c.v); err != nil {
			return fmt.Errorf("client: PUBREL: %w", err)
		}
		code := codec.Success
		if _, ok := c.qos2in[l.ack.PacketID]; ok {
			delete(c.qos2in, l.ack.PacketID)
		} else if c.v == codec.V5 {
			code = codec.PacketIDNotFound // [MQTT-4.3.3], 3.7.2.1
		}
		l.out = codec.AppendAck(l.out, codec.PUBCOMP, l.ack.PacketID, code, c.v) // [MQTT-4.3.3-11]
	case codec.SUBACK, codec.UNSUBACK:
		if err := l.suback.Decode(h.Type, body, c.v); err != nil {
			return fmt.Errorf("client: %v: %w", h.Type, err)
		}
		c.onSuback(h.Type)
	case codec.PINGRESP:
		c.pingOut = false
	case codec.DISCONNECT:
		if err := l.disc.Decode(h.Type, body, c.v); err != nil {
			return fmt.Errorf("client: DISCONNECT: %w", err)
		}
		if c.v < codec.V5 {
			return fmt.Errorf("%w: DISCONNECT from an MQTT 3 broker", ErrUnexpected)
		}
		return &ReasonError{Packet: codec.DISCONNECT, Code: l.disc.Code, Reason: string(l.disc.Props.ReasonString)}
	default:
		// CONNACK twice, packets only clients send, AUTH (no enhanced
		// authentication is offered, so none may come [MQTT-4.12.0-6]).
		return fmt.Errorf("%w: %v", ErrUnexpected, h.Type)
	}
	return nil
}

func (c *Conn) onConnack(body []byte) error {
	p := &c.l.connack
	if err := p.Decode(body, c.v); err != nil {
		return fmt.Errorf("client: CONNACK: %w", err)
	}
	code := p.Code
	if c.v < codec.V5 {
		code = v3Reason(byte(p.Code))
	}
	if code != codec.Success {
		return &ReasonError{Packet: codec.CONNACK, Code: code, Reason: string(p.Props.ReasonString)}
	}
	if c.v == codec.V5 {
		if p.Props.Has(codec.PropReceiveMaximum) && int(p.Props.ReceiveMaximum) < c.winMax {
			c.winMax = int(p.Props.ReceiveMaximum) // [MQTT-3.3.4-7]
			c.window.Store(int32(c.winMax))
		}
		if p.Props.Has(codec.PropServerKeepAlive) {
			c.keepAlive = p.Props.ServerKeepAlive // [MQTT-3.1.2-21]
		}
	}
	c.sessPresent = p.SessionPresent
	c.connected = true
	c.connack <- nil
	return nil
}

func (c *Conn) onPublish(flags byte, body []byte) error {
	l := c.l
	p := &l.pub
	if err := p.DecodeClient(flags, body, c.v); err != nil {
		return fmt.Errorf("client: PUBLISH: %w", err)
	}
	if c.v == codec.V5 && p.Props.Has(codec.PropTopicAlias) {
		// The CONNECT offered no Topic Alias Maximum, so 0 [MQTT-3.2.2-17].
		return fmt.Errorf("%w: topic alias not offered", ErrUnexpected)
	}
	deliver := true
	switch p.QoS {
	case 1:
		l.out = codec.AppendAck(l.out, codec.PUBACK, p.PacketID, codec.Success, c.v) // [MQTT-4.3.2-4]
	case 2:
		if c.qos2in == nil {
			c.qos2in = make(map[uint16]struct{})
		}
		if _, seen := c.qos2in[p.PacketID]; seen {
			deliver = false // resent before PUBREL: delivered already [MQTT-4.3.3-10]
		} else {
			c.qos2in[p.PacketID] = struct{}{}
		}
		l.out = codec.AppendAck(l.out, codec.PUBREC, p.PacketID, codec.Success, c.v) // [MQTT-4.3.3-9]
	}
	if deliver && c.o.OnMessage != nil {
		m := &l.msg
		*m = Message{Topic: p.Topic, Payload: p.Payload, QoS: p.QoS, Retain: p.Retain, Dup: p.Dup, PacketID: p.PacketID}
		if c.v == codec.V5 {
			m.Props = &p.Props
		}
		c.o.OnMessage(m)
	}
	return nil
}

// onAck handles PUBACK, PUBREC and PUBCOMP (decoded in c.l.ack).
func (c *Conn) onAck(t codec.Type) {
	l := c.l
	a := &l.ack
	f, ok := c.inflight[a.PacketID]
	switch t {
	case codec.PUBACK:
		if !ok || f.kind != markPub1 {
			return // not ours: nothing to complete
		}
	case codec.PUBREC:
		if !ok || f.kind != markPub2 {
			code := codec.Success
			if c.v == codec.V5 && !(ok && f.kind == markPubrel) {
				code = codec.PacketIDNotFound
			}
			l.out = codec.AppendAck(l.out, codec.PUBREL, a.PacketID, code, c.v)
			return
		}
		if !a.Code.IsError() {
			f.kind = markPubrel
			c.inflight[a.PacketID] = f
			l.out = codec.AppendAck(l.out, codec.PUBREL, a.PacketID, codec.Success, c.v) // [MQTT-4.3.3-3]
			return
		}
		// A failure code ends the exchange and frees the slot [MQTT-4.9.0-2].
	case codec.PUBCOMP:
		if !ok || f.kind != markPubrel {
			return
		}
	}
	delete(c.inflight, a.PacketID)
	c.inflightPubs--
	c.outstanding.Add(-1)
	var err error
	if a.Code.IsError() {
		err = &ReasonError{Packet: t, Code: a.Code, Reason: string(a.Props.ReasonString)}
	}
	f.w.complete(a.Code, err)
}

// onSuback completes a Subscribe or Unsubscribe (decoded in c.l.suback).
func (c *Conn) onSuback(t codec.Type) {
	s := &c.l.suback
	f, ok := c.inflight[s.PacketID]
	want := markSub
	if t == codec.UNSUBACK {
		want = markUnsub
	}
	if !ok || f.kind != want {
		return
	}
	delete(c.inflight, s.PacketID)
	code := codec.Success
	if len(s.Codes) > 0 {
		code = s.Codes[0]
	}
	var err error
	if code.IsError() {
		err = &ReasonError{Packet: t, Code: code, Reason: string(s.Props.ReasonString)}
	}
	f.w.complete(code, err)
}
