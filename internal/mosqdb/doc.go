// Package mosqdb reads Mosquitto's persistence file (mosquitto.db) and
// turns what it holds into records of Shoal's store, so that a broker
// moving from Mosquitto keeps its retained messages and its persistent
// sessions with their subscriptions and queued messages.
//
// It only ever reads the file: ReadFile opens it read-only and Parse works
// on bytes in memory. Nothing here writes, renames or locks it.
//
// # The file
//
// The layout was learned by reading Mosquitto's persistence code (persist.h,
// persist_read.c, persist_read_v5.c, persist_write.c, persist_write_v5.c)
// and checked against files that Debian's mosquitto 2.0.11 writes (the
// tests make them with the real broker). All of it is Mosquitto's; none of
// its code is used here.
//
//	header   15 bytes magic 00 B5 00 "mosquitto db", 4 bytes CRC (always
//	         0), 4 bytes format version (big-endian): 6 from Mosquitto
//	         2.0, 5 from 1.6. Earlier versions (2 to 4) are refused.
//	chunk    4 bytes type, 4 bytes length of what follows (big-endian),
//	         then that many bytes. Types: 1 config, 2 message, 3 client
//	         message, 4 retain, 5 subscription, 6 client. A chunk of any
//	         other type is skipped, as Mosquitto skips it.
//
// Each chunk begins with a C struct written as it lies in memory, padding
// included (the PF_* structs of persist.h): its 16- and 32-bit fields are
// converted to big-endian before they are written, but its 64-bit ones —
// database ids and times — are not, so they are in the writing machine's
// byte order. This package reads them as little-endian, which is what
// x86 and ARM machines write. The padding depends on the ABI; where it
// does (the config and client chunks), the chunk's length tells.
//
//	config      u64 last db id, u8 shutdown, u8 db id size (must be 8),
//	            padding.
//	message     u64 store id, i64 expiry time (Unix seconds, 0: none),
//	            u32 payload length, u16 source packet id, u16 source client
//	            id length, u16 source username length, u16 topic length,
//	            u16 source listener port, u8 QoS, u8 retain (32 bytes);
//	            then source client id, source username, topic, payload, and
//	            the MQTT 5 properties (a variable byte integer length and
//	            the properties, as in a PUBLISH) in the rest of the chunk.
//	client      i64 session expiry time (Unix seconds; 0: none, or
//	            connected with an expiry that never ends), u32 session
//	            expiry interval (0xFFFFFFFF: never, as for a 3.1.1 client
//	            without clean session), u16 last packet id, u16 client id
//	            length; version 6 adds u16 listener port and u16 username
//	            length (and 4 bytes of padding on 64-bit machines); then
//	            the client id and the username.
//	client msg  u64 store id of the message, u16 packet id, u16 client id
//	            length, u8 QoS, u8 state, u8 retain<<4 | dup, u8 direction
//	            (0 in, 1 out) (16 bytes); then the client id and, in the
//	            rest of the chunk, MQTT 5 properties: the Subscription
//	            Identifier the message came through.
//	retain      u64 store id of a retained message.
//	subscription
//	            u32 subscription identifier, u16 client id length, u16
//	            topic filter length, u8 QoS, u8 options (MQTT's option
//	            bits: 0x04 No Local, 0x08 Retain As Published), padding
//	            (12 bytes); then the client id and the filter.
//
// Mosquitto writes, in order: the config chunk, every message still
// referenced, then for each client with a persistent session its client
// chunk followed by its client messages (inbound in flight, inbound
// queued, outbound in flight, outbound queued), then every subscription of
// a persistent session, then one retain chunk per retained message but
// those of $SYS topics. It writes to a temporary file and renames it.
//
// The format has no checksum and no end mark: a file cut at a chunk
// boundary reads as a smaller, whole one. Parse finds every other cut and
// every length that does not fit, and says where.
//
// # Ownership
//
// A File's byte slices alias the bytes given to Parse (ReadFile's own
// copy): they stay valid as long as the File is kept. Nothing here is safe
// for concurrent use but reading a File that no one changes.
package mosqdb
