package harness

import (
	"math"
	"slices"

	"github.com/shoalmq/shoal/bench/harness/proc"
)

// Metric is one figure of a run, computed from its Record.
type Metric struct {
	Key   string // short identifier, used in chart specs
	Title string // column heading
	// Better is +1 when a higher value is better, -1 when lower is, 0
	// when neither (a count to check, not to compete on).
	Better int
	// Decimals is how many digits after the point to print.
	Decimals int
	Value    func(r Record, v Variant) float64
}

// Metrics returns the figures reported for v's kind of scenario, in column
// order.
func Metrics(v Variant) []Metric {
	if v.Idle {
		return idleMetrics()
	}
	return messageMetrics()
}

func idleMetrics() []Metric {
	return []Metric{
		{Key: "conns", Title: "connections", Value: func(r Record, _ Variant) float64 {
			return float64(sum(r.Subs, func(g GenResult) float64 { return float64(g.Connected) }))
		}},
		{Key: "rss_per_conn", Title: "RSS B/conn", Better: -1, Value: func(r Record, v Variant) float64 {
			n := sum(r.Subs, func(g GenResult) float64 { return float64(g.Connected) })
			if n == 0 {
				return math.NaN()
			}
			return float64(r.RSSAfter-r.RSSBefore) / n
		}},
		// The generators connect side by side, so their rates add up.
		{Key: "connect_rate", Title: "connects/s", Better: +1, Value: func(r Record, _ Variant) float64 {
			return sum(r.Subs, func(g GenResult) float64 { return g.ConnectRate })
		}},
		// Percentiles of two processes cannot be merged exactly: report the
		// worse of the two.
		{Key: "connack_p50", Title: "CONNACK p50 ms", Better: -1, Decimals: 2, Value: func(r Record, _ Variant) float64 {
			return worst(r.Subs, func(g GenResult) float64 { return g.ConnackP50 })
		}},
		{Key: "connack_p99", Title: "CONNACK p99 ms", Better: -1, Decimals: 2, Value: func(r Record, _ Variant) float64 {
			return worst(r.Subs, func(g GenResult) float64 { return g.ConnackP99 })
		}},
		{Key: "cpu_per_kconn", Title: "broker CPU ms/1k conns", Better: -1, Decimals: 1, Value: func(r Record, _ Variant) float64 {
			n := sum(r.Subs, func(g GenResult) float64 { return float64(g.Connected) })
			return Ratio(r.BrokerCPU*1000, n/1000)
		}},
		{Key: "peak_rss", Title: "peak RSS MiB", Better: -1, Decimals: 1, Value: peakMiB},
		// What the broker kept once every connection had gone and it sat
		// idle (Variant.Quiet): memory a storm of connections leaves
		// behind instead of giving it back to the system.
		{Key: "rss_quiet_per_conn", Title: "RSS kept B/conn", Better: -1, Value: func(r Record, v Variant) float64 {
			n := sum(r.Subs, func(g GenResult) float64 { return float64(g.Connected) })
			if n == 0 || r.RSSQuiet == 0 {
				return math.NaN()
			}
			return float64(r.RSSQuiet-r.RSSBefore) / n
		}},
		{Key: "failed", Title: "connect failed", Value: func(r Record, _ Variant) float64 {
			return sum(r.Subs, func(g GenResult) float64 { return float64(g.ConnectFailed) })
		}},
		{Key: "gen_cpu", Title: "generator CPU s", Decimals: 2, Value: genCPU},
	}
}

