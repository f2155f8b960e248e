package eventloop_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/shoalmq/shoal/codec"
	"github.com/shoalmq/shoal/eventloop"
)

// These tests drive a real Engine over loopback TCP (port 0). They share no
// helpers with internal/testutil on purpose: testutil imports the broker,
// which imports this package, and the reactor's tests should not need the
// whole broker to build. They do not run in parallel: gnet keeps its
// engines in a package-level map keyed by address, and every engine here
// listens on the same "127.0.0.1:0".

// wait bounds every wait for something the engine owes: generous for a
// loaded machine running -race, short enough to keep a failure quick.
const wait = 5 * time.Second

// frame is one OnFrame call.
type frame struct {
	Type      codec.Type
	Flags     byte
	Remaining int
	Body      string // copied: the body is valid only during OnFrame
}

// recorder is a Handler that records every event. Its methods run on loop
// goroutines, the test reads from its own: mu guards everything below it.
// The hooks are set before the engine starts and not changed after.
type recorder struct {
	// onFrame, if set, runs after the frame is recorded, and its error is
	// OnFrame's.
	onFrame func(c *eventloop.Conn, h codec.Header, body []byte) error
	// onTick and onWake, if set, run after the event is recorded, without
	// mu held.
	onTick func(l *eventloop.Loop, now time.Time)
	onWake func(l *eventloop.Loop)

	mu     sync.Mutex
	conns  map[string]*eventloop.Conn // by client address, from OnOpen
	frames map[string][]frame
	errs   map[string][]error
	closes map[string]int // OnClose calls
	closeE map[string]error
	wakes  int
	ticks  map[int][]time.Time // by loop index
	bad    []string            // misbehaviour seen on a loop, reported by the test
}

func newRecorder() *recorder {
	return &recorder{
		conns:  map[string]*eventloop.Conn{},
		frames: map[string][]frame{},
		errs:   map[string][]error{},
		closes: map[string]int{},
		closeE: map[string]error{},
		ticks:  map[int][]time.Time{},
	}
}

// addr is the client address a connection was opened with; the test knows
// its client by the same string (net.Conn.LocalAddr).
func addr(c *eventloop.Conn) string { return c.Data.(string) }

func (r *recorder) OnOpen(c *eventloop.Conn) error {
	a := c.RemoteAddr().String()
	c.Data = a
	r.mu.Lock()
	defer r.mu.Unlock()
	r.conns[a] = c
	return nil
}

func (r *recorder) OnFrame(c *eventloop.Conn, h codec.Header, body []byte) error {
	r.mu.Lock()
	r.frames[addr(c)] = append(r.frames[addr(c)], frame{Type: h.Type, Flags: h.Flags, Remaining: h.Remaining, Body: string(body)})
	if len(body) != h.Remaining {
		r.bad = append(r.bad, fmt.Sprintf("%s: body of %d bytes, header says %d", h.Type, len(body), h.Remaining))
	}
	r.mu.Unlock()
	if r.onFrame != nil {
		return r.onFrame(c, h, body)
	}
	return nil
}

func (r *recorder) OnFrameError(c *eventloop.Conn, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs[addr(c)] = append(r.errs[addr(c)], err)
}

func (r *recorder) OnClose(c *eventloop.Conn, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closes[addr(c)]++
	r.closeE[addr(c)] = err
	if !c.Closing() {
		r.bad = append(r.bad, addr(c)+": Closing() false in OnClose")
	}
	if c.RemoteAddr() == nil { // gnet may have released the connection already
		r.bad = append(r.bad, addr(c)+": RemoteAddr() nil in OnClose")
	}
}

func (r *recorder) OnWake(l *eventloop.Loop) {
	r.mu.Lock()
	r.wakes++
	r.checkLoopLocked(l, "OnWake")
	r.mu.Unlock()
	if r.onWake != nil {
		r.onWake(l)
	}
}

