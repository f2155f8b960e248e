package main

// seqWindow is how far behind the highest sequence number a message may
// arrive and still be told apart from a duplicate. MQTT keeps one
// publisher's messages in order per QoS [MQTT-4.6.0-6], so reordering only
// comes from mixing QoS levels or from redelivery; 4,096 messages cover
// that with room to spare at 512 bytes per publisher and subscriber.
const seqWindow = 4096

// pubTrack follows one publisher's sequence numbers as one subscriber sees
// them.
type pubTrack struct {
	next   uint64 // one past the highest sequence number seen
	unique uint64 // distinct sequence numbers seen
	dup    uint64 // messages seen before
	old    uint64 // arrived more than seqWindow behind: counted unique, unverified
	bits   [seqWindow / 64]uint64
}

func (t *pubTrack) bit(s uint64) (word *uint64, mask uint64) {
	i := s % seqWindow
	return &t.bits[i/64], 1 << (i % 64)
}

// add records sequence number s and reports whether it is new.
func (t *pubTrack) add(s uint64) bool {
	switch {
	case s >= t.next:
		// Sequences entering the window start unseen.
		if s-t.next >= seqWindow {
			clear(t.bits[:])
		} else {
			for q := t.next; q < s; q++ {
				w, m := t.bit(q)
				*w &^= m
			}
		}
		w, m := t.bit(s)
		*w |= m
		t.next = s + 1
	case t.next-s > seqWindow:
		t.old++
	default:
		w, m := t.bit(s)
		if *w&m != 0 {
			t.dup++
			return false
		}
		*w |= m
	}
	t.unique++
	return true
}

// tracker is one subscriber's view of every publisher it hears from. It
// is used only by that subscriber's OnMessage (one loop goroutine), and
// read after the connection has closed.
type tracker struct {
	pubs map[uint32]*pubTrack
}

// add records message seq of publisher pub and reports whether it is new.
func (tr *tracker) add(pub uint32, seq uint64) bool {
	t := tr.pubs[pub]
	if t == nil {
		if tr.pubs == nil {
			tr.pubs = make(map[uint32]*pubTrack)
		}
		t = new(pubTrack)
		tr.pubs[pub] = t
	}
	return t.add(seq)
}

// loss is what the subscriber missed. With expect > 0 each publisher
// should have delivered expect messages (0..expect-1), and with pubs > 0
// that many publishers should have been heard; otherwise only the gaps
// below each publisher's highest sequence number count.
func (tr *tracker) loss(expect uint64, pubs int) (lost, dup uint64) {
	for _, t := range tr.pubs {
		dup += t.dup
		want := t.next
		if expect > 0 {
			want = expect
		}
		if t.unique < want {
			lost += want - t.unique
		}
	}
	if pubs > len(tr.pubs) && expect > 0 {
		lost += uint64(pubs-len(tr.pubs)) * expect
	}
	return lost, dup
}
