package proc

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// PerfEvents are the tracepoints `-perf` counts over each run's window:
// every system call, and the ones that tell brokers apart (writes per
// delivery, epoll re-arming, sleeping in epoll_wait, Go's thread hand-offs
// through futex and sysmon's nanosleep).
var PerfEvents = []string{
	"raw_syscalls:sys_enter",
	"syscalls:sys_enter_read",
	"syscalls:sys_enter_write",
	"syscalls:sys_enter_epoll_wait",
	"syscalls:sys_enter_epoll_pwait",
	"syscalls:sys_enter_epoll_ctl",
	"syscalls:sys_enter_futex",
	"syscalls:sys_enter_nanosleep",
}

// PerfSyscalls is the key of the count of every system call in
// Record.Perf.
const PerfSyscalls = "raw_syscalls:sys_enter"

// PerfWorks reports whether `perf stat` can count PerfEvents here: perf
// installed, tracepoints readable (root, or perf_event_paranoid allowing
// it).
func PerfWorks(ctx context.Context) bool {
	if _, err := exec.LookPath("perf"); err != nil {
		return false
	}
	return exec.CommandContext(ctx, "perf", "stat", "-x,", "-e", strings.Join(PerfEvents, ","), "true").Run() == nil
}

// PerfStat is a `perf stat` attached to a process for a window.
type PerfStat struct {
	cmd *exec.Cmd
	out string
}

// StartPerf attaches perf stat to pid (its threads, and those they start),
// writing its counts to file out when stopped.
func StartPerf(pid int, out string) (*PerfStat, error) {
	cmd := exec.Command("perf", "stat", "-x,", "-e", strings.Join(PerfEvents, ","), "-p", strconv.Itoa(pid), "-o", out)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("proc: perf stat: %w", err)
	}
	return &PerfStat{cmd: cmd, out: out}, nil
}

// Stop ends the count (SIGINT makes perf stat print it) and returns it.
func (p *PerfStat) Stop() (map[string]float64, error) {
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
		return nil, fmt.Errorf("proc: perf stat did not stop")
	}
	b, err := os.ReadFile(p.out)
	if err != nil {
		return nil, err
	}
	return ParsePerfStat(string(b)), nil
}

// ParsePerfStat reads `perf stat -x,` output: one line per event,
// "count,unit,event,...". Events perf could not count are left out.
func ParsePerfStat(text string) map[string]float64 {
	m := make(map[string]float64)
	for _, line := range strings.Split(text, "\n") {
		f := strings.Split(strings.TrimSpace(line), ",")
		if len(f) < 3 || strings.HasPrefix(f[0], "#") {
			continue
		}
		n, err := strconv.ParseFloat(f[0], 64)
		if err != nil { // "<not counted>", "<not supported>"
			continue
		}
		m[f[2]] = n
	}
	return m
}
