package cluster

import (
	"context"
	"encoding/binary"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/shoalmq/shoal/internal/deadline"
	"github.com/shoalmq/shoal/router"
)

// Delayed wills belong to the cluster, not to a node. A connection that
// leaves with a will still to wait for its Will Delay Interval
// [MQTT-3.1.3-9] puts it into the wills' bucket, under its client id, with
// the time it is due and the node that put it (the owner). Exactly one
// node publishes it:
//
//   - the owner, at the due time, from its own timer (package expiry);
//   - any node, the owner included, at the due time plus Grace, if the key
//     is still there: every node watches the bucket and keeps a timer per
//     key, so that the will of a node that died or left is published on
//     time by the survivors (Grace late).
//
// A connection with a will also puts a standing record as it connects:
// its will and its delay, no due time (Stand). The record is replaced by
// the due one as the connection leaves, or removed when it leaves without
// a will to wait for. It is there for a node that dies with its clients
// connected: every node, once it finds that node gone (its Rescuer's
// rounds of pings, past rescue_after: NodeGone), sets a timer per
// standing record of that node at that time plus the will's delay; and a
// node that starts does the same with its own (its connections ended
// when it stopped).
//
// Whoever fires first deletes the key on the condition that it is still
// the revision it knows (jetstream.LastRevision), and publishes only if
// that delete succeeded: of any number of nodes firing at once, one wins.
// A client back in time, on any node, deletes the key the same way
// (Cancel), so no node publishes it.
//
// The bucket's writes never hold the caller: Put, Cancel and Claim queue
// the write for one goroutine, in order. A will put while the bucket does
// not answer stays this node's alone, published by its timer.

// willsBucket is the key-value bucket of delayed wills.
const willsBucket = "shoal_wills"

// DefaultWillGrace is how long after a will's due time the other nodes
// give its owner before they publish it themselves: enough for the owner's
// timer and its conditional delete on a loaded machine (milliseconds),
// short against a Will Delay Interval (seconds at least).
const DefaultWillGrace = 2 * time.Second

// maxWillOps bounds the writes waiting for the bucket: tens of thousands
// are queued only when the bucket has stopped answering. Past it, a Put
// stays this node's alone, and a Cancel or Claim is dropped (counted in
// Failed): the key stays, for a timer to publish.
const maxWillOps = 1 << 16

// willWait bounds each write to the bucket.
const willWait = 5 * time.Second

// WillSender publishes a will as this node's own PUBLISH, taking over the
// reference: package expiry's Sessions.SendWill.
type WillSender interface {
	SendWill(m *router.Message)
}

// Wills is the cluster's delayed wills: the bucket, what this node knows
// of it, and the timers of the wills of every node. It is the broker's
// expiry.WillStore. Safe for concurrent use.
type Wills struct {
	// Grace is how long after a will's due time a node that finds it still
	// in the bucket publishes it; DefaultWillGrace unless set before Open.
	Grace time.Duration

	kv   jetstream.KeyValue
	self string
	send WillSender
	log  zerolog.Logger

	// known is the last record of each key this node has seen, from the
	// watch or from its own writes; ops are the writes waiting for the
	// worker. Guarded by mu, a leaf.
	mu    sync.Mutex
	known map[string]*willRecord
	ops   []willOp
	wake  chan struct{} // has room for one: ops are waiting

	// timers holds each key's due time plus Grace, with the revision it
	// was set for.
	timers *deadline.Queue[string, uint64]
	// gone are the nodes found gone (NodeGone): their standing records
	// are due. Guarded by mu.
	gone map[string]bool

	watch *bucketWatch // the bucket's, into known
	stop  chan struct{}
	done  sync.WaitGroup

	// Published counts the wills this node published after winning
	// them; Failed the writes the bucket refused or that were dropped.
	Published, Failed atomic.Int64
}

// willRecord is a key's record as this node knows it: rev 0 is a will of
// this node's the bucket did not take.
type willRecord struct {
	rev   uint64
	node  string
	due   int64  // standing: the will's delay, ns
	value []byte // the encoded will
	// standing: its connection is still on node (Stand).
	standing bool
}

// willOp is a write for the worker.
type willOp struct {
	kind     willOpKind
	key      string
	value    []byte          // put: the will's frame
	due      int64           // put: when it is due; standing, its delay
	standing bool            // put: a standing record (Stand)
	will     *router.Message // claim: this node's copy (nil: the bucket's)
	rev      uint64          // claim from a timer: the revision it was set for
	mine     bool            // cancel, claim: only a record this node put
	done     chan struct{}   // sync: closed when the worker gets to it
}

type willOpKind uint8

const (
	willPut willOpKind = iota
	willCancel
	willClaim
	willSync
)

