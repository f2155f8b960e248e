package deadline

import (
	"math"
	"sync"
)

// Item is one deadline: Key's Value is due at When (Unix ns).
type Item[K comparable, V any] struct {
	When  int64
	Key   K
	Value V
}

// Queue holds at most one deadline per key and calls its fire function,
// on the goroutine that runs Run, with the ones that are due. Set, Reset,
// Cancel, Len and Sync are safe for concurrent use; Run is called once.
type Queue[K comparable, V any] struct {
	clock Clock
	fire  func(now int64, due []Item[K, V])

	mu sync.Mutex // guards heap, index and armed; a leaf (LOCKORDER.md)
	// heap is a 4-ary min-heap on When (children of i: 4i+1..4i+4);
	// index is each key's position in it.
	heap  []Item[K, V]
	index map[K]int
	// armed is the deadline Run sleeps until (math.MaxInt64: none). A Set
	// earlier than it wakes Run; one later does not.
	armed int64

	wake  chan struct{}      // one pending wake-up stands for many
	syncs chan chan struct{} // Sync's requests
	done  chan struct{}      // closed when Run returns
	batch []Item[K, V]       // Run's scratch: the due items handed to fire
}

// maxBatch bounds the due items fire gets at once: between batches Run
// checks whether it must stop, so a Close with a million sessions due
// waits for one batch, not for all of them.
const maxBatch = 256

// arity of the heap: 4 halves the depth of a binary heap, and so the
// index updates per move (doc.go has the measurement).
const arity = 4

// New returns an empty queue on clock. fire is called by Run with the
// items that came due (removed from the queue, earliest first within a
// batch), and now, the time it read; due is valid only during the call.
func New[K comparable, V any](clock Clock, fire func(now int64, due []Item[K, V])) *Queue[K, V] {
	return &Queue[K, V]{
		clock: clock,
		fire:  fire,
		index: make(map[K]int),
		armed: math.MaxInt64,
		wake:  make(chan struct{}, 1),
		syncs: make(chan chan struct{}),
		done:  make(chan struct{}),
	}
}

// Len is the number of deadlines in the queue (not counting those handed
// to fire).
func (q *Queue[K, V]) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.heap)
}

// Set makes k due at when with value v, replacing k's earlier deadline,
// if any, whose value it returns with replaced true. O(log n); it
// allocates only when the queue grows past its largest size so far.
func (q *Queue[K, V]) Set(k K, when int64, v V) (old V, replaced bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if i, ok := q.index[k]; ok {
		old = q.heap[i].Value
		q.heap[i].When, q.heap[i].Value = when, v
		q.fixLocked(i)
		q.wakeLocked(when)
		return old, true
	}
	q.heap = append(q.heap, Item[K, V]{When: when, Key: k, Value: v})
	q.upLocked(len(q.heap) - 1)
	q.wakeLocked(when)
	return old, false
}

// Reset moves k's deadline to when, keeping its value. It reports false,
// and does nothing, if k has no deadline. O(log n), no allocation.
func (q *Queue[K, V]) Reset(k K, when int64) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	i, ok := q.index[k]
	if !ok {
		return false
	}
	q.heap[i].When = when
	q.fixLocked(i)
	q.wakeLocked(when)
	return true
}

// Cancel removes k's deadline and returns its value; ok is false if k had
// none, which includes a deadline already handed to fire. O(log n), no
// allocation.
func (q *Queue[K, V]) Cancel(k K) (v V, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	i, ok := q.index[k]
	if !ok {
		return v, false
	}
	v = q.heap[i].Value
	q.removeLocked(i)
	return v, true
}

// Clear removes every deadline, calling fn (if not nil) with each, under
// the queue's lock: fn must not call the queue. For after Run returned.
func (q *Queue[K, V]) Clear(fn func(k K, v V)) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if fn != nil {
		for _, it := range q.heap {
			fn(it.Key, it.Value)
		}
	}
	q.heap = nil
	clear(q.index)
}

