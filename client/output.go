package client

import (
	"encoding/binary"
	"fmt"

	"github.com/shoalmq/shoal/codec"
)

// Everything in this file runs on the connection's loop.

// drain moves what other goroutines queued into the loop-owned held
// buffer and writes as much of it as may go.
func (c *Conn) drain() {
	c.mu.Lock()
	c.scheduled = false
	disc := c.disconnect
	if len(c.pend) > 0 {
		if len(c.held) == 0 {
			// Swap buffers: no copy in the common case.
			c.held, c.pend = c.pend, c.held[:0]
			c.heldMarks, c.marks = c.marks, c.heldMarks[:0]
		} else {
			base := len(c.held)
			c.held = append(c.held, c.pend...)
			for _, m := range c.marks {
				m.off += base
				c.heldMarks = append(c.heldMarks, m)
			}
			clear(c.marks)
			c.pend, c.marks = c.pend[:0], c.marks[:0]
		}
	}
	c.mu.Unlock()
	if disc && c.discState == discNone {
		c.discState = discDraining
		c.discTick = c.l.tick
	}
	c.flush(nil)
}

// flush writes acks (the acknowledgements a read produced, possibly none)
// and as much held output as the window and the socket allow, with one
// write; it keeps a connection whose socket is backed up on the stall
// list.
func (c *Conn) flush(acks []byte) {
	n, mi := c.sendable()
	if len(acks) > 0 || n > 0 {
		c.write(acks, c.held[:n])
		if c.gone {
			return
		}
		c.consume(n, mi)
	}
	if c.discState == discDraining {
		c.sendDisconnect()
		if c.gone {
			return
		}
	}
	ob := c.gc.OutboundBuffered()
	c.outBytes.Store(int64(ob))
	switch {
	case ob > 0:
		c.l.stall(c)
	case c.discState == discSent:
		// Everything, DISCONNECT included, is in the kernel, which sends
		// it before the FIN [MQTT-3.14.4-1].
		c.discState = discClosing
		_ = c.gc.Close()
	}
}

// sendable returns how many held bytes may be written now, and how many
// marks they cover, assigning packet identifiers as it goes. Output stops
// at a QoS 1/2 PUBLISH that finds the window full [MQTT-4.9.0-2], and
// entirely while gnet holds half of MaxQueued for the socket (unless a
// Disconnect is flushing).
func (c *Conn) sendable() (n, mi int) {
	if len(c.held) == 0 {
		return 0, 0
	}
	if c.discState == discNone && c.gc.OutboundBuffered() >= c.o.MaxQueued/2 {
		return 0, 0
	}
	for ; mi < len(c.heldMarks); mi++ {
		m := &c.heldMarks[mi]
		switch m.kind {
		case markPub1, markPub2:
			if c.inflightPubs >= c.winMax {
				return m.off, mi
			}
			c.inflightPubs++
			c.assignID(m)
		case markSub, markUnsub:
			c.assignID(m)
		}
	}
	return len(c.held), mi
}

// assignID gives the packet at m a free identifier [MQTT-2.2.1-3] and
// enters it in the in-flight table.
func (c *Conn) assignID(m *mark) {
	if c.inflight == nil {
		c.inflight = make(map[uint16]flight)
	}
	for {
		c.nextID++
		if c.nextID == 0 {
			c.nextID = 1
		}
		if _, used := c.inflight[c.nextID]; !used {
			break
		}
	}
	binary.BigEndian.PutUint16(c.held[m.off+m.idOff:], c.nextID)
	c.inflight[c.nextID] = flight{kind: m.kind, w: m.w}
}

// consume drops the first n written bytes and mi marks from held,
// completing QoS 0 waiters.
func (c *Conn) consume(n, mi int) {
	for i := range mi {
		if m := &c.heldMarks[i]; m.kind == markPub0 {
			m.w.complete(codec.Success, nil)
		}
	}
	rest := copy(c.heldMarks, c.heldMarks[mi:])
	clear(c.heldMarks[rest:])
	c.heldMarks = c.heldMarks[:rest]
	for i := range c.heldMarks {
		c.heldMarks[i].off -= n
	}
	c.held = c.held[:copy(c.held, c.held[n:])]
	c.pendBytes.Add(-int64(n))
}

