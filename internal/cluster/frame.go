package cluster

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/valyala/bytebufferpool"

	"github.com/shoalmq/shoal/router"
)

// A frame is one message on its way to another node (Peer.Forward):
//
//	version   1 byte, frameVersion
//	flags     1 byte: QoS in bits 0-1, Retain in bit 2
//	expiry    uvarint: milliseconds left before it expires, 0: never
//	origin    uvarint: the message's identity (router.Message.Origin)
//	topic     uvarint length, bytes
//	from      uvarint length, bytes: the publisher's client id
//	props     uvarint length, bytes: its MQTT 5 properties, as for subscribers
//	group     uvarint length, bytes: the shared group it is for, "" for none
//	to        uvarint length, bytes: the session it is for, "" for every
//	          session it matches (a handover's, handover.go)
//	payload   the rest
//
// The expiry travels as time left, not as a time, so that nodes whose
// clocks disagree keep it (less the time on the way). Frames of version 1
// (no origin, no to) are still read: the buckets keep retained messages
// and wills as frames.
const frameVersion = 2

var errFrame = errors.New("cluster: malformed message frame")

// framePool holds frames being built: NATS copies what it publishes.
var framePool bytebufferpool.Pool

// appendFrame appends m's frame, for group ("" for none), as of now (Unix
// nanoseconds).
func appendFrame(dst []byte, m *router.Message, group string, now int64) []byte {
	return appendFrameTo(dst, m, group, "", now)
}

// appendFrameTo appends m's frame for the session of client id to alone
// ("" for every session it matches).
func appendFrameTo(dst []byte, m *router.Message, group, to string, now int64) []byte {
	flags := m.QoS & 3
	if m.Retain {
		flags |= 4
	}
	dst = append(dst, frameVersion, flags)
	var left uint64
	if m.Expiry != 0 {
		left = max(uint64((m.Expiry-now)/int64(time.Millisecond)), 1)
	}
	dst = binary.AppendUvarint(dst, left)
	dst = binary.AppendUvarint(dst, m.Origin)
	dst = appendBytes(dst, m.Topic)
	dst = appendBytes(dst, m.FromID)
	dst = appendBytes(dst, m.Props)
	dst = binary.AppendUvarint(dst, uint64(len(group)))
	dst = append(dst, group...)
	dst = binary.AppendUvarint(dst, uint64(len(to)))
	dst = append(dst, to...)
	return append(dst, m.Payload...)
}

func appendBytes(dst, b []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(b)))
	return append(dst, b...)
}

// decodeFrame returns the message a frame carries, its time left counted
// from now (Unix nanoseconds), with the shared group it is for.
func decodeFrame(b []byte, now int64) (m *router.Message, group string, err error) {
	m, group, _, err = decodeFrameTo(b, now)
	return m, group, err
}

// decodeFrameTo is decodeFrame that also returns the session the frame
// is for alone ("" for every session it matches).
func decodeFrameTo(b []byte, now int64) (m *router.Message, group, to string, err error) {
	if len(b) < 2 || (b[0] != 1 && b[0] != frameVersion) || b[1]&3 == 3 || b[1]>>3 != 0 {
		return nil, "", "", errFrame
	}
	v2 := b[0] == frameVersion
	qos, retain := b[1]&3, b[1]&4 != 0
	b = b[2:]
	var head [2]uint64 // time left; origin (version 2)
	nums := head[:1]
	if v2 {
		nums = head[:]
	}
	for i := range nums {
		x, n := binary.Uvarint(b)
		if n <= 0 {
			return nil, "", "", errFrame
		}
		nums[i], b = x, b[n:]
	}
	var fields [5][]byte // topic, from, props, group, to (version 2)
	strs := fields[:4]
	if v2 {
		strs = fields[:]
	}
	for i := range strs {
		l, n := binary.Uvarint(b)
		if n <= 0 || uint64(len(b)-n) < l {
			return nil, "", "", errFrame
		}
		strs[i], b = b[n:n+int(l)], b[n+int(l):]
	}
	var expiry int64
	if left := head[0]; left != 0 {
		expiry = now + int64(left)*int64(time.Millisecond)
	}
	m = router.NewMessage(fields[0], b, fields[2], fields[1], qos, retain, expiry, nil)
	m.Origin = head[1]
	if len(fields[4]) > 0 {
		to = string(fields[4])
	}
	return m, string(fields[3]), to, nil
}
