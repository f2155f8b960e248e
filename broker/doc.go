// Package broker is Shoal's public entry point: broker.New(cfg) builds
// every part of the broker from Config and hands each what it needs, Start
// listens, Close shuts down, Reload applies new settings, and Stats,
// Clients, Kick and the rest read or act on the running broker. cmd/broker
// is a thin wrapper around it, and another Go program can embed it the
// same way.
//
// # The parts
//
// The broker itself keeps the wiring, the lifecycle (Bind, Start, Close),
// the listeners (the TCP port's reservation, the TLS and WebSocket
// listeners of package transport), the opening of the store, the
// configuration and its validation, and the public API. The work is done
// by packages that each own one stage of a message's path:
//
//	eventloop          the gnet loops: frames in, batched writes out
//	internal/conn      each connection's MQTT: CONNECT, PUBLISH in and out,
//	                   SUBSCRIBE, retained messages, wills, limits
//	internal/admit     who may connect and what it may do: login, the login
//	                   pool, enhanced authentication (for internal/conn)
//	internal/alias,    a connection's topic aliases; the retained messages
//	internal/retained  a SUBSCRIBE still owes, sent at the client's pace
//	internal/reason    the broker's own errors and their reason codes
//	internal/counters  what the connections count, summed by Stats
//	internal/dispatch  routing: the loops' inboxes, the router workers, the
//	                   fan-out, shared subscriptions, and Peer, the seam
//	                   for messages that go to other nodes (none on one node)
//	internal/persist   what is committed to the store when, the
//	                   group-commit hold of a loop's output, and the
//	                   one-time import (Config.Import) into a new store
//	internal/expiry    ending sessions, and offline sessions' deadlines
//	internal/limit     the connection limits and their rate buckets
//	internal/sys       the $SYS topics
//	router, session    the subscription table and retained messages; the
//	store              per-client state; what survives a restart
//	internal/cluster   the node of a cluster (Config.Cluster, cluster.go):
//	                   NATS with JetStream, the session owners' bucket;
//	                   started by Start, closed by Close; its status for
//	                   the admin API, metrics and $SYS (cluster_status.go)
//
// Sessions, subscriptions and retained messages are reached through
// interfaces (session.Store and session.Owner, router.Subscriptions,
// router.Retained, store.Store), and messages leave the node through
// dispatch.Peer, so that a cluster can put them elsewhere without
// touching the connections.
//
// # Flow of a PUBLISH
//
//  1. An event loop (package eventloop) cuts a frame from a connection's
//     byte stream and calls conn.Handler.OnFrame on that loop's goroutine.
//  2. The connection decodes it into the loop's scratch packet, checks it
//     (QoS, topic limits, rights), and copies it once into a pooled
//     router.Message, as a dispatch.Job carrying the PUBACK or PUBREC to
//     send. When the publisher has no earlier message still with a router
//     worker and no loop's inbox is backed up, the loop routes it itself
//     (dispatch.RouteInline): matches it, delivers to its own connections
//     at once, posts to the other loops, and writes the acknowledgement
//     after. That is the common case below saturation, and it saves the
//     hand-off to a worker and back.
//  3. Otherwise it goes to a router worker chosen by a hash of the
//     publisher's client id, so one client's messages stay in order. If the
//     worker's queue is full, a QoS 0 message is dropped and a QoS 1/2 one
//     is left in the connection's buffer: the connection pauses until there
//     is room (eventloop.ErrPause). The worker stores it if retained,
//     matches it against the lock-striped subscription table, and groups
//     the deliveries by the event loop owning each subscriber's connection:
//     one inbox append and one wake-up per loop per batch of messages, not
//     per subscriber. Deliveries for offline persistent sessions go to
//     their queue. The publisher's PUBACK or PUBREC rides in its loop's
//     inbox behind them: a message is acknowledged once it is routed, so a
//     publisher's in-flight window bounds what it has inside the broker. A
//     worker waits while a loop's inbox is full; loops never wait.
//  4. Each woken loop hands the deliveries to its connections
//     (dispatch.Conn), which encode them into their output buffers under
//     each session's lock (packet ids, in-flight window, queue); before
//     the loop writes each connection once, the store commits what the
//     loop did, and syncs when what goes out needs it (package persist).
//
// Retained messages matched by a SUBSCRIBE are not routed: the client's
// loop takes a snapshot of them and sends it at the client's pace, as its
// in-flight window and its socket allow (internal/retained).
//
// # Two paths, one order
//
// A PUBLISH takes one of two paths: inline on the publisher's loop (step
// 2) or through a router worker (step 3). Package dispatch owns both and
// the invariant that keeps each publisher's messages in order whichever
// path each takes (internal/dispatch/doc.go); the tests force each path
// in turn over the protocol, QoS, MQTT 5 and end-to-end suites
// (main_test.go).
//
// With persistence on (package persist), whoever routes a message also
// stores its deliveries to persistent sessions, and the acknowledgement
// waits for the store: see the durability contract there and in README.md.
//
// # Ownership and locks
//
// A Broker's exported methods are safe for concurrent use. Start runs the
// goroutines that are not event loops — the router workers, the login
// pool (package admit), the timer goroutine of package expiry, the relaxed-durability
// syncer, the $SYS publisher — and Close waits for every one of them. A
// client (one connection) belongs to its loop: only that goroutine reads
// or writes its fields (package conn). A session.Session is shared — the
// owning loop, router workers (offline queueing) and a taking-over
// connection — and is guarded by its own mutex. Lock order is in
// LOCKORDER.md.
//
// # Errors
//
// A decode or protocol error becomes a wire response in exactly one place
// (package conn): CONNACK with a reason code before the session exists,
// DISCONNECT with a reason code for MQTT 5 after, and a plain close for
// MQTT 3.x, which has no way to say why.
package broker
