package eventloop

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"
)

// Origin describes a connection that reached the broker through a
// goroutine-per-connection transport (TLS, WebSocket) and was handed to a
// loop with Engine.Enroll. A plain TCP connection has none. It is set
// before Handler.OnOpen and never changes, so any goroutine that holds the
// Conn may read it.
type Origin struct {
	// Listener names the transport: "tls", "ws" or "wss".
	Listener string
	// Remote is the client's address on that transport; Conn.RemoteAddr
	// returns it instead of the socketpair's unnamed end.
	Remote net.Addr
	// CertIdentity is the identity taken from a client certificate whose
	// chain the TLS handshake verified (transport.Config.Identity); "" when
	// there is none.
	CertIdentity string
	// Internal marks a connection the embedding program made to its own
	// broker (broker.Broker.DialInternal, for bridges): no network peer,
	// so the broker admits it without credentials.
	Internal bool
}

// ErrStopping is returned by Enroll once Stop has begun.
var ErrStopping = errors.New("eventloop: engine is stopping")

// Pump buffers. Broker to client: 32 KiB, taken from a pool only while
// bytes wait in the socketpair (the wait itself needs no buffer). Client
// to broker: a TLS or WebSocket reader cannot say "readable" without
// being given a buffer to fill, so each connection keeps a small one to
// block on, enough for the packets of an idle device (a PINGREQ, a sensor
// reading), and borrows a 16 KiB one — one TLS record, the most
// tls.Conn.Read returns at once — while reads keep filling what they are
// given. Measured, RSS per idle TLS connection over 2,000: 40 KB with a
// 16 KiB buffer each, 29 KB this way (TCP: 1.4 KB).
const (
	inboundIdle = 512
	inboundBusy = 16 << 10
	outboundBuf = 32 << 10
)

var (
	inboundPool  = sync.Pool{New: func() any { b := make([]byte, inboundBusy); return &b }}
	outboundPool = sync.Pool{New: func() any { b := make([]byte, outboundBuf); return &b }}
)

// enrolled is the value Enroll passes through gnet's connection context to
// OnOpen.
type enrolled struct {
	origin *Origin
	pump   *pump
}

// Enroll hands nc, an established plaintext byte stream that a
// goroutine-per-connection transport produced (a *tls.Conn after its
// handshake, a WebSocket connection as a net.Conn), to a loop, where it is
// framed and handled exactly like a TCP connection; o (not nil) says where
// it came from.
//
// The loop cannot poll nc itself: crypto/tls and WebSocket framing need a
// blocking net.Conn, and gnet polls file descriptors. So Enroll creates an
// AF_UNIX socketpair, registers one end with gnet, and starts two
// goroutines that copy bytes between nc and the other end. Either side
// ending ends both: the broker closing the connection closes nc (after
// what it wrote has been copied, or Config.DrainGrace), and nc failing or
// closing closes the loop's end, so the Handler sees OnClose. The cost per
// connection is 3 file descriptors (nc's socket and the socketpair) and 2
// goroutines, against 1 and 0 for plain TCP; in memory, 2,000 idle
// connections measured 29 KB of RSS each over TLS, 28 KB over WebSocket,
// 1.4 KB over TCP.
//
// Enroll returns once the loop has run OnOpen, or with an error, in which
// case the caller still owns nc and must close it. Safe for concurrent
// use; call it only between Start and Stop.
func (e *Engine) Enroll(nc net.Conn, o *Origin) error {
	if o == nil {
		return errors.New("eventloop: Enroll without an Origin")
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("eventloop: socketpair: %w", err)
	}
	// gnet picks the loop by hashing the peer address of the socket it
	// is given (see Engine.Start); a socketpair has none, so the pump's
	// end asks the kernel for a unique one (Linux autobind: an empty
	// abstract name). Nothing can connect to it: it does not listen.
	if err := unix.Bind(fds[1], &unix.SockaddrUnix{}); err != nil {
		_ = unix.Close(fds[0])
		_ = unix.Close(fds[1])
		return fmt.Errorf("eventloop: socketpair: bind: %w", err)
	}
	loopEnd, err := fdConn(fds[0], "loop")
	if err != nil {
		_ = unix.Close(fds[1])
		return err
	}
	pumpEnd, err := fdConn(fds[1], "pump")
	if err != nil {
		_ = loopEnd.Close()
		return err
	}
	p := &pump{nc: nc, uc: pumpEnd, grace: e.cfg.DrainGrace}

	e.mu.Lock()
	if e.stopping {
		e.mu.Unlock()
		_ = loopEnd.Close()
		_ = pumpEnd.Close()
		return ErrStopping
	}
	// Counted now, under mu, so that Stop's Wait cannot begin before it.
	e.pumps.Add(2)
	e.mu.Unlock()
	started := false
	defer func() {
		if !started {
			e.pumps.Add(-2)
			_ = pumpEnd.Close()
		}
	}()

	// gnet dups loopEnd's descriptor and closes loopEnd itself.
	ctx := gnet.NewNetConnContext(gnet.NewContext(context.Background(), &enrolled{origin: o, pump: p}), loopEnd)
	res, err := e.eng.Register(ctx)
	if err != nil {
		_ = loopEnd.Close()
		return fmt.Errorf("eventloop: register: %w", err)
	}
	select {
	case r, ok := <-res:
		if !ok {
			return errors.New("eventloop: register: no result")
		}
		if r.Err != nil {
			return fmt.Errorf("eventloop: register: %w", r.Err)
		}
	case <-e.stopCh:
		// The loop may end before it takes the registration; the
		// socketpair end gnet duplicated then goes with the process.
		return ErrStopping
	}
	started = true
	go p.inbound(&e.pumps)
	go p.outbound(&e.pumps)
	return nil
}

