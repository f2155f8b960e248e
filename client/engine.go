package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/shoalmq/shoal/codec"
)

// Engine owns the gnet client loops that many connections share, and the
// ticker goroutine that drives their keep-alive. NewEngine, Connect and
// Close are safe for concurrent use.
type Engine struct {
	gnet.BuiltinEventEngine
	cli *gnet.Client

	mu    sync.Mutex
	loops []*loop // in order of discovery

	closing   atomic.Bool
	closeOnce sync.Once
	closeErr  error
	tickStop  chan struct{}
	tickDone  chan struct{}
}

// NewEngine starts an engine with the given number of event loops
// (< 1: one per CPU). A few loops serve thousands of connections: a
// loop's cost is per packet, not per idle connection.
func NewEngine(loops int) (*Engine, error) {
	if loops < 1 {
		loops = runtime.NumCPU()
	}
	e := &Engine{tickStop: make(chan struct{}), tickDone: make(chan struct{})}
	cli, err := gnet.NewClient(e,
		gnet.WithMulticore(true),
		gnet.WithNumEventLoop(loops),
		gnet.WithTCPNoDelay(gnet.TCPNoDelay),
		// 64 KiB per loop, shared by its connections: many small packets
		// per read system call, as on the broker side.
		gnet.WithReadBufferCap(64<<10),
		gnet.WithLogger(nopLogger{}),
	)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	if err := cli.Start(); err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	e.cli = cli
	go e.ticker()
	return e, nil
}

// Close closes every connection (abruptly: no DISCONNECT, so wills are
// published; OnClose gets ErrEngineClosed) and stops the loops. Safe to
// call more than once and from any goroutine but a callback's: it waits
// for the loops to end.
func (e *Engine) Close() error {
	e.closeOnce.Do(func() {
		e.closing.Store(true)
		close(e.tickStop)
		<-e.tickDone
		e.closeErr = e.cli.Stop()
		for _, l := range e.allLoops() {
			l.stallTimer.Stop()
		}
	})
	return e.closeErr
}

// Connect dials o.Addr, sends CONNECT and waits for CONNACK, ctx's end or
// the connection's failure. A refusal is a *ReasonError with the
// CONNACK's reason code. Safe for concurrent use; many Connects may run at
// once.
func (e *Engine) Connect(ctx context.Context, o Options) (*Conn, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	if e.closing.Load() {
		return nil, ErrEngineClosed
	}
	c := newConn(e, o)
	var d net.Dialer
	if o.LocalAddr != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(o.LocalAddr)}
		d.Control = bindNoPort
	}
	nc, err := d.DialContext(ctx, "tcp", o.Addr)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	// EnrollContext moves a duplicate of the socket to a loop (OnOpen
	// sends CONNECT there) and closes nc.
	if _, err := e.cli.EnrollContext(nc, c); err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	select {
	case err := <-c.connack:
		if err != nil {
			return nil, err
		}
		return c, nil
	case <-ctx.Done():
		c.Close()
		<-c.done
		return nil, ctx.Err()
	}
}

// loopOf returns the loop for gnet loop el, creating it on first sight.
func (e *Engine) loopOf(el gnet.EventLoop) *loop {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, l := range e.loops {
		if l.el == el {
			return l
		}
	}
	l := newLoop(e, el)
	e.loops = append(e.loops, l)
	return l
}

func (e *Engine) allLoops() []*loop {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]*loop(nil), e.loops...)
}

// ticker runs each loop's keep-alive pass once a second: keep-alive is
// counted in whole seconds [MQTT-3.1.2-23], so a finer tick buys nothing.
func (e *Engine) ticker() {
	defer close(e.tickDone)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-e.tickStop:
			return
		case <-t.C:
		}
		for _, l := range e.allLoops() {
			_ = l.el.Execute(context.Background(), l.tickFn)
		}
	}
}

// OnOpen implements gnet.EventHandler: it binds the Conn passed to
// EnrollContext to its loop and sends CONNECT.
func (e *Engine) OnOpen(gc gnet.Conn) ([]byte, gnet.Action) {
	c, _ := gc.Context().(*Conn)
	if c == nil {
		return nil, gnet.Close
	}
	l := e.loopOf(gc.EventLoop())
	c.gc, c.l = gc, l
	c.idx = len(l.conns)
	l.conns = append(l.conns, c)
	c.lastSent = l.tick
	c.connectTick = l.tick
	pkt := c.connectPkt
	c.connectPkt = nil
	return pkt, gnet.None
}

// OnClose implements gnet.EventHandler.
func (e *Engine) OnClose(gc gnet.Conn, err error) gnet.Action {
	c, _ := gc.Context().(*Conn)
	if c == nil {
		return gnet.None
	}
	gc.SetContext(nil)
	c.onClose(err)
	return gnet.None
}

// OnTraffic implements gnet.EventHandler: it handles every complete frame,
// then writes the acknowledgements it produced and whatever queued output
// they let go, with one write.
func (e *Engine) OnTraffic(gc gnet.Conn) gnet.Action {
	c, _ := gc.Context().(*Conn)
	if c == nil {
		return gnet.Close
	}
	l := c.l
	l.out = l.out[:0]
	for c.cause == nil {
		n := gc.InboundBuffered()
		if n < 2 {
			break
		}
		hb, _ := gc.Peek(min(n, codec.MaxHeaderLen))
		h, err := codec.ParseHeader(hb, c.o.MaxPacketSize)
		if err == codec.ErrShort {
			break
		}
		if err != nil {
			c.cause = fmt.Errorf("client: reading from the broker: %w", err)
			break
		}
		size := h.Size()
		if n < size {
			break
		}
		frame, _ := gc.Peek(size)
		err = c.onFrame(h, frame[h.Len:])
		_, _ = gc.Discard(size)
		if err != nil {
			c.cause = err
		}
	}
	if c.cause != nil {
		_, _ = gc.Discard(gc.InboundBuffered())
		if len(l.out) > 0 {
			_, _ = gc.Write(l.out)
		}
		return gnet.Close
	}
	c.flush(l.out)
	if !c.gone {
		c.notifyWritable()
	}
	return gnet.None
}

// nopLogger silences gnet: its messages are for servers, and a load
// generator's stderr carries the progress lines.
type nopLogger struct{}

func (nopLogger) Debugf(string, ...any) {}
func (nopLogger) Infof(string, ...any)  {}
func (nopLogger) Warnf(string, ...any)  {}
func (nopLogger) Errorf(string, ...any) {}
func (nopLogger) Fatalf(string, ...any) {}

// closedError wraps ErrClosed with the cause of the close.
func closedError(cause error) error {
	if cause == nil || errors.Is(cause, ErrClosed) {
		return ErrClosed
	}
	return fmt.Errorf("%w: %w", ErrClosed, cause)
}
