package cluster

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/shoalmq/shoal/internal/counters"
	"github.com/shoalmq/shoal/internal/dispatch"
	"github.com/shoalmq/shoal/router"
)

// How messages cross nodes.
//
// Each node publishes its interest to the interest bucket, one key per
// distinct filter its sessions subscribe to ("i.{node}.{filter}") and one
// per shared group they are members of ("g.{node}.{group}.{filter}", the
// value the number of members), and watches everyone else's. For each
// other node it puts a Peer into its own subscription table under each of
// that node's filters, and as many Peers as that node has members into
// each shared group. Matching a PUBLISH then names, among this node's
// sessions, each other node with interest once however many of its filters
// match (the table merges a subscriber's filters), and picks one member of
// each shared group among all nodes' members with the configured strategy
// (weighted by members, not nodes). The message goes once to each such
// node's subject ("shoal.node.{node}"), from one connection: NATS keeps the
// order of what one connection publishes to one subject, so each
// publisher's order holds per subscriber. The receiving node routes it to
// its own sessions only (dispatch.Job Local, and Group for the member the
// sender picked), at the QoS its subscriptions grant.
//
// Interest is per distinct filter: a thousand sessions subscribed to
// "a/+" on one node are one key, written when the first subscribes and
// deleted when the last goes. The writes are asynchronous: a SUBSCRIBE is
// not held until every node has seen it, so a message published elsewhere
// right after a SUBACK may miss the new subscriber, as a message in flight
// on one node may miss a subscription made meanwhile.

// interestBucket is the key-value bucket of the nodes' interest.
const interestBucket = "shoal_interest"

// pendingLimits is how much NATS holds for a node, in messages and bytes,
// that its router workers have not yet taken.
var pendingLimits = [2]int{1 << 20, 256 << 20}

// nodeSubject is the subject node receives messages on.
func nodeSubject(node string) string { return "shoal.node." + node }

// Peers is the cluster's part in routing: the other nodes' interest in
// this node's subscription table, this node's interest published for
// them, and the messages between them. Its methods are safe for
// concurrent use.
type Peers struct {
	node  *Node
	self  string
	kv    jetstream.KeyValue
	table *Table
	disp  Submitter
	log   zerolog.Logger
	// gate, when set (before Start), holds the reading of the forward
	// stream, and its acknowledgements, while this node does not serve
	// (Health).
	gate gate

	// remotes are the other nodes as the table holds them; watch
	// goroutine only.
	remotes map[string]*remote
	// stale are the filters of this node's keys in the bucket when it
	// started, for Start.
	stale []string
	// rounds counts the publish goroutine's rounds of interest writes
	// that ended with none failed (Sync); publishing says that goroutine
	// runs.
	rounds     atomic.Uint64
	publishing atomic.Bool
	// nodes lists the other nodes that have had interest, for Nodes:
	// written by the watch goroutine, read by anyone.
	nodes atomic.Pointer[[]string]
	ready chan struct{} // closed once the bucket's keys at start are in the table
	// pending bounds what NATS holds for this node, in messages and
	// bytes, before it drops (Drops): pendingLimits, or a test's.
	pending [2]int
	// ackWait is how long the forward stream waits for this node to
	// acknowledge a message before it sends it again: forwardAckWait,
	// or a test's.
	ackWait time.Duration

	sub  *nats.Subscription
	fwd  atomic.Pointer[forwarder] // the forward stream (forward.go), once Start opened it
	stop chan struct{}
	done sync.WaitGroup

	watch *bucketWatch // the interest bucket's, set by Start
	// sessions hold the messages addressed to a session being claimed
	// here (Handover); nil: none are held.
	sessions *Sessions
	// leaving are the sessions this node handed over lately, by client
	// id (handover.go). Guarded by leavingMu.
	leavingMu sync.Mutex
	leaving   map[string]*leaving
	// backlog is the stream sequence of the last batch this node's
	// subject of the forward stream held when it started, until this
	// node has read it (0: read, or there was none): the lingers of the
	// stand-ins put before Start begin then (caughtUp).
	backlog      atomic.Uint64
	backlogTimer *time.Timer // Start's; stopped by Close

	// Counters, for $SYS and metrics.
	Sent, Received, Dropped atomic.Int64
	// NotStored counts QoS 1 and 2 messages the forward stream did not
	// take: their publishers were refused (dispatch.Receipt).
	NotStored atomic.Int64
	// PassedOn counts the messages sent on to the new nodes of sessions
	// this node handed over lately (handover.go).
	PassedOn atomic.Int64
	// Writes times the interest bucket's writes, from the request to its
	// acknowledgement: the replicas' round trip (replication latency).
	Writes counters.Durations
	// Forwards times the forward stream's acknowledgements of QoS 1 and
	// 2 messages, from the publish to a majority of the replicas having
	// it.
	Forwards counters.Durations
}

