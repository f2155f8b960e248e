package harness

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/shoalmq/shoal/bench/harness/brokers"
	"github.com/shoalmq/shoal/bench/harness/machine"
)

// Meta is what a report says about how its numbers were made.
type Meta struct {
	Date    string // YYYY-MM-DD
	Machine machine.Machine
	Command string // the harness command line
	Scale   Scale
	Pinned  bool   // brokers on CPU 0, generators on CPU 1
	RawDir  string // where the per-round JSON is, relative to the repository
	Chart   string // the chart's file name, "" when none was drawn
	// Note is a line about how the run was made, "" for none.
	Note string
	// Perf says system calls were counted with perf stat (-perf), which
	// costs the brokers some CPU per call.
	Perf bool
}

// RenderMarkdown returns the report of one scenario.
func RenderMarkdown(s *Summary, m Meta) string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("# Benchmark: %s, %s\n\n", s.Scenario, m.Date)
	if m.Chart != "" {
		p("![%s](%s)\n\n", s.Scenario, m.Chart)
	}
	p("| | |\n|---|---|\n")
	p("| Date | %s |\n", m.Date)
	p("| Machine | %s |\n", m.Machine.Summary())
	p("| Kernel | %s |\n", m.Machine.Kernel)
	p("| Go | %s |\n", m.Machine.Go)
	p("| Shoal | %s |\n", m.Machine.Shoal)
	if m.Machine.ShoalBefore != "" {
		p("| shoal-before | Shoal at %s (-before), run beside it |\n", m.Machine.ShoalBefore)
	}
	p("| Mosquitto | %s |\n", m.Machine.Mosquitto)
	p("| mochi-mqtt | %s |\n", m.Machine.Mochi)
	p("| floor | gnet %s, bench/peers/floor |\n", m.Machine.Gnet)
	if slices.Contains(s.Brokers, brokers.ShoalCluster) {
		p("| %s | %d Shoal processes as one cluster (embedded NATS, routes to each other, replicas %d), pinned like one broker; CPU, RSS, calls and switches summed over the nodes, segments of their MQTT sockets only |\n", brokers.ShoalCluster, brokers.ClusterNodes, brokers.ClusterNodes)
	}
	if m.Pinned {
		p("| Pinning | broker on CPU %d, load generators on CPU %d (taskset) |\n", BrokerCPU, GenCPU)
	} else {
		p("| Pinning | none (taskset missing or fewer than 2 CPUs): broker and generators share every CPU |\n")
	}
	p("| Rounds | %d (%s scale); each cell is the median over rounds; brokers alternate within each round |\n", m.Scale.Rounds, m.Scale.Name)
	p("| Command | `%s` |\n", m.Command)
	if m.Perf {
		p("| System calls | counted with `perf stat` over each window (-perf): the tracing adds CPU per system call to every broker |\n")
	}
	if m.Note != "" {
		p("| Note | %s |\n", m.Note)
	}
	p("| Raw data | `%s` |\n\n", m.RawDir)

	p("## Variants\n\n")
	for _, v := range s.Variants {
		p("- `%s`: %s.\n", v.Name, v.Desc)
	}
	p("\n")

	for _, br := range s.Brokers {
		p("## %s\n\n", br)
		p("| variant | runs |")
		for _, mt := range s.Metrics {
			p(" %s |", mt.Title)
		}
		p("\n|---|---|%s\n", strings.Repeat("---:|", len(s.Metrics)))
		for _, v := range s.Variants {
			ok, total := s.Runs(v.Name, br)
			if total == 0 {
				why := "not run"
				if s.Skipped(v.Name, br) {
					why = "skipped"
				}
				p("| %s | %s |%s\n", v.Name, why, strings.Repeat(" |", len(s.Metrics)))
				continue
			}
			p("| %s | %d/%d |", v.Name, ok, total)
			for _, mt := range s.Metrics {
				p(" %s |", FormatValue(s.Median(v.Name, br, mt.Key), mt.Decimals))
			}
			p("\n")
		}
		p("\n")
	}

	if len(s.Brokers) > 1 {
		first := s.Brokers[0]
		p("## Ratios\n\n")
		p("%s's median over the other broker's. For a metric where higher is better, above 1 favours %s; where lower is better, below 1 does.\n\n", first, first)
		cmp := s.Compared()
		p("| variant | ratio |")
		for _, mt := range cmp {
			p(" %s |", mt.Title)
		}
		p("\n|---|---|%s\n", strings.Repeat("---:|", len(cmp)))
		for _, v := range s.Variants {
			for _, other := range s.Brokers[1:] {
				p("| %s | %s/%s |", v.Name, first, other)
				for _, mt := range cmp {
					p(" %s |", FormatRatio(s.Ratio(v.Name, first, other, mt.Key)))
				}
				p("\n")
			}
		}
		p("\n")
	}

	renderBaselines(&b, s)

	if len(s.Notes) > 0 {
		p("## Notes\n\n")
		for _, n := range s.Notes {
			p("- %s\n", n)
		}
		p("\n")
	}

	p("## Commands\n\nOne run per variant, as the harness started it (ports and paths change per run):\n\n")
	for _, v := range s.Variants {
		cmds := s.Commands[v.Name]
		if len(cmds) == 0 {
			continue
		}
		p("`%s`:\n\n```\n%s\n```\n\n", v.Name, strings.Join(cmds, "\n"))
	}
	return b.String()
}

