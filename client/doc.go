// Package client is an MQTT 3.1, 3.1.1 and 5.0 client built on gnet's
// client-side event loops, so that one process can hold tens of thousands
// of connections without a goroutine per connection. It is the engine of
// the load generator (bench/cmd/shoalbench) and is usable on its own.
//
//	e, _ := client.NewEngine(2)
//	defer e.Close()
//	c, err := e.Connect(ctx, client.Options{Addr: "127.0.0.1:1883", ClientID: "a", Version: 5,
//		OnMessage: func(m *client.Message) { fmt.Printf("%s: %s\n", m.Topic, m.Payload) }})
//	granted, err := c.Subscribe(ctx, "sensors/#", 1)
//	err = c.Publish("sensors/1", []byte("21.5"), 1, false)
//	err = c.Disconnect()
//
// # Ownership
//
// An Engine owns a few gnet event loops and one ticker goroutine (keep-alive),
// all ended by Engine.Close. Every Conn belongs to one loop for its whole
// life. Its protocol state — packet identifiers, the in-flight table, the
// inbound QoS 2 set, keep-alive timers — is touched only on that loop's
// goroutine and is not locked.
//
// Other goroutines reach a connection through its output queue: Publish,
// Subscribe, Unsubscribe and Disconnect encode the packet into the queue
// under Conn.mu and, if the connection was not already scheduled, put it
// on its loop's ready list and wake the loop. Wake-ups that arrive while
// one is pending collapse into one, and the loop writes everything a
// connection queued meanwhile with one write system call, so a publisher
// that outpaces the loop gets batching for free.
//
// Packet identifiers are assigned on the loop when a packet leaves the
// queue (they are patched into the encoded bytes), which keeps the
// identifier space and the in-flight window loop-owned.
//
// # Goroutine rules
//
//   - NewEngine, Engine.Connect and Engine.Close are safe for concurrent use.
//   - Publish, CanPublish, Outstanding, Done, Err and Close are safe for
//     concurrent use, including from the callbacks below.
//   - PublishWait, Subscribe, Unsubscribe and Disconnect are safe for
//     concurrent use but wait for the loop, so they must not be called from
//     a callback: the loop would wait for itself.
//   - Options.OnMessage, OnClose and OnWritable run on the connection's loop.
//     They must not block; a slow callback stalls every connection of that
//     loop.
//
// # Lifetimes
//
// A Message passed to OnMessage, and every slice in it, is valid only
// during the call: it aliases the loop's read buffer. Publish copies the
// payload into the queue before it returns, so the caller may reuse it.
//
// # Flow control
//
// Outbound QoS 1 and 2 messages take a slot of the in-flight window
// (Options.MaxInflight, default 64, lowered to the broker's Receive
// Maximum in MQTT 5 [MQTT-3.3.4-7]); a message that finds the window full
// waits in the queue, in order, and goes out when an acknowledgement frees
// a slot. The queue is bounded in bytes (Options.MaxQueued): when it and
// the bytes gnet has not yet handed to the kernel exceed the bound,
// Publish returns ErrQueueFull instead of growing it. CanPublish says
// whether a Publish would go straight out; when it says no, OnWritable
// fires once it would. A connection whose socket is full is re-examined
// every millisecond (gnet reports no "writable" event to its users).
//
// Inbound QoS 1 and 2 messages are acknowledged automatically (PUBACK;
// PUBREC, then PUBCOMP on PUBREL) after OnMessage returns, and a QoS 2
// message is delivered once even if the broker resends it before PUBREL
// [MQTT-4.3.3-10].
//
// The client does not reconnect and keeps no copy of sent messages: a
// message still unacknowledged when the connection closes completes with
// an error wrapping ErrClosed.
//
// # Locks
//
// Two mutexes, never held together: Conn.mu (the connection's output queue
// and closed state) and loop.mu (the loop's ready list). No callback is
// called with either held.
package client
