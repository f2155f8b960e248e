package eventloop

import (
	"time"

	"github.com/valyala/bytebufferpool"
)

// Output coalescing (Config.Coalesce). Each write to a socket costs a
// system call and, with TCP_NODELAY, a TCP segment: on loopback, where
// the sender's CPU also runs the receiver's side of TCP, nearly all of a
// broker's CPU per delivery at a steady rate (make bench's fixed-rate
// variants). A client that receives messages faster than one per
// Coalesce may get them in fewer, fuller writes: output pushed to it
// (Conn.PushBuffer: deliveries, which it did not ask for just now) waits
// while the loop has more work already on its way — and only then:
//
//   - at the end of a read burst, until the loop's other ready events
//     are in: the loop wakes itself (Loop.Wake). gnet runs queued tasks
//     after a poll's events and sees the wake-up at its next poll, which
//     it makes without waiting, so the wake-up runs after the rest of
//     this poll's read bursts and those ready at the next: what they
//     deliver to the same client goes in the same write. It costs an
//     eventfd write when no wake-up was pending, and is not asked for
//     while such wake-ups have lately gathered less than one more write
//     each on this loop (wakeGate, below);
//   - at the end of a wake-up or tick, while another wake-up is pending:
//     another goroutine has posted more since this one began (router
//     workers and other loops post deliveries, then wake the loop).
//
// When the loop's wake-up finds nothing more pending, every held output
// goes: a lone message waits for no timer, only for the events the loop
// already had in hand. None waits longer than Coalesce after the
// connection's previous write (checked at each flush, which a pending
// wake-up guarantees, plus at worst the loop's current event), and what
// comes meanwhile goes with it. The first message after a quiet spell
// goes out at once.
//
// Never held: output written with Buffer or Write (answers: CONNACK,
// acknowledgements, PINGRESP, DISCONNECT), whatever a connection's own
// read burst produced for it (a queued message sent on its PUBACK),
// output of coalesceMax bytes or more, and output to a connection whose
// socket already refused bytes (gnet buffers those without a system call
// anyway). A closing connection's output goes out in Close, held or not.
//
// This batches as an event-driven server does at the end of its event
// burst (write what the burst produced once the ready events are
// handled), with Coalesce as a bound; it replaced a fixed hold of
// Coalesce after each write, which cut CPU per delivery but added up to
// Coalesce of latency to a steady stream: make bench's fan-in at 4,000
// msg/s went from a p99 of 3.0 ms to 0.62 ms (0.61 shared) at 0.96×
// (0.93×) the CPU per delivery, though with 4.5× (2.1×) the segments;
// context switches per delivery halved, so the fixed hold's timer
// wake-ups probably cost about what the extra writes do (counters, not
// a profile: bench/results/2026-12-07-coalesce.md).
//
// Invariant: while l.held is not empty a wake-up of the loop is pending
// (Loop.wakePending), and its flush writes what is held unless yet
// another is pending; so no timer is needed to bound a hold.

// coalesceMax is the most pending output a connection may hold back:
// a few hundred small messages. Past it the write is worth its system
// call anyway; bulk output (retained messages, a backlog) never waits.
const coalesceMax = 4 << 10

