// Command floor is the benchmark's reference point: a gnet server that does
// as little as an MQTT broker can and still carry the benchmark's traffic.
// It is a ceiling to compare Shoal against, not a broker.
//
// It answers CONNECT with CONNACK, SUBSCRIBE with a SUBACK granting what was
// asked, UNSUBSCRIBE with UNSUBACK and PINGREQ with PINGRESP. It remembers
// subscriptions in one map from topic to connections, exact match only: no
// wildcards, no shared subscriptions, no sessions, no retained messages, no
// validation. A PUBLISH is forwarded to the topic's subscribers as a QoS 0
// frame (the publisher's bytes, with the QoS bits and packet identifier
// removed); a QoS 1 publisher gets PUBACK, a QoS 2 one PUBREC and PUBCOMP.
//
// Replies and forwarded frames are gathered per connection during one read
// burst and written once at its end, so a burst of publishes costs each
// subscriber one write.
//
//	floor -addr 127.0.0.1:1883
package main

import (
	"flag"
	"fmt"
	"os"
	"sync"

	"github.com/panjf2000/gnet/v2"
	"github.com/panjf2000/gnet/v2/pkg/logging"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:1883", "listen on `ADDR` (host:port)")
	flag.Parse()
	f := newFloor()
	err := gnet.Run(f, "tcp://"+*addr,
		gnet.WithMulticore(true), // one loop per CPU the process may use
		gnet.WithTCPNoDelay(gnet.TCPNoDelay),
		gnet.WithLogLevel(logging.ErrorLevel))
	if err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(1)
	}
}

// client is one connection's state. Its fields are written only by the
// loop that owns the connection; topics is read by that loop alone.
type client struct {
	conn    gnet.Conn
	version byte // protocol level from CONNECT; 0 before it
	topics  []string
}

// floor is the event handler. mu guards subs, which maps a topic to its
// subscribers; every slice in it is replaced, never modified in place, so
// a reader may keep one after unlocking.
type floor struct {
	gnet.BuiltinEventEngine

	mu   sync.RWMutex
	subs map[string][]*client

	loopsMu sync.Mutex
	loops   map[gnet.EventLoop]*burst
}

// burst collects what one event loop writes during one OnTraffic call. It
// is used only by its loop's goroutine.
type burst struct {
	pending map[*client][]byte
	order   []*client
	scratch []byte
}

func newFloor() *floor {
	return &floor{subs: make(map[string][]*client), loops: make(map[gnet.EventLoop]*burst)}
}

func (f *floor) burstFor(l gnet.EventLoop) *burst {
	f.loopsMu.Lock()
	defer f.loopsMu.Unlock()
	b := f.loops[l]
	if b == nil {
		b = &burst{pending: make(map[*client][]byte)}
		f.loops[l] = b
	}
	return b
}

func (b *burst) add(c *client, p ...byte) {
	buf, ok := b.pending[c]
	if !ok || len(buf) == 0 {
		b.order = append(b.order, c)
	}
	b.pending[c] = append(buf, p...)
}

// flush writes each connection's gathered bytes: directly when the
// connection belongs to this loop, through AsyncWrite (which takes the
// buffer) when it belongs to another.
func (b *burst) flush(l gnet.EventLoop) {
	for _, c := range b.order {
		buf := b.pending[c]
		if c.conn.EventLoop() == l {
			_, _ = c.conn.Write(buf)
			b.pending[c] = buf[:0]
			continue
		}
		_ = c.conn.AsyncWrite(buf, nil)
		delete(b.pending, c)
	}
	b.order = b.order[:0]
}

func (f *floor) OnOpen(c gnet.Conn) ([]byte, gnet.Action) {
	c.SetContext(&client{conn: c})
	return nil, gnet.None
}

func (f *floor) OnClose(c gnet.Conn, _ error) gnet.Action {
	cl, _ := c.Context().(*client)
	if cl == nil || len(cl.topics) == 0 {
		return gnet.None
	}
	f.mu.Lock()
	for _, t := range cl.topics {
		f.subs[t] = without(f.subs[t], cl)
		if len(f.subs[t]) == 0 {
			delete(f.subs, t)
		}
	}
	f.mu.Unlock()
	b := f.burstFor(c.EventLoop())
	delete(b.pending, cl)
	return gnet.None
}

