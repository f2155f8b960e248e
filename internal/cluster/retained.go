package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/shoalmq/shoal/internal/counters"
	"github.com/shoalmq/shoal/internal/sys"
	"github.com/shoalmq/shoal/router"
)

// retainedBucket is the key-value bucket of retained messages.
const retainedBucket = "shoal_retained"

// retainedRoot is the root of retained messages' keys: a topic's key is
// its subject under it (Subject), so that a filter's subjects (Filter)
// select exactly the keys of the topics it matches.
const retainedRoot = "r"

// Retained is the cluster's retained messages: a replicated key-value
// bucket, one key per topic, and a mirror of it in this node's memory that
// a watch keeps up to date. Set writes through to the bucket and returns
// once the bucket has it, replicated as configured; every node's mirror
// then takes it, in the bucket's order. Barrier waits until the mirror has
// everything the bucket had when it was called: a SUBSCRIBE that waits on
// it reads every retained message acknowledged anywhere before, and sees
// every delete.
//
// This node's own $SYS topics stay in the mirror alone: each node reports
// its own.
//
// Set may block (on the bucket's write); the dispatcher is told to route
// retained messages on its workers, never on a loop. Other methods are
// those of the mirror. Safe for concurrent use.
type Retained struct {
	*router.MemRetained // the mirror
	node                *Node
	kv                  jetstream.KeyValue
	log                 zerolog.Logger

	mu      sync.Mutex
	applied uint64        // the bucket's last sequence in the mirror; guarded by mu
	moved   chan struct{} // closed and replaced when applied moves; guarded by mu

	// waiting are the readers After holds until the next Barrier;
	// guarded by mu. wake has room for one: a reader waits.
	waiting []func()
	wake    chan struct{}

	watch *bucketWatch // the bucket's, into the mirror
	stop  chan struct{}
	done  sync.WaitGroup

	// applying is held while the watch applies a change: a test holds
	// it to keep the mirror behind.
	applying sync.Mutex

	// Failed counts writes the bucket refused: those messages are not
	// retained.
	Failed atomic.Int64
	// Writes times the writes the bucket took, from the request to its
	// acknowledgement: the replicas' round trip (replication latency).
	Writes counters.Durations
}

// NewRetained returns the retained messages of a node that is not yet in
// its cluster: Open brings them in.
func NewRetained() *Retained {
	return &Retained{MemRetained: router.NewRetained(), moved: make(chan struct{}),
		wake: make(chan struct{}, 1), stop: make(chan struct{})}
}

// Open opens the bucket of retained messages on n and starts mirroring
// it; it returns once the mirror has what the bucket held. Call it once,
// before anything is Set.
func (r *Retained) Open(ctx context.Context, n *Node, log zerolog.Logger) error {
	kv, err := n.openBucket(ctx, retainedBucket)
	if err != nil {
		return err
	}
	r.node, r.kv, r.log = n, kv, log
	r.done.Add(1)
	go r.barriers()
	r.watch = &bucketWatch{kv: kv, what: "retained messages", apply: r.apply, forget: r.forgetUnseen}
	if err := r.watch.Start(ctx); err != nil {
		r.Close()
		return err
	}
	return nil
}

// Rewatch mirrors the bucket anew, and returns once the mirror has what
// the bucket holds, or ctx ends: for a node back from a partition, whose
// watch may have stopped bringing changes.
func (r *Retained) Rewatch(ctx context.Context) error { return r.watch.Anew(ctx) }

// forgetUnseen clears the mirror's messages whose keys a watch anew did
// not bring (bucketWatch.forget), but this node's own $SYS ones.
func (r *Retained) forgetUnseen(keys map[string]bool) {
	var key []byte
	for _, m := range r.MemRetained.All(nil) {
		if !sys.Own(m.Topic) {
			var err error
			if key, err = Subject(key[:0], retainedRoot, string(m.Topic)); err == nil && !keys[string(key)] {
				clear := router.NewMessage(m.Topic, nil, nil, nil, 0, true, 0, nil)
				r.MemRetained.Set(clear)
				clear.Release()
			}
		}
		m.Release()
	}
}

// Close stops the mirror.
func (r *Retained) Close() {
	select {
	case <-r.stop:
		return
	default:
	}
	close(r.stop)
	if r.watch != nil {
		r.watch.Close()
	}
	r.done.Wait()
}

