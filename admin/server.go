package admin

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"
	"github.com/shoalmq/shoal/bridge"
	"github.com/shoalmq/shoal/broker"
)

// Config configures a Server.
type Config struct {
	// Listen is the address of the HTTP listener ("127.0.0.1:8083").
	Listen string
	// Token, when set, is the bearer token the /api/ endpoints require. It
	// may be empty only on a loopback address (CheckConfig).
	Token string
	// Logger receives the server's log lines.
	Logger zerolog.Logger
}

// CheckConfig reports a configuration that would expose the API: a
// listener on a non-loopback address without a token.
func CheckConfig(listen, token string) error {
	if listen == "" || token != "" {
		return nil
	}
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(host); host == "localhost" || (ip != nil && ip.IsLoopback()) {
		return nil
	}
	return errors.New("admin_token must be set when admin_listen is not a loopback address")
}

// Server is the admin HTTP listener. Its methods are safe for concurrent
// use.
type Server struct {
	b       *broker.Broker
	cfg     Config
	token   atomic.Pointer[string] // cfg.Token, or what SetToken gave since
	serving atomic.Bool            // Serve has run
	http    *http.Server
	ln      net.Listener
	done    chan error
}

// New builds a server for b; Start listens.
func New(b *broker.Broker, cfg Config) (*Server, error) {
	if err := CheckConfig(cfg.Listen, cfg.Token); err != nil {
		return nil, err
	}
	s := &Server{b: b, cfg: cfg, done: make(chan error, 1)}
	s.token.Store(&cfg.Token)
	reg := prometheus.NewRegistry()
	reg.MustRegister(newCollector(b), collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /readyz", s.ready)
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /dashboard", dashboard)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/dashboard", http.StatusFound)
	})
	api := func(pattern string, h func(http.ResponseWriter, *http.Request)) {
		mux.HandleFunc(pattern, s.authorized(h))
	}
	api("GET /api/stats", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, b.Stats()) })
	api("GET /api/clients", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, b.Clients()) })
	api("GET /api/clients/{id}", func(w http.ResponseWriter, r *http.Request) {
		ci, ok := b.Client(r.PathValue("id"))
		if !ok {
			writeError(w, http.StatusNotFound, "no such client")
			return
		}
		writeJSON(w, http.StatusOK, ci)
	})
	api("DELETE /api/clients/{id}", func(w http.ResponseWriter, r *http.Request) {
		if !b.Kick(r.PathValue("id")) {
			writeError(w, http.StatusNotFound, "no such client connected")
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	api("GET /api/bridges", func(w http.ResponseWriter, _ *http.Request) {
		st := b.Bridges()
		if st == nil {
			st = []bridge.Stats{}
		}
		writeJSON(w, http.StatusOK, st)
	})
	api("GET /api/subscriptions", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, b.Subscriptions()) })
	api("GET /api/retained", func(w http.ResponseWriter, r *http.Request) {
		filter := r.URL.Query().Get("filter")
		if filter == "" {
			filter = "#"
		}
		writeJSON(w, http.StatusOK, b.RetainedMessages(filter))
	})
	api("DELETE /api/retained/{topic...}", func(w http.ResponseWriter, r *http.Request) {
		if !b.DeleteRetained(r.PathValue("topic")) {
			writeError(w, http.StatusNotFound, "no retained message on that topic")
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	s.http = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: nil}
	return s, nil
}

// Start is Listen, then Serve.
func (s *Server) Start() error {
	if err := s.Listen(); err != nil {
		return err
	}
	s.Serve()
	return nil
}

// Listen binds the listener without serving yet: a program binds every
// port before it reports any as listening. Close closes it, served or not.
func (s *Server) Listen() error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return err
	}
	s.ln = ln
	return nil
}

// Serve serves on the listener Listen bound, in the background.
func (s *Server) Serve() {
	s.serving.Store(true)
	go func() { s.done <- s.http.Serve(s.ln) }()
	s.cfg.Logger.Info().Str("addr", s.ln.Addr().String()).Msg("admin API listening")
}

// SetToken replaces the bearer token the /api/ endpoints require (SIGHUP:
// a leaked token is rotated without a restart). token may be empty only on
// a loopback listener (CheckConfig); requests in flight finish with the
// token they were checked against.
func (s *Server) SetToken(token string) error {
	if err := CheckConfig(s.cfg.Listen, token); err != nil {
		return err
	}
	s.token.Store(&token)
	return nil
}

// Addr is the listener's address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Close stops the server, letting requests in progress finish until ctx
// ends.
func (s *Server) Close(ctx context.Context) error {
	if s.ln == nil {
		return nil
	}
	if !s.serving.Load() {
		return s.ln.Close()
	}
	err := s.http.Shutdown(ctx)
	if serr := <-s.done; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}

// ready answers 200 once the broker accepts MQTT connections.
func (s *Server) ready(w http.ResponseWriter, _ *http.Request) {
	if !s.b.Ready() {
		writeError(w, http.StatusServiceUnavailable, "not ready")
		return
	}
	_, _ = w.Write([]byte("ready\n"))
}

// authorized wraps an /api/ handler with the bearer-token check, against
// the token as of the request (SetToken).
func (s *Server) authorized(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		token := *s.token.Load()
		if token == "" {
			h(w, r) // loopback only: CheckConfig
			return
		}
		got := []byte(r.Header.Get("Authorization"))
		if subtle.ConstantTimeCompare(got, []byte("Bearer "+token)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="shoal"`)
			writeError(w, http.StatusUnauthorized, "a valid bearer token is required")
			return
		}
		h(w, r)
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": strings.TrimSpace(msg)})
}
