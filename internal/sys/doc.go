// Package sys owns the broker's $SYS topics, in Mosquitto's naming: which
// topics are the broker's own (Own), closed to clients' PUBLISH and wills
// and never stored, and the publisher that puts the broker's figures there
// every interval (Run).
//
// # Ownership
//
// Run is one goroutine, started and waited for by package broker; it owns
// its load averages. Own is a pure function, safe anywhere, called per
// PUBLISH by the connections and per retained message by dispatch.
package sys
