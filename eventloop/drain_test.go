package eventloop_test

import (
	"bytes"
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
	e := &engine{Engine: eventloop.New(eventloop.Config{
		Addr: "127.0.0.1:0", Loops: 1, MaxPacketSize: 1024,
		Tick: 50 * time.Millisecond, DrainGrace: 300 * time.Millisecond, Logger: zerolog.Nop(),
	}, r)}
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.stop() })
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
