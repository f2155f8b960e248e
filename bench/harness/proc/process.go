package proc

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Procs starts the harness's child processes (brokers and generators) and
// kills every one still running when asked: at the end of each run, on an
// error, and on SIGINT or SIGTERM. It is safe for concurrent use.
type Procs struct {
	// Pin runs each process under `taskset -c CPU` when its Spec names a
	// CPU. Set it only when taskset exists and the machine has the CPUs.
	Pin bool
	// NoFile, when not 0, runs each process under `prlimit --nofile=N:N`,
	// so that brokers and generators may hold NoFile descriptors whatever
	// soft limit the harness inherited.
	NoFile uint64
	// LogDir receives each process's stderr as NAME-SEQ.log.
	LogDir string

	mu   sync.Mutex
	seq  int
	live map[*Proc]struct{}
}

// Spec is one process to start.
type Spec struct {
	Name string   // short name for logs and errors: "shoal", "sub"
	Argv []string // program and arguments
	Dir  string   // working directory; "" for the harness's
	CPU  int      // CPU to pin to when Procs.Pin is set; -1 for none
}

// Proc is a started process. Its methods are safe for concurrent use.
type Proc struct {
	Name    string
	Argv    []string // as run, wrappers included
	LogPath string

	cmd  *exec.Cmd
	out  *capped
	done chan struct{}
	err  error // set before done is closed
	ps   *Procs
}

// Wrap returns argv prefixed with the pinning and fd-limit wrappers that
// Procs uses. Both wrappers exec the program, so it keeps their process
// id and /proc figures read for it are the program's own.
func (ps *Procs) Wrap(argv []string, cpu int) []string {
	var w []string
	if ps.Pin && cpu >= 0 {
		w = append(w, "taskset", "-c", strconv.Itoa(cpu))
	}
	if ps.NoFile > 0 {
		n := strconv.FormatUint(ps.NoFile, 10)
		w = append(w, "prlimit", "--nofile="+n+":"+n, "--")
	}
	return append(w, argv...)
}

// NoFileLimit is the descriptor limit to give brokers and generators: the
// hard limit this process may raise its children to. Idle runs need about
// 19,000 for the broker and 9,500 for each generator.
func NoFileLimit() uint64 {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Max == ^uint64(0) {
		return 65536
	}
	return rl.Max
}

// Start starts s in its own process group, with stdout kept in memory
// (the last 1 MiB) and stderr written to a log file.
func (ps *Procs) Start(s Spec) (*Proc, error) {
	ps.mu.Lock()
	ps.seq++
	seq := ps.seq
	if ps.live == nil {
		ps.live = make(map[*Proc]struct{})
	}
	ps.mu.Unlock()

	argv := ps.Wrap(s.Argv, s.CPU)
	p := &Proc{Name: s.Name, Argv: argv, out: &capped{max: 1 << 20}, done: make(chan struct{}), ps: ps}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = s.Dir
	cmd.Stdout = p.out
	cmd.WaitDelay = 2 * time.Second // a grandchild holding stdout must not hang Wait
	// Setpgid lets Kill reach anything the program forks; Pdeathsig kills
	// the program if the harness dies without cleaning up.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if ps.LogDir != "" {
		p.LogPath = filepath.Join(ps.LogDir, fmt.Sprintf("%s-%03d.log", s.Name, seq))
		f, err := os.Create(p.LogPath)
		if err != nil {
			return nil, err
		}
		defer f.Close() // the child has its own copy once started
		cmd.Stderr = f
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("proc: start %s: %w", s.Name, err)
	}
	p.cmd = cmd
	ps.mu.Lock()
	ps.live[p] = struct{}{}
	ps.mu.Unlock()
	go func() {
		p.err = cmd.Wait()
		ps.mu.Lock()
		delete(ps.live, p)
		ps.mu.Unlock()
		close(p.done)
	}()
	return p, nil
}

// KillAll kills every process still running and waits for each to be
// reaped, at most a few seconds.
func (ps *Procs) KillAll() {
	ps.mu.Lock()
	live := make([]*Proc, 0, len(ps.live))
	for p := range ps.live {
		live = append(live, p)
	}
	ps.mu.Unlock()
	for _, p := range live {
		p.Kill()
	}
}

// Pid returns the process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// ExitCode returns the exit status, -1 while running or when killed by a
// signal.
func (p *Proc) ExitCode() int {
	if !p.Exited() {
		return -1
	}
	return p.cmd.ProcessState.ExitCode()
}

// Stdout returns what the process printed, up to its last 1 MiB.
func (p *Proc) Stdout() []byte { return p.out.Bytes() }

// Signal sends sig to the process group.
func (p *Proc) Signal(sig syscall.Signal) {
	if !p.Exited() {
		_ = syscall.Kill(-p.Pid(), sig)
	}
}

// Kill kills the process group with SIGKILL and waits up to 5 seconds for
// the process to be reaped.
func (p *Proc) Kill() {
	p.Signal(syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
	}
}

// Result returns the exit error of a process that has exited (nil for
// status 0), and an error saying it still runs otherwise.
func (p *Proc) Result() error {
	if !p.Exited() {
		return fmt.Errorf("proc: %s still running", p.Name)
	}
	if p.err != nil {
		return fmt.Errorf("%w%s", p.err, p.logTail())
	}
	return nil
}

// Wait waits up to timeout for the process to exit by itself; after that
// it kills it and returns an error. A zero exit status and the statuses
// in ok are success; any other status is an error naming the log tail.
func (p *Proc) Wait(timeout time.Duration, ok ...int) error {
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.Kill()
		return fmt.Errorf("proc: %s did not exit within %v; killed", p.Name, timeout)
	}
	if p.err == nil {
		return nil
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		for _, c := range ok {
			if ee.ExitCode() == c {
				return nil
			}
		}
	}
	return fmt.Errorf("proc: %s: %w%s", p.Name, p.err, p.logTail())
}

// logTail returns the last lines of the process's stderr, for errors.
func (p *Proc) logTail() string {
	if p.LogPath == "" {
		return ""
	}
	b, err := os.ReadFile(p.LogPath)
	if err != nil || len(b) == 0 {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 5 {
		lines = lines[len(lines)-5:]
	}
	return " (stderr: " + strings.Join(lines, " | ") + ")"
}

// capped keeps the last max bytes written to it.
type capped struct {
	mu  sync.Mutex
	buf bytes.Buffer
	max int
}

var _ io.Writer = (*capped)(nil)

func (c *capped) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.buf.Write(b)
	if over := c.buf.Len() - c.max; over > 0 {
		c.buf.Next(over)
	}
	return len(b), nil
}

func (c *capped) Bytes() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return bytes.Clone(c.buf.Bytes())
}
