package main

import "errors"

// This file holds the few byte-level helpers the floor broker needs. They
// validate nothing beyond what they must read to find a frame's end or a
// field: the floor is a ceiling to compare against, not a broker.

// Fixed-header packet types, the high nibble of a frame's first byte.
const (
	typeConnect     = 1
	typePublish     = 3
	typePubrel      = 6
	typeSubscribe   = 8
	typeUnsubscribe = 10
	typePingreq     = 12
	typeDisconnect  = 14
)

var errMalformed = errors.New("floor: malformed frame")

// frameLen reports the length of the frame at the start of b: its header
// length (first byte plus the remaining-length varint) and its total
// length. ok is false while b holds less than the fixed header or the
// whole frame.
func frameLen(b []byte) (header, total int, ok bool, err error) {
	rem, mult := 0, 1
	for i := 1; i <= 4; i++ {
		if i >= len(b) {
			return 0, 0, false, nil
		}
		rem += int(b[i]&0x7f) * mult
		if b[i]&0x80 == 0 {
			header = i + 1
			total = header + rem
			return header, total, len(b) >= total, nil
		}
		mult *= 128
	}
	return 0, 0, false, errMalformed
}

// connectVersion returns the protocol level of a CONNECT body (the bytes
// after the fixed header): 3, 4 or 5.
func connectVersion(body []byte) (byte, error) {
	if len(body) < 2 {
		return 0, errMalformed
	}
	n := int(body[0])<<8 | int(body[1])
	if len(body) < 2+n+1 {
		return 0, errMalformed
	}
	return body[2+n], nil
}

// varint reads an MQTT variable byte integer from b, returning its value
// and its length.
func varint(b []byte) (v, n int, err error) {
	mult := 1
	for i := 0; i < 4 && i < len(b); i++ {
		v += int(b[i]&0x7f) * mult
		if b[i]&0x80 == 0 {
			return v, i + 1, nil
		}
		mult *= 128
	}
	return 0, 0, errMalformed
}

// filter is one topic filter of a SUBSCRIBE or UNSUBSCRIBE, with the QoS
// it asked for (always 0 for UNSUBSCRIBE).
type filter struct {
	topic string
	qos   byte
}

// parseFilters reads the packet identifier and the filters of a SUBSCRIBE
// (withOptions) or UNSUBSCRIBE body. For MQTT 5 it skips the properties.
func parseFilters(body []byte, version byte, withOptions bool) (id [2]byte, fs []filter, err error) {
	if len(body) < 2 {
		return id, nil, errMalformed
	}
	id = [2]byte{body[0], body[1]}
	p := body[2:]
	if version == 5 {
		plen, n, err := varint(p)
		if err != nil || n+plen > len(p) {
			return id, nil, errMalformed
		}
		p = p[n+plen:]
	}
	for len(p) > 0 {
		if len(p) < 2 {
			return id, nil, errMalformed
		}
		n := int(p[0])<<8 | int(p[1])
		if len(p) < 2+n {
			return id, nil, errMalformed
		}
		f := filter{topic: string(p[2 : 2+n])}
		p = p[2+n:]
		if withOptions {
			if len(p) < 1 {
				return id, nil, errMalformed
			}
			f.qos = p[0] & 0x03
			p = p[1:]
		}
		fs = append(fs, f)
	}
	return id, fs, nil
}

// publishTopic returns a PUBLISH body's topic name and, for QoS 1 and 2,
// its packet identifier and the offset where the identifier starts.
func publishTopic(first byte, body []byte) (topic []byte, qos byte, id [2]byte, idAt int, err error) {
	if len(body) < 2 {
		return nil, 0, id, 0, errMalformed
	}
	n := int(body[0])<<8 | int(body[1])
	if len(body) < 2+n {
		return nil, 0, id, 0, errMalformed
	}
	topic = body[2 : 2+n]
	qos = (first >> 1) & 0x03
	if qos > 0 {
		if len(body) < 2+n+2 {
			return nil, 0, id, 0, errMalformed
		}
		idAt = 2 + n
		id = [2]byte{body[idAt], body[idAt+1]}
	}
	return topic, qos, id, idAt, nil
}

// appendQoS0 appends to dst the QoS 0 form of a PUBLISH frame: the same
// topic, properties and payload, with the QoS bits cleared, DUP cleared and
// the packet identifier removed. A QoS 0 frame is appended unchanged.
func appendQoS0(dst []byte, frame []byte, header int, qos byte, idAt int) []byte {
	if qos == 0 {
		return append(dst, frame...)
	}
	body := frame[header:]
	rem := len(body) - 2
	dst = append(dst, frame[0]&0x01|typePublish<<4) // keep RETAIN only
	dst = appendLen(dst, rem)
	dst = append(dst, body[:idAt]...)
	return append(dst, body[idAt+2:]...)
}

// appendLen appends n as an MQTT variable byte integer.
func appendLen(dst []byte, n int) []byte {
	for {
		b := byte(n & 0x7f)
		n >>= 7
		if n == 0 {
			return append(dst, b)
		}
		dst = append(dst, b|0x80)
	}
}
