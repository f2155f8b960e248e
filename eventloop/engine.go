package eventloop

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"
	"github.com/rs/zerolog"
	"github.com/shoalmq/shoal/codec"
	"golang.org/x/sys/unix"
)

// Handler receives a loop's events. Every method runs on the goroutine of
// the loop that owns the connection (or, for OnWake and OnTick, the loop
// passed in) and must not block.
type Handler interface {
	// OnOpen is called for a new connection. Returning an error refuses it.
	OnOpen(c *Conn) error
	// OnFrame is called for each complete frame. body is valid only during
	// the call. A non-nil error closes the connection once what was
	// written to it has been sent — except ErrPause, which leaves the frame
	// unconsumed, to be offered again on the next tick (or when more bytes
	// arrive): backpressure for a handler that cannot take it now.
	OnFrame(c *Conn, h codec.Header, body []byte) error
	// OnFrameError is called when the byte stream cannot be framed (bad
	// fixed header, over-size packet). The connection closes after it.
	OnFrameError(c *Conn, err error)
	// OnClose is called once when a connection has gone, for whatever
	// reason, or, for a close the Handler asked for (Conn.Close), once
	// its output has all been sent, when it starts to linger: err is nil
	// then. The connection is still among its loop's connections during
	// the call, and leaves them after.
	OnClose(c *Conn, err error)
	// OnWake is called on l after Loop.Wake.
	OnWake(l *Loop)
	// OnTick is called on every loop once per tick with the time.
	OnTick(l *Loop, now time.Time)
}

// Flusher is an optional interface of a Handler. BeforeFlush runs on l at
// the end of every event (read burst, wake-up, tick), just before the
// output written during it goes to the sockets, and before a closing
// connection's last output does: the place to make durable what that
// output acknowledges.
//
// After a read burst mayHold is true, and BeforeFlush may return true to
// hold the output back: it then stays buffered and the loop wakes itself
// (OnWake), after the other connections' events of the same poll, and
// flushes then with mayHold false. One disk sync can so cover every
// connection that was read in a poll instead of one each.
type Flusher interface {
	BeforeFlush(l *Loop, mayHold bool) (hold bool)
}

// ErrPause, returned by Handler.OnFrame, leaves the frame in the
// connection's buffer to be offered again later, in order. While a
// connection is paused its unread input may grow up to MaxPausedInput
// bytes; past that it is closed (OnFrameError with ErrInputBacklog).
var ErrPause = errors.New("eventloop: pause reading")

// Error is an error of the reactor's about a connection, with the MQTT
// reason code a Handler may answer it with. Match it with errors.As.
type Error struct {
	Code codec.ReasonCode
	Msg  string
}

func (e *Error) Error() string { return "eventloop: " + e.Msg }

// ErrInputBacklog is passed to Handler.OnFrameError when a paused
// connection's unread input outgrows MaxPausedInput.
var ErrInputBacklog = &Error{Code: codec.QuotaExceeded, Msg: "too much input while paused"}

// MaxPausedInput bounds a paused connection's unread input: 4 MiB, a few
// maximum-size packets.
const MaxPausedInput = 4 << 20

// Config configures an Engine.
type Config struct {
	Addr          string        // "host:port"
	Loops         int           // number of event loops (>= 1)
	MaxPacketSize int           // largest frame accepted, in bytes
	Tick          time.Duration // period of Handler.OnTick; default 1s
	// DrainGrace bounds how long a closing connection may take to accept
	// its last output (a final DISCONNECT behind a backlog) before it is
	// cut. Default 5s.
	DrainGrace time.Duration
	// Linger is how long a closing connection whose output has all been
	// sent waits, write side shut down and input discarded, for the client
	// to close its side, so that its last packet is read rather than lost
	// to a reset (see Conn.Close). Checked each Tick. Default 2s; negative:
	// close at once.
	Linger time.Duration
	// Coalesce bounds how long output pushed to a connection
	// (Conn.PushBuffer) may wait to go out with what follows, when the
	// connection's previous write was less than this ago; it waits only
	// while the loop has more work on its way (coalesce.go). 0: every
	// flush writes everything.
	Coalesce time.Duration
	// Nagle leaves Nagle's algorithm on for accepted TCP connections; by
	// default TCP_NODELAY is set on each, so that the kernel sends a small
	// write at once.
	Nagle  bool
	Logger zerolog.Logger
}

