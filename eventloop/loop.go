package eventloop

import (
	"context"
	"net"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"
	"github.com/valyala/bytebufferpool"
	"golang.org/x/sys/unix"
)

// Loop is one event loop. Its methods, except Wake and Index, must be
// called on the loop's own goroutine.
type Loop struct {
	idx    int
	el     gnet.EventLoop
	engine *Engine

	conns    []*Conn // every open connection, for ticks and shutdown
	dirty    []*Conn // connections with output to write
	draining []*Conn // closing connections: output still being sent, or lingering (see Conn.Close)
	paused   []*Conn // connections whose handler asked to pause reading

	// walk is Each's copy of conns: a callback may close connections, and
	// OnClose takes them out of conns (swap-remove) under the walk. walking
	// says Each is running, so a nested Each takes its own copy.
	walk    []*Conn
	walking bool

	// inEvent is set while the loop handles one of its events (a read
	// burst, a wake-up, a tick, an OnEach): a connection that ends then
	// waits in ending, with its error, for Handler.OnClose until the
	// event is over (endEvent), so OnClose never runs inside Handler code.
	inEvent bool
	ending  []*Conn
	endErrs []error

	// flushing is set while the Flusher runs: a connection it closes
	// (Conn.Close) does not run it again.
	flushing bool

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

	// Output held back to go out with what follows (coalesce.go): held
	// lists the connections (an entry counts while its Conn.held is set),
	// heldUntil is the earliest time one must go (Unix ns; 0: none); a
	// wake-up is pending while any is held. source is the connection
	// whose read burst the loop is handling: its output is never held.
	held      []*Conn
	heldUntil int64
	source    *Conn
	gate      wakeGate // whether read bursts' holds have paid for their wake-ups

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

// Len is the number of open connections on l.
func (l *Loop) Len() int { return len(l.conns) }

// Each calls fn for every connection open on l when Each begins, once,
// in no particular order. fn may close connections — its own or others of
// l, at once (a write to a reset connection closes it inside the write)
// or later: a connection that has closed by its turn is skipped. Nested
// calls are allowed. Call it on l's goroutine, within one of its events
// (a Handler callback, or an OnEach function).
func (l *Loop) Each(fn func(c *Conn)) {
	var walk []*Conn
	nested := l.walking
	if !nested {
		walk = l.walk[:0]
		l.walking = true
	}
	walk = append(walk, l.conns...)
	for _, c := range walk {
		if !c.closed {
			fn(c)
		}
	}
	clear(walk) // the scratch copy must not keep closed connections alive
	if !nested {
		l.walk = walk[:0]
		l.walking = false
	}
}

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
	l.inEvent = true
	defer l.endEvent()
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
		l.inEvent = true
		defer l.endEvent()
		l.resume()
		l.serveDrained()
		l.engine.handler.OnTick(l, now)
		l.flush(false)
		l.reap(now)
		return nil
	})
}

// endLater holds c's OnClose, with err, until the end of the event.
func (l *Loop) endLater(c *Conn, err error) {
	l.ending = append(l.ending, c)
	l.endErrs = append(l.endErrs, err)
}

