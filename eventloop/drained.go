package eventloop

import "time"

// Drainer is an optional interface of a Handler, for output made at the
// pace the client reads it rather than all at once (the broker's retained
// messages on SUBSCRIBE). OnDrained runs on c's loop, before the loop's
// OnWake or OnTick, once c's Backlog has fallen to the level given to
// Conn.NotifyDrained; what it writes is flushed with the rest of that
// event.
type Drainer interface {
	OnDrained(c *Conn)
}

// drainWatch is one NotifyDrained request.
type drainWatch struct {
	c     *Conn
	below int
}

// gnet tells its handler nothing when a socket it had to buffer for
// becomes writable and drains (it writes the rest itself on EPOLLOUT), so
// the loop finds out by looking: after every flush, and — while some
// connection still waits on a kernel that took no more — on a timer. The
// timer starts at drainPollMin and doubles, up to drainPollMax, while
// nobody drains: a client that stopped reading costs its loop 20 wake-ups
// a second, and one that reads resumes within a millisecond of the kernel
// taking its buffered output, while the bytes already in the kernel's
// socket buffer keep the connection busy.
const (
	drainPollMin = time.Millisecond
	drainPollMax = 50 * time.Millisecond
)

// NotifyDrained asks for one Drainer.OnDrained call on c once its Backlog
// is at most below. If it is already, the call comes after the current
// event's output is flushed, in a wake-up of its own, so that a producer
// feeding c chunk by chunk lets the loop's other connections in between.
// Each call asks for one notification; a connection that closes is
// forgotten without one. Nothing happens if the Handler is not a Drainer.
func (c *Conn) NotifyDrained(below int) {
	l := c.loop
	if l.engine.drainer == nil || c.closing || c.closed {
		return
	}
	l.watch = append(l.watch, drainWatch{c: c, below: below})
}

// checkDrained runs after every flush while connections wait for their
// output to drain: one that has is served by a wake-up at once; otherwise
// the poll timer is armed.
func (l *Loop) checkDrained() {
	keep := l.watch[:0]
	ready := false
	for _, w := range l.watch {
		if w.c.closing || w.c.closed {
			continue
		}
		ready = ready || w.c.Backlog() <= w.below
		keep = append(keep, w)
	}
	clear(l.watch[len(keep):])
	l.watch = keep
	switch {
	case ready:
		l.drainPoll = drainPollMin
		l.Wake()
	case len(keep) > 0 && !l.drainArmed.Load():
		l.drainArmed.Store(true)
		l.drainTimer.Reset(l.drainPoll)
		l.drainPoll = min(2*l.drainPoll, drainPollMax)
	}
}

// serveDrained calls OnDrained for the watched connections whose output
// has drained. It runs at the start of every wake-up and tick.
func (l *Loop) serveDrained() {
	if len(l.watch) == 0 {
		return
	}
	// OnDrained may ask again (NotifyDrained appends to l.watch): the
	// ready ones move to a list of their own first.
	ready := l.watchReady[:0]
	keep := l.watch[:0]
	for _, w := range l.watch {
		switch {
		case w.c.closing || w.c.closed:
		case w.c.Backlog() <= w.below:
			ready = append(ready, w)
		default:
			keep = append(keep, w)
		}
	}
	clear(l.watch[len(keep):])
	l.watch = keep
	if len(ready) > 0 {
		l.drainPoll = drainPollMin
	}
	for i, w := range ready {
		ready[i] = drainWatch{}
		l.engine.drainer.OnDrained(w.c)
	}
	l.watchReady = ready[:0]
}

// drainFired is the poll timer's function, on the timer's goroutine.
func (l *Loop) drainFired() {
	l.drainArmed.Store(false)
	l.Wake()
}
