// Command harness runs Shoal side by side with Mosquitto, mochi-mqtt and
// the floor (a do-nothing gnet server) under the same loads, and writes
// the reports in bench/results. See bench/README.md.
//
//	go run ./bench/cmd/harness            # make bench: every scenario, 3 rounds
//	go run ./bench/cmd/harness -quick     # make bench-quick
//	go run ./bench/cmd/harness -scenarios p2p,idle -brokers shoal,mosquitto
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/shoalmq/shoal/bench/harness"
	"github.com/shoalmq/shoal/bench/harness/brokers"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	fs := flag.NewFlagSet("harness", flag.ContinueOnError)
	quick := fs.Bool("quick", false, "the quick scale: 1 round, small counts, short runs (make bench-quick)")
	rounds := fs.Int("rounds", 0, "rounds (default: 3, or 1 with -quick)")
	duration := fs.Duration("duration", 0, "publishing time per run (default: 3s, or 1s with -quick)")
	scenarios := fs.String("scenarios", "", "comma-separated scenarios (default: "+strings.Join(harness.Scenarios(), ",")+")")
	brokerNames := fs.String("brokers", "", "comma-separated brokers, the first is the one ratios are of (default: "+strings.Join(brokers.All(), ",")+")")
	results := fs.String("results", "", "directory for reports (default: bench/results)")
	date := fs.String("date", time.Now().Format("2006-01-02"), "date that names the reports")
	shoalbench := fs.String("shoalbench", "", "prebuilt load generator (default: build bench/cmd/shoalbench)")
	timeout := fs.Duration("timeout", 0, "stop everything after this long (default: 45m, or 5m with -quick)")
	keep := fs.Bool("keep", false, "keep the scratch directory (configs, process logs)")
	variants := fs.String("variants", "", "comma-separated patterns of variant names to run (path.Match: '*-rate' runs the fixed rates; default: all)")
	before := fs.String("before", "", "also build Shoal at this git revision and run it as "+brokers.ShoalBefore+", beside the working tree's")
	perf := fs.Bool("perf", false, "count system calls per delivery with perf stat (costs the brokers CPU per call)")
	note := fs.String("note", "", "a line for every report on how the run was made (a shared machine, say)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	scale := harness.Full()
	// 16 minutes of single-node scenarios and 4 of the cluster's
	// (three nodes started per run), with room for a loaded machine.
	limit := 45 * time.Minute
	if *quick {
		scale, limit = harness.Quick(), 5*time.Minute
	}
	if *rounds > 0 {
		scale.Rounds = *rounds
	}
	if *duration > 0 {
		scale.Duration = *duration
	}
	if *timeout > 0 {
		limit = *timeout
	}
	root, err := repoRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "harness:", err)
		return 1
	}
	if *shoalbench != "" {
		if *shoalbench, err = filepath.Abs(*shoalbench); err != nil {
			fmt.Fprintln(os.Stderr, "harness:", err)
			return 1
		}
	}

	// SIGINT or SIGTERM cancels the context; Bench then kills every
	// process it started before returning.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()

	o := harness.Options{
		Root: root, Results: *results, Date: *date, Scale: scale,
		Scenarios: split(*scenarios), Brokers: split(*brokerNames), Variants: split(*variants),
		Shoalbench: *shoalbench, Before: *before, Perf: *perf, Note: *note, KeepWork: *keep, Stdout: os.Stdout,
		Command: strings.TrimSpace("go run ./bench/cmd/harness " + strings.Join(args, " ")),
		Log: func(format string, a ...any) {
			fmt.Fprintf(os.Stderr, "harness: "+format+"\n", a...)
		},
	}
	if err := harness.Bench(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "harness:", err)
		if ctx.Err() != nil {
			return 130
		}
		return 1
	}
	return 0
}

func split(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// repoRoot finds the Shoal repository: the nearest directory up from the
// working directory whose go.mod declares github.com/shoalmq/shoal.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.HasPrefix(strings.TrimSpace(string(b)), "module github.com/shoalmq/shoal\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run me inside the Shoal repository")
		}
		dir = parent
	}
}
