// Package auth decides who a client is and what it may do. It knows
// nothing of packets, sessions or sockets: the broker asks it and turns its
// answers into CONNACK, SUBACK, PUBACK, AUTH and DISCONNECT reason codes.
//
// It owns:
//
//   - Authenticator, the boundary for user name and password checks, and
//     its implementations: PasswordFile (bcrypt, argon2id and both of
//     Mosquitto's hashes, with a cache of recent successes), HTTP (a JSON POST
//     to a back end, with a timeout and a cache), and Chain, which asks
//     them in turn. An Authenticator may block: the broker runs it on a
//     pool of goroutines, never on an event loop.
//   - Authorizer and Permissions, the boundary for topic rights, and ACL,
//     read from an access control list file. Permissions are asked on the
//     hot path: they do not block or allocate.
//   - The method side of MQTT 5 enhanced authentication (section 4.12):
//     Method and Exchange, a Method per configured Authentication Method
//     and an Exchange per conversation; Registry, the broker's map from
//     method name to Method. The methods themselves live in subpackages:
//     SCRAM-SHA-256 is package auth/scram. The broker's protocol code
//     enforces the packet rules (same Authentication Method throughout
//     [MQTT-4.12.0-5], no AUTH without a method in CONNECT [MQTT-4.12.0-6]
//     [MQTT-4.12.0-7]).
//
// # The exchange, in MQTT packets
//
//	CONNECT (method, data)   -> Start, Step(data)
//	AUTH 0x18 (out)          <- done == false
//	AUTH 0x18 (data)         -> Step(data)
//	CONNACK 0x00 (out)       <- done == true
//	CONNACK err.Code         <- err != nil, then close [MQTT-4.12.0-4]
//
// Re-authentication [MQTT-4.12.1-1] is the same with AUTH 0x19 for the
// first client packet, AUTH 0x00 for success and DISCONNECT err.Code for
// failure [MQTT-4.12.1-2]. It starts a new Exchange; the old identity stays
// in force until the new one succeeds. A broker that does not let a
// connection change users compares the new Identity with the old one and
// refuses with CodeNotAuthorized when they differ.
//
// # Goroutines
//
// Method and Registry values are built once from configuration and are
// safe for concurrent use; they hold no mutable state. PasswordFile, HTTP
// and ACL are safe for concurrent use too; their only locks guard caches
// and reloads and are leaves (LOCKORDER.md). An Exchange belongs to the
// event loop that owns its connection and is used by that goroutine only,
// like the rest of the connection's state.
//
// # Invariants
//
//   - An exchange ends at its first error or at done == true; every Step
//     after that returns ErrExchangeEnded. A Method bounds how many Steps
//     and how many bytes an exchange takes, so a client cannot keep an
//     exchange or the CPU busy (auth/scram: three Steps of at most 1 KiB).
//
// # Buffers
//
// Step does not keep its input after it returns; the slice it returns is
// newly allocated and belongs to the caller. The Login an Authenticator is
// given is valid only during the call. Authentication is once per
// connection, not per message, so this package does not pool buffers.
//
// # Errors
//
// Every refusal is a *Error, one package-level value per cause (here and
// in the method packages), carrying the MQTT reason code to answer with.
// Its text is for logs: sending it as a Reason String would tell a prober
// which check failed.
package auth
