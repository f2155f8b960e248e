package persist

import (
	"time"

	"github.com/shoalmq/shoal/store"
)

// Loop is one event loop's part in persistence: its writer, committed
// before each flush of the loop's output, and whether that commit must
// sync first. Loop goroutine only.
type Loop struct {
	// W is the loop's store writer (nil: persistence off), set by the
	// broker before the loop runs (Keeper.Writer).
	W store.Writer
	// Syncs times the loop's syncing commits; read by Stats at any time.
	Syncs SyncHistogram

	needSync bool
	// unvouched: the last syncing commit returned store.ErrUnvouched;
	// unvouchedFor: a store.UnvouchedError, for these sessions only
	// (Unvouched).
	unvouched    bool
	unvouchedFor []string
	// Group commit across a poll (Keeper.BeforeFlush): whether holding
	// output pays now, read bursts held since the last sync, and when the
	// loop last synced after a read burst (Unix ns).
	holdPays   bool
	heldBursts int
	lastSync   int64
}

// NeedSync asks the loop's next commit, before its output is written, to
// sync: something about to go out must not be lost in a crash.
func (l *Loop) NeedSync() { l.needSync = true }

// syncMergeWindow: two syncs of a loop closer than this would have shared
// one had the loop held its output (a poll's events come within it).
const syncMergeWindow = 200 * time.Microsecond

// BeforeFlush runs on loop l before its output is written (eventloop's
// Flusher, at now): the store learns what the loop did before the clients
// hear about it. It commits what the loop gathered, syncing when something
// about to go out needs it, and reports whether to hold the output
// instead.
//
// After a read burst (mayHold), output that waits for a disk sync may be
// held back until the loop's other events of the poll are in, so that one
// sync covers them all (group commit) — when that pays: the loop holds
// while the last held round gathered more than one read burst, and starts
// holding again when two syncs come closer than syncMergeWindow. A lone
// busy connection so syncs at once, without the wake-up a hold costs
// (crash test, 3 kills: 9.3k messages acknowledged holding always, 15.2k
// never holding).
func (k *Keeper) BeforeFlush(l *Loop, now int64, mayHold bool) (hold bool) {
	if mayHold && l.needSync && k.strict {
		if l.holdPays {
			if l.W.Dirty() { // committed now, synced with the rest
				k.Commit(l.W)
			}
			l.heldBursts++
			return true
		}
		l.holdPays = now-l.lastSync < int64(syncMergeWindow)
		l.lastSync = now
	}
	if !mayHold && l.heldBursts > 0 {
		l.holdPays = l.heldBursts > 1
		l.heldBursts = 0
	}
	k.commitLoop(l)
	return false
}

// commitLoop commits what loop l gathered, syncing when something about
// to go out needs it.
func (k *Keeper) commitLoop(l *Loop) {
	if l.W == nil || (!l.needSync && !l.W.Dirty()) {
		return
	}
	sync := l.needSync && k.strict
	l.needSync = false
	if !sync {
		k.Commit(l.W)
		return
	}
	start := time.Now()
	l.unvouched, l.unvouchedFor = k.CommitSync(l.W)
	l.Syncs.Observe(time.Since(start))
}

// Unvouched reports whether the loop's last syncing commit came back
// store.ErrUnvouched — all of it, or for the sessions of clients only —
// and forgets it: the output that waited for it must not go out (package
// conn drops it, and closes the connections it was for).
func (l *Loop) Unvouched() (all bool, clients []string) {
	all, clients = l.unvouched, l.unvouchedFor
	l.unvouched, l.unvouchedFor = false, nil
	return all, clients
}
