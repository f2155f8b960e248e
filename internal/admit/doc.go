// Package admit decides whether a client may connect, and what it may do
// once it has: who it is (a verified client certificate, a user name and
// password checked by the Authenticator, an MQTT 5 enhanced
// authentication exchange, or nobody, if anonymous clients are allowed)
// and its topic rights (the Authorizer's Permissions). Package conn
// validates CONNECT, hands it here (Gate.Login), and connects the client
// when told to (Admit, with a Grant); admit reaches the connection only
// through Conn, which conn implements.
//
//	CONNECT -> identity:  verified client certificate  -> admit
//	                      enhanced authentication      -> AUTH exchange (auth.go), then admit
//	                      user name (and password)     -> Authenticator on the login pool,
//	                                                      verdict posted to the loop -> admit
//	                      nothing                      -> admit if anonymous clients are allowed (Access.Anonymous)
//	admit   -> Authorizer.For(identity, client id) -> Grant -> conn checks the will against it, then CONNACK
//
// The Authenticator may be slow on purpose (bcrypt) or wait on a network,
// so it never runs on an event loop: the login pool's goroutines
// (Gate.RunLogins) check the credentials, and the verdict goes back to the
// client's loop (Conn.PostVerdict, then Gate.Verdict there). While a
// login is out, the client's later packets wait unread in its buffer, and
// the connect timeout still runs.
//
// # Ownership
//
// A Gate is shared: its access rules are swapped through an atomic
// pointer (SetAccess, on reload; connected clients keep what they were
// granted), its login queue is a channel, and its counters are atomics.
// A State belongs to its connection's event loop goroutine, and so do the
// calls that take a Conn (Login, Step, Auth, Verdict); the one exception
// is the login out with the pool, which a login worker holds until it
// posts the verdict and touches nothing else of the State. The worker
// owns nothing of the client.
//
// # Errors
//
// Refusals are *reason.Error values with their reason codes; package conn
// turns them into the CONNACK or DISCONNECT that answers them. What an
// Authenticator or a method said stays in the error's detail, for the
// log, never in a Reason String, where it would help a prober.
package admit
