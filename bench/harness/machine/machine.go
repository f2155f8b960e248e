package machine

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
)

// Machine describes where a benchmark ran and what it ran.
type Machine struct {
	CPUs     int
	Model    string // CPU model name
	MemBytes int64
	Kernel   string
	Go       string
	Shoal    string // git describe of the repository
	// ShoalBefore is the revision ShoalBefore was built at (-before), ""
	// when it did not run.
	ShoalBefore string
	Mosquitto   string
	Mochi       string // mochi-mqtt module version
	Gnet        string // gnet module version (Shoal's and the floor's)
}

// Summary is the machine in one phrase: "2 × AMD EPYC, 23.4 GiB".
func (m Machine) Summary() string {
	return fmt.Sprintf("%d × %s, %.1f GiB", m.CPUs, m.Model, float64(m.MemBytes)/(1<<30))
}

// ParseCPUInfo returns the processor count and the first model name in the
// text of /proc/cpuinfo.
func ParseCPUInfo(text string) (n int, model string) {
	for _, line := range strings.Split(text, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch strings.TrimSpace(k) {
		case "processor":
			n++
		case "model name":
			if model == "" {
				model = strings.TrimSpace(v)
			}
		}
	}
	if model == "" {
		model = "unknown CPU"
	}
	return n, model
}

// ParseMemInfo returns MemTotal, in bytes, from the text of /proc/meminfo.
func ParseMemInfo(text string) int64 {
	for _, line := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// ModVersion returns the version go.mod text requires of module path, or
// "".
func ModVersion(gomod, path string) string {
	for _, line := range strings.Split(gomod, "\n") {
		f := strings.Fields(strings.TrimPrefix(strings.TrimSpace(line), "require "))
		if len(f) >= 2 && f[0] == path {
			return f[1]
		}
	}
	return ""
}

// MosquittoVersion returns "2.0.11" from the first line `mosquitto -h`
// prints ("mosquitto version 2.0.11"), or "".
func MosquittoVersion(out string) string {
	line, _, _ := strings.Cut(out, "\n")
	if _, v, ok := strings.Cut(line, "version "); ok {
		return strings.TrimSpace(v)
	}
	return ""
}

// Probe describes this machine and the programs the benchmark runs: the
// repository at root, Mosquitto at the path mosquitto, and, when before
// names a revision (-before), that revision as `git describe` names it.
func Probe(ctx context.Context, root, mosquitto, before string) Machine {
	read := func(p string) string {
		b, _ := os.ReadFile(p)
		return string(b)
	}
	m := Machine{Go: runtime.Version()}
	m.CPUs, m.Model = ParseCPUInfo(read("/proc/cpuinfo"))
	if m.CPUs == 0 {
		m.CPUs = runtime.NumCPU()
	}
	m.MemBytes = ParseMemInfo(read("/proc/meminfo"))
	m.Kernel = strings.TrimSpace(read("/proc/sys/kernel/osrelease"))
	m.Gnet = ModVersion(read(filepath.Join(root, "go.mod")), "github.com/panjf2000/gnet/v2")
	m.Mochi = ModVersion(read(filepath.Join(root, "bench/peers/mochi/go.mod")), "github.com/mochi-mqtt/server/v2")
	// mosquitto -h exits with status 3 after printing its usage.
	out, _ := exec.CommandContext(ctx, mosquitto, "-h").CombinedOutput()
	m.Mosquitto = MosquittoVersion(string(out))
	var err error
	if m.Shoal, err = describe(ctx, root, "--dirty"); err != nil {
		m.Shoal = "unknown (no git)"
	}
	if before != "" {
		if m.ShoalBefore, err = describe(ctx, root, before); err != nil {
			m.ShoalBefore = before
		}
	}
	return m
}

// describe names a revision of the repository at root as `git describe
// --tags --always` does, with args after those (a revision, --dirty).
func describe(ctx context.Context, root string, args ...string) (string, error) {
	argv := append([]string{"-C", root, "describe", "--tags", "--always"}, args...)
	out, err := exec.CommandContext(ctx, "git", argv...).Output()
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(out)), nil
}
