package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"github.com/shoalmq/shoal/eventloop"
)

// Listener names, as in eventloop.Origin.Listener and Server.Addr.
const (
	ListenerTLS = "tls"
	ListenerWS  = "ws"
	ListenerWSS = "wss"
)

// EnrollFunc hands an established plaintext stream to the broker's
// reactor; eventloop.Engine.Enroll is one. On error the caller closes c.
type EnrollFunc func(c net.Conn, o *eventloop.Origin) error

// Server runs the TLS and WebSocket listeners of a Config. Its methods are
// safe for concurrent use.
type Server struct {
	cfg    Config
	enroll EnrollFunc
	log    zerolog.Logger
	fails  failLog // failed handshakes (failures.go)
	certs  certs
	gate   gate

	addrs map[string]net.Addr     // by listener name; fixed after Listen
	lns   map[string]net.Listener // bound by Listen, not yet served; closed by Stop
	raw   []net.Listener          // tls_listen's; closed by Stop
	https []*http.Server          // ws_listen's and wss_listen's
	held  map[net.Conn]struct{}   // HTTP connections holding a gate slot; guarded by mu
	ctx   context.Context         // cancelled by Stop: ends handshakes under way
	stopF context.CancelFunc

	reloadMu sync.Mutex // serialises Reload and Reconfigure
	mu       sync.Mutex // guards stopping and held
	stopping bool
	wg       sync.WaitGroup // every goroutine of the Server, and HTTP connections before upgrade
	stopOnce sync.Once
}

// Start is Listen, then Serve with enroll.
func Start(cfg Config, enroll EnrollFunc, log zerolog.Logger) (*Server, error) {
	s, err := Listen(cfg, log)
	if err != nil {
		return nil, err
	}
	s.Serve(enroll)
	return s, nil
}

// Listen validates cfg, reads the certificates (when a TLS listener is
// configured) and binds every configured listener, but accepts nothing
// until Serve: a broker binds its ports before it opens its store, so that
// a port in use costs nothing. With no listener configured it returns a
// Server that does nothing. Errors name the config-file key at fault.
// Stop closes what Listen bound, Serve or not.
func Listen(cfg Config, log zerolog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: log, addrs: map[string]net.Addr{},
		held: map[net.Conn]struct{}{}, lns: map[string]net.Listener{}}
	s.fails.log = log
	s.gate.slots = make(chan struct{}, cfg.MaxHandshakes)
	s.ctx, s.stopF = context.WithCancel(context.Background())
	if cfg.UsesTLS() {
		m, err := s.certs.load(filesOf(&cfg))
		if err != nil {
			return nil, err
		}
		s.logCert("certificate loaded", m)
	}
	for _, l := range []struct{ name, key, addr string }{
		{ListenerTLS, "tls_listen", cfg.TLSListen},
		{ListenerWS, "ws_listen", cfg.WSListen},
		{ListenerWSS, "wss_listen", cfg.WSSListen},
	} {
		if l.addr == "" {
			continue
		}
		ln, err := net.Listen("tcp", l.addr)
		if err != nil {
			for _, o := range s.lns {
				_ = o.Close()
			}
			return nil, fmt.Errorf("%s: %w", l.key, err)
		}
		s.lns[l.name] = ln
		s.addrs[l.name] = ln.Addr()
	}
	return s, nil
}

// Serve starts accepting on the listeners Listen bound; connections that
// complete their handshake go to enroll. Call it once, before Stop.
func (s *Server) Serve(enroll EnrollFunc) {
	s.enroll = enroll
	lns := s.lns
	s.lns = nil
	if ln := lns[ListenerTLS]; ln != nil {
		s.raw = append(s.raw, ln)
		s.wg.Add(1)
		go s.acceptTLS(ln)
	}
	if ln := lns[ListenerWS]; ln != nil {
		s.serveHTTP(ListenerWS, &gatedListener{Listener: ln, s: s})
	}
	if ln := lns[ListenerWSS]; ln != nil {
		s.serveHTTP(ListenerWSS, &gatedListener{Listener: ln, s: s, tls: s.certs.serverConfig(true)})
	}
	for name, a := range s.addrs {
		s.log.Info().Str("listener", name).Str("addr", a.String()).Msg("listening")
	}
	if len(lns) > 0 {
		s.wg.Add(1)
		go s.reportFailures()
	}
}

// Addr is the bound address of listener "tls", "ws" or "wss"; nil when it
// is not configured. Useful with ":0".
func (s *Server) Addr(listener string) net.Addr { return s.addrs[listener] }

// Reload reads the certificate, key and client CA files again. New
// handshakes use them; established connections keep what they
// negotiated. On error the certificates in use stay and the error names
// the config-file key of the file at fault.
func (s *Server) Reload() error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	if !s.cfg.UsesTLS() {
		return nil
	}
	m, err := s.certs.load(s.certs.cur.Load().files)
	if err != nil {
		return err
	}
	s.logCert("certificate reloaded", m)
	return nil
}