// remote is another node: its Peers (members[0] also stands for its
// non-shared filters), its filters and its members per shared group, as
// the table has them.
type remote struct {
	out     *nodeOut // its batch in the forward stream
	members []*peer
	filters map[string]struct{}
	groups  map[string]int
}

// peer is a dispatch.Peer: a node, or one of its members of shared
// groups.
type peer struct {
	ps      *Peers
	id      string   // the subscriber's ClientID: no client's id has a NUL
	subject string   // core NATS, for QoS 0
	out     *nodeOut // the forward stream, for QoS 1 and 2: the node's
}

var _ dispatch.Peer = (*peer)(nil)

func (p *peer) ClientID() string { return p.id }

// Forward implements dispatch.Peer: it publishes m to p's node, a QoS 0
// message on core NATS, a QoS 1 or 2 one into the forward stream, whose
// receipt the publisher's acknowledgement waits for (forward.go). A
// message past its expiry is not sent; a QoS 0 one NATS will not take (the
// connection is closed) is counted as dropped.
func (p *peer) Forward(m *router.Message, mt *router.Match) dispatch.Receipt {
	now := time.Now().UnixNano()
	if m.Expired(now) {
		return nil
	}
	group := ""
	if mt.Shared {
		group = mt.Group
	}
	if m.QoS > 0 {
		return p.out.add(m, group, "", now)
	}
	buf := framePool.Get()
	buf.B = appendFrame(buf.B[:0], m, group, now)
	if err := p.ps.node.nc.Publish(p.subject, buf.B); err != nil {
		p.ps.Dropped.Add(1)
	} else {
		p.ps.Sent.Add(1)
	}
	framePool.Put(buf)
	return nil
}

// NewPeers opens the interest bucket, notes what this node published
// there before it last stopped, and returns the Peers of table. Start
// makes it route, and writes this node's interest over the old: a key
// whose filter the table still has is put again, the others deleted, so
// that no moment of the restart leaves a filter without its key.
func (n *Node) NewPeers(ctx context.Context, table *Table, log zerolog.Logger) (*Peers, error) {
	kv, err := n.openBucket(ctx, interestBucket)
	if err != nil {
		return nil, err
	}
	ps := &Peers{node: n, self: n.cfg.Node, kv: kv, table: table, log: log,
		remotes: map[string]*remote{}, ready: make(chan struct{}), stop: make(chan struct{}),
		pending: pendingLimits, ackWait: forwardAckWait}
	// What this node left behind; Start writes the table's
	// subscriptions now (restored sessions') over it.
	var keys jetstream.KeyLister
	err = n.retryOpen(ctx, "listing this node's old interest", func(context.Context) (err error) {
		// Under ctx, not the attempt's context: the lister reads the keys
		// after this returns.
		keys, err = kv.ListKeysFiltered(ctx, "i."+ps.self+".>", "g."+ps.self+".>")
		return err
	})
	if err != nil {
		return nil, err
	}
	for k := range keys.Keys() {
		if _, filter, _, ok := parseKey(k); ok {
			ps.stale = append(ps.stale, filter)
		} else if err := kv.Delete(ctx, k); err != nil {
			return nil, fmt.Errorf("cluster: clearing this node's old interest: %w", err)
		}
	}
	return ps, nil
}

