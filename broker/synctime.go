package broker

import (
	"time"

	"github.com/shoalmq/shoal/internal/persist"
)

// SyncStats is the histogram of the store's sync durations since Start
// (package persist times them).
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
func (s *SyncStats) add(h *persist.SyncHistogram) {
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
	s := &SyncStats{Buckets: make([]SyncBucket, persist.SyncBuckets+1)}
	for i := range persist.SyncBuckets {
		s.Buckets[i].Le = persist.SyncBound(i)
	}
	return s
}