// Reconfigure applies cfg's reloadable settings — the certificate, key and
// client CA files, tls_client_certs and tls_identity — and reads the
// files as Reload does. It returns the names of the Config fields whose
// change needs a restart: the listen addresses, the WebSocket path and
// the handshake limits. A cfg that does not validate, or whose files do
// not load, changes nothing.
func (s *Server) Reconfigure(cfg Config) (needRestart []string, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	for _, f := range []struct {
		name     string
		old, new any
	}{
		{"TLSListen", s.cfg.TLSListen, cfg.TLSListen},
		{"WSListen", s.cfg.WSListen, cfg.WSListen},
		{"WSSListen", s.cfg.WSSListen, cfg.WSSListen},
		{"WSPath", s.cfg.WSPath, cfg.WSPath},
		{"HandshakeTimeout", s.cfg.HandshakeTimeout, cfg.HandshakeTimeout},
		{"MaxHandshakes", s.cfg.MaxHandshakes, cfg.MaxHandshakes},
	} {
		if f.old != f.new {
			needRestart = append(needRestart, f.name)
		}
	}
	if !s.cfg.UsesTLS() {
		return needRestart, nil // no running listener uses certificates
	}
	m, err := s.certs.load(filesOf(&cfg))
	if err != nil {
		return nil, err
	}
	s.logCert("certificate reloaded", m)
	return needRestart, nil
}

// Stop closes the listeners, ends handshakes and upgrades under way, and
// waits for the Server's goroutines, or for ctx to expire. Connections
// already enrolled are the reactor's: they stay until it closes them.
// Calls after the first wait for the same end.
func (s *Server) Stop(ctx context.Context) error {
	s.stopOnce.Do(func() {
		s.mu.Lock()
		s.stopping = true
		s.mu.Unlock()
		s.stopF()
		for _, ln := range s.lns { // Listen without Serve
			_ = ln.Close()
		}
		for _, ln := range s.raw {
			_ = ln.Close()
		}
		for _, h := range s.https {
			// Close, not Shutdown: every connection net/http still
			// tracks is before its upgrade, and waiting would only let
			// it finish a handshake that nothing will enroll.
			_ = h.Close()
		}
	})
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		s.fails.report() // every handshake is over: the count is final
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("transport: stop: %w", ctx.Err())
	}
}

// begin counts a goroutine of the Server's unless Stop has begun, so that
// Stop's Wait never races an Add.
func (s *Server) begin() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping {
		return false
	}
	s.wg.Add(1)
	return true
}

// acceptTLS accepts tls_listen's connections while gate slots are free
// and runs each handshake on its own goroutine.
func (s *Server) acceptTLS(ln net.Listener) {
	defer s.wg.Done()
	conf := s.certs.serverConfig(false)
	for {
		c, err := s.gate.accept(s.ctx, ln)
		if err != nil {
			if s.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			s.acceptFailed(ListenerTLS, err)
			continue
		}
		if !s.begin() {
			s.gate.leave()
			_ = c.Close()
			return
		}
		go func() {
			defer s.wg.Done()
			s.handshakeTLS(tls.Server(c, conf))
		}()
	}
}

// handshakeTLS completes a tls_listen handshake within the timeout, then
// enrolls the connection. It holds a gate slot until then.
func (s *Server) handshakeTLS(tc *tls.Conn) {
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.handshakeTimeout())
	err := tc.HandshakeContext(ctx)
	cancel()
	s.gate.leave()
	if err != nil {
		s.tlsFailed(ctx, ListenerTLS, tc.RemoteAddr(), err)
		_ = tc.Close()
		return
	}
	o := &eventloop.Origin{Listener: ListenerTLS, Remote: tc.RemoteAddr(), CertIdentity: s.identity(tc.ConnectionState())}
	if err := s.enroll(tc, o); err != nil {
		s.log.Debug().Err(err).Str("listener", ListenerTLS).Msg("enroll failed")
		_ = tc.Close()
	}
}

// identity is the verified client certificate's identity by the current
// tls_identity.
func (s *Server) identity(st tls.ConnectionState) string {
	m := s.certs.cur.Load()
	if m == nil {
		return ""
	}
	return identity(st, m.identity)
}

// acceptFailed logs an accept error that is not the listener closing
// (EMFILE, ENFILE, ECONNABORTED) and pauses, so that a process out of
// descriptors does not spin.
func (s *Server) acceptFailed(listener string, err error) {
	s.log.Warn().Err(err).Str("listener", listener).Msg("accept failed; retrying in 100ms")
	select {
	case <-time.After(100 * time.Millisecond):
	case <-s.ctx.Done():
	}
}

func (s *Server) logCert(msg string, m *material) {
	subject, serial, notAfter := describe(m)
	ev := s.log.Info()
	if time.Now().After(notAfter) {
		ev = s.log.Warn().Bool("expired", true)
	}
	ev.Str("subject", subject).Str("serial", serial).Time("not_after", notAfter).
		Str("client_certs", m.clientCerts.String()).Msg(msg)
}

// gate bounds the connections between accept and enrolment (TLS
// handshake, WebSocket upgrade) to Config.MaxHandshakes: a connection is
// accepted only when a slot is free, and gives it back once enrolled or
// gone.
type gate struct {
	slots chan struct{}
}

// accept waits for a connection on ln, then for a free slot for it:
// while every slot is taken, the next connection waits in the kernel's
// backlog (and this one in the acceptor), costing nothing more.
func (g *gate) accept(ctx context.Context, ln net.Listener) (net.Conn, error) {
	c, err := ln.Accept()
	if err != nil {
		return nil, err
	}
	select {
	case g.slots <- struct{}{}:
		return c, nil
	case <-ctx.Done():
		_ = c.Close()
		return nil, net.ErrClosed
	}
}

// leave gives a slot back.
func (g *gate) leave() { <-g.slots }