// Submitter takes the messages other nodes send this node: the
// dispatch.Dispatcher.
type Submitter interface {
	SubmitWait(j dispatch.Job, stop <-chan struct{}) bool
}

// gate is what Peers asks of Health.
type gate interface {
	Serving() bool
	Await(stop <-chan struct{}) bool
}

// setGate makes g hold the reading of the forward stream, and its
// acknowledgements. Before Start.
func (ps *Peers) setGate(g gate) { ps.gate = g }

// Start begins routing: messages for this node go to d, the other nodes'
// interest comes into the table and this node's goes out, all of it
// first. It returns once the interest the bucket held is in the table.
func (ps *Peers) Start(ctx context.Context, d Submitter) error {
	ps.disp = d
	sub, err := ps.node.nc.Subscribe(nodeSubject(ps.self), ps.receive)
	if err != nil {
		return fmt.Errorf("cluster: subscribing to this node's messages: %w", err)
	}
	// Room for bursts: a full pending queue drops (counted by NATS as a
	// slow consumer, and in Drops), as a full session queue does.
	_ = sub.SetPendingLimits(ps.pending[0], ps.pending[1])
	ps.sub = sub
	if err := ps.openForward(ctx); err != nil {
		return err
	}
	if err := ps.consume(); err != nil {
		return err
	}
	ps.watch = &bucketWatch{kv: ps.kv, what: "interest", apply: ps.apply, forget: ps.forgetUnseen}
	if err := ps.watch.start(ps.ready); err != nil {
		return err
	}
	ps.table.markAll()
	for _, f := range ps.stale { // deleted unless the table has it
		ps.table.markDirty(f)
	}
	ps.stale = nil
	ps.done.Add(1)
	ps.publishing.Store(true)
	if ps.backlog.Load() == 0 {
		ps.startLeaving()
	} else {
		ps.backlogTimer = time.AfterFunc(backlogWait, ps.caughtUp) // should the batch not come
	}
	go ps.publish()
	select {
	case <-ps.ready:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("cluster: reading the nodes' interest: %w", ctx.Err())
	}
}

// Close stops routing between nodes; call it before the node closes.
func (ps *Peers) Close() {
	select {
	case <-ps.stop:
		return
	default:
	}
	close(ps.stop)
	if ps.backlogTimer != nil {
		ps.backlogTimer.Stop()
	}
	if ps.sub != nil {
		_ = ps.sub.Unsubscribe()
	}
	ps.closeForward()
	if ps.watch != nil {
		ps.watch.Close()
	}
	ps.done.Wait()
}

// Rewatch watches the interest bucket anew, and returns once the table
// has what the bucket holds, or ctx ends: for a node back from a
// partition, whose watch may have stopped bringing changes.
func (ps *Peers) Rewatch(ctx context.Context) error { return ps.watch.Anew(ctx) }

// forgetUnseen takes out of the table the other nodes' filters and groups
// whose keys a watch anew did not bring (bucketWatch.forget). Watch
// goroutine only.
func (ps *Peers) forgetUnseen(keys map[string]bool) {
	seen := make(map[string]bool, len(keys))
	for k := range keys {
		if node, filter, _, ok := parseKey(k); ok {
			seen[node+"\x00"+filter] = true
		}
	}
	for node, r := range ps.remotes {
		for f := range r.filters {
			if !seen[node+"\x00"+f] {
				ps.setFilter(node, r, f, false)
			}
		}
		for g := range r.groups {
			if !seen[node+"\x00"+g] {
				ps.setGroup(node, r, g, 0)
			}
		}
	}
}

