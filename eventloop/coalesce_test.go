package eventloop_test

import (
	"bytes"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/shoalmq/shoal/codec"
	"github.com/shoalmq/shoal/eventloop"
)

// Tests of output coalescing (Config.Coalesce, Conn.PushBuffer). The
// window is long, a second, so that "at once" and "held" are told apart
// however loaded the machine: at once means well under half of it.
const window = time.Second

var (
	ack1 = codec.AppendAck(nil, codec.PUBACK, 1, codec.Success, codec.V311)
	ack2 = codec.AppendAck(nil, codec.PUBACK, 2, codec.Success, codec.V311)
)

// pusher runs functions on a connection's loop, through Wake, as a router
// posting deliveries does.
type pusher struct {
	mu   sync.Mutex
	todo []func()
	conn *eventloop.Conn
}

func (p *pusher) onWake(*eventloop.Loop) {
	p.mu.Lock()
	todo := p.todo
	p.todo = nil
	p.mu.Unlock()
	for _, f := range todo {
		f()
	}
}

// do runs f on the connection's loop.
func (p *pusher) do(f func(c *eventloop.Conn)) {
	p.mu.Lock()
	p.todo = append(p.todo, func() { f(p.conn) })
	p.mu.Unlock()
	p.conn.Loop().Wake()
}

// push writes b to the connection as a delivery.
func (p *pusher) push(b []byte) {
	p.do(func(c *eventloop.Conn) {
		out := c.PushBuffer()
		out.B = append(out.B, b...)
	})
}

func startPusher(t *testing.T, coalesce time.Duration) (*pusher, *engine, *recorder) {
	t.Helper()
	r := newRecorder()
	p := &pusher{}
	r.onWake = p.onWake
	e := startConfig(t, r, func(c *eventloop.Config) { c.Coalesce = coalesce })
	return p, e, r
}

// TestCoalesceIdleLoop: a delivery pushed right after the connection's
// previous write, when the loop has nothing else on its way, goes out at
// once: coalescing waits for work the loop already has, never for a
// timer. (A fixed hold of the window after each write failed this.)
func TestCoalesceIdleLoop(t *testing.T) {
	p, e, r := startPusher(t, window)
	nc, a := dial(t, e, r)
	p.conn = r.connOf(a)
	for i, b := range [][]byte{ack1, ack2, ack1} {
		start := time.Now()
		p.push(b)
		if got := readN(t, nc, len(b)); !bytes.Equal(got, b) {
			t.Fatalf("delivery %d: read % x; want % x", i, got, b)
		}
		if d := time.Since(start); d >= window/2 {
			t.Fatalf("delivery %d, the loop idle, took %v; want it at once (window %v)", i, d, window)
		}
	}
}

// TestCoalesceWhilePending: a delivery pushed while more work for the
// loop is already posted waits for it, and both go out in one write,
// at once, when the loop has nothing more to do.
func TestCoalesceWhilePending(t *testing.T) {
	p, e, r := startPusher(t, window)
	nc, a := dial(t, e, r)
	p.conn = r.connOf(a)
	p.push(ack1) // the connection's previous write
	readN(t, nc, len(ack1))

	// Bytes the loop had handed to the kernel after pushing ack2, and
	// when the work posted meanwhile ran.
	out := make(chan int64, 2)
	start := time.Now()
	p.do(func(c *eventloop.Conn) {
		b := c.PushBuffer()
		b.B = append(b.B, ack2...)
		p.do(func(c *eventloop.Conn) { // posted: the loop is woken again
			held := c.Loop().BytesOut()
			b := c.PushBuffer()
			b.B = append(b.B, ack1...)
			out <- held
		})
		out <- c.Loop().BytesOut()
	})
	before, during := <-out, <-out
	if during != before {
		t.Errorf("%d bytes went out while more work was posted; want ack2 held", during-before)
	}
	want := append(append([]byte{}, ack2...), ack1...)
	if got := readN(t, nc, len(want)); !bytes.Equal(got, want) {
		t.Fatalf("read % x; want both deliveries in order: % x", got, want)
	}
	if d := time.Since(start); d >= window/2 {
		t.Errorf("held deliveries took %v; want them once the loop was idle", d)
	}

	// Held, then an answer: both at once, in order.
	p.do(func(c *eventloop.Conn) {
		b := c.PushBuffer()
		b.B = append(b.B, ack2...)
		p.do(func(c *eventloop.Conn) { c.Write(pingresp) })
	})
	want = append(append([]byte{}, ack2...), pingresp...)
	if got := readN(t, nc, len(want)); !bytes.Equal(got, want) {
		t.Fatalf("read % x; want the held delivery, then the answer: % x", got, want)
	}
}

