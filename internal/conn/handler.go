package conn

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/shoalmq/shoal/auth"
	"github.com/shoalmq/shoal/codec"
	"github.com/shoalmq/shoal/eventloop"
	"github.com/shoalmq/shoal/internal/admit"
	"github.com/shoalmq/shoal/internal/counters"
	"github.com/shoalmq/shoal/internal/dispatch"
	"github.com/shoalmq/shoal/internal/expiry"
	"github.com/shoalmq/shoal/internal/limit"
	"github.com/shoalmq/shoal/internal/persist"
	"github.com/shoalmq/shoal/internal/retained"
	"github.com/shoalmq/shoal/router"
	"github.com/shoalmq/shoal/session"
)

// Config are the settings the connections apply that do not change while
// the broker runs; package broker copies them from its Config, where each
// is documented with its config-file key.
type Config struct {
	MaxQoS               byte
	RetainAvailable      bool
	ReceiveMaximum       uint16
	TopicAliasMaximum    uint16
	OutboundTopicAliases uint16
	MaxPacketSize        int
	MaxMessageSize       int
	ResponseInformation  string
	AssignClientIDs      bool
	AssignedIDPrefix     string
	LogConnections       bool
	AuthQueue            int           // logins waiting for the login pool
	AuthMethods          []auth.Method // MQTT 5 enhanced authentication
}

// Parts are what the connections work with, built by package broker.
type Parts struct {
	// Log and Limits are the logger and the limits in force, as Reload
	// swaps them.
	Log    *atomic.Pointer[zerolog.Logger]
	Limits *atomic.Pointer[limit.Limits]
	// Access says who may connect and what they may do (SetAccess swaps
	// it on reload).
	Access admit.Access

	Sessions session.Store
	Subs     router.Subscriptions
	Retained router.Retained
	Dispatch *dispatch.Dispatcher
	Persist  *persist.Keeper
	// PersistLoops are the loops' parts in persistence, by loop index: the
	// same the dispatcher has.
	PersistLoops []*persist.Loop

	// Expiry ends sessions and keeps the offline ones' deadlines, its
	// clock the time of session expiry and will delays.
	Expiry *expiry.Sessions

	// Owners, when not nil, decides which node of a cluster owns each
	// session: a CONNECT waits for this node's claim (package admit).
	Owners admit.Owners

	// Barrier, when not nil, is what a SUBSCRIBE waits on before it reads
	// the retained messages (a cluster's).
	Barrier retained.Barrier
}

// Handler is the broker's side of every client connection: the event
// loops' eventloop.Handler. Its admission gate runs the login pool
// (RunLogins). Its
// exported methods are safe for concurrent use unless they say otherwise;
// the eventloop.Handler methods run on the loop that owns the connection.
type Handler struct {
	cfg  Config
	log  *atomic.Pointer[zerolog.Logger]
	limp *atomic.Pointer[limit.Limits]
	// gate decides who may connect and what they may do (package admit).
	gate *admit.Gate
	// open counts open client connections, for MaxConnections.
	open atomic.Int64
	// connRate limits connections per source address.
	connRate limit.PerAddr
	// clientID counts assigned client identifiers.
	clientID atomic.Uint64

	engine   *eventloop.Engine
	disp     *dispatch.Dispatcher
	persist  *persist.Keeper
	subs     router.Subscriptions
	retained router.Retained
	barrier  retained.Barrier // nil: reads need no wait
	sessions session.Store

	loops []*loopState // indexed by eventloop.Loop.Index

	// expiry ends sessions and runs the offline ones' deadlines: the
	// connection's will waits there for its delay.
	expiry *expiry.Sessions

	stats counters.Conns
}

// New builds the Handler of the broker's connections, with one loop's
// state per entry of p.PersistLoops. Call SetEngine before the engine
// starts.
func New(cfg Config, p Parts) *Handler {
	h := &Handler{
		cfg:      cfg,
		log:      p.Log,
		limp:     p.Limits,
		disp:     p.Dispatch,
		persist:  p.Persist,
		subs:     p.Subs,
		retained: p.Retained,
		barrier:  p.Barrier,
		sessions: p.Sessions,
		expiry:   p.Expiry,
	}
	h.gate = admit.NewGate(p.Access, cfg.AuthMethods, cfg.AuthQueue, p.Limits, &h.stats, p.Owners)
	h.loops = make([]*loopState, len(p.PersistLoops))
	for i := range h.loops {
		h.loops[i] = &loopState{d: h.disp.Loop(i), persist: p.PersistLoops[i],
			life: limit.Lines{Rate: lifecycleRate, Burst: lifecycleBurst}}
	}
	return h
}

