package broker

import (
	"strconv"
	"testing"
)

// BenchmarkStats measures one Stats call with 100,000 sessions (none
// connected): the cost the admin server's history sampler and the $SYS
// publisher pay per round. Stats walks and locks every session for the
// in-flight and queue gauges.
func BenchmarkStats(b *testing.B) {
	br, err := New(DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	for i := range 100_000 {
		br.sessions.GetOrCreate("client-" + strconv.Itoa(i))
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = br.Stats()
	}
}
