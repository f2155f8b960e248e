package codec

import (
	"fmt"
	"reflect"
)

// Helpers shared by the golden, error, fuzz and allocation tests.

// decodePacket decodes one frame's body into a fresh struct of its type,
// as the broker (or, with client, a client) would.
func decodePacket(h Header, body []byte, v byte, client bool) (any, error) {
	switch h.Type {
	case CONNECT:
		p := new(Connect)
		return p, p.Decode(body)
	case CONNACK:
		p := new(Connack)
		return p, p.Decode(body, v)
	case PUBLISH:
		p := new(Publish)
		if client {
			return p, p.DecodeClient(h.Flags, body, v)
		}
		return p, p.Decode(h.Flags, body, v)
	case PUBACK, PUBREC, PUBREL, PUBCOMP:
		p := new(Ack)
		return p, p.Decode(h.Type, body, v)
	case SUBSCRIBE:
		p := new(Subscribe)
		return p, p.Decode(body, v)
	case SUBACK, UNSUBACK:
		p := new(Suback)
		return p, p.Decode(h.Type, body, v)
	case UNSUBSCRIBE:
		p := new(Unsubscribe)
		return p, p.Decode(body, v)
	case PINGREQ, PINGRESP:
		if len(body) != 0 {
			return nil, ErrTrailingBytes // [MQTT-3.12.2], [MQTT-3.13.2]: no variable header
		}
		return &ping{h.Type}, nil
	case DISCONNECT, AUTH:
		p := new(Disconnect)
		return p, p.Decode(h.Type, body, v)
	}
	return nil, fmt.Errorf("no decoder for %v", h.Type)
}

// decodeFrame parses the fixed header of a whole frame and decodes it.
func decodeFrame(frame []byte, v byte, client bool) (any, error) {
	h, err := ParseHeader(frame, 0)
	if err != nil {
		return nil, err
	}
	if h.Size() != len(frame) {
		return nil, fmt.Errorf("frame is %d bytes, header says %d", len(frame), h.Size())
	}
	return decodePacket(h, frame[h.Len:], v, client)
}

// appendPacket encodes any of the packet structs for level v.
func appendPacket(dst []byte, p any, v byte) []byte {
	switch p := p.(type) {
	case *Connect:
		return p.Append(dst)
	case *Connack:
		return p.Append(dst, v)
	case *Publish:
		return p.Append(dst, v)
	case *Ack:
		return p.Append(dst, v)
	case *Subscribe:
		return p.Append(dst, v)
	case *Suback:
		return p.Append(dst, v)
	case *Unsubscribe:
		return p.Append(dst, v)
	case *Disconnect:
		return p.Append(dst, v)
	case *ping:
		return AppendPing(dst, p.Type)
	}
	panic(fmt.Sprintf("appendPacket: %T", p))
}

// normalize sets every empty slice reachable from v to nil: the decoder
// returns empty strings as zero-length slices of the frame, fixtures write
// them as nil, and the two mean the same on the wire.
func normalize(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			normalize(v.Elem())
		}
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			normalize(v.Field(i))
		}
	case reflect.Slice:
		if v.Len() == 0 {
			if !v.IsNil() && v.CanSet() {
				v.Set(reflect.Zero(v.Type()))
			}
			return
		}
		for i := 0; i < v.Len(); i++ {
			normalize(v.Index(i))
		}
	}
}

// samePacket compares two packets after normalising nil and empty slices.
func samePacket(a, b any) bool {
	normalize(reflect.ValueOf(a))
	normalize(reflect.ValueOf(b))
	return reflect.DeepEqual(a, b)
}