// Run is the queue's goroutine: it sleeps until the earliest deadline, or
// until a Set brings one earlier, and hands what is due to fire. It
// returns when stop is closed; a fire call in progress finishes first,
// and nothing fires after Run has returned.
func (q *Queue[K, V]) Run(stop <-chan struct{}) {
	defer close(q.done)
	t := q.clock.NewTimer()
	defer t.Stop()
	var synced chan struct{}
	for {
		if !q.fireDue(q.clock.Now(), stop) {
			return
		}
		if synced != nil {
			close(synced)
			synced = nil
		}
		q.mu.Lock()
		q.armed = math.MaxInt64
		if len(q.heap) > 0 {
			q.armed = q.heap[0].When
		}
		next := q.armed
		q.mu.Unlock()
		if next == math.MaxInt64 {
			t.Stop()
		} else {
			t.Set(next)
		}
		select {
		case <-stop:
			return
		case <-t.C():
		case <-q.wake:
		case synced = <-q.syncs:
		}
	}
}

// Sync waits until Run has fired everything due at the clock's time when
// Run takes the request: with a Fake clock, everything due by the last
// Advance. It reports false if Run has returned. Run must have been
// started (or Sync waits until it is). For tests.
func (q *Queue[K, V]) Sync() bool {
	c := make(chan struct{})
	select {
	case q.syncs <- c:
	case <-q.done:
		return false
	}
	<-c // Run closes it at its next turn, before it may return
	return true
}

// fireDue hands everything due at now to fire, in batches. It reports
// false if stop was closed between batches.
func (q *Queue[K, V]) fireDue(now int64, stop <-chan struct{}) bool {
	for {
		q.mu.Lock()
		for len(q.batch) < maxBatch && len(q.heap) > 0 && q.heap[0].When <= now {
			q.batch = append(q.batch, q.heap[0])
			q.removeLocked(0)
		}
		q.mu.Unlock()
		n := len(q.batch)
		if n > 0 {
			q.fire(now, q.batch)
			clear(q.batch) // keep no keys or values alive
			q.batch = q.batch[:0]
		}
		if n < maxBatch {
			return true
		}
		select {
		case <-stop:
			return false
		default:
		}
	}
}

// wakeLocked wakes Run if when is earlier than what it sleeps until.
// q.mu must be held.
func (q *Queue[K, V]) wakeLocked(when int64) {
	if when >= q.armed {
		return
	}
	q.armed = when // later Sets before Run re-arms need no wake-up of their own
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// removeLocked takes the item at i out of the heap. q.mu must be held.
func (q *Queue[K, V]) removeLocked(i int) {
	delete(q.index, q.heap[i].Key)
	last := len(q.heap) - 1
	if i != last {
		q.heap[i] = q.heap[last]
		q.index[q.heap[i].Key] = i
	}
	q.heap[last] = Item[K, V]{} // keep no key or value alive
	q.heap = q.heap[:last]
	if i != last {
		q.fixLocked(i)
	}
}

// fixLocked restores the heap order around i after its When changed.
// q.mu must be held.
func (q *Queue[K, V]) fixLocked(i int) {
	if !q.upLocked(i) {
		q.downLocked(i)
	}
}

// upLocked moves the item at i towards the root while it is earlier than
// its parent, recording the positions of what it passes; it reports whether it moved. q.mu
// must be held.
func (q *Queue[K, V]) upLocked(i int) bool {
	h := q.heap
	it := h[i]
	start := i
	for i > 0 {
		p := (i - 1) / arity
		if h[p].When <= it.When {
			break
		}
		h[i] = h[p]
		q.index[h[i].Key] = i
		i = p
	}
	h[i] = it
	q.index[it.Key] = i
	return i != start
}

// downLocked moves the item at i towards the leaves while its earliest
// child is earlier, recording the positions of what it passes. q.mu must be held.
func (q *Queue[K, V]) downLocked(i int) {
	h := q.heap
	n := len(h)
	it := h[i]
	for {
		c := arity*i + 1
		if c >= n {
			break
		}
		for r, end := c+1, min(c+arity, n); r < end; r++ {
			if h[r].When < h[c].When {
				c = r
			}
		}
		if it.When <= h[c].When {
			break
		}
		h[i] = h[c]
		q.index[h[i].Key] = i
		i = c
	}
	h[i] = it
	q.index[it.Key] = i
}
