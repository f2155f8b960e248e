package eventloop_test

import (
	"bytes"
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/shoalmq/shoal/eventloop"
)

// Tests of what a Loop does besides reading: wake-ups, ticks, OnEach and
// shutdown. The recorder and helpers are in eventloop_test.go.

// TestWake: Wake from any goroutine runs OnWake on the loop, and wake-ups
// made while one is pending collapse into it.
func TestWake(t *testing.T) {
	r := newRecorder()
	// What OnWake does next, set by the test; mu guards it because OnWake
	// runs on the loop.
	var next struct {
		mu      sync.Mutex
		gate    chan struct{} // if set, OnWake blocks on it once...
		entered chan struct{} // ...after closing this
		reply   string        // if set, OnWake writes a PINGRESP to this connection once...
		replied chan struct{} // ...and closes this
	}
	r.onWake = func(l *eventloop.Loop) {
		next.mu.Lock()
		gate, entered, reply, replied := next.gate, next.entered, next.reply, next.replied
		next.gate, next.entered, next.reply, next.replied = nil, nil, "", nil
		next.mu.Unlock()
		if gate != nil {
			close(entered)
			select { // blocking a loop is for this test only
			case <-gate:
			case <-time.After(wait):
			}
		}
		if reply != "" {
			l.Each(func(c *eventloop.Conn) {
				if addr(c) == reply {
					c.Write(pingresp)
				}
			})
			close(replied)
		}
	}
	e := start(t, r)
	nc, a := dial(t, e, r)
	r.mu.Lock()
	l := r.conns[a].Loop()
	r.mu.Unlock()

	// barrier returns once every task queued on the loops before it has
	// run: OnEach goes through the same FIFO queue as Wake.
	barrier := func() {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		if err := e.OnEach(ctx, func(*eventloop.Conn) {}); err != nil {
			t.Fatalf("OnEach: %v", err)
		}
	}
	wakes := func() int {
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.wakes
	}
	burst := func(n int) {
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				l.Wake()
			}()
		}
		close(start)
		wg.Wait()
	}

	t.Run("free-running burst", func(t *testing.T) {
		before := wakes()
		burst(1000)
		barrier()
		n := wakes() - before
		t.Logf("1000 concurrent Wake calls: %d OnWake", n)
		if n < 1 || n >= 1000 {
			t.Fatalf("1000 concurrent Wake calls ran OnWake %d times, want at least 1 and fewer than 1000", n)
		}
	})

	t.Run("burst while a wake-up is running", func(t *testing.T) {
		// With OnWake held, the first Wake of the burst schedules one
		// more wake-up and the other 999 collapse into it: exactly one
		// more OnWake, whatever the timing.
		gate, entered := make(chan struct{}), make(chan struct{})
		next.mu.Lock()
		next.gate, next.entered = gate, entered
		next.mu.Unlock()
		before := wakes()
		l.Wake()
		select {
		case <-entered:
		case <-time.After(wait):
			t.Fatal("OnWake did not run")
		}
		burst(1000)
		close(gate)
		barrier()
		if n := wakes() - before; n != 2 {
			t.Fatalf("one Wake, then 1000 during its OnWake: OnWake ran %d times, want 2", n)
		}
	})

	t.Run("OnWake writes are flushed", func(t *testing.T) {
		replied := make(chan struct{})
		next.mu.Lock()
		next.reply, next.replied = a, replied
		next.mu.Unlock()
		l.Wake()
		select {
		case <-replied:
		case <-time.After(wait):
			t.Fatal("OnWake did not run")
		}
		if got := readN(t, nc, len(pingresp)); !bytes.Equal(got, pingresp) {
			t.Fatalf("client read % x, want the PINGRESP OnWake wrote", got)
		}
	})
}

