package main

import "testing"

// TestReleaser: memory goes back once a storm of connections is over — at
// least stormChurn connects and closes since the last release, then a
// quiet spell — once per storm.
func TestReleaser(t *testing.T) {
	var connects, closes int64
	frees := 0
	r := &releaser{churn: func() (int64, int64) { return connects, closes }, free: func() { frees++ }}
	step := func(dc, dd int64, want bool) {
		t.Helper()
		connects += dc
		closes += dd
		if got := r.tick(); got != want {
			t.Fatalf("after +%d connects, +%d closes (total %d, %d): released %v, want %v", dc, dd, connects, closes, got, want)
		}
	}
	step(0, 0, false)          // nothing happened
	step(600, 0, false)        // a storm begins
	step(600, 0, false)        // still coming
	step(0, 0, true)           // quiet: 1,200 since the last release
	step(0, 0, false)          // still quiet: nothing new to give back
	step(10, 10, false)        // a little churn
	step(0, 0, false)          // quiet, but 20 is no storm
	step(0, stormChurn, false) // everyone leaves
	step(0, 0, true)           // and it is quiet again
	if frees != 2 {
		t.Fatalf("%d releases; want 2", frees)
	}
}
