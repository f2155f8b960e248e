package eventloop_test

import (
	"encoding/binary"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/shoalmq/shoal/codec"
	"github.com/shoalmq/shoal/eventloop"
)

// producer is a Drainer that answers a PINGREQ with total bytes, written
// at most chunk at a time: it writes while the connection's Backlog is
// under chunk and asks NotifyDrained for the rest.
type producer struct {
	*recorder
	total, chunk int

	// Loop goroutine only.
	sent int
	seq  uint64

	mu         sync.Mutex // guards what the test reads
	maxBacklog int
	drained    int // OnDrained calls
}

// block is what the producer writes at a time: a sequence number and
// padding, so that the reader can check that nothing was lost or reordered.
const block = 1024

func (p *producer) produce(c *eventloop.Conn) {
	var b [block]byte
	for p.sent < p.total && c.Backlog() < p.chunk {
		binary.BigEndian.PutUint64(b[:], p.seq)
		p.seq++
		c.Write(b[:])
		p.sent += block
	}
	p.mu.Lock()
	p.maxBacklog = max(p.maxBacklog, c.Backlog())
	p.mu.Unlock()
	if p.sent < p.total {
		c.NotifyDrained(p.chunk / 2)
	}
}

func (p *producer) OnDrained(c *eventloop.Conn) {
	p.mu.Lock()
	p.drained++
	p.mu.Unlock()
	p.produce(c)
}

// TestNotifyDrained: output produced at the pace the client reads it. A
// client that reads nothing for a while leaves the producer waiting — its
// backlog stays at one chunk, however much is still to send — and once it
// reads, every byte arrives, in order. gnet says nothing when a socket
// drains: this is the loop's own polling and post-flush check at work.
func TestNotifyDrained(t *testing.T) {
	r := newRecorder()
	p := &producer{recorder: r, total: 32 << 20, chunk: 64 << 10}
	r.onFrame = func(c *eventloop.Conn, _ codec.Header, _ []byte) error {
		p.produce(c)
		return nil
	}
	e := startHandler(t, p)
	nc, _ := dial(t, e, r)
	send(t, nc, pingreq)

	// Not reading: the kernel's buffers fill, then the producer waits.
	time.Sleep(300 * time.Millisecond)
	p.mu.Lock()
	stalled := p.drained
	p.mu.Unlock()

	var buf [block]byte
	_ = nc.SetReadDeadline(time.Now().Add(4 * wait))
	for i := 0; i < p.total/block; i++ {
		if _, err := io.ReadFull(nc, buf[:]); err != nil {
			t.Fatalf("block %d of %d: %v", i, p.total/block, err)
		}
		if got := binary.BigEndian.Uint64(buf[:]); got != uint64(i) {
			t.Fatalf("block %d carries sequence number %d", i, got)
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	// The loopback socket takes a few MiB; had the producer not waited,
	// its 32 MiB would all be in the backlog.
	if p.maxBacklog > p.chunk+block {
		t.Errorf("backlog reached %d bytes, want at most a chunk (%d) and a block", p.maxBacklog, p.chunk)
	}
	if stalled*p.chunk/2 >= p.total {
		t.Errorf("%d OnDrained calls while the client read nothing: the producer did not wait", stalled)
	}
	if p.drained == 0 {
		t.Error("no OnDrained call")
	}
}
