package broker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"github.com/shoalmq/shoal/auth"
	"github.com/shoalmq/shoal/bridge"
	"github.com/shoalmq/shoal/codec"
	"github.com/shoalmq/shoal/eventloop"
	"github.com/shoalmq/shoal/internal/deadline"
	"github.com/shoalmq/shoal/router"
	"github.com/shoalmq/shoal/session"
	"github.com/shoalmq/shoal/store"
	"github.com/shoalmq/shoal/transport"
)

// Broker is one MQTT broker. Its exported methods are safe for concurrent
// use.
type Broker struct {
	cfg Config
	// logp and limp are what Reload may change while the broker runs;
	// read them through lg and limits.
	logp atomic.Pointer[zerolog.Logger]
	limp atomic.Pointer[Limits]
	// authp is who may connect and what they may do (login.go).
	authp atomic.Pointer[authState]

	// logins are CONNECTs waiting for the Authenticator (login.go).
	logins chan *loginJob
	// open counts open client connections, for MaxConnections.
	open atomic.Int64
	// connRate limits connections per source address (limits.go).
	connRate rateTable

	// transports runs the TLS and WebSocket listeners (transports.go);
	// set by Start.
	transports atomic.Pointer[transport.Server]
	// bridges forward to and from other brokers; set by Start when
	// Config.Bridges has any.
	bridges atomic.Pointer[bridge.Bridges]

	engine   *eventloop.Engine
	subs     router.Subscriptions
	retained router.Retained
	sessions session.Store
	auth     *auth.Registry // enhanced authentication methods

	workers []*worker
	loops   []*loopState // indexed by eventloop.Loop.Index

	// clock is the time of session expiry and will delays (Config.clock,
	// else the system's); timers holds those deadlines, one per offline
	// session that has one, and runs them on its own goroutine (will.go).
	clock  deadline.Clock
	timers *sessionTimers
	// dueWills is the timer goroutine's scratch: wills to publish.
	dueWills []*router.Message

	stats stats

	// routing forces one of the two routing paths (tests run their
	// suites over each; see export_test.go): routeAuto, the default,
	// routes inline below saturation and through the workers under
	// pressure.
	routing atomic.Int32

	// Persistence (persist.go); store is nil when it is off.
	store       store.Store
	ownStore    bool // opened from Config.DataDir: closed with the broker
	strict      bool // Durability == Strict
	seq         atomic.Uint64
	bgMu        sync.Mutex   // guards bgw and storeClosed
	bgw         store.Writer // for goroutines other than loops and workers
	storeClosed bool

	// bound holds the listeners Bind bound until Start serves them (or
	// Close, when Start never comes, lets them go).
	bindMu sync.Mutex
	bound  *boundPorts

	started   atomic.Bool
	startedAt time.Time   // set by Start before anything else runs
	ready     atomic.Bool // accepting connections: Start done, Close not begun
	closed    atomic.Bool
	stop      chan struct{}
	// ctx ends with stop: for work that waits on others (a login's
	// back end).
	ctx       context.Context
	cancelCtx context.CancelFunc
	bgDone    sync.WaitGroup
	clientID  atomic.Uint64 // counter for assigned client identifiers
}

// stats are counters read by tests and, later, by metrics. Each is bumped
// off the per-message path (connects, drops), so a shared atomic is fine.
type stats struct {
	dropsQueueFull    atomic.Int64
	dropsWorkerFull   atomic.Int64
	publishPauses     atomic.Int64
	dropsSlowClient   atomic.Int64
	dropsExpired      atomic.Int64
	dropsTooLarge     atomic.Int64
	protocolFailures  atomic.Int64
	slowConsumerKicks atomic.Int64
	storeCorrupt      atomic.Int64
	dropsUnauthorized atomic.Int64
	connsRejected     atomic.Int64 // closed at accept: far over MaxConnections
	// CONNECTs refused, by cause.
	refusedConnections atomic.Int64 // MaxConnections
	refusedRate        atomic.Int64 // ConnectRate
	refusedClientID    atomic.Int64 // MaxClientIDLength
	refusedLogin       atomic.Int64 // credentials, anonymous, will topic
	refusedLoginBusy   atomic.Int64 // AuthQueue full
	// Refused topics and subscriptions.
	dropsTopicLimit  atomic.Int64 // MaxTopicLength, MaxTopicLevels
	refusedSubs      atomic.Int64 // MaxSubscriptions, limits, Authorizer
	publishThrottled atomic.Int64 // PublishRate paused a client
	// timerVisits counts the sessions the timer goroutine locked: one per
	// deadline that came, none for the sessions still waiting.
	timerVisits atomic.Int64
	// relaxedSyncs times relaxedSyncLoop's syncs (the loops time their
	// own: loopCounters.syncs).
	relaxedSyncs syncHistogram
}

