package deadline

import (
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var epoch = time.Unix(1_700_000_000, 0)

// recorder collects what a queue fires.
type recorder struct {
	mu    sync.Mutex
	fired []Item[int, string]
	nows  []int64
	calls int
}

func (r *recorder) fire(now int64, due []Item[int, string]) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	for _, it := range due {
		if it.When > now {
			panic("fired before its time")
		}
		r.fired = append(r.fired, it)
		r.nows = append(r.nows, now)
	}
}

func (r *recorder) take() []Item[int, string] {
	r.mu.Lock()
	defer r.mu.Unlock()
	f := r.fired
	r.fired = nil
	return f
}

// start runs q until the test ends and checks that Run returned.
func start[K comparable, V any](t *testing.T, q *Queue[K, V]) {
	t.Helper()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { q.Run(stop) })
	t.Cleanup(func() {
		close(stop)
		wg.Wait()
	})
}

func sec(n int) int64 { return epoch.UnixNano() + int64(n)*int64(time.Second) }

// TestQueueMatchesModel drives random Set, Reset and Cancel calls and
// clock steps, and checks after each step that exactly the deadlines a
// plain map says are due fired, earliest first, with the latest values.
func TestQueueMatchesModel(t *testing.T) {
	clk := NewFake(epoch)
	var r recorder
	q := New(clk, r.fire)
	start(t, q)
	type entry struct {
		when int64
		v    string
	}
	model := map[int]entry{}
	rng := rand.New(rand.NewPCG(1, 2))
	now := 0
	for step := range 300 {
		for range rng.IntN(40) {
			k := rng.IntN(200)
			switch op := rng.IntN(10); {
			case op < 5:
				e := entry{when: sec(now + 1 + rng.IntN(30)), v: time.Duration(step).String()}
				old, replaced := q.Set(k, e.when, e.v)
				m, had := model[k]
				if replaced != had || (had && old != m.v) {
					t.Fatalf("Set(%d): replaced %v old %q, model %v %q", k, replaced, old, had, m.v)
				}
				model[k] = e
			case op < 7:
				when := sec(now + 1 + rng.IntN(30))
				m, had := model[k]
				if q.Reset(k, when) != had {
					t.Fatalf("Reset(%d) = %v, model has it: %v", k, !had, had)
				}
				if had {
					model[k] = entry{when: when, v: m.v}
				}
			default:
				v, ok := q.Cancel(k)
				m, had := model[k]
				if ok != had || (had && v != m.v) {
					t.Fatalf("Cancel(%d) = %q %v, model %q %v", k, v, ok, m.v, had)
				}
				delete(model, k)
			}
		}
		adv := 1 + rng.IntN(3)
		now += adv
		clk.Advance(time.Duration(adv) * time.Second)
		if !q.Sync() {
			t.Fatal("Sync: Run returned")
		}
		var want []Item[int, string]
		for k, e := range model {
			if e.when <= sec(now) {
				want = append(want, Item[int, string]{When: e.when, Key: k, Value: e.v})
				delete(model, k)
			}
		}
		got := r.take()
		if !slices.IsSortedFunc(got, func(a, b Item[int, string]) int { return int(a.When - b.When) }) {
			t.Fatalf("step %d: fired out of order: %v", step, got)
		}
		sortItems(got)
		sortItems(want)
		if !slices.Equal(got, want) {
			t.Fatalf("at %d s: fired %v, want %v", now, got, want)
		}
		if q.Len() != len(model) {
			t.Fatalf("Len %d, model %d", q.Len(), len(model))
		}
	}
}

func sortItems(s []Item[int, string]) {
	slices.SortFunc(s, func(a, b Item[int, string]) int {
		if a.When != b.When {
			return int(a.When - b.When)
		}
		return a.Key - b.Key
	})
}

// TestQueueWorkIsWhatIsDue: with 100,000 deadlines spread over an hour,
// each step of the clock hands fire exactly the deadlines that came due:
// nothing is scanned or copied for the others.
func TestQueueWorkIsWhatIsDue(t *testing.T) {
	clk := NewFake(epoch)
	var r recorder
	q := New(clk, r.fire)
	const n = 100_000
	for k := range n {
		q.Set(k, sec(1+k%3600), "")
	}
	start(t, q)
	q.Sync()
	if got := len(r.take()); got != 0 {
		t.Fatalf("%d fired before any time passed", got)
	}
	for s := 1; s <= 10; s++ {
		clk.Advance(time.Second)
		q.Sync()
		fired := r.take()
		want := n / 3600 // keys k with k%3600 == s-1
		if s-1 < n%3600 {
			want++
		}
		if len(fired) != want {
			t.Fatalf("second %d: %d fired, want %d", s, len(fired), want)
		}
		for _, it := range fired {
			if it.When != sec(s) {
				t.Fatalf("second %d: fired %d due at %v", s, it.Key, time.Duration(it.When-sec(0)))
			}
		}
	}
	if q.Len() != n-10*(n/3600+1) {
		t.Fatalf("Len %d after 10 s", q.Len())
	}
}

