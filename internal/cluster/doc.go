// Package cluster is what a Shoal node needs to be one broker with others:
// NATS with JetStream, embedded in each node by default or an external NATS
// cluster for large deployments, and the building blocks the broker puts
// on it. No consensus, gossip or replication is written here: NATS routes
// the messages between nodes by subject interest, and JetStream replicates
// the state.
//
//   - Node (node.go) starts the embedded NATS server — routes to the other
//     nodes, JetStream in data_dir/cluster, a client listener on loopback
//     behind a per-process token, connected to in process — or connects
//     to an external NATS cluster, and waits until JetStream answers.
//   - Subject and Filter (subject.go) map MQTT topics and filters to NATS
//     subjects and key-value keys that every topic survives ('.', '*',
//     '>', spaces, empty levels, '$' topics), such that a filter's subjects
//     match a topic's subject under NATS's rules exactly when the filter
//     matches the topic under MQTT's (fuzzed against codec.Matches).
//   - Owners (owners.go) says which node owns each client id's session: a
//     replicated key-value bucket, claimed by compare-and-set with an
//     epoch, watched so that a node lets go of what another claimed.
//   - Peers and Table (peers.go) route between the nodes: each node's
//     interest, per distinct filter and per shared group's member count,
//     in a replicated bucket; the other nodes in this node's subscription
//     table as dispatch.Peers; a matching message once to each interested
//     node, in a frame (frame.go): QoS 0 on the node's core NATS subject,
//     QoS 1 and 2 into the replicated forward stream (forward.go), whose
//     acknowledgement the publisher's PUBACK or PUBREC waits for, read by
//     one durable consumer per node.
//   - Retained (retained.go) is the cluster's retained messages: a
//     replicated bucket and this node's copy of it, with a barrier that
//     makes a SUBSCRIBE read every write acknowledged before it.
//   - Sessions (sessions.go) moves a session to the node its client
//     connects to: the claim, the old node's handoff (package handoff
//     builds and adopts the session) or, when that node does not answer,
//     the session's replicated copy (package replica), and the takeover
//     of connections whose claim another node superseded.
//   - Rescuer (rescue.go) rescues a node that is gone: one survivor
//     claims its sessions, keeps them in the replicated copy, and adds to
//     them what other nodes sent the gone node through the forward
//     stream, until their clients connect or the node comes back.
//   - A handover (handover.go) keeps a session's messages whole while it
//     moves and the other nodes do not know yet: the node it left passes
//     on what still comes for it there, addressed to it; the new node
//     holds that until the session is adopted, and delivers a message
//     that came by both ways once (by its Origin).
//   - Health (health.go) decides whether this node serves: a round of
//     pings every second tells whether it is with a majority of the nodes
//     it knows; a node cut off refuses what needs JetStream's replication
//     and, after rescue_after, closes its clients' connections; back, it
//     reads the buckets anew (bucketWatch, watch.go) and settles its
//     sessions if the cluster may have moved them. The rounds also drive
//     the Rescuer, and notice a node that was frozen.
//   - Wills (wills.go) is the cluster's delayed wills: a replicated
//     bucket (shoal_wills) of the wills waiting for their Will Delay
//     Interval, keyed by client id, each with its due time and the node
//     that put it; that node publishes it when due, any node the grace
//     after, and a revision-conditional delete makes exactly one of them
//     publish it. Package expiry's WillStore.
//   - Status (status.go) is the cluster as this node's NATS sees it: the
//     nodes up or down, JetStream's meta leader; Owners.CountByNode counts
//     the owners' records by node, up to a bound. Retained and Peers time
//     their buckets' replicated writes (Writes) for the metrics.
//
// # Concurrency
//
// Node, Owners, Peers, Table, Retained, Sessions, Wills, Health and the
// mapping functions are safe for concurrent use. Health's rounds run on a
// goroutine of its own, the Rescuer's work on another, fed by them. Each watch (Owners.Watch, the
// Peers', Retained's and Wills' watches of their buckets) runs on a
// goroutine of its own; Wills also has one goroutine for its timers and
// one that makes its writes, in order, for callers that must not block; a
// node's messages from the others arrive on its NATS subscription's
// goroutine and its stream consumer's, which hand them to the router
// workers; handoff requests each get a goroutine. A receipt
// (dispatch.Receipt) is waited for by the router worker or loop that
// forwarded its message.
package cluster