func (r *recorder) OnTick(l *eventloop.Loop, now time.Time) {
	r.mu.Lock()
	r.ticks[l.Index()] = append(r.ticks[l.Index()], now)
	r.checkLoopLocked(l, "OnTick")
	r.mu.Unlock()
	if r.onTick != nil {
		r.onTick(l, now)
	}
}

// checkLoopLocked walks l's connections, which only l's own goroutine may
// do (the race detector objects otherwise), and checks that each belongs
// to l. r.mu must be held.
func (r *recorder) checkLoopLocked(l *eventloop.Loop, where string) {
	l.Each(func(c *eventloop.Conn) {
		if c.Loop() != l {
			r.bad = append(r.bad, fmt.Sprintf("%s on loop %d: connection %s of loop %d among its connections",
				where, l.Index(), addr(c), c.Loop().Index()))
		}
	})
}

// waitFor polls cond, with r.mu held, until it holds or wait passes.
func (r *recorder) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		r.mu.Lock()
		ok := cond()
		r.mu.Unlock()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", wait, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// checkSane reports what the recorder saw go wrong on the loops.
func (r *recorder) checkSane(t *testing.T) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.bad {
		t.Error(s)
	}
	for a, n := range r.closes {
		if n != 1 {
			t.Errorf("%s: OnClose called %d times, want once", a, n)
		}
	}
}

// engine is a started Engine that the test's cleanup stops, once.
type engine struct {
	*eventloop.Engine
	stopOnce sync.Once
	stopErr  error
}

// stop stops the engine, the first time it is called, and returns Stop's
// result.
func (e *engine) stop() error {
	e.stopOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		e.stopErr = e.Engine.Stop(ctx)
	})
	return e.stopErr
}

// start runs an Engine with r on a free loopback port and stops it when
// the test ends, checking afterwards what r saw.
func start(t *testing.T, r *recorder) *engine { return startHandler(t, r) }

// startHandler is start with a handler that wraps a recorder.
func startHandler(t *testing.T, h interface {
	eventloop.Handler
	checkSane(*testing.T)
}) *engine {
	t.Helper()
	return startConfig(t, h, nil)
}

// startConfig is startHandler with the test's Config changed by set, when
// not nil, before the engine is made.
func startConfig(t *testing.T, h interface {
	eventloop.Handler
	checkSane(*testing.T)
}, set func(*eventloop.Config)) *engine {
	t.Helper()
	cfg := eventloop.Config{
		Addr:          "127.0.0.1:0",
		Loops:         2,
		MaxPacketSize: 1024,
		Tick:          50 * time.Millisecond,
		Logger:        zerolog.Nop(),
	}
	if set != nil {
		set(&cfg)
	}
	e := &engine{Engine: eventloop.New(cfg, h)}
	if err := e.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := e.stop(); err != nil {
			t.Errorf("Stop: %v", err)
		}
		h.checkSane(t)
	})
	return e
}

// dial connects to e and waits for OnOpen. It returns the client side and
// the address both sides know it by.
func dial(t *testing.T, e *engine, r *recorder) (*net.TCPConn, string) {
	t.Helper()
	nc, err := net.DialTimeout("tcp", e.Addr().String(), wait)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	a := nc.LocalAddr().String()
	r.waitFor(t, "OnOpen of "+a, func() bool { return r.conns[a] != nil })
	return nc.(*net.TCPConn), a
}

// send writes b, failing the test on error.
func send(t *testing.T, nc net.Conn, b []byte) {
	t.Helper()
	_ = nc.SetWriteDeadline(time.Now().Add(wait))
	if _, err := nc.Write(b); err != nil {
		t.Fatalf("write: %v", err)
	}
}

// readUntilEOF reads until the server closes the connection in an orderly
// way (FIN) and returns what came before. A reset or timeout fails the test.
func readUntilEOF(t *testing.T, nc net.Conn) []byte {
	t.Helper()
	_ = nc.SetReadDeadline(time.Now().Add(wait))
	b, err := io.ReadAll(nc)
	if err != nil {
		t.Fatalf("reading until the server closes: got %d bytes, then %v", len(b), err)
	}
	return b
}

