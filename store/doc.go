// Package store keeps what a broker must not forget across a restart:
// persistent sessions with their subscriptions and delayed wills, the QoS
// 1/2 messages owed to them (queued or in flight, with their packet ids
// and states), the inbound QoS 2 packet ids awaiting PUBREL, and retained
// messages. Beside that state it keeps marks: named values that record
// what must happen once in the store's life (an import of Mosquitto's
// file), written in the same commit as what they vouch for.
//
// A Store hands out Writers, one per goroutine that changes state: each
// event loop, each router worker, the broker's background goroutine.
// Writers gather changes in memory and Commit them in order; a syncing
// Commit makes them, and everything committed before by any writer,
// durable — Pebble shares one fsync of its write-ahead log among the
// commits that arrive together, so the broker pays one disk sync per loop
// iteration, not per message. Load reads the state back once, before the
// broker accepts connections.
//
// Pebble is the store on disk; Mem keeps the same records in memory, for
// tests and embedders that want a restart without a disk. Both encode
// records the same way (records.go): a kind byte, then the client id with
// its length, so that one range holds a client's records, and values that
// begin with a version byte. A record that does not decode is reported
// and skipped; it never stops a load.
//
// A Pebble store's directory is never touched unless it is proven to be
// the store's own and damaged (pebble_open.go): a directory in use by
// another process, holding other files, or failing for a reason of the
// operating system is an error that says so. A damaged one is salvaged
// into a fresh store with the original kept whole beside it, or, with
// OnDamage Refuse, left alone.
//
// Record slices handed to a Loader are valid only during the call; records
// given to a Writer are copied before the method returns.
package store
