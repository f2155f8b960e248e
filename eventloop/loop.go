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

	conns    []*Conn // every open connection, for ticks and shutdown
	dirty    []*Conn // connections with output to write
	draining []*Conn // closing connections whose output is still being sent
	paused   []*Conn // connections whose handler asked to pause reading

	// sink takes writes to connections that are closing: they are dropped,
	// so nothing follows a final DISCONNECT.
	sink bytebufferpool.ByteBuffer

	wakePending atomic.Bool
	wakeFn      gnet.Runnable
	hasPaused   atomic.Bool // mirrors len(paused) > 0 for other goroutines

	// Connections waiting for their output to drain (drained.go): watch
	// is checked after every flush, watchReady is serveDrained's scratch.
	// drainTimer polls while some wait on the kernel, every drainPoll;
	// drainArmed says it is set (it is cleared on the timer's goroutine).
	watch      []drainWatch
	watchReady []drainWatch
	drainTimer *time.Timer
	drainPoll  time.Duration
	drainArmed atomic.Bool

	// Counters, bumped once per event by the loop and read by anyone:
	// bytes of complete frames read, bytes handed to the kernel, events
	// (read bursts, wake-ups, ticks).
	bytesIn, bytesOut, events atomic.Int64

	// now is the loop's clock, Unix ns, read once per read burst, wake-up
	// and tick: reading the time per packet cost 9% of CPU under a QoS 1
	// flood (make profile SCENARIO=p2p-qos1).
	now int64
}

// BytesIn is how many bytes of complete frames the loop has read. Safe for
// concurrent use.
func (l *Loop) BytesIn() int64 { return l.bytesIn.Load() }

// BytesOut is how many bytes the loop has handed to the kernel. Safe for
// concurrent use.
func (l *Loop) BytesOut() int64 { return l.bytesOut.Load() }

// Events is how many events the loop has handled: read bursts, wake-ups
// and ticks. Safe for concurrent use.
func (l *Loop) Events() int64 { return l.events.Load() }

// Now is the loop's clock (Unix ns) as of the start of the current event:
// precise enough for keep-alive and expiry, and free to read.
func (l *Loop) Now() int64 { return l.now }

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
	l.events.Add(1)
	l.now = time.Now().UnixNano()
	l.resume()
	l.serveDrained()
	l.engine.handler.OnWake(l)
	l.flush(false)
	return nil
}

// HasPaused reports whether connections on l wait for room (see
// ErrPause). The party that makes room calls Wake on such loops. Safe for
// concurrent use.
func (l *Loop) HasPaused() bool { return l.hasPaused.Load() }

func (l *Loop) tickFn() gnet.Runnable {
	return gnet.RunnableFunc(func(context.Context) error {
		now := time.Now()
		l.now = now.UnixNano()
		l.events.Add(1)
		l.resume()
		l.serveDrained()
		l.engine.handler.OnTick(l, now)
		l.flush(false)
		l.reap(now)
		return nil
	})
}

// pause records that c's handler could not take its next frame.
func (l *Loop) pause(c *Conn) {
	if !c.paused {
		c.paused = true
		l.paused = append(l.paused, c)
		l.hasPaused.Store(true)
	}
}

// resume offers paused connections their frames again: gnet's Wake runs
// OnTraffic for each, which starts at the frame that was refused. A
// connection whose unread input outgrew MaxPausedInput is closed instead.
// It runs on every wake-up and tick.
func (l *Loop) resume() {
	if len(l.paused) == 0 {
		return
	}
	l.hasPaused.Store(false)
	for i, c := range l.paused {
		l.paused[i] = nil
		c.paused = false
		switch {
		case c.closed || c.closing:
		case c.gc.InboundBuffered() > MaxPausedInput:
			l.engine.handler.OnFrameError(c, ErrInputBacklog)
			c.Close()
		default:
			_ = c.gc.Wake(nil)
		}
	}
	l.paused = l.paused[:0]
}

// reap closes draining connections whose output has gone out, or whose
// grace period is over.
func (l *Loop) reap(now time.Time) {
	keep := l.draining[:0]
	for _, c := range l.draining {
		switch {
		case c.closed:
		case c.gc.OutboundBuffered() == 0 || now.After(c.drainUntil):
			_ = c.gc.Close()
		default:
			keep = append(keep, c)
			continue
		}
	}
	clear(l.draining[len(keep):])
	l.draining = keep
}