// Engine runs the loops. Start, Addr and Stop are safe for concurrent use.
type Engine struct {
	cfg     Config
	handler Handler
	flusher Flusher // handler's, if it is one
	drainer Drainer // handler's, if it is one
	log     zerolog.Logger

	gnet.BuiltinEventEngine
	eng   gnet.Engine
	addr  net.Addr
	ready chan error
	done  chan error
	// booted is closed when gnet's loops exist (see OnTick).
	booted   chan struct{}
	bootOnce sync.Once

	mu    sync.Mutex
	loops []*Loop // in order of discovery; index = Loop.Index; guarded by mu
	// view is loops as of the last loop found, copied, never changed:
	// what LoopAt and WakePaused read without mu. The broker posts to a
	// loop (LoopAt) for every batch it fans out: a mutex there was
	// contended by every router worker and loop.
	view atomic.Pointer[[]*Loop]

	// lingering counts connections past Handler.OnClose whose socket is
	// still open (Conn.Close): descriptors the Handler no longer sees.
	lingering atomic.Int64

	tickStop chan struct{}
	tickDone chan struct{}
	stopOnce sync.Once

	// Enrolled connections (enroll.go). stopping is guarded by mu; once
	// it is set no pump is added, so Stop may wait for pumps.
	stopping  bool
	stopCh    chan struct{}  // closed when Stop begins
	pumps     sync.WaitGroup // the copying goroutines of enrolled connections
	pumpsDone chan struct{}  // closed when pumps are all gone, after Stop
	pumpsOnce sync.Once
}

// New returns an Engine that will deliver events to h.
func New(cfg Config, h Handler) *Engine {
	if cfg.Tick <= 0 {
		cfg.Tick = time.Second
	}
	if cfg.DrainGrace <= 0 {
		cfg.DrainGrace = 5 * time.Second
	}
	if cfg.Linger == 0 {
		cfg.Linger = 2 * time.Second
	}
	fl, _ := h.(Flusher)
	dr, _ := h.(Drainer)
	return &Engine{cfg: cfg, handler: h, flusher: fl, drainer: dr, log: cfg.Logger, ready: make(chan error, 1), done: make(chan error, 1),
		booted: make(chan struct{}), stopCh: make(chan struct{}), pumpsDone: make(chan struct{})}
}

// Start binds the listener and starts the loops. It returns once
// connections are accepted, or the error that prevented it.
func (e *Engine) Start() error {
	go func() {
		err := gnet.Run(e, "tcp://"+e.cfg.Addr,
			gnet.WithMulticore(true),
			gnet.WithNumEventLoop(e.cfg.Loops),
			gnet.WithReusePort(false),
			gnet.WithReuseAddr(true),
			gnet.WithTCPNoDelay(noDelay(e.cfg.Nagle)),
			gnet.WithLogger(gnetLogger{e.log}),
			// Inbound bytes are read into each loop's shared buffer and
			// only a partial frame is copied to the connection; 64 KiB
			// lets a loop take in many small packets per system call.
			gnet.WithReadBufferCap(64<<10),
			// Enroll registers connections from transport goroutines
			// while the acceptor registers its own, and both ask the load
			// balancer for a loop. The default round-robin balancer bumps
			// an unguarded index (gnet documents the race with Register).
			// Least-connections reads atomic counts, but a loop bumps its
			// count only when it registers the connection, so a burst of
			// accepts piles onto one loop: 2,000 simultaneous connects
			// over 2 loops split 121/1879 (and 691/1309, 1131/869 in
			// other runs). Hashing the peer address keeps no state, so it
			// is race-free, and split the same bursts 1017/983, 1014/986,
			// 999/1001; Enroll gives each of its sockets a unique peer
			// address to hash (a sample of 965 enrolled split 478/487).
			gnet.WithLoadBalancing(gnet.SourceAddrHash),
			// Only for OnTick's first call; see there.
			gnet.WithTicker(true),
		)
		select {
		case e.ready <- err: // failed before boot
		default:
		}
		e.done <- err
	}()
	if err := <-e.ready; err != nil {
		return fmt.Errorf("eventloop: listen %s: %w", e.cfg.Addr, err)
	}
	select {
	case <-e.booted:
	case err := <-e.done:
		e.done <- err
		return fmt.Errorf("eventloop: start: %w", err)
	}
	e.tickStop, e.tickDone = make(chan struct{}), make(chan struct{})
	go e.ticker()
	return nil
}

