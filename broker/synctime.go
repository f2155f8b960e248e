package broker

import (
	"sync/atomic"
	"time"
)

// How long the store takes to sync — the fsync an acknowledgement waits
// for under strict durability — kept as a histogram per loop (and one for
// the relaxed once-a-second sync), summed by Stats. Observing costs two
// clock reads and two atomic adds per syncing commit, which itself costs
// a disk sync; nothing is timed on commits that do not sync.

// syncBuckets is the number of the histogram's finite buckets; syncBound
// gives their upper bounds, from 100 µs (a write cache that acknowledges
// at once) to 2.5 s (a disk in trouble).
const syncBuckets = 14

// syncBound returns bucket i's upper bound; i == syncBuckets is +Inf.
func syncBound(i int) time.Duration {
	return [syncBuckets]time.Duration{
		100 * time.Microsecond, 250 * time.Microsecond, 500 * time.Microsecond,
		time.Millisecond, 2500 * time.Microsecond, 5 * time.Millisecond,
		10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond,
		100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond,
		time.Second, 2500 * time.Millisecond,
	}[i]
}

// syncHistogram counts store syncs by duration. One goroutine observes;
// Stats reads at any time.
type syncHistogram struct {
	counts [syncBuckets + 1]atomic.Int64 // per bucket, not cumulative; the last is +Inf
	sum    atomic.Int64                  // nanoseconds
}

// observe counts one sync that took d.
func (h *syncHistogram) observe(d time.Duration) {
	i := 0
	for i < syncBuckets && d > syncBound(i) {
		i++
	}
	h.counts[i].Add(1)
	h.sum.Add(int64(d))
}

// SyncStats is the histogram of the store's sync durations since Start.
type SyncStats struct {
	Count int64         `json:"count"`
	Sum   time.Duration `json:"sum_ns"`
	// Buckets are cumulative, Prometheus-style: Count syncs took at most
	// Le. The last bucket's Le is 0 and means +Inf (equal to Count).
	Buckets []SyncBucket `json:"buckets"`
}

// SyncBucket is one bucket of SyncStats.
type SyncBucket struct {
	Le    time.Duration `json:"le_ns"` // 0: +Inf
	Count int64         `json:"count"`
}

// add adds h's counts to s, whose Buckets are already laid out.
func (s *SyncStats) add(h *syncHistogram) {
	var cum int64
	for i := range h.counts {
		cum += h.counts[i].Load()
		s.Buckets[i].Count += cum
	}
	s.Count += cum
	s.Sum += time.Duration(h.sum.Load())
}

// newSyncStats returns an empty SyncStats with its buckets laid out.
func newSyncStats() *SyncStats {
	s := &SyncStats{Buckets: make([]SyncBucket, syncBuckets+1)}
	for i := range syncBuckets {
		s.Buckets[i].Le = syncBound(i)
	}
	return s
}
