package client

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/panjf2000/gnet/v2"

	"github.com/shoalmq/shoal/codec"
)

// Conn is one MQTT connection. Its exported methods are safe for
// concurrent use; those that wait (PublishWait, Subscribe, Unsubscribe,
// Disconnect) must not be called from the connection's callbacks.
type Conn struct {
	e *Engine
	o Options
	v byte // protocol level

	gc gnet.Conn // set on the loop by OnOpen, before Connect returns
	l  *loop     // likewise

	connack chan error    // Connect's answer, sent once
	done    chan struct{} // closed when the connection has gone

	// Shared with other goroutines; mu guards the fields up to the blank
	// line.
	mu         sync.Mutex
	pend       []byte // encoded packets not yet taken by the loop
	marks      []mark // packets in pend that need an identifier or a waiter
	scheduled  bool   // on l.ready
	disconnect bool   // Disconnect asked
	closeAsked bool   // Close asked
	closed     bool
	err        error // returned by operations after close

	pendBytes   atomic.Int64 // bytes in pend and held
	outBytes    atomic.Int64 // bytes gnet holds for the socket, as of the last write
	outstanding atomic.Int32 // QoS 1/2 publications queued or in flight
	window      atomic.Int32 // in-flight window, fixed at CONNACK
	want        atomic.Bool  // someone waits for OnWritable

	// Loop-owned.
	connectPkt   []byte // CONNECT, handed to gnet by OnOpen
	idx          int    // position in l.conns
	connected    bool   // CONNACK accepted
	gone         bool   // onClose has run
	cause        error  // why the loop is closing the connection
	closeErr     error  // the close's cause, read by Disconnect after done
	stalled      bool   // on l.stalled
	held         []byte // output taken from pend, waiting for window or socket
	heldMarks    []mark
	inflight     map[uint16]flight // by packet identifier
	inflightPubs int               // QoS 1/2 PUBLISHes in inflight
	winMax       int
	qos2in       map[uint16]struct{} // inbound QoS 2 ids awaiting PUBREL
	nextID       uint16
	keepAlive    uint16
	lastSent     uint32 // loop tick of the last write
	pingSent     uint32
	pingOut      bool
	connectTick  uint32
	discState    uint8
	discTick     uint32
	sessPresent  bool
}

// Packet kinds in the output queue and the in-flight table.
const (
	markPub0   uint8 = iota // QoS 0 PUBLISH with a waiter
	markPub1                // QoS 1 PUBLISH, until PUBACK
	markPub2                // QoS 2 PUBLISH, until PUBREC
	markPubrel              // QoS 2 after PUBREC, until PUBCOMP
	markSub
	markUnsub
)

// Disconnect progress.
const (
	discNone     uint8 = iota
	discDraining       // Disconnect asked: send what may go, then DISCONNECT
	discSent           // DISCONNECT queued: close once gnet has written it all
	discClosing        // close requested
)

// disconnectWait bounds, in ticks (seconds), how long a Disconnect waits
// for the socket to take its output before it closes anyway.
const disconnectWait = 10

// mark is a packet in the queue that needs a packet identifier (written at
// idOff bytes past off, when it leaves) or whose waiter completes on send.
type mark struct {
	off   int
	idOff int
	kind  uint8
	w     *waiter
}

// flight is an entry of the in-flight table.
type flight struct {
	kind uint8
	w    *waiter
}

// waiter carries one result to a goroutine waiting on an operation.
type waiter struct{ ch chan result }

type result struct {
	code codec.ReasonCode
	err  error
}

func newWaiter() *waiter { return &waiter{ch: make(chan result, 1)} }

// complete delivers the result; called exactly once per waiter.
func (w *waiter) complete(code codec.ReasonCode, err error) {
	if w != nil {
		w.ch <- result{code, err}
	}
}

func (w *waiter) wait(ctx context.Context) (result, error) {
	select {
	case r := <-w.ch:
		return r, nil
	case <-ctx.Done():
		return result{}, ctx.Err()
	}
}

func newConn(e *Engine, o Options) *Conn {
	c := &Conn{
		e: e, o: o, v: o.Version,
		connack:    make(chan error, 1),
		done:       make(chan struct{}),
		connectPkt: o.connectPacket(),
		keepAlive:  o.KeepAlive,
		winMax:     int(o.MaxInflight),
	}
	c.window.Store(int32(o.MaxInflight))
	return c
}

