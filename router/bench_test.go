package router

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
)

// allocTable builds a table exercising every match path: a literal topic in
// a 100-wide level, a 1,000-subscriber topic, overlapping wildcards large
// enough for map de-duplication, shared groups and No Local.
func allocTable(st SharedStrategy) (*Table, *testSub) {
	tb := NewTable(0, st)
	for i := range 100 {
		tb.Subscribe(newSub(fmt.Sprint("lit", i)), fmt.Sprintf("bench/%d", i), Options{QoS: 1})
	}
	pub := newSub("pub")
	for i := range 1000 {
		s := newSub(fmt.Sprint("fan", i))
		tb.Subscribe(s, "fan/out", Options{QoS: 1, SubID: 1})
		if i%2 == 0 {
			tb.Subscribe(s, "fan/+", Options{QoS: 2, SubID: 2})
		}
	}
	tb.Subscribe(pub, "fan/out", Options{QoS: 1, NoLocal: true})
	tb.Subscribe(pub, "#", Options{QoS: 0})
	for i := range 5 {
		tb.Subscribe(newSub(fmt.Sprint("sh", i)), "$share/g/fan/#", Options{QoS: 1, SubID: 5})
		tb.Subscribe(newSub(fmt.Sprint("sh", i)), "$share/h/bench/+", Options{QoS: 1})
	}
	return tb, pub
}

// TestMatchAllocs asserts the match path allocates nothing once a worker's
// Matches has grown.
func TestMatchAllocs(t *testing.T) {
	for _, st := range []SharedStrategy{RoundRobin, Random, HashClient, HashTopic} {
		tb, pub := allocTable(st)
		topics := [][]byte{[]byte("bench/42"), []byte("fan/out"), []byte("fan/in"), []byte("$SYS/x"), []byte("none/x")}
		fromID := []byte("pub")
		var m Matches
		run := func() {
			for _, topic := range topics {
				m.Reset()
				tb.Match(topic, pub, fromID, &m)
			}
		}
		run() // warm-up: grows m.List, SubIDs and the de-duplication map
		run()
		if n := testing.AllocsPerRun(100, run); n != 0 {
			t.Errorf("%v: Match allocates %.1f times per run, want 0", st, n)
		}
	}
}

// TestBytesPerSubscription measures the table's heap cost of the broker's
// common case: many subscribers, each on its own literal topic.
//
// Measured (Go 1.26, linux/amd64, AMD EPYC): 112 bytes per subscription
// for 100k distinct "bench/%d" filters, one subscriber each (123 under
// -race). A leaf is a 48-byte node, a 24-byte sub slice and its cloned level
// string (8 bytes); the remaining ~32 bytes are its slot in the parent's map,
// growth slack included.
func TestBytesPerSubscription(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates 100k subscriptions")
	}
	const n = 100_000
	subs := make([]*testSub, n)
	filters := make([]string, n)
	for i := range n {
		subs[i] = newSub(fmt.Sprint("c", i))
		filters[i] = fmt.Sprintf("bench/%d", i)
	}
	before := heapAlloc()
	tb := NewTable(0, RoundRobin)
	for i := range n {
		tb.Subscribe(subs[i], filters[i], Options{QoS: 1})
	}
	after := heapAlloc()
	per := float64(after-before) / n
	t.Logf("%.0f bytes per subscription (%d subscriptions, %d nodes)", per, tb.Count(), tb.nodeCount())
	// A bound, not the figure: catches a node growing a field or a level
	// string pinning its filter.
	if per > 250 {
		t.Errorf("%.0f bytes per subscription, want at most 250", per)
	}
	runtime.KeepAlive(tb)
	runtime.KeepAlive(subs)
	runtime.KeepAlive(filters)
}

func heapAlloc() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

func benchMatch(b *testing.B, tb *Table, topic string, want int) {
	b.Helper()
	tp := []byte(topic)
	var m Matches
	tb.Match(tp, nil, nil, &m)
	if len(m.List) != want {
		b.Fatalf("%s: %d matches, want %d", topic, len(m.List), want)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		m.Reset()
		tb.Match(tp, nil, nil, &m)
	}
}

// One subscriber on a literal topic, among 100k such topics.
func BenchmarkMatchLiteral(b *testing.B) {
	tb := NewTable(0, RoundRobin)
	for i := range 100_000 {
		tb.Subscribe(newSub(fmt.Sprint("c", i)), fmt.Sprintf("bench/%d", i), Options{QoS: 1})
	}
	benchMatch(b, tb, "bench/12345", 1)
}

