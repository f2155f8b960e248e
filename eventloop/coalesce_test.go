package eventloop_test

import (
	"bytes"
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

// TestCoalesceBound: a lone delivery goes out at once; the next, pushed
// less than the window after the first went out, waits, and goes out at
// most the window after it; an answer written meanwhile (Write) takes
// what waits with it, at once, in order.
func TestCoalesceBound(t *testing.T) {
	p, e, r := startPusher(t, window)
	nc, a := dial(t, e, r)
	p.conn = r.connOf(a)

	start := time.Now()
	p.push(ack1)
	if got := readN(t, nc, len(ack1)); !bytes.Equal(got, ack1) {
		t.Fatalf("read % x; want % x", got, ack1)
	}
	first := time.Now()
	if d := first.Sub(start); d >= window/2 {
		t.Fatalf("a lone delivery took %v; want it at once (window %v)", d, window)
	}

	p.push(ack2)
	if got := readN(t, nc, len(ack2)); !bytes.Equal(got, ack2) {
		t.Fatalf("read % x; want % x", got, ack2)
	}
	// Held until the window after the first write — or up to a quarter
	// earlier, when another flush of the loop (a tick) passes by then.
	held := time.Since(first)
	if held < window/2 {
		t.Errorf("the second delivery came %v after the first; want it held about %v", held, window)
	}
	// The bound, with a second's slack for a loaded machine.
	if held > window+time.Second {
		t.Errorf("the second delivery came %v after the first; the window is %v", held, window)
	}

	// Held (the last write was just now), then an answer: both at once.
	p.push(ack1)
	p.do(func(c *eventloop.Conn) { c.Write(pingresp) })
	start = time.Now()
	want := append(append([]byte{}, ack1...), pingresp...)
	if got := readN(t, nc, len(want)); !bytes.Equal(got, want) {
		t.Fatalf("read % x; want the held delivery, then the answer: % x", got, want)
	}
	if d := time.Since(start); d >= window/2 {
		t.Errorf("held output and an answer took %v; want them at once", d)
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
	p.push(ack2) // held
	p.do(func(c *eventloop.Conn) { c.Close() })
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