// Drops counts the messages lost between this node and the others: those
// NATS would not take from Forward (its connection closed), those that
// came malformed, and those NATS dropped before this node could take
// them (its pending limit for this node's subject overflowed: the other
// nodes sent faster than the router workers here took them).
func (ps *Peers) Drops() int64 {
	n := ps.Dropped.Load()
	if ps.sub != nil {
		if d, err := ps.sub.Dropped(); err == nil {
			n += int64(d)
		}
	}
	return n
}

// Ready reports whether the interest the bucket held at Start is in the
// table.
func (ps *Peers) Ready() <-chan struct{} { return ps.ready }

// receive routes a message from another node to this node's sessions. It
// runs on the subscription's goroutine, and waits for room with the router
// workers: what NATS holds for this node meanwhile is bounded by the
// pending limits.
func (ps *Peers) receive(msg *nats.Msg) {
	m, group, err := decodeFrame(msg.Data, time.Now().UnixNano())
	if err != nil {
		ps.Dropped.Add(1)
		ps.log.Warn().Err(err).Msg("cluster: a malformed message from another node")
		return
	}
	ps.Received.Add(1)
	if !ps.disp.SubmitWait(dispatch.Job{Msg: m, Local: true, Group: group}, ps.stop) {
		m.Release()
	}
}

// publish writes the keys of the filters whose interest changed, until
// Close. A write that fails is tried again a little later.
func (ps *Peers) publish() {
	defer ps.done.Done()
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	for {
		select {
		case <-ps.stop:
			return
		case <-ps.table.wake:
		case <-retry.C:
		}
		failed := false
		round := ps.rounds.Load() + 1 // the round a Sync begun before now waits for
		for f, n := range ps.table.takeDirty() {
			start := time.Now()
			if err := ps.write(f, n); err != nil {
				ps.log.Warn().Err(err).Str("filter", f).Msg("cluster: publishing interest failed; will try again")
				ps.table.markDirty(f)
				failed = true
			} else {
				ps.Writes.Observe(time.Since(start))
			}
		}
		if failed {
			retry.Reset(time.Second)
		} else {
			ps.rounds.Store(round)
		}
	}
}

// Sync waits until the interest this node's table has now is in the
// bucket: a round of writes begun after it was called ended with none
// failed. Until ctx ends: it reports whether it got there. Before Start
// it returns at once: Start writes the whole table (a node that settles
// the sessions it loaded, before it routes).
func (ps *Peers) Sync(ctx context.Context) bool {
	if !ps.publishing.Load() {
		return true
	}
	want := ps.rounds.Load() + 2 // the round under way may have begun before
	for ps.rounds.Load() < want {
		ps.table.poke() // a round now, even with nothing due
		select {
		case <-ctx.Done():
			return false
		case <-ps.stop:
			return false
		case <-time.After(5 * time.Millisecond):
		}
	}
	return true
}

// write puts filter's key with n subscriptions (deletes it at 0).
func (ps *Peers) write(filter string, n int) error {
	key, value := ps.key(filter, n)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if n <= 0 {
		err := ps.kv.Delete(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil
		}
		return err
	}
	_, err := ps.kv.Put(ctx, key, value)
	return err
}

// key returns filter's key in the interest bucket, and its value for n
// subscriptions.
func (ps *Peers) key(filter string, n int) (string, []byte) {
	if group, inner, ok := router.ParseShared(filter); ok {
		b := appendLevel([]byte("g."+ps.self+"."), group)
		b = appendLevels(append(b, '.'), inner)
		return string(b), strconv.AppendInt(nil, int64(n), 10)
	}
	return string(appendLevels([]byte("i."+ps.self+"."), filter)), nil
}

