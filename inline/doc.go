// Package inline lets a Go program that embeds Shoal publish into its
// broker and subscribe to it from the same process, as an MQTT client of
// it: a Client is a session like any other — the same authentication,
// QoS 1/2 acknowledgements, retained messages, wills and session expiry as
// a client on the network, because it is one. It connects over loopback to
// the broker's own listener (package client's event loop: no goroutine per
// subscription), so it costs a local socket per Client, not a copy of the
// broker's semantics that could drift from them.
//
// # Ownership
//
// A Client's methods are safe for concurrent use. Its connection belongs
// to its own client.Engine, one event loop, which Close stops. Handlers
// run on that loop's goroutine, one at a time, in arrival order; a slow
// handler delays the next message, so hand long work off. The list of
// handlers by filter is guarded by the Client's mutex, a leaf
// (LOCKORDER.md), never held while a handler runs, so a handler may
// subscribe or publish.
//
// # Buffers
//
// A Message's Payload is valid only during the handler's call: copy what
// you keep.
package inline
