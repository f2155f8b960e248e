// Package dispatch routes messages: it matches each PUBLISH against the
// subscription table, stores what must be stored through package persist,
// and hands each delivery to the event loop that owns its subscriber's
// connection, or to the session's queue when the subscriber is offline. It
// owns the loops' inboxes (Loop), the router workers (Worker), the fan-out,
// shared subscriptions' choice of member and their rerouting when a member
// leaves, and the session queues' drop policy (EnqueueLocked).
//
// # Boundaries
//
// Dispatch never sees a connection's type. It calls connections back
// through Conn (package conn implements it): deliver this, acknowledge
// that, here is a note. Sessions are session.Session values reached
// through their owner (session.Owner, which Conn extends); subscriptions
// and retained messages through router.Subscriptions and router.Retained.
// Messages go beyond this node to the other nodes of a cluster through
// Peer: the cluster subscribes one Peer per node in the subscription table
// for each distinct filter the node's sessions have, and one per member
// they have in a shared group, so that matching, de-duplication and the
// choice of a group's member treat other nodes' sessions as this node's.
// Messages that come from a Peer are submitted as Jobs with Local set (and
// Group, for a member picked here by the sending node). A single node has
// no Peers.
//
// # Two paths, one order
//
// A PUBLISH takes one of two paths: inline on the publisher's loop
// (RouteInline) or through a router worker chosen by a hash of the
// publisher's client id (Worker, Submit). Which one changes from message
// to message, and the invariant that makes that safe is:
//
//	A publisher's message is routed inline only when none of its earlier
//	messages is still with a worker (Publisher: its routing count is 0);
//	otherwise it follows them to the same worker (by client id). Before a
//	loop hands a message to a worker it posts what it routed inline
//	(FlushFan), and before it delivers inline to its own connections it
//	drains its inbox.
//
// So each publisher's messages reach each subscriber in the order they
// were published, and a message acknowledged before another is delivered
// before it, whichever path each took. The mode (Routing: auto, inline or
// workers) only says when the inline path may be taken: auto while every
// loop's inbox keeps up (inlineRoom); the broker's tests force each path
// in turn over the protocol, QoS, MQTT 5 and end-to-end suites.
//
// A worker routes a batch of jobs, then posts the deliveries grouped by
// loop: one inbox append and one wake-up per loop per batch, not per
// subscriber. The publisher's PUBACK or PUBREC rides in its loop's inbox
// behind them: a message is acknowledged once it is routed — and, in a
// cluster, once the other nodes it went to have it stored (Receipt: the
// worker posts the batch's deliveries, waits for its receipts, then posts
// its acknowledgements) — so a publisher's in-flight window bounds what it
// has inside the broker. A worker waits while a loop's inbox is full
// (inboxLimit) and for its receipts; loops never wait (one that routed a
// message with receipts hands them and the acknowledgement to the
// publisher's worker). Whoever routes a message stores its deliveries to persistent
// sessions and commits before posting them (persist's durability
// contract).
//
// # Ownership
//
// A Loop's inbox is guarded by its mutex (5 in LOCKORDER.md), which is
// taken with no other lock held except a session's (1 → 5: a delivery
// forwarded to the loop that now owns the session); everything else in a
// Loop — its fan-out scratch, its gathered releases — belongs to its event
// loop's goroutine. A Worker's scratch belongs to its goroutine (Run); its
// queue is a channel. A Publisher belongs to its connection's loop, except
// its routing count, which workers lower. Deliveries carry one reference
// to their message each; whoever ends a delivery releases it.
package dispatch
