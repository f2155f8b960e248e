package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/shoalmq/shoal/router"
	"github.com/shoalmq/shoal/store"
)

// A node that is gone leaves two things behind that its clients' sessions
// need: its offline sessions, which nobody serves until their clients
// connect elsewhere, and the QoS 1 and 2 messages the other nodes keep
// forwarding to it (its interest stays in the bucket), which wait in its
// subject of the forward stream. One surviving node rescues it:
//
//   - Every node pings the others it knows ("shoal.ping.{node}", a NATS
//     request: no subscriber, or no answer, is no node). A node that has
//     not answered for rescueAfter is gone.
//   - The survivors compete for the gone node's key in the rescue bucket
//     (shoal_rescue: compare-and-set, as for session owners); the winner,
//     the rescuer, claims every session the gone node owns (Owner.Rescue,
//     conditional on that node still owning it), reads each from the
//     replicated copy (package replica) and shelves it: its subscriptions
//     go into a table of the rescuer's own, not into its routing, so the
//     gone node's interest keeps bringing their messages where they were
//     going — the gone node's subject of the forward stream — and no
//     message reaches a session twice.
//   - The rescuer reads that subject through the gone node's own durable
//     consumer and adds each message to the shelved sessions it matches,
//     in the replicated copy, before acknowledging it to the stream.
//   - A shelved session's client that connects anywhere claims its session
//     from the rescuer, which answers "read the copy" (shelfReply) once
//     what it wrote is confirmed.
//   - When the gone node answers again, its rescuer stops reading its
//     subject and marks the rescue done; the node, starting, waits for
//     that before it reads its subject, and takes back the sessions
//     rescued from it that nobody claimed since (Rescued).
//
// A rescuer that goes too leaves its key to another survivor: a key whose
// rescuer does not answer its ping is taken over the same way.

// rescueBucket holds, per gone node, who rescues it and whether it is done.
const rescueBucket = "shoal_rescue"

// The rescue's timing: how often a node pings the others, how long one
// waits for an answer, how long a node may not answer before it is gone.
const (
	rescueCheck = time.Second
	pingWait    = 500 * time.Millisecond
	rescueAfter = 5 * time.Second
	// rescueWait bounds a starting node's wait for its rescue to end;
	// rescueTimeout a rescue's start: the claims and reads of the gone
	// node's sessions, a few milliseconds each; rescueStep each request
	// of it.
	rescueWait    = 30 * time.Second
	rescueTimeout = 2 * time.Minute
	rescueStep    = 5 * time.Second
)

func pingSubject(node string) string { return "shoal.ping." + node }

// shelfReply answers a handoff request for a shelved session: the session
// is in the replicated copy. A store.Bundle never starts with byte 0.
var shelfReply = []byte{0}

// A settle request asks a rescuer whether a shelved session has all that
// was sent for it (Rescuer.settled), without handing it over: a handoff
// request of epoch 0, which no claim has. notSettledReply answers no.
var notSettledReply = []byte{1}

func settleRequest(clientID string) []byte { return []byte("0 false " + clientID) }

// Copies is the replicated copy of the sessions, as the rescue uses it:
// package replica's Store.
type Copies interface {
	Replicas
	// Read reads a session from the copy, with the generation its
	// records are under; nil when there is none.
	Read(ctx context.Context, clientID string) (*store.Bundle, uint64, error)
	// Continue makes this node write clientID's session under gen.
	Continue(clientID string, gen uint64)
	// Forget drops what this node knows of clientID's generation.
	Forget(clientID string)
	// ShelfWriter returns a writer of the copy alone, for the sessions
	// continued.
	ShelfWriter() store.Writer
}

// Rescuer is a node's part in rescuing the nodes that are gone. Safe for
// concurrent use.
type Rescuer struct {
	node     *Node
	owners   *Owners
	sessions *Sessions
	copies   Copies
	peers    *Peers
	log      zerolog.Logger
	kv       jetstream.KeyValue
	after    time.Duration // rescueAfter; a test's may be shorter

	// mu guards the shelf: the sessions this node rescued and keeps in
	// the copy alone, their table, the writer of the copy, and the runs.
	mu    sync.Mutex
	shelf map[string]*shelved
	// moved are the sessions handed over from the shelf lately, in the
	// table for movedLinger: what they match goes on to their new node
	// (handover.go).
	moved map[string]*moved
	table *router.Table
	w     store.Writer
	match router.Matches
	// out are the frames for the moved sessions' new nodes that keep
	// gathers, by node, in batches of about forwardBatchBytes.
	out map[string][][]byte
	// added are what keep added to the shelved sessions from its batch:
	// taken back if the copy does not confirm them.
	added []added
	runs  map[string]*rescueRun
	// tries serializes rescues: the watch's, and those a claim asks for
	// (beforeClaim).
	tries sync.Mutex

	// gone is when each node that does not answer stopped, and told the
	// nodes Gone was told of: round's.
	gone map[string]time.Time
	told map[string]bool
	// Gone, if set before Open, is told of each node found gone (it has
	// not answered for rescue_after) and of its coming back, on every
	// node, whichever rescues it: the cluster's Wills (NodeGone).
	Gone func(node string, gone bool)
	// unmarked are the rescues of nodes back whose keys could not be
	// marked done yet, with their revisions: end tries again; taken the
	// nodes whose keys this node took, until it marks them done. Guarded
	// by tries.
	unmarked map[string]uint64
	taken    map[string]bool
	// rounds carries Health's rounds to watch, until stop closes;
	// watched, made when watch starts, closes when it ends.
	rounds  chan map[string]bool
	stop    chan struct{}
	watched chan struct{}

	// Rescued counts the sessions this node shelved; Delivered the
	// messages it added to them from gone nodes' subjects.
	Rescued   atomic.Int64
	Delivered atomic.Int64
	// PassedOn counts the messages it sent on to the new nodes of
	// sessions handed over from the shelf (handover.go).
	PassedOn atomic.Int64
}