// without returns a new slice of s less c.
func without(s []*client, c *client) []*client {
	out := make([]*client, 0, len(s))
	for _, x := range s {
		if x != c {
			out = append(out, x)
		}
	}
	return out
}

func (f *floor) OnTraffic(c gnet.Conn) gnet.Action {
	cl := c.Context().(*client)
	b := f.burstFor(c.EventLoop())
	buf, _ := c.Peek(-1)
	off, action := 0, gnet.None
	for action == gnet.None {
		header, total, ok, err := frameLen(buf[off:])
		if err != nil {
			action = gnet.Close
			break
		}
		if !ok {
			break
		}
		action = f.handle(b, cl, buf[off:off+total], header)
		off += total
	}
	_, _ = c.Discard(off)
	b.flush(c.EventLoop())
	return action
}

// handle acts on one whole frame from cl.
func (f *floor) handle(b *burst, cl *client, frame []byte, header int) gnet.Action {
	body := frame[header:]
	switch frame[0] >> 4 {
	case typeConnect:
		v, err := connectVersion(body)
		if err != nil {
			return gnet.Close
		}
		cl.version = v
		if v == 5 {
			b.add(cl, 0x20, 3, 0, 0, 0) // session present 0, success, no properties
		} else {
			b.add(cl, 0x20, 2, 0, 0)
		}
	case typePublish:
		topic, qos, id, idAt, err := publishTopic(frame[0], body)
		if err != nil {
			return gnet.Close
		}
		b.scratch = appendQoS0(b.scratch[:0], frame, header, qos, idAt)
		f.mu.RLock()
		subs := f.subs[string(topic)]
		f.mu.RUnlock()
		for _, s := range subs {
			b.add(s, b.scratch...)
		}
		switch qos {
		case 1:
			b.add(cl, 0x40, 2, id[0], id[1]) // PUBACK
		case 2:
			b.add(cl, 0x50, 2, id[0], id[1]) // PUBREC
		}
	case typePubrel:
		if len(body) >= 2 {
			b.add(cl, 0x70, 2, body[0], body[1]) // PUBCOMP
		}
	case typeSubscribe:
		id, fs, err := parseFilters(body, cl.version, true)
		if err != nil {
			return gnet.Close
		}
		f.subscribe(cl, fs)
		b.add(cl, ack(0x90, cl.version, id, fs, true)...)
	case typeUnsubscribe:
		id, fs, err := parseFilters(body, cl.version, false)
		if err != nil {
			return gnet.Close
		}
		f.unsubscribe(cl, fs)
		b.add(cl, ack(0xb0, cl.version, id, fs, cl.version == 5)...)
	case typePingreq:
		b.add(cl, 0xd0, 0)
	case typeDisconnect:
		return gnet.Close
	}
	return gnet.None
}

// ack builds a SUBACK or UNSUBACK: the packet identifier, an empty property
// list for MQTT 5, and one code per filter when codes is set (the granted
// QoS for SUBACK, success for an MQTT 5 UNSUBACK).
func ack(first, version byte, id [2]byte, fs []filter, codes bool) []byte {
	body := []byte{id[0], id[1]}
	if version == 5 {
		body = append(body, 0)
	}
	if codes {
		for _, x := range fs {
			body = append(body, x.qos)
		}
	}
	return append(appendLen([]byte{first}, len(body)), body...)
}

func (f *floor) subscribe(cl *client, fs []filter) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, x := range fs {
		cur := f.subs[x.topic]
		dup := false
		for _, s := range cur {
			dup = dup || s == cl
		}
		if dup {
			continue
		}
		next := make([]*client, len(cur), len(cur)+1)
		copy(next, cur)
		f.subs[x.topic] = append(next, cl)
		cl.topics = append(cl.topics, x.topic)
	}
}

func (f *floor) unsubscribe(cl *client, fs []filter) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, x := range fs {
		f.subs[x.topic] = without(f.subs[x.topic], cl)
		if len(f.subs[x.topic]) == 0 {
			delete(f.subs, x.topic)
		}
		for i, t := range cl.topics {
			if t == x.topic {
				cl.topics = append(cl.topics[:i], cl.topics[i+1:]...)
				break
			}
		}
	}
}