// TestCoalesceReadBurst: a delivery that one connection's read burst
// produces for another waits for the rest of the poll — the loop wakes
// itself, and the wake-up finds it still held — then goes out at once,
// not a window later.
func TestCoalesceReadBurst(t *testing.T) {
	r := newRecorder()
	p := &pusher{}
	// BytesOut at each wake-up after the burst, on the loop.
	woke := make(chan int64, 16)
	burst := make(chan int64, 1)
	armed := false // loop goroutine only, once the burst ran
	r.onWake = func(l *eventloop.Loop) {
		if armed {
			select {
			case woke <- l.BytesOut():
			default:
			}
		}
		p.onWake(l)
	}
	e := startConfig(t, r, func(c *eventloop.Config) { c.Coalesce = window; c.Loops = 1 })
	sub, sa := dial(t, e, r)
	p.conn = r.connOf(sa)
	pub, _ := dial(t, e, r)
	p.push(ack1) // the subscriber's previous write
	readN(t, sub, len(ack1))

	installed := make(chan struct{})
	p.do(func(*eventloop.Conn) { // on the loop, which reads it
		r.onFrame = func(c *eventloop.Conn, h codec.Header, _ []byte) error {
			if h.Type == codec.PINGREQ && c != p.conn {
				b := p.conn.PushBuffer()
				b.B = append(b.B, ack2...)
				armed = true
				burst <- c.Loop().BytesOut()
			}
			return nil
		}
		close(installed)
	})
	<-installed
	start := time.Now()
	send(t, pub, pingreq)
	if got := readN(t, sub, len(ack2)); !bytes.Equal(got, ack2) {
		t.Fatalf("read % x; want % x", got, ack2)
	}
	if d := time.Since(start); d >= window/2 {
		t.Errorf("a delivery from another connection's read burst took %v; want it at the end of the poll", d)
	}
	before := <-burst
	select {
	case at := <-woke:
		if at != before {
			t.Errorf("%d bytes went out before the loop's wake-up after the burst; want the delivery held until it", at-before)
		}
	case <-time.After(wait):
		t.Fatal("the loop did not wake itself after a read burst that held output")
	}
}

// TestCoalesceBound: held output goes out Coalesce after the connection's
// previous write at the latest, even while the loop is never idle.
func TestCoalesceBound(t *testing.T) {
	const bound = 100 * time.Millisecond
	p, e, r := startPusher(t, bound)
	nc, a := dial(t, e, r)
	p.conn = r.connOf(a)
	p.push(ack1)
	readN(t, nc, len(ack1))

	// Keep the loop busy: each wake-up posts another until the test ends.
	var spin func(c *eventloop.Conn)
	stop := make(chan struct{})
	spin = func(c *eventloop.Conn) {
		select {
		case <-stop:
		default:
			p.do(spin)
		}
	}
	defer close(stop)
	start := time.Now()
	p.do(func(c *eventloop.Conn) {
		b := c.PushBuffer()
		b.B = append(b.B, ack2...)
		p.do(spin)
	})
	if got := readN(t, nc, len(ack2)); !bytes.Equal(got, ack2) {
		t.Fatalf("read % x; want % x", got, ack2)
	}
	d := time.Since(start)
	if d < bound/2 {
		t.Errorf("held output came after %v with the loop busy; want it held about %v", d, bound)
	}
	// With a second's slack for a loaded machine.
	if d > bound+time.Second {
		t.Errorf("held output came after %v; the bound is %v", d, bound)
	}
}

// TestCoalesceOwnBurst: what a connection's own read burst produces for it
// is never held, even when written with PushBuffer right after its
// previous write: a client waiting for it is not slowed down.
func TestCoalesceOwnBurst(t *testing.T) {
	_, e, r := startPusher(t, window)
	r.onFrame = func(c *eventloop.Conn, h codec.Header, _ []byte) error {
		if h.Type == codec.PINGREQ {
			out := c.PushBuffer()
			out.B = append(out.B, pingresp...)
		}
		return nil
	}
	nc, _ := dial(t, e, r)
	for i := range 3 {
		start := time.Now()
		send(t, nc, pingreq)
		readN(t, nc, len(pingresp))
		if d := time.Since(start); d >= window/2 {
			t.Fatalf("answer %d to its own PINGREQ took %v; want it at once", i, d)
		}
	}
}

// TestCoalesceOff: with Coalesce 0, deliveries go out at once however
// close together.
func TestCoalesceOff(t *testing.T) {
	p, e, r := startPusher(t, 0)
	nc, a := dial(t, e, r)
	p.conn = r.connOf(a)
	for i := range 3 {
		start := time.Now()
		p.push(ack1)
		readN(t, nc, len(ack1))
		if d := time.Since(start); d >= window/2 {
			t.Fatalf("delivery %d took %v with coalescing off", i, d)
		}
	}
}

