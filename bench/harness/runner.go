package harness

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/shoalmq/shoal/bench/harness/brokers"
	"github.com/shoalmq/shoal/bench/harness/proc"
)

// The CPUs of a pinned run: the broker has one to itself, the load
// generators share the other.
const (
	BrokerCPU = 0
	GenCPU    = 1
)

// Timing of one run.
const (
	listenTimeout = 10 * time.Second // broker start to accepting connections
	readyTimeout  = 90 * time.Second // generator start to all clients connected and subscribed
	// drainGrace is how long subscribers keep receiving after the last
	// publisher exits: long enough for queued messages to arrive, short
	// enough not to dilute the received rate much.
	drainGrace  = 500 * time.Millisecond
	stopTimeout = 15 * time.Second // SIGINT to a generator's JSON line and exit
)

// runTimeout bounds one run of v from broker start to the last exit.
func runTimeout(v Variant) time.Duration {
	d := 3 * time.Minute
	for _, g := range v.Pubs {
		d += g.Duration
	}
	return d
}

// Record is what one run of one variant against one broker produced, as
// kept in the raw JSON files.
type Record struct {
	Scenario string `json:"scenario"`
	Variant  string `json:"variant"`
	Broker   string `json:"broker"`
	Round    int    `json:"round"`
	Skipped  string `json:"skipped,omitempty"`
	Error    string `json:"error,omitempty"`
	// Broker figures over the measured window: for idle from the first
	// connect to the RSS reading, otherwise from the publishers' start to
	// the subscribers' exit.
	BrokerCPU float64 `json:"broker_cpu_s"`
	RSSBefore int64   `json:"rss_before"` // bytes, before any client connected
	RSSAfter  int64   `json:"rss_after"`  // bytes, at the end of the window
	PeakRSS   int64   `json:"peak_rss"`   // bytes, VmHWM at the end of the window
	WindowS   float64 `json:"window_s"`
	// RSSQuiet is the broker's VmRSS once the idle connections have all
	// gone and it sat Variant.Quiet without them (idle runs only): what
	// a connection storm leaves behind.
	RSSQuiet int64 `json:"rss_quiet,omitempty"`
	// Counters are the broker's kernel counters over the window of a
	// message run (proc.Counters.Sub); nil for idle runs and older records.
	Counters *proc.Counters `json:"counters,omitempty"`
	// Perf is perf stat's count of each of proc.PerfEvents over the window,
	// when the harness ran with -perf.
	Perf    map[string]float64 `json:"perf,omitempty"`
	Subs    []GenResult        `json:"subs"`
	Pubs    []GenResult        `json:"pubs"`
	Stalled []GenResult        `json:"stalled,omitempty"`
	// Commands are the processes as run, wrappers included.
	Commands []string `json:"commands"`
}

// Runner runs variants against brokers, one at a time.
type Runner struct {
	Bins  brokers.Bins
	Procs *proc.Procs
	Work  string // scratch directory: configs, signal files, logs
	// Perf counts system calls by name over each window with perf stat
	// (proc.PerfEvents). Tracing costs the broker CPU per system call (about
	// 1-3% of Shoal's at the fixed rates here), so it is off unless asked.
	Perf bool
	Log  func(format string, args ...any)
}

// Run runs v against broker once. Failures are recorded in the Record, not
// returned: one bad run must not stop the others. Every process it starts
// is dead when it returns.
func (r *Runner) Run(ctx context.Context, v Variant, broker string, round int) Record {
	rec := Record{Scenario: v.Scenario, Variant: v.Name, Broker: broker, Round: round}
	if why := v.Skip(broker); why != "" {
		rec.Skipped = why
		return rec
	}
	if err := r.run(ctx, v, broker, &rec); err != nil {
		rec.Error = err.Error()
	}
	return rec
}

