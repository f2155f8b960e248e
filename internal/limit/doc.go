// Package limit holds the limits that protect the broker from one client or
// one address — how many connections, how fast they come, how fast a
// client publishes, how long its topics are, how much waits for it — and
// the mechanisms that enforce the rates: a token bucket (Bucket), a
// client's publish throttle that wakes its loop when it may go on
// (Throttle), a sharded table of buckets per source address (PerAddr),
// and a bucket for log lines that counts what it holds back (Lines, which
// keeps a storm of connection events from flooding the log).
//
// The checks themselves live where the packets are handled (package conn)
// and where messages are queued (package dispatch); they read the Limits in
// force through an atomic pointer that Broker.Reload swaps, so a new value
// holds for what comes after and what was decided stays.
//
// # Ownership
//
// Limits values are immutable once published: readers on any goroutine
// load the pointer and never write. A Bucket belongs to one goroutine (a
// client's, on its event loop), and so do a Throttle (its timer wakes
// the loop from a goroutine of its own) and a Lines (a loop's). A PerAddr
// is safe for concurrent use: its shards have their own mutexes, leaves in
// the lock order (LOCKORDER.md).
package limit