// NewWills returns the delayed wills of a node that is not yet in its
// cluster: writes queue until Open.
func NewWills() *Wills {
	w := &Wills{Grace: DefaultWillGrace, known: map[string]*willRecord{}, gone: map[string]bool{},
		wake: make(chan struct{}, 1), stop: make(chan struct{})}
	w.timers = deadline.New(deadline.Real(), w.fire)
	return w
}

// Open opens the wills' bucket on n and starts watching it, its timers
// and its writer; wills won are published through send. It returns once
// the wills the bucket held are known. Call it once.
func (w *Wills) Open(ctx context.Context, n *Node, send WillSender, log zerolog.Logger) error {
	kv, err := n.openBucket(ctx, willsBucket)
	if err != nil {
		return err
	}
	w.kv, w.self, w.send, w.log = kv, n.cfg.Node, send, log
	w.done.Add(2)
	go func() {
		defer w.done.Done()
		w.timers.Run(w.stop)
	}()
	go w.write()
	w.watch = &bucketWatch{kv: kv, what: "wills", apply: w.apply, forget: w.forgetUnseen}
	if err := w.watch.Start(ctx); err != nil {
		w.Close()
		return err
	}
	return nil
}

// Restarted makes the standing records this node's last run left due,
// their delays from now: their connections ended when it stopped. Call
// it once the node routes messages, before its clients connect.
func (w *Wills) Restarted() {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := time.Now().UnixNano()
	for key, rec := range w.known {
		if rec.standing && rec.node == w.self {
			w.timers.Set(key, now+rec.due, rec.rev)
		}
	}
}

// Rewatch watches the bucket anew, and returns once known has what the
// bucket holds, or ctx ends: for a node back from a partition, whose
// watch may have stopped bringing changes.
func (w *Wills) Rewatch(ctx context.Context) error { return w.watch.Anew(ctx) }

// forgetUnseen forgets the wills whose keys a watch anew did not bring
// (bucketWatch.forget): published, or ended, meanwhile.
func (w *Wills) forgetUnseen(keys map[string]bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for key := range w.known {
		if !keys[key] {
			delete(w.known, key)
			w.timers.Cancel(key)
		}
	}
}

// Close stops the watch and the timers, and writes what is queued (a
// will put is kept for the others to publish; claims are not made: a
// node closing publishes no will), within willWait.
func (w *Wills) Close() {
	select {
	case <-w.stop:
		return
	default:
	}
	close(w.stop)
	if w.watch != nil {
		w.watch.Close()
	}
	w.done.Wait()
	w.timers.Clear(func(string, uint64) {})
}

// willKey is clientID's key: its escape (subject.go) behind "c.", as
// Owners has it.
func willKey(clientID string) string { return ownerKey(clientID) }

// Put keeps will, of clientID, due at (Unix ns, system clock), for the
// cluster: its connection left. It replaces clientID's earlier will.
// will stays the caller's: it is encoded at once. It does not block.
func (w *Wills) Put(clientID string, will *router.Message, at int64) {
	// As of time 0, the frame's "time left" is the will's relative
	// expiry itself.
	frame := appendFrame(nil, will, "", 0)
	w.queue(willOp{kind: willPut, key: willKey(clientID), value: frame, due: at})
}

// Stand keeps will, of clientID, for the cluster while its connection is
// on this node, with its delay: published by the others, delay after they
// find this node gone, should it die with the connection on it. will
// stays the caller's. It does not block.
func (w *Wills) Stand(clientID string, will *router.Message, delay time.Duration) {
	frame := appendFrame(nil, will, "", 0)
	w.queue(willOp{kind: willPut, key: willKey(clientID), value: frame, due: int64(delay), standing: true})
}

// NodeGone tells w that node is gone (the Rescuer found it so), or back:
// the standing records of a gone node are due its wills' delays from now.
func (w *Wills) NodeGone(node string, gone bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if gone == w.gone[node] {
		return
	}
	if gone {
		w.gone[node] = true
	} else {
		delete(w.gone, node)
	}
	now := time.Now().UnixNano()
	n := 0
	for key, rec := range w.known {
		switch {
		case !rec.standing || rec.node != node:
			continue
		case gone:
			w.timers.Set(key, now+rec.due, rec.rev)
		default:
			w.timers.Cancel(key) // back: its connections are its own again
		}
		n++
	}
	w.log.Debug().Str("node", node).Bool("gone", gone).Int("standing", n).Msg("cluster: a node's standing wills")
}

// Cancel drops clientID's will from the cluster, as this node knows it
// when the write is made: its client came back in time [MQTT-3.1.3-9].
// mine: only if this node put it (a session leaving this node: a will
// another node put since is not this node's to drop). It does not block.
func (w *Wills) Cancel(clientID string, mine bool) {
	w.queue(willOp{kind: willCancel, key: willKey(clientID), mine: mine})
}

