package eventloop

import (
	"context"
	"net"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"
	"github.com/valyala/bytebufferpool"
)

// Loop is one event loop. Its methods, except Wake and Index, must be
// called on the loop's own goroutine.
type Loop struct {
	idx    int
	el     gnet.EventLoop
	engine *Engine

	conns []*Conn // every open connection, for ticks and shutdown
	dirty []*Conn // connections with output to write

	wakePending atomic.Bool
	wakeFn      gnet.Runnable
}

// Index is the loop's number, stable for its life. Safe for concurrent use.
func (l *Loop) Index() int { return l.idx }

// Conns returns the loop's open connections. The slice is the loop's own.
func (l *Loop) Conns() []*Conn { return l.conns }

// Wake schedules Handler.OnWake on the loop. Calls made while a wake-up is
// pending collapse into it, so a burst of work from router workers costs one
// loop task. Safe for concurrent use.
func (l *Loop) Wake() {
	if l.wakePending.CompareAndSwap(false, true) {
		if err := l.el.Execute(context.Background(), l.wakeFn); err != nil {
			l.wakePending.Store(false) // engine shutting down
		}
	}
}

func (l *Loop) runWake(context.Context) error {
	// Clear first: work posted while OnWake runs wakes the loop again.
	l.wakePending.Store(false)
	l.engine.handler.OnWake(l)
	l.flush()
	return nil
}

func (l *Loop) tickFn() gnet.Runnable {
	return gnet.RunnableFunc(func(context.Context) error {
		l.engine.handler.OnTick(l, time.Now())
		l.flush()
		return nil
	})
}

// flush writes each dirty connection's buffered output with one write and
// returns the buffers to the pool.
func (l *Loop) flush() {
	for i, c := range l.dirty {
		l.dirty[i] = nil
		c.dirty = false
		if c.out == nil {
			continue
		}
		if !c.closed {
			_, _ = c.gc.Write(c.out.B)
		}
		c.dropOut()
	}
	l.dirty = l.dirty[:0]
}

// outPool calibrates itself to the sizes written per flush.
var outPool bytebufferpool.Pool

// Conn is one client connection. Its methods must be called on its loop's
// goroutine unless they say otherwise.
type Conn struct {
	gc   gnet.Conn
	loop *Loop
	out  *bytebufferpool.ByteBuffer // nil when nothing is pending

	// Data is the Handler's per-connection state.
	Data any

	idx     int32 // position in loop.conns
	dirty   bool
	closing bool // close after the current read burst
	closed  bool // gone; writes are dropped
}

// Loop returns the connection's loop. Safe for concurrent use.
func (c *Conn) Loop() *Loop { return c.loop }

// RemoteAddr is the peer's address.
func (c *Conn) RemoteAddr() net.Addr { return c.gc.RemoteAddr() }

// Write queues p for sending at the end of this loop iteration. It never
// fails; after the connection is gone, writes are dropped.
func (c *Conn) Write(p []byte) {
	if c.closed {
		return
	}
	c.Buffer()
	c.out.B = append(c.out.B, p...)
}

// Buffer returns the connection's output buffer to append to directly
// (codec Append functions), marking the connection for the next flush.
func (c *Conn) Buffer() *bytebufferpool.ByteBuffer {
	if c.out == nil {
		c.out = outPool.Get()
	}
	if !c.dirty {
		c.dirty = true
		c.loop.dirty = append(c.loop.dirty, c)
	}
	return c.out
}

// Backlog is the number of bytes written but not yet accepted by the
// kernel: the connection's slowness, for the slow-consumer policy.
func (c *Conn) Backlog() int {
	n := c.gc.OutboundBuffered()
	if c.out != nil {
		n += len(c.out.B)
	}
	return n
}

// Close closes the connection after pending output has been written.
// Safe to call more than once.
func (c *Conn) Close() {
	if c.closed || c.closing {
		return
	}
	c.closing = true
	if c.out != nil {
		_, _ = c.gc.Write(c.out.B)
		c.dropOut()
	}
	_ = c.gc.Close() // asynchronous: OnClose follows on this loop
}

// Closing reports whether the connection is closing or closed.
func (c *Conn) Closing() bool { return c.closing || c.closed }

func (c *Conn) dropOut() {
	if c.out != nil {
		outPool.Put(c.out)
		c.out = nil
	}
}