// readN reads exactly n bytes.
func readN(t *testing.T, nc net.Conn, n int) []byte {
	t.Helper()
	_ = nc.SetReadDeadline(time.Now().Add(wait))
	b := make([]byte, n)
	if got, err := io.ReadFull(nc, b); err != nil {
		t.Fatalf("read %d of %d bytes: %v", got, n, err)
	}
	return b
}

// expectOpen checks that the server has not closed nc, nor sent anything,
// within d.
func expectOpen(t *testing.T, nc net.Conn, d time.Duration) {
	t.Helper()
	_ = nc.SetReadDeadline(time.Now().Add(d))
	var b [1]byte
	n, err := nc.Read(b[:])
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("connection should stay open and quiet: read %d bytes, %v", n, err)
	}
}

// frameOf is what OnFrame should see for the encoded packet p.
func frameOf(t *testing.T, p []byte) frame {
	t.Helper()
	h, err := codec.ParseHeader(p, 0)
	if err != nil || h.Size() != len(p) {
		t.Fatalf("bad test packet % x: %v", p, err)
	}
	return frame{Type: h.Type, Flags: h.Flags, Remaining: h.Remaining, Body: string(p[h.Len:])}
}

var (
	pingreq  = codec.AppendPing(nil, codec.PINGREQ)
	pingresp = codec.AppendPing(nil, codec.PINGRESP)
)

// testStream returns packets covering the framing cases: empty bodies,
// 1- and 2-byte remaining lengths, PUBLISH flags, PUBREL's required flags.
func testStream() [][]byte {
	return [][]byte{
		pingreq, // C0 00: no body
		(&codec.Publish{Topic: []byte("a/b"), Payload: []byte("hello")}).Append(nil, codec.V311),
		// Remaining length 315 takes two bytes: a read can end inside it.
		(&codec.Publish{QoS: 1, Topic: []byte("sensors/long"), PacketID: 0x1234,
			Payload: bytes.Repeat([]byte("0123456789"), 30)}).Append(nil, codec.V311),
		codec.AppendAck(nil, codec.PUBACK, 9, codec.Success, codec.V311),
		(&codec.Publish{QoS: 2, Dup: true, Retain: true, Topic: []byte("x"), PacketID: 7}).Append(nil, codec.V5),
		codec.AppendAck(nil, codec.PUBREL, 7, codec.Success, codec.V311),
		codec.AppendPing(nil, codec.DISCONNECT),
	}
}

// TestFramesAtEveryByteBoundary sends the same stream whole, one byte at
// a time and split in two at every index, and expects the same frames in
// the same order each time: the engine resumes a frame at any boundary,
// including inside the fixed header's remaining length (STYLE item 11).
func TestFramesAtEveryByteBoundary(t *testing.T) {
	r := newRecorder()
	e := start(t, r)
	var stream []byte
	var want []frame
	for _, p := range testStream() {
		stream = append(stream, p...)
		want = append(want, frameOf(t, p))
	}
	if stream[2+len(testStream()[1])+1]&0x80 == 0 {
		t.Fatal("test stream: the long PUBLISH should have a two-byte remaining length")
	}

	tests := []struct {
		name   string
		writes func(nc net.Conn) int // sends the stream, returns how many times
	}{
		{name: "one write", writes: func(nc net.Conn) int {
			send(t, nc, stream)
			return 1
		}},
		{name: "byte by byte", writes: func(nc net.Conn) int {
			for i := range stream {
				send(t, nc, stream[i:i+1])
				time.Sleep(time.Millisecond) // let each byte be its own read
			}
			return 1
		}},
		{name: "split in two at every index", writes: func(nc net.Conn) int {
			for i := 1; i < len(stream); i++ {
				send(t, nc, stream[:i])
				time.Sleep(time.Millisecond)
				send(t, nc, stream[i:])
			}
			return len(stream) - 1
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nc, a := dial(t, e, r)
			n := tt.writes(nc)
			var wantAll []frame
			for range n {
				wantAll = append(wantAll, want...)
			}
			r.waitFor(t, fmt.Sprintf("%d frames", len(wantAll)), func() bool { return len(r.frames[a]) >= len(wantAll) })
			r.mu.Lock()
			got, errs := r.frames[a], r.errs[a]
			r.mu.Unlock()
			if len(errs) != 0 {
				t.Fatalf("framing errors: %v", errs)
			}
			if len(got) != len(wantAll) {
				t.Fatalf("got %d frames, want %d", len(got), len(wantAll))
			}
			for i := range got {
				if got[i] != wantAll[i] {
					t.Fatalf("frame %d: got %s flags %#x remaining %d body %q\nwant %s flags %#x remaining %d body %q",
						i, got[i].Type, got[i].Flags, got[i].Remaining, got[i].Body,
						wantAll[i].Type, wantAll[i].Flags, wantAll[i].Remaining, wantAll[i].Body)
				}
			}
			expectOpen(t, nc, 20*time.Millisecond)
		})
	}
}

