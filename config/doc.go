// Package config reads Shoal's YAML configuration file into a broker.Config
// plus the process's logging settings.
//
// A file is a single YAML mapping whose keys are the snake_case names
// documented on the fields of broker.Config, plus log_level and log_format.
// Keys left out keep their broker.DefaultConfig value. Default returns the
// embedded file that lists every key at its default with a comment on each;
// config.example.yaml at the repository root is a byte-for-byte copy of it.
//
// Values:
//
//   - Durations (connect_timeout, retry_interval, max_session_expiry,
//     max_keepalive) are Go duration strings such as "10s" or "1m30s", or a
//     plain integer meaning seconds. max_keepalive must be whole seconds.
//   - Sizes (max_packet_size) are a plain integer of bytes or an integer
//     followed by a unit: B, KB, MB, GB (powers of 1000) or KiB, MiB, GiB
//     (powers of 1024), e.g. "64KiB" or "1 MiB".
//   - Counts are plain integers; strings are plain or quoted YAML strings.
//     A quoted number ("64") is a string, not a count.
//
// Parsing is strict: an unknown or repeated key, a value of the wrong YAML
// type, a value that does not parse, a YAML syntax error or a setting that
// broker.Config.Validate rejects all return an *Error naming the file, the
// line and column, and the key, e.g.
//
//	shoal.yaml:7:15: max_inflight: 0 is outside 1..65535
//	shoal.yaml:3:1: unknown key "listne" (did you mean "listen"?)
//
// The bridges key is a list of mappings, one per bridge (bridges.go); an
// error about one of its keys is placed at that key, inside the list.
//
// Mosquitto's mosquitto.conf is read too (ParseOptions, LoadOptions; the
// format told by DetectFormat or given): each directive is translated into
// the settings above and applied through their own checks, so an error
// names the mosquitto.conf line and the Mosquitto directive; what the file
// leaves out takes Mosquitto 2's value; a directive Shoal has no
// equivalent for is refused (or, by Options.Unsupported, a warning). See
// mosquitto.go. Its connection sections become bridge.Connection values
// directly, the type that mirrors them, checked by the bridge.Config.Validate
// the bridges key goes through too (mosquitto_bridge.go).
//
// The package holds no state: every function and method is a pure function
// of its input and safe for concurrent use. Returned values share nothing
// with the input bytes.
package config