// OnBoot implements gnet.EventHandler.
func (e *Engine) OnBoot(eng gnet.Engine) gnet.Action {
	e.eng = eng
	addr, err := listenAddr(eng)
	if err != nil {
		e.ready <- err
		return gnet.Shutdown
	}
	e.addr = addr
	e.ready <- nil
	return gnet.None
}

// OnTick implements gnet.EventHandler. gnet calls OnBoot before it creates
// its loops and gives them to the load balancer, so an Enroll right after
// OnBoot would find no loop, racing their creation; gnet starts its ticker
// goroutine after that, so the first OnTick marks the engine booted, and
// Start waits for it. The ticks themselves are unused (Engine.ticker runs
// the Handler's): the next one is a day later.
func (e *Engine) OnTick() (time.Duration, gnet.Action) {
	e.bootOnce.Do(func() { close(e.booted) })
	return 24 * time.Hour, gnet.None
}

// listenAddr asks the kernel which address the listener got, so that
// ":0" works.
func listenAddr(eng gnet.Engine) (net.Addr, error) {
	fd, err := eng.Dup()
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return nil, err
	}
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return &net.TCPAddr{IP: net.IP(a.Addr[:]).To16(), Port: a.Port}, nil
	case *unix.SockaddrInet6:
		return &net.TCPAddr{IP: net.IP(a.Addr[:]), Port: a.Port}, nil
	}
	return nil, errors.New("eventloop: listener is not TCP")
}

// WaitLingering waits until no connection lingers (Conn.Close) — their
// clients have read their last packets and closed — or Config.Linger has
// passed, or ctx is done. Stop closes every socket at once, lingering or
// not: a shutdown calls this first, so that a client still sending reads
// its DISCONNECT rather than a reset. Safe for concurrent use.
func (e *Engine) WaitLingering(ctx context.Context) {
	deadline := time.Now().Add(e.cfg.Linger)
	for e.lingering.Load() > 0 && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
}

// Lingering is the number of connections that have had Handler.OnClose
// but whose sockets are still open, waiting for their clients to close
// (Conn.Close). They hold file descriptors: a limit on connections must
// count them. Safe for concurrent use.
func (e *Engine) Lingering() int64 { return e.lingering.Load() }

// Addr is the bound listener address; valid after Start.
func (e *Engine) Addr() net.Addr { return e.addr }

// Loops returns the loops known so far (a loop becomes known with its
// first connection). The slice is shared: do not change it. Safe for
// concurrent use.
func (e *Engine) Loops() []*Loop {
	if v := e.view.Load(); v != nil {
		return *v
	}
	return nil
}