// parseKey is key's inverse: the node, the filter (whole, "$share/g/f",
// for a group) and whether it is a group's.
func parseKey(key string) (node, filter string, shared, ok bool) {
	kind, rest, _ := strings.Cut(key, ".")
	node, rest, ok = strings.Cut(rest, ".")
	if !ok || node == "" {
		return "", "", false, false
	}
	switch kind {
	case "i":
		filter, ok = levelsOf(rest)
		return node, filter, false, ok
	case "g":
		gtoken, levels, found := strings.Cut(rest, ".")
		group, gok := levelsOf(gtoken)
		inner, iok := levelsOf(levels)
		if !found || !gok || !iok || group == "" || strings.Contains(group, "/") {
			return "", "", false, false
		}
		return node, "$share/" + group + "/" + inner, true, true
	}
	return "", "", false, false
}

// apply brings one key's change into the table. Watch goroutine only.
func (ps *Peers) apply(e jetstream.KeyValueEntry) {
	node, filter, shared, ok := parseKey(e.Key())
	if !ok {
		ps.log.Warn().Str("key", e.Key()).Msg("cluster: an interest key of no known form")
		return
	}
	if node == ps.self {
		return
	}
	r := ps.remotes[node]
	if r == nil {
		r = &remote{filters: map[string]struct{}{}, groups: map[string]int{}}
		ps.remotes[node] = r
		nodes := append(ps.Nodes(), node)
		ps.nodes.Store(&nodes)
	}
	put := e.Operation() == jetstream.KeyValuePut
	if !shared {
		ps.setFilter(node, r, filter, put)
		return
	}
	n := 0
	if put {
		v, err := strconv.Atoi(string(e.Value()))
		if err != nil || v < 0 {
			ps.log.Warn().Str("key", e.Key()).Msg("cluster: a shared group's member count is not a number")
			return
		}
		n = min(v, 1<<16) // a bound on what a bad value can cost
	}
	ps.setGroup(node, r, filter, n)
}

// setFilter puts node's interest in filter into the table, or takes it
// out. Watch goroutine only.
func (ps *Peers) setFilter(node string, r *remote, filter string, put bool) {
	_, had := r.filters[filter]
	switch {
	case put && !had:
		r.filters[filter] = struct{}{}
		ps.table.Table.Subscribe(ps.member(node, r, 0), filter, router.Options{QoS: 2, RetainAsPublished: true})
		ps.table.peerSubs.Add(1)
	case !put && had:
		delete(r.filters, filter)
		ps.table.Table.Unsubscribe(r.members[0], filter)
		ps.table.peerSubs.Add(-1)
	}
}

// setGroup makes node's members of shared group filter ("group/filter")
// n in the table. Watch goroutine only.
func (ps *Peers) setGroup(node string, r *remote, filter string, n int) {
	had := r.groups[filter]
	for i := had; i < n; i++ {
		ps.table.Table.Subscribe(ps.member(node, r, i), filter, router.Options{QoS: 2})
	}
	for i := n; i < had; i++ {
		ps.table.Table.Unsubscribe(r.members[i], filter)
	}
	ps.table.peerSubs.Add(int64(n - had))
	if n == 0 {
		delete(r.groups, filter)
	} else {
		r.groups[filter] = n
	}
}

// Nodes returns the other nodes that have had interest since this node
// started: those whose messages may wait in the forward stream. The
// caller may keep the slice, not change it.
func (ps *Peers) Nodes() []string {
	if p := ps.nodes.Load(); p != nil {
		return (*p)[:len(*p):len(*p)]
	}
	return nil
}

// member returns node's i-th Peer, making it when it is new.
func (ps *Peers) member(node string, r *remote, i int) *peer {
	for len(r.members) <= i {
		if r.out == nil {
			r.out = &nodeOut{ps: ps, subject: forwardSubject(node)}
		}
		r.members = append(r.members, &peer{ps: ps, subject: nodeSubject(node), out: r.out,
			id: peerID(node, len(r.members))})
	}
	return r.members[i]
}

// peerID is the subscriber id of node's i-th Peer: no client's id has a
// NUL. The 0th stands for node's plain filters.
func peerID(node string, i int) string { return "\x00peer " + node + " " + strconv.Itoa(i) }

