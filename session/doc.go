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
