package harness

import (
	"fmt"
	"slices"
)

// Summary holds one scenario's medians over rounds, per variant, broker
// and metric.
type Summary struct {
	Scenario string
	Variants []Variant
	Brokers  []string
	Metrics  []Metric
	// Notes are the errors and skips worth a reader's attention, one line
	// each.
	Notes []string
	// Commands are the processes of one run per variant (the first round
	// against the first broker that ran it), to show how runs are made.
	Commands map[string][]string

	med     map[cellKey]float64
	runs    map[runKey][2]int // ok, total
	skipped map[runKey]bool
}

type cellKey struct{ variant, broker, metric string }
type runKey struct{ variant, broker string }

// Summarize computes the medians of scenario's records. Records of
// failed runs are left out of the medians and listed in Notes.
func Summarize(scenario string, vs []Variant, brokers []string, recs []Record) *Summary {
	s := &Summary{
		Scenario: scenario, Brokers: brokers, Commands: make(map[string][]string),
		med: make(map[cellKey]float64), runs: make(map[runKey][2]int), skipped: make(map[runKey]bool),
	}
	for _, v := range vs {
		if v.Scenario == scenario {
			s.Variants = append(s.Variants, v)
		}
	}
	if len(s.Variants) == 0 {
		return s
	}
	s.Metrics = Metrics(s.Variants[0])
	skipNoted := make(map[string]bool)
	for _, v := range s.Variants {
		for _, b := range brokers {
			vals := make(map[string][]float64)
			var ok, total int
			for _, r := range recs {
				if r.Scenario != scenario || r.Variant != v.Name || r.Broker != b {
					continue
				}
				if r.Skipped != "" {
					s.skipped[runKey{v.Name, b}] = true
					if k := v.Name + "\x00" + b; !skipNoted[k] {
						skipNoted[k] = true
						s.Notes = append(s.Notes, fmt.Sprintf("%s: %s skipped: %s.", v.Name, b, r.Skipped))
					}
					continue
				}
				total++
				if _, seen := s.Commands[v.Name]; !seen {
					s.Commands[v.Name] = r.Commands
				}
				if r.Error != "" {
					s.Notes = append(s.Notes, fmt.Sprintf("%s: %s round %d failed: %s", v.Name, b, r.Round, r.Error))
					continue
				}
				ok++
				for _, m := range s.Metrics {
					vals[m.Key] = append(vals[m.Key], m.Value(r, v))
				}
			}
			s.runs[runKey{v.Name, b}] = [2]int{ok, total}
			for _, m := range s.Metrics {
				s.med[cellKey{v.Name, b, m.Key}] = Median(vals[m.Key])
			}
		}
	}
	slices.Sort(s.Notes)
	return s
}

// Median returns the median of metric for variant against broker, NaN
// when no run produced it.
func (s *Summary) Median(variant, broker, metric string) float64 {
	v, ok := s.med[cellKey{variant, broker, metric}]
	if !ok {
		return nan()
	}
	return v
}

// Runs returns how many runs of variant against broker succeeded, and how
// many were made (skips not counted).
func (s *Summary) Runs(variant, broker string) (ok, total int) {
	r := s.runs[runKey{variant, broker}]
	return r[0], r[1]
}

// Skipped reports whether variant was skipped for broker (rather than not
// run at all).
func (s *Summary) Skipped(variant, broker string) bool { return s.skipped[runKey{variant, broker}] }

// Compared returns the metrics where one broker can be better than
// another: the ones a ratio means something for.
func (s *Summary) Compared() []Metric {
	var out []Metric
	for _, m := range s.Metrics {
		if m.Better != 0 {
			out = append(out, m)
		}
	}
	return out
}

// Ratio returns the ratio of broker a's median to broker b's.
func (s *Summary) Ratio(variant, a, b, metric string) float64 {
	return Ratio(s.Median(variant, a, metric), s.Median(variant, b, metric))
}

// Metric returns the metric with key, and whether there is one.
func (s *Summary) Metric(key string) (Metric, bool) {
	for _, m := range s.Metrics {
		if m.Key == key {
			return m, true
		}
	}
	return Metric{}, false
}

// Headline returns the keys of the metrics charted and printed for the
// scenario: a throughput, a tail latency and what the broker spent (CPU
// per delivery; for idle, memory per connection).
func (s *Summary) Headline() []string {
	if len(s.Variants) > 0 && s.Variants[0].Idle {
		return []string{"connect_rate", "connack_p99", "rss_per_conn"}
	}
	return []string{"recv_rate", "lat_p99", "cpu_per_m"}
}
