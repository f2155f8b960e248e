// Package machine says where a benchmark ran and what it ran: the CPUs,
// memory and kernel of this machine from /proc, the Go version, and the
// versions of the brokers under test (Shoal's git revision, Mosquitto's
// from its usage text, mochi-mqtt's and gnet's from go.mod). Every report
// prints it. It knows nothing of runs: package harness probes once, after
// the last run, and hands the Machine to the reports.
//
// # Ownership
//
// Probe runs on the caller's goroutine; a Machine is a value. The Parse
// functions and ModVersion, MosquittoVersion are pure.
package machine
