// Package replica keeps the cluster's copy of the persistent sessions: every
// change a node's store writers make to a session it owns goes, besides its
// own disk, into a JetStream stream replicated as the cluster's state is
// (shoal_sessions), so that a session outlives its node. When the node that
// had a session does not answer its handoff — killed, or cut off — the node
// its client connects to reads the session from the stream instead
// (Store.Bundle) and adopts it, queued messages and messages in flight
// included.
//
// Store wraps the node's store.Store. Its writers commit locally first, then
// publish their changes to the stream in commit order; a syncing Commit, or
// Sync, returns once the stream has confirmed everything published before
// it, so that an acknowledgement that waits for a sync (durability: strict)
// waits for the replicated write too: the durability contract of the
// cluster (README "Cluster").
//
// # The stream
//
// One subject per record, keeping only its last message; a client id is one
// escaped token (cluster.AppendToken):
//
//	shoal.ss.{client}.s              the session: its generation and record
//	shoal.ss.{client}.{gen}.d.{seq}  a delivery owed: its message's Origin
//	                                 (uvarint), then store.AppendDelivery
//	shoal.ss.{client}.{gen}.m.{seq}  that it went out (store.AppendSent)
//	shoal.ss.{client}.{gen}.r.{id}   an inbound QoS 2 id awaiting PUBREL
//	shoal.ss.{client}.{gen}.o.{orig} a receipt: the client received the
//	                                 QoS 2 message of that Origin (empty,
//	                                 kept a minute past rescue_after)
//	shoal.ss.{client}.b              a reader's barrier (empty, 1 s)
//
// A record is removed by an empty message on its subject that expires
// (a per-message TTL), so that nothing of it is left after a while. A
// receipt is such a message too, on a subject of its own, and lasts a
// minute past rescue_after: a message a node forwarded may come to the
// session again (the stream lost an acknowledgement, or a rescuer reads
// it), and the node the session is on by then must know it was
// delivered (QoS 2 is exactly once: MQTT 5.0 section 4.3.3).
//
// A change the stream does not confirm (a publish that timed out while
// it elected a leader) leaves the copy unsure: it may lack the change or
// have it. The session is then written anew, whole, as this node has it,
// under its generation, once the stream confirms a publish again and the
// node serves (Store.RepairWith) — unless the copy's session record is
// another node's by then.
//
// A read publishes a barrier first: a stream's new leader answers reads
// before it has applied all that its log committed, and it confirms a
// write only once it has.
//
// The generation is the epoch of the claim (package cluster's Owners) under
// which a node began to write the session: a node that adopts a session
// writes it whole under its own, newer generation, and then purges the
// records of older ones, but for their receipts. Only the node that holds
// the newest claim of a session writes it (Holder): a node that handed a
// session over, or lost it to a newer claim, writes nothing more of it,
// and the new owner's generation is above anything it wrote.
//
// Not replicated: retained messages (package cluster's Retained has them)
// and the store's marks.
//
// # Concurrency
//
// Store is safe for concurrent use; a Writer belongs to one goroutine, as
// the store's do. Publishes are made under Store.mu, in the order the
// writers commit; one goroutine waits for the stream's confirmations in
// that order, another purges what adoptions and ended sessions left.
package replica
