package replica

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/shoalmq/shoal/internal/cluster"
	"github.com/shoalmq/shoal/store"
)

// streamName is the stream of the replicated sessions, and root its
// subjects' prefix.
const (
	streamName = "shoal_sessions"
	root       = "shoal.ss."
)

const (
	// maxPending is how many publishes may wait for the stream's
	// confirmation; a writer's Commit waits for room past that, up to
	// stallWait, after which the change counts as not replicated.
	maxPending = 4096
	stallWait  = 5 * time.Second
	// ackTimeout bounds the wait for one confirmation; detachWait
	// Detach's for all of them.
	ackTimeout = 10 * time.Second
	detachWait = 2 * time.Second
	// tombstoneTTL is how long the empty message that removes a record
	// stays: a reader meanwhile sees the record removed, and after it
	// nothing is left of the record.
	tombstoneTTL = time.Second
	// receivedTTL is how long the copy keeps a receipt (Received) past
	// the cluster's rescue_after: longer than a message another node
	// forwarded can wait to come again — the forward stream's ack wait
	// (30 s, package cluster), or the rescue of a node gone meanwhile,
	// which begins rescue_after after it went — so that the session's
	// next node, or a rescuer, can tell it was delivered.
	receivedTTL = time.Minute
	// purgeQueue bounds the purges waiting for the janitor; past it a
	// purge is dropped (counted): an adoption's leaves records of older
	// generations, unread, until the session's next adoption purges
	// them; a repair's is made again (its session marked stale).
	purgeQueue = 4096
)

// Holder says which sessions this node may write: package cluster's
// Sessions.
type Holder interface {
	// Mine returns the epoch of this node's claim of clientID's session
	// if that is the newest claim the node knows of.
	Mine(clientID string) (epoch uint64, ok bool)
	// Serving reports whether this node serves: with its cluster's
	// majority, and not back from a cut or a freeze it has not settled
	// yet. A repair waits for it: a node just back may not know yet
	// that its sessions moved.
	Serving() bool
}

// Store is a store.Store whose writers also copy every change to a
// session this node holds into the cluster's stream. Safe for concurrent
// use.
type Store struct {
	store.Store // this node's own

	js     jetstream.JetStream // publishing side, with its own bounds
	stream jetstream.Stream
	// receipts is how long a receipt lasts: receivedTTL past the
	// cluster's rescue_after.
	receipts time.Duration
	holder   Holder
	log      zerolog.Logger

	// mu orders the writers' publishes, which is the order the stream
	// takes them in, and guards gens and published (LOCKORDER: a
	// writer's Commit takes it after its local commit, and holds no
	// other lock of this package).
	mu sync.Mutex
	// gens is the generation of each session this node writes.
	gens      map[string]uint64
	published uint64 // publishes made, each a confirmation to wait for
	detached  bool   // Detach ran: nothing more is published

	// vouched is the count of publishes (published) up to which a
	// syncing commit's wait ended while the node served: the copy had
	// them, or their failures are counted, before any other node could
	// take the sessions on (writer.Commit).
	vouched atomic.Uint64

	// confirms carries the publishes, in order, to the goroutine that
	// waits for their confirmations (confirm).
	confirms chan inFlight

	// cmu guards confirmed, which counts the confirmations in; cond
	// wakes the writers waiting for them.
	cmu       sync.Mutex
	cond      *sync.Cond
	confirmed uint64
	closed    bool
	// held: the node is cut off from its cluster (Hold), and the
	// writers' syncing commits do not wait for what cannot come.
	held bool
	// stale are the sessions a change of which the stream did not
	// confirm: their copy may lack it, or have it; repair writes them
	// anew once the stream confirms a publish again (repairs).
	stale   map[string]struct{}
	repairs chan struct{}

	purges chan purgeReq
	stop   chan struct{}
	done   sync.WaitGroup

	// Failures counts changes the stream did not confirm: not
	// replicated, only on this node's disk. PurgesDropped counts purges
	// dropped because the janitor's queue was full.
	Failures      atomic.Int64
	PurgesDropped atomic.Int64
	// Repaired counts sessions written anew after such a failure
	// (RepairWith); RepairsSkipped those not, as the copy's session
	// record was no longer this node's generation.
	Repaired       atomic.Int64
	RepairsSkipped atomic.Int64
	lastLog        atomic.Int64 // Unix ns of the last failure logged
}

