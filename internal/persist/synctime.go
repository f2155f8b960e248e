package persist

import (
	"sync/atomic"
	"time"
)

// How long the store takes to sync — the fsync an acknowledgement waits
// for under strict durability — kept as a histogram per loop (and one for
// the relaxed once-a-second sync), summed by the broker's Stats. Observing
// costs two clock reads and two atomic adds per syncing commit, which
// itself costs a disk sync; nothing is timed on commits that do not sync.

// SyncBuckets is the number of the histogram's finite buckets; SyncBound
// gives their upper bounds, from 100 µs (a write cache that acknowledges
// at once) to 2.5 s (a disk in trouble).
const SyncBuckets = 14

// SyncBound returns bucket i's upper bound; i == SyncBuckets is +Inf.
func SyncBound(i int) time.Duration {
	return [SyncBuckets]time.Duration{
		100 * time.Microsecond, 250 * time.Microsecond, 500 * time.Microsecond,
		time.Millisecond, 2500 * time.Microsecond, 5 * time.Millisecond,
		10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond,
		100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond,
		time.Second, 2500 * time.Millisecond,
	}[i]
}

// SyncHistogram counts store syncs by duration. One goroutine observes;
// Read is safe at any time.
type SyncHistogram struct {
	counts [SyncBuckets + 1]atomic.Int64 // per bucket, not cumulative; the last is +Inf
	sum    atomic.Int64                  // nanoseconds
}

// observe counts one sync that took d.
func (h *SyncHistogram) observe(d time.Duration) {
	i := 0
	for i < SyncBuckets && d > SyncBound(i) {
		i++
	}
	h.counts[i].Add(1)
	h.sum.Add(int64(d))
}

// Read returns the count of each bucket (not cumulative; the last is +Inf)
// and the sum of the durations observed.
func (h *SyncHistogram) Read() (counts [SyncBuckets + 1]int64, sum time.Duration) {
	for i := range h.counts {
		counts[i] = h.counts[i].Load()
	}
	return counts, time.Duration(h.sum.Load())
}