// New builds a broker from cfg. It validates cfg and allocates, but does
// not listen: call Start.
func New(cfg Config) (*Broker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	b := &Broker{
		cfg:      cfg,
		subs:     router.NewTable(0, cfg.SharedStrategy),
		retained: router.NewRetained(),
		sessions: session.NewMemStore(),
		clock:    cfg.clock,
		auth:     auth.NewRegistry(cfg.AuthMethods...),
		stop:     make(chan struct{}),
	}
	if b.clock == nil {
		b.clock = deadline.Real()
	}
	b.timers = deadline.New(b.clock, b.fireTimers)
	b.logp.Store(&cfg.Logger)
	b.limp.Store(cfg.limits())
	b.authp.Store(cfg.authState())
	b.logins = make(chan *loginJob, cfg.AuthQueue)
	b.ctx, b.cancelCtx = context.WithCancel(context.Background())
	n := cfg.loops()
	b.loops = make([]*loopState, n)
	for i := range b.loops {
		ls := &loopState{fan: newFanout(n)}
		ls.room.L = &ls.mu
		b.loops[i] = ls
	}
	b.workers = make([]*worker, cfg.workers())
	for i := range b.workers {
		b.workers[i] = newWorker(b, cfg.WorkerQueue, n)
	}
	b.engine = eventloop.New(eventloop.Config{
		Addr:          cfg.Listen,
		Loops:         n,
		MaxPacketSize: cfg.MaxPacketSize,
		Coalesce:      cfg.Coalesce,
		Nagle:         !cfg.TCPNoDelay,
		Logger:        cfg.Logger,
	}, (*handler)(b))
	return b, nil
}

// Bind binds the listeners without serving them or touching the store:
// the TLS and WebSocket listeners are bound, and the TCP listener's port
// is reserved — bound, not listening — for the event loops, which open it
// in Start beside the reservation (gnet cannot take a bound socket). A
// program started as root calls Bind, gives up root, then calls Start,
// which opens the store as the user it has become; Start's TCP listener
// then needs a port that user may bind. A port in use fails Bind with an
// error naming the config key and address.
//
// Bind is optional: Start binds what Bind has not. Call it at most once,
// before Start. Safe for concurrent use: a Bind racing Start either fails
// or binds for it. If Start never comes, Close lets the ports go.
func (b *Broker) Bind() error {
	b.bindMu.Lock()
	defer b.bindMu.Unlock()
	if b.bound != nil || b.started.Load() {
		return errors.New("broker: Bind after Bind or Start")
	}
	ports, err := b.bindListeners()
	if err != nil {
		return err
	}
	b.bound = ports
	return nil
}

// takeBound hands Start the ports Bind bound, or nil.
func (b *Broker) takeBound() *boundPorts {
	b.bindMu.Lock()
	defer b.bindMu.Unlock()
	p := b.bound
	b.bound = nil
	return p
}

