package deadline

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
)

// owner stands for a session: the key is a pointer, as in the broker.
type owner struct {
	mu sync.Mutex
	_  [88]byte // a session is 96 bytes
}

var sizes = []int{1_000, 100_000, 1_000_000}

// filled returns a queue holding n owners due within a day, and them.
func filled(n int) (*Queue[*owner, *int], []*owner) {
	q := New(NewFake(epoch), func(int64, []Item[*owner, *int]) {})
	rng := rand.New(rand.NewPCG(1, 2))
	owners := make([]*owner, n)
	for i := range owners {
		owners[i] = &owner{}
		q.Set(owners[i], sec(rng.IntN(86400)), nil)
	}
	return q, owners
}

// BenchmarkSetCancel: one owner goes offline (Set) and comes back
// (Cancel) while n others wait.
func BenchmarkSetCancel(b *testing.B) {
	for _, n := range sizes {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			q, _ := filled(n)
			extra := make([]*owner, 1024)
			for i := range extra {
				extra[i] = &owner{}
			}
			rng := rand.New(rand.NewPCG(3, 4))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				o := extra[i%len(extra)]
				q.Set(o, sec(rng.IntN(86400)), nil)
				q.Cancel(o)
			}
		})
	}
}

// BenchmarkReset: an owner's deadline moves.
func BenchmarkReset(b *testing.B) {
	for _, n := range sizes {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			q, owners := filled(n)
			rng := rand.New(rand.NewPCG(3, 4))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				q.Reset(owners[rng.IntN(n)], sec(rng.IntN(86400)))
			}
		})
	}
}

// BenchmarkFire: the cost per deadline of taking due ones off a queue of
// n, fire doing nothing.
func BenchmarkFire(b *testing.B) {
	for _, n := range sizes {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			q, owners := filled(n)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i += maxBatch {
				b.StopTimer()
				for _, o := range owners[:maxBatch] {
					q.Set(o, 0, nil) // due; the rest stay
				}
				b.StartTimer()
				q.fireDue(1, nil)
			}
		})
	}
}

// BenchmarkScanTick is what the queue replaced, for comparison: once a
// second the broker copied its set of n offline sessions and locked each
// one to see whether it was due. One op is one such tick with nothing due.
func BenchmarkScanTick(b *testing.B) {
	for _, n := range sizes {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			var mu sync.Mutex
			set := make(map[*owner]struct{}, n)
			for range n {
				set[&owner{}] = struct{}{}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				var due []*owner
				mu.Lock()
				for o := range set {
					due = append(due, o)
				}
				mu.Unlock()
				for _, o := range due {
					mu.Lock() // the set's lock again, per session
					o.mu.Lock()
					o.mu.Unlock()
					mu.Unlock()
				}
			}
		})
	}
}