// inFlight is one publish on its way: its confirmation, or the error
// that kept it from being sent; the session it is of; and what to purge
// once it is confirmed.
type inFlight struct {
	f      jetstream.PubAckFuture
	err    error
	client string
	purge  purge
}

// purge says what to remove of client's records once the publish it
// came with is confirmed (nothing when client is ""):
//   - below, gen 0: those older than the publish, of every generation (a
//     session adopted here, written anew under this node's claim);
//   - below, gen not 0: those older than the publish, of generation gen
//     alone (a session repaired: written anew under its generation — a
//     newer one is another node's);
//   - not below: every record of generation gen (the session ended).
//
// Below, the receipts stay: they expire by themselves, and still hold.
type purge struct {
	client string
	gen    uint64
	below  bool
}

// Open makes st the local side of a Store on node n's cluster, writing
// the sessions holder says this node holds: it creates the stream, or
// finds it, and starts the goroutines that wait for confirmations and
// purge.
func Open(ctx context.Context, n *cluster.Node, st store.Store, holder Holder, log zerolog.Logger) (*Store, error) {
	js, err := jetstream.New(n.Conn(),
		jetstream.WithPublishAsyncMaxPending(maxPending),
		jetstream.WithPublishAsyncTimeout(ackTimeout))
	if err != nil {
		return nil, fmt.Errorf("replica: %w", err)
	}
	stream, err := n.OpenStream(ctx, jetstream.StreamConfig{
		Name:              streamName,
		Description:       "Shoal: the persistent sessions, as they change",
		Subjects:          []string{root + ">"},
		Storage:           jetstream.FileStorage,
		MaxMsgsPerSubject: 1,
		AllowMsgTTL:       true,
		MaxMsgSize:        int32(n.Conn().MaxPayload()),
	})
	if err != nil {
		return nil, err
	}
	r := &Store{Store: st, js: js, stream: stream, holder: holder, log: log, receipts: receivedTTL + n.RescueAfter(),
		gens: map[string]uint64{}, confirms: make(chan inFlight, maxPending),
		purges: make(chan purgeReq, purgeQueue), repairs: make(chan struct{}, 1), stop: make(chan struct{})}
	r.cond = sync.NewCond(&r.cmu)
	r.done.Add(2)
	go r.confirm()
	go r.janitor()
	return r, nil
}

// NewWriter returns a writer of the local store that copies the
// sessions' changes into the stream as it commits.
func (r *Store) NewWriter() store.Writer { return &writer{Writer: r.Store.NewWriter(), r: r} }

// Sync syncs the local store and waits for every publish made so far.
func (r *Store) Sync() error {
	err := r.Store.Sync()
	r.Flush()
	return err
}

// Flush waits until the stream has confirmed (or failed) every publish
// made so far.
func (r *Store) Flush() {
	r.mu.Lock()
	n := r.published
	r.mu.Unlock()
	r.wait(n, true)
}

// Detach waits for what was published and stops copying: from now on
// the writers write the local store only. Before the cluster's node
// closes.
func (r *Store) Detach() {
	r.mu.Lock()
	if r.detached {
		r.mu.Unlock()
		return
	}
	r.detached = true
	n := r.published
	r.mu.Unlock()
	waited := make(chan struct{})
	go func() {
		r.wait(n, true)
		close(waited)
	}()
	select {
	case <-waited:
	case <-time.After(detachWait):
		r.log.Warn().Uint64("unconfirmed", n-r.confirmedNow()).
			Msg("replica: leaving with changes the stream has not confirmed (they are on this node's disk)")
	}
	r.cmu.Lock()
	r.closed = true
	r.cond.Broadcast()
	r.cmu.Unlock()
	close(r.stop)
	r.done.Wait()
}

