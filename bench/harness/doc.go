// Package harness runs Shoal's whole-system benchmark: it picks the
// scenarios and their variants at a scale (scenario.go), starts the
// brokers of each run, one process or a cluster's (nodes.go), runs each
// variant against each broker with load generators (runner.go, gen.go;
// probe.go checks a cluster's routes first), computes each run's metrics
// (metrics.go), takes medians over rounds (summary.go, stats.go) and
// writes the reports and chart specs (report.go). Bench (bench.go) is the
// whole run that cmd/harness calls. The brokers under test — their names,
// configuration files and binaries — are package brokers'; what the
// machine is, package machine's; starting processes and reading /proc and
// perf stat about them, package proc's.
//
// # Ownership
//
// Bench and Runner run on the caller's goroutine, one run at a time; the
// processes they start belong to a proc.Procs, which the command's signal
// handler may also kill. Records, Summaries and Metrics are values, not
// shared once built.
package harness
