package harness

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"time"

	"github.com/shoalmq/shoal/bench/harness/brokers"
	"github.com/shoalmq/shoal/bench/harness/machine"
	"github.com/shoalmq/shoal/bench/harness/proc"
)

// Options configure a whole benchmark.
type Options struct {
	Root      string // the Shoal repository
	Results   string // where reports go: Root/bench/results by default
	Date      string // YYYY-MM-DD, names the reports
	Scale     Scale
	Scenarios []string // default: all
	Brokers   []string // default: all
	// Variants, when set, are patterns (path.Match, e.g. "*-rate") a
	// variant's name must match one of to run.
	Variants []string
	// Shoalbench is a prebuilt load generator; "" builds
	// bench/cmd/shoalbench.
	Shoalbench string
	// Before is a git revision to build Shoal at too and run as
	// ShoalBefore, beside the working tree's Shoal; "" for none.
	Before string
	// Perf counts system calls with perf stat over each window (see
	// Runner.Perf).
	Perf bool
	// Note is a line for every report about how the run was made (a
	// machine shared with other work, say).
	Note     string
	Command  string // the command line, for the reports
	KeepWork bool   // keep the scratch directory (configs, logs)
	Stdout   io.Writer
	Log      func(format string, args ...any)
}

// Bench builds the programs, runs every variant against every broker for
// the scale's rounds, and writes the reports, charts and raw records. It
// kills every process it started before returning, also when ctx ends.
func Bench(ctx context.Context, o Options) (err error) {
	if len(o.Scenarios) == 0 {
		o.Scenarios = Scenarios()
	}
	if len(o.Brokers) == 0 {
		o.Brokers = brokers.All()
	}
	o.Brokers = withCluster(withBefore(o.Brokers, o.Before), o.Scenarios)
	if slices.Contains(o.Brokers, brokers.ShoalBefore) && o.Before == "" {
		return fmt.Errorf("harness: broker %s needs a revision (-before)", brokers.ShoalBefore)
	}
	if o.Results == "" {
		o.Results = filepath.Join(o.Root, "bench", "results")
	}
	variants, err := Variants(o.Scale, o.Scenarios)
	if err != nil {
		return err
	}
	if variants, err = FilterVariants(variants, o.Variants); err != nil {
		return err
	}
	// Only the scenarios left with a variant get a report.
	o.Scenarios = slices.DeleteFunc(slices.Clone(o.Scenarios), func(sc string) bool {
		return !slices.ContainsFunc(variants, func(v Variant) bool { return v.Scenario == sc })
	})
	work, err := os.MkdirTemp("", "shoal-bench-")
	if err != nil {
		return err
	}
	defer func() {
		if o.KeepWork || err != nil {
			o.Log("scratch directory kept: %s", work)
			return
		}
		_ = os.RemoveAll(work)
	}()

	bins, err := brokers.Builder{Root: o.Root, Out: filepath.Join(work, "bin"), Shoalbench: o.Shoalbench, Before: o.Before, Log: o.Log}.Build(ctx)
	if err != nil {
		return err
	}
	procs := &proc.Procs{LogDir: filepath.Join(work, "logs"), NoFile: proc.NoFileLimit()}
	if err := os.MkdirAll(procs.LogDir, 0o755); err != nil {
		return err
	}
	if _, err := exec.LookPath("taskset"); err == nil && runtime.NumCPU() >= 2 {
		procs.Pin = true
	} else {
		o.Log("not pinning: taskset missing or fewer than 2 CPUs")
	}
	if _, err := exec.LookPath("prlimit"); err != nil {
		procs.NoFile = 0
	}
	defer procs.KillAll()

	// A quick run is named apart so it never overwrites a full one.
	tag := o.Date
	if o.Scale.Name != "full" {
		tag += "-" + o.Scale.Name
	}
	rawRel := filepath.Join("bench", "results", "raw", tag)
	raw := filepath.Join(o.Results, "raw", tag)
	if err := os.MkdirAll(raw, 0o755); err != nil {
		return err
	}
	rawFiles := make(map[string]*os.File)
	defer func() {
		for _, f := range rawFiles {
			f.Close()
		}
	}()
	for _, sc := range o.Scenarios {
		f, err := os.Create(filepath.Join(raw, sc+".jsonl"))
		if err != nil {
			return err
		}
		rawFiles[sc] = f
	}

	if o.Perf && !proc.PerfWorks(ctx) {
		return errors.New("harness: -perf: perf stat cannot count syscall tracepoints here (perf missing, or not root and perf_event_paranoid too high)")
	}
	r := &Runner{Bins: bins, Procs: procs, Work: work, Perf: o.Perf, Log: o.Log}
	var recs []Record
	start := time.Now()
	for round := 1; round <= o.Scale.Rounds; round++ {
		for _, v := range variants {
			// Rotate the order each round so no broker always runs first
			// (cold caches) or last.
			order := slices.Clone(o.Brokers)
			k := (round - 1) % len(order)
			order = append(order[k:], order[:k]...)
			for _, b := range order {
				if err := ctx.Err(); err != nil {
					return err
				}
				rec := r.Run(ctx, v, b, round)
				recs = append(recs, rec)
				if line, err := json.Marshal(rec); err == nil {
					rawFiles[v.Scenario].Write(append(line, '\n'))
				}
				o.Log("round %d/%d %-6s %-11s %-9s %s  [%v]", round, o.Scale.Rounds, v.Scenario, v.Name, b, brief(rec, v), time.Since(start).Round(time.Second))
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}

	host := machine.Probe(ctx, o.Root, bins.Mosquitto, o.Before)
	var sums []*Summary
	for _, sc := range o.Scenarios {
		ran, notes := ranIn(sc, o.Brokers, recs)
		s := Summarize(sc, variants, ran, recs)
		s.Notes = append(notes, s.Notes...)
		sums = append(sums, s)
		meta := Meta{Date: o.Date, Machine: host, Command: o.Command, Scale: o.Scale, Pinned: procs.Pin, RawDir: filepath.Join(rawRel, sc+".jsonl"), Note: o.Note, Perf: o.Perf}
		base := o.Date + "-" + sc
		if o.Scale.Name != "full" {
			base += "-" + o.Scale.Name
		}
		if bins.Chart != "" {
			if err := drawChart(ctx, bins.Chart, filepath.Join(work, base+".json"), filepath.Join(o.Results, base+".png"), Chart(s, meta)); err != nil {
				o.Log("chart %s: %v", sc, err)
			} else {
				meta.Chart = base + ".png"
			}
		}
		if err := os.WriteFile(filepath.Join(o.Results, base+".md"), []byte(RenderMarkdown(s, meta)), 0o644); err != nil {
			return err
		}
	}
	ratesMeta := Meta{Date: o.Date, Machine: host, Command: o.Command, Scale: o.Scale, Pinned: procs.Pin, RawDir: rawRel, Note: o.Note, Perf: o.Perf}
	// The rates report sets Shoal against Mosquitto at equal work; the
	// cluster scenario, Shoal only, has its own report.
	rateSums := slices.DeleteFunc(slices.Clone(sums), func(s *Summary) bool { return s.Scenario == "cluster" })
	if rates := RenderRates(rateSums, ratesMeta); rates != "" {
		base := o.Date + "-rates"
		if o.Scale.Name != "full" {
			base += "-" + o.Scale.Name
		}
		if err := os.WriteFile(filepath.Join(o.Results, base+".md"), []byte(rates), 0o644); err != nil {
			return err
		}
	}
	o.Log("reports in %s (%s-*.md, *.png), raw records in %s; %v in all", o.Results, o.Date, raw, time.Since(start).Round(time.Second))
	w := bufio.NewWriter(o.Stdout)
	PrintComparison(w, sums)
	return w.Flush()
}

// withBefore returns the broker names with ShoalBefore after Shoal (or
// first) when before names a revision and names lack it: -before asks for
// it, with or without -brokers.
func withBefore(names []string, before string) []string {
	if before == "" {
		return names
	}
	return afterShoal(names, brokers.ShoalBefore)
}

// withCluster returns the broker names with ShoalCluster after Shoal (or
// first) when the cluster scenario is among scenarios and names lack it:
// the scenario is Shoal on one node beside Shoal on three.
func withCluster(names, scenarios []string) []string {
	if !slices.Contains(scenarios, "cluster") {
		return names
	}
	return afterShoal(names, brokers.ShoalCluster)
}

// afterShoal returns names with name after Shoal (or first), unless they
// hold it already.
func afterShoal(names []string, name string) []string {
	if slices.Contains(names, name) {
		return names
	}
	at := 0
	if i := slices.Index(names, brokers.Shoal); i >= 0 {
		at = i + 1
	}
	return slices.Insert(slices.Clone(names), at, name)
}

// ranIn returns the brokers of names that ran at least one variant of
// scenario (failed runs count), and a note for each of the others: a
// broker that skipped every variant gets no column in the report, only its
// reason.
func ranIn(scenario string, names []string, recs []Record) (ran []string, notes []string) {
	for _, b := range names {
		var why string
		run := false
		for _, r := range recs {
			if r.Scenario != scenario || r.Broker != b {
				continue
			}
			if r.Skipped == "" {
				run = true
				break
			}
			why = r.Skipped
		}
		switch {
		case run:
			ran = append(ran, b)
		case why != "":
			notes = append(notes, fmt.Sprintf("%s skipped every variant: %s.", b, why))
		}
	}
	return ran, notes
}

// FilterVariants keeps the variants whose name matches one of patterns
// (path.Match); no patterns keeps all. A pattern that matches nothing is
// an error: a typo would otherwise run nothing.
func FilterVariants(vs []Variant, patterns []string) ([]Variant, error) {
	if len(patterns) == 0 {
		return vs, nil
	}
	var out []Variant
	used := make([]bool, len(patterns))
	for _, v := range vs {
		keep := false
		for i, p := range patterns {
			ok, err := path.Match(p, v.Name)
			if err != nil {
				return nil, fmt.Errorf("harness: variant pattern %q: %w", p, err)
			}
			if ok {
				keep, used[i] = true, true
			}
		}
		if keep {
			out = append(out, v)
		}
	}
	for i, p := range patterns {
		if !used[i] {
			return nil, fmt.Errorf("harness: no variant of the chosen scenarios matches %q", p)
		}
	}
	return out, nil
}

// brief is a run's progress line: its headline figures or its failure.
func brief(r Record, v Variant) string {
	switch {
	case r.Skipped != "":
		return "skipped: " + r.Skipped
	case r.Error != "":
		return "FAILED: " + r.Error
	}
	s := Summary{Variants: []Variant{v}, Metrics: Metrics(v)}
	out := ""
	for _, key := range s.Headline() {
		m, _ := s.Metric(key)
		out += fmt.Sprintf("%s %s  ", m.Title, FormatValue(m.Value(r, v), m.Decimals))
	}
	return out
}

func drawChart(ctx context.Context, bin, specPath, png string, c ChartSpec) error {
	b, err := c.JSON()
	if err != nil {
		return err
	}
	if err := os.WriteFile(specPath, b, 0o644); err != nil {
		return err
	}
	out, err := exec.CommandContext(ctx, bin, "-in", specPath, "-out", png).CombinedOutput()
	if err != nil {
		return errors.Join(err, errors.New(string(out)))
	}
	return nil
}
