// Package expiry ends sessions and keeps the deadlines of offline ones:
// the end of a Session Expiry Interval [MQTT-3.1.2-23] and of a will's
// Will Delay Interval [MQTT-3.1.3-9]. A connection that leaves gives its
// offline session its deadline (ArmLocked), one that attaches cancels it
// (DisarmLocked); one goroutine (Run) sleeps until the next deadline is
// due, then ends the sessions whose expiry passed and publishes the wills
// whose delay passed, locking only the sessions that are due. Ending a
// session — by expiry, or when its connection ends it (Session Expiry 0)
// or a clean start clears it — removes its subscriptions from the table,
// its records from the store, and hands its unfinished shared-subscription
// deliveries to another member (EndLocked, ClearLocked).
//
// The deadlines sit in one internal/deadline Queue keyed by session, on an
// injectable clock, so tests move time themselves.
//
// In a cluster a delayed will is also kept where every node sees it
// (Parts.Wills, a WillStore: package cluster's Wills), put as its
// connection leaves; when its delay passes, this node claims it there and
// publishes it only if it wins, and a client that comes back, here or on
// another node, cancels it (wills.go). On a single node there is no
// WillStore and a delayed will is this node's alone.
//
// # Ownership
//
// Sessions is safe for concurrent use. Its queue has its own mutex, a
// leaf (6 in LOCKORDER.md) taken with a session's lock held; the ...Locked
// methods need the session's lock held (1). The timer goroutine owns its
// scratch and writes to the store through the background writer
// (persist.Keeper.WithBG, 0 → 1).
package expiry
