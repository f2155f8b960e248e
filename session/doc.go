// Package session holds the state MQTT keeps per client identifier: the
// subscriptions a client asked for, the QoS 1/2 messages in flight in both
// directions, and the queue of messages waiting for a free in-flight slot or
// for the client to come back.
//
// # Ownership
//
// A Session is guarded by its own mutex (Lock/Unlock). While its client is
// connected, the event loop that owns the connection takes the lock to send
// and acknowledge; router workers take it only to queue for a session that is
// offline, and a new connection takes it to take the session over. Every
// method whose name ends in Locked requires s.mu to be held; the others lock
// for themselves. Lock order: a Session's mutex is taken first; with it held,
// a Store shard lock may be taken, never the other way round (see
// LOCKORDER.md at the repository root).
//
// Why the lock is exported: a Session's changes are parts of larger steps
// that must be atomic with state outside it. A SUBSCRIBE changes the
// session and the subscription table together, so that a Clean Start
// cannot slip in between; a takeover moves ownership and the in-flight
// window together; a delivery assigns a packet id, writes the PUBLISH and
// records the store's state together. Those steps belong to the packages
// that own the table, the connections and the store (internal/conn,
// internal/dispatch, internal/expiry, internal/persist), so they hold the
// lock across them and call the Locked methods inside. Hiding the
// lock would mean moving those steps here, and with them the table and the
// store. The Locked suffix and the "s.mu must be held" comments at every
// caller are how the protocol stays readable, and the race detector (make
// race) how it stays checked.
//
// # Memory
//
// Idle sessions dominate memory at high connection counts, so every
// collection a Session has starts nil and is allocated on first use: an
// idle, subscribed session costs its struct plus its one subscription.
//
// # Messages
//
// Queued and in-flight messages are *router.Message values; the session
// holds one reference for each and releases it when the message is
// acknowledged, dropped or the session ends.
package session