// PushBuffer is Buffer for output the client did not just ask for (a
// delivery): it may wait, while the loop has more work on its way and at
// most Config.Coalesce, to go out with the connection's next output (see
// coalesce.go). Output written with Buffer or Write in the same event
// still goes out at once, and takes this with it. Call it on the
// connection's loop.
func (c *Conn) PushBuffer() *bytebufferpool.ByteBuffer {
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

// micros is t (Unix ns) in microseconds, truncated to 32 bits: enough for
// differences below 71 minutes, which is all coalescing compares (a
// wrong answer past that holds one write at most until the loop's next
// wake-up).
func micros(t int64) uint32 { return uint32(t / 1000) }

// mayHold reports whether c's pending output may wait, at time now (Unix
// ns), and until when at the latest. burst says the loop is ending a read
// burst: then it wakes itself, if no wake-up is pending yet, so that the
// output goes once the poll's other events are handled.
func (l *Loop) mayHold(c *Conn, now int64, burst bool) (until int64, ok bool) {
	w := l.engine.cfg.Coalesce
	if w <= 0 || c.urgent || c == l.source || len(c.out.B) >= coalesceMax || c.gc.OutboundBuffered() > 0 {
		return 0, false
	}
	since := time.Duration(micros(now)-c.lastOut) * time.Microsecond
	if since >= w {
		return 0, false
	}
	if !l.wakePending.Load() {
		if !burst || !l.gate.allow() {
			return 0, false // nothing more is coming now, or holding has not paid
		}
		l.Wake()
		if !l.wakePending.Load() { // the engine is stopping
			return 0, false
		}
		l.gate.woke()
	}
	return now + int64(w-since), true
}

// hold keeps c's output back until the loop's next flush with nothing
// more pending, or until (Unix ns) at the latest.
func (l *Loop) hold(c *Conn, until int64) {
	if !c.held {
		c.held = true
		l.held = append(l.held, c)
	}
	if l.heldUntil == 0 || until < l.heldUntil {
		l.heldUntil = until
	}
}

// flushHeld writes every held connection's output, at time now (Unix ns).
// It returns the bytes written.
func (l *Loop) flushHeld(now int64) (out int64) {
	for i, c := range l.held {
		l.held[i] = nil
		if !c.held { // written since, or closed
			continue
		}
		c.held = false
		out += l.write(c, now)
	}
	l.held = l.held[:0]
	l.heldUntil = 0
	return out
}

// write hands c's pending output to the kernel (gnet buffers what the
// kernel refuses) and returns the buffer to the pool. It returns the
// bytes written.
func (l *Loop) write(c *Conn, now int64) int64 {
	if c.out == nil {
		return 0
	}
	var n int
	if !c.closed && len(c.out.B) > 0 { // a Buffer taken and left empty costs no system call
		n = len(c.out.B)
		// A write the kernel refuses (the peer reset) makes gnet close c
		// at once, OnClose and its dropOut included.
		_, _ = c.gc.Write(c.out.B)
		c.lastOut = micros(now)
	}
	c.urgent, c.held = false, false
	c.dropOut()
	return int64(n)
}

// wakeGate decides whether a read burst's held output may still ask for
// the wake-up that holding it needs (mayHold), from what such wake-ups
// have bought on this loop. A wake-up costs the loop an eventfd write and
// one more pass through gnet's poll; it buys nothing when no other event
// of the poll writes to the held connection before the wake-up sends it.
// That is the case where each client gets messages faster than Coalesce
// but each message arrives alone: make bench's shared fan-in at 4,000
// msg/s (each of 5 group members gets one every 1.25 ms, each
// publisher's message in its own poll). There holding saved no segments
// (0.82 per delivery either way) and cost 0.27 more read and write calls
// per delivery (the eventfd) and 8-22% more CPU per delivery than
// coalesce: 0s in three runs of 3-7 rounds, 1% in a fourth. In plain
// fan-in and mesh, where the same wake-up gathers several messages per
// client, holding saved a third and a sixth of the CPU. With the gate,
// shared fan-in makes coalesce: 0s's 2.19 calls per delivery and used
// 0.89× the CPU per delivery of the same tree without it (paired medians
// of 15 rounds; 0.98× in a 7-round run), mesh and plain fan-in 1.00×
// (bench/results/2026-12-07-gate.md).
//
// The gate counts, over windows of gateWindow wake-ups, the joins: output
// written to a connection while it was held, a write saved. A window with
// fewer than one join per gateRatio wake-ups closes the gate for the
// next gateSkip read bursts that would hold output (their output goes at
// once, as with coalesce: 0s); then a new window measures again. By the
// figures above a wake-up costs about what a saved write does (4.4 µs per
// lone delivery in shared fan-in; 2.7 µs saved per delivery in plain
// fan-in, where about half the writes went), so holding breaks even near
// one join per wake-up. The gate closes well below that, only where
// holding clearly buys nothing, because a saved write also saves a
// segment that the client's CPU and the network pay for, which the
// broker's CPU does not show. The workloads measured sit far on either
// side (inferred from their segment counts: shared fan-in about 0.02
// joins per wake-up, plain fan-in about 2.5, mesh about 5). Output held
// while a wake-up is pending anyway (posted work) is unaffected: it costs
// nothing to hold. Loop goroutine only.
type wakeGate struct {
	wakes, joins uint32 // this window's
	skip         uint32 // burst holds left before the next window
}

const (
	gateWindow = 64
	gateRatio  = 4
	// gateSkip is about a second of lone deliveries in that shared
	// fan-in: measuring again then costs 1.5% of what holding them all did.
	gateSkip = 4096
)

// allow reports whether a read burst may hold output and wake the loop
// for it.
func (g *wakeGate) allow() bool {
	if g.skip == 0 {
		return true
	}
	g.skip--
	g.joins = 0 // the next window counts its own
	return false
}

// woke counts a wake-up asked for held output and, at the end of a
// window, closes the gate if the window's joins did not pay for it.
func (g *wakeGate) woke() {
	g.wakes++
	if g.wakes < gateWindow {
		return
	}
	if g.joins*gateRatio < g.wakes {
		g.skip = gateSkip
	}
	g.wakes, g.joins = 0, 0
}

// joined counts output written to a connection while its earlier output
// was held.
func (g *wakeGate) joined() {
	if g.joins < gateWindow {
		g.joins++
	}
}
