package eventloop_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/shoalmq/shoal/codec"
	"github.com/shoalmq/shoal/eventloop"
)

// TestDrainGraceHolds: a closing connection whose client neither reads its
// output nor stops sending is cut after Config.DrainGrace. Input arriving
// while it drains must not restart the grace period (it once did, so such
// a client kept its connection, and its will, alive for ever).
func TestDrainGraceHolds(t *testing.T) {
	r := newRecorder()
	big := bytes.Repeat([]byte("x"), 16<<20) // more than loopback buffers take at once
	r.onFrame = func(c *eventloop.Conn, _ codec.Header, _ []byte) error {
		c.Write(big)
		c.Close()
		return nil
	}
	e := startOneLoop(t, r, func(c *eventloop.Config) { c.Tick, c.DrainGrace = 50*time.Millisecond, 300*time.Millisecond })
	nc, a := dial(t, e, r)
	start := time.Now()
	send(t, nc, pingreq)
	// Keep sending, never read: every byte is a read event on a draining
	// connection.
	for time.Since(start) < 2*time.Second {
		r.mu.Lock()
		closed := r.closes[a] == 1
		r.mu.Unlock()
		if closed {
			if d := time.Since(start); d < 250*time.Millisecond {
				t.Fatalf("closed after %v, before the drain grace", d)
			}
			return
		}
		_ = nc.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
		_, _ = nc.Write(pingreq)
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("connection still open 2 s after its 300 ms drain grace while the client kept sending")
}

// TestCloseWhileClientWrites: a connection closed with a last packet while
// its client is still sending must let the client read that packet and an
// orderly end of stream. Closing a socket with unread input makes the
// kernel send a reset instead: the client's writes fail with a broken pipe
// or a reset, and a client that gives up on a failed write (as MQTT clients
// do) never reads why it was cut off (issue: DISCONNECT 0x93 lost).
func TestCloseWhileClientWrites(t *testing.T) {
	r := newRecorder()
	bye := codec.Disconnect{Code: codec.ReceiveMaximumExceeded}
	last := bye.Append(nil, codec.V5)
	r.onFrame = func(c *eventloop.Conn, h codec.Header, _ []byte) error {
		r.mu.Lock()
		n := len(r.frames[addr(c)])
		r.mu.Unlock()
		if n == 50 { // well into the stream
			c.Write(last)
			c.Close()
		}
		return nil
	}
	e := start(t, r)
	nc, a := dial(t, e, r)

	// The writer sends PINGREQs in chunks until the reader has the last
	// packet; every write before that must succeed.
	stop := make(chan struct{})
	werr := make(chan error, 1)
	go func() {
		chunk := bytes.Repeat(pingreq, 512)
		for {
			select {
			case <-stop:
				werr <- nil
				return
			default:
			}
			_ = nc.SetWriteDeadline(time.Now().Add(wait))
			if _, err := nc.Write(chunk); err != nil {
				select {
				case <-stop: // after the reader had it: the client's own choice
					werr <- nil
				default:
					werr <- err
				}
				return
			}
		}
	}()
	got := readN(t, nc, len(last))
	close(stop)
	if !bytes.Equal(got, last) {
		t.Fatalf("client read % x, want the DISCONNECT % x", got, last)
	}
	if err := <-werr; err != nil {
		t.Fatalf("a write failed before the client could read the DISCONNECT: %v", err)
	}
	if rest := readUntilEOF(t, nc); len(rest) != 0 { // FIN, not a reset
		t.Fatalf("client read % x after the DISCONNECT", rest)
	}
	_ = nc.Close()
	r.waitFor(t, "OnClose", func() bool { return r.closes[a] == 1 })
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.closeE[a]; err != nil {
		t.Errorf("OnClose error %v, want nil: the engine asked for the close", err)
	}
}

// TestLingerBounded: a client that never closes its side is cut after
// Config.Linger, so a lingering connection costs a descriptor for a bounded
// time only.
func TestLingerBounded(t *testing.T) {
	r := newRecorder()
	r.onFrame = func(c *eventloop.Conn, _ codec.Header, _ []byte) error {
		c.Write(pingresp)
		c.Close()
		return nil
	}
	e := startOneLoop(t, r, func(c *eventloop.Config) { c.Tick, c.Linger = 20*time.Millisecond, 200*time.Millisecond })
	nc, a := dial(t, e, r)
	start := time.Now()
	send(t, nc, pingreq)
	if got := readUntilEOF(t, nc); !bytes.Equal(got, pingresp) { // the write side is shut at once
		t.Fatalf("client read % x before EOF, want % x", got, pingresp)
	}
	r.waitFor(t, "OnClose, once the output is sent", func() bool { return r.closes[a] == 1 })
	if n := e.Lingering(); n != 1 {
		t.Errorf("Lingering() = %d while the connection lingers, want 1", n)
	}
	// The client keeps its side open and sends now and then: the engine
	// discards that while it lingers, and once the linger is over the
	// socket is closed, and the kernel answers the next bytes with a reset.
	for {
		_ = nc.SetWriteDeadline(time.Now().Add(wait))
		_, err := nc.Write(pingreq)
		if err == nil {
			_ = nc.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
			_, err = nc.Read(make([]byte, 1))
		}
		var ne net.Error
		if err != nil && !(errors.As(err, &ne) && ne.Timeout()) && err != io.EOF {
			break // reset: the engine closed the socket
		}
		if d := time.Since(start); d > wait {
			t.Fatalf("still lingering after %v with a 200 ms linger", d)
		}
	}
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Errorf("closed after %v, before the 200 ms linger", d)
	}
	deadline := time.Now().Add(wait)
	for e.Lingering() != 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond) // the kernel's reset came first; gnet's close follows on the loop
	}
	if n := e.Lingering(); n != 0 {
		t.Errorf("Lingering() = %d after the close, want 0", n)
	}
}

// startOneLoop runs an Engine of one loop with r, its timings set by edit,
// and stops it when the test ends.
func startOneLoop(t *testing.T, r *recorder, edit func(*eventloop.Config)) *engine {
	t.Helper()
	cfg := eventloop.Config{Addr: "127.0.0.1:0", Loops: 1, MaxPacketSize: 1024, Logger: zerolog.Nop()}
	edit(&cfg)
	e := &engine{Engine: eventloop.New(cfg, r)}
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.stop() })
	return e
}