// 1,000 subscribers on one topic: the fan-out case, no de-duplication.
func BenchmarkMatchFanout1000(b *testing.B) {
	tb := NewTable(0, RoundRobin)
	for i := range 1000 {
		tb.Subscribe(newSub(fmt.Sprint("c", i)), "fan/out", Options{QoS: 1})
	}
	benchMatch(b, tb, "fan/out", 1000)
}

// 1,000 subscribers each on the topic and on an overlapping wildcard: the
// map de-duplication path.
func BenchmarkMatchFanout1000Overlap(b *testing.B) {
	tb := NewTable(0, RoundRobin)
	for i := range 1000 {
		s := newSub(fmt.Sprint("c", i))
		tb.Subscribe(s, "fan/out", Options{QoS: 1, SubID: 1})
		tb.Subscribe(s, "fan/+", Options{QoS: 2, SubID: 2})
	}
	benchMatch(b, tb, "fan/out", 1000)
}

// A realistic mix of wildcards around a deep topic.
func BenchmarkMatchWildcards(b *testing.B) {
	tb := NewTable(0, RoundRobin)
	filters := []string{
		"home/+/kitchen/temp", "home/#", "home/house1/+/temp", "+/house1/kitchen/#",
		"#", "home/house1/kitchen/temp", "home/+/+/+", "home/house2/#", "+/+/+/humidity",
	}
	for i, f := range filters {
		tb.Subscribe(newSub(fmt.Sprint("w", i)), f, Options{QoS: 1})
		tb.Subscribe(newSub(fmt.Sprint("x", i)), f, Options{QoS: 0, SubID: uint32(i + 1)})
	}
	for i := range 1000 { // unrelated neighbours
		tb.Subscribe(newSub(fmt.Sprint("n", i)), fmt.Sprintf("home/house%d/kitchen/temp", i+3), Options{})
	}
	benchMatch(b, tb, "home/house1/kitchen/temp", 14)
}

// One shared group of 8 members, round-robin.
func BenchmarkMatchShared(b *testing.B) {
	tb := NewTable(0, RoundRobin)
	for i := range 8 {
		tb.Subscribe(newSub(fmt.Sprint("s", i)), "$share/g/jobs/+", Options{QoS: 1})
	}
	benchMatch(b, tb, "jobs/1", 1)
}

// Parallel matches over 64 first levels while one goroutine subscribes and
// unsubscribes, by shard count: what DefaultShards rests on. The allocations
// it reports are the churning goroutine's new nodes, not Match's.
func BenchmarkMatchParallelChurn(b *testing.B) {
	for _, shards := range []int{1, 16, 64} {
		b.Run(fmt.Sprint("shards=", shards), func(b *testing.B) {
			tb := NewTable(shards, RoundRobin)
			topics := make([][]byte, 64)
			for i := range topics {
				topics[i] = fmt.Appendf(nil, "root%d/dev/temp", i)
				for j := range 10 {
					tb.Subscribe(newSub(fmt.Sprint(i, "-", j)), fmt.Sprintf("root%d/+/temp", i), Options{QoS: 1})
				}
			}
			churn := make([]string, 64*5)
			for i := range churn {
				churn[i] = fmt.Sprintf("root%d/dev/x%d", i%64, i/64)
			}
			var stop atomic.Bool
			var wg sync.WaitGroup
			wg.Go(func() {
				s := newSub("churn")
				for i := 0; !stop.Load(); i++ {
					f := churn[i%len(churn)]
					tb.Subscribe(s, f, Options{})
					tb.Unsubscribe(s, f)
				}
			})
			var next atomic.Uint32
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				var m Matches
				i := int(next.Add(7))
				for pb.Next() {
					m.Reset()
					tb.Match(topics[i%len(topics)], nil, nil, &m)
					i++
				}
			})
			b.StopTimer()
			stop.Store(true)
			wg.Wait()
		})
	}
}

// Subscribing distinct literal filters: the cost of a reconnect storm.
func BenchmarkSubscribe(b *testing.B) {
	tb := NewTable(0, RoundRobin)
	subs := make([]*testSub, b.N)
	filters := make([]string, b.N)
	for i := range b.N {
		subs[i] = newSub(fmt.Sprint("c", i))
		filters[i] = fmt.Sprintf("bench/%d", i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		tb.Subscribe(subs[i], filters[i], Options{QoS: 1})
	}
}

func BenchmarkRetainedMatch(b *testing.B) {
	r := NewRetained()
	for i := range 10_000 {
		m := NewMessage(fmt.Appendf(nil, "sensors/%d/temp", i), []byte("21.5"), nil, nil, 0, true, 0, nil)
		r.Set(m)
		m.Release()
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		n := 0
		r.Match("sensors/+/temp", func(*Message) bool { n++; return true })
		if n != 10_000 {
			b.Fatalf("matched %d", n)
		}
	}
}
