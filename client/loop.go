package client

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/shoalmq/shoal/codec"
)

// stallRecheck is how often a connection whose socket is full is looked at
// again. gnet drains its output buffer on EPOLLOUT but tells its user
// nothing, so a full connection is polled; at 1 ms a loopback socket's
// buffer (MiBs) still refills far faster than a broker empties it.
const stallRecheck = time.Millisecond

// loop is the client's state for one gnet event loop. Fields below mu are
// guarded by it; the rest belong to the loop's goroutine.
type loop struct {
	e  *Engine
	el gnet.EventLoop

	mu    sync.Mutex
	ready []*Conn // connections with queued output; Conn.scheduled set

	wakePending atomic.Bool
	wakeFn      gnet.Runnable
	tickFn      gnet.Runnable
	stallArmed  atomic.Bool
	stallTimer  *time.Timer

	// Loop-owned.
	readySpare []*Conn
	conns      []*Conn // open connections, for keep-alive
	tickConns  []*Conn // runTick's copy of conns: a tick may close some, and onClose swap-removes
	stalled    []*Conn // connections with output the socket did not take
	stallSpare []*Conn
	tick       uint32 // seconds since the engine started, give or take

	// Scratch reused for every frame, so decoding allocates nothing.
	pub     codec.Publish
	ack     codec.Ack
	suback  codec.Suback
	connack codec.Connack
	disc    codec.Disconnect
	msg     Message
	out     []byte    // acknowledgements for the connection being read
	iov     [2][]byte // for Writev of out and queued output together
}

func newLoop(e *Engine, el gnet.EventLoop) *loop {
	l := &loop{e: e, el: el}
	l.wakeFn = gnet.RunnableFunc(l.runWake)
	l.tickFn = gnet.RunnableFunc(l.runTick)
	l.stallTimer = time.AfterFunc(time.Hour, func() {
		l.stallArmed.Store(false)
		l.wake()
	})
	l.stallTimer.Stop()
	return l
}

// schedule puts c on the ready list and wakes the loop. The caller has
// set c.scheduled under c.mu (and released it), so c is listed once.
// Safe for concurrent use.
func (l *loop) schedule(c *Conn) {
	l.mu.Lock()
	l.ready = append(l.ready, c)
	l.mu.Unlock()
	l.wake()
}

// wake runs runWake on the loop; calls made while one is pending collapse
// into it. Safe for concurrent use.
func (l *loop) wake() {
	if l.wakePending.CompareAndSwap(false, true) {
		if err := l.el.Execute(context.Background(), l.wakeFn); err != nil {
			l.wakePending.Store(false) // engine shutting down; onClose fails the waiters
		}
	}
}

func (l *loop) runWake(context.Context) error {
	// Clear first: work queued while this runs wakes the loop again.
	l.wakePending.Store(false)
	l.mu.Lock()
	rd := l.ready
	l.ready = l.readySpare[:0]
	l.mu.Unlock()
	for i, c := range rd {
		rd[i] = nil
		if !c.gone {
			c.drain()
		}
		if !c.gone {
			c.notifyWritable()
		}
	}
	l.readySpare = rd[:0]

	st := l.stalled
	l.stalled = l.stallSpare[:0]
	for i, c := range st {
		st[i] = nil
		c.stalled = false
		if c.gone {
			continue
		}
		c.flush(nil)
		if !c.gone {
			c.notifyWritable()
		}
	}
	l.stallSpare = st[:0]
	return nil
}

// stall remembers that c has output the socket did not take, to be looked
// at again in stallRecheck.
func (l *loop) stall(c *Conn) {
	if c.stalled {
		return
	}
	c.stalled = true
	l.stalled = append(l.stalled, c)
	if !l.stallArmed.Swap(true) {
		l.stallTimer.Reset(stallRecheck)
	}
}

// runTick sends PINGREQs, closes connections whose PINGRESP is overdue
// and those whose Disconnect has waited long enough.
func (l *loop) runTick(context.Context) error {
	l.tick++
	walk := append(l.tickConns[:0], l.conns...)
	for _, c := range walk {
		c.onTick(l.tick) // skips a connection already gone
	}
	clear(walk)
	l.tickConns = walk[:0]
	return nil
}

// remove takes c off the loop's list of connections.
func (l *loop) remove(c *Conn) {
	last := len(l.conns) - 1
	if c.idx > last || l.conns[c.idx] != c {
		return
	}
	l.conns[c.idx] = l.conns[last]
	l.conns[c.idx].idx = c.idx
	l.conns[last] = nil
	l.conns = l.conns[:last]
}
