// Package mosqconf reads Mosquitto's mosquitto.conf into Shoal's
// configuration, a config.File, so that a broker moving from Mosquitto
// starts from the file it has; and it is where the command line's
// configuration is loaded in either format: Load and Parse tell the
// format (DetectFormat, or Options.Format from --config-format), translate
// a mosquitto.conf here and hand Shoal's YAML to config.ParseWith.
//
// What it owns:
//
//   - Reading a mosquitto.conf as Mosquitto 2.0 reads it (mosqconf.go):
//     comments, one-word and rest-of-line values, include_dir's files in
//     Mosquitto's order.
//   - The table of every directive of mosquitto.conf(5) and what each
//     becomes (directives.go): a setting, nothing (Shoal does it anyway),
//     or a refusal with the reason — an error naming the line, or a
//     warning under Options.Unsupported (WarnUnsupported).
//   - What depends on the whole file (resolve.go): the listeners mapped
//     onto Shoal's four, the settings Mosquitto keeps per listener and
//     Shoal for the broker (per_listener_settings), authentication,
//     persistence beside mosquitto.db, logging; and Mosquitto 2's values
//     for what the file leaves out.
//   - Bridges (bridge.go): each connection section becomes a
//     bridge.Connection, checked by bridge.Config.Validate, an error placed
//     at the line of the directive it names.
//
// What it does not own: the settings themselves — their keys, values,
// checks, the overrides of the command line (-p among them), the
// password and ACL files and the final validation are package config's.
// The translation goes through config.Translation: each value is set by
// key with the mosquitto.conf line it came from, so config's own checks
// refuse it, and an error, found then or at Finish, names that line and
// the Mosquitto directive:
//
//	m.conf:3: max_keepalive: 5 is outside 10..65535
//
// Concurrency: the package holds no state. A translator value lives for
// one call, on the calling goroutine; every exported function is safe for
// concurrent use. Load and Parse read the files a mosquitto.conf names
// (include_dir, and through config the password and ACL files) from
// disk. Returned values share nothing with the input bytes.
package mosqconf