// shelved is a session on the shelf: its client id, and the Seq its next
// delivery gets (above those of the deliveries it had).
type shelved struct {
	id      string
	from    string // the gone node it was rescued from
	next    uint64
	gen     uint64 // its generation in the copy (replica's Continue)
	filters []string
	opts    []router.Options // of each filter
	// read is closed once the session is read from the copy, or the
	// read failed: a handover waits for it. loaded says it was read
	// (its filters and next set); a read that failed is made again by
	// the rescue's next try.
	read   chan struct{}
	loaded bool
	// kept are the Origins of the messages from other nodes the session
	// has (router.Message.Origin), or its client received lately (the
	// copy's receipts): one the rescue reads again is not added twice.
	kept map[uint64]struct{}
}

func (s *shelved) ClientID() string { return s.id }

// rescueRun is the rescue of one gone node: the reading of its subject.
type rescueRun struct {
	gone string
	// ready is closed once the reading has started, or the rescue
	// failed.
	ready chan struct{}
	// next is the stream sequence the reading is at: every batch of the
	// subject below it is kept (awaitDrained).
	next   atomic.Uint64
	stream jetstream.Stream // the forward stream, once the reading starts
	// rev is the revision of the rescue's key once it said ready: the
	// record end writes over, if it is still there.
	rev  uint64
	stop chan struct{}
	done chan struct{} // closed when the reading ends
}

// NewRescuer returns a Rescuer. Open answers pings; the node's Health
// makes the checks (check).
func NewRescuer() *Rescuer {
	return &Rescuer{after: rescueAfter, shelf: map[string]*shelved{}, moved: map[string]*moved{},
		table: router.NewTable(1, router.RoundRobin), runs: map[string]*rescueRun{},
		gone: map[string]time.Time{}, told: map[string]bool{}, unmarked: map[string]uint64{}, taken: map[string]bool{}, rounds: make(chan map[string]bool, 1), stop: make(chan struct{})}
}

// Open waits until no rescue of this node is under way (a node that
// starts after it was gone: the node answers its pings from Start, so its
// rescuer sees it back). The node's Health then checks the others with it.
// Call it before the node reads its own subject of the forward stream
// (Peers.Start).
func (r *Rescuer) Open(ctx context.Context, n *Node, owners *Owners, sessions *Sessions, copies Copies, peers *Peers, log zerolog.Logger) error {
	r.node, r.owners, r.sessions, r.copies, r.peers, r.log = n, owners, sessions, copies, peers, log
	if n.cfg.RescueAfter > 0 {
		r.after = n.cfg.RescueAfter
	}
	r.w = copies.ShelfWriter()
	kv, err := n.openBucket(ctx, rescueBucket)
	if err != nil {
		return err
	}
	r.kv = kv
	sessions.setShelf(r)
	if err := r.AwaitOwnRescue(ctx); err != nil {
		return err
	}
	r.watched = make(chan struct{})
	go r.watch()
	return nil
}

// Close stops checking and rescuing; a rescue under way is left to
// another node (its key names this one, which no longer answers).
func (r *Rescuer) Close() {
	if r.kv == nil {
		return
	}
	select {
	case <-r.stop:
		return
	default:
	}
	close(r.stop)
	if r.watched != nil {
		<-r.watched
	}
	r.tries.Lock()
	defer r.tries.Unlock()
	r.mu.Lock()
	runs := r.runs
	r.runs = map[string]*rescueRun{}
	r.mu.Unlock()
	for _, run := range runs { // not under mu: their reading takes it
		run.halt()
	}
}

// A rescue key's value: the rescuer and the rescue's state.
const (
	rescueActive = "active" // taking the gone node's sessions
	rescueReady  = "ready"  // they are on the shelf, its subject being read
	rescueDone   = "done"   // the node is back
)

func rescueRecord(rescuer, state string) []byte { return []byte(rescuer + " " + state) }

func parseRescue(v []byte) (rescuer, state string) {
	rescuer, state, _ = strings.Cut(string(v), " ")
	return rescuer, state
}

// rescuerGone is how long a rescuer may not answer before the node it
// rescued takes it for gone: a ping lost while routes come back is not.
const rescuerGone = 2 * time.Second