// Publish queues a PUBLISH and returns without waiting. The payload is
// copied, so the caller may reuse it. QoS 0 messages go out with the next
// write; QoS 1 and 2 messages take an in-flight slot (waiting in the queue,
// in order, while the window is full) and complete on PUBACK or PUBCOMP —
// Outstanding counts them until then. It returns ErrQueueFull when the
// connection already holds Options.MaxQueued bytes of unsent output, and
// an error wrapping ErrClosed after the connection has closed. Safe for
// concurrent use, also from callbacks.
func (c *Conn) Publish(topic string, payload []byte, qos byte, retain bool) error {
	return c.publish(topic, payload, qos, retain, nil)
}

// PublishWait publishes like Publish and waits until a QoS 1 or 2 message
// is acknowledged (PUBACK, PUBCOMP) or a QoS 0 message has been handed to
// the socket, or until ctx ends (the message stays queued then). It is not
// limited by Options.MaxQueued: each caller adds one message at a time. A
// v5 acknowledgement with a failure code is a *ReasonError. Safe for
// concurrent use, but not from callbacks.
func (c *Conn) PublishWait(ctx context.Context, topic string, payload []byte, qos byte, retain bool) error {
	w := newWaiter()
	if err := c.publish(topic, payload, qos, retain, w); err != nil {
		return err
	}
	r, err := w.wait(ctx)
	if err != nil {
		return err
	}
	return r.err
}

func (c *Conn) publish(topic string, payload []byte, qos byte, retain bool, w *waiter) error {
	if qos > 2 {
		return errors.New("client: QoS above 2")
	}
	// The codec only reads the topic, so it may alias the string's bytes:
	// no copy per message.
	tb := unsafe.Slice(unsafe.StringData(topic), len(topic))
	if err := codec.CheckTopicName(tb); err != nil {
		return fmt.Errorf("client: publish: %w", err)
	}
	if w == nil && !c.fits(len(topic)+len(payload)+16) {
		return ErrQueueFull
	}
	p := codec.Publish{QoS: qos, Retain: retain, Topic: tb, Payload: payload}
	c.mu.Lock()
	if err := c.refusing(); err != nil {
		c.mu.Unlock()
		return err
	}
	start := len(c.pend)
	c.pend = p.Append(c.pend, c.v)
	if qos > 0 || w != nil {
		h, _ := codec.ParseHeader(c.pend[start:], 0)
		c.marks = append(c.marks, mark{off: start, idOff: h.Len + 2 + len(topic), kind: markPub0 + qos, w: w})
		if qos > 0 {
			c.outstanding.Add(1)
		}
	}
	wake := c.queuedLocked(len(c.pend) - start)
	c.mu.Unlock()
	if wake {
		c.l.schedule(c)
	}
	return nil
}

// fits reports whether n more bytes may be queued. A caller that finds the
// queue full is owed an OnWritable: want is set before the second look so
// that a loop emptying the queue in between either sees it or is seen.
func (c *Conn) fits(n int) bool {
	limit := int64(c.o.MaxQueued)
	q := c.pendBytes.Load() + c.outBytes.Load()
	if q == 0 || q+int64(n) <= limit {
		return true // an empty queue takes any one message
	}
	c.want.Store(true)
	q = c.pendBytes.Load() + c.outBytes.Load()
	return q == 0 || q+int64(n) <= limit
}

// refusing is the error for new work once Disconnect or Close was asked or
// the connection has gone. c.mu must be held.
func (c *Conn) refusing() error {
	switch {
	case c.closed:
		return c.err
	case c.disconnect || c.closeAsked:
		return ErrClosed
	}
	return nil
}

// queuedLocked accounts n bytes just appended to pend and reports whether
// the caller must schedule the connection (after releasing c.mu).
func (c *Conn) queuedLocked(n int) bool {
	c.pendBytes.Add(int64(n))
	if c.scheduled {
		return false
	}
	c.scheduled = true
	return true
}

// enqueue queues an encoded SUBSCRIBE or UNSUBSCRIBE whose identifier
// follows its fixed header.
func (c *Conn) enqueue(pkt []byte, kind uint8, w *waiter) error {
	h, _ := codec.ParseHeader(pkt, 0)
	c.mu.Lock()
	if err := c.refusing(); err != nil {
		c.mu.Unlock()
		return err
	}
	start := len(c.pend)
	c.pend = append(c.pend, pkt...)
	c.marks = append(c.marks, mark{off: start, idOff: h.Len, kind: kind, w: w})
	wake := c.queuedLocked(len(pkt))
	c.mu.Unlock()
	if wake {
		c.l.schedule(c)
	}
	return nil
}