func messageMetrics() []Metric {
	return []Metric{
		// shoalbench's publishing phase runs from the first publish to the
		// last acknowledgement.
		{Key: "sent_rate", Title: "sent msg/s", Better: +1, Value: func(r Record, _ Variant) float64 {
			return Ratio(sum(r.Pubs, func(g GenResult) float64 { return float64(g.Sent) }), longest(r.Pubs))
		}},
		// Deliveries over the longer of the publishing phase and the
		// receiving phase (first to last message received): a broker that
		// queues at saturation keeps delivering after the publishers stop,
		// and one that stalls stops receiving early; either way the rate is
		// what subscribers got per second while the run lasted.
		{Key: "recv_rate", Title: "delivered msg/s", Better: +1, Value: func(r Record, _ Variant) float64 {
			return Ratio(received(r), max(longest(r.Pubs), longest(r.Subs)))
		}},
		// Delivered over what a lossless broker would have delivered: QoS 0
		// messages may be dropped under overload, and are at saturation.
		{Key: "delivered_pct", Title: "delivered %", Better: +1, Decimals: 1, Value: func(r Record, v Variant) float64 {
			sent := sum(r.Pubs, func(g GenResult) float64 { return float64(g.Sent) })
			return 100 * Ratio(received(r), sent*float64(max(v.Fanout, 1)))
		}},
		{Key: "lat_p50", Title: "p50 ms", Better: -1, Decimals: 2, Value: func(r Record, _ Variant) float64 {
			return worst(r.Subs, func(g GenResult) float64 { return g.LatP50 })
		}},
		{Key: "lat_p99", Title: "p99 ms", Better: -1, Decimals: 2, Value: func(r Record, _ Variant) float64 {
			return worst(r.Subs, func(g GenResult) float64 { return g.LatP99 })
		}},
		{Key: "lat_p999", Title: "p999 ms", Better: -1, Decimals: 2, Value: func(r Record, _ Variant) float64 {
			return worst(r.Subs, func(g GenResult) float64 { return g.LatP999 })
		}},
		{Key: "cpu_per_m", Title: "broker CPU s/M deliv", Better: -1, Decimals: 2, Value: func(r Record, _ Variant) float64 {
			return Ratio(r.BrokerCPU*1e6, received(r))
		}},
		// Near 100 means the broker used all of its core: it, not the
		// generators, set the pace.
		{Key: "broker_cpu_pct", Title: "broker CPU %", Decimals: 0, Value: func(r Record, _ Variant) float64 {
			return 100 * Ratio(r.BrokerCPU, r.WindowS)
		}},
		{Key: "peak_rss", Title: "peak RSS MiB", Better: -1, Decimals: 1, Value: peakMiB},
		// Why one broker costs more than another, per delivery over the
		// window (proc.Counters): TCP segments its sockets sent (data and
		// ACKs), read and write calls, context switches, and with -perf
		// every system call.
		{Key: "segs_per_deliv", Title: "segments/deliv", Better: -1, Decimals: 2, Value: perDelivery(func(c proc.Counters) int64 { return c.Segs })},
		{Key: "rw_per_deliv", Title: "read+write calls/deliv", Better: -1, Decimals: 2, Value: perDelivery(func(c proc.Counters) int64 { return c.Reads + c.Writes })},
		{Key: "switches_per_deliv", Title: "ctx switches/deliv", Better: -1, Decimals: 3, Value: perDelivery(func(c proc.Counters) int64 { return c.Switches })},
		{Key: "syscalls_per_deliv", Title: "syscalls/deliv", Better: -1, Decimals: 2, Value: func(r Record, _ Variant) float64 {
			n, ok := r.Perf[proc.PerfSyscalls]
			if !ok {
				return math.NaN()
			}
			return Ratio(n, received(r))
		}},
		// shoalbench counts gaps in each publisher's sequence numbers as
		// one subscriber saw them: a shared subscription splits every
		// sequence between subscribers, so there its count means nothing.
		{Key: "lost", Title: "lost", Better: -1, Value: func(r Record, v Variant) float64 {
			if v.Shared {
				return math.NaN()
			}
			return sum(r.Subs, func(g GenResult) float64 { return float64(g.Lost) })
		}},
		// QoS 1 and 2 messages the broker never acknowledged to their
		// publisher within shoalbench's grace period.
		{Key: "unacked", Title: "unacked", Better: -1, Value: func(r Record, _ Variant) float64 {
			return sum(r.Pubs, func(g GenResult) float64 { return float64(g.Lost) })
		}},
		// All generators share one core: near 100 means they, not the
		// broker, may have set the pace.
		{Key: "gen_cpu_pct", Title: "generator CPU %", Decimals: 0, Value: func(r Record, _ Variant) float64 {
			life := slices.Max(append([]float64{0}, mapf(append(slices.Clone(r.Subs), r.Pubs...), func(g GenResult) float64 { return g.DurationS })...))
			return 100 * Ratio(genCPU(r, Variant{}), life)
		}},
	}
}

// perDelivery returns a metric of one of the window's counters per
// message received: NaN when the record has no counters or that one was
// not read (-1).
func perDelivery(f func(proc.Counters) int64) func(Record, Variant) float64 {
	return func(r Record, _ Variant) float64 {
		if r.Counters == nil {
			return math.NaN()
		}
		n := f(*r.Counters)
		if n < 0 {
			return math.NaN()
		}
		return Ratio(float64(n), received(r))
	}
}

func peakMiB(r Record, _ Variant) float64 {
	if r.PeakRSS == 0 {
		return math.NaN()
	}
	return float64(r.PeakRSS) / (1 << 20)
}

func genCPU(r Record, _ Variant) float64 {
	f := func(g GenResult) float64 { return g.CPUS }
	return sum(r.Subs, f) + sum(r.Pubs, f)
}

func received(r Record) float64 {
	return sum(r.Subs, func(g GenResult) float64 { return float64(g.Received) })
}

// longest is the longest duration_s of gs, NaN for none.
func longest(gs []GenResult) float64 {
	if len(gs) == 0 {
		return math.NaN()
	}
	return slices.Max(mapf(gs, func(g GenResult) float64 { return g.DurationS }))
}

func sum(gs []GenResult, f func(GenResult) float64) float64 {
	t := 0.0
	for _, g := range gs {
		t += f(g)
	}
	return t
}

// worst returns the largest of f over gs, NaN for none.
func worst(gs []GenResult, f func(GenResult) float64) float64 {
	if len(gs) == 0 {
		return math.NaN()
	}
	return slices.Max(mapf(gs, f))
}

func mapf(gs []GenResult, f func(GenResult) float64) []float64 {
	out := make([]float64, len(gs))
	for i, g := range gs {
		out[i] = f(g)
	}
	return out
}
