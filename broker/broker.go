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

	"github.com/shoalmq/shoal/bridge"
	"github.com/shoalmq/shoal/eventloop"
	"github.com/shoalmq/shoal/internal/cluster"
	"github.com/shoalmq/shoal/internal/conn"
	"github.com/shoalmq/shoal/internal/deadline"
	"github.com/shoalmq/shoal/internal/dispatch"
	"github.com/shoalmq/shoal/internal/expiry"
	"github.com/shoalmq/shoal/internal/handoff"
	"github.com/shoalmq/shoal/internal/limit"
	"github.com/shoalmq/shoal/internal/persist"
	"github.com/shoalmq/shoal/internal/reason"
	"github.com/shoalmq/shoal/internal/replica"
	"github.com/shoalmq/shoal/router"
	"github.com/shoalmq/shoal/session"
	"github.com/shoalmq/shoal/transport"
)

// Broker is one MQTT broker. Its exported methods are safe for concurrent
// use. It builds every part from Config and hands each what it needs (see
// doc.go for the picture); what it keeps itself is the lifecycle, the
// listeners, the store's opening and the public API.
type Broker struct {
	cfg Config
	// logp and limp are what Reload may change while the broker runs,
	// shared with the parts; read them through lg and limits.
	logp atomic.Pointer[zerolog.Logger]
	limp atomic.Pointer[limit.Limits]

	// transports runs the TLS and WebSocket listeners (transports.go);
	// set by Start.
	transports atomic.Pointer[transport.Server]
	// bridges forward to and from other brokers; set by Start when
	// Config.Bridges has any.
	bridges atomic.Pointer[bridge.Bridges]

	engine   *eventloop.Engine
	conns    *conn.Handler        // the connections: the engine's handler
	disp     *dispatch.Dispatcher // routing: inboxes, workers, fan-out
	subs     router.Subscriptions
	retained router.Retained
	sessions session.Store

	// clock is the time of session expiry and will delays (Config.clock,
	// else the system's); expiry ends sessions and runs those deadlines.
	clock  deadline.Clock
	expiry *expiry.Sessions

	// cluster is this broker's node of its cluster and owners the
	// session owners' bucket on it; both nil without Config.Cluster. Set
	// by Start before it serves, closed by Close after the listeners.
	cluster *cluster.Node
	owners  *cluster.Owners
	// In a cluster the subscription table and the retained messages are
	// the cluster's (built by New, joined to the node by Start), and
	// peers carries messages between the nodes (set by Start).
	clusterTable    *cluster.Table
	clusterRetained *cluster.Retained
	clusterSessions *cluster.Sessions // decides where each session is
	clusterWills    *cluster.Wills    // delayed wills, published once cluster-wide
	peers           *cluster.Peers
	// replicas copies the persistent sessions into the cluster's state
	// (set by Start, with persistence on): the store the writers write.
	replicas *replica.Store
	// rescuer rescues the nodes that are gone (set by Start, with
	// replicas).
	rescuer *cluster.Rescuer
	// health says whether this node serves: it does not while cut off
	// from its cluster's majority (set by Start).
	health *cluster.Health
	// handoff moves this node's sessions to and from the others (set by
	// Start).
	handoff *handoff.Sessions
	// ownerCounts is the last count of sessions by owner node
	// (cluster_status.go).
	ownerCounts ownerCounts

	// Persistence (package persist, opened by persist.go); ploops are the
	// loops' parts in it, by loop index.
	persist  *persist.Keeper
	ploops   []*persist.Loop
	ownStore bool // opened from Config.DataDir: closed with the broker

	// bound holds the listeners Bind bound until Start serves them (or
	// Close, when Start never comes, lets them go).
	bindMu sync.Mutex
	bound  *boundPorts

	started   atomic.Bool
	startedAt time.Time   // set by Start before anything else runs
	ready     atomic.Bool // accepting connections: Start done, Close not begun
	closed    atomic.Bool // Close has begun (expiry.Parts.Closing)
	stop      chan struct{}
	// ctx ends with stop: for work that waits on others (a login's
	// back end).
	ctx       context.Context
	cancelCtx context.CancelFunc
	bgDone    sync.WaitGroup
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
		stop:     make(chan struct{}),
	}
	if b.clock == nil {
		b.clock = deadline.Real()
	}
	if cfg.Cluster != nil {
		b.clusterTable = cluster.NewTable(router.NewTable(0, cfg.SharedStrategy))
		b.clusterRetained = cluster.NewRetained()
		b.clusterSessions = cluster.NewSessions()
		b.clusterWills = cluster.NewWills()
		b.subs, b.retained = b.clusterTable, b.clusterRetained
	}
	b.logp.Store(&cfg.Logger)
	b.limp.Store(cfg.limits())
	b.ctx, b.cancelCtx = context.WithCancel(context.Background())
	b.persist = persist.New(&b.logp)
	n := cfg.loops()
	b.ploops = make([]*persist.Loop, n)
	for i := range b.ploops {
		b.ploops[i] = &persist.Loop{}
	}
	dc := dispatch.Config{Loops: n, Workers: cfg.workers(), WorkerQueue: cfg.WorkerQueue,
		Subs: b.subs, Retained: b.retained, Persist: b.persist, Limits: &b.limp,
		RetainedBlocks: cfg.Cluster != nil}
	if b.clusterSessions != nil {
		dc.Once = b.clusterSessions // sessions move between nodes
	}
	b.disp = dispatch.New(dc)
	xp := expiry.Parts{Clock: b.clock, Sessions: b.sessions, Subs: b.subs,
		Persist: b.persist, Dispatch: b.disp, Closing: &b.closed}
	if b.clusterWills != nil {
		xp.Wills = b.clusterWills // not a nil *Wills in the interface
	}
	b.expiry = expiry.New(xp)
	parts := conn.Parts{
		Log: &b.logp, Limits: &b.limp, Access: cfg.access(),
		Sessions: b.sessions, Subs: b.subs, Retained: b.retained,
		Dispatch: b.disp, Persist: b.persist, PersistLoops: b.ploops,
		Expiry: b.expiry,
	}
	if b.clusterRetained != nil {
		parts.Barrier = b.clusterRetained // read-your-write from any node
		parts.Owners = b.clusterSessions  // a CONNECT claims its session for this node
	}
	b.conns = conn.New(cfg.connConfig(), parts)
	b.engine = eventloop.New(eventloop.Config{
		Addr:          cfg.Listen,
		Loops:         n,
		MaxPacketSize: cfg.MaxPacketSize,
		Coalesce:      cfg.Coalesce,
		Nagle:         !cfg.TCPNoDelay,
		Logger:        cfg.Logger,
	}, b.conns)
	b.disp.SetEngine(b.engine)
	b.conns.SetEngine(b.engine)
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
// Bind did), then opens the store and loads it, then joins the cluster
// (Config.Cluster: the node started, its session owners' bucket open,
// within 30s), then serves: a port in use stops it before the store is
// touched, and no client is served before the state is loaded and the
// node is in its cluster. It returns once every listener accepts
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
		b.expiry.Clear() // what restore armed before it failed
		return errors.Join(err, b.closeStore())
	}
	// After restore: a salvage there renames data_dir, which the
	// cluster's JetStream state is in.
	if err := b.startCluster(); err != nil {
		ports.release()
		b.expiry.Clear()
		return errors.Join(err, b.closeStore())
	}
	b.makeWriters()
	for _, w := range b.disp.Workers() {
		b.bgDone.Add(1)
		go func() {
			defer b.bgDone.Done()
			w.Run(b.stop)
		}()
	}
	if err := b.startRouting(); err != nil {
		ports.release()
		b.expiry.Clear()
		b.stopBackground()
		b.closeCluster()
		return errors.Join(err, b.closeStore())
	}
	if b.persist.On() && !b.persist.Strict() {
		b.bgDone.Add(1)
		go func() {
			defer b.bgDone.Done()
			b.persist.RunRelaxedSync(b.stop)
		}()
	}
	for range b.cfg.authWorkers() {
		b.bgDone.Add(1)
		go func() {
			defer b.bgDone.Done()
			b.conns.RunLogins(b.ctx)
		}()
	}

	err := b.engine.Start() // binds beside the reserved port (SO_REUSEADDR), then listens
	ports.releaseTCP()
	if err != nil {
		ports.release()
		b.stopBackground()
		b.closeCluster()
		return errors.Join(fmt.Errorf("listen: %w", err), b.closeStore())
	}
	b.serveTransports(ports.transports)
	// Deadlines (some restored, perhaps due at once) fire from now on:
	// their wills need the workers and the loops.
	b.bgDone.Add(1)
	go func() {
		defer b.bgDone.Done()
		b.expiry.Run(b.stop)
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
// returned, Close has not begun, and the node is not cut off from its
// cluster's majority (Readiness). Safe for concurrent use.
func (b *Broker) Ready() bool {
	ok, _ := b.Readiness()
	return ok
}

// Readiness is Ready, and why not when not. Safe for concurrent use.
func (b *Broker) Readiness() (ready bool, why string) {
	switch {
	case !b.ready.Load():
		return false, "not started, or stopping"
	case b.health != nil && b.health.CutOff():
		return false, "cut off from the cluster's majority: new connections and QoS 1 and 2 messages are refused"
	}
	return true, ""
}

// Addr is the listener's address, useful with Listen ":0".
func (b *Broker) Addr() net.Addr { return b.engine.Addr() }

// Close shuts the broker down: MQTT 5 clients are told 0x8B (server
// shutting down), every connection is closed, the router drains, and the
// broker leaves its cluster. Wills are not published for connections the
// broker itself closes on shutdown.
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
	_ = b.conns.Shutdown(ctx)
	b.engine.WaitLingering(ctx) // clients read their 0x8B before the sockets close
	err := b.engine.Stop(ctx)
	b.stopBackground()
	b.closeCluster() // after the listeners and the workers: nothing routes through it any more
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
	b.disp.CloseInboxes()
	b.cancelCtx()
	close(b.stop)
	b.bgDone.Wait()
	b.expiry.Clear()
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
// answered with; its text starts "broker: ". Match it with errors.As. The
// connections make them and turn each into its wire response in one place
// (package conn; the type is declared in internal/reason: an alias keeps
// it the same type here).
type Error = reason.Error
