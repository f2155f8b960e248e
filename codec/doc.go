// Package codec reads and writes MQTT control packets of protocol levels 3
// (MQTT 3.1), 4 (MQTT 3.1.1) and 5 (MQTT 5.0).
//
// Decoding happens in two steps, so that a transport can act on a partial
// stream without buffering more than it must:
//
//  1. ParseHeader finds the frame: it reads the fixed header and the
//     variable byte integer that follows it, checks the packet type's
//     reserved flags and the size limit, and says how many bytes the whole
//     frame takes. It returns ErrShort while the header itself is incomplete,
//     so a caller can stop at any byte boundary and resume when more arrives.
//     An over-size packet is refused here, before its body is buffered.
//  2. Once the whole frame is there, a packet type's Decode method parses the
//     body. It never acts on the packet; it only fills a struct.
//
// Decoder wraps both steps for stream users (clients, tests, fuzzing) that
// don't have a transport buffer of their own.
//
// # Lifetimes
//
// Decode methods don't copy: every []byte field of a decoded packet aliases
// the frame it was decoded from and is valid only as long as that frame is.
// Slices of structs (Subscribe.Filters, Properties.User, ...) are reused
// across calls on the same value, so decoding into a long-lived value
// allocates nothing once it has warmed up. Keep a field beyond the frame's
// life only by copying it.
//
// Append methods append a packet's wire form to dst and return the extended
// slice; Size methods say how long that form is.
//
// # Errors
//
// Every decode error is a *Error carrying the MQTT 5 reason code the
// receiver should answer with (Malformed Packet 0x81 or Protocol Error 0x82
// mostly). Turning it into a CONNACK or DISCONNECT is the caller's job, done
// in one place.
//
// Nothing in this package keeps state between calls except Decoder, which
// belongs to one goroutine. All functions are safe for concurrent use on
// distinct values.
package codec
