// Command shoalbench is an MQTT load generator in the manner of
// emqtt-bench: `shoalbench conn|sub|pub [flags]` opens many connections
// from one process (client.Engine: a few event loops, no goroutine per
// connection), subscribes or publishes, prints a progress line a second
// on stderr and a summary at the end, as one JSON line on stdout with
// --json for the bench harness.
//
// Publishers stamp each payload with its send time, their sequence number
// and their index, so subscribers measure end-to-end latency into an HDR
// histogram and count lost and duplicate messages per publisher. A run
// that loses messages at QoS 1 or 2 exits with status 3.
//
//	shoalbench sub -c 10 -t bench/t -q 1 --expect 1000 --pubs 2 --ready ready.flag --json &
//	shoalbench pub -c 2 -t bench/t -q 1 -I 0 -L 1000 --start-at ready.flag --json
//	shoalbench conn -c 19000 --src 127.0.0.2,127.0.0.3 -R 2000
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"sync"
	"syscall"
	"time"

	"github.com/shoalmq/shoal/client"
)

// Exit statuses.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
	exitLost  = 3
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// outcome is what a mode reports besides the meter's figures.
type outcome struct {
	lost, dup uint64
	qos       int // QoS at which the messages travelled: loss fails the run at 1 and 2
	err       error
}

// run is the whole command: parse, run the mode until it is done, ctx
// ends (signal) or --duration passes, then print the summary.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, err := parseArgs(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		return exitUsage
	}
	if cfg.cpuProf != "" {
		f, err := os.Create(cfg.cpuProf)
		if err != nil {
			fmt.Fprintln(stderr, "shoalbench:", err)
			return exitError
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(stderr, "shoalbench:", err)
			return exitError
		}
		defer pprof.StopCPUProfile()
	}
	e, err := client.NewEngine(cfg.loops)
	if err != nil {
		fmt.Fprintln(stderr, "shoalbench:", err)
		return exitError
	}
	defer e.Close()

	m := newMeter(cfg.mode, cfg.count, pubDrivers(&cfg))
	if cfg.duration > 0 {
		// From the meter's start, so a run reports the whole duration it
		// was given (armed earlier, the deadline came slightly before).
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, m.start.Add(cfg.duration))
		defer cancel()
	}
	stopReporter := startReporter(m, stderr)
	var out outcome
	switch cfg.mode {
	case "conn":
		out = runConn(ctx, &cfg, e, m, stderr)
	case "sub":
		out = runSub(ctx, &cfg, e, m, stderr)
	case "pub":
		out = runPub(ctx, &cfg, e, m, stderr)
	case "stall":
		out = runStall(ctx, &cfg, m, stderr)
	}
	stopReporter()
	s := m.finish(time.Now(), out.lost, out.dup)
	if err := s.print(stderr, stdout, cfg.json); err != nil {
		fmt.Fprintln(stderr, "shoalbench:", err)
		return exitError
	}
	switch {
	case out.err != nil:
		fmt.Fprintln(stderr, "shoalbench:", out.err)
		return exitError
	case s.Connected == 0:
		fmt.Fprintln(stderr, "shoalbench: no client connected")
		return exitError
	case out.lost > 0 && out.qos >= 1:
		fmt.Fprintf(stderr, "shoalbench: FAILED: %d messages lost at QoS %d\n", out.lost, out.qos)
		return exitLost
	}
	return exitOK
}

// startReporter prints m's progress line every second until the returned
// function is called; that function waits for the reporter to stop, so
// the meter is the caller's again.
func startReporter(m *meter, w io.Writer) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case now := <-t.C:
				m.progress(w, now)
			}
		}
	}()
	return func() {
		close(done)
		wg.Wait()
	}
}

// writeReady creates the --ready file, if asked for, with the number of
// connected clients.
func writeReady(cfg *config, m *meter) error {
	if cfg.ready == "" {
		return nil
	}
	return os.WriteFile(cfg.ready, fmt.Appendf(nil, "%d\n", m.connected.Load()), 0o644)
}

// runConn connects the clients and holds them until ctx ends.
func runConn(ctx context.Context, cfg *config, e *client.Engine, m *meter, stderr io.Writer) outcome {
	base := cfg.baseOptions()
	base.OnClose = m.onDrop
	connectAll(ctx, cfg, e, m, stderr, func(i int) client.Options {
		o := base
		o.ClientID = cfg.clientID(cfg.start + i)
		return o
	}, nil)
	if err := writeReady(cfg, m); err != nil {
		return outcome{err: err}
	}
	<-ctx.Done()
	return outcome{}
}
