// Package reason holds the broker's own errors: the policy and protocol
// rules found above the codec (a second CONNECT, a full queue, a limit, a
// refused login), each an *Error with the MQTT reason code it is answered
// with, and Describe, which finds the reason code and the reason string of
// any error a connection is closed with (the broker's, the codec's, the
// event loop's). Package conn and package admit make these errors; conn
// turns each into its wire response in one place (client.closeWith), and
// package broker re-exports the type as broker.Error.
//
// What an *Error says in Msg may reach an MQTT 5 client as a Reason
// String; what it says in Detail (Because) stays in the log, quoting what
// the client chose through Clip.
//
// # Ownership
//
// Error values are immutable once made and safe to share between
// goroutines; the package-level ones are sentinels for errors.Is.
package reason