// TestQueueConcurrent: goroutines setting and cancelling their keys while
// the clock moves and Run fires: every deadline inserted ends exactly once,
// fired, cancelled or still waiting. Run it with -race.
func TestQueueConcurrent(t *testing.T) {
	clk := NewFake(epoch)
	var fired atomic.Int64
	q := New(clk, func(now int64, due []Item[int, string]) { fired.Add(int64(len(due))) })
	start(t, q)
	var inserted, cancelled atomic.Int64
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 7))
			for range 20_000 {
				k := g*1000 + rng.IntN(1000)
				if rng.IntN(3) == 0 {
					if _, ok := q.Cancel(k); ok {
						cancelled.Add(1)
					}
					continue
				}
				if _, replaced := q.Set(k, clk.Now()+int64(rng.IntN(5))*int64(time.Second), ""); !replaced {
					inserted.Add(1)
				}
			}
		})
	}
	wg.Go(func() {
		for range 200 {
			clk.Advance(100 * time.Millisecond)
			runtime.Gosched()
		}
	})
	wg.Wait()
	q.Sync()
	if got := fired.Load() + cancelled.Load() + int64(q.Len()); got != inserted.Load() {
		t.Fatalf("%d inserted, but %d fired + %d cancelled + %d waiting = %d",
			inserted.Load(), fired.Load(), cancelled.Load(), q.Len(), got)
	}
	if fired.Load() == 0 {
		t.Fatal("nothing fired while the clock moved")
	}
}

// TestQueueWakesForEarlierDeadline: Run sleeping until a late deadline is
// woken by a Set of an earlier one, and fires it without being asked to
// sync.
func TestQueueWakesForEarlierDeadline(t *testing.T) {
	clk := NewFake(epoch)
	got := make(chan int, 10)
	q := New(clk, func(now int64, due []Item[int, string]) {
		for _, it := range due {
			got <- it.Key
		}
	})
	q.Set(1, sec(100), "late")
	start(t, q)
	q.Sync() // Run sleeps until 100 s
	q.Set(2, sec(5), "early")
	q.Sync() // Run has re-armed for 5 s
	clk.Advance(5 * time.Second)
	select {
	case k := <-got:
		if k != 2 {
			t.Fatalf("fired %d, want 2", k)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the earlier deadline did not fire once its time came")
	}
	clk.Advance(95 * time.Second)
	if k := <-got; k != 1 {
		t.Fatalf("fired %d, want 1", k)
	}
}

// TestQueueStops: once Run has returned nothing fires, whatever the clock
// says, Sync reports false, and Clear hands back what was left.
func TestQueueStops(t *testing.T) {
	clk := NewFake(epoch)
	var r recorder
	q := New(clk, r.fire)
	stop := make(chan struct{})
	ran := make(chan struct{})
	go func() {
		q.Run(stop)
		close(ran)
	}()
	q.Set(1, sec(1), "a")
	q.Set(2, sec(10), "b")
	clk.Advance(time.Second)
	q.Sync()
	close(stop)
	<-ran
	clk.Advance(time.Hour)
	q.Set(3, sec(0), "c") // due at once, but nobody runs
	if q.Sync() {
		t.Fatal("Sync after Run returned reported true")
	}
	if fired := r.take(); len(fired) != 1 || fired[0].Key != 1 {
		t.Fatalf("fired %v, want only key 1", fired)
	}
	var left []int
	q.Clear(func(k int, v string) { left = append(left, k) })
	slices.Sort(left)
	if !slices.Equal(left, []int{2, 3}) || q.Len() != 0 {
		t.Fatalf("Clear handed back %v, Len %d after", left, q.Len())
	}
}

// TestQueueStopsBetweenBatches: a stop while many deadlines are due ends
// Run after the batch in progress, not after all of them.
func TestQueueStopsBetweenBatches(t *testing.T) {
	clk := NewFake(epoch)
	stop := make(chan struct{})
	var once sync.Once
	calls := 0
	q := New(clk, func(now int64, due []Item[int, string]) {
		calls++
		once.Do(func() { close(stop) })
	})
	for k := range 10 * maxBatch {
		q.Set(k, sec(0), "")
	}
	q.Run(stop)
	if calls != 1 || q.Len() != 9*maxBatch {
		t.Fatalf("%d batches fired, %d left; want 1 and %d", calls, q.Len(), 9*maxBatch)
	}
}

// TestQueueRealClock: on the system clock a deadline 30 ms ahead fires,
// and not before its time.
func TestQueueRealClock(t *testing.T) {
	got := make(chan int64, 1)
	q := New(Real(), func(now int64, due []Item[int, string]) { got <- now })
	start(t, q)
	when := time.Now().Add(30 * time.Millisecond).UnixNano()
	q.Set(1, when, "")
	select {
	case now := <-got:
		if now < when {
			t.Fatalf("fired %v early", time.Duration(when-now))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("did not fire")
	}
}

// TestQueueNoAllocs: moving or cancelling an existing deadline, and
// setting one again once the queue has held that many, allocates nothing.
func TestQueueNoAllocs(t *testing.T) {
	q := New(NewFake(epoch), func(int64, []Item[int, string]) {})
	for k := range 1000 {
		q.Set(k, sec(k), "")
	}
	i := 0
	if a := testing.AllocsPerRun(1000, func() {
		k := i % 1000
		i++
		q.Reset(k, sec(2000-k))
		q.Set(k, sec(k), "x")
		q.Cancel(k)
		q.Set(k, sec(k), "")
	}); a != 0 {
		t.Fatalf("%v allocations per Reset, Set, Cancel, Set", a)
	}
}

func TestFakeTimer(t *testing.T) {
	clk := NewFake(epoch)
	tm := clk.NewTimer()
	tm.Set(sec(2))
	clk.Advance(time.Second)
	select {
	case <-tm.C():
		t.Fatal("fired at 1 s, set for 2 s")
	default:
	}
	clk.Advance(time.Second)
	select {
	case at := <-tm.C():
		if at.UnixNano() != sec(2) {
			t.Fatalf("fired with %v", at)
		}
	default:
		t.Fatal("did not fire at 2 s")
	}
	tm.Set(sec(1)) // in the past: at once
	tm.Stop()      // ...but discarded
	select {
	case <-tm.C():
		t.Fatal("Stop left a firing in C")
	default:
	}
}
