// Package deadline keeps deadlines keyed by their owner and fires the due
// ones on one goroutine. The broker uses one Queue for every offline
// session's expiry and delayed will.
//
// # Ownership
//
// A Queue is shared: any goroutine may Set, Reset or Cancel a key's
// deadline (the broker's loops do when a session goes offline or comes
// back). Its lock is a leaf, held only inside those calls and never while
// fire runs (LOCKORDER.md). One goroutine runs Run: it sleeps on the
// Clock's Timer until the earliest deadline, or until a Set brings one
// earlier, takes the due items off the queue and calls fire with them.
// Nothing is scanned: a round costs O(log n) per due item and nothing for
// the others, and an idle queue does not wake at all.
//
// # Races with fire
//
// An item is removed from the queue before fire sees it, and fire runs
// without the queue's lock, so between the two its owner may Set the key
// again or Cancel it (Cancel then reports false). fire must check its
// owner's state under the owner's own lock, as time.AfterFunc callers
// check after a Stop that returned false.
//
// # Clocks
//
// Time comes from a Clock: Real, or a Fake that tests move with Advance,
// so a test of a ten-minute expiry takes milliseconds. Queue.Sync waits
// until Run has fired everything due at the clock's current time, which
// makes a test's Advance-then-check deterministic.
//
// # Why a heap
//
// A 4-ary min-heap plus a map from key to heap position. Measured on the
// 2-core AMD EPYC of bench/results, one million owners waiting (go test
// -bench . ./internal/deadline):
//
//   - Set and Cancel of one more owner (a session going offline and
//     back): 110 ns (binary heap: 145 ns); Reset of a random owner: about
//     1 µs, the map and heap lines it touches being cache misses; taking a
//     due item off: 160 ns (binary: 310 ns). None allocates once the
//     queue has grown.
//   - The once-a-second scan it replaced cost 75-160 ms per tick at one
//     million offline sessions and allocated 45 MB a tick (BenchmarkScanTick).
//   - Memory: 64 bytes per deadline (24 in the heap, the rest the map),
//     against 30 for the plain set the scan used.
//
// A hierarchical timing wheel would make Set and Cancel O(1), but the
// broker spends about 49 µs of CPU per connection it accepts
// (bench/results/2026-11-22-idle.md): the heap's 110 ns is 0.2% of that,
// so a wheel could save nothing measurable there. It would cost instead: a
// tick per slot even while nothing is due, and either coarse slots or
// cascading between levels to span expiry intervals from one second to
// 136 years (a uint32 of seconds), where the heap keeps every deadline
// exact and sleeps until the next one.
//
// The 4-ary heap beats the binary one on the operations the broker makes
// (Set, Cancel, fire) because it is half as deep: half the map updates per
// move, which dominate at this size.
package deadline