// sendsTo reports whether this node's table sends a message on topic to
// node by that node's interest in a plain filter.
func (ps *Peers) sendsTo(node string, topic []byte) bool {
	if ps.table == nil {
		return false
	}
	ms := router.Matches{NoShared: true}
	ps.table.Table.Match(topic, nil, nil, &ms)
	id := peerID(node, 0)
	for i := range ms.List {
		if ms.List[i].Sub.ClientID() == id {
			return true
		}
	}
	return false
}

// Table is this node's subscription table in a cluster: a router.Table,
// with the other nodes in it as Peers (put there by Peers), that keeps
// count of this node's own subscriptions per distinct filter for Peers to
// publish. Safe for concurrent use.
type Table struct {
	*router.Table

	// local counts this node's subscriptions per distinct filter (a
	// shared one whole, "$share/g/f"); dirty are the filters whose key
	// is due for a write. Guarded by mu.
	mu    sync.Mutex
	local map[string]int
	dirty map[string]struct{}
	wake  chan struct{} // has room for one: a write is due

	// peerSubs counts the subscriptions that are Peers, for Count;
	// leavingSubs those of the sessions that left (handover.go).
	peerSubs, leavingSubs atomic.Int64
}

// NewTable returns t as a cluster's table.
func NewTable(t *router.Table) *Table {
	return &Table{Table: t, local: map[string]int{}, dirty: map[string]struct{}{}, wake: make(chan struct{}, 1)}
}

var _ router.Subscriptions = (*Table)(nil)

// Subscribe implements router.Subscriptions.
func (t *Table) Subscribe(s router.Subscriber, filter string, o router.Options) bool {
	existed := t.Table.Subscribe(s, filter, o)
	if !existed {
		t.interest(filter, 1)
	}
	return existed
}

// Unsubscribe implements router.Subscriptions.
func (t *Table) Unsubscribe(s router.Subscriber, filter string) bool {
	existed := t.Table.Unsubscribe(s, filter)
	if existed {
		t.interest(filter, -1)
	}
	return existed
}

// Count implements router.Subscriptions: this node's subscriptions,
// without the Peers.
func (t *Table) Count() int {
	return t.Table.Count() - int(t.peerSubs.Load()) - int(t.leavingSubs.Load())
}

// interest records that this node's subscriptions to filter changed by
// delta (+1 or -1): the filter's key is due for a write when it gains its
// first subscriber or loses its last, and for a shared group whenever its
// count of members changes.
func (t *Table) interest(filter string, delta int) {
	t.mu.Lock()
	before := t.local[filter]
	after := before + delta
	if after <= 0 {
		delete(t.local, filter)
	} else {
		t.local[filter] = after
	}
	_, _, shared := router.ParseShared(filter)
	if shared || (before == 0) != (after <= 0) {
		t.markDirtyLocked(filter)
	}
	t.mu.Unlock()
}

// markDirty makes filter's key due for a write again.
// poke wakes the publish goroutine for a round of writes.
func (t *Table) poke() {
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

func (t *Table) markDirty(filter string) {
	t.mu.Lock()
	t.markDirtyLocked(filter)
	t.mu.Unlock()
}

func (t *Table) markDirtyLocked(filter string) {
	t.dirty[filter] = struct{}{}
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

// takeDirty returns the filters whose keys are due, with their counts of
// subscriptions now (0: delete the key), and clears them.
func (t *Table) takeDirty() map[string]int {
	t.mu.Lock()
	defer t.mu.Unlock()
	due := make(map[string]int, len(t.dirty))
	for f := range t.dirty {
		due[f] = t.local[f]
	}
	clear(t.dirty)
	return due
}

// markAll makes every filter with subscriptions due: written over what
// the bucket had of this node.
func (t *Table) markAll() {
	t.mu.Lock()
	for f := range t.local {
		t.markDirtyLocked(f)
	}
	t.mu.Unlock()
}
