package dispatch

import (
	"sync/atomic"

	"github.com/shoalmq/shoal/codec"
	"github.com/shoalmq/shoal/eventloop"
	"github.com/shoalmq/shoal/internal/limit"
	"github.com/shoalmq/shoal/internal/persist"
	"github.com/shoalmq/shoal/router"
	"github.com/shoalmq/shoal/session"
)

// Conn is a client connection as dispatch sees it: the owner of a session
// (session.Owner: which loop it belongs to, and delivering to it),
// implemented by package conn.
// Dispatch calls its methods only on that loop's goroutine.
type Conn interface {
	session.Owner // LoopIndex and DeliverLocked
	// Acknowledge writes the acknowledgement (PUBACK or PUBREC) of a
	// message the connection published, now that it is routed, if the
	// connection is still there; with sync, the message left something
	// in the store, and the acknowledgement waits for the loop's syncing
	// commit (persist.Loop.NeedSync).
	Acknowledge(t codec.Type, id uint16, sync bool)
	// NotStored tells the connection that a message it published (the
	// acknowledgement it awaits: t, id) could not be stored as the
	// cluster's durability contract asks (Receipt): it must not be
	// acknowledged as taken.
	NotStored(t codec.Type, id uint16)
	// Notify hands the connection a note posted for it (Dispatcher.Notify),
	// in order with the deliveries posted to its loop.
	Notify(n Note)
}

// Note is a message for a connection that dispatch carries in its loop's
// inbox without reading it: package conn gives the values their meaning
// (a takeover, an administrator's kick, a login's verdict). 0 is no note.
type Note uint8

// Peer is another node of a cluster as this node's subscription table
// holds it: a subscriber that stands for the other node's sessions, once
// for every distinct filter they have there and once for every member
// they have in a shared group. A single node has none.
//
// The fan-out hands a message to each matching Peer once, whatever the
// number of its filters that match (the table merges them as for a
// session), after picking the member of each shared group among the
// members of every node; a message that came from a Peer (Job.Local) is
// routed to this node's sessions only. Forward is called by whoever routes
// the message (a router worker or the publisher's loop) in each
// publisher's order, must not block for long (it may wait while the
// cluster holds as many unconfirmed messages as it allows), and must copy
// what it keeps of m.
//
// A message the other node must not lose (QoS 1 or 2) comes with a
// Receipt: the publisher's PUBACK or PUBREC waits for it, so that what a
// publisher was told is taken is stored with the cluster's replication
// whichever node its subscribers are on. A worker waits for its batch's
// receipts before it posts the batch's acknowledgements (one round trip
// per batch, not per message); a loop that routed such a message itself
// waits for it and sends the publisher through the workers from then on.
type Peer interface {
	router.Subscriber
	// Forward sends m to the node the Peer stands for, for the member of
	// mt.Group when mt.Shared, else for every matching session there. It
	// returns nil when there is nothing to wait for (QoS 0, or m not sent
	// at all: expired).
	Forward(m *router.Message, mt *router.Match) Receipt
}

// Mover stands, in this node's table, for a session that moved to another
// node lately (package cluster's handover): every message its
// subscriptions match — from this node's publishers or another node's —
// goes on to the session's new node, which the other nodes may not know
// of yet. PassOn returns nil when there is nothing to wait for (QoS 0).
type Mover interface {
	router.Subscriber
	PassOn(m *router.Message, mt *router.Match) Receipt
}

// Receipt is a forwarded message's confirmation that the cluster stored
// it. Wait blocks until it did (nil), could not (the error), or stop
// closes. Every receipt must be waited for: a Peer may gather messages
// and send them only then (one receipt can stand for several messages,
// and be waited for by several goroutines).
type Receipt interface {
	Wait(stop <-chan struct{}) error
}

// Acker is the stream's hold on a message another node sent: Ack lets it
// go once the message is routed here and what it left in persistent
// sessions is on disk. Not acknowledged (this node stopped first), the
// stream sends it again.
type Acker interface {
	Ack() error
}

