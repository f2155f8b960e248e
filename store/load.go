package store

import (
	"bytes"
	"encoding/binary"
	"strconv"
)

// source is a store's raw records, for load.
type source interface {
	// scan calls fn for each record of kind in key order; what names the
	// kind in reports to l.Corrupt.
	scan(l Loader, kind byte, what string, fn func(k, v []byte))
}

// load decodes src's records and hands them to l, in the order Store.Load
// promises; drop is given the key of each record l refused (expired, or
// whose session is gone), to delete. A record that does not decode is
// reported to l.Corrupt and given to bad: it is damage, which the store
// salvages (or refuses) as a whole, never deleted where it is.
func load(src source, l Loader, drop, bad func(k []byte)) {
	var s Session
	src.scan(l, kindSession, "sessions", func(k, v []byte) {
		id, rest, err := parseClientKey(k)
		if err == nil && len(rest) != 0 {
			err = errCorrupt
		}
		if err == nil {
			err = decodeSession(v, &s)
		}
		if err != nil {
			l.Corrupt("session record "+strconv.Quote(string(k)), err)
			bad(k)
			return
		}
		s.ClientID = id
		if !l.Session(&s) {
			drop(k)
		}
	})
	loadDeliveries(src, l, drop, bad)
	src.scan(l, kindAwait, "QoS 2 ids", func(k, v []byte) {
		id, rest, err := parseClientKey(k)
		if err == nil && len(rest) != 2 {
			err = errCorrupt
		}
		if err != nil {
			l.Corrupt("QoS 2 id record", err)
			bad(k)
			return
		}
		if pid := binary.BigEndian.Uint16(rest); pid == 0 || !l.AwaitRel(id, pid) {
			drop(k)
		}
	})
	var m Message
	src.scan(l, kindRetained, "retained messages", func(k, v []byte) {
		err := decodeRetained(v, &m)
		if err == nil && !bytes.Equal(m.Topic, k[1:]) {
			err = errCorrupt
		}
		if err != nil {
			l.Corrupt("retained record "+strconv.Quote(string(k[1:])), err)
			bad(k)
			return
		}
		if !l.Retained(&m) {
			drop(k)
		}
	})
}

// loadDeliveries reads the D records of each client in Seq order, with
// their F records (sent state).
func loadDeliveries(src source, l Loader, drop, bad func([]byte)) {
	sent := make(map[string]uint32) // key suffix -> pid<<8 | state
	src.scan(l, kindSent, "sent states", func(k, v []byte) {
		pid, state, err := decodeSent(v)
		if err != nil {
			l.Corrupt("sent-state record", err)
			bad(k)
			return
		}
		sent[string(k[1:])] = uint32(pid)<<8 | uint32(state)
	})
	var d Delivery
	src.scan(l, kindDelivery, "deliveries", func(k, v []byte) {
		id, rest, err := parseClientKey(k)
		if err == nil && len(rest) != 8 {
			err = errCorrupt
		}
		if err == nil {
			err = decodeDelivery(v, &d)
		}
		st, hasSent := sent[string(k[1:])]
		delete(sent, string(k[1:]))
		if err != nil {
			l.Corrupt("delivery record", err)
			bad(k)
			if hasSent {
				bad(append([]byte{kindSent}, k[1:]...))
			}
			return
		}
		d.Seq = binary.BigEndian.Uint64(rest)
		d.PacketID, d.State = uint16(st>>8), uint8(st)
		if !l.Delivery(id, &d) {
			drop(k)
			if hasSent {
				drop(append([]byte{kindSent}, k[1:]...))
			}
		}
	})
	for suffix := range sent { // states whose delivery is gone
		drop(append([]byte{kindSent}, suffix...))
	}
}