// Close detaches r and closes the local store.
func (r *Store) Close() error {
	r.Detach()
	return r.Store.Close()
}

// vouch raises vouched to n.
func (r *Store) vouch(n uint64) {
	for v := r.vouched.Load(); n > v && !r.vouched.CompareAndSwap(v, n); v = r.vouched.Load() {
	}
}

// confirmedNow is how many publishes are confirmed or failed so far.
func (r *Store) confirmedNow() uint64 {
	r.cmu.Lock()
	defer r.cmu.Unlock()
	return r.confirmed
}

// wait blocks until n publishes are confirmed or failed, or r closed —
// or, unless strict, r held.
func (r *Store) wait(n uint64, strict bool) {
	r.cmu.Lock()
	for r.confirmed < n && !r.closed && (strict || !r.held) {
		r.cond.Wait()
	}
	r.cmu.Unlock()
}

// RepairWith has r write anew, whole, each session a change of which the
// stream did not confirm — a publish that timed out while the stream
// elected a leader, say: the copy may lack the change, or have it — once
// the stream confirms a publish again. rewrite (package handoff's
// Rewrite) writes the session as this node has it into the writer it is
// given and commits it, without sync, before the session can change
// again; it reports whether there was one to write. Without the repair,
// the session's next node, reading the copy, would send a message
// completed here again, or miss one owed. Call once, before the writers
// write.
func (r *Store) RepairWith(rewrite func(clientID string, w store.Writer) bool) {
	r.done.Add(1)
	go r.repair(rewrite)
}

// ownRecord reads clientID's session record in the stream and reports
// whether it is still under the generation this node writes, and its
// stream sequence: the repair's own record replaces it on condition that
// no other node wrote one since. A node whose claim moved while the
// stream did not answer (cut off, frozen) learns it a little later; its
// repair would otherwise put back its older generation over the new
// owner's, and readers would read that.
func (r *Store) ownRecord(clientID string) (seq uint64, ours bool) {
	r.mu.Lock()
	gen, ok := r.gens[clientID]
	r.mu.Unlock()
	if !ok {
		return 0, false
	}
	ctx, cancel := context.WithTimeout(context.Background(), ackTimeout)
	defer cancel()
	m, err := r.stream.GetLastMsgForSubject(ctx, string(subjectOf(nil, clientID, 0, 0, 0)))
	if err != nil || len(m.Data) == 0 {
		return 0, false // unreadable now (marked again by the next failure), or ended
	}
	if g, n := binary.Uvarint(m.Data); n <= 0 || g != gen {
		return 0, false
	}
	return m.Sequence, true
}

// repairPause spaces repairs: one whose own publishes the stream did not
// confirm either is tried again after it, at the next confirmation.
const repairPause = time.Second

// repair writes the stale sessions anew (RepairWith).
func (r *Store) repair(rewrite func(clientID string, w store.Writer) bool) {
	defer r.done.Done()
	for {
		select {
		case <-r.repairs:
		case <-r.stop:
			return
		}
		for !r.holder.Serving() {
			select {
			case <-time.After(repairPause):
			case <-r.stop:
				return
			}
		}
		r.cmu.Lock()
		ids := r.stale
		r.stale = nil
		r.cmu.Unlock()
		for id := range ids {
			at, ours := r.ownRecord(id)
			if !ours {
				r.RepairsSkipped.Add(1) // another node's now, or ended
				continue
			}
			if rewrite(id, &writer{Writer: noLocal{}, r: r, anew: true, expect: at}) {
				r.Repaired.Add(1)
			}
		}
		select {
		case <-time.After(repairPause):
		case <-r.stop:
			return
		}
	}
}

