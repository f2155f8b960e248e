package cluster

import (
	"context"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go/jetstream"
)

// bucketWatch mirrors a bucket into this node's memory: it watches every
// key, handing each change to apply on a goroutine of its own, in the
// bucket's order. A watch can fall silent: one whose stream lost its
// quorum while this node was cut off does not bring, once the cut heals,
// what changed meanwhile. Anew then replaces it with a fresh one, which
// brings every key the bucket holds, and forget drops what the bucket no
// longer has. Start, Anew and Close may be called from any goroutine.
type bucketWatch struct {
	kv    jetstream.KeyValue
	what  string // what the bucket holds, for errors
	apply func(jetstream.KeyValueEntry)
	// forget, when not nil, is called on the watch's goroutine once a
	// watch made anew has brought what the bucket holds, with the keys
	// it brought (deletes not among them): what the mirror has of any
	// other key is gone from the bucket.
	forget func(keys map[string]bool)

	mu     sync.Mutex
	w      jetstream.KeyWatcher
	stop   chan struct{} // nil while no watch runs
	done   chan struct{} // closed when the watch's goroutine ends
	closed bool
}

// Start starts watching, and returns once the keys the bucket held are
// applied, or ctx ends.
func (bw *bucketWatch) Start(ctx context.Context) error {
	ready := make(chan struct{})
	if err := bw.start(ready); err != nil {
		return err
	}
	return bw.await(ctx, ready)
}

// start starts watching and closes ready once the keys the bucket held
// are applied.
func (bw *bucketWatch) start(ready chan struct{}) error {
	bw.mu.Lock()
	defer bw.mu.Unlock()
	return bw.startLocked(ready, false)
}

func (bw *bucketWatch) await(ctx context.Context, ready chan struct{}) error {
	select {
	case <-ready:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("cluster: reading %s: %w", bw.what, ctx.Err())
	}
}

// startLocked starts a watch; anew, it forgets what it did not bring.
// bw.mu must be held.
func (bw *bucketWatch) startLocked(ready chan struct{}, anew bool) error {
	w, err := bw.kv.WatchAll(context.Background())
	if err != nil {
		return fmt.Errorf("cluster: watching %s: %w", bw.what, err)
	}
	apply, atReady := bw.apply, func() {}
	if anew && bw.forget != nil {
		keys := map[string]bool{}
		apply = func(e jetstream.KeyValueEntry) {
			if e.Operation() == jetstream.KeyValuePut {
				keys[e.Key()] = true
			}
			bw.apply(e)
		}
		atReady = func() { bw.forget(keys) }
	}
	bw.w, bw.stop, bw.done = w, make(chan struct{}), make(chan struct{})
	go bw.run(w, bw.stop, bw.done, ready, apply, atReady)
	return nil
}

// run hands each entry w brings to apply until stop is closed or w ends,
// and once the bucket's entries at the start are in calls atReady and
// closes ready.
func (bw *bucketWatch) run(w jetstream.KeyWatcher, stop <-chan struct{}, done, ready chan struct{}, apply func(jetstream.KeyValueEntry), atReady func()) {
	defer close(done)
	// Not w.Stop: it deletes the watch's consumer, a request that waits
	// out its timeout (5s) when the stream has lost its quorum — the last
	// node of a cluster shutting down. The node's connection closes next,
	// and the server drops the consumer with it.
	for {
		select {
		case <-stop:
			return
		case e, ok := <-w.Updates():
			switch {
			case !ok:
				return
			case e == nil: // the entries at the start are all in
				if ready != nil {
					atReady()
					close(ready)
					ready = nil
				}
			default:
				apply(e)
			}
		}
	}
}

// Anew replaces the watch with a fresh one, and returns once the mirror
// has what the bucket holds, or ctx ends. One that fails leaves no watch:
// the next Anew tries again. A closed watch stays closed.
func (bw *bucketWatch) Anew(ctx context.Context) error {
	bw.mu.Lock()
	if bw.closed {
		bw.mu.Unlock()
		return nil
	}
	old := bw.w
	bw.stopLocked()
	ready := make(chan struct{})
	err := bw.startLocked(ready, true)
	bw.mu.Unlock()
	if err != nil {
		return err
	}
	if old != nil {
		_ = old.Stop() // the quorum is back: its consumer goes at once
	}
	return bw.await(ctx, ready)
}

// Close stops the watch and waits for its goroutine.
func (bw *bucketWatch) Close() {
	bw.mu.Lock()
	defer bw.mu.Unlock()
	bw.closed = true
	bw.stopLocked()
}

// stopLocked stops the watch that runs, if one does. bw.mu must be held.
func (bw *bucketWatch) stopLocked() {
	if bw.stop != nil {
		close(bw.stop)
		<-bw.done
		bw.stop, bw.w = nil, nil
	}
}
