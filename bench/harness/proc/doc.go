// Package proc runs the benchmark's child processes and reads what the
// kernel says about them. It owns starting and killing processes
// (process.go: Procs, Proc, the taskset and prlimit wrappers, and
// NoFileLimit, the descriptor limit prlimit gives them), their memory and
// CPU time from /proc/PID/status and /proc/PID/stat (proc.go), the
// kernel-side counters of a window — system calls, context switches, TCP
// segments — (counters.go), and perf stat attached to a process
// (perf.go). It knows nothing of scenarios, brokers or reports: package
// harness decides what to run and what the figures mean.
//
// # Ownership
//
// Procs and Proc are safe for concurrent use: the harness's run goroutine
// starts and waits for processes while its signal handler may kill them
// all (Procs.mu guards the set of live processes; a Proc's exit is
// recorded by the goroutine that waits for it before done is closed). A
// PerfStat belongs to the goroutine that started it, which must Stop it.
// Counters and Mem are values. The Parse functions are pure.
//
// # Buffers
//
// Proc.Stdout returns a copy of the process's captured output (capped),
// the caller's to keep.
package proc
