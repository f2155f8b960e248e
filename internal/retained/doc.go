// Package retained holds the retained messages a client's SUBSCRIBE
// matched that are still to send (Queue), and each loop's snapshot lists
// kept for reuse (Pool). The sending itself — which message may go now,
// under the session's lock — is the connection's (package conn,
// retained.go); this package keeps the order and the references.
//
// Retained messages on SUBSCRIBE [MQTT-3.3.1-8] go out at the pace the
// client takes them, not all at once: a filter can match more retained
// messages than the client's in-flight window, its session queue or its
// socket would hold, and none of those limits is a sign of a slow client
// here — the broker made the burst, not the publishers.
//
// So SUBSCRIBE takes a snapshot of the matching messages
// (router.Retained.Collect: one reference each, no copies; 8 bytes a
// message, as retained messages are in memory anyway) into a cursor of
// the client's Queue, and package conn drains the cursor like it drains
// the session queue:
//
//   - QoS 1/2 messages take free in-flight slots only, and only when no
//     live message waits in the session queue; a PUBACK, PUBCOMP or
//     refusing PUBREC that frees a slot sends the next (slotFreedLocked).
//   - Every message waits while the connection's unsent output is at
//     Backlog or more; the loop calls OnDrained once it has gone down
//     (eventloop.Conn.NotifyDrained).
//
// Nothing from a cursor is queued in the session, counted against
// max_queued, dropped as a slow client's QoS 0 or taken for a slow
// consumer. Memory: a draining client holds its snapshots' lists (8 bytes
// per message matched, until its cursor is done; a "#" over a million
// retained messages is 8 MB), a reference to each message not yet sent
// (so a message the store replaces meanwhile lives on until the cursor
// passes it), and at most about Backlog bytes of their output. Taking
// the snapshot walks the trie under its read lock on the loop, as sending
// all at once did.
//
// # Ordering
//
// The messages of one SUBSCRIBE follow its SUBACK, filter by
// filter, each filter's in the store's order. Live messages routed to the
// client meanwhile go out as they come (MQTT only orders retained messages
// after the SUBACK): a live QoS 0 message at once, a live QoS 1/2 message
// ahead of any retained one waiting for a slot. One ordering is kept on
// top: the client never gets an older retained message of topic T after a
// newer retained one of T that was published after the snapshot. Such a
// message supersedes the snapshot's copy in the store (Message.Superseded),
// and it reaches the client live — it matches the subscription, which was
// in the table before the snapshot was taken — so the cursor skips the
// stale copy. A live message published without RETAIN on T may arrive
// before T's retained copy; that copy carries RETAIN 1, which says it is
// the stored state and not news.
//
// What is not yet sent when the client goes (DISCONNECT, a lost
// connection, a takeover) is released, not kept: MQTT owes retained
// messages to the subscribing connection only. What was sent and not yet
// acknowledged is in flight in the session like any message, and resent on
// reconnect as such.
//
// # Ownership
//
// A Queue belongs to its client's event loop goroutine, and a Pool to its
// loop's: no locks. The lists in a Queue hold one reference to each
// message not yet taken; Take hands that reference to the caller, and
// Drop releases what is left.
package retained
