// Package persist orchestrates the broker's persistent store (package
// store): what is written by whom, what is committed when, and what must
// be synced before a client hears about it. The store itself only keeps
// records; this package decides when they must be on disk.
//
// # Who stores what
//
//   - router workers and loops routing a message store each QoS 1/2
//     delivery to a persistent session (Keeper.PutDelivery, with a Seq
//     from one counter) and retained messages, and commit before they hand
//     the deliveries on (package dispatch);
//   - loops store session records (CONNECT, SUBSCRIBE, UNSUBSCRIBE, close)
//     at once, under the session lock (StoreSessionLocked), packet ids as
//     messages go out, their removal as acknowledgements come in, and
//     inbound QoS 2 ids (package conn);
//   - the timer goroutine stores the end of expired sessions and of delayed
//     wills, through the background writer (WithBG).
//
// Before Load, ImportOnce brings another program's state (Mosquitto's
// persistence file, through broker.Import) into a store that never held
// any: one synced batch with the store's mark, so that it happens once.
//
// # The durability contract
//
// In strict mode a loop syncs the store before it writes PUBACK or PUBREC
// for a message some persistent session must receive, before a QoS 2
// PUBLISH or PUBREL goes out with a packet id the store must remember, and
// before CONNACK, SUBACK or UNSUBACK that change a persistent session
// (Loop.NeedSync, then Keeper.BeforeFlush). One sync covers everything
// committed before it, by any writer, and Pebble shares one fsync among
// the commits that arrive together: the cost is one disk sync per loop
// iteration that needs it, never one per message. A loop may hold its
// output for the rest of a poll's events so that one sync covers them all
// (group commit; BeforeFlush). In relaxed mode nothing waits for the disk
// and the store is synced once a second (RunRelaxedSync): a crash of the
// machine (not of the process alone) can lose the last second of
// acknowledged messages.
//
// A commit that fails stops the broker (Keeper.Failed): nothing
// acknowledged may be lost, so it cannot go on pretending.
//
// # Ownership
//
// A store.Writer belongs to one goroutine: each event loop has one (in its
// Loop), each router worker one, and the goroutines that are neither share
// the background writer under Keeper's mutex (WithBG; 0 in LOCKORDER.md).
// A Loop is touched only by its event loop's goroutine. Keeper's other
// methods are safe for concurrent use. Load runs once, before any loop or
// worker. With persistence off every writer is nil and every method here
// does nothing with it.
package persist
