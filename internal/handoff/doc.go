// Package handoff moves a session from one node of a cluster to another
// when its client connects to the other: Give, on the node that had it,
// takes its connection over and hands out the session — subscriptions,
// messages in flight both ways, the queue — as a store.Bundle, and ends
// it there; Adopt, on the node the client connects to, makes it this
// node's, before the client attaches. Package cluster carries the bundle
// between the nodes, and decides who owns a session; this package knows
// only this node's sessions.
//
// # Concurrency
//
// Give and Adopt run on goroutines of the cluster's (never an event loop:
// Give waits for the connection it takes over to let go), lock one
// session at a time, and write the store through the background writer.
package handoff
