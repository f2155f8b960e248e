// Package alias holds a connection's MQTT 5 topic alias tables: In, the
// aliases its client sets on the PUBLISH packets it sends
// [MQTT-3.3.2.3.4], and Out, those the broker assigns on the PUBLISH
// packets it sends the client [MQTT-3.3.2-12]. Aliases last as long as
// the connection [MQTT-3.3.2-11]; whether an alias is in range, and the
// error when it is not, is the connection's to say (package conn).
//
// # Ownership
//
// Both tables belong to their connection's event loop goroutine: no
// locks. A topic In returns is a read-only view of a string the table
// holds, valid as long as the caller keeps it (strings do not change).
package alias