func (r *Runner) run(ctx context.Context, v Variant, broker string, rec *Record) error {
	ctx, cancel := context.WithTimeout(ctx, runTimeout(v))
	defer cancel()
	dir := filepath.Join(r.Work, fmt.Sprintf("%s-%s-%s-%d", v.Scenario, v.Name, broker, rec.Round))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	servers, err := r.startBrokers(ctx, v, broker, dir, rec)
	defer servers.kill()
	if err != nil {
		return err
	}
	bps := servers.procs()
	mem, err := servers.mem()
	if err != nil {
		return err
	}
	rec.RSSBefore = mem.RSS

	subs, pubs := v.For(broker)
	var gens []*proc.Proc
	defer func() {
		for _, g := range gens {
			g.Kill()
		}
	}()
	start := func(name string, g Gen, idx int, ready, startAt string) (*proc.Proc, error) {
		// shoalbench names clients PREFIX-MODE-SEQ: g0-sub-17.
		prefix := fmt.Sprintf("g%d", idx)
		p, err := r.Procs.Start(proc.Spec{Name: name, CPU: GenCPU,
			Argv: append([]string{r.Bins.Shoalbench}, g.Args("127.0.0.1", servers.port(g.Node), prefix, ready, startAt)...)})
		if err != nil {
			return nil, err
		}
		gens = append(gens, p)
		rec.Commands = append(rec.Commands, r.record(p.Argv))
		return p, nil
	}

	cpu0, err := servers.cpu()
	if err != nil {
		return err
	}
	t0 := time.Now()
	// On a cluster, the interest of the subscribers' nodes must have
	// reached the publishers' node before the first measured message
	// (probe.go).
	leaveProbe := func() {}
	if v.Cluster {
		if leaveProbe, err = probe(ctx, servers, subs, pubs[0].Node); err != nil {
			return err
		}
		defer leaveProbe()
	}
	var subProcs []*proc.Proc
	for i, g := range subs {
		ready := filepath.Join(dir, fmt.Sprintf("sub%d.ready", i))
		p, err := start("sub", g, i, ready, "")
		if err != nil {
			return err
		}
		subProcs = append(subProcs, p)
		// Idle generators connect side by side; message subscribers are
		// all in place before the first publisher starts.
		if !v.Idle {
			if err := waitFile(ctx, ready, readyTimeout, append(bps, p)...); err != nil {
				return err
			}
		}
	}
	leaveProbe()
	// Stalled subscribers, once every reading one is in place.
	var stallProcs []*proc.Proc
	for i, g := range v.Stalled {
		ready := filepath.Join(dir, fmt.Sprintf("stall%d.ready", i))
		p, err := start("stall", g, 100+i, ready, "")
		if err != nil {
			return err
		}
		stallProcs = append(stallProcs, p)
		if err := waitFile(ctx, ready, readyTimeout, append(bps, p)...); err != nil {
			return err
		}
	}
	// Set when the window is of messages: they end it.
	var stopPerf, endCounters func() error
	if v.Idle {
		for i, p := range subProcs {
			if err := waitFile(ctx, filepath.Join(dir, fmt.Sprintf("sub%d.ready", i)), readyTimeout, append(bps, subProcs...)...); err != nil {
				return fmt.Errorf("%s: %w", p.Name, err)
			}
		}
		if err := sleep(ctx, v.Settle); err != nil {
			return err
		}
	} else {
		startAt := filepath.Join(dir, "start")
		var pubProcs []*proc.Proc
		for i, g := range pubs {
			ready := filepath.Join(dir, fmt.Sprintf("pub%d.ready", i))
			p, err := start("pub", g, i, ready, startAt)
			if err != nil {
				return err
			}
			pubProcs = append(pubProcs, p)
			if err := waitFile(ctx, ready, readyTimeout, append(bps, subProcs...)...); err != nil {
				return err
			}
		}
		// The window starts when the publishers are told to go.
		cnt0, err := servers.counters(ctx)
		if err != nil {
			return err
		}
		if r.Perf {
			stop, err := servers.startPerf(dir)
			if err != nil {
				return err
			}
			defer func() {
				if stop != nil {
					_, _ = stop()
				}
			}()
			stopPerf = func() error {
				m, err := stop()
				stop = nil
				rec.Perf = m
				return err
			}
		}
		endCounters = func() error {
			cnt1, err := servers.counters(ctx)
			if err != nil {
				return err
			}
			d := cnt1.Sub(cnt0)
			rec.Counters = &d
			return nil
		}
		if cpu0, err = servers.cpu(); err != nil {
			return err
		}
		t0 = time.Now()
		if err := os.WriteFile(startAt, nil, 0o644); err != nil {
			return err
		}
		for _, p := range pubProcs {
			if err := p.Wait(pubs[0].Duration+60*time.Second, ExitLost); err != nil {
				return err
			}
			res, err := ParseResult(p.Stdout())
			if err != nil {
				return fmt.Errorf("pub: %w", err)
			}
			rec.Pubs = append(rec.Pubs, res)
		}
		if err := sleep(ctx, drainGrace); err != nil {
			return err
		}
	}
	// Figures for the window, read before the subscribers disconnect.
	cpu1, err := servers.cpu()
	if err != nil {
		return err
	}
	if mem, err = servers.mem(); err != nil {
		return err
	}
	rec.WindowS = time.Since(t0).Seconds()
	rec.BrokerCPU = cpu1 - cpu0
	rec.RSSAfter, rec.PeakRSS = mem.RSS, mem.Peak
	if stopPerf != nil {
		if err := stopPerf(); err != nil {
			return err
		}
	}
	if endCounters != nil {
		if err := endCounters(); err != nil {
			return err
		}
	}
	if err := servers.exited(); err != nil {
		return err
	}
	// Subscribers run until told to stop: SIGINT makes shoalbench print its
	// figures and exit.
	for _, p := range append(subProcs, stallProcs...) {
		p.Signal(syscall.SIGINT)
	}
	for _, p := range subProcs {
		if err := p.Wait(stopTimeout, ExitLost); err != nil {
			return err
		}
		res, err := ParseResult(p.Stdout())
		if err != nil {
			return fmt.Errorf("sub: %w", err)
		}
		rec.Subs = append(rec.Subs, res)
	}
	if v.Idle && v.Quiet > 0 {
		// Every connection has gone; the broker sits idle.
		if err := sleep(ctx, v.Quiet); err != nil {
			return err
		}
		if mem, err = servers.mem(); err != nil {
			return err
		}
		rec.RSSQuiet = mem.RSS
	}
	for _, p := range stallProcs {
		if err := p.Wait(stopTimeout); err != nil {
			return err
		}
		res, err := ParseResult(p.Stdout())
		if err != nil {
			return fmt.Errorf("stall: %w", err)
		}
		rec.Stalled = append(rec.Stalled, res)
	}
	return nil
}

