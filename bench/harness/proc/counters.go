package proc

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// Counters are a broker's kernel-side figures at one moment, read without
// slowing it down: none needs tracing. A run records their difference
// over its window, beside the CPU time, so that a report says why one
// broker spends more per delivery than another (more system calls, more
// TCP segments, more sleeps and wake-ups).
type Counters struct {
	// Reads and Writes are read(2)- and write(2)-like system calls, from
	// /proc/PID/io (syscr, syscw): what a broker calls per message on a
	// socket. Other calls (epoll_ctl, futex) need -perf.
	Reads, Writes int64
	// Switches are context switches, voluntary and not, summed over the
	// process's threads (/proc/PID/task/*/status): each time the broker
	// went to sleep or was put off its CPU. A thread that exits takes its
	// count with it; Go threads rarely do.
	Switches int64
	// Segs is the TCP segments sent by the broker's sockets on its port
	// (tcp_info's segs_out, through ss): data and pure ACKs, counted per
	// socket, so that other processes' loopback traffic on a shared
	// machine does not count (as it would in /proc/net/snmp's OutSegs).
	// -1 when ss is missing.
	Segs int64
}

// Sub returns c − o, field by field; a -1 on either side stays -1.
func (c Counters) Sub(o Counters) Counters {
	d := Counters{Reads: c.Reads - o.Reads, Writes: c.Writes - o.Writes, Switches: c.Switches - o.Switches, Segs: -1}
	if c.Segs >= 0 && o.Segs >= 0 {
		d.Segs = c.Segs - o.Segs
	}
	return d
}

// Add returns c + o, field by field (the counters of several processes);
// a -1 on either side stays -1.
func (c Counters) Add(o Counters) Counters {
	d := Counters{Reads: c.Reads + o.Reads, Writes: c.Writes + o.Writes, Switches: c.Switches + o.Switches, Segs: -1}
	if c.Segs >= 0 && o.Segs >= 0 {
		d.Segs = c.Segs + o.Segs
	}
	return d
}

// ReadCounters reads pid's counters and the segments sent by sockets
// bound to port.
func ReadCounters(ctx context.Context, pid, port int) (Counters, error) {
	var c Counters
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/io")
	if err != nil {
		return c, err
	}
	if c.Reads, c.Writes, err = ParseIO(string(b)); err != nil {
		return c, err
	}
	if c.Switches, err = readSwitches(pid); err != nil {
		return c, err
	}
	c.Segs = -1
	if _, err := exec.LookPath("ss"); err == nil {
		// Established sockets whose local port is the broker's: the
		// broker's side of each client connection.
		out, err := exec.CommandContext(ctx, "ss", "-tinH", "state", "established", fmt.Sprintf("( sport = :%d )", port)).Output()
		if err != nil {
			return c, fmt.Errorf("proc: ss: %w", err)
		}
		c.Segs = ParseSegsOut(out)
	}
	return c, nil
}

// ParseIO returns syscr and syscw from the text of /proc/PID/io.
func ParseIO(text string) (reads, writes int64, err error) {
	seen := 0
	for _, line := range strings.Split(text, "\n") {
		key, val, ok := strings.Cut(line, ":")
		if !ok || (key != "syscr" && key != "syscw") {
			continue
		}
		n, perr := strconv.ParseInt(strings.TrimSpace(val), 10, 64)
		if perr != nil {
			return 0, 0, fmt.Errorf("proc: /proc io %s: %w", key, perr)
		}
		if key == "syscr" {
			reads = n
		} else {
			writes = n
		}
		seen++
	}
	if seen < 2 {
		return 0, 0, errors.New("proc: /proc io has no syscr or syscw")
	}
	return reads, writes, nil
}

// ParseSwitches returns voluntary plus involuntary context switches from
// the text of one /proc/PID/task/TID/status.
func ParseSwitches(text string) (int64, error) {
	var n int64
	seen := 0
	for _, line := range strings.Split(text, "\n") {
		key, val, ok := strings.Cut(line, ":")
		if !ok || (key != "voluntary_ctxt_switches" && key != "nonvoluntary_ctxt_switches") {
			continue
		}
		v, err := strconv.ParseInt(strings.TrimSpace(val), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("proc: /proc status %s: %w", key, err)
		}
		n += v
		seen++
	}
	if seen < 2 {
		return 0, errors.New("proc: /proc status has no ctxt_switches")
	}
	return n, nil
}

func readSwitches(pid int) (int64, error) {
	tasks, err := filepath.Glob("/proc/" + strconv.Itoa(pid) + "/task/*/status")
	if err != nil || len(tasks) == 0 {
		return 0, fmt.Errorf("proc: no threads of %d: %v", pid, err)
	}
	var total int64
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue // the thread exited while we looked
		}
		n, err := ParseSwitches(string(b))
		if err != nil {
			return 0, err
		}
		total += n
	}
	return total, nil
}

// ParseSegsOut sums the segs_out fields of `ss -ti` output (not
// data_segs_out, which counts data segments only).
func ParseSegsOut(out []byte) int64 {
	var total int64
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		for _, f := range strings.Fields(sc.Text()) {
			if v, ok := strings.CutPrefix(f, "segs_out:"); ok {
				if n, err := strconv.ParseInt(v, 10, 64); err == nil {
					total += n
				}
			}
		}
	}
	return total
}