// write sends a then b with one system call where possible. gnet keeps
// what the socket does not take, and closes the connection (calling
// onClose, so c.gone must be checked after) on a write error.
func (c *Conn) write(a, b []byte) {
	switch {
	case len(b) == 0:
		_, _ = c.gc.Write(a)
	case len(a) == 0:
		_, _ = c.gc.Write(b)
	default:
		l := c.l
		l.iov[0], l.iov[1] = a, b
		_, _ = c.gc.Writev(l.iov[:])
		l.iov = [2][]byte{}
	}
	c.lastSent = c.l.tick
}

// sendDisconnect ends a Disconnect's draining: messages still waiting for
// an in-flight slot are dropped and fail, and DISCONNECT is written.
func (c *Conn) sendDisconnect() {
	for i := range c.heldMarks {
		m := &c.heldMarks[i]
		if m.kind == markPub1 || m.kind == markPub2 {
			c.outstanding.Add(-1)
		}
		m.w.complete(0, ErrClosed)
	}
	clear(c.heldMarks)
	c.heldMarks = c.heldMarks[:0]
	c.pendBytes.Add(-int64(len(c.held)))
	c.held = c.held[:0]
	c.discState = discSent
	c.discTick = c.l.tick
	d := codec.Disconnect{Code: codec.Success}
	l := c.l
	l.out = d.Append(l.out[:0], c.v)
	c.write(l.out, nil)
}

// notifyWritable calls OnWritable if someone waits for it and the
// connection can take more.
func (c *Conn) notifyWritable() {
	if c.o.OnWritable != nil && c.want.Load() && c.writable() && c.want.CompareAndSwap(true, false) {
		c.o.OnWritable()
	}
}

// onTick runs once a second: keep-alive [MQTT-3.1.2-23] and the bound on
// Disconnect.
func (c *Conn) onTick(t uint32) {
	if c.gone || !c.connected {
		return // Connect's context bounds the wait for CONNACK
	}
	if c.discState != discNone {
		if t-c.discTick >= disconnectWait && c.discState != discClosing {
			c.cause = ErrDisconnectTimeout
			c.discState = discClosing
			_ = c.gc.Close()
		}
		return
	}
	ka := uint32(c.keepAlive)
	if ka == 0 {
		return
	}
	if c.pingOut {
		// Strictly more than a period: the ping went out somewhere within
		// tick pingSent, so this allows between one and two periods.
		if t-c.pingSent > ka {
			c.cause = ErrKeepAlive
			_ = c.gc.Close()
		}
		return
	}
	// Ping a second early: the tick is coarse, and the broker allows one
	// and a half keep-alive periods [MQTT-3.1.2-24].
	if t-c.lastSent+1 >= ka {
		l := c.l
		l.out = codec.AppendPing(l.out[:0], codec.PINGREQ)
		c.write(l.out, nil)
		c.pingOut, c.pingSent = true, t
	}
}

// onClose runs once when gnet has closed the connection: every waiter
// fails, Connect or OnClose learns the cause, and Done is closed.
func (c *Conn) onClose(err error) {
	c.gone = true
	c.l.remove(c)
	c.mu.Lock()
	asked := c.disconnect || c.closeAsked
	cause := c.cause
	switch {
	case cause != nil:
	case asked:
	case c.e.closing.Load():
		cause = ErrEngineClosed
	case err != nil:
		cause = fmt.Errorf("client: connection lost: %w", err)
	default:
		cause = ErrClosed
	}
	werr := closedError(cause)
	c.closed, c.err = true, werr
	marks := c.marks
	c.pend, c.marks = nil, nil
	c.mu.Unlock()

	for i := range marks {
		marks[i].w.complete(0, werr)
	}
	for i := range c.heldMarks {
		c.heldMarks[i].w.complete(0, werr)
	}
	for _, f := range c.inflight {
		f.w.complete(0, werr)
	}
	c.held, c.heldMarks, c.inflight, c.qos2in = nil, nil, nil, nil
	c.pendBytes.Store(0)
	c.outBytes.Store(0)
	c.closeErr = cause
	if !c.connected {
		if cause == nil {
			cause = ErrClosed
		}
		c.connack <- cause
	} else if c.o.OnClose != nil {
		c.o.OnClose(cause)
	}
	close(c.done)
}
