package broker

import (
	"context"
	"fmt"
	"net"

	"github.com/shoalmq/shoal/transport"
	"golang.org/x/sys/unix"
)

// The TLS, WebSocket and secure WebSocket listeners (package transport)
// run beside the reactor: each connection's handshake runs on a goroutine
// of the transport.Server, and its plaintext is then enrolled into an
// event loop (eventloop.Engine.Enroll), so the broker handles it like any
// TCP connection. Start starts them after the engine, Close stops them
// before the engine, so no connection is enrolled into a stopped engine.

// boundPorts holds the listeners Start binds before it opens the store.
type boundPorts struct {
	// tcp is a socket bound to Listen's address while the store opens.
	// gnet cannot take a bound listener, so this one only reserves the
	// port: bound, not listening, so a client that connects meanwhile is
	// refused rather than queued and then reset. It is closed once the
	// engine listens: a port taken in between fails the start after the
	// store was loaded, which costs a start, never data.
	tcp        int               // descriptor; -1: none
	transports *transport.Server // TLS and WebSocket listeners, bound, not yet served
}

// bindListeners binds every listener of the configuration, or returns an
// error naming the config-file key and the address at fault.
func (b *Broker) bindListeners() (*boundPorts, error) {
	p := &boundPorts{tcp: -1}
	fd, err := reservePort(b.cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen: %s: %w", b.cfg.Listen, err)
	}
	p.tcp = fd
	tc := b.cfg.Transports
	if tc.HandshakeTimeout == 0 {
		// A client has connect_timeout from accept to CONNECT on TCP; a
		// TLS or WebSocket client gets as long again for its handshake.
		tc.HandshakeTimeout = b.cfg.ConnectTimeout
	}
	s, err := transport.Listen(tc, b.cfg.Logger)
	if err != nil {
		p.release()
		return nil, err
	}
	p.transports = s
	return p, nil
}

// releaseTCP lets the TCP port go.
func (p *boundPorts) releaseTCP() {
	if p.tcp >= 0 {
		_ = unix.Close(p.tcp)
		p.tcp = -1
	}
}

// reservePort binds a TCP socket to addr ("host:port") without listening
// on it, with SO_REUSEADDR as gnet's listener has, so that the two may be
// bound at once while neither is a second listener. Port 0 reserves
// nothing: the engine picks its own. It returns the descriptor, or -1.
func reservePort(addr string) (int, error) {
	ta, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		return -1, err
	}
	if ta.Port == 0 {
		return -1, nil
	}
	family, sa := unix.AF_INET6, unix.Sockaddr(nil)
	if ip4 := ta.IP.To4(); ip4 != nil || ta.IP == nil {
		family = unix.AF_INET
		a := &unix.SockaddrInet4{Port: ta.Port}
		copy(a.Addr[:], ip4)
		sa = a
	} else {
		a := &unix.SockaddrInet6{Port: ta.Port}
		copy(a.Addr[:], ta.IP.To16())
		sa = a
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		_ = unix.Close(fd)
		return -1, err
	}
	if err := unix.Bind(fd, sa); err != nil {
		_ = unix.Close(fd)
		return -1, fmt.Errorf("bind: %w", err)
	}
	return fd, nil
}

// release lets every port go (a failed start).
func (p *boundPorts) release() {
	p.releaseTCP()
	if p.transports != nil {
		_ = p.transports.Stop(context.Background()) // nothing served: returns at once
		p.transports = nil
	}
}

// serveTransports starts the bound TLS and WebSocket listeners, enrolling
// their connections into the running engine.
func (b *Broker) serveTransports(s *transport.Server) {
	s.Serve(b.engine.Enroll)
	b.transports.Store(s)
}

// stopTransports closes the transport listeners and waits for handshakes
// under way, within ctx. Failing that it logs: the engine's Stop, with the
// same ctx, then reports the shutdown as unclean.
func (b *Broker) stopTransports(ctx context.Context) {
	if s := b.transports.Load(); s != nil {
		if err := s.Stop(ctx); err != nil {
			b.lg().Error().Err(err).Msg("TLS and WebSocket listeners did not stop in time")
		}
	}
}

// reloadTransports re-reads the certificate files (Broker.Reload, on
// SIGHUP) and applies the client certificate settings to new handshakes.
// It returns the Transports fields that need a restart, named
// "Transports.<field>". Certificates that do not load change nothing.
func (b *Broker) reloadTransports(tc transport.Config) ([]string, error) {
	s := b.transports.Load()
	if s == nil {
		return nil, nil // not started
	}
	if tc.HandshakeTimeout == 0 {
		tc.HandshakeTimeout = b.cfg.ConnectTimeout // as startTransports did
	}
	need, err := s.Reconfigure(tc)
	if err != nil {
		return nil, err
	}
	for i, f := range need {
		need[i] = "Transports." + f
	}
	return need, nil
}

// ListenerAddr is the bound address of a listener: "tcp" (as Addr),
// "tls", "ws" or "wss"; nil when it is not configured or the broker has
// not started. Useful with ":0". Safe for concurrent use.
func (b *Broker) ListenerAddr(name string) net.Addr {
	if name == "tcp" {
		return b.engine.Addr()
	}
	if s := b.transports.Load(); s != nil {
		return s.Addr(name)
	}
	return nil
}