// Hold, on, ends the waits of the writers' syncing commits (but for the
// strict writers', CopyWriter and ShelfWriter) at once, and makes those to
// come not wait, until Hold(false): for a node cut off from its cluster's
// majority, whose publishes the stream cannot confirm, and whose event
// loops would otherwise stall for ackTimeout on each syncing commit. What
// is published meanwhile is still confirmed or counted in Failures.
func (r *Store) Hold(on bool) {
	r.cmu.Lock()
	r.held = on
	r.cond.Broadcast()
	r.cmu.Unlock()
}

// confirm waits for each publish's confirmation, in order, and counts it
// in; a failed one is counted in Failures and logged.
func (r *Store) confirm() {
	defer r.done.Done()
	for {
		var p inFlight
		select {
		case p = <-r.confirms:
		case <-r.stop:
			return
		}
		var seq uint64
		err := p.err
		if err == nil {
			select {
			case ack := <-p.f.Ok():
				seq = ack.Sequence
			case err = <-p.f.Err():
			}
		}
		var api *jetstream.APIError
		switch pg := p.purge; {
		case errors.As(err, &api) && (api.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
			api.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant):
			// A repair's session record, refused: another node wrote the
			// session since the repair read it. It is that node's now.
			r.log.Debug().Str("client", p.client).Msg("replica: a repair found the session written by another node; left to it")
		case err != nil:
			r.failed(err, p.client)
		case pg.client != "" && !pg.below:
			r.queuePurge(purgeReq{subject: genPrefix(pg.client, pg.gen)})
		case pg.client != "":
			for _, kind := range []byte{'d', 'm', 'r'} {
				// A repair's purge that does not happen leaves records
				// the repair replaced readable: it is made again.
				r.queuePurge(purgeReq{subject: kindPrefix(pg.client, pg.gen, kind), seq: seq,
					client: pg.client, repair: pg.gen != 0})
			}
		}
		r.cmu.Lock()
		r.confirmed++
		if err == nil && len(r.stale) > 0 {
			select { // the stream answers again: repair what it missed
			case r.repairs <- struct{}{}:
			default:
			}
		}
		r.cond.Broadcast()
		r.cmu.Unlock()
	}
}

// failed counts and logs (at most once a second) a change to client's
// session not replicated, and marks the session for repair.
func (r *Store) failed(err error, client string) {
	r.Failures.Add(1)
	r.markStale(client)
	now := time.Now().UnixNano()
	if last := r.lastLog.Load(); now-last > int64(time.Second) && r.lastLog.CompareAndSwap(last, now) {
		r.log.Error().Err(err).Int64("failures", r.Failures.Load()).
			Msg("replica: a session's change was not replicated (it is on this node's disk; the session is copied anew once the stream answers)")
	}
}

// markStale marks client's session (none if "") for repair.
func (r *Store) markStale(client string) {
	if client == "" {
		return
	}
	r.cmu.Lock()
	if r.stale == nil {
		r.stale = map[string]struct{}{}
	}
	r.stale[client] = struct{}{}
	r.cmu.Unlock()
}

// purgeReq is a purge the janitor makes: of the records matching
// subject, only those below stream sequence seq if it is not 0; for a
// repair of client's session, when repair.
type purgeReq struct {
	subject string
	seq     uint64
	client  string
	repair  bool
}

// queuePurge hands p to the janitor, or drops it if its queue is full.
func (r *Store) queuePurge(p purgeReq) {
	select {
	case r.purges <- p:
	default:
		r.PurgesDropped.Add(1)
		if p.repair {
			r.markStale(p.client)
		}
	}
}