// Set implements router.Retained: m replaces its topic's retained message
// in the bucket (an empty payload deletes it [MQTT-3.3.1-6]), and reaches
// the mirror through the watch. A write the bucket refuses is logged and
// counted (Failed); the message is then not retained.
func (r *Retained) Set(m *router.Message) {
	if sys.Own(m.Topic) {
		r.MemRetained.Set(m)
		return
	}
	key, err := Subject(nil, retainedRoot, string(m.Topic))
	if err != nil {
		r.fail(m, err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	if len(m.Payload) == 0 {
		err = r.kv.Delete(ctx, string(key))
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			err = nil
		}
	} else {
		buf := framePool.Get()
		buf.B = appendFrame(buf.B[:0], m, "", time.Now().UnixNano())
		_, err = r.kv.Put(ctx, string(key), buf.B)
		framePool.Put(buf)
	}
	if err != nil {
		r.fail(m, err)
		return
	}
	r.Writes.Observe(time.Since(start))
}

func (r *Retained) fail(m *router.Message, err error) {
	r.Failed.Add(1)
	r.log.Error().Err(err).Bytes("topic", m.Topic).Msg("cluster: a retained message could not be stored")
}

// Barrier waits until the mirror has every write the bucket took before
// the call, or ctx ends.
func (r *Retained) Barrier(ctx context.Context) error {
	s, err := r.node.js.Stream(ctx, "KV_"+retainedBucket) // its info, fresh
	if err != nil {
		return fmt.Errorf("cluster: retained messages: %w", err)
	}
	want := s.CachedInfo().State.LastSeq
	for {
		r.mu.Lock()
		applied, moved := r.applied, r.moved
		r.mu.Unlock()
		if applied >= want {
			return nil
		}
		select {
		case <-moved:
		case <-ctx.Done():
			return fmt.Errorf("cluster: retained messages: mirror at %d of %d: %w", applied, want, ctx.Err())
		}
	}
}

// After implements conn.Barrier: fn runs once the mirror has every write
// the bucket took before the call. The readers that come while one
// Barrier is under way share the next: one request to JetStream serves a
// whole SUBSCRIBE storm. Should the Barrier fail (the bucket has lost its
// quorum), fn runs anyway, with what the mirror has, and the failure is
// logged.
func (r *Retained) After(fn func()) {
	r.mu.Lock()
	r.waiting = append(r.waiting, fn)
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// barriers runs the readers After holds, a Barrier for each batch, until
// Close.
func (r *Retained) barriers() {
	defer r.done.Done()
	for {
		select {
		case <-r.stop:
			return
		case <-r.wake:
		}
		r.mu.Lock()
		batch := r.waiting
		r.waiting = nil
		r.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := r.Barrier(ctx); err != nil {
			r.log.Warn().Err(err).Int("readers", len(batch)).Msg("cluster: retained messages read without the latest writes")
		}
		cancel()
		for _, fn := range batch {
			fn()
		}
	}
}

// apply brings one change of the bucket into the mirror.
func (r *Retained) apply(e jetstream.KeyValueEntry) {
	r.applying.Lock()
	defer r.applying.Unlock()
	defer r.advance(e.Revision())
	topic, ok := Topic(retainedRoot, e.Key())
	if !ok {
		r.log.Warn().Str("key", e.Key()).Msg("cluster: a retained message's key of no known form")
		return
	}
	if e.Operation() != jetstream.KeyValuePut {
		clear := router.NewMessage([]byte(topic), nil, nil, nil, 0, true, 0, nil)
		r.MemRetained.Set(clear)
		clear.Release()
		return
	}
	// Time left counts from when the bucket took it, not from now: a node
	// that reads it later must not extend its life.
	m, _, err := decodeFrame(e.Value(), e.Created().UnixNano())
	if err != nil || string(m.Topic) != topic {
		if m != nil {
			m.Release()
		}
		r.log.Warn().Str("key", e.Key()).Msg("cluster: a malformed retained message")
		return
	}
	r.MemRetained.Set(m)
	m.Release()
}

// advance records that the mirror has the bucket up to seq.
func (r *Retained) advance(seq uint64) {
	r.mu.Lock()
	if seq > r.applied {
		r.applied = seq
		close(r.moved)
		r.moved = make(chan struct{})
	}
	r.mu.Unlock()
}
