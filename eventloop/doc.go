// Package eventloop is Shoal's reactor: non-blocking event loops on gnet
// that accept connections, cut the inbound byte stream into MQTT frames and
// batch outbound bytes, with no goroutine per connection.
//
// # Ownership
//
// Each connection belongs to one Loop for its whole life. Everything about
// a Conn — its output buffer, its Handler state — is touched only on that
// loop's goroutine, so none of it is locked. Other goroutines reach a loop
// through Loop.Wake, which schedules Handler.OnWake on it; wake-ups that
// arrive while one is pending collapse into one.
//
// # Frames
//
// OnTraffic drains every complete frame from the connection's buffer and
// hands each to Handler.OnFrame; a partial frame stays in gnet's buffer
// until more bytes come. The fixed header is checked (codec.ParseHeader)
// before the body is waited for, so an over-size packet is refused without
// being buffered. A frame body passed to OnFrame is valid only during the
// call.
//
// # Output
//
// Conn.Write appends to a per-connection pooled buffer and marks the
// connection dirty; at the end of each read burst, wake-up or tick the loop
// writes every dirty connection once (one write system call however many
// packets it carries) and returns the buffer to the pool, so an idle
// connection holds no output buffer.
//
// Output written with Conn.PushBuffer (deliveries, as opposed to answers)
// to a connection whose previous write went out less than
// Config.Coalesce ago may instead wait while the loop has more work
// already on its way — the rest of the poll after a read burst (the loop
// wakes itself to flush after it, while such wake-ups gather enough to
// pay for themselves), or deliveries posted during a wake-up
// — and goes with the first flush that finds none, at most Coalesce after
// that write: a client receiving many messages a second gets them in
// fewer writes and TCP segments, while output on an idle loop, an answer,
// or what a connection's own read burst produced for it goes out at once
// (coalesce.go).
//
// gnet takes what the kernel refuses into its own buffer and writes it on
// its own, saying nothing when the socket drains. A producer that must
// not run ahead of its reader (Drainer) writes while Conn.Backlog is low
// and asks Conn.NotifyDrained for the rest; the loop checks after each
// flush and polls on a timer while the kernel is full (drained.go).
//
// # Backpressure and closing
//
// A Handler that cannot take a frame now returns ErrPause: the frame and
// everything after it stay in the connection's buffer and are offered again
// on the loop's next wake-up or tick (Engine.WakePaused lets the party that
// made room say so). Conn.Close sends what was written first: a connection
// whose output the kernel has not yet taken drains, reading nothing more,
// for at most Config.DrainGrace. Then it closes gracefully, so that a
// client still sending can read the last packet (the reason it was cut
// off): the write side is shut down and the connection lingers, discarding
// input, until the client closes or Config.Linger passes. Handler.OnClose
// comes when the linger begins; Engine.Lingering counts the sockets still
// open after it.
//
// # Walking connections
//
// Loop.Each and Engine.OnEach walk a copy of a loop's connection list, so
// their callback may close connections. Handler.OnClose never runs inside
// Handler code: a connection that ends during an event (gnet closes one
// inside a write the kernel refuses) gets it at the end of the event.
//
// # Enrolled connections
//
// gnet polls file descriptors, so it cannot drive a stream that exists
// only in Go, such as a *tls.Conn or a WebSocket connection. Engine.Enroll
// joins one to a loop through an AF_UNIX socketpair: the loop owns one end
// like any accepted socket, and two goroutines per connection, owned by
// the Engine and waited for by Stop, copy bytes between the other end and
// the transport's stream. The Handler sees the same frames as from TCP;
// Conn.Origin says where the connection came from and Conn.RemoteAddr is
// the client's real address. Such a connection costs 3 file descriptors
// and 2 goroutines, a plain TCP one 1 and 0.
package eventloop