// loopOf returns the Loop for gnet loop el, creating it on first sight.
func (e *Engine) loopOf(el gnet.EventLoop) *Loop {
	for _, l := range e.Loops() {
		if l.el == el {
			return l
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, l := range e.loops {
		if l.el == el {
			return l
		}
	}
	l := &Loop{idx: len(e.loops), el: el, engine: e, drainPoll: drainPollMin}
	l.wakeFn = gnet.RunnableFunc(l.runWake)
	l.drainTimer = time.AfterFunc(time.Hour, l.drainFired)
	l.drainTimer.Stop() // armed by checkDrained
	e.loops = append(e.loops, l)
	view := append([]*Loop(nil), e.loops...)
	e.view.Store(&view)
	return l
}

// WakePaused wakes every loop that has paused connections (see ErrPause),
// for a caller that has just made room. It does not allocate. Safe for
// concurrent use.
func (e *Engine) WakePaused() {
	for _, l := range e.Loops() {
		if l.HasPaused() {
			l.Wake()
		}
	}
}

// LoopAt returns the loop with index i. Safe for concurrent use; it takes
// no lock.
func (e *Engine) LoopAt(i int) *Loop { return (*e.view.Load())[i] }

// OnOpen implements gnet.EventHandler.
func (e *Engine) OnOpen(gc gnet.Conn) ([]byte, gnet.Action) {
	l := e.loopOf(gc.EventLoop())
	l.now = time.Now().UnixNano()
	c := &Conn{gc: gc, loop: l}
	if en, ok := gc.Context().(*enrolled); ok { // set by Enroll
		c.en = en
	} else {
		c.remote = gc.RemoteAddr()
	}
	if err := e.handler.OnOpen(c); err != nil {
		if c.en != nil {
			c.en.pump.brokerClosed()
		}
		return nil, gnet.Close
	}
	c.idx = int32(len(l.conns))
	l.conns = append(l.conns, c)
	gc.SetContext(c)
	return nil, gnet.None
}

// OnClose implements gnet.EventHandler.
func (e *Engine) OnClose(gc gnet.Conn, err error) gnet.Action {
	c, _ := gc.Context().(*Conn)
	if c == nil {
		return gnet.None
	}
	gc.SetContext(nil)
	if c.closing {
		// Whatever ended it — the client's end of stream while lingering,
		// a reset, the drain grace — the broker had asked for the close.
		err = nil
	}
	c.closed = true
	if c.shut {
		e.lingering.Add(-1)
	}
	if l := c.loop; l.inEvent {
		// gnet closes a connection inside a write the kernel refuses,
		// which may be inside Handler code holding its locks: OnClose
		// waits for the end of the event.
		l.endLater(c, err)
	} else {
		c.finish(err)
	}
	return gnet.None
}

// finish ends c for the Handler, once: OnClose, then c leaves its loop's
// list of connections. It runs when gnet closes c, or earlier, when a
// closing connection has sent all its output and starts to linger (see
// Conn.Close): from then on nothing of it is the Handler's business.
func (c *Conn) finish(err error) {
	if c.finished {
		return
	}
	c.finished = true
	l := c.loop
	if c.en != nil {
		c.en.pump.brokerClosed()
	}
	l.engine.handler.OnClose(c, err)
	// Swap-remove from the loop's list.
	last := len(l.conns) - 1
	if int(c.idx) <= last && l.conns[c.idx] == c {
		l.conns[c.idx] = l.conns[last]
		l.conns[c.idx].idx = c.idx
		l.conns[last] = nil
		l.conns = l.conns[:last]
	}
	c.dropOut()
}

// OnTraffic implements gnet.EventHandler: it drains every complete frame.
func (e *Engine) OnTraffic(gc gnet.Conn) gnet.Action {
	c, _ := gc.Context().(*Conn)
	if c == nil {
		return gnet.Close
	}
	c.loop.now = time.Now().UnixNano()
	c.loop.events.Add(1)
	c.loop.inEvent = true
	defer c.loop.endEvent()
	c.loop.source = c // its own answers are never held (coalesce.go)
	defer func() { c.loop.source = nil }()
	if c.closing {
		// Closing, output still draining: nothing more from the client is
		// read, and the drain deadline stands.
		_, _ = gc.Discard(gc.InboundBuffered())
		return gnet.None
	}
	failed := false
	var in int64
	defer func() { c.loop.bytesIn.Add(in) }()
	for !c.closing {
		n := gc.InboundBuffered()
		if n < 2 {
			break
		}
		hb, _ := gc.Peek(min(n, codec.MaxHeaderLen))
		h, err := codec.ParseHeader(hb, e.cfg.MaxPacketSize)
		if err == codec.ErrShort {
			break
		}
		if err != nil {
			e.handler.OnFrameError(c, err)
			failed = true
			break
		}
		size := h.Size()
		if n < size {
			break
		}
		frame, _ := gc.Peek(size)
		err = e.handler.OnFrame(c, h, frame[h.Len:])
		if err == ErrPause {
			// Leave this frame and the rest where they are; Loop.resume
			// offers them again.
			c.loop.pause(c)
			break
		}
		_, _ = gc.Discard(size)
		in += int64(size)
		if err != nil {
			failed = true
			break
		}
	}
	c.loop.flush(true)
	if failed || c.closing {
		// Drop whatever else the client sent: after a protocol error or a
		// close nothing more from it is read. Close drains what was written.
		_, _ = gc.Discard(gc.InboundBuffered())
		c.Close()
	}
	return gnet.None
}

// Stop closes the listener and every connection (each gets OnClose), and
// waits for the loops to end, then for the goroutines of enrolled
// connections (Config.DrainGrace bounds a client that does not read; a
// WebSocket close handshake may add a few seconds), or for ctx to expire.
// Calls after the first wait for the same end.
func (e *Engine) Stop(ctx context.Context) error {
	e.stopOnce.Do(func() {
		e.mu.Lock()
		e.stopping = true
		e.mu.Unlock()
		close(e.stopCh)
		if e.tickStop != nil {
			close(e.tickStop)
			<-e.tickDone
		}
		// gnet's own Stop polls for the end every 500 ms; gnet.Run
		// returning (e.done) is the end itself, so wait for that instead.
		go func() { _ = e.eng.Stop(context.Background()) }()
	})
	select {
	case err := <-e.done:
		e.done <- err // for later callers
	case <-ctx.Done():
		return ctx.Err()
	}
	for _, l := range e.Loops() {
		// One that fires now wakes a loop that is gone: harmless.
		l.drainTimer.Stop()
	}
	// Every connection got OnClose, which bounds its pump by the drain
	// grace; this goroutine ends with the last of them.
	e.pumpsOnce.Do(func() {
		go func() {
			e.pumps.Wait()
			close(e.pumpsDone)
		}()
	})
	select {
	case <-e.pumpsDone:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// OnEach runs fn on each loop for each of its connections (Loop.Each: fn
// may close connections) and waits until all have run, or ctx expires.
func (e *Engine) OnEach(ctx context.Context, fn func(c *Conn)) error {
	loops := e.Loops()
	var wg sync.WaitGroup
	for _, l := range loops {
		wg.Add(1)
		err := l.el.Execute(ctx, gnet.RunnableFunc(func(context.Context) error {
			defer wg.Done()
			l.inEvent = true
			defer l.endEvent()
			l.Each(fn)
			l.flush(false)
			return nil
		}))
		if err != nil {
			wg.Done()
		}
	}
	ch := make(chan struct{})
	go func() { wg.Wait(); close(ch) }()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (e *Engine) ticker() {
	defer close(e.tickDone)
	t := time.NewTicker(e.cfg.Tick)
	defer t.Stop()
	for {
		select {
		case <-e.tickStop:
			return
		case <-t.C:
		}
		for _, l := range e.Loops() {
			_ = l.el.Execute(context.Background(), l.tickFn())
		}
	}
}

// noDelay is gnet's TCP_NODELAY option for Config.Nagle.
func noDelay(nagle bool) gnet.TCPSocketOpt {
	if nagle {
		return gnet.TCPDelay
	}
	return gnet.TCPNoDelay
}

// gnetLogger routes gnet's own messages to zerolog.
type gnetLogger struct{ log zerolog.Logger }

func (g gnetLogger) Debugf(f string, a ...any) { g.log.Debug().Msgf(strings.TrimSpace(f), a...) }
func (g gnetLogger) Infof(f string, a ...any)  { g.log.Debug().Msgf(strings.TrimSpace(f), a...) }
func (g gnetLogger) Warnf(f string, a ...any)  { g.log.Warn().Msgf(strings.TrimSpace(f), a...) }
func (g gnetLogger) Errorf(f string, a ...any) { g.log.Error().Msgf(strings.TrimSpace(f), a...) }
func (g gnetLogger) Fatalf(f string, a ...any) { g.log.Error().Msgf(strings.TrimSpace(f), a...) }