// Claim publishes clientID's will if this node wins it: its delete of the
// bucket's record succeeds. will is this node's copy, whose reference
// Claim takes over, and wins only the record this node put; nil claims
// whatever record the bucket has (its session ended elsewhere, published
// now). It does not block.
func (w *Wills) Claim(clientID string, will *router.Message) {
	w.queue(willOp{kind: willClaim, key: willKey(clientID), will: will, mine: will != nil})
}

// queue hands op to the worker, or drops it when maxWillOps wait or
// Close has begun.
func (w *Wills) queue(op willOp) {
	select {
	case <-w.stop:
		if op.will != nil {
			op.will.Release()
		}
		return
	default:
	}
	w.mu.Lock()
	full := len(w.ops) >= maxWillOps
	if !full {
		w.ops = append(w.ops, op)
	} else if op.kind == willPut {
		w.known[op.key] = &willRecord{node: w.self, due: op.due, standing: op.standing,
			value: appendWill(nil, w.self, op.due, op.standing, op.value)}
	}
	w.mu.Unlock()
	if full {
		w.Failed.Add(1)
		if op.will != nil {
			op.will.Release()
		}
		return
	}
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// write runs the queued writes, in order, until Close; then those left,
// but for claims.
func (w *Wills) write() {
	defer w.done.Done()
	for {
		select {
		case <-w.stop:
			w.mu.Lock()
			left := w.ops
			w.ops = nil
			w.mu.Unlock()
			ctx, cancel := context.WithTimeout(context.Background(), willWait)
			defer cancel()
			for _, op := range left {
				if op.kind == willSync {
					close(op.done)
					continue
				}
				if op.kind == willClaim {
					if op.will != nil {
						op.will.Release()
					}
					continue
				}
				w.run(ctx, op)
			}
			return
		case <-w.wake:
		}
		w.mu.Lock()
		batch := w.ops
		w.ops = nil
		w.mu.Unlock()
		for _, op := range batch {
			ctx, cancel := context.WithTimeout(context.Background(), willWait)
			w.run(ctx, op)
			cancel()
		}
	}
}

// run makes one write. Worker goroutine only.
func (w *Wills) run(ctx context.Context, op willOp) {
	switch op.kind {
	case willSync:
		close(op.done)
	case willPut:
		value := appendWill(nil, w.self, op.due, op.standing, op.value)
		rev, err := w.kv.Put(ctx, op.key, value)
		rec := &willRecord{rev: rev, node: w.self, due: op.due, value: value, standing: op.standing}
		if err != nil {
			w.Failed.Add(1)
			w.log.Warn().Err(err).Str("key", op.key).Msg("cluster: a delayed will was not stored; only this node will publish it")
			rec.rev = 0
		}
		w.mu.Lock()
		if old := w.known[op.key]; old == nil || old.rev <= rec.rev || rec.rev == 0 {
			w.known[op.key] = rec
		}
		w.mu.Unlock()
	case willCancel:
		rec := w.record(op)
		if rec != nil {
			w.remove(ctx, op.key, rec)
		}
	case willClaim:
		rec := w.record(op)
		if rec == nil {
			if op.will != nil {
				op.will.Release() // cancelled, or published by another node
			}
			return
		}
		if rec.rev != 0 && !w.remove(ctx, op.key, rec) {
			if op.rev != 0 {
				w.retry(op.key, rec)
			}
			if op.will != nil {
				op.will.Release()
			}
			return
		}
		m := op.will
		if m == nil {
			var err error
			if _, _, _, m, err = decodeWill(rec.value); err != nil {
				w.log.Warn().Err(err).Str("key", op.key).Msg("cluster: a malformed will")
				return
			}
		}
		w.Published.Add(1)
		w.send.SendWill(m)
	}
}

// record is the record op is for, if there is one: the one a timer was
// set for, or this node's own (mine). Worker goroutine only.
func (w *Wills) record(op willOp) *willRecord {
	w.mu.Lock()
	defer w.mu.Unlock()
	rec := w.known[op.key]
	switch {
	case rec == nil,
		op.mine && rec.node != w.self,
		op.rev != 0 && rec.rev != op.rev:
		return nil
	}
	return rec
}

// willRetry is how soon a timer's claim that the bucket did not answer
// (its stream electing a leader: a node died) is made again.
const willRetry = time.Second

// retry sets key's timer again, willRetry from now, if rec is still its
// record: a claim whose delete failed, but not for another node's write.
func (w *Wills) retry(key string, rec *willRecord) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.known[key] == rec {
		w.timers.Set(key, time.Now().Add(willRetry).UnixNano(), rec.rev)
	}
}