// SetEngine gives the handler the engine whose connections it handles.
// Call it once, before the engine starts.
func (h *Handler) SetEngine(e *eventloop.Engine) { h.engine = e }

// SetAccess makes a the rules for connections from now on (Reload);
// connected clients keep what they were granted.
func (h *Handler) SetAccess(a admit.Access) { h.gate.SetAccess(a) }

// RunLogins runs one worker of the login pool until ctx ends
// (admit.Gate.RunLogins). Safe for concurrent use: each worker is a
// goroutine running it.
func (h *Handler) RunLogins(ctx context.Context) { h.gate.RunLogins(ctx) }

// Counters are the connections' counters.
func (h *Handler) Counters() *counters.Conns { return &h.stats }

// LoopCounters are loop i's counters.
func (h *Handler) LoopCounters(i int) *counters.Loop { return &h.loops[i].ctr }

// lg is the broker's logger as of now.
func (h *Handler) lg() *zerolog.Logger { return h.log.Load() }

// limits are the Limits as of now.
func (h *Handler) limits() *limit.Limits { return h.limp.Load() }

// Shutdown is the broker closing: every connected client is told 0x8B
// (MQTT 5) and closed, without its will. It returns when every loop has
// done so, or when ctx ends.
func (h *Handler) Shutdown(ctx context.Context) error {
	return h.engine.OnEach(ctx, func(c *eventloop.Conn) {
		if cl, _ := c.Data.(*client); cl != nil {
			cl.shutdown()
		}
	})
}

// Retire closes every client connection but the embedding program's own,
// on a node cut off from its cluster's majority (MQTT 5: DISCONNECT 0x9C,
// use another server), and waits, within ctx, until the last has left its
// session.
func (h *Handler) Retire(ctx context.Context) error {
	err := h.engine.OnEach(ctx, func(c *eventloop.Conn) {
		if cl, _ := c.Data.(*client); cl != nil {
			cl.retire()
		}
	})
	if err != nil {
		return err
	}
	for h.attachedClients() > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	return nil
}

// Resume sends what the sessions of the connected clients queued while
// the node did not serve (cluster.Health): their deliveries waited in the
// queue (drainQueueLocked), and a client with nothing in flight sends no
// PUBACK that would drain it.
func (h *Handler) Resume(ctx context.Context) error {
	return h.engine.OnEach(ctx, func(c *eventloop.Conn) {
		cl, _ := c.Data.(*client)
		if cl == nil || cl.state != stateConnected || cl.sess == nil {
			return
		}
		s := cl.sess
		s.Lock()
		if cl.ownsLocked() {
			cl.drainQueueLocked(h.loops[cl.LoopIndex()], c.Loop().Now())
		}
		s.Unlock()
	})
}

// refusalHeadroom is how many connections past MaxConnections are still
// accepted, to be told CONNACK 0x97 rather than cut without a word; past
// it a new connection is closed at accept, so a flood cannot use up the
// file descriptors the refusals need.
const refusalHeadroom = 1024

// overConnections reports whether a CONNECT must be refused because the
// broker already holds MaxConnections connections (this one included),
// counting those closed but still lingering (eventloop.Conn.Close): they
// hold descriptors too.
func (h *Handler) overConnections(lim *limit.Limits) bool {
	return h.open.Load()+h.engine.Lingering() > int64(lim.MaxConnections)
}

// OnOpen implements eventloop.Handler.
func (h *Handler) OnOpen(c *eventloop.Conn) error {
	n := h.open.Add(1) + h.engine.Lingering()
	if lim := h.limits(); n > int64(lim.MaxConnections)+refusalHeadroom {
		// Far over the limit: not even a refusal is worth a socket.
		h.open.Add(-1)
		h.stats.ConnsRejected.Add(1)
		if ev := h.lifecycle(h.loops[c.Loop().Index()], c.Loop().Now()); ev != nil {
			ev.Str("client", "").Str("remote", c.RemoteAddr().String()).
				Str("reason", fmt.Sprintf("max_connections (%d) and the %d refusals past it in use: closed at accept",
					lim.MaxConnections, refusalHeadroom)).
				Bool("connack", false).Msg("connection refused")
		}
		return errTooManyConns
	}
	c.Data = &client{h: h, conn: c, lastRecv: c.Loop().Now()}
	return nil
}