// TestCoalesceClose: Close sends held output first, at once, then closes
// gracefully.
func TestCoalesceClose(t *testing.T) {
	p, e, r := startPusher(t, window)
	nc, a := dial(t, e, r)
	p.conn = r.connOf(a)
	p.push(ack1)
	readN(t, nc, len(ack1))
	p.do(func(c *eventloop.Conn) {
		b := c.PushBuffer()
		b.B = append(b.B, ack2...)
		p.do(func(c *eventloop.Conn) { c.Close() }) // pending: ack2 is held
	})
	start := time.Now()
	if got := readUntilEOF(t, nc); !bytes.Equal(got, ack2) {
		t.Fatalf("read % x before the close; want the held % x", got, ack2)
	}
	if d := time.Since(start); d >= window/2 {
		t.Errorf("held output and the close took %v; want them at once", d)
	}
}

// connOf returns the connection opened for client address a.
func (r *recorder) connOf(a string) *eventloop.Conn {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.conns[a]
}

// startGated starts one loop with coalescing on, a subscriber connection
// that has just been written to, and the pusher on it.
func startGated(t *testing.T) (p *pusher, e *engine, r *recorder, sub *net.TCPConn) {
	t.Helper()
	r = newRecorder()
	p = &pusher{}
	r.onWake = p.onWake
	e = startConfig(t, r, func(c *eventloop.Config) { c.Coalesce = window; c.Loops = 1 })
	sub, sa := dial(t, e, r)
	p.conn = r.connOf(sa)
	p.push(ack1) // the subscriber's previous write
	readN(t, sub, len(ack1))
	return p, e, r, sub
}

// onPing makes every PINGREQ from a connection other than the
// subscriber's push ack2 to the subscriber as a delivery.
func onPing(p *pusher, r *recorder) {
	installed := make(chan struct{})
	p.do(func(*eventloop.Conn) { // on the loop, which reads onFrame
		r.onFrame = func(c *eventloop.Conn, h codec.Header, _ []byte) error {
			if h.Type == codec.PINGREQ && c != p.conn {
				b := p.conn.PushBuffer()
				b.B = append(b.B, ack2...)
			}
			return nil
		}
		close(installed)
	})
	<-installed
}

func (r *recorder) wakeCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.wakes
}

// TestCoalesceGateLone: when each read burst's delivery to a client is
// alone in its poll, so that the wake-up that holding it asks for
// gathers nothing more, the loop stops asking for it after a window,
// and the deliveries still go at once. Without the gate each such
// delivery cost a wake-up (make bench's shared fan-in: 22% more CPU per
// delivery than coalesce: 0s).
func TestCoalesceGateLone(t *testing.T) {
	p, e, r, sub := startGated(t)
	onPing(p, r)
	pub, _ := dial(t, e, r)
	const n = 300
	before := r.wakeCount()
	for i := range n {
		start := time.Now()
		send(t, pub, pingreq)
		if got := readN(t, sub, len(ack2)); !bytes.Equal(got, ack2) {
			t.Fatalf("delivery %d: read % x; want % x", i, got, ack2)
		}
		if d := time.Since(start); d >= window/2 {
			t.Fatalf("delivery %d took %v; want it at once", i, d)
		}
	}
	if w := r.wakeCount() - before; w > n/2 {
		t.Errorf("%d lone deliveries cost %d wake-ups; want the loop to stop waking itself for them after a window", n, w)
	}
}

// TestCoalesceGateJoins: while the wake-ups that read bursts ask for do
// gather more (two publishers' messages to one client in one poll, one
// write), the loop keeps asking for them.
func TestCoalesceGateJoins(t *testing.T) {
	p, e, r, sub := startGated(t)
	onPing(p, r)
	pubA, _ := dial(t, e, r)
	pubB, _ := dial(t, e, r)
	const n = 200
	before := r.wakeCount()
	for range n {
		// Hold the loop in a wake-up while both messages arrive, so that
		// its next poll reads both.
		blocked, release := make(chan struct{}), make(chan struct{})
		p.do(func(*eventloop.Conn) {
			close(blocked)
			<-release
		})
		<-blocked
		send(t, pubA, pingreq)
		send(t, pubB, pingreq)
		time.Sleep(time.Millisecond)
		close(release)
		want := append(append([]byte{}, ack2...), ack2...)
		if got := readN(t, sub, len(want)); !bytes.Equal(got, want) {
			t.Fatalf("read % x; want % x", got, want)
		}
	}
	// Each round: the test's wake-up, and the one the first burst asked for.
	// Had the gate closed, after its first window of 64, there would be 64.
	if self := r.wakeCount() - before - n; self < n*3/4 {
		t.Errorf("%d rounds of two deliveries in one poll asked for %d wake-ups; want about one each: they paid", n, self)
	}
}