// TestMaxPacketSize: a frame of exactly MaxPacketSize bytes is accepted;
// a header announcing more is refused before its body is sent, so the body
// is never buffered.
func TestMaxPacketSize(t *testing.T) {
	r := newRecorder()
	e := start(t, r)

	t.Run("at the limit", func(t *testing.T) {
		nc, a := dial(t, e, r)
		p := codec.AppendHeader(nil, codec.PUBLISH, 0, 1021) // 3-byte header + 1021 = 1024
		p = append(p, 0, 1, 't')
		p = append(p, bytes.Repeat([]byte{'x'}, 1018)...)
		if len(p) != 1024 {
			t.Fatalf("test packet is %d bytes", len(p))
		}
		send(t, nc, p)
		r.waitFor(t, "the frame", func() bool { return len(r.frames[a]) == 1 })
		r.mu.Lock()
		got, errs := r.frames[a][0], r.errs[a]
		r.mu.Unlock()
		if got != frameOf(t, p) || len(errs) != 0 {
			t.Fatalf("frame %s remaining %d, errors %v", got.Type, got.Remaining, errs)
		}
		expectOpen(t, nc, 20*time.Millisecond)
	})

	for _, remaining := range []int{1022, 1 << 20, 268435455} {
		t.Run(fmt.Sprintf("header announcing %d", remaining), func(t *testing.T) {
			nc, a := dial(t, e, r)
			send(t, nc, codec.AppendHeader(nil, codec.PUBLISH, 0, remaining)) // header only
			if b := readUntilEOF(t, nc); len(b) != 0 {
				t.Errorf("server sent % x before closing", b)
			}
			r.waitFor(t, "OnClose", func() bool { return r.closes[a] == 1 })
			r.mu.Lock()
			defer r.mu.Unlock()
			if errs := r.errs[a]; len(errs) != 1 || !errors.Is(errs[0], codec.ErrPacketTooLarge) {
				t.Errorf("OnFrameError got %v, want [%v]", errs, codec.ErrPacketTooLarge)
			}
			if len(r.frames[a]) != 0 {
				t.Errorf("OnFrame called for a refused packet: %v", r.frames[a])
			}
		})
	}
}

