package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// -d, as Mosquitto's: run in the background. A Go program cannot fork
// safely once its runtime runs threads, so the parent starts the program
// again, detached (its own session, no terminal, standard streams on
// /dev/null), and waits for it to say how its start went: the child
// writes its start-up output — configuration errors, the first log lines
// — to a pipe the parent copies to its own stderr, and once it listens, a
// last line that only says it is ready. The parent exits 0 then, and 1
// if the pipe closes first (the child failed to start, and said why).
// Under systemd, run in the foreground instead (Type=exec): the service
// manager does what -d does, and better.

// startupFDEnv names the environment variable that gives a child of -d
// the descriptor of its start-up pipe.
const startupFDEnv = "SHOAL_STARTUP_FD"

// readyLine ends the child's start-up output when it listens. The NUL
// keeps it from being a line of a log.
const readyLine = "\x00shoal ready"

// daemonize starts the program again in the background with args less
// -d, copies its start-up output to stderr and returns the exit code for
// the parent.
func daemonize(args []string, stderr io.Writer) int {
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "shoal: -d: %v\n", err)
		return 1
	}
	r, w, err := os.Pipe()
	if err != nil {
		fmt.Fprintf(stderr, "shoal: -d: %v\n", err)
		return 1
	}
	defer r.Close()
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		w.Close()
		fmt.Fprintf(stderr, "shoal: -d: %v\n", err)
		return 1
	}
	cmd := exec.Command(exe, withoutDaemon(args)...)
	cmd.Env = append(os.Environ(), startupFDEnv+"=3")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = null, null, null
	cmd.ExtraFiles = []*os.File{w} // descriptor 3 in the child
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	w.Close()
	null.Close()
	if err != nil {
		fmt.Fprintf(stderr, "shoal: -d: %v\n", err)
		return 1
	}
	ready := false
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if sc.Text() == readyLine {
			ready = true
			break
		}
		fmt.Fprintln(stderr, sc.Text())
	}
	if ready {
		_ = cmd.Process.Release() // it runs on, in its own session
		return 0
	}
	// The pipe closed without the ready line: the child is ending.
	if err := cmd.Wait(); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			fmt.Fprintf(stderr, "shoal: -d: %v\n", err)
		}
	}
	fmt.Fprintln(stderr, "shoal: -d: the broker did not start")
	return 1
}

// withoutDaemon returns args without -d and its spellings.
func withoutDaemon(args []string) []string {
	var out []string
	for i, a := range args {
		if a == "--" {
			return append(out, args[i:]...)
		}
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if strings.HasPrefix(a, "-") && (name == "d" || name == "daemon") {
			continue
		}
		out = append(out, a)
	}
	return out
}

// startupPipe is a child of -d's stderr: its writes go to the parent
// until ready, and are dropped after (its stderr is /dev/null; logs go
// to log_dest). Safe for concurrent use.
type startupPipe struct {
	mu sync.Mutex
	f  *os.File // nil once ready or closed
}

// daemonChild returns the start-up pipe when this process is a child of
// -d, and nil otherwise.
func daemonChild() *startupPipe {
	fd, err := strconv.Atoi(os.Getenv(startupFDEnv))
	if err != nil || fd < 3 {
		return nil
	}
	os.Unsetenv(startupFDEnv) // not for the programs it may start
	return &startupPipe{f: os.NewFile(uintptr(fd), "startup")}
}

func (p *startupPipe) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.f == nil {
		return len(b), nil
	}
	// A parent gone (killed) is no reason to fail: the write is dropped.
	_, _ = p.f.Write(b)
	return len(b), nil
}

// ready tells the parent the broker listens, with a word on where its log
// goes now that it has no stderr, and lets the parent go.
func (p *startupPipe) ready(dests []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.f == nil {
		return
	}
	where := []string{}
	for _, d := range dests {
		if d != "stderr" && d != "stdout" && d != "none" {
			where = append(where, d)
		}
	}
	if len(where) == 0 {
		fmt.Fprintf(p.f, "shoal: running in the background as process %d; its log goes nowhere (log_dest is %s): "+
			"set log_dest to syslog or \"file PATH\", or run it in the foreground under systemd\n", os.Getpid(), strings.Join(dests, ", "))
	} else {
		fmt.Fprintf(p.f, "shoal: running in the background as process %d, logging to %s\n", os.Getpid(), strings.Join(where, ", "))
	}
	fmt.Fprintln(p.f, readyLine)
	p.f.Close()
	p.f = nil
}

// close closes the pipe if ready has not: the parent then knows the start
// failed.
func (p *startupPipe) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.f != nil {
		p.f.Close()
		p.f = nil
	}
}