// endEvent closes the event: the connections that ended during it get
// OnClose — whose own closes are settled in the same pass — and what those
// wrote is flushed.
func (l *Loop) endEvent() {
	for len(l.ending) > 0 {
		for i := 0; i < len(l.ending); i++ { // OnClose may append
			l.ending[i].finish(l.endErrs[i])
			l.ending[i], l.endErrs[i] = nil, nil
		}
		l.ending, l.endErrs = l.ending[:0], l.endErrs[:0]
		l.flush(false)
	}
	l.inEvent = false
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

// reap moves closing connections on: one whose output has gone out
// starts to linger (Conn.Close), one whose drain grace or linger is over
// is closed.
func (l *Loop) reap(now time.Time) {
	keep := l.draining[:0]
	for _, c := range l.draining {
		switch {
		case c.closed:
			continue
		case now.UnixNano() > c.drainUntil:
			_ = c.gc.Close()
			continue
		case !c.shut && c.gc.OutboundBuffered() == 0:
			if !c.shutWrite(now) {
				continue
			}
		}
		keep = append(keep, c)
	}
	clear(l.draining[len(keep):])
	l.draining = keep
}

// flush writes each dirty connection's buffered output with one write and
// returns the buffers to the pool, after the Flusher has run — unless it
// holds the output back (mayHold: after a read burst), which then waits
// for the wake-up it asks for. Output that may wait (coalesce.go) is held
// instead while the loop has more work on its way; held output goes with
// the first flush that finds none, or once its time has come.
func (l *Loop) flush(mayHold bool) {
	if l.beforeFlush(mayHold) {
		l.Wake()
		return
	}
	var out, now int64
	if l.engine.cfg.Coalesce > 0 && (len(l.dirty) > 0 || len(l.held) > 0) {
		now = time.Now().UnixNano()
	}
	for i, c := range l.dirty {
		l.dirty[i] = nil
		c.dirty = false
		if c.out == nil {
			continue
		}
		if c.held {
			l.gate.joined()
		}
		if !c.closed {
			if until, ok := l.mayHold(c, now, mayHold); ok {
				l.hold(c, until)
				continue
			}
		}
		out += l.write(c, now)
	}
	l.dirty = l.dirty[:0]
	if len(l.held) > 0 && (!l.wakePending.Load() || now >= l.heldUntil) {
		out += l.flushHeld(now)
	}
	if out > 0 {
		l.bytesOut.Add(out)
	}
	if len(l.watch) > 0 {
		l.checkDrained()
	}
}

// beforeFlush runs the Flusher, if any, and reports whether it holds the
// output back.
func (l *Loop) beforeFlush(mayHold bool) (hold bool) {
	f := l.engine.flusher
	if f == nil || l.flushing {
		return false
	}
	l.flushing = true
	hold = f.BeforeFlush(l, mayHold)
	l.flushing = false
	return hold
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

	// remote is the peer's address, kept from OnOpen: gnet forgets it
	// when it releases the connection, which may come before OnClose
	// (Engine.OnClose) while other goroutines may still ask.
	remote net.Addr

	// drainUntil is when a closing connection is cut, Unix ns: the end of
	// its drain grace while output is pending, then of its linger. See
	// Loop.reap. (An int64, not a time.Time: 16 bytes less per idle
	// connection, which pays for remote.)
	drainUntil int64

	idx int32 // position in loop.conns
	// lastOut is when output last went to the kernel (micros of the Unix
	// time), for coalescing; in the struct's padding, like the flags.
	lastOut  uint32
	dirty    bool
	urgent   bool // pending output was written with Buffer: it goes at the next flush
	held     bool // in loop.held: pending output waits (coalesce.go)
	paused   bool // in loop.paused
	closing  bool // closing: input is discarded, writes are dropped
	shut     bool // closing, all output sent, write side shut down: lingering
	finished bool // Handler.OnClose has run: c has left loop.conns
	closed   bool // gone: gnet has closed it
}

// Loop returns the connection's loop. Safe for concurrent use.
func (c *Conn) Loop() *Loop { return c.loop }

// RemoteAddr is the peer's address: for a connection from Engine.Enroll,
// the client's address on its transport. Safe for concurrent use.
func (c *Conn) RemoteAddr() net.Addr {
	if c.en != nil {
		return c.en.origin.Remote
	}
	return c.remote
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
// (codec Append functions), marking the connection for the next flush:
// what it holds then goes out at the end of the loop's current event,
// never held back (compare PushBuffer). Once the connection is closing it
// returns a scratch buffer whose contents are dropped.
func (c *Conn) Buffer() *bytebufferpool.ByteBuffer {
	b := c.PushBuffer()
	if b != &c.loop.sink {
		c.urgent = true
	}
	return b
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

// Close closes the connection once what was written to it has been sent,
// gracefully: so that the client can read the last packet (a DISCONNECT
// or CONNACK with its reason code) even while it is still sending.
//
// Closing a socket whose receive queue holds unread bytes makes the kernel
// answer with a reset, and a reset makes the client's kernel throw away
// what the client has not read yet — the very packet that says why. So
// once the output has gone to the kernel (at once, or when gnet's buffer
// drains, checked each tick, but at most Config.DrainGrace later) the
// write side is shut down (the client reads its last packet, then end of
// stream) and the connection lingers, discarding input, until the client
// closes its side or Config.Linger passes.
//
// From now on input is discarded and writes are dropped. Handler.OnClose
// gets a nil error whatever ends the connection after Close. Safe to call
// more than once.
func (c *Conn) Close() {
	if c.closed || c.closing {
		return
	}
	now := time.Now()
	if c.out != nil {
		c.loop.beforeFlush(false)
		if c.closed || c.closing { // the Flusher closed it (Discard)
			return
		}
		// Held or not, it goes now; a failed write closes c at once.
		c.loop.bytesOut.Add(c.loop.write(c, now.UnixNano()))
		if c.closed {
			return
		}
	}
	c.closing = true
	if c.gc.OutboundBuffered() > 0 {
		c.drainUntil = now.Add(c.loop.engine.cfg.DrainGrace).UnixNano()
		c.loop.draining = append(c.loop.draining, c)
		return
	}
	if c.shutWrite(now) {
		c.loop.draining = append(c.loop.draining, c)
	}
}

// shutWrite shuts down the write side of a closing connection whose output
// has all gone to the kernel, and starts its linger: it reports true.
// Without a linger, or when the socket refuses, it closes the connection
// instead and reports false.
func (c *Conn) shutWrite(now time.Time) bool {
	linger := c.loop.engine.cfg.Linger
	if linger > 0 {
		if err := unix.Shutdown(c.gc.Fd(), unix.SHUT_WR); err == nil {
			c.shut = true
			c.loop.engine.lingering.Add(1)
			c.drainUntil = now.Add(linger).UnixNano()
			c.loop.endLater(c, nil) // Close runs inside Handler code
			return true
		}
	}
	_ = c.gc.Close() // asynchronous: OnClose follows on this loop
	return false
}

// Closing reports whether the connection is closing or closed.
// Handler.OnClose sees it true.
func (c *Conn) Closing() bool { return c.closing || c.closed }

// Discard drops the connection's pending output unsent: what it says
// must not reach the client after all (a Flusher's commit did not hold).
// What is written after it goes as usual. For a Flusher, which may then
// write a last packet and Close the connection.
func (c *Conn) Discard() {
	c.urgent, c.held = false, false // a held entry no longer counts
	c.dropOut()
}

func (c *Conn) dropOut() {
	if c.out != nil {
		outPool.Put(c.out)
		c.out = nil
	}
}