// TestMalformedHeader: an unframeable stream gets OnFrameError and a close;
// the frames before it are delivered and nothing after it is.
func TestMalformedHeader(t *testing.T) {
	r := newRecorder()
	e := start(t, r)
	tests := []struct {
		name   string
		header []byte
		want   error
	}{
		{name: "reserved type 0", header: []byte{0x00, 0x00}, want: codec.ErrReservedType},
		{name: "type 0 with flags and a body", header: []byte{0x0f, 0x02, 0x00, 0x01}, want: codec.ErrReservedType},
		{name: "PUBREL without its flags", header: []byte{0x60, 0x02, 0x00, 0x01}, want: codec.ErrReservedFlags},
		{name: "PINGREQ with flags", header: []byte{0xc1, 0x00}, want: codec.ErrReservedFlags},
		{name: "remaining length over four bytes", header: []byte{0x30, 0xff, 0xff, 0xff, 0xff, 0x01}, want: codec.ErrMalformedVarint},
		{name: "overlong remaining length", header: []byte{0x30, 0x80, 0x00}, want: codec.ErrMalformedVarint},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nc, a := dial(t, e, r)
			var b []byte
			b = append(b, pingreq...)
			b = append(b, tt.header...)
			b = append(b, pingreq...) // after the error: must not be read as a frame
			send(t, nc, b)
			if got := readUntilEOF(t, nc); len(got) != 0 {
				t.Errorf("server sent % x before closing", got)
			}
			r.waitFor(t, "OnClose", func() bool { return r.closes[a] == 1 })
			r.mu.Lock()
			defer r.mu.Unlock()
			if errs := r.errs[a]; len(errs) != 1 || !errors.Is(errs[0], tt.want) {
				t.Errorf("OnFrameError got %v, want [%v]", errs, tt.want)
			}
			if got := r.frames[a]; len(got) != 1 || got[0] != frameOf(t, pingreq) {
				t.Errorf("frames %v, want the one PINGREQ before the bad header", got)
			}
		})
	}
}

// TestFrameErrorClosesAfterOutput: when OnFrame fails, what the handler
// wrote — for that frame and the ones before it in the same read — reaches
// the client before the close, and the frames after it are not delivered.
func TestFrameErrorClosesAfterOutput(t *testing.T) {
	r := newRecorder()
	errRefused := errors.New("handler refuses the packet")
	r.onFrame = func(c *eventloop.Conn, h codec.Header, _ []byte) error {
		switch h.Type {
		case codec.PINGREQ:
			c.Write(pingresp)
		case codec.PUBLISH:
			c.Write(codec.AppendAck(nil, codec.PUBACK, 0x0102, codec.Success, codec.V311))
			d := codec.Disconnect{Code: codec.ProtocolError}
			c.Write(d.Append(nil, codec.V5))
			return errRefused
		}
		return nil
	}
	e := start(t, r)
	nc, a := dial(t, e, r)

	publish := (&codec.Publish{QoS: 1, Topic: []byte("t"), PacketID: 0x0102}).Append(nil, codec.V311)
	var b []byte
	b = append(b, pingreq...)
	b = append(b, publish...)
	b = append(b, pingreq...) // after the failing frame: not delivered
	send(t, nc, b)

	var want []byte
	want = append(want, pingresp...)
	want = codec.AppendAck(want, codec.PUBACK, 0x0102, codec.Success, codec.V311)
	d := codec.Disconnect{Code: codec.ProtocolError}
	want = d.Append(want, codec.V5)
	if got := readUntilEOF(t, nc); !bytes.Equal(got, want) {
		t.Fatalf("client read % x before EOF, want % x", got, want)
	}
	r.waitFor(t, "OnClose", func() bool { return r.closes[a] == 1 })
	r.mu.Lock()
	defer r.mu.Unlock()
	if got := r.frames[a]; len(got) != 2 || got[0].Type != codec.PINGREQ || got[1].Type != codec.PUBLISH {
		t.Errorf("frames %v, want PINGREQ, PUBLISH and nothing after the error", got)
	}
	if len(r.errs[a]) != 0 {
		t.Errorf("OnFrameError called: %v", r.errs[a])
	}
	if err := r.closeE[a]; err != nil {
		t.Errorf("OnClose error %v, want nil for a close the engine asked for", err)
	}
}