// TestTick: every loop with connections gets OnTick, and a connection
// closed from OnTick gets what OnTick wrote to it first, then EOF.
func TestTick(t *testing.T) {
	r := newRecorder()
	var closeMu sync.Mutex
	closeOnTick := map[string]bool{} // guarded by closeMu
	r.onTick = func(l *eventloop.Loop, _ time.Time) {
		closeMu.Lock()
		defer closeMu.Unlock()
		l.Each(func(c *eventloop.Conn) {
			if closeOnTick[addr(c)] {
				delete(closeOnTick, addr(c))
				c.Write([]byte("bye"))
				c.Close()
				c.Close() // safe to call more than once
			}
		})
	}
	e := start(t, r)
	nc1, a1 := dial(t, e, r)
	nc2, a2 := dial(t, e, r)
	r.mu.Lock()
	loops := map[int]bool{r.conns[a1].Loop().Index(): true, r.conns[a2].Loop().Index(): true}
	r.mu.Unlock()
	// Two connections usually land on two loops (gnet hashes the client
	// address), but the test holds for any spread.
	t.Logf("connections on loops %v", loops)

	t.Run("every loop with connections ticks", func(t *testing.T) {
		r.waitFor(t, "three ticks on each loop", func() bool {
			for i := range loops {
				if len(r.ticks[i]) < 3 {
					return false
				}
			}
			return true
		})
		r.mu.Lock()
		defer r.mu.Unlock()
		for i := range loops {
			ts := r.ticks[i]
			for j := 1; j < len(ts); j++ {
				if ts[j].Before(ts[j-1]) {
					t.Errorf("loop %d: tick %d at %v is before tick %d at %v", i, j, ts[j], j-1, ts[j-1])
				}
			}
			// Ticks come from a 50 ms ticker: three take at least one
			// period, however late they run.
			if span := ts[2].Sub(ts[0]); span < 50*time.Millisecond {
				t.Errorf("loop %d: three ticks within %v, want at least one 50 ms period", i, span)
			}
		}
	})

	t.Run("Close from OnTick", func(t *testing.T) {
		closeMu.Lock()
		closeOnTick[a1] = true
		closeMu.Unlock()
		if got := readUntilEOF(t, nc1); string(got) != "bye" {
			t.Fatalf("client read %q before EOF, want %q", got, "bye")
		}
		r.waitFor(t, "OnClose", func() bool { return r.closes[a1] == 1 })
		r.mu.Lock()
		err := r.closeE[a1]
		r.mu.Unlock()
		if err != nil {
			t.Errorf("OnClose error %v, want nil for Conn.Close", err)
		}
		// The other connection is untouched.
		send(t, nc2, pingreq)
		r.waitFor(t, "a frame on the other connection", func() bool { return len(r.frames[a2]) == 1 })
		expectOpen(t, nc2, 120*time.Millisecond) // more than two ticks
	})
}

// TestOnEach: OnEach visits every open connection once, on its loop, and
// flushes what fn wrote.
func TestOnEach(t *testing.T) {
	r := newRecorder()
	e := start(t, r)
	clients := map[string]*net.TCPConn{}
	for range 5 {
		nc, a := dial(t, e, r)
		clients[a] = nc
	}
	// One connection gone before OnEach: it must not be visited.
	var gone string
	for a, nc := range clients {
		gone = a
		_ = nc.Close()
		delete(clients, a)
		break
	}
	r.waitFor(t, "OnClose of the closed client", func() bool { return r.closes[gone] == 1 })

	var mu sync.Mutex
	visits := map[string]int{}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	err := e.OnEach(ctx, func(c *eventloop.Conn) {
		mu.Lock()
		visits[addr(c)]++
		mu.Unlock()
		var mine bool // on c's loop: may walk its connections
		c.Loop().Each(func(o *eventloop.Conn) { mine = mine || o == c })
		if !mine {
			t.Errorf("%s: not among its loop's connections", addr(c))
		}
		c.Write(pingresp)
	})
	if err != nil {
		t.Fatalf("OnEach: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(visits) != len(clients) {
		t.Errorf("OnEach visited %d connections, want %d: %v", len(visits), len(clients), visits)
	}
	for a, nc := range clients {
		if visits[a] != 1 {
			t.Errorf("%s visited %d times, want once", a, visits[a])
		}
		if got := readN(t, nc, len(pingresp)); !bytes.Equal(got, pingresp) {
			t.Errorf("%s read % x, want the PINGRESP fn wrote", a, got)
		}
	}
	if visits[gone] != 0 {
		t.Errorf("OnEach visited the closed connection %s", gone)
	}
}

// TestStop: Stop closes every connection, each getting OnClose, and
// returns with the listener closed.
func TestStop(t *testing.T) {
	r := newRecorder()
	e := start(t, r)
	clients := map[string]*net.TCPConn{}
	for range 4 {
		nc, a := dial(t, e, r)
		clients[a] = nc
	}
	addr := e.Addr().String()

	done := make(chan error, 1)
	go func() { done <- e.stop() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Stop: %v", err)
		}
	case <-time.After(2 * wait):
		t.Fatal("Stop did not return")
	}

	r.mu.Lock()
	for a := range clients {
		if r.closes[a] != 1 {
			t.Errorf("%s: %d OnClose calls by the time Stop returned, want 1", a, r.closes[a])
		}
	}
	r.mu.Unlock()
	for a, nc := range clients {
		if got := readUntilEOF(t, nc); len(got) != 0 {
			t.Errorf("%s read % x before EOF", a, got)
		}
	}
	if nc, err := net.DialTimeout("tcp", addr, wait); err == nil {
		_ = nc.Close()
		t.Error("dial succeeded after Stop: the listener is still open")
	}
}

// TestStopTwice: Engine documents Stop as safe for concurrent use, so a
// second Stop — from a signal handler racing a deferred shutdown, say —
// must return rather than panic.
func TestStopTwice(t *testing.T) {
	r := newRecorder()
	e := start(t, r)
	if err := e.stop(); err != nil {
		t.Fatalf("first Stop: %v", err)
	}
	defer func() {
		if p := recover(); p != nil {
			t.Fatalf("second Stop panicked: %v", p)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	_ = e.Engine.Stop(ctx) // an error is fine; a panic is not
}
