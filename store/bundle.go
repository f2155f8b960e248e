package store

// Bundle is one session with everything owed to it, as one value: how a
// session moves from one node of a cluster to another when its client
// connects elsewhere. Its encoding is the store's records', one after the
// other, so that what a node keeps and what it hands on cannot drift.
type Bundle struct {
	Session Session
	// Deliveries are in the order the session owes them: the ones in
	// flight first (PacketID and State set), then the queued ones.
	Deliveries []Delivery
	// AwaitRel are the packet ids of QoS 2 messages from the client whose
	// PUBREL has not come [MQTT-4.3.3-12].
	AwaitRel []uint16
	// Received are the Origins of QoS 2 messages the client received
	// lately and no longer owed (ReceiptWriter): a node the session comes
	// to does not deliver them again.
	Received []uint64
}

// AppendBundle appends b's encoding to dst.
func AppendBundle(dst []byte, b *Bundle) []byte {
	e := enc(dst).u8(recordVersion).str(b.Session.ClientID).bytes(encodeSession(nil, &b.Session))
	e = e.uv(uint64(len(b.Deliveries)))
	for i := range b.Deliveries {
		dl := &b.Deliveries[i]
		e = e.bytes(encodeDelivery(nil, dl)).u16(dl.PacketID).u8(dl.State)
	}
	e = e.uv(uint64(len(b.AwaitRel)))
	for _, id := range b.AwaitRel {
		e = e.u16(id)
	}
	// Last, the deliveries' messages' Origins, which the store's records
	// do not keep: a bundle without them (an older node's) still decodes.
	e = e.uv(uint64(len(b.Deliveries)))
	for i := range b.Deliveries {
		e = e.uv(b.Deliveries[i].Msg.Origin)
	}
	// Then, if any, the Origins received lately: a bundle without them
	// still decodes.
	if len(b.Received) > 0 {
		e = e.uv(uint64(len(b.Received)))
		for _, o := range b.Received {
			e = e.uv(o)
		}
	}
	return e
}

// DecodeBundle decodes v, which AppendBundle made, into b. b's messages
// alias v.
func DecodeBundle(v []byte, b *Bundle) error {
	d := dec{b: v}
	d.version()
	b.Session.ClientID = d.str()
	if err := decodeSession(d.bytes(), &b.Session); err != nil && d.err == nil {
		return err
	}
	n := d.uv()
	if n > uint64(len(d.b)) {
		d.fail()
	}
	b.Deliveries = make([]Delivery, 0, min(n, 1024))
	for i := uint64(0); i < n && d.err == nil; i++ {
		var dl Delivery
		if err := decodeDelivery(d.bytes(), &dl); err != nil && d.err == nil {
			return err
		}
		dl.PacketID, dl.State = d.u16(), d.u8()
		if dl.State > 3 || (dl.State != 0) != (dl.PacketID != 0) {
			d.fail()
		}
		b.Deliveries = append(b.Deliveries, dl)
	}
	n = d.uv()
	if n > uint64(len(d.b)) {
		d.fail()
	}
	b.AwaitRel = b.AwaitRel[:0]
	for i := uint64(0); i < n && d.err == nil; i++ {
		if id := d.u16(); id != 0 {
			b.AwaitRel = append(b.AwaitRel, id)
		} else {
			d.fail()
		}
	}
	if len(d.b) > 0 && d.err == nil {
		if n := d.uv(); n != uint64(len(b.Deliveries)) {
			d.fail()
		}
		for i := range b.Deliveries {
			if d.err != nil {
				break
			}
			b.Deliveries[i].Msg.Origin = d.uv()
		}
	}
	b.Received = b.Received[:0]
	if len(d.b) > 0 && d.err == nil {
		n = d.uv()
		if n > uint64(len(d.b)) {
			d.fail()
		}
		for i := uint64(0); i < n && d.err == nil; i++ {
			b.Received = append(b.Received, d.uv())
		}
	}
	return d.end()
}

// A session's records one by one, as package replica copies them into the
// cluster's replicated state while the session changes: the same encodings
// the store keeps, so that a session read back from either is the same.

// AppendSession appends s's record (its client id is not in it) to dst.
func AppendSession(dst []byte, s *Session) []byte { return encodeSession(dst, s) }

// DecodeSession decodes a record AppendSession made into s; s's slices
// alias v.
func DecodeSession(v []byte, s *Session) error { return decodeSession(v, s) }

// AppendDelivery appends dl's record to dst: the message owed, without
// its Seq, PacketID and State (AppendSent).
func AppendDelivery(dst []byte, dl *Delivery) []byte { return encodeDelivery(dst, dl) }

// DecodeDelivery decodes a record AppendDelivery made into dl; dl's
// message aliases v.
func DecodeDelivery(v []byte, dl *Delivery) error { return decodeDelivery(v, dl) }

// AppendSent appends the record of a delivery gone out (Writer.MarkSent).
func AppendSent(dst []byte, packetID uint16, state uint8) []byte {
	return encodeSent(dst, packetID, state)
}

// DecodeSent decodes a record AppendSent made.
func DecodeSent(v []byte) (packetID uint16, state uint8, err error) { return decodeSent(v) }
