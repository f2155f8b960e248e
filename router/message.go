package router

import (
	"sync"
	"sync/atomic"

	"github.com/valyala/bytebufferpool"
)

// Message is one application message on its way through the broker: a
// PUBLISH copied out of a connection's read buffer into a pooled buffer, so
// that it can outlive the read and be shared by every subscriber, queue and
// the retained store without further copies.
//
// A Message is immutable once published and reference counted: whoever keeps
// it (a router worker, a delivery in flight, a session queue, the retained
// store) holds a reference taken with Ref and gives it back with Release.
// When the last reference goes, its buffer returns to the pool. All methods
// are safe for concurrent use.
type Message struct {
	refs atomic.Int32
	// superseded is set when the retained store replaces or clears the
	// message (Superseded). It sits in what was refs' padding: Message
	// keeps its size.
	superseded atomic.Bool

	// Topic, Payload and Props alias buf; valid while a reference is held.
	Topic   []byte
	Payload []byte
	// Props are the PUBLISH's MQTT 5 properties as they go on the wire to
	// subscribers, already stripped of those that are per-hop (Topic Alias,
	// Subscription Identifier, Message Expiry Interval). Empty for messages
	// from v3 clients.
	Props []byte

	// Expiry is the Unix time in nanoseconds after which the message must no
	// longer be delivered; 0 means never [MQTT-3.3.2-5].
	Expiry int64

	QoS    byte
	Retain bool

	// From is the publishing session, for No Local; nil for messages the
	// broker makes itself (wills may outlive their session, so they keep nil
	// and FromID).
	From Subscriber
	// FromID is the publisher's client identifier, aliasing buf.
	FromID []byte
	// Origin, when not 0, identifies the message in a cluster: the node
	// that routes it first gives it one (package dispatch), and it goes
	// with the message to the other nodes, so that a node can tell a
	// message it has seen — one a rescuer finds the dead node kept
	// already, or one that reaches a moving session by two ways. Kept
	// with a delivery in the cluster's copy of the sessions, and in a
	// session's bundle, not in the store's records.
	Origin uint64

	buf *bytebufferpool.ByteBuffer
}

var messagePool = sync.Pool{New: func() any { return new(Message) }}

// bufPool holds message bodies. Its calibration keeps buffers sized to the
// traffic, so a steady stream of similar messages allocates nothing.
var bufPool bytebufferpool.Pool

// NewMessage copies topic, payload, props and the publisher's id into one
// pooled buffer and returns a Message holding one reference.
func NewMessage(topic, payload, props, fromID []byte, qos byte, retain bool, expiry int64, from Subscriber) *Message {
	m := messagePool.Get().(*Message)
	b := bufPool.Get()
	need := len(topic) + len(payload) + len(props) + len(fromID)
	if cap(b.B) < need {
		b.B = make([]byte, 0, need)
	}
	b.B = append(b.B[:0], topic...)
	b.B = append(b.B, payload...)
	b.B = append(b.B, props...)
	b.B = append(b.B, fromID...)
	o := 0
	m.Topic = b.B[o : o+len(topic) : o+len(topic)]
	o += len(topic)
	m.Payload = b.B[o : o+len(payload) : o+len(payload)]
	o += len(payload)
	m.Props = b.B[o : o+len(props) : o+len(props)]
	o += len(props)
	m.FromID = b.B[o : o+len(fromID) : o+len(fromID)]
	m.QoS, m.Retain, m.Expiry, m.From = qos, retain, expiry, from
	m.buf = b
	m.refs.Store(1)
	return m
}

// Ref takes one more reference and returns m.
func (m *Message) Ref() *Message {
	m.refs.Add(1)
	return m
}

// RefN takes n more references at once: one atomic operation for a whole
// fan-out instead of one per receiver.
func (m *Message) RefN(n int32) {
	if n > 0 {
		m.refs.Add(n)
	}
}

// Release gives back one reference. After the last one the Message and its
// slices must not be touched: they are recycled.
func (m *Message) Release() { m.ReleaseN(1) }

// ReleaseN gives back n references at once (n >= 1).
func (m *Message) ReleaseN(n int32) {
	left := m.refs.Add(-n)
	if left > 0 {
		return
	}
	if left < 0 {
		panic("router: Message released more often than referenced")
	}
	bufPool.Put(m.buf)
	*m = Message{}
	messagePool.Put(m)
}

// Refs is the number of references held now: for tests and invariant
// checks, as it may change the moment it is read.
func (m *Message) Refs() int32 { return m.refs.Load() }

// Superseded reports whether the retained store has replaced or cleared m
// since it stored it: a newer retained message (or its removal) for m.Topic
// has been routed to m's subscribers since. A message that was never
// retained is never superseded.
func (m *Message) Superseded() bool { return m.superseded.Load() }

// Expired reports whether the message's expiry has passed at now (Unix ns).
func (m *Message) Expired(now int64) bool {
	return m.Expiry != 0 && now >= m.Expiry
}
