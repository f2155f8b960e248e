package main

import "runtime"

// setProcs sets GOMAXPROCS to one more than the broker's event loops, and
// returns it, unless the GOMAXPROCS environment variable says otherwise
// (the runtime has then applied it: set reports false).
//
// An event loop sleeps in epoll_wait, a blocking system call, whenever it
// has nothing to do. The Go scheduler takes the processor (P) of a
// goroutine that has been in a system call for 20 µs or more and hands
// it to another thread — unless some other P is idle. With as many Ps as
// loops (the default on a machine whose CPUs all run loops) no P is ever
// idle while every loop sleeps, so each sleep of each loop costs a
// hand-off: sysmon wakes to take the P, a second thread wakes (futex) to
// find nothing to run and sleeps again, and the loop's thread, back from
// epoll_wait, has to get a P again. Measured with make bench's p2p QoS 0
// at 10,000 msg/s, broker on one CPU (bench/results/2026-12-06-rates.md
// has the run): 0.6 context switches and 0.3 futex calls per delivery,
// finish_task_switch 17% of the broker's CPU samples (perf record),
// half of it sysmon's nanosleep. One spare P keeps the scheduler from
// retaking a sleeping loop's P for 10 ms, and sysmon backs off: on the
// same run 24-28 µs of broker CPU per delivery fell to 17 µs.
func setProcs(loops int, getenv func(string) string) (procs int, set bool) {
	if getenv("GOMAXPROCS") != "" {
		return runtime.GOMAXPROCS(0), false
	}
	procs = loops + 1
	runtime.GOMAXPROCS(procs)
	return procs, true
}
