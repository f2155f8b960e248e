package broker

import (
	"time"

	"github.com/shoalmq/shoal/internal/counters"
)

// SyncStats is a histogram of durations since Start: the store's syncs
// (package persist times them), the cluster's replicated writes (package
// cluster).
type SyncStats struct {
	Count int64         `json:"count"`
	Sum   time.Duration `json:"sum_ns"`
	// Buckets are cumulative, Prometheus-style: Count of them took at most
	// Le. The last bucket's Le is 0 and means +Inf (equal to Count).
	Buckets []SyncBucket `json:"buckets"`
}

// SyncBucket is one bucket of SyncStats.
type SyncBucket struct {
	Le    time.Duration `json:"le_ns"` // 0: +Inf
	Count int64         `json:"count"`
}

// add adds h's counts to s, whose Buckets are already laid out.
func (s *SyncStats) add(h *counters.Durations) {
	counts, sum := h.Read()
	var cum int64
	for i, n := range counts {
		cum += n
		s.Buckets[i].Count += cum
	}
	s.Count += cum
	s.Sum += sum
}

// newSyncStats returns an empty SyncStats with its buckets laid out.
func newSyncStats() *SyncStats {
	s := &SyncStats{Buckets: make([]SyncBucket, counters.DurationBuckets+1)}
	for i := range counters.DurationBuckets {
		s.Buckets[i].Le = counters.DurationBound(i)
	}
	return s
}