// fdConn turns a socket descriptor into a net.Conn, closing fd (the
// net.Conn holds a duplicate).
func fdConn(fd int, name string) (net.Conn, error) {
	f := os.NewFile(uintptr(fd), "socketpair-"+name)
	c, err := net.FileConn(f)
	_ = f.Close()
	if err != nil {
		return nil, fmt.Errorf("eventloop: socketpair %s end: %w", name, err)
	}
	return c, nil
}

// pump copies bytes between a transport's connection and the socketpair
// end the loop does not own. Its two goroutines (inbound, outbound) are
// counted in Engine.pumps; the loop reaches it only through brokerClosed.
type pump struct {
	nc    net.Conn // the client's stream: *tls.Conn, WebSocket NetConn
	uc    net.Conn // our end of the socketpair
	grace time.Duration
	once  sync.Once
	peek  [1]byte // outbound's, for waitReadable
}

// close closes both ends, once; the other goroutine's blocked call then
// fails and it ends too.
func (p *pump) close() {
	p.once.Do(func() {
		_ = p.uc.Close()
		_ = p.nc.Close()
	})
}

// brokerClosed is called on the loop when its side of the connection has
// closed (OnClose, or OnOpen refusing it). The outbound goroutine normally
// sees the end itself, after copying what the broker wrote last; but it
// may be blocked writing to a client that does not read, and the inbound
// one reading from a client that sends nothing. The deadline bounds both
// by the drain grace, as for a TCP connection. Safe on any goroutine; it
// does not block.
func (p *pump) brokerClosed() {
	_ = p.nc.SetDeadline(time.Now().Add(p.grace))
}

// inbound copies client bytes to the loop.
func (p *pump) inbound(wg *sync.WaitGroup) {
	defer wg.Done()
	defer p.close()
	idle := make([]byte, inboundIdle)
	buf, busy := idle, (*[]byte)(nil)
	defer func() {
		if busy != nil {
			inboundPool.Put(busy)
		}
	}()
	for {
		n, err := p.nc.Read(buf)
		if n > 0 {
			if _, werr := p.uc.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
		switch {
		case n == len(buf) && busy == nil: // more is likely waiting
			busy = inboundPool.Get().(*[]byte)
			buf = *busy
		case n < len(buf) && busy != nil: // caught up: the next read may block
			inboundPool.Put(busy)
			buf, busy = idle, nil
		}
	}
}

// outbound copies the loop's bytes to the client, holding a buffer only
// while there are bytes to copy. When the loop shuts down its write side
// (a graceful Conn.Close) it passes that on to a stream that can (TLS:
// close_notify) and leaves the connection to inbound, which ends it when
// the client closes its side or the deadline set here passes.
func (p *pump) outbound(wg *sync.WaitGroup) {
	defer wg.Done()
	halfClosed := false
	defer func() {
		if !halfClosed {
			p.close()
		}
	}()
	sc, ok := p.uc.(syscall.Conn)
	if !ok {
		return
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return
	}
	for {
		if err := p.waitReadable(rc); err != nil {
			return
		}
		bp := outboundPool.Get().(*[]byte)
		n, err := p.uc.Read(*bp)
		if n > 0 {
			_, err = p.nc.Write((*bp)[:n])
		}
		outboundPool.Put(bp)
		if err == io.EOF {
			halfClosed = p.closeWrite()
		}
		if err != nil {
			return
		}
	}
}

// closeWrite shuts down the client stream's write side, if it has one,
// and bounds the rest of the connection's life by the drain grace.
func (p *pump) closeWrite() bool {
	cw, ok := p.nc.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil {
		return false
	}
	_ = p.nc.SetDeadline(time.Now().Add(p.grace))
	return true
}

// waitReadable blocks until the socketpair end has bytes to read, or has
// reached its end or failed, without reading anything: it peeks at one
// byte, and only when there is none yet parks in the runtime's poller.
func (p *pump) waitReadable(rc syscall.RawConn) error {
	return rc.Read(func(fd uintptr) bool {
		_, _, err := unix.Recvfrom(int(fd), p.peek[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		return err != unix.EAGAIN
	})
}