// flush writes each dirty connection's buffered output with one write and
// returns the buffers to the pool, after the Flusher has run — unless it
// holds the output back (mayHold: after a read burst), which then waits
// for the wake-up it asks for.
func (l *Loop) flush(mayHold bool) {
	if f := l.engine.flusher; f != nil && f.BeforeFlush(l, mayHold) {
		l.Wake()
		return
	}
	var out int64
	for i, c := range l.dirty {
		l.dirty[i] = nil
		c.dirty = false
		if c.out == nil {
			continue
		}
		if !c.closed && len(c.out.B) > 0 { // a Buffer taken and left empty costs no system call
			n := len(c.out.B)
			// A write the kernel refuses (the peer reset) makes gnet
			// close c at once, OnClose and its dropOut included.
			_, _ = c.gc.Write(c.out.B)
			out += int64(n)
		}
		c.dropOut()
	}
	l.dirty = l.dirty[:0]
	if out > 0 {
		l.bytesOut.Add(out)
	}
	if len(l.watch) > 0 {
		l.checkDrained()
	}
}

// outPool calibrates itself to the sizes written per flush.
var outPool bytebufferpool.Pool

// Conn is one client connection. Its methods must be called on its loop's
// goroutine unless they say otherwise.
type Conn struct {
	gc   gnet.Conn
	loop *Loop
	out  *bytebufferpool.ByteBuffer // nil when nothing is pending

	// en is set before OnOpen for a connection from Engine.Enroll, then
	// fixed; nil for plain TCP. One pointer, not two: every idle
	// connection carries it.
	en *enrolled

	// Data is the Handler's per-connection state.
	Data any

	drainUntil time.Time // set while draining; see Loop.reap

	idx     int32 // position in loop.conns
	dirty   bool
	paused  bool // in loop.paused
	closing bool // closing: input is discarded, writes are dropped
	closed  bool // gone
}

// Loop returns the connection's loop. Safe for concurrent use.
func (c *Conn) Loop() *Loop { return c.loop }

// RemoteAddr is the peer's address: for a connection from Engine.Enroll,
// the client's address on its transport. Safe for concurrent use.
func (c *Conn) RemoteAddr() net.Addr {
	if c.en != nil {
		return c.en.origin.Remote
	}
	return c.gc.RemoteAddr()
}

// Origin says which transport the connection came through; nil for a
// plain TCP connection. Safe for concurrent use: it never changes.
func (c *Conn) Origin() *Origin {
	if c.en == nil {
		return nil
	}
	return c.en.origin
}

// Write queues p for sending at the end of this loop iteration. It never
// fails; once the connection is closing, writes are dropped.
func (c *Conn) Write(p []byte) {
	buf := c.Buffer()
	buf.B = append(buf.B, p...)
}

// Buffer returns the connection's output buffer to append to directly
// (codec Append functions), marking the connection for the next flush.
// Once the connection is closing it returns a scratch buffer whose
// contents are dropped.
func (c *Conn) Buffer() *bytebufferpool.ByteBuffer {
	if c.closing || c.closed {
		c.loop.sink.B = c.loop.sink.B[:0]
		return &c.loop.sink
	}
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

// Close closes the connection once what was written to it has been sent:
// at once if the kernel took it all, otherwise when gnet's buffer drains
// (checked each tick) or after Config.DrainGrace. From now on input is discarded
// and writes are dropped. Safe to call more than once.
func (c *Conn) Close() {
	if c.closed || c.closing {
		return
	}
	if c.out != nil {
		if f := c.loop.engine.flusher; f != nil {
			f.BeforeFlush(c.loop, false)
		}
		n := len(c.out.B)
		_, _ = c.gc.Write(c.out.B) // a failed write closes c at once (see flush)
		c.loop.bytesOut.Add(int64(n))
		c.dropOut()
		if c.closed {
			return
		}
	}
	c.closing = true
	if c.gc.OutboundBuffered() > 0 {
		c.drainUntil = time.Now().Add(c.loop.engine.cfg.DrainGrace)
		c.loop.draining = append(c.loop.draining, c)
		return
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
