package counters

import (
	"sync/atomic"
	"time"
)

// Durations is a histogram of how long something took — a store's sync,
// a replicated write's round trip — in fixed buckets from 100 µs (a write
// cache that acknowledges at once, a replica on the same host) to 2.5 s (a
// disk or a network in trouble). Observing costs one atomic add for the
// bucket and one for the sum. Observe and Read are safe for concurrent
// use.
type Durations struct {
	counts [DurationBuckets + 1]atomic.Int64 // per bucket, not cumulative; the last is +Inf
	sum    atomic.Int64                      // nanoseconds
}

// DurationBuckets is the number of Durations' finite buckets;
// DurationBound gives their upper bounds.
const DurationBuckets = 14

// DurationBound returns bucket i's upper bound; i == DurationBuckets is
// +Inf.
func DurationBound(i int) time.Duration {
	return [DurationBuckets]time.Duration{
		100 * time.Microsecond, 250 * time.Microsecond, 500 * time.Microsecond,
		time.Millisecond, 2500 * time.Microsecond, 5 * time.Millisecond,
		10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond,
		100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond,
		time.Second, 2500 * time.Millisecond,
	}[i]
}

// Observe counts one thing that took d.
func (h *Durations) Observe(d time.Duration) {
	i := 0
	for i < DurationBuckets && d > DurationBound(i) {
		i++
	}
	h.counts[i].Add(1)
	h.sum.Add(int64(d))
}

// Read returns the count of each bucket (not cumulative; the last is +Inf)
// and the sum of the durations observed.
func (h *Durations) Read() (counts [DurationBuckets + 1]int64, sum time.Duration) {
	for i := range h.counts {
		counts[i] = h.counts[i].Load()
	}
	return counts, time.Duration(h.sum.Load())
}
