// Package scram is SCRAM-SHA-256 (RFC 7677, RFC 5802) for MQTT 5 enhanced
// authentication (MQTT 5.0 section 4.12): an auth.Method the broker offers
// under the Authentication Method "SCRAM-SHA-256" (SHA256), and the client
// side that tests and tools drive against it. It knows nothing of packets:
// the broker carries each message in CONNECT, AUTH and CONNACK as
// Authentication Data, and turns the refusals, *auth.Error values, into
// reason codes.
//
// It owns:
//
//   - the server: New builds the method over a CredentialStore (MemStore
//     is one held in memory), and each Start an exchange that runs
//     client-first, server-first, client-final, server-final (server.go);
//   - Credentials, what the server keeps per user instead of the password,
//     and NewCredentials, which derives them (server.go);
//   - the message grammar of RFC 5802 section 7 that both sides parse:
//     attributes, nonces, saslname escapes, strict base64 (msg.go);
//   - Client, the client side: First, Final, Verify (client.go).
//
// It does no channel binding (no SCRAM-SHA-256-PLUS) and accepts no
// authorization identity. Package auth defines the Method and Exchange
// interfaces and the error type; this package depends on it, never the
// reverse.
//
// # Goroutines
//
// The Method returned by New is built once from configuration and is safe
// for concurrent use: it is immutable, and every connection's exchange
// reads it. A CredentialStore must be safe for concurrent Lookup; a MemStore
// is, as long as nobody writes to the map after New. An Exchange belongs to
// the event loop that owns its connection and is used by that goroutine
// only, like the rest of the connection's state; a Client belongs to the
// goroutine running its client. The package has no locks and starts no
// goroutines.
//
// # Invariants
//
//   - An exchange ends at its first error or at done == true; every Step
//     after that returns auth.ErrExchangeEnded. It takes at most three
//     Steps (an empty first one asks for client-first), and each input is
//     bounded (1 KiB), so a client cannot keep an exchange or the CPU busy.
//   - Credentials never hold the password, only the derived keys.
//   - An unknown user is not told apart from a wrong password: the exchange
//     goes on with decoy credentials derived from the user name and a
//     secret (WithSecret), and fails at the proof with ErrBadCredentials,
//     at the same step and with the same error as a wrong password.
//   - Proofs and signatures are compared in constant time.
//
// # Buffers
//
// Step and the Client methods do not keep their input after they return;
// the slices they return are newly allocated and belong to the caller.
// Authentication is once per connection, not per message, so nothing here
// is pooled.
//
// # Errors
//
// Every refusal is an *auth.Error, one package-level value per cause,
// carrying the MQTT reason code to answer with; the text is for logs, never
// a Reason String, which would tell a prober which check failed.
package scram
