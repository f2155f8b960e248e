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
// The cluster key is a mapping (cluster.go) that makes the broker a node
// of a cluster; {} (the default) is none. Its settings are checked by
// package internal/cluster's Config.Validate, through
// broker.Config.Validate, and an error names the key inside the section:
//
//	shoal.yaml:9:11: cluster.listen: "nowhere" is not host:port
//
// Mosquitto's mosquitto.conf is read by package internal/mosqconf, which
// imports this one: it builds a File through Translation, setting each
// value by key with the mosquitto.conf line it came from, so that the
// same checks apply and an error names that line and the Mosquitto
// directive; Finish then does what Parse does after reading YAML
// (overrides, password and ACL files, Validate). The File records its
// Format. internal/mosqconf also tells the format of a file and loads
// either (mosqconf.Load, what the shoal command calls).
//
// The package holds no state: every function is a pure function of its
// input and safe for concurrent use, as are File's methods. A
// Translation is the exception: it is built and finished by one
// goroutine. Returned values share nothing with the input bytes.
package config
