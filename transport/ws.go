package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	stdlog "log"
	"net"
	"net/http"
	"time"

	"github.com/coder/websocket"
	"github.com/shoalmq/shoal/eventloop"
)

// MQTT over WebSocket (MQTT 5 section 6, the same in 3.1.1):
//
//   - [MQTT-6.0.0-1] MQTT packets travel in binary frames; any other data
//     frame closes the connection. websocket.NetConn with MessageBinary
//     does so, closing with status 1003 (unsupported data).
//   - [MQTT-6.0.0-2] Frames need not align with packets. NetConn is a
//     byte stream, and the reactor frames it as it frames TCP.
//   - [MQTT-6.0.0-3] The client offers the subprotocol "mqtt".
//     [MQTT-6.0.0-4] The server selects "mqtt". "mqttv3.1", which MQTT 3.1
//     clients offered, is selected when it is all a client offers. A
//     client offering neither is still served, without a subprotocol, as
//     mosquitto and most brokers do: what it sends must be MQTT anyway.
//
// Message size: NetConn streams each message through the pump without
// buffering it whole, so it turns the library's read limit off; the
// reactor enforces max_packet_size on the packets themselves, whatever
// the messages that carry them.

// subprotocols are the WebSocket subprotocols selected, in preference.
var subprotocols = []string{"mqtt", "mqttv3.1"}

// maxUpgradeHeader bounds an upgrade request's header: browsers send a
// few hundred bytes plus cookies for the host.
const maxUpgradeHeader = 16 << 10

// connKey carries a request's net.Conn in its context (ConnContext).
type connKey struct{}

// serveHTTP runs an http.Server for ws_listen or wss_listen on ln on a
// goroutine of the Server.
func (s *Server) serveHTTP(name string, ln *gatedListener) {
	h := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.upgrade(name, w, r) }),
		// Bounds the request header and, on wss, the TLS handshake
		// (net/http uses it for both).
		ReadHeaderTimeout: s.cfg.handshakeTimeout(),
		MaxHeaderBytes:    maxUpgradeHeader,
		ConnState: func(c net.Conn, st http.ConnState) {
			if st == http.StateHijacked || st == http.StateClosed {
				s.release(c)
			}
		},
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, connKey{}, c)
		},
		ErrorLog: stdlog.New(logWriter(func(msg string) { s.httpMessage(name, msg) }), "", 0),
		BaseContext: func(net.Listener) context.Context {
			return s.ctx
		},
	}
	// One request per connection: an upgrade, or a 404 and goodbye. An
	// idle keep-alive connection would hold a gate slot for nothing.
	h.SetKeepAlivesEnabled(false)
	s.https = append(s.https, h)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := h.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			s.log.Error().Err(err).Str("listener", name).Msg("listener failed")
		}
	}()
}

// upgrade serves one HTTP request: at Config.WSPath (any path for "*"),
// the WebSocket upgrade and the hand-over to the reactor; elsewhere 404.
func (s *Server) upgrade(name string, w http.ResponseWriter, r *http.Request) {
	if s.cfg.WSPath != AnyPath && r.URL.Path != s.cfg.WSPath {
		s.failed(name, r.RemoteAddr, fmt.Sprintf("path %q is not ws_path (%s)", clip(r.URL.Path), s.cfg.WSPath), "WebSocket upgrade failed")
		http.NotFound(w, r)
		return
	}
	if !s.begin() {
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	defer s.wg.Done()
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		Subprotocols: subprotocols,
		// Browsers may connect from any page: MQTT authenticates in
		// CONNECT, not with the cookies that make cross-site
		// WebSocket requests dangerous to other services.
		InsecureSkipVerify: true,
		// Compression would cost each connection a flate state (tens of
		// KiB) for payloads that are mostly small or already compact.
		CompressionMode: websocket.CompressionDisabled,
	})
	if err != nil {
		s.failed(name, r.RemoteAddr, err.Error(), "WebSocket upgrade failed")
		return // Accept wrote the response
	}
	raw, _ := r.Context().Value(connKey{}).(net.Conn)
	var remote net.Addr
	if raw != nil {
		remote = raw.RemoteAddr()
		// Whatever deadline net/http left on the connection must not
		// cut the MQTT session; keep-alive is the broker's business now.
		_ = raw.SetDeadline(time.Time{})
	}
	o := &eventloop.Origin{Listener: name, Remote: remote}
	if r.TLS != nil {
		o.CertIdentity = s.identity(*r.TLS)
	}
	// The connection outlives this request: its context is not r's
	// (cancelled when the handler returns), and the reactor ends it.
	nc := websocket.NetConn(context.Background(), ws, websocket.MessageBinary)
	if err := s.enroll(nc, o); err != nil {
		s.log.Debug().Err(err).Str("listener", name).Msg("enroll failed")
		_ = ws.Close(websocket.StatusTryAgainLater, "server unavailable")
	}
}

// gatedListener admits HTTP connections through the Server's gate; on wss
// it wraps each in TLS, which net/http then completes under
// ReadHeaderTimeout. The slot is given back when the connection is
// hijacked (upgraded) or closed (ConnState).
type gatedListener struct {
	net.Listener
	s   *Server
	tls *tls.Config // nil for ws
}

// Accept implements net.Listener.
func (l *gatedListener) Accept() (net.Conn, error) {
	c, err := l.s.gate.accept(l.s.ctx, l.Listener)
	if err != nil {
		return nil, err
	}
	if l.tls != nil {
		c = tls.Server(c, l.tls)
	}
	if !l.s.hold(c) {
		l.s.gate.leave()
		_ = c.Close()
		return nil, net.ErrClosed
	}
	return c, nil
}

// hold records that c has a gate slot, and counts it in wg until
// released: net/http's goroutine for it is then waited for by Stop up to
// the upgrade.
func (s *Server) hold(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping {
		return false
	}
	s.held[c] = struct{}{}
	s.wg.Add(1)
	return true
}

// release gives back c's gate slot, if it holds one.
func (s *Server) release(c net.Conn) {
	s.mu.Lock()
	_, ok := s.held[c]
	delete(s.held, c)
	s.mu.Unlock()
	if ok {
		s.gate.leave()
		s.wg.Done()
	}
}

// logWriter is an io.Writer that hands each write, one message, to a func.
type logWriter func(string)

func (f logWriter) Write(p []byte) (int, error) {
	f(string(p))
	return len(p), nil
}