// Job is one message for a router worker, with the acknowledgement to send
// its publisher once it is routed (Ack nil: none, as for QoS 0 and wills).
// A Job without a message carries an acknowledgement alone, queued behind
// the publisher's earlier messages (a resent QoS 2 PUBLISH).
type Job struct {
	Msg     *router.Message
	From    *Publisher // the publisher's routing state; nil for wills and $SYS
	Ack     Conn
	AckID   uint16
	AckType codec.Type // PUBACK or PUBREC
	// Local routes Msg to this node's sessions only: it came from a Peer.
	Local bool
	// Group, with Local, is the shared group ("$share/g/f") whose member
	// on this node another node picked for Msg: Msg goes to one of this
	// node's members of that group and to nobody else.
	Group string
	// To, with Local, is the client id of the one session Msg is for: a
	// session that moved here, to which the node it left passes on what
	// still came for it there (a handover, package cluster).
	To string
	// Done, with Local, is the cluster stream's hold on Msg, acknowledged
	// once Msg is routed and stored here (Acker).
	Done Acker
	// Receipts, on a Job without a message, are those of a message its
	// publisher's loop routed itself: its acknowledgement waits for them
	// in the worker, as it would have had the worker routed it.
	Receipts []Receipt
	// Routed, if set, is told on the worker goroutine, once Msg is
	// routed and the cluster's stream has answered for every node it
	// went to, whether the stream failed to take it for any (failed): a
	// message no publisher sends again, a will, is sent again by its
	// sender. It must not block.
	Routed func(failed bool)
}

// Publisher is the routing state of one publishing connection, part of
// it: whether its next message may be routed inline (see doc.go, "Two
// paths, one order"). Its loop's goroutine reads it and raises its count;
// router workers lower the count.
type Publisher struct {
	// routing counts the publisher's messages handed to a router worker
	// and not yet posted to the loops: while it is 0 the loop may route
	// the next one itself without overtaking them.
	routing atomic.Int32
	// viaWorkers is set once a message the loop routed itself had to be
	// stored: the client publishes to persistent sessions, and its
	// messages go through the workers from then on, whose larger batches
	// share a disk sync among more messages than one loop poll does (make
	// bench persist q1-disk-sat, 2 rounds each: 232k msg/s inline, 265k
	// through the workers; the machine's noise is of that order, the
	// direction is what one sync per larger batch predicts).
	viaWorkers bool
}

// Busy reports whether some of the publisher's messages are still with a
// router worker.
func (p *Publisher) Busy() bool { return p.routing.Load() > 0 }

// Routing says when a loop may route a message itself.
type Routing int32

const (
	// RouteAuto routes inline while every loop keeps up (inlineRoom),
	// else through the workers: the default.
	RouteAuto Routing = iota
	// RouteInline routes inline whenever the publisher's order allows,
	// whatever the pressure (tests).
	RouteInline
	// RouteWorkers routes every message through the workers (tests).
	RouteWorkers
)

// Config is what a Dispatcher is built from.
type Config struct {
	Loops       int // event loops, as the engine has them
	Workers     int // router workers
	WorkerQueue int // each worker's queue of jobs
	Subs        router.Subscriptions
	Retained    router.Retained
	Persist     *persist.Keeper
	// Limits are the queue limits in force (MaxQueued, MaxQueuedBytes,
	// DropOldest), as Reload swaps them.
	Limits *atomic.Pointer[limit.Limits]
	// RetainedBlocks says Retained.Set may block (a cluster's writes its
	// replicas first): retained messages are routed by the workers only,
	// never on a loop.
	RetainedBlocks bool
	// Once, in a cluster, keeps a QoS 1 or 2 message from reaching a
	// session that moved lately twice; nil: no session moves.
	Once Once
}

// Once is asked, while any session moved between nodes lately (Active),
// whether a QoS 1 or 2 delivery to one of them is the first of its
// message (by router.Message.Origin): the message may come by two ways
// while a session moves, from the node it left and straight from the
// publisher's. Package cluster's Sessions.
type Once interface {
	Active() bool
	First(clientID string, origin uint64) bool
}

// Dispatcher routes messages: it owns the loops' inboxes, the router
// workers and the fan-out. Its methods are safe for concurrent use unless
// they say otherwise.
type Dispatcher struct {
	subs     router.Subscriptions
	retained router.Retained
	persist  *persist.Keeper
	limits   *atomic.Pointer[limit.Limits]
	// retainedBlocks is Config.RetainedBlocks.
	retainedBlocks bool
	once           Once
	engine         *eventloop.Engine

	loops   []*Loop   // by eventloop.Loop.Index; built once
	workers []*Worker // built once
	routing atomic.Int32

	// QueueFull counts QoS 1/2 messages a full session queue dropped
	// (the queue policy); read by Stats.
	QueueFull atomic.Int64
}

