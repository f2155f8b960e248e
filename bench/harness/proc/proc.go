package proc

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat.
// Linux fixes it at 100 for user space on every architecture Go supports
// (sysconf(_SC_CLK_TCK) returns it), and Go has no sysconf without cgo.
const clockTicks = 100

// Mem is a process's memory from /proc/PID/status, in bytes.
type Mem struct {
	RSS  int64 // VmRSS: resident now
	Peak int64 // VmHWM: the most that was ever resident
}

// ParseStatus reads VmRSS and VmHWM from the text of /proc/PID/status.
func ParseStatus(text string) (Mem, error) {
	var m Mem
	var seen int
	for _, line := range strings.Split(text, "\n") {
		key, val, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		var dst *int64
		switch key {
		case "VmRSS":
			dst = &m.RSS
		case "VmHWM":
			dst = &m.Peak
		default:
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(val), "kB")), 10, 64)
		if err != nil {
			return m, fmt.Errorf("proc: /proc status %s: %w", key, err)
		}
		*dst = kb * 1024
		seen++
	}
	if seen < 2 {
		return m, errors.New("proc: /proc status has no VmRSS or VmHWM (kernel thread or zombie?)")
	}
	return m, nil
}

// ParseStat returns the user plus system CPU time, in seconds, from the
// text of /proc/PID/stat.
func ParseStat(text string) (float64, error) {
	// Field 2, the command name, is in parentheses and may hold spaces or
	// parentheses itself: count fields from the last ')'.
	i := strings.LastIndexByte(text, ')')
	if i < 0 {
		return 0, errors.New("proc: /proc stat has no command name")
	}
	f := strings.Fields(text[i+1:])
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, errors.New("proc: /proc stat is too short")
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("proc: /proc stat utime/stime: %w", err)
	}
	return float64(ut+st) / clockTicks, nil
}

// ReadMem reads a live process's memory figures.
func ReadMem(pid int) (Mem, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return Mem{}, err
	}
	return ParseStatus(string(b))
}

// ReadCPU reads a live process's user plus system CPU seconds.
func ReadCPU(pid int) (float64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	return ParseStat(string(b))
}