// janitor purges what adoptions and ended sessions left in the stream.
func (r *Store) janitor() {
	defer r.done.Done()
	for {
		var p purgeReq
		select {
		case p = <-r.purges:
		case <-r.stop:
			return
		}
		opts := []jetstream.StreamPurgeOpt{jetstream.WithPurgeSubject(p.subject)}
		if p.seq != 0 {
			opts = append(opts, jetstream.WithPurgeSequence(p.seq))
		}
		ctx, cancel := context.WithTimeout(context.Background(), ackTimeout)
		err := r.stream.Purge(ctx, opts...)
		cancel()
		if err != nil && !errors.Is(err, context.Canceled) {
			if p.repair {
				r.markStale(p.client)
			}
			r.log.Warn().Err(err).Str("subject", p.subject).Msg("replica: purging a session's old records failed")
		}
	}
}

// publishLocked publishes one record of client's session that lasts ttl
// (0: until replaced), data nil for a tombstone or a receipt; p's purge
// is made once it is confirmed. r.mu must be held.
func (r *Store) publishLocked(client string, subject []byte, data []byte, ttl time.Duration, p purge) {
	r.publishIfLocked(client, subject, data, ttl, p, 0)
}

// publishIfLocked is publishLocked, on condition that the subject's last
// record is still stream sequence expect, if it is not 0 (a repair's
// session record). r.mu must be held.
func (r *Store) publishIfLocked(client string, subject []byte, data []byte, ttl time.Duration, p purge, expect uint64) {
	if r.detached {
		return
	}
	m := &nats.Msg{Subject: string(subject), Data: data}
	var f jetstream.PubAckFuture
	var err error
	// Never published again by nats.go (a "no responders" answer, as
	// while the stream elects a leader, is retried a moment later by
	// default): landing after the changes that followed it, it would
	// put back what they removed — a delivery's record over its
	// tombstone. It fails instead, and the session is copied anew.
	switch {
	case ttl > 0:
		f, err = r.js.PublishMsgAsync(m, jetstream.WithMsgTTL(ttl), jetstream.WithStallWait(stallWait), jetstream.WithRetryAttempts(0))
	case expect != 0:
		f, err = r.js.PublishMsgAsync(m, jetstream.WithExpectLastSequencePerSubject(expect), jetstream.WithStallWait(stallWait), jetstream.WithRetryAttempts(0))
	default:
		f, err = r.js.PublishMsgAsync(m, jetstream.WithStallWait(stallWait), jetstream.WithRetryAttempts(0))
	}
	r.published++
	select {
	case r.confirms <- inFlight{f: f, err: err, client: client, purge: p}:
	case <-r.stop: // closing: nobody waits for it
	}
}

// subjectOf appends the subject of a record of clientID's session to dst:
// gen 0 for the session record itself.
func subjectOf(dst []byte, clientID string, gen uint64, kind byte, n uint64) []byte {
	dst = cluster.AppendToken(append(dst, root...), clientID)
	if gen == 0 {
		return append(dst, ".s"...)
	}
	dst = strconv.AppendUint(append(dst, '.'), gen, 10)
	dst = append(dst, '.', kind, '.')
	return strconv.AppendUint(dst, n, 10)
}

// kindPrefix is the subject filter of clientID's records of one kind
// ('d', 'm', 'r' or 'o') of generation gen, or of every generation when
// gen is 0.
func kindPrefix(clientID string, gen uint64, kind byte) string {
	dst := append(cluster.AppendToken([]byte(root), clientID), '.')
	if gen == 0 {
		dst = append(dst, '*')
	} else {
		dst = strconv.AppendUint(dst, gen, 10)
	}
	return string(append(dst, '.', kind, '.', '>'))
}

// genPrefix is the subject filter of every record of clientID's
// generation gen, or of every generation when gen is 0.
func genPrefix(clientID string, gen uint64) string {
	dst := cluster.AppendToken([]byte(root), clientID)
	if gen == 0 {
		return string(append(dst, ".*.>"...))
	}
	return string(strconv.AppendUint(append(dst, '.'), gen, 10)) + ".>"
}
