// Package conn handles client connections: the MQTT state machine of each
// connection from its first byte to its close. It owns CONNECT, the
// session's takeover and CONNACK (connect.go), ingress — PUBLISH and the
// acknowledgements that come in (publish.go) —, egress — PUBLISH to the
// client under its in-flight window and queue (deliver.go) and retained
// messages at its pace (retained.go) —, SUBSCRIBE and UNSUBSCRIBE
// (subscribe.go), the connection's will (taken at CONNECT, published or
// handed to package expiry to wait for its delay as the connection
// leaves), the connection limits' checks and the lifecycle log lines
// (lifecycle.go).
//
// Each stage that needs no connection internals has its own package,
// which conn calls on the loop that owns the connection:
//
//	internal/admit     who a client is and what it may do: login, the
//	                   login pool, enhanced authentication (conn's side:
//	                   admit.go, where client implements admit.Conn)
//	internal/alias     the MQTT 5 topic alias tables, both ways
//	internal/retained  the retained messages a SUBSCRIBE still owes, and
//	                   the loop's snapshot lists
//	internal/reason    the broker's own errors and their reason codes
//	internal/counters  what the connections count, summed by Stats
//
// A message leaves this package as a dispatch.Job (routed inline on the
// publisher's loop or by a router worker: package dispatch) and comes back
// through dispatch.Conn, which the connection implements: deliver this,
// acknowledge that, here is a note (a takeover, an administrator's kick,
// a login's verdict). What must be stored is written through the loop's
// persist.Loop and package persist's Keeper.
//
// # Ownership
//
// A client (one connection) belongs to its event loop: only that
// goroutine reads or writes its fields, so none is locked. Handler is the
// eventloop.Handler of every loop; its per-loop state (loopState: scratch
// packets to decode into, counters, the log limiter, the snapshot lists)
// belongs to that loop's goroutine. A session.Session is shared — the
// owning loop, router workers (offline queueing) and a taking-over
// connection — and guarded by its own mutex; methods named ...Locked need
// it held. The login pool's goroutines (RunLogins, package admit) own
// nothing of a client: the verdict goes back to its loop as a note.
// Offline sessions' deadlines belong to package expiry. Lock order is in
// LOCKORDER.md.
//
// # Errors
//
// A decode or protocol error becomes a wire response in exactly one place,
// client.closeWith (through client.fail): CONNACK with a reason code
// before the session exists, DISCONNECT with a reason code for MQTT 5
// after, and a plain close for MQTT 3.x, which has no way to say why. The
// broker's own errors are *reason.Error values ("broker: ..."), each with
// its reason code (package reason); package admit's refusals are such
// errors too.
//
// # Buffers
//
// A frame body is valid only during OnFrame; what outlives it (a will, the
// CONNECT waiting for a login) is copied. Messages are router.Message
// values with references: a delivery holds one, released when the client
// acknowledges it or the session drops it.
package conn
