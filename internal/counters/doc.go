// Package counters holds the connections' counters, which the broker's
// Stats sums: those of one event loop (Loop: packets in and out by QoS,
// clients connected, connects, closes by CloseReason) and those bumped off
// the per-message path (Conns: drops, refusals, kicks).
//
// # Ownership
//
// A Loop belongs to its event loop's goroutine, which counts packets in
// plain fields (PubIn, PubOut) and publishes them to the atomics once per
// event (Publish, before its output is written), so that nothing shared
// is touched per packet; its atomics are read by any goroutine. Each Loop
// sits in its loop's own state (package conn's loopState), apart from the
// other loops'. Conns is shared: every field is an atomic, safe for
// concurrent use, bumped on connects, refusals and drops only.
//
// Durations is a histogram of how long things took (the store's syncs,
// the cluster's replicated writes): atomics, observed by any goroutine,
// read by any.
package counters