// PrintComparison writes the headline figures of every summary as one
// plain-text table.
func PrintComparison(w io.Writer, sums []*Summary) {
	if len(sums) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	names := sums[0].Brokers
	fmt.Fprint(tw, "scenario\tvariant\tmetric\t")
	for _, b := range names {
		fmt.Fprintf(tw, "%s\t", b)
	}
	for _, b := range names[1:] {
		fmt.Fprintf(tw, "%s/%s\t", names[0], b)
	}
	fmt.Fprintln(tw)
	for _, s := range sums {
		for _, v := range s.Variants {
			for _, key := range s.Headline() {
				mt, ok := s.Metric(key)
				if !ok {
					continue
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t", s.Scenario, v.Name, mt.Title)
				for _, b := range names {
					fmt.Fprintf(tw, "%s\t", FormatValue(s.Median(v.Name, b, key), mt.Decimals))
				}
				for _, b := range names[1:] {
					fmt.Fprintf(tw, "%s\t", FormatRatio(s.Ratio(v.Name, names[0], b, key)))
				}
				fmt.Fprintln(tw)
			}
		}
	}
	tw.Flush()
}

// ChartSpec is what the chart program (bench/harness/chart) draws: one
// panel per headline metric, a group of bars per variant, a bar per
// broker. A missing value is null.
type ChartSpec struct {
	Title  string       `json:"title"`
	Note   string       `json:"note"`
	Series []string     `json:"series"` // broker names, one bar each per group
	Panels []ChartPanel `json:"panels"`
	// Columns is how many panels a row holds; 0 puts all in one row.
	Columns int `json:"columns"`
}

// ChartPanel is one metric's bar groups.
type ChartPanel struct {
	Title  string       `json:"title"`
	Groups []string     `json:"groups"` // variant names
	Values [][]*float64 `json:"values"` // [group][series]
}

// Chart returns the chart of a summary's headline metrics. Saturation
// and fixed-rate variants get panels of their own, one row each: on one
// axis the fixed rates would be invisible next to saturation.
func Chart(s *Summary, m Meta) ChartSpec {
	c := ChartSpec{
		Title:  fmt.Sprintf("Shoal benchmark: %s (%s)", s.Scenario, m.Date),
		Note:   fmt.Sprintf("median of %d round(s), %s; %s", m.Scale.Rounds, m.Machine.Summary(), pinNote(m.Pinned)),
		Series: s.Brokers,
	}
	type row struct {
		label string
		vs    []Variant
	}
	var sat, rate, other []Variant
	for _, v := range s.Variants {
		switch {
		case strings.HasSuffix(v.Name, "-sat"):
			sat = append(sat, v)
		case strings.HasSuffix(v.Name, "-rate"):
			rate = append(rate, v)
		default:
			other = append(other, v)
		}
	}
	rows := []row{{"", other}, {"at saturation: ", sat}, {"at a fixed rate: ", rate}}
	for _, r := range rows {
		if len(r.vs) == 0 {
			continue
		}
		for _, key := range s.Headline() {
			mt, ok := s.Metric(key)
			if !ok {
				continue
			}
			p := ChartPanel{Title: r.label + mt.Title}
			if mt.Better > 0 {
				p.Title += " (higher is better)"
			} else if mt.Better < 0 {
				p.Title += " (lower is better)"
			}
			for _, v := range r.vs {
				p.Groups = append(p.Groups, v.Name)
				vals := make([]*float64, len(s.Brokers))
				for i, b := range s.Brokers {
					if x := s.Median(v.Name, b, key); !math.IsNaN(x) {
						vals[i] = &x
					}
				}
				p.Values = append(p.Values, vals)
			}
			c.Panels = append(c.Panels, p)
		}
		c.Columns = len(s.Headline())
	}
	return c
}

// JSON returns the spec as the chart program reads it.
func (c ChartSpec) JSON() ([]byte, error) { return json.MarshalIndent(c, "", "  ") }

func pinNote(pinned bool) string {
	if pinned {
		return "broker pinned to CPU 0, generators to CPU 1"
	}
	return "not pinned"
}

// FormatValue prints x with decimals digits after the point and thousands
// separators; NaN prints as a dash.
func FormatValue(x float64, decimals int) string {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return "—"
	}
	s := strconv.FormatFloat(math.Abs(x), 'f', decimals, 64)
	whole, frac, _ := strings.Cut(s, ".")
	var b strings.Builder
	if x < 0 && s != strconv.FormatFloat(0, 'f', decimals, 64) {
		b.WriteByte('-')
	}
	for i, c := range whole {
		if i > 0 && (len(whole)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if frac != "" {
		b.WriteByte('.')
		b.WriteString(frac)
	}
	return b.String()
}

// FormatRatio prints a ratio with two decimals and a times sign; a missing
// ratio prints as a dash.
func FormatRatio(x float64) string {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return "—"
	}
	return strconv.FormatFloat(x, 'f', 2, 64) + "×"
}

// baselineMetrics are the metrics a variant is compared with its baseline
// on: what the clients of the common load see.
var baselineMetrics = []string{"recv_rate", "lat_p50", "lat_p99", "lat_p999"}

// renderBaselines writes, for each variant that has a baseline, each
// broker's median over its own median of the baseline: how much what the
// variant adds costs the clients of the common load.
func renderBaselines(b *strings.Builder, s *Summary) {
	var vs []Variant
	for _, v := range s.Variants {
		if v.Baseline != "" {
			vs = append(vs, v)
		}
	}
	if len(vs) == 0 {
		return
	}
	var ms []Metric
	for _, k := range baselineMetrics {
		if m, ok := s.Metric(k); ok {
			ms = append(ms, m)
		}
	}
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	p("## Against the baseline\n\n")
	p("Each broker's median in the variant over its own median in the baseline variant: 1.00× means the addition cost the other clients nothing.\n\n")
	p("| variant | baseline | broker |")
	for _, m := range ms {
		p(" %s |", m.Title)
	}
	p("\n|---|---|---|%s\n", strings.Repeat("---:|", len(ms)))
	for _, v := range vs {
		for _, br := range s.Brokers {
			if ok, _ := s.Runs(v.Name, br); ok == 0 {
				continue
			}
			p("| %s | %s | %s |", v.Name, v.Baseline, br)
			for _, m := range ms {
				p(" %s |", FormatRatio(Ratio(s.Median(v.Name, br, m.Key), s.Median(v.Baseline, br, m.Key))))
			}
			p("\n")
		}
	}
	p("\n")
}

// rateColumns are the figures RenderRates puts side by side for each
// fixed-rate variant.
var rateColumns = []string{"delivered_pct", "lat_p50", "lat_p99", "cpu_per_m", "segs_per_deliv", "rw_per_deliv", "switches_per_deliv", "syscalls_per_deliv"}

// Targets of the fixed-rate comparison: Shoal's broker CPU per delivery at
// most RateCPUTarget times Mosquitto's, with a p99 latency at most
// Mosquitto's.
const (
	RateCPUTarget = 0.8
	RateP99Target = 1.0
)

// RenderRates returns one report of every fixed-rate variant (a name
// ending in "-rate") of sums: each broker's CPU per delivery beside what
// explains it (segments, calls, context switches) and the latency it
// bought, then Shoal's ratios to each Mosquitto configuration (and to
// ShoalBefore) against the targets. "" when no summary has such a
// variant.
func RenderRates(sums []*Summary, m Meta) string {
	type row struct {
		s *Summary
		v Variant
	}
	var rows []row
	for _, s := range sums {
		for _, v := range s.Variants {
			if strings.HasSuffix(v.Name, "-rate") {
				rows = append(rows, row{s, v})
			}
		}
	}
	if len(rows) == 0 {
		return ""
	}
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("# Benchmark: fixed rates, %s\n\n", m.Date)
	p("Every fixed-rate variant of the run, from the scenarios' reports: broker CPU per delivery at equal work, what explains it, and the latency it bought.\n\n")
	p("| | |\n|---|---|\n")
	p("| Machine | %s; %s |\n", m.Machine.Summary(), pinNote(m.Pinned))
	p("| Shoal | %s |\n", m.Machine.Shoal)
	if m.Machine.ShoalBefore != "" {
		p("| shoal-before | %s |\n", m.Machine.ShoalBefore)
	}
	p("| Rounds | %d (%s scale); each cell is the median over rounds |\n", m.Scale.Rounds, m.Scale.Name)
	p("| Command | `%s` |\n", m.Command)
	if m.Perf {
		p("| System calls | counted with `perf stat` (-perf), which adds CPU per system call to every broker |\n")
	}
	if m.Note != "" {
		p("| Note | %s |\n", m.Note)
	}
	p("| Raw data | `%s` |\n\n", m.RawDir)

	p("## Per broker\n\n")
	p("Broker CPU s/M deliv is also µs per delivery. Segments are those the broker's sockets sent (data and ACKs); read+write calls from /proc/PID/io; context switches summed over its threads; syscalls/deliv only with -perf.\n\n")
	p("| scenario | variant | broker |")
	first := rows[0].s
	for _, k := range rateColumns {
		if mt, ok := first.Metric(k); ok {
			p(" %s |", mt.Title)
		}
	}
	p("\n|---|---|---|%s\n", strings.Repeat("---:|", len(rateColumns)))
	for _, r := range rows {
		for _, br := range r.s.Brokers {
			if ok, _ := r.s.Runs(r.v.Name, br); ok == 0 {
				continue
			}
			p("| %s | %s | %s |", r.s.Scenario, r.v.Name, br)
			for _, k := range rateColumns {
				if mt, ok := r.s.Metric(k); ok {
					p(" %s |", FormatValue(r.s.Median(r.v.Name, br, k), mt.Decimals))
				}
			}
			p("\n")
		}
	}
	p("\n")

	var others []string
	for _, br := range first.Brokers {
		if (brokers.IsShoal(br) && br != brokers.Shoal) || brokers.IsMosquitto(br) {
			others = append(others, br)
		}
	}
	if len(others) == 0 || !slices.Contains(first.Brokers, brokers.Shoal) {
		return b.String()
	}
	p("## Shoal against Mosquitto\n\n")
	p("Shoal's median over the other's (Shoal's own variants too, where no target applies). Target: broker CPU per delivery at most %.2f× Mosquitto's with a p99 latency at most %.2f× Mosquitto's.\n\n", RateCPUTarget, RateP99Target)
	p("| scenario | variant | against | CPU/deliv | p99 | segments/deliv | target |\n|---|---|---|---:|---:|---:|---|\n")
	for _, r := range rows {
		for _, o := range others {
			cpu := r.s.Ratio(r.v.Name, brokers.Shoal, o, "cpu_per_m")
			p99 := r.s.Ratio(r.v.Name, brokers.Shoal, o, "lat_p99")
			segs := r.s.Ratio(r.v.Name, brokers.Shoal, o, "segs_per_deliv")
			verdict := "—"
			switch {
			case brokers.IsShoal(o) || math.IsNaN(cpu) || math.IsNaN(p99): // the target is against Mosquitto
			case cpu <= RateCPUTarget && p99 <= RateP99Target:
				verdict = "met"
			default:
				verdict = "missed"
			}
			p("| %s | %s | %s | %s | %s | %s | %s |\n", r.s.Scenario, r.v.Name, o, FormatRatio(cpu), FormatRatio(p99), FormatRatio(segs), verdict)
		}
	}
	p("\n")
	return b.String()
}