// AwaitOwnRescue waits, up to rescueWait, until the rescue of this node
// (if one is under way) is done, then removes its key: a node that starts,
// or rejoins its cluster (Health), then takes back its sessions.
func (r *Rescuer) AwaitOwnRescue(ctx context.Context) error {
	self := r.node.cfg.Node
	ctx, cancel := context.WithTimeout(ctx, rescueWait)
	defer cancel()
	var silent time.Time // since when the rescuer has not answered
	for {
		value, rev, found, err := r.readOwn(ctx)
		var rescuer string
		var done bool
		switch {
		case err == nil && !found:
			return nil
		case err != nil:
			// A bucket just made may not answer at once (no responders,
			// a leader being elected): try again.
			if ctx.Err() != nil {
				return fmt.Errorf("cluster: reading this node's rescue: %w", err)
			}
		default:
			var state string
			rescuer, state = parseRescue(value)
			done = state == rescueDone
		}
		// A rescuer that still reads this node's subject must stop first
		// (it sees this node back); one that does not answer for
		// rescuerGone is gone, and its reading with it.
		gone := false
		if err == nil && !done && rescuer != self {
			switch {
			case r.node.answers(rescuer):
				silent = time.Time{}
			case silent.IsZero():
				silent = time.Now()
			default:
				gone = time.Since(silent) >= rescuerGone
			}
		}
		if err == nil && (done || rescuer == self || gone) {
			err := r.kv.Delete(ctx, self, jetstream.LastRevision(rev))
			if err == nil {
				r.log.Info().Str("rescuer", rescuer).Bool("done", done).Msg("cluster: this node was rescued while it was gone")
				return nil
			}
			if isWrongRevision(err) {
				continue // changed meanwhile: read it again
			}
		}
		select {
		case <-ctx.Done():
			r.log.Warn().Str("rescuer", rescuer).Msg("cluster: the rescue of this node did not end in time; going on")
			return nil
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// check hands the rescuer a round of pings (Health: alive says which
// nodes answered), without waiting: a rescue takes seconds, the rounds
// must not. A round the rescuer has not taken yet is replaced.
func (r *Rescuer) check(alive map[string]bool) {
	for {
		select {
		case r.rounds <- alive:
			return
		default:
		}
		select {
		case <-r.rounds: // stale: make room
		default:
		}
	}
}

// watch takes the rounds of pings check hands it until Close.
func (r *Rescuer) watch() {
	defer close(r.watched)
	for {
		select {
		case <-r.stop:
			return
		case alive := <-r.rounds:
			r.round(alive)
		}
	}
}

// round rescues the nodes gone for r.after, and ends the rescues of those
// back. The watch goroutine's.
func (r *Rescuer) round(alive map[string]bool) {
	now := time.Now()
	for _, node := range r.peers.Nodes() {
		if alive[node] {
			delete(r.gone, node)
			r.tell(node, false)
			r.end(node)
			continue
		}
		since, ok := r.gone[node]
		if !ok {
			r.gone[node] = now
			continue
		}
		if now.Sub(since) >= r.after {
			r.tell(node, true)
			r.tryRescue(node)
		}
	}
}

// tell tells Gone, if set, that node is gone, or back, once each time it
// changes. The watch goroutine's.
func (r *Rescuer) tell(node string, gone bool) {
	if r.Gone == nil || r.told[node] == gone {
		return
	}
	if gone {
		r.told[node] = true
	} else {
		delete(r.told, node)
	}
	r.Gone(node, gone)
}

// readOwnWait bounds one read of this node's rescue key.
const readOwnWait = time.Second

// rescuedNow reports whether another node rescues this one, or did and
// this one has not yet rejoined: the rescue bucket has its key.
func (r *Rescuer) rescuedNow(ctx context.Context) (bool, error) {
	_, _, found, err := r.readOwn(ctx)
	return found, err
}

// readOwn reads this node's key in the rescue bucket from its stream's
// leader: a replica, this node's own among them, may lag — not see a
// rescue yet, or still see one ended. It returns the key's value and
// revision; found is false when the bucket has none (or a delete).
func (r *Rescuer) readOwn(ctx context.Context) (value []byte, rev uint64, found bool, err error) {
	// A stream without a leader yet does not answer: one attempt waits
	// no longer than this, the caller tries again.
	ctx, cancel := context.WithTimeout(ctx, readOwnWait)
	defer cancel()
	data, hdr, rev, found, err := r.node.lastOnLeader(ctx, "KV_"+rescueBucket, "$KV."+rescueBucket+"."+r.node.cfg.Node)
	if err != nil || !found {
		return nil, 0, false, err
	}
	if op := hdr.Get("KV-Operation"); op == "DEL" || op == "PURGE" {
		return nil, 0, false, nil
	}
	return data, rev, true, nil
}

// tryRescue makes this node gone's rescuer, unless a live node is, and
// rescues it.
func (r *Rescuer) tryRescue(gone string) {
	r.tries.Lock()
	defer r.tries.Unlock()
	r.tryRescueLocked(gone)
}

// tryRescueLocked is tryRescue; r.tries must be held.
func (r *Rescuer) tryRescueLocked(gone string) {
	r.mu.Lock()
	_, running := r.runs[gone]
	r.mu.Unlock()
	if running {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), rescueTimeout)
	defer cancel()
	self := r.node.cfg.Node
	// The claim of the key is bounded on its own (rescueStep), as the
	// rescue's steps are: a request sent to a stream's leader that froze
	// gets no answer, while the others elect a new one within seconds;
	// the next round tries again. Bounded by the whole rescue's time, a
	// try waited minutes for a frozen node.
	sctx, scancel := context.WithTimeout(ctx, rescueStep)
	defer scancel()
	e, err := r.kv.Get(sctx, gone)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		_, err = r.kv.Create(sctx, gone, rescueRecord(self, rescueActive))
	case err != nil:
	default:
		if rescuer, state := parseRescue(e.Value()); state != rescueDone && rescuer != self && r.node.answers(rescuer) {
			return // another node rescues it
		}
		_, err = r.kv.Update(sctx, gone, rescueRecord(self, rescueActive), e.Revision())
	}
	if err != nil {
		if !errors.Is(err, jetstream.ErrKeyExists) && !isWrongRevision(err) {
			r.log.Warn().Err(err).Str("gone", gone).Msg("cluster: could not take up a gone node's rescue")
		}
		return
	}
	r.taken[gone] = true
	r.log.Warn().Str("gone", gone).Msg("cluster: a node is gone; this node rescues its sessions and the messages sent to it")
	err = r.rescue(ctx, gone)
	if err == nil {
		// Claims waiting for it (beforeClaim) go on.
		var rev uint64
		pctx, pcancel := context.WithTimeout(ctx, rescueStep)
		rev, err = r.kv.Put(pctx, gone, rescueRecord(self, rescueReady))
		pcancel()
		r.mu.Lock()
		if run := r.runs[gone]; run != nil {
			run.rev = rev
		}
		r.mu.Unlock()
	}
	if err != nil {
		// The key stays this node's: what this try claimed, its next
		// try (the next round) takes up (rescue: this node's own claims
		// with Rescue). Another node takes the key over only if this one
		// goes too.
		r.log.Error().Err(err).Str("gone", gone).Msg("cluster: rescuing a gone node failed; this node tries again")
		r.endLocked(gone, false)
	}
}

// rescue shelves the sessions gone owns and starts reading its subject.
func (r *Rescuer) rescue(ctx context.Context, gone string) (err error) {
	// gone's sessions, and those this node claimed from a gone node but
	// could not read yet (a try that failed half way).
	// Each step is bounded on its own: right after a node dies, the
	// streams it led elect new leaders, and a request meanwhile gets no
	// answer; the next try (a second later) finds them.
	self := r.node.cfg.Node
	run := &rescueRun{gone: gone, ready: make(chan struct{})}
	r.mu.Lock()
	r.runs[gone] = run
	r.mu.Unlock()
	defer close(run.ready)
	defer func() {
		if err != nil {
			r.mu.Lock()
			delete(r.runs, gone)
			r.mu.Unlock()
		}
	}()
	sctx, cancel := context.WithTimeout(ctx, rescueStep)
	owned, err := r.owners.Select(sctx, func(o Owner) bool { return o.Node == gone || o.Node == self && o.Rescue })
	cancel()
	if err != nil {
		return err
	}
	for id, o := range owned {
		sctx, cancel := context.WithTimeout(ctx, rescueStep)
		err = r.shelve(sctx, id, o, gone)
		cancel()
		if err != nil {
			return err
		}
	}
	sctx, cancel = context.WithTimeout(ctx, rescueStep)
	defer cancel()
	stream, err := r.node.js.Stream(sctx, forwardStream)
	if err != nil {
		return err
	}
	run.stop, run.done, run.stream = make(chan struct{}), make(chan struct{}), stream
	go r.drain(run, stream)
	r.log.Warn().Str("gone", gone).Int("sessions", len(owned)).Msg("cluster: a gone node's sessions are shelved here")
	return nil
}

// shelve claims id's session from owner, the claim Select read (gone's,
// or this node's, which claimed it before it last started or in a try
// that failed half way) — unless this node holds the claim already — and
// puts it on the shelf.
func (r *Rescuer) shelve(ctx context.Context, id string, owner Owner, gone string) error {
	r.mu.Lock()
	had := r.shelf[id]
	r.mu.Unlock()
	if had != nil && had.loaded {
		return nil
	}
	if _, mine := r.sessions.Mine(id); !mine {
		now, ok, err := r.owners.ClaimFrom(ctx, id, owner)
		if err != nil || !ok {
			return err // !ok: claimed elsewhere meanwhile
		}
		r.sessions.learn(id, now.Epoch, true, "")
	}
	// On the shelf at once, being read: a client that claims it from
	// this node meanwhile waits for it (unshelve).
	sh := &shelved{id: id, from: gone, read: make(chan struct{})}
	r.mu.Lock()
	r.shelf[id] = sh
	r.pruneMovedLocked(time.Time{}, id) // back on the shelf: no longer passed on
	r.mu.Unlock()
	defer close(sh.read)
	b, gen, err := r.copies.Read(ctx, id)
	if err != nil {
		return err // shelved unread: a claim reads the copy itself
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if b == nil { // not persistent, or ended: nothing to keep
		if r.shelf[id] == sh {
			delete(r.shelf, id)
		}
		return nil
	}
	if r.shelf[id] != sh {
		return nil // handed over meanwhile: it reads the copy
	}
	r.copies.Continue(id, gen)
	sh.gen = gen
	r.loadLocked(sh, b)
	r.log.Debug().Str("client", id).Str("gone", gone).Int("deliveries", len(b.Deliveries)).
		Int("received", len(b.Received)).Msg("cluster: a gone node's session is read from the copy")
	r.Rescued.Add(1)
	return nil
}

// loadLocked fills sh in from b, its session as the copy has it: its
// subscriptions in the rescuer's table, and what it has, or its client
// received lately, kept. r.mu must be held.
func (r *Rescuer) loadLocked(sh *shelved, b *store.Bundle) {
	sh.loaded = true
	sh.kept = map[uint64]struct{}{}
	for _, d := range b.Deliveries {
		sh.next = max(sh.next, d.Seq+1)
		if d.Msg.Origin != 0 {
			sh.kept[d.Msg.Origin] = struct{}{}
		}
	}
	for _, o := range b.Received { // delivered, and maybe read again
		sh.kept[o] = struct{}{}
	}
	for _, s := range b.Session.Subs {
		r.table.Subscribe(sh, s.Filter, s.Opts)
		sh.filters = append(sh.filters, s.Filter)
		sh.opts = append(sh.opts, s.Opts)
	}
}

// settled waits, up to drainWait in all, until id's session, if it is on
// the shelf, is read from the copy and has what waited for it in its gone
// node's subject until now (awaitDrained); it reports whether it got
// there.
func (r *Rescuer) settled(id, claimer string) bool {
	r.mu.Lock()
	sh := r.shelf[id]
	var run *rescueRun
	if sh != nil {
		run = r.runs[sh.from]
	}
	r.mu.Unlock()
	if sh == nil || claimer == sh.from {
		// The gone node itself, back, reads its subject next: what the
		// rescue has not read yet comes to it there.
		return true
	}
	deadline := time.Now().Add(drainWait)
	timeout := time.After(drainWait)
	select {
	case <-sh.read:
	case <-timeout:
		return false
	}
	if run == nil {
		return true
	}
	select {
	case <-run.ready:
		return r.awaitDrained(run, time.Until(deadline))
	case <-timeout:
		return false
	}
}

// unshelve takes id's session off the shelf, if it is there, once what
// this node wrote of it is confirmed, and what waited for it in its gone
// node's subject is in it (settled): the node id's client connects to
// (claimer) reads it from the copy (shelfReply). It reports whether the
// session was on the shelf. Strict, it fails with errNotSettled when the
// rescue has not read all that waited for the session yet, and the
// session stays on the shelf: for a claim made on this node, which is
// refused and whose client's next try, here or anywhere, finds the
// session here still. Another node's claim has asked whether the session
// is settled before it claimed (beforeClaim); it gets the session anyway,
// as its claim is already the newest.
func (r *Rescuer) unshelve(id, claimer string, strict bool) (*shelved, error) {
	if !r.settled(id, claimer) && strict {
		r.mu.Lock()
		sh := r.shelf[id]
		r.mu.Unlock()
		if sh != nil {
			return sh, errNotSettled
		}
	}
	r.mu.Lock()
	sh := r.shelf[id]
	r.mu.Unlock()
	if sh != nil && claimer == sh.from {
		// The gone node is back and takes its session: the rescue
		// stops reading its subject first, lest it drop what comes for
		// the session now that it is off the shelf.
		r.end(sh.from)
	}
	r.mu.Lock()
	sh = r.shelf[id]
	if sh != nil {
		delete(r.shelf, id)
		r.pruneMovedLocked(time.Time{}, id)
		var mv *moved
		if claimer != sh.from && sh.loaded {
			// What the other nodes send the gone node for the session
			// until they know where it is goes on to the claimer.
			mv = &moved{id: id, to: claimer, until: time.Now().Add(movedLinger), filters: sh.filters}
			r.moved[id] = mv
		}
		for _, f := range sh.filters {
			if mv != nil {
				r.table.Subscribe(mv, f, router.Options{QoS: 2, RetainAsPublished: true})
			}
			r.table.Unsubscribe(sh, f)
		}
		r.copies.Forget(id)
	}
	r.mu.Unlock()
	if sh != nil {
		r.copies.Flush()
	}
	return sh, nil
}

// reshelve puts sh, which a claim of its client on this node took off
// the shelf (unshelve), back on it: the claim could not read the session
// from the copy, and its client is refused. Off the shelf, the session
// would be in no table here until the client's next claim, and what is
// addressed to it meanwhile (what this node's rescue passes on to the
// claimer, itself; what a node back from a freeze still finds for it in
// its subject) would go to no one: a freeze run lost 256 messages so.
func (r *Rescuer) reshelve(sh *shelved) {
	if r.sessions != nil {
		if _, mine := r.sessions.Mine(sh.id); !mine {
			return // another node claimed it meanwhile: it reads the copy
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.shelf[sh.id] != nil {
		return
	}
	r.pruneMovedLocked(time.Time{}, sh.id)
	r.shelf[sh.id] = sh
	for i, f := range sh.filters {
		r.table.Subscribe(sh, f, sh.opts[i])
	}
	if sh.loaded {
		r.copies.Continue(sh.id, sh.gen)
	}
	r.log.Debug().Str("client", sh.id).Msg("cluster: a session back on the shelf; its claim could not read it")
}

// addressed adds m, a message of the forward stream addressed to the
// session of client id to, to that session if it is on the shelf,
// loaded, and commits it to the copy; it reports whether it was (the
// caller acknowledges m then, and keeps its reference). A node that runs
// again after it was rescued passes on what its subject still held for
// its sessions to the node that holds each (Peers.LeaveFor): a rescuer,
// for one whose client has not come back; so does this node's rescue,
// for a session that went back on the shelf (reshelve). One that left
// the shelf lately for another node goes on there, addressed: this
// node's table has no session for it (the error: it was not taken).
func (r *Rescuer) addressed(m *router.Message, group, to string) (bool, error) {
	r.mu.Lock()
	var err error
	switch mv, sh := r.moved[to], r.shelf[to]; {
	case mv != nil && r.node != nil && mv.to != r.node.cfg.Node:
		r.passOnLocked(mv.to, to, m, group, time.Now().UnixNano())
	case sh == nil || !sh.loaded || mv != nil:
		r.mu.Unlock()
		return false, nil
	default:
		r.deliverLocked(m, group, to, time.Now().UnixNano())
		err = r.commitAddedLocked()
	}
	out := r.out
	r.out = nil
	r.mu.Unlock()
	if err != nil {
		return true, err
	}
	return true, r.sendOut(out)
}

// commitAddedLocked commits what deliverLocked added to the shelved
// sessions to the copy. Should the copy not confirm it, the additions are
// taken back: the stream sends their messages again, and they are added
// again (same Seq, same records). Of a session another node claimed
// while the commit waited — its claimer may have read the copy before
// the commit landed, under a generation it no longer reads — what was
// added goes on to the claimer too (r.out): it delivers a message its
// copy brought once. r.mu must be held.
func (r *Rescuer) commitAddedLocked() error {
	err := r.w.Commit(true)
	if err != nil {
		for i := len(r.added) - 1; i >= 0; i-- {
			a := r.added[i]
			delete(a.sh.kept, a.origin)
			a.sh.next = a.next
		}
	} else {
		// Ahead of what deliverLocked passed on to the same node once it
		// knew of the claim: those came after these.
		var early map[string][][]byte
		for _, a := range r.added {
			if node := r.takenLocked(a.sh); node != "" {
				r.log.Debug().Str("client", a.sh.id).Uint64("origin", a.origin).Str("to", node).
					Msg("cluster: a rescued message passed on to the session's claimer too")
				if early == nil {
					early = map[string][][]byte{}
				}
				early[node] = appendChunk(early[node], a.frame)
			}
		}
		for node, chunks := range early {
			if r.out == nil {
				r.out = map[string][][]byte{}
			}
			r.out[node] = append(chunks, r.out[node]...)
		}
	}
	clear(r.added)
	r.added = r.added[:0]
	return err
}

// drain reads what waits for run's gone node in the forward stream —
// the batches its consumer never acknowledged too: the dead node may have
// taken them — adds each message to the shelved sessions it matches, in
// the copy, and deletes the batch from the stream once the copy has it;
// then it looks again every drainPoll, until the rescue ends. It reads
// from the stream's leader ("the next message on this subject"), not
// through the gone node's consumer, whose unacknowledged batches would
// come again only after the consumer's ack wait.
func (r *Rescuer) drain(run *rescueRun, stream jetstream.Stream) {
	defer close(run.done)
	subject := forwardSubject(run.gone)
	for seq := uint64(1); ; {
		select {
		case <-run.stop:
			return
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), rescueStep)
		m, err := stream.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subject))
		if err == nil {
			if err = r.keep(m.Data, m.Sequence, m.Time.UnixNano()); err == nil {
				err = stream.DeleteMsg(ctx, m.Sequence)
				if errors.Is(err, jetstream.ErrMsgNotFound) {
					err = nil
				}
				if err == nil {
					seq = m.Sequence + 1
					run.next.Store(seq)
				}
			}
		}
		cancel()
		wait := time.Duration(0)
		switch {
		case errors.Is(err, jetstream.ErrMsgNotFound):
			wait = drainPoll
		case err != nil:
			r.log.Debug().Err(err).Str("gone", run.gone).Msg("cluster: reading a gone node's messages; trying again")
			wait = drainPoll
		}
		if wait > 0 {
			select {
			case <-run.stop:
				return
			case <-time.After(wait):
			}
		}
	}
}

// drainPoll is how often a rescue looks for more in the gone node's
// subject once it has read all there was.
const drainPoll = 100 * time.Millisecond

// halt stops run's reading and waits for it.
func (run *rescueRun) halt() {
	if run.stop != nil {
		close(run.stop)
		<-run.done
		run.stop = nil
	}
}

// keep adds a batch from a gone node's subject, which the stream took at
// sent (Unix ns), to the shelved sessions its messages match, in the
// copy; it returns once the copy has them, or fails.
func (r *Rescuer) keep(data []byte, seq uint64, sent int64) error {
	if n, ok := countFrames(data); !ok || n == 0 {
		r.log.Warn().Msg("cluster: a malformed batch in a gone node's subject; dropped")
		return nil
	}
	r.mu.Lock()
	r.pruneMovedLocked(time.Unix(0, sent), "")
	now := time.Now().UnixNano()
	eachFrame(data, seq, sent, func(m *router.Message, group, to string, err error) bool {
		if err == nil {
			r.deliverLocked(m, group, to, now)
			m.Release()
		}
		return true
	})
	err := r.commitAddedLocked()
	out := r.out
	r.out = nil
	r.mu.Unlock()
	if err != nil {
		return err
	}
	// Failing, the batch is read again: its shelved sessions have it
	// (kept), and what goes on goes again.
	return r.sendOut(out)
}

// movedMaxLag bounds how long a moved session stays in the rescuer's
// table past its linger, by the clock, should no batch come to end it.
const movedMaxLag = 5 * time.Minute

// added is a message the rescue added to a shelved session, until the
// copy confirms it: its Origin, and the session's next Seq before it.
type added struct {
	sh     *shelved
	origin uint64
	next   uint64
	frame  []byte // the message's, addressed to the session (passOnLocked)
}

// pruneMovedLocked takes out of the table the moved sessions whose time
// was up when the stream took the batch read now (asOf; zero: none), and
// id's (a session of that id back on the shelf or moving again) at once.
// The batch's time, not the clock's: a rescue reading far behind what
// the others send still passes on what they sent the gone node while
// they did not know where the session went (in one rolling restart, 426
// messages were lost to a linger by the clock). r.mu must be held.
func (r *Rescuer) pruneMovedLocked(asOf time.Time, id string) {
	for mid, mv := range r.moved {
		over := !asOf.IsZero() && !asOf.Before(mv.until) || time.Since(mv.until) > movedMaxLag
		if mid != id && !over {
			continue
		}
		delete(r.moved, mid)
		for _, f := range mv.filters {
			r.table.Unsubscribe(mv, f)
		}
	}
}

// deliverLocked adds m to the shelved sessions it is for: those whose
// subscriptions match it or, for group, one member of that group, or, to
// not "", the session of that client id alone (one passed on to the gone
// node); for a session that moved lately, it adds m's frame to what goes
// on to its new node (r.out), as of now (Unix ns). r.mu must be held.
func (r *Rescuer) deliverLocked(m *router.Message, group, to string, now int64) {
	if m.QoS == 0 {
		return
	}
	r.match.Reset()
	if group != "" {
		mt, ok := r.table.PickShared(group, func(router.Subscriber) bool { return true })
		if !ok {
			return
		}
		r.match.List = append(r.match.List, mt)
	} else {
		r.match.NoShared = true
		r.table.Match(m.Topic, nil, m.FromID, &r.match)
	}
	for _, mt := range r.match.List {
		if to != "" && mt.Sub.ClientID() != to {
			continue
		}
		if mv, ok := mt.Sub.(*moved); ok {
			r.passOnLocked(mv.to, mv.id, m, group, now)
			continue
		}
		sh := mt.Sub.(*shelved)
		if node := r.takenLocked(sh); node != "" {
			// Another node claimed the session since: it may have read
			// the copy already (its request for the session, waiting
			// for this node's commit, timed out), and reads the
			// session's records under its generation, not these.
			r.log.Debug().Str("client", sh.id).Uint64("origin", m.Origin).Str("to", node).Msg("cluster: a rescued message passed on to the session's claimer")
			r.passOnLocked(node, sh.id, m, group, now)
			continue
		}
		if _, kept := sh.kept[m.Origin]; kept {
			// The gone node kept it before it died, its acknowledgement
			// lost with it; or a read of the batch before this one.
			r.log.Debug().Str("client", sh.id).Uint64("origin", m.Origin).Msg("cluster: a rescued message the session has")
			continue
		}
		r.log.Debug().Str("client", sh.id).Uint64("origin", m.Origin).Uint64("seq", sh.next).Msg("cluster: a rescued message added to the session")
		sh.kept[m.Origin] = struct{}{}
		r.added = append(r.added, added{sh: sh, origin: m.Origin, next: sh.next,
			frame: appendBatchFrame(nil, m, group, addressee(sh.id, group), now)})
		d := store.Delivery{Seq: sh.next, QoS: min(m.QoS, mt.QoS), Retain: m.Retain && mt.RetainAsPublished,
			SubIDs: mt.SubIDs, Msg: store.Message{Topic: m.Topic, Payload: m.Payload, Props: m.Props,
				From: m.FromID, QoS: m.QoS, Retain: m.Retain, Expiry: m.Expiry, Origin: m.Origin}}
		if mt.Shared {
			d.Group = mt.Group
		}
		sh.next++
		r.w.PutDelivery(sh.id, d)
		r.Delivered.Add(1)
	}
}

// passOnLocked adds m's frame, for the session of client id, or for
// any member of group, to what goes on to node (r.out). r.mu must be
// held.
func (r *Rescuer) passOnLocked(node, id string, m *router.Message, group string, now int64) {
	if r.out == nil {
		r.out = map[string][][]byte{}
	}
	chunks := withRoom(r.out[node])
	chunks[len(chunks)-1] = appendBatchFrame(chunks[len(chunks)-1], m, group, addressee(id, group), now)
	r.out[node] = chunks
}

// appendChunk appends frame, a batch's frame (appendBatchFrame), to
// chunks, batches of about forwardBatchBytes.
func appendChunk(chunks [][]byte, frame []byte) [][]byte {
	chunks = withRoom(chunks)
	chunks[len(chunks)-1] = append(chunks[len(chunks)-1], frame...)
	return chunks
}

// withRoom returns chunks, batches of frames, with a last one that has
// room: one stream message each, as a forward batch is.
func withRoom(chunks [][]byte) [][]byte {
	if n := len(chunks); n == 0 || len(chunks[n-1]) >= forwardBatchBytes {
		chunks = append(chunks, nil)
	}
	return chunks
}

// addressee is the session a frame passed on for client id's session
// is addressed to: none for a shared group's message, which any member
// of the group on the new node may take.
func addressee(id, group string) string {
	if group != "" {
		return ""
	}
	return id
}

// takenLocked returns the node that claimed sh's session since this
// node rescued it, if another did and this node knows which; else "".
// Not the gone node, back: the rescue reads its subject, and would read
// what it passed on there again; asked for the session, this node ends
// the rescue and commits what it read before it answers (unshelve), and
// the node reads the rest of its subject itself. r.mu must be held.
func (r *Rescuer) takenLocked(sh *shelved) string {
	if r.sessions == nil {
		return ""
	}
	node := r.sessions.takenBy(sh.id)
	if node == sh.from || r.node != nil && node == r.node.cfg.Node {
		return ""
	}
	return node
}

// sendOut passes out, frames gathered for other nodes (r.out), on to
// them, and waits for the stream to take each batch.
func (r *Rescuer) sendOut(out map[string][][]byte) error {
	for node, chunks := range out {
		for _, frames := range chunks {
			ctx, cancel := context.WithTimeout(context.Background(), rescueStep)
			err := r.peers.passOn(ctx, node, frames)
			cancel()
			if err != nil {
				return err
			}
			n, _ := countFrames(frames)
			r.PassedOn.Add(int64(n))
		}
	}
	return nil
}

// end ends the rescue of node, back: this node stops reading its subject
// and marks the rescue done. The sessions stay on the shelf until their
// clients connect, or the node takes them back.
func (r *Rescuer) end(node string) {
	r.tries.Lock() // not while a rescue of it starts
	defer r.tries.Unlock()
	r.endLocked(node, true)
}

// endLocked stops the rescue of node and, if back, marks it done.
// r.tries must be held.
func (r *Rescuer) endLocked(node string, back bool) {
	r.mu.Lock()
	run := r.runs[node]
	delete(r.runs, node)
	r.mu.Unlock()
	if run != nil {
		if back {
			// What the rescue has not read yet the node would read, for
			// sessions it may no longer hold: read it all first (the
			// node does not read its subject until the rescue is done).
			r.awaitDrained(run, endDrainWait)
		}
		run.halt()
		r.copies.Flush()
	}
	if !back {
		return
	}
	if run == nil {
		rev, unmarked := r.unmarked[node]
		if !unmarked {
			if !r.taken[node] {
				return
			}
			if rev, unmarked = r.ownKey(node); !unmarked {
				delete(r.taken, node)
				return
			}
		}
		run = &rescueRun{gone: node, rev: rev}
	}
	if err := r.markDone(run); err != nil {
		// The next round tries again: the node waits for it.
		r.unmarked[node] = run.rev
		r.log.Warn().Err(err).Str("node", node).Msg("cluster: could not mark a rescue done yet")
		return
	}
	delete(r.unmarked, node)
	delete(r.taken, node)
	r.log.Info().Str("node", node).Msg("cluster: a rescued node is back; its rescue is done")
}

// ownKey reports whether node's rescue key names this node, not done — a
// rescue that failed, or was under way, when node came back — and its
// revision.
func (r *Rescuer) ownKey(node string) (rev uint64, ok bool) {
	ctx, cancel := context.WithTimeout(context.Background(), rescueStep)
	defer cancel()
	e, err := r.kv.Get(ctx, node)
	if err != nil {
		return 0, false
	}
	rescuer, state := parseRescue(e.Value())
	return e.Revision(), rescuer == r.node.cfg.Node && state != rescueDone
}

// markDone marks run's rescue done — over its own record, if it said
// ready: a node that took its rescuer for gone, and deleted the key, does
// not find it again.
func (r *Rescuer) markDone(run *rescueRun) error {
	ctx, cancel := context.WithTimeout(context.Background(), rescueStep)
	defer cancel()
	var err error
	if run.rev != 0 {
		_, err = r.kv.Update(ctx, run.gone, rescueRecord(r.node.cfg.Node, rescueDone), run.rev)
	} else { // ended before it was ready
		_, err = r.kv.Put(ctx, run.gone, rescueRecord(r.node.cfg.Node, rescueDone))
	}
	if isWrongRevision(err) {
		return nil
	}
	return err
}

// drainWait bounds how long a shelved session's handover waits for the
// rescue to read what waits in the gone node's subject; endDrainWait how
// long the end of a rescue does, within the wait of the node back for it
// (rescueWait).
const (
	drainWait    = 5 * time.Second
	endDrainWait = 6 * time.Second // below handoffWait: a claim back waits for it
)

// awaitDrained waits, up to wait, until run has read and kept what was
// in its gone node's subject when it was called: up to the subject's
// last batch then (none: it was empty). A session taken off the shelf
// then has what the gone node was sent for it until now — while
// publishers go on sending to the subject, its end moves on, and only a
// bound of this kind is ever reached. It reports whether it got there.
//
// The subject's last batch is read behind a fence: a stream leader just
// elected answers before it has applied all it took. Before the fence,
// the end of a rescue that a node back from a freeze waited for came
// within the second the rescue began, as JetStream elected leaders, and
// the last 24 messages published for the node were lost (one freeze run;
// an empty answer from such a leader is the likely cause).
func (r *Rescuer) awaitDrained(run *rescueRun, wait time.Duration) bool {
	if run.stream == nil {
		return false // the reading never started
	}
	deadline := time.Now().Add(wait)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	last, err := r.lastBatch(ctx, run)
	for err != nil && ctx.Err() == nil {
		select {
		case <-time.After(drainPoll):
		case <-ctx.Done():
		}
		last, err = r.lastBatch(ctx, run)
	}
	for err == nil && last != 0 && run.next.Load() <= last {
		if time.Now().After(deadline) {
			err = context.DeadlineExceeded
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		r.log.Warn().Err(err).Str("gone", run.gone).Msg("cluster: a gone node's messages are not all read yet")
		return false
	}
	return true
}

// lastBatch returns the stream sequence of the last batch in run's gone
// node's subject, behind a fence; 0 when the subject is empty.
func (r *Rescuer) lastBatch(ctx context.Context, run *rescueRun) (uint64, error) {
	if err := r.fence(ctx, run.stream); err != nil {
		return 0, err
	}
	m, err := run.stream.GetLastMsgForSubject(ctx, forwardSubject(run.gone))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return m.Sequence, nil
}

// fenceSubject is a subject of the forward stream that no node reads (no
// node's name has a "~").
var fenceSubject = forwardSubject("~fence")

// fence returns once the forward stream's leader has applied every batch
// the stream took before the call: it publishes a barrier, which the
// leader confirms only then, and purges it (the work queue would keep
// it, unread).
func (r *Rescuer) fence(ctx context.Context, stream jetstream.Stream) error {
	if _, err := r.node.js.Publish(ctx, fenceSubject, nil); err != nil {
		return err
	}
	_ = stream.Purge(ctx, jetstream.WithPurgeSubject(fenceSubject)) // what is left goes with the next
	return nil
}

// rescueClaimWait bounds beforeClaim's wait for a rescuer to take the
// session.
const rescueClaimWait = 10 * time.Second

// errNotSettled refuses a claim of a session its rescuer holds but has
// not yet settled: what waited for it in its gone node's subject is not
// all read (the stream may be electing a leader). The client, refused
// with CONNACK 0x88, connects again.
var errNotSettled = errors.New("cluster: the session's rescuer has not yet read all that was sent for it")

// beforeClaim runs before this node claims clientID's session for a
// client that connects: if another node owns it and is gone — it does not
// answer its ping — that node's rescue is made now, rather than
// rescue_after later, and the claim waits (up to rescueClaimWait) until a
// rescuer holds the session. The claim then takes it from the rescuer,
// with what the gone node's subject of the forward stream held for it,
// instead of from the copy as it was when the node died. Of a session a
// rescuer holds, the rescuer is asked first whether it has all that was
// sent for it (settleRequest): a claim that went on without would leave
// the rest in the subject, for no one.
func (r *Rescuer) beforeClaim(ctx context.Context, clientID string) error {
	o, ok, err := r.owners.Get(ctx, clientID)
	if err != nil || !ok {
		return nil
	}
	self := r.node.cfg.Node
	if o.Node != self && !o.Rescue {
		if r.node.answers(o.Node) {
			return nil
		}
		r.awaitRescue(ctx, clientID, o.Node)
		if o, ok, err = r.owners.Get(ctx, clientID); err != nil || !ok {
			return nil
		}
	}
	switch {
	case !o.Rescue:
		return nil
	case o.Node == self: // on this node's own shelf
		if !r.settled(clientID, self) {
			return errNotSettled
		}
		return nil
	}
	reply, err := r.node.nc.RequestMsgWithContext(ctx, r.sessions.handoffRequest(o.Node, settleRequest(clientID)))
	if err == nil && bytes.Equal(reply.Data, notSettledReply) {
		return errNotSettled
	}
	return nil // settled, or the rescuer is gone too: the copy has it
}

// awaitRescue has gone's rescue made, if no node makes it yet, and waits
// (up to rescueClaimWait) until its rescuer holds gone's sessions.
func (r *Rescuer) awaitRescue(ctx context.Context, clientID, gone string) {
	if r.tries.TryLock() { // else a rescue is under way: wait for it
		r.tryRescueLocked(gone)
		r.tries.Unlock()
	}
	deadline := time.Now().Add(rescueClaimWait)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if e, err := r.kv.Get(ctx, gone); err == nil {
			if _, state := parseRescue(e.Value()); state == rescueReady || state == rescueDone {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	r.log.Warn().Str("client", clientID).Str("gone", gone).Msg("cluster: no rescuer took a gone node's session in time; it is taken from its replicated copy")
}
