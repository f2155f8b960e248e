package broker

import (
	"context"
	"errors"
	"net"
	"time"

	"github.com/shoalmq/shoal/transport"
)

// The TLS, WebSocket and secure WebSocket listeners (package transport)
// run beside the reactor: each connection's handshake runs on a goroutine
// of the transport.Server, and its plaintext is then enrolled into an
// event loop (eventloop.Engine.Enroll), so the broker handles it like any
// TCP connection. Start starts them after the engine, Close stops them
// before the engine, so no connection is enrolled into a stopped engine.

// startTransports starts Config.Transports' listeners. On error it stops
// what Start started before it — engine, background goroutines, store —
// and returns the error, which names the config-file key at fault.
func (b *Broker) startTransports() error {
	tc := b.cfg.Transports
	if tc.HandshakeTimeout == 0 {
		// A client has connect_timeout from accept to CONNECT on TCP; a
		// TLS or WebSocket client gets as long again for its handshake.
		tc.HandshakeTimeout = b.cfg.ConnectTimeout
	}
	s, err := transport.Start(tc, b.engine.Enroll, b.cfg.Logger)
	if err != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		stopErr := b.engine.Stop(ctx)
		b.stopBackground()
		if stopErr != nil {
			return errors.Join(err, stopErr)
		}
		return errors.Join(err, b.closeStore())
	}
	b.transports.Store(s)
	return nil
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