// TestCloseAfterLargeOutput: the promise that a close waits for what was
// written holds for output larger than the socket buffers too, as when a
// slow subscriber's backlog is pending at a protocol error or a takeover.
func TestCloseAfterLargeOutput(t *testing.T) {
	// 16 MiB: more than loopback's socket buffers (a few MiB) can take
	// at once, so gnet still holds part of it when the close comes.
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<20)
	tests := []struct {
		name  string
		close func(c *eventloop.Conn) error // after writing big
	}{
		{name: "OnFrame error", close: func(*eventloop.Conn) error { return errors.New("refused") }},
		{name: "Conn.Close", close: func(c *eventloop.Conn) error { c.Close(); return nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRecorder()
			r.onFrame = func(c *eventloop.Conn, _ codec.Header, _ []byte) error {
				c.Write(big)
				return tt.close(c)
			}
			e := start(t, r)
			nc, _ := dial(t, e, r)
			send(t, nc, pingreq)
			got := readUntilEOF(t, nc)
			if len(got) != len(big) || !bytes.Equal(got, big) {
				t.Fatalf("client read %d of the %d bytes written before the close, then EOF", len(got), len(big))
			}
		})
	}
}

// TestWriteBatching: several writes for one frame, through Write and
// Buffer, and several frames in one read, all reach the client in order.
func TestWriteBatching(t *testing.T) {
	r := newRecorder()
	r.onFrame = func(c *eventloop.Conn, h codec.Header, body []byte) error {
		id := uint16(body[0])<<8 | uint16(body[1])
		c.Write(codec.AppendAck(nil, codec.PUBACK, id, codec.Success, codec.V311))
		buf := c.Buffer()
		buf.B = codec.AppendAck(buf.B, codec.PUBREC, id, codec.Success, codec.V311)
		c.Write(codec.AppendAck(nil, codec.PUBCOMP, id, codec.Success, codec.V311))
		return nil
	}
	e := start(t, r)

	replies := func(id uint16) []byte {
		b := codec.AppendAck(nil, codec.PUBACK, id, codec.Success, codec.V311)
		b = codec.AppendAck(b, codec.PUBREC, id, codec.Success, codec.V311)
		return codec.AppendAck(b, codec.PUBCOMP, id, codec.Success, codec.V311)
	}
	request := func(id uint16) []byte {
		return codec.AppendAck(nil, codec.PUBREL, id, codec.Success, codec.V311)
	}

	t.Run("three replies to one frame", func(t *testing.T) {
		nc, _ := dial(t, e, r)
		send(t, nc, request(1))
		want := replies(1)
		if got := readN(t, nc, len(want)); !bytes.Equal(got, want) {
			t.Fatalf("read % x, want % x", got, want)
		}
		expectOpen(t, nc, 20*time.Millisecond) // and nothing more
	})
	t.Run("five frames in one read", func(t *testing.T) {
		nc, _ := dial(t, e, r)
		var req, want []byte
		for id := uint16(1); id <= 5; id++ {
			req = append(req, request(id)...)
			want = append(want, replies(id)...)
		}
		send(t, nc, req)
		if got := readN(t, nc, len(want)); !bytes.Equal(got, want) {
			t.Fatalf("read % x, want % x", got, want)
		}
		expectOpen(t, nc, 20*time.Millisecond)
	})
}

// holder is a recorder that is also a Flusher: after a read burst it holds
// the output back once per frame, as the broker does while a disk sync is
// pending, and notes what it was asked.
type holder struct {
	*recorder
	mu      sync.Mutex
	pending bool // a frame was handled since the last flush
	asked   []bool
}

func (h *holder) BeforeFlush(_ *eventloop.Loop, mayHold bool) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.asked = append(h.asked, mayHold)
	hold := mayHold && h.pending
	if !mayHold {
		h.pending = false
	}
	return hold
}