// Start begins accepting connections. It binds the listeners first (unless
// Bind did), then opens the store and loads it, then serves: a port in use
// stops it before the store is touched, and no client is served before
// the state is loaded. It returns once every listener accepts
// connections.
func (b *Broker) Start() error {
	if !b.started.CompareAndSwap(false, true) {
		return errors.New("broker: already started")
	}
	b.startedAt = time.Now()
	b.warnAnonymous()
	ports := b.takeBound()
	if ports == nil {
		var err error
		if ports, err = b.bindListeners(); err != nil {
			return err
		}
	}
	if err := b.openStore(); err != nil {
		ports.release()
		return err
	}
	if err := b.importOnce(); err != nil {
		ports.release()
		return errors.Join(err, b.closeStore())
	}
	if err := b.restore(); err != nil {
		ports.release()
		b.clearTimers() // what restore armed before it failed
		return errors.Join(err, b.closeStore())
	}
	b.makeWriters()
	for _, w := range b.workers {
		b.bgDone.Add(1)
		go func() {
			defer b.bgDone.Done()
			w.run()
		}()
	}
	if b.store != nil && !b.strict {
		b.bgDone.Add(1)
		go func() {
			defer b.bgDone.Done()
			b.relaxedSyncLoop()
		}()
	}
	for range b.cfg.authWorkers() {
		b.bgDone.Add(1)
		go func() {
			defer b.bgDone.Done()
			b.loginWorker()
		}()
	}

	err := b.engine.Start() // binds beside the reserved port (SO_REUSEADDR), then listens
	ports.releaseTCP()
	if err != nil {
		ports.release()
		b.stopBackground()
		return errors.Join(fmt.Errorf("listen: %w", err), b.closeStore())
	}
	b.serveTransports(ports.transports)
	// Deadlines (some restored, perhaps due at once) fire from now on:
	// their wills need the workers and the loops.
	b.bgDone.Add(1)
	go func() {
		defer b.bgDone.Done()
		b.timers.Run(b.stop)
	}()
	if b.cfg.SysInterval > 0 {
		b.bgDone.Add(1)
		go func() {
			defer b.bgDone.Done()
			b.sysLoop()
		}()
	}
	b.ready.Store(true)
	if len(b.cfg.Bridges.Connections) > 0 {
		br, err := bridge.New(b.cfg.Bridges, b, b.cfg.Logger)
		if err == nil {
			err = br.Start()
		}
		if err != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			return errors.Join(fmt.Errorf("bridges: %w", err), b.Close(ctx))
		}
		b.bridges.Store(br)
	}
	return nil
}

// Bridges reports the state of each bridge (Config.Bridges), in
// configuration order; nil when there are none. Safe for concurrent use.
func (b *Broker) Bridges() []bridge.Stats {
	if br := b.bridges.Load(); br != nil {
		return br.Stats()
	}
	return nil
}

// Ready reports whether the broker accepts MQTT connections: Start has
// returned and Close has not begun. Safe for concurrent use.
func (b *Broker) Ready() bool { return b.ready.Load() }

// Addr is the listener's address, useful with Listen ":0".
func (b *Broker) Addr() net.Addr { return b.engine.Addr() }

// Close shuts the broker down: MQTT 5 clients are told 0x8B (server
// shutting down), every connection is closed, and the router drains. Wills
// are not published for connections the broker itself closes on shutdown.
func (b *Broker) Close(ctx context.Context) error {
	if !b.started.Load() {
		if p := b.takeBound(); p != nil {
			p.release() // bound by Bind, never served
		}
		return nil
	}
	if !b.closed.CompareAndSwap(false, true) {
		return nil
	}
	var bridgeErr error
	if br := b.bridges.Load(); br != nil {
		// First, while the broker still takes their last words: each
		// says "0" and leaves its sessions for the next start.
		bridgeErr = br.Close(ctx)
	}
	b.ready.Store(false)
	b.stopTransports(ctx) // no new TLS or WebSocket clients; those connected close below
	_ = b.engine.OnEach(ctx, func(c *eventloop.Conn) {
		if cl, _ := c.Data.(*client); cl != nil {
			cl.shutdown()
		}
	})
	b.engine.WaitLingering(ctx) // clients read their 0x8B before the sockets close
	err := b.engine.Stop(ctx)
	b.stopBackground()
	if err != nil {
		// Loops may still run and use their writers: leave the store as
		// it is; what it has committed is there.
		return errors.Join(bridgeErr, err)
	}
	return errors.Join(bridgeErr, b.closeStore())
}

// stopBackground ends the workers and the timer goroutine, then drops the
// deadlines left: no timer fires after Close, and a will still waiting is
// not published (its stored record is, after a restart). Worker queues
// are never closed: a loop still running (Stop may time out) may submit,
// and a send on a closed channel panics; workers leave on b.stop instead.
func (b *Broker) stopBackground() {
	b.closeInboxes()
	b.cancelCtx()
	close(b.stop)
	b.bgDone.Wait()
	b.clearTimers()
}

// clearTimers drops every deadline, releasing the wills that waited.
func (b *Broker) clearTimers() {
	b.timers.Clear(func(_ *session.Session, pw *pendingWill) {
		if pw != nil {
			pw.msg.Release()
		}
	})
}

// worker picks the router worker for a publisher, by client id, so that
// one client's messages are routed in order.
func (b *Broker) worker(id []byte) *worker {
	h := uint32(2166136261)
	for _, c := range id {
		h ^= uint32(c)
		h *= 16777619
	}
	return b.workers[h%uint32(len(b.workers))]
}

