package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// Failed handshakes — a TLS handshake that does not complete, a
// WebSocket upgrade refused — are one client's problem but an operator's
// clue: a device without its certificate, a CA that does not match, an
// MQTT client on the TLS port, a browser on the wrong path. They are
// logged at info level with the listener, the remote address and the
// error, rate-limited over all listeners so that a scan or a flood cannot
// fill the log: a burst of failBurst lines, then failRate a second. What
// is held back is counted and reported with the next line written (field
// "suppressed"), or in a warning within failReport, and at Stop.
//
// A connection closed before it sent a byte (io.EOF: a load balancer's
// TCP health check, a port scan) is not a handshake that failed; it is
// logged at debug level only, as are handshakes cut short by Stop.
const (
	failBurst  = 20
	failRate   = 5 // lines a second
	failReport = time.Second
)

// failLog is the rate limiter of failed-handshake lines. Safe for
// concurrent use: handshakes fail on their own goroutines.
type failLog struct {
	log        zerolog.Logger
	mu         sync.Mutex // guards the fields below
	tokens     float64
	last       time.Time // of the last refill; zero: never used
	suppressed int       // lines held back since the last report
}

// event returns an info event for one failure line at now, carrying the
// count of lines held back before it; nil when the line is not logged
// (level above info, or over the rate: then it is counted).
func (f *failLog) event(now time.Time) *zerolog.Event {
	if !f.log.Info().Enabled() {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.last.IsZero() {
		f.tokens = failBurst
	} else {
		f.tokens = min(failBurst, f.tokens+now.Sub(f.last).Seconds()*failRate)
	}
	f.last = now
	if f.tokens < 1 {
		f.suppressed++
		return nil
	}
	f.tokens--
	ev := f.log.Info()
	if f.suppressed > 0 {
		ev.Int("suppressed", f.suppressed)
		f.suppressed = 0
	}
	return ev
}

// report logs how many lines were held back since the last report, if
// any.
func (f *failLog) report() {
	f.mu.Lock()
	n := f.suppressed
	f.suppressed = 0
	f.mu.Unlock()
	if n > 0 {
		f.log.Warn().Int("lines", n).Msg("failed handshakes not logged: over the rate limit")
	}
}

// reportFailures reports the held-back lines every failReport until Stop.
// A goroutine of the Server's (wg).
func (s *Server) reportFailures() {
	defer s.wg.Done()
	t := time.NewTicker(failReport)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return // Stop reports the rest once every handshake is over
		case <-t.C:
			s.fails.report()
		}
	}
}

// tlsFailed logs a TLS handshake on listener that did not complete. ctx
// is the handshake's: its deadline is handshake_timeout.
func (s *Server) tlsFailed(ctx context.Context, listener string, remote net.Addr, err error) {
	var what string
	switch {
	case s.ctx.Err() != nil || errors.Is(err, io.EOF):
		if e := s.log.Debug(); e.Enabled() {
			e.Err(err).Str("listener", listener).Stringer("remote", remote).Msg("TLS handshake not completed")
		}
		return
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		what = fmt.Sprintf("no handshake within handshake_timeout (%v)", s.cfg.handshakeTimeout())
	default:
		what = err.Error()
	}
	s.failed(listener, remote.String(), what, "TLS handshake failed")
}

// failed writes one failed-handshake line, if the rate allows.
func (s *Server) failed(listener, remote, err, msg string) {
	if ev := s.fails.event(time.Now()); ev != nil {
		ev.Str("listener", listener).Str("remote", remote).Str("error", err).Msg(msg)
	}
}

// httpTLSPrefix starts net/http's line for a failed TLS handshake on a
// wss connection: "http: TLS handshake error from ADDR: ERROR".
const httpTLSPrefix = "http: TLS handshake error from "

// httpMessage takes one of net/http's own log lines for listener: a
// failed TLS handshake is logged as tls_listen's are, anything else (bad
// requests) at debug level.
func (s *Server) httpMessage(listener, msg string) {
	msg = strings.TrimSpace(msg)
	if rest, ok := strings.CutPrefix(msg, httpTLSPrefix); ok && s.ctx.Err() == nil {
		remote, err, _ := strings.Cut(rest, ": ") // an address holds no ": "
		if err == "EOF" {
			msg = "TLS handshake not completed: " + rest
		} else {
			s.failed(listener, remote, err, "TLS handshake failed")
			return
		}
	}
	if e := s.log.Debug(); e.Enabled() {
		e.Str("listener", listener).Msg(msg)
	}
}

// clip cuts what a client chose (a request path) to 256 bytes for a log
// line.
func clip(s string) string {
	if len(s) <= 256 {
		return s
	}
	return fmt.Sprintf("%s... (%d bytes)", s[:256], len(s))
}
