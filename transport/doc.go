// Package transport runs the listeners that need a goroutine per
// connection — MQTT over TLS (tls_listen), over WebSocket (ws_listen) and
// over secure WebSocket (wss_listen) — and hands each connection, once
// its handshake is done, to the broker's reactor as a plaintext byte
// stream (eventloop.Engine.Enroll). From there on a TLS or WebSocket
// client is framed, routed and kept in its session exactly like a TCP
// client; plain TCP never passes through here.
//
// # Why goroutines here
//
// gnet polls file descriptors and has no TLS; crypto/tls and WebSocket
// framing need a blocking net.Conn. So this package blocks, per
// connection, only as long as it must: an accepting goroutine per
// listener, one goroutine per connection for its handshake (or, for
// WebSocket, net/http's goroutine up to the upgrade), after which the
// eventloop's two copying goroutines take over.
//
// # Ownership and limits
//
// A Server owns its listeners, its accept loops, the handshake goroutines,
// the http.Servers and the goroutine that reports failed-handshake lines
// held back by their rate limit (failures.go); Stop closes and waits for
// all of them. Enrolled
// connections belong to the reactor and are not the Server's: Stop leaves
// them for the broker to close. At most Config.MaxHandshakes connections
// are between accept and enrolment at once, over all listeners; each has
// Config.HandshakeTimeout to finish.
//
// # Certificates
//
// The server certificate, its key and the client CA pool are read at
// Start and again by Reload (the broker calls it on SIGHUP). Handshakes
// take the current set through tls.Config.GetConfigForClient, which reads
// an atomic pointer: a reload needs no restart, established connections
// keep what they negotiated, and a reload that fails keeps the set in
// use. TLS 1.2 is the minimum. A client certificate's identity
// (Config.Identity) reaches the broker in eventloop.Origin.CertIdentity,
// and only when the handshake verified its chain.
//
// Every exported method of Server is safe for concurrent use.
package transport
