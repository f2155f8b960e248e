//go:build race

package broker_test

// raceEnabled: the race detector makes sync.Pool drop a share of what is
// put back on purpose, so pooled buffers are allocated again and heap
// measurements mean nothing (see alloc_test.go).
const raceEnabled = true