// waitListening waits until something accepts connections on port, or p
// exits, or timeout passes.
func waitListening(ctx context.Context, port int, p *proc.Proc, timeout time.Duration) error {
	addr := "127.0.0.1:" + strconv.Itoa(port)
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if p.Exited() {
			return fmt.Errorf("%s exited before listening: %w", p.Name, p.Result())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not listening on %s after %v", p.Name, addr, timeout)
		}
		if err := sleep(ctx, 20*time.Millisecond); err != nil {
			return err
		}
	}
}

// waitFile waits until path exists. It fails when any of watch exits
// first (a generator that gave up, a broker that crashed), when timeout
// passes, or when ctx ends.
func waitFile(ctx context.Context, path string, timeout time.Duration, watch ...*proc.Proc) error {
	deadline := time.Now().Add(timeout)
	for {
		if _, err := os.Stat(path); err == nil {
			return nil
		}
		for _, p := range watch {
			if p.Exited() {
				return fmt.Errorf("%s exited before %s appeared: %w", p.Name, filepath.Base(path), errors.Join(p.Result(), errors.New(firstLine(p.Stdout()))))
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not appear within %v", filepath.Base(path), timeout)
		}
		if err := sleep(ctx, 10*time.Millisecond); err != nil {
			return err
		}
	}
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	return "stdout: " + s
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// shellJoin joins argv into a line a shell runs as argv: arguments other
// than plain words are single-quoted ($share/g/t, %i stays as it is).
func shellJoin(argv []string) string {
	out := make([]string, len(argv))
	for i, a := range argv {
		plain := a != ""
		for _, c := range a {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("-_./:,=%+@", c)) {
				plain = false
				break
			}
		}
		if plain {
			out[i] = a
		} else {
			out[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	return strings.Join(out, " ")
}

// record renders argv for a report. The scratch directory is written as
// $SCRATCH: it is a temporary path of this machine, meaningless elsewhere
// and not to be committed.
func (r *Runner) record(argv []string) string {
	if r.Work == "" {
		return shellJoin(argv)
	}
	return strings.ReplaceAll(shellJoin(argv), r.Work, "$SCRATCH")
}