// TestFlusherHolds: output a Flusher holds back after a read burst goes
// out at the loop's next wake-up — which the loop asks for itself — once
// the Flusher lets it, and in order.
func TestFlusherHolds(t *testing.T) {
	r := newRecorder()
	h := &holder{recorder: r}
	r.onFrame = func(c *eventloop.Conn, hd codec.Header, body []byte) error {
		h.mu.Lock()
		h.pending = true
		h.mu.Unlock()
		c.Write(codec.AppendAck(nil, codec.PUBACK, uint16(body[0])<<8|uint16(body[1]), codec.Success, codec.V311))
		return nil
	}
	e := startHandler(t, h)
	nc, _ := dial(t, e, r)
	var want []byte
	for id := uint16(1); id <= 3; id++ {
		send(t, nc, codec.AppendAck(nil, codec.PUBREL, id, codec.Success, codec.V311))
		want = append(want, codec.AppendAck(nil, codec.PUBACK, id, codec.Success, codec.V311)...)
		got := readN(t, nc, 4)
		if !bytes.Equal(got, want[len(want)-4:]) {
			t.Fatalf("frame %d: read % x, want % x", id, got, want[len(want)-4:])
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	var held, released int
	for _, m := range h.asked {
		if m {
			held++
		} else {
			released++
		}
	}
	if held < 3 || released < 3 {
		t.Errorf("BeforeFlush asked %v: want a may-hold flush per read burst and a final one per wake-up", h.asked)
	}
	r.mu.Lock()
	wakes := r.wakes
	r.mu.Unlock()
	if wakes < 3 {
		t.Errorf("%d wake-ups, want one per held burst", wakes)
	}
}

// discarder is a recorder that is also a Flusher: as a commit that did
// not hold would have it, it drops the pending output of the connections
// marked for it, writes them a last packet and closes them — from inside
// BeforeFlush.
type discarder struct {
	*recorder
	mu     sync.Mutex
	marked []*eventloop.Conn
	inside bool
	nested int // BeforeFlush calls made while one ran
}

var lastPacket = codec.AppendAck(nil, codec.PUBACK, 0xFFFF, codec.Success, codec.V311)

func (d *discarder) BeforeFlush(*eventloop.Loop, bool) bool {
	d.mu.Lock()
	if d.inside {
		d.nested++
	}
	d.inside = true
	marked := d.marked
	d.marked = nil
	d.mu.Unlock()
	for _, c := range marked {
		c.Discard()
		c.Write(lastPacket)
		c.Close()
	}
	d.mu.Lock()
	d.inside = false
	d.mu.Unlock()
	return false
}

// TestFlusherDiscards: output a Flusher discards never reaches the
// client — what it writes after does, then the connection closes — and
// the Flusher closing a connection does not run it again inside itself.
// A connection it leaves alone gets its output.
func TestFlusherDiscards(t *testing.T) {
	r := newRecorder()
	d := &discarder{recorder: r}
	r.onFrame = func(c *eventloop.Conn, hd codec.Header, body []byte) error {
		id := uint16(body[0])<<8 | uint16(body[1])
		c.Write(codec.AppendAck(nil, codec.PUBACK, id, codec.Success, codec.V311))
		if id == 2 {
			d.mu.Lock()
			d.marked = append(d.marked, c)
			d.mu.Unlock()
		}
		return nil
	}
	e := startHandler(t, d)
	kept, _ := dial(t, e, r)
	send(t, kept, codec.AppendAck(nil, codec.PUBREL, 1, codec.Success, codec.V311))
	if got, want := readN(t, kept, 4), codec.AppendAck(nil, codec.PUBACK, 1, codec.Success, codec.V311); !bytes.Equal(got, want) {
		t.Fatalf("kept connection read % x, want % x", got, want)
	}
	dropped, _ := dial(t, e, r)
	send(t, dropped, codec.AppendAck(nil, codec.PUBREL, 2, codec.Success, codec.V311))
	if got := readUntilEOF(t, dropped); !bytes.Equal(got, lastPacket) {
		t.Fatalf("discarded connection read % x before EOF, want only the last packet % x", got, lastPacket)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.nested != 0 {
		t.Errorf("BeforeFlush ran %d times inside itself", d.nested)
	}
}