// job is one message for a router worker, with the acknowledgement to send
// its publisher once it is routed (ack nil: none, as for QoS 0 and wills).
// A job without a message carries an acknowledgement alone, queued behind
// the publisher's earlier messages (a resent QoS 2 PUBLISH).
type job struct {
	m     *router.Message
	from  *client // the publishing client, nil for wills: its routing count
	ack   *client
	ackID uint16
	ackT  codec.Type // PUBACK or PUBREC
}

// submit hands j to the router worker of its publisher without blocking.
// On false the worker's queue is full and j was not taken; the caller
// still owns j.m.
func (b *Broker) submit(j job) bool { return b.worker(j.m.FromID).submit(j) }

// relaxedSyncLoop syncs the store once a second, the promise of relaxed
// durability (persist.go). On the system clock: it is about the disk, not
// about MQTT time.
func (b *Broker) relaxedSyncLoop() {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
			start := time.Now()
			if err := b.store.Sync(); err != nil {
				b.commitFailed(err)
			}
			b.stats.relaxedSyncs.observe(time.Since(start))
		}
	}
}

// endSessionLocked removes s and everything it holds, also from the store
// through w (nil: persistence off). s.mu must be held. It returns the
// shared-subscription deliveries s had not completed: pass them to reroute
// once s is unlocked.
func (b *Broker) endSessionLocked(w store.Writer, s *session.Session) []session.Delivery {
	s.EndLocked() // late deliveries (a worker that matched it before) are refused
	orphans := b.clearSessionLocked(w, s)
	b.sessions.Delete(s.ClientID(), s)
	return orphans
}

// clearSessionLocked empties s — subscriptions (also from the router),
// messages both ways — and returns its unfinished shared deliveries, as
// endSessionLocked does.
func (b *Broker) clearSessionLocked(w store.Writer, s *session.Session) []session.Delivery {
	b.deleteSessionLocked(w, s)
	orphans := s.TakeSharedLocked()
	for _, sub := range s.ClearLocked() {
		b.subs.Unsubscribe(s, sub.Filter)
	}
	return orphans
}

// SessionCount is the number of sessions, connected or not.
func (b *Broker) SessionCount() int { return b.sessions.Len() }

// SubscriptionCount is the number of subscriptions in the router.
func (b *Broker) SubscriptionCount() int { return b.subs.Count() }

// RetainedCount is the number of retained messages, $SYS ones included
// (Stats tells them apart).
func (b *Broker) RetainedCount() int {
	user, sys := b.retained.Count()
	return user + sys
}

// Error is a broker policy or protocol error found above the codec (a
// second CONNECT, a full queue, a limit), with the MQTT reason code it is
// answered with. Match it with errors.As. The wire response for any error
// is made in one place, client.closeWith.
type Error struct {
	Code codec.ReasonCode
	Msg  string

	// detail says, in the log only, what Msg (an MQTT 5 client may read it
	// in a Reason String) keeps to itself: the topic, the authenticator's
	// own error. of is the error it details (because).
	detail string
	of     *Error
}

func (e *Error) Error() string { return "broker: " + e.Msg }

// Is reports whether e details target (because): errors.Is(e, errWillDenied).
func (e *Error) Is(target error) bool { return e.of != nil && e.of == target }

// because returns e with a detail for the log (Error.detail). It
// allocates: call it where the connection is refused or closed, never
// per message.
func (e *Error) because(format string, args ...any) *Error {
	return &Error{Code: e.Code, Msg: e.Msg, detail: fmt.Sprintf(format, args...), of: e}
}

// describe gives the reason code and the reason string of an error a
// connection is closed with: a *Error of this package, a *codec.Error (a
// malformed packet) or an *eventloop.Error (the reactor's); anything else
// is Unspecified Error, with no reason string.
func describe(err error) (codec.ReasonCode, string) {
	var be *Error
	var ce *codec.Error
	var ee *eventloop.Error
	switch {
	case errors.As(err, &be):
		return be.Code, be.Msg
	case errors.As(err, &ce):
		return ce.Code, ce.Msg
	case errors.As(err, &ee):
		return ee.Code, ee.Msg
	}
	return codec.UnspecifiedError, ""
}

// codeOf is err's reason code (describe).
func codeOf(err error) codec.ReasonCode {
	code, _ := describe(err)
	return code
}
