package admin

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
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
	// Token, when set, is the bearer token that /api/ and /dashboard
	// require (auth.go: a browser logs in once and keeps a cookie). It may
	// be empty only on a loopback address (CheckConfig).
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

// Server is the admin HTTP listener and the dashboard's history sampler.
// Start and Close are called once each, in that order, by the goroutine
// that owns the server; its handlers run on net/http's goroutines.
type Server struct {
	b       *broker.Broker
	cfg     Config
	creds   atomic.Pointer[credentials] // cfg.Token's, or what SetToken gave since (auth.go)
	serving atomic.Bool                 // Serve has run
	http    *http.Server
	ln      net.Listener
	done    chan error

	hist *history
	// ticks, when set before Start (SetHistoryTicks, in tests), replaces
	// the sampler's ticker: a sample is taken at each time received.
	ticks    <-chan time.Time
	stop     chan struct{} // closed by Close: the sampler returns
	sampling sync.WaitGroup

	closeOnce sync.Once
	closeErr  error // the first Close's, returned by every later one
}

// New builds a server for b; Start listens.
func New(b *broker.Broker, cfg Config) (*Server, error) {
	if err := CheckConfig(cfg.Listen, cfg.Token); err != nil {
		return nil, err
	}
	s := &Server{b: b, cfg: cfg, done: make(chan error, 1), hist: newHistory(historyLen), stop: make(chan struct{})}
	s.creds.Store(newCredentials(cfg.Token))
	reg := prometheus.NewRegistry()
	reg.MustRegister(newCollector(b), collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /readyz", s.ready)
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /dashboard", s.page(s.dashboard))
	mux.HandleFunc("GET /static/uplot.min.js", asset("text/javascript; charset=utf-8", uplotJS))
	mux.HandleFunc("GET /static/uplot.min.css", asset("text/css; charset=utf-8", uplotCSS))
	mux.HandleFunc("GET /static/uplot.LICENSE", asset("text/plain; charset=utf-8", uplotLicense))
	mux.HandleFunc("POST /login", s.login)
	mux.HandleFunc("POST /logout", s.logout)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/dashboard", http.StatusFound)
	})
	api := func(pattern string, h func(http.ResponseWriter, *http.Request)) {
		mux.HandleFunc(pattern, s.authorized(h))
	}
	api("GET /api/stats", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, b.Stats()) })
	api("GET /api/history", s.history)
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
	api("GET /api/cluster", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, b.ClusterStatus(r.Context()))
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

// Start listens, unless Listen did, then serves (Serve).
func (s *Server) Start() error {
	if s.ln == nil {
		if err := s.Listen(); err != nil {
			return err
		}
	}
	s.Serve()
	return nil
}

// Listen binds the listener without serving it: a program binds every port
// before it reports any as listening (and, started as root, binds here,
// gives up root, then serves once the broker has started). Optional: Start
// listens when Listen was not called. Close closes it, served or not. Call
// Listen, Start or Serve, and Close from one goroutine.
func (s *Server) Listen() error {
	if s.ln != nil {
		return errors.New("admin: already listening")
	}
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return err
	}
	s.ln = ln
	return nil
}

// Serve serves on the listener Listen bound, in the background, and
// starts sampling the broker's figures for the dashboard's history.
func (s *Server) Serve() {
	s.serving.Store(true)
	go func() { s.done <- s.http.Serve(s.ln) }()
	s.sampling.Add(1)
	go s.sample()
	s.cfg.Logger.Info().Str("addr", s.ln.Addr().String()).Msg("admin API listening")
}

// SetToken replaces the bearer token the API and the dashboard require
// (SIGHUP: a leaked token is rotated without a restart); the session
// cookies made for the old one stop working. token may be empty only on a
// loopback listener (CheckConfig); requests in flight finish with the
// token they were checked against.
func (s *Server) SetToken(token string) error {
	if err := CheckConfig(s.cfg.Listen, token); err != nil {
		return err
	}
	s.creds.Store(newCredentials(token))
	return nil
}

// Addr is the listener's address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Close stops the sampler and waits for it, then stops the server,
// letting requests in progress finish until ctx ends. Calls after the
// first do nothing and return its error.
func (s *Server) Close(ctx context.Context) error {
	s.closeOnce.Do(func() { s.closeErr = s.close(ctx) })
	return s.closeErr
}

func (s *Server) close(ctx context.Context) error {
	if s.ln == nil {
		return nil
	}
	if !s.serving.Load() {
		return s.ln.Close()
	}
	close(s.stop)
	s.sampling.Wait()
	err := s.http.Shutdown(ctx)
	if serr := <-s.done; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}

// sample records the broker's figures in the history every
// historyInterval, the first time at once, until Close. It is the history's
// only writer.
func (s *Server) sample() {
	defer s.sampling.Done()
	ticks := s.ticks
	if ticks == nil {
		t := time.NewTicker(historyInterval)
		defer t.Stop()
		ticks = t.C
		st := s.b.Stats()
		s.hist.record(time.Now(), &st)
	}
	for {
		select {
		case <-s.stop:
			return
		case now := <-ticks:
			st := s.b.Stats()
			s.hist.record(now, &st)
		}
	}
}

// history serves the samples of the last historyWindow, or with
// ?since=MS only those taken after Unix millisecond MS: the dashboard asks
// for everything once, then for what is new.
func (s *Server) history(w http.ResponseWriter, r *http.Request) {
	var after int64 = math.MinInt64
	if v := r.URL.Query().Get("since"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			writeError(w, http.StatusBadRequest, "since: not a Unix time in milliseconds")
			return
		}
		after = n
	}
	samples := s.hist.since(after, nil) // usually one sample: the page asks every interval
	version, started := s.hist.meta()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(appendHistoryJSON(make([]byte, 0, 512+len(samples)*numSeries*8), version, started, samples))
}

// ready answers 200 once the broker accepts MQTT connections.
func (s *Server) ready(w http.ResponseWriter, _ *http.Request) {
	if ok, why := s.b.Readiness(); !ok {
		writeError(w, http.StatusServiceUnavailable, "not ready: "+why)
		return
	}
	_, _ = w.Write([]byte("ready\n"))
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