// OnFrame implements eventloop.Handler: one packet from the client.
func (h *Handler) OnFrame(ec *eventloop.Conn, hd codec.Header, body []byte) error {
	c := ec.Data.(*client)
	if c.waitingLogin() {
		return eventloop.ErrPause // until the verdict; not a sign of life
	}
	c.lastRecv = ec.Loop().Now()
	if ec.Backlog() > maxReplyBacklog {
		// A client that keeps sending but never reads would grow its output
		// without end (QoS 0 deliveries are dropped sooner, at
		// slowClientBytes; replies are not).
		c.fail(0, errOutputBacklog)
		return errOutputBacklog
	}
	err := c.handle(hd, body)
	h.loops[ec.Loop().Index()].d.FlushReleases()
	if err != nil && err != eventloop.ErrPause {
		c.fail(hd.Type, err)
	}
	return err
}

// OnFrameError implements eventloop.Handler.
func (h *Handler) OnFrameError(ec *eventloop.Conn, err error) {
	ec.Data.(*client).fail(0, err)
}

// OnClose implements eventloop.Handler.
func (h *Handler) OnClose(ec *eventloop.Conn, err error) {
	c := ec.Data.(*client)
	h.open.Add(-1)
	c.closed()
}

// OnWake implements eventloop.Handler: deliveries and commands from router
// workers and other loops.
func (h *Handler) OnWake(l *eventloop.Loop) {
	h.disp.Drain(l)
}

// BeforeFlush implements eventloop.Flusher: the store learns what the
// loop did before the clients hear about it, and the output may be held
// for the rest of the poll so that one sync covers it all (package
// persist, Keeper.BeforeFlush).
//
// A syncing commit that comes back unvouched (store.ErrUnvouched: the
// node was frozen or cut off from its cluster while it waited) drops the
// output of the clients that waited for it, and closes their connections
// (client.unvouched); one unvouched for some sessions only (held by
// another node by now), the output of those sessions' clients.
func (h *Handler) BeforeFlush(l *eventloop.Loop, mayHold bool) (hold bool) {
	ls := h.loops[l.Index()]
	ls.ctr.Publish()
	h.disp.FlushFan(ls.d)
	if h.persist.BeforeFlush(ls.persist, l.Now(), mayHold) {
		return true // the commit is to come: syncing waits for it
	}
	all, some := ls.persist.Unvouched()
	if len(ls.syncing) == 0 {
		return false
	}
	syncing := ls.syncing
	if all || len(some) > 0 {
		for _, c := range syncing {
			if all || c.sess != nil && slices.Contains(some, c.sess.ClientID()) {
				c.unvouched()
			}
		}
	}
	clear(syncing)
	ls.syncing = syncing[:0]
	return false
}

// OnTick implements eventloop.Handler: timers of the loop's connections.
func (h *Handler) OnTick(l *eventloop.Loop, now time.Time) {
	h.reportSuppressed(h.loops[l.Index()])
	ns := now.UnixNano()
	l.Each(func(ec *eventloop.Conn) { // a tick may close connections (keep-alive)
		if c, _ := ec.Data.(*client); c != nil {
			c.tick(h, ns)
		}
	})
}

// maxReplyBacklog bounds the unsent output of a connection that is still
// sending: 16 MiB, four times the point where QoS 0 deliveries to it stop.
const maxReplyBacklog = 16 << 20

// OnDrained implements eventloop.Drainer: a connection whose cursors
// waited for its output to go down may send more.
func (h *Handler) OnDrained(ec *eventloop.Conn) {
	c, _ := ec.Data.(*client)
	if c == nil || c.ext == nil {
		return
	}
	c.ext.retained.Watching = false
	if c.hasRetained() {
		c.pumpRetained(h.loops[ec.Loop().Index()])
	}
}