// CanPublish reports whether a Publish at qos would be accepted and sent
// without waiting: the queue is under half of Options.MaxQueued and, for
// QoS 1 and 2, an in-flight slot is free. When it returns false,
// Options.OnWritable is called once it would return true (and possibly at
// other times: treat the call as a hint to look again). Safe for
// concurrent use, also from callbacks.
func (c *Conn) CanPublish(qos byte) bool {
	c.want.Store(true)
	return c.pendBytes.Load()+c.outBytes.Load() < int64(c.o.MaxQueued/2) &&
		(qos == 0 || c.outstanding.Load() < c.window.Load())
}

// writable is CanPublish's condition for QoS 1 and 2, the stricter one.
func (c *Conn) writable() bool {
	return c.pendBytes.Load()+c.outBytes.Load() < int64(c.o.MaxQueued/2) &&
		c.outstanding.Load() < c.window.Load()
}

// Outstanding is the number of QoS 1 and 2 publications queued or in
// flight: published but not yet acknowledged. Safe for concurrent use.
func (c *Conn) Outstanding() int { return int(c.outstanding.Load()) }

// Window is the in-flight window in effect: Options.MaxInflight, lowered
// to the broker's Receive Maximum in MQTT 5. Safe for concurrent use.
func (c *Conn) Window() int { return int(c.window.Load()) }

// SessionPresent is the CONNACK's Session Present flag. Safe for
// concurrent use.
func (c *Conn) SessionPresent() bool { return c.sessPresent }

// Done is closed once the connection has gone and OnClose has returned.
// Safe for concurrent use.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err is why the connection closed (nil while open, or after Disconnect
// or Close). Safe for concurrent use.
func (c *Conn) Err() error {
	select {
	case <-c.done:
		return c.closeErr
	default:
		return nil
	}
}

// Subscribe subscribes to filter at qos and waits for the SUBACK, or ctx's
// end. It returns the granted QoS, or a *ReasonError carrying the failure
// code. Safe for concurrent use, but not from callbacks.
func (c *Conn) Subscribe(ctx context.Context, filter string, qos byte) (byte, error) {
	if qos > 2 {
		return 0, errors.New("client: QoS above 2")
	}
	s := codec.Subscribe{Filters: []codec.Subscription{{Filter: []byte(filter), QoS: qos}}}
	w := newWaiter()
	if err := c.enqueue(s.Append(nil, c.v), markSub, w); err != nil {
		return 0, err
	}
	r, err := w.wait(ctx)
	if err != nil {
		return 0, err
	}
	return byte(r.code), r.err
}

// Unsubscribe removes the subscription to filter and waits for the
// UNSUBACK, or ctx's end. An MQTT 5 failure code is a *ReasonError.
// Safe for concurrent use, but not from callbacks.
func (c *Conn) Unsubscribe(ctx context.Context, filter string) error {
	u := codec.Unsubscribe{Filters: [][]byte{[]byte(filter)}}
	w := newWaiter()
	if err := c.enqueue(u.Append(nil, c.v), markUnsub, w); err != nil {
		return err
	}
	r, err := w.wait(ctx)
	if err != nil {
		return err
	}
	return r.err
}

// Disconnect sends what is queued (except messages still waiting for an
// in-flight slot, which fail), then DISCONNECT, closes the connection once
// the socket has taken it all, and waits until it has closed. Publications
// not yet acknowledged fail with ErrClosed. It returns
// ErrDisconnectTimeout if the socket did not drain within 10 s. Safe for
// concurrent use and to call more than once, but not from callbacks.
func (c *Conn) Disconnect() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	wake := false
	if !c.disconnect {
		c.disconnect = true
		wake = c.queuedLocked(0)
	}
	c.mu.Unlock()
	if wake {
		c.l.schedule(c)
	}
	<-c.done
	if errors.Is(c.closeErr, ErrDisconnectTimeout) {
		return ErrDisconnectTimeout
	}
	return nil
}

// Close closes the connection at once, without DISCONNECT (so the broker
// publishes the will). It does not wait: OnClose follows on the loop, and
// Done is closed after it. Safe for concurrent use, also from callbacks.
func (c *Conn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closeAsked = true
	c.mu.Unlock()
	return c.gc.Close()
}
