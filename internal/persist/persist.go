package persist

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/shoalmq/shoal/store"
)

// Keeper is the broker's persistence: its store, the counter that numbers
// stored deliveries, the background writer and the writers it has handed
// out. The zero value is not usable: call New.
type Keeper struct {
	st     store.Store // nil: persistence off
	strict bool        // sync before acknowledging (durability: strict)
	log    *atomic.Pointer[zerolog.Logger]
	seq    atomic.Uint64

	bgMu    sync.Mutex   // guards bgw, closed and writers (LOCKORDER 0)
	bgw     store.Writer // for goroutines other than loops and workers
	closed  bool
	writers []store.Writer // every writer handed out, committed by Close

	// Corrupt counts unreadable records skipped by Load.
	Corrupt atomic.Int64
	// Relaxed times RunRelaxedSync's syncs (the loops time their own:
	// Loop.Syncs).
	Relaxed SyncHistogram
}

// New returns a Keeper without a store (persistence off until Use); log
// is the broker's logger as Reload swaps it.
func New(log *atomic.Pointer[zerolog.Logger]) *Keeper { return &Keeper{log: log} }

// Use makes st the store, synced before acknowledging when strict. Call it
// at most once, before Load and before any writer is made.
func (k *Keeper) Use(st store.Store, strict bool) { k.st, k.strict = st, strict }

// Layer replaces the store with one layered over it (package replica's,
// which also copies the sessions to the cluster): after Load, before any
// writer is made.
func (k *Keeper) Layer(st store.Store) { k.st = st }

// Store returns the store; nil with persistence off.
func (k *Keeper) Store() store.Store { return k.st }

// On reports whether there is a store.
func (k *Keeper) On() bool { return k.st != nil }

// Strict reports whether acknowledgements wait for a sync.
func (k *Keeper) Strict() bool { return k.strict }

// Writer returns a new writer for one goroutine, which Close commits; nil
// with persistence off. Call it after Load: Load may replace the store's
// database (salvage), and a writer made before would write to the old
// one. The background writer is made with the first.
func (k *Keeper) Writer() store.Writer {
	if k.st == nil {
		return nil
	}
	k.bgMu.Lock()
	defer k.bgMu.Unlock()
	if k.bgw == nil {
		k.bgw = k.st.NewWriter()
	}
	w := k.st.NewWriter()
	k.writers = append(k.writers, w)
	return w
}

// CommitAll commits every writer, as Close does, and leaves the store
// open: for a layered store whose other side goes before the store does
// (the cluster's copy of the sessions). Loops and workers have stopped.
func (k *Keeper) CommitAll() error {
	if k.st == nil {
		return nil
	}
	k.bgMu.Lock()
	defer k.bgMu.Unlock()
	return k.commitAllLocked()
}

// commitAllLocked commits every writer. k.bgMu must be held.
func (k *Keeper) commitAllLocked() error {
	var errs []error
	if k.bgw != nil { // writers exist once Load is done
		for _, w := range k.writers {
			errs = append(errs, w.Commit(false))
		}
		errs = append(errs, k.bgw.Commit(false))
	}
	return errors.Join(errs...)
}

// Close commits every writer and then closes the store if own (the broker
// opened it), else syncs it. Loops and workers have stopped, and so has
// the timer goroutine; anything that still calls WithBG finds the store
// closed and leaves it alone.
func (k *Keeper) Close(own bool) error {
	if k.st == nil {
		return nil
	}
	k.bgMu.Lock()
	defer k.bgMu.Unlock()
	k.closed = true
	errs := []error{k.commitAllLocked()}
	if own {
		errs = append(errs, k.st.Close())
	} else {
		errs = append(errs, k.st.Sync())
	}
	return errors.Join(errs...)
}

// Failed reports a store commit that failed. Nothing acknowledged may be
// lost, so the broker cannot go on pretending: it stops taking work.
func (k *Keeper) Failed(err error) {
	k.log.Load().Error().Err(err).Msg("persistent store commit failed; shutting down")
	panic(fmt.Sprintf("broker: persistent store commit failed: %v", err))
}

// Commit commits w without syncing; the caller's next sync covers it.
func (k *Keeper) Commit(w store.Writer) {
	if err := w.Commit(false); err != nil {
		k.Failed(err)
	}
}

// CommitSync commits w and, under strict durability, syncs it; it
// reports whether the cluster's copy left the commit unvouched
// (store.ErrUnvouched: committed on this node's disk, but what waited for
// it must not go out): all of it, or for the sessions of clients only
// (store.UnvouchedError). Any other failure stops the broker (Failed).
// For a loop's syncing commit, and for what another goroutine
// acknowledges itself (a router worker, for the messages of the cluster's
// stream: its batch's acknowledgement decides on its own whether the node
// serves).
func (k *Keeper) CommitSync(w store.Writer) (all bool, clients []string) {
	err := w.Commit(k.strict)
	var some *store.UnvouchedError
	switch {
	case errors.As(err, &some):
		return false, some.Clients
	case errors.Is(err, store.ErrUnvouched):
		return true, nil
	case err != nil:
		k.Failed(err)
	}
	return false, nil
}

// WithBG runs fn with the background writer and commits what fn wrote.
// For goroutines that are neither a loop nor a worker. With persistence
// off, or once the store is closed, fn gets nil.
func (k *Keeper) WithBG(fn func(w store.Writer)) {
	if k.st == nil {
		fn(nil)
		return
	}
	k.bgMu.Lock()
	defer k.bgMu.Unlock()
	if k.closed || k.bgw == nil {
		fn(nil)
		return
	}
	fn(k.bgw)
	if err := k.bgw.Commit(false); err != nil {
		k.Failed(err)
	}
}

// HoldBackground holds the background writer's lock, as a slow commit
// would, until release is called. For tests of what waits on it.
func (k *Keeper) HoldBackground() (release func()) {
	k.bgMu.Lock()
	return k.bgMu.Unlock
}

// RunRelaxedSync syncs the store once a second until stop is closed, the
// promise of relaxed durability. On the system clock: it is about the
// disk, not about MQTT time. Start it only with a store in relaxed mode.
func (k *Keeper) RunRelaxedSync(stop <-chan struct{}) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			start := time.Now()
			if err := k.st.Sync(); err != nil {
				k.Failed(err)
			}
			k.Relaxed.Observe(time.Since(start))
		}
	}
}