// New builds a Dispatcher from cfg. It routes nothing until SetEngine and
// the workers run (Worker.Run).
func New(cfg Config) *Dispatcher {
	d := &Dispatcher{subs: cfg.Subs, retained: cfg.Retained, persist: cfg.Persist, limits: cfg.Limits,
		retainedBlocks: cfg.RetainedBlocks, once: cfg.Once}
	d.loops = make([]*Loop, cfg.Loops)
	for i := range d.loops {
		l := &Loop{index: i, fan: newFanout(cfg.Loops)}
		l.room.L = &l.mu
		d.loops[i] = l
	}
	d.workers = make([]*Worker, cfg.Workers)
	for i := range d.workers {
		d.workers[i] = &Worker{fanout: newFanout(cfg.Loops), d: d, ch: make(chan Job, cfg.WorkerQueue),
			acks: make([][]item, cfg.Loops)}
	}
	return d
}

// SetEngine gives the dispatcher the event loops it posts to. Call it
// once, before the engine starts: the engine is built with the
// connections' handler, which needs the dispatcher first.
func (d *Dispatcher) SetEngine(e *eventloop.Engine) { d.engine = e }

// Loop returns loop i's dispatch state.
func (d *Dispatcher) Loop(i int) *Loop { return d.loops[i] }

// Workers returns the router workers, for the broker to run them.
func (d *Dispatcher) Workers() []*Worker { return d.workers }

// SetRouting forces when a loop may route a message itself; tests run
// their suites over each path (RouteAuto is the default).
func (d *Dispatcher) SetRouting(r Routing) { d.routing.Store(int32(r)) }

// Worker picks the router worker for a publisher, by client id, so that
// one client's messages are routed in order.
func (d *Dispatcher) Worker(id []byte) *Worker {
	h := uint32(2166136261)
	for _, c := range id {
		h ^= uint32(c)
		h *= 16777619
	}
	return d.workers[h%uint32(len(d.workers))]
}

// Submit hands j to the router worker of its message's publisher (by
// Msg.FromID) without blocking. On false the worker's queue is full and j
// was not taken; the caller still owns j.Msg.
func (d *Dispatcher) Submit(j Job) bool { return d.Worker(j.Msg.FromID).Submit(j) }

// SubmitWait hands j to the router worker of its message's publisher,
// waiting for room in its queue until stop is closed; false means stop
// came first and the caller still owns j.Msg. For messages from other
// nodes, whose receiver may wait: it slows what the engine sends it.
func (d *Dispatcher) SubmitWait(j Job, stop <-chan struct{}) bool {
	select {
	case d.Worker(j.Msg.FromID).ch <- j:
		return true
	case <-stop:
		return false
	}
}

// Notify posts note n for connection c to c's loop, which hands it to
// c.Notify in order with what was posted there before.
func (d *Dispatcher) Notify(c Conn, n Note) { d.post(c.LoopIndex(), item{to: c, note: n}) }

// usableMember tells shared-subscription picks to pass over a member that
// is offline or has messages queued, so that the group's messages go to
// members that take them now (MQTT 5 section 4.8.2). A member on another
// node (a Peer) is usable: that node passes over its own.
func usableMember(s router.Subscriber) bool {
	if ss, ok := s.(*session.Session); ok {
		return usableSession(ss)
	}
	_, peer := s.(Peer)
	return peer
}

// usableLocal is usableMember for this node's members only: the pick of a
// member here for a message another node gave this node's members.
func usableLocal(s router.Subscriber) bool {
	ss, ok := s.(*session.Session)
	return ok && usableSession(ss)
}

func usableSession(s *session.Session) bool { return s.LoopHint() >= 0 && !s.Busy() }

// anyLocal accepts any member of this node, online or not: the fallback
// when none is usable now.
func anyLocal(s router.Subscriber) bool {
	_, ok := s.(*session.Session)
	return ok
}
