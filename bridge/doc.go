// Package bridge connects a Shoal broker to other MQTT brokers, as
// Mosquitto's bridges do: each Connection is a client of one remote
// broker that forwards messages matching its topics out (local to
// remote), in (remote to local) or both ways, renaming topics by prefix.
// Its Config mirrors Mosquitto's bridge directives (connection, address,
// topic, remote_clientid, cleansession, try_private, notifications,
// restart_timeout, ...) so that a mosquitto.conf translates into it; the
// broker runs the bridges of broker.Config.Bridges. The package is public
// for that reason: embedders and the configuration loaders build its
// Config.
//
// # The two sides
//
// The local side is an MQTT 5 session on the broker itself, opened through
// broker.Broker.DialInternal (an in-process connection, no port, admitted
// without credentials), with Clean Start off and a session that never
// expires. The remote side is a TCP (or TLS) connection in the configured
// protocol version. Both speak MQTT through package codec; the bridge is
// the client on both. Both keep their sessions across reconnections.
//
// # Nothing acknowledged is lost
//
// A QoS 1/2 message is acknowledged to the broker it came from only when
// the broker it goes to has acknowledged the bridge's copy (PUBACK; PUBREC
// for QoS 2, when that broker has taken ownership). Until then the source
// keeps it and sends it again if the link breaks; the bridge matches the
// resent copy to the forwarding under way by its packet id, so it is not
// forwarded twice. While the remote broker is down, the local broker keeps
// what is bound for it in the bridge's session: at most 64 messages in
// flight to the bridge (the Receive Maximum it announces), then the
// session's queue, bounded by max_queued and max_queued_bytes, whose drops
// are counted (Stats.Dropped). Messages the bridge had sent to the remote
// and not seen acknowledged are sent again, with their packet ids and DUP,
// when it comes back. QoS 0 messages are not kept: dropped, and counted,
// while the link is down.
//
// # Loops
//
// A message that came over a bridge does not go back over it. Locally,
// the bridge subscribes with No Local on the same session it publishes
// with. Remotely, MQTT 5 subscriptions carry No Local too; an MQTT 3.x
// bridge marks its CONNECT (try_private), which Mosquitto and Shoal answer
// by applying No Local and Retain As Published to its subscriptions. A 3.x
// remote that refuses the mark, with a topic bridged both ways, loops, as
// Mosquitto's bridges do.
//
// # Goroutines
//
// Each Connection runs one loop goroutine that owns all of its message
// state, unlocked; each connection has a reader goroutine, which hands
// packets to the loop, and a writer goroutine, which sends what the loop
// queued (conn.mu guards that buffer; it is held only to append or take
// it). A remote connection attempt runs on a goroutine of its own. Bridges'
// methods are safe for concurrent use; Stats reads atomics.
package bridge
