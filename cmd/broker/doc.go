// Command broker runs a Shoal MQTT broker (built as bin/shoal by make
// build).
//
//	shoal [-c FILE] [--listen ADDR] [--log-level LEVEL]
//	shoal [-c mosquitto.conf] [-d] [-p PORT] [-v]
//	shoal passwd [-c] [-D] [-b] [--cost N] FILE USER [PASSWORD]
//	shoal healthcheck [-c FILE | --url URL] [--timeout D]
//	shoal --version
//
// The passwd subcommand adds, changes (-c: creates the file) or deletes
// (-D) a user of a password file (password_file), in the spirit of
// mosquitto_passwd. The healthcheck subcommand asks the admin listener's
// /healthz and exits 0 on 200: a container image's HEALTHCHECK, with no
// curl in the image.
//
// Started as root with user set, it binds every listener, switches to
// that user and its groups, and then opens the store (privileges.go); as
// root without it, a listener off loopback needs allow_root.
//
// Run by systemd with Type=notify ($NOTIFY_SOCKET set), it says READY=1
// once the listeners are bound, the state is loaded and the admin API
// serves; RELOADING=1 and READY=1 around a SIGHUP; STOPPING=1 on shutdown.
//
// Without -c it runs with the embedded default configuration (see
// config.example.yaml at the repository root); --listen and --log-level
// override the file. -c also reads Mosquitto's mosquitto.conf, and -p, -v
// and -d mean what they mean to Mosquitto (README, Coming from
// Mosquitto); -d starts the program again detached (daemon.go). It logs
// to stderr, or where log_dest says: console lines on a terminal, JSON
// otherwise, unless log_format says which.
//
// SIGHUP re-reads the configuration file, the password file and the ACL
// file and applies what can change while running.
//
// SIGINT or SIGTERM starts a graceful shutdown of at most ten seconds; a
// second signal cuts it short.
//
// Exit codes: 0 after a clean shutdown (or --version, -h), 1 when the
// configuration file is wrong or the broker fails, 2 for a bad flag.
//
// All the logic is in run, which takes its arguments, output streams and
// signal channel as parameters so that tests drive it without a process.
package main
