package bridge

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shoalmq/shoal/codec"
)

// conn is one MQTT connection of a bridge, to the local broker or to the
// remote one: the bridge is the client. Two goroutines serve it: a reader
// that hands each packet to the link's loop, and a writer that sends what
// the loop queued. The loop never waits on the network: write only
// appends to a buffer.
type conn struct {
	nc   net.Conn
	v    byte  // protocol level
	side *side // which end of the link

	mu     sync.Mutex
	buf    []byte // queued output
	closed bool
	wake   chan struct{} // cap 1: the writer has work

	pending   atomic.Int64 // bytes queued and not yet written
	lastWrite atomic.Int64 // Unix ns of the last write handed to the socket
	writerEnd chan struct{}
}

// connack is what the bridge keeps of a CONNACK.
type connack struct {
	present    bool
	receiveMax int    // 0: none announced
	maxPacket  uint32 // 0: none announced
	maxQoS     byte
	noRetain   bool
}

// refusedError is a CONNACK that refused the bridge.
type refusedError struct {
	code codec.ReasonCode
	v3   byte // the 3.x return code, 0 for MQTT 5
}

func (e *refusedError) Error() string {
	if e.v3 != 0 {
		return fmt.Sprintf("bridge: CONNACK refused the connection: return code %d", e.v3)
	}
	return fmt.Sprintf("bridge: CONNACK refused the connection: %v", e.code)
}

// handshake sends CONNECT on nc and reads the CONNACK, within timeout. It
// returns the decoder too: a broker may send queued messages right after
// CONNACK, in the same read, and the reader goes on from there.
func handshake(nc net.Conn, p *codec.Connect, timeout time.Duration) (connack, *codec.Decoder, error) {
	var ca connack
	_ = nc.SetDeadline(time.Now().Add(timeout))
	defer func() { _ = nc.SetDeadline(time.Time{}) }()
	if _, err := nc.Write(p.Append(nil)); err != nil {
		return ca, nil, err
	}
	var d codec.Decoder
	buf := make([]byte, 4096)
	for {
		h, body, ok, err := d.Next()
		if err != nil {
			return ca, nil, err
		}
		if ok {
			if h.Type != codec.CONNACK {
				return ca, nil, fmt.Errorf("bridge: %v before CONNACK", h.Type) // [MQTT-3.2.0-1]
			}
			var a codec.Connack
			if err := a.Decode(body, p.Version); err != nil {
				return ca, nil, fmt.Errorf("bridge: CONNACK: %w", err)
			}
			if a.Code != 0 {
				e := &refusedError{code: a.Code}
				if p.Version < codec.V5 {
					e.v3 = byte(a.Code)
				}
				return ca, nil, e
			}
			ca.present = a.SessionPresent
			ca.maxQoS = 2
			if p.Version == codec.V5 {
				if a.Props.Has(codec.PropReceiveMaximum) {
					ca.receiveMax = int(a.Props.ReceiveMaximum)
				}
				if a.Props.Has(codec.PropMaximumPacketSize) {
					ca.maxPacket = a.Props.MaximumPacketSize
				}
				if a.Props.Has(codec.PropMaximumQoS) {
					ca.maxQoS = a.Props.MaximumQoS
				}
				ca.noRetain = a.Props.Has(codec.PropRetainAvailable) && a.Props.RetainAvailable == 0
			}
			return ca, &d, nil
		}
		n, err := nc.Read(buf)
		if n > 0 {
			_, _ = d.Write(buf[:n])
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return ca, nil, errors.New("bridge: connection closed before CONNACK")
			}
			return ca, nil, err
		}
	}
}

// start runs the reader and the writer. Each packet the reader gets goes
// to deliver (its body copied); when the connection ends, gone gets the
// cause. d holds bytes already read past CONNACK, or is nil.
func (c *conn) start(d *codec.Decoder, deliver func(packet), gone func(error)) {
	c.wake = make(chan struct{}, 1)
	c.writerEnd = make(chan struct{})
	c.lastWrite.Store(time.Now().UnixNano())
	go c.writer()
	go func() {
		err := c.read(d, deliver)
		c.close()
		<-c.writerEnd
		gone(err)
	}()
}

// packet is one inbound MQTT packet; body is the loop's own copy.
type packet struct {
	c     *conn
	typ   codec.Type
	flags byte
	body  []byte
}

func (c *conn) read(d *codec.Decoder, deliver func(packet)) error {
	if d == nil {
		d = &codec.Decoder{}
	}
	buf := make([]byte, 32<<10)
	for {
		for {
			h, body, ok, err := d.Next()
			if err != nil {
				return err
			}
			if !ok {
				break
			}
			deliver(packet{c: c, typ: h.Type, flags: h.Flags, body: append([]byte(nil), body...)})
		}
		n, err := c.nc.Read(buf)
		if n > 0 {
			_, _ = d.Write(buf[:n])
		}
		if err != nil {
			return err
		}
	}
}

// write queues b (copied) for the writer. Safe for concurrent use; a
// closed connection drops it.
func (c *conn) write(b []byte) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.buf = append(c.buf, b...)
	c.pending.Add(int64(len(b)))
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *conn) writer() {
	defer close(c.writerEnd)
	var out []byte
	for range c.wake {
		c.mu.Lock()
		out, c.buf = c.buf, out[:0]
		closed := c.closed
		c.mu.Unlock()
		if len(out) > 0 {
			if _, err := c.nc.Write(out); err != nil {
				_ = c.nc.Close()
			}
			c.pending.Add(-int64(len(out)))
			c.lastWrite.Store(time.Now().UnixNano())
		}
		if closed {
			return
		}
	}
}

// flushClose sends what is queued, then closes: for DISCONNECT.
func (c *conn) flushClose() {
	c.mu.Lock()
	already := c.closed
	c.closed = true
	c.mu.Unlock()
	if already {
		return
	}
	select {
	case c.wake <- struct{}{}:
	default:
	}
	select {
	case <-c.writerEnd:
	case <-time.After(2 * time.Second):
	}
	_ = c.nc.Close()
}

// close closes at once; queued output is dropped.
func (c *conn) close() {
	c.mu.Lock()
	already := c.closed
	c.closed = true
	c.mu.Unlock()
	_ = c.nc.Close()
	if !already {
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
}
