package main

import (
	"encoding/binary"
	"errors"
)

// A publisher stamps the start of every payload so that subscribers can
// measure latency and count lost and duplicate messages:
//
//	bytes 0..7    send time, Unix nanoseconds, big-endian
//	bytes 8..15   the publisher's sequence number for this message, from 0
//	bytes 16..19  the publisher's index (its %i)
//
// The rest of the payload is padding.
const stampSize = 20

type stamp struct {
	sentNs int64
	seq    uint64
	pub    uint32
}

var errShortPayload = errors.New("payload shorter than the 20-byte stamp")

// put writes s at the start of p, which must hold stampSize bytes.
func (s stamp) put(p []byte) {
	binary.BigEndian.PutUint64(p[0:8], uint64(s.sentNs))
	binary.BigEndian.PutUint64(p[8:16], s.seq)
	binary.BigEndian.PutUint32(p[16:20], s.pub)
}

// readStamp reads the stamp at the start of p.
func readStamp(p []byte) (stamp, error) {
	if len(p) < stampSize {
		return stamp{}, errShortPayload
	}
	return stamp{
		sentNs: int64(binary.BigEndian.Uint64(p[0:8])),
		seq:    binary.BigEndian.Uint64(p[8:16]),
		pub:    binary.BigEndian.Uint32(p[16:20]),
	}, nil
}