// remove deletes key's record rec, on the condition that the bucket still
// has that revision, and reports whether it did: whether this node won it.
// A record the bucket never took (rev 0) is this node's alone.
func (w *Wills) remove(ctx context.Context, key string, rec *willRecord) bool {
	if rec.rev != 0 {
		err := w.kv.Delete(ctx, key, jetstream.LastRevision(rec.rev))
		switch {
		case isWrongRevision(err):
			// Another node's write came first: rec is stale, whatever
			// the watch (which may lag: it is moved to another server
			// when the stream's leader goes) brings next.
			w.forget(key, rec)
			return false
		case err != nil:
			w.Failed.Add(1)
			w.log.Warn().Err(err).Str("key", key).Msg("cluster: a delayed will could not be removed")
			return false
		}
	}
	w.forget(key, rec)
	return true
}

// forget drops key's record rec and its timer, unless a newer record came.
func (w *Wills) forget(key string, rec *willRecord) {
	w.mu.Lock()
	if w.known[key] == rec {
		delete(w.known, key)
		w.timers.Cancel(key)
	}
	w.mu.Unlock()
}

// apply brings one change of the bucket into known and the timers. Watch
// goroutine only.
func (w *Wills) apply(e jetstream.KeyValueEntry) {
	key, rev := e.Key(), e.Revision()
	w.mu.Lock()
	defer w.mu.Unlock()
	old := w.known[key]
	if old != nil && old.rev > rev {
		return // this node's own write, newer, came first
	}
	if e.Operation() != jetstream.KeyValuePut {
		delete(w.known, key)
		w.timers.Cancel(key)
		return
	}
	node, due, standing, m, err := decodeWill(e.Value())
	if err != nil {
		w.log.Warn().Err(err).Str("key", key).Msg("cluster: a malformed will")
		return
	}
	m.Release() // decoded again by the node that wins it
	w.known[key] = &willRecord{rev: rev, node: node, due: due, value: e.Value(), standing: standing}
	switch {
	case !standing:
		w.timers.Set(key, due+int64(w.Grace), rev)
	case w.gone[node]: // the connection died with it: due its delay from now
		w.timers.Set(key, time.Now().UnixNano()+due, rev)
	default:
		w.timers.Cancel(key) // standing again: a connection came back
	}
}

// fire claims the wills whose due time plus Grace has come, if their
// records are still those the timers were set for. Timer goroutine only.
func (w *Wills) fire(_ int64, due []deadline.Item[string, uint64]) {
	for _, it := range due {
		w.queue(willOp{kind: willClaim, key: it.Key, rev: it.Value})
	}
}

// Len is the number of wills this node knows are waiting. For tests and
// status.
func (w *Wills) Len() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.known)
}

// A will's record in the bucket:
//
//	version   1 byte, willVersion, or willStanding for a standing record
//	due       8 bytes, big-endian: when it is due, Unix ns; standing, the
//	          will's delay, ns
//	node      uvarint length, bytes: the node that put it
//	frame     the message's frame (frame.go), its Message Expiry Interval
//	          relative (as a will keeps it until it is published)
const (
	willVersion  = 1
	willStanding = 2
)

var errWill = errors.New("cluster: malformed will record")

// appendWill appends the record of a will due at, put by node, whose
// frame is frame; standing, due is its delay.
func appendWill(dst []byte, node string, due int64, standing bool, frame []byte) []byte {
	version := byte(willVersion)
	if standing {
		version = willStanding
	}
	dst = append(dst, version)
	dst = binary.BigEndian.AppendUint64(dst, uint64(due))
	dst = appendBytes(dst, []byte(node))
	return append(dst, frame...)
}

// decodeWill is appendWill's inverse; m is the caller's to release.
func decodeWill(b []byte) (node string, due int64, standing bool, m *router.Message, err error) {
	if len(b) < 9 || b[0] != willVersion && b[0] != willStanding {
		return "", 0, false, nil, errWill
	}
	standing = b[0] == willStanding
	due = int64(binary.BigEndian.Uint64(b[1:9]))
	b = b[9:]
	l, n := binary.Uvarint(b)
	if n <= 0 || uint64(len(b)-n) < l {
		return "", 0, false, nil, errWill
	}
	node, b = string(b[n:n+int(l)]), b[n+int(l):]
	m, _, err = decodeFrame(b, 0)
	if err != nil {
		return "", 0, false, nil, errWill
	}
	return node, due, standing, m, nil
}

// sync waits until the worker has made every write queued before it, or
// Close has begun. For tests.
func (w *Wills) sync() {
	done := make(chan struct{})
	w.queue(willOp{kind: willSync, done: done})
	select {
	case <-done:
	case <-w.stop:
	}
}
