package harness

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/shoalmq/shoal/bench/harness/brokers"
)

// Scale sizes a benchmark: `make bench` runs Full, `make bench-quick`
// Quick.
type Scale struct {
	Name     string
	Rounds   int
	Duration time.Duration // how long publishers publish in each run
	Payload  int           // bytes per message
	// Idle: connections in all, split over two generator processes (one
	// process may hold about 19,000 sockets here).
	IdleConns int
	// Settle is how long idle connections sit before the RSS is read.
	Settle time.Duration
	// Quiet is how long the broker sits idle after the idle connections
	// have all gone (a connection storm) before its RSS is read again:
	// what it kept, rather than gave back to the system.
	Quiet time.Duration
	P2P   int // publishers, and as many subscribers
	// Fanout: subscribers of the one publisher's topic.
	FanoutSubs int
	// Fanin: publishers, and subscribers of their one topic.
	FaninPubs, FaninSubs int
	Mesh                 int // clients that all publish and all subscribe
	// Stalled: subscribers that stop reading in the slowsub scenario.
	Stalled int

	// Offered rates of the fixed-rate variants, in messages published per
	// second over all publishers. Each is one Mosquitto sustains with room
	// to spare on this machine (see bench/README.md), so the variant
	// compares latency and CPU at equal work rather than at each broker's
	// limit.
	P2PRate, FanoutRate, FaninRate, MeshRate int
	// FanoutWide are fixed-rate fan-outs at a high delivery rate, one
	// variant each: where the cost of each write to a socket, not of
	// routing, is the whole of a broker's work.
	FanoutWide []FanoutLoad
	// ClusterOnly, when set, is the one variant of the cluster scenario
	// the scale runs: starting three nodes per run makes the whole
	// scenario too long for a quick check.
	ClusterOnly string
}

// FanoutLoad is one fixed-rate fan-out: Subs subscribers of one
// publisher's topic, which publishes Rate messages a second.
type FanoutLoad struct{ Subs, Rate int }

// Full is `make bench`: three rounds, about 16 minutes on 2 cores. Runs
// publish for 3 s: at 5 s the whole took over 20 minutes, because brokers
// that queue at saturation take several seconds more to drain what the
// publishers sent.
func Full() Scale {
	return Scale{
		Name: "full", Rounds: 3, Duration: 3 * time.Second, Payload: 64,
		IdleConns: 19000, Settle: 2 * time.Second, Quiet: 10 * time.Second,
		P2P: 100, FanoutSubs: 1000, FaninPubs: 1000, FaninSubs: 5, Mesh: 20, Stalled: 5,
		// 10,000 deliveries a second for p2p and fan-out, 20,000 for
		// fan-in and mesh: at most a quarter of what Mosquitto delivered
		// at saturation in the same scenario (bench/README.md).
		P2PRate: 10000, FanoutRate: 10, FaninRate: 4000, MeshRate: 1000,
		// 100,000 deliveries a second, to 500 subscribers (each gets a
		// message every 5 ms) and to 5,000 (every 50 ms).
		FanoutWide: []FanoutLoad{{Subs: 500, Rate: 200}, {Subs: 5000, Rate: 20}},
	}
}

// Quick is `make bench-quick`: one round, smaller counts, short runs.
func Quick() Scale {
	return Scale{
		Name: "quick", Rounds: 1, Duration: time.Second, Payload: 64,
		IdleConns: 2000, Settle: 500 * time.Millisecond, Quiet: 3 * time.Second,
		P2P: 20, FanoutSubs: 200, FaninPubs: 200, FaninSubs: 5, Mesh: 10, Stalled: 2,
		P2PRate: 5000, FanoutRate: 20, FaninRate: 2000, MeshRate: 500,
		FanoutWide: []FanoutLoad{{Subs: 100, Rate: 200}, {Subs: 1000, Rate: 20}},
		// Cross-node QoS 1 at the fixed rate: that the nodes route, and
		// what it costs, in about 10 s.
		ClusterOnly: "p2p-q1-rate",
	}
}

// Variant is one workload of a scenario, run against every broker.
type Variant struct {
	Scenario string // "idle", "p2p", "fanout", "fanin", "mesh"
	Name     string // "q0-sat", "shared-rate", ...
	Desc     string // one line for the report
	Idle     bool   // connect, subscribe and sit: no publishers
	// Settle is how long idle connections sit before the RSS is read;
	// Quiet how long the broker then sits without them before it is read
	// again.
	Settle, Quiet time.Duration
	Subs          []Gen
	Pubs          []Gen
	// Fanout is how many subscribers receive each message: deliveries
	// per message, for the report's expected delivery rate.
	Fanout int
	// Shared marks $share subscriptions, which the floor does not do.
	Shared bool
	// NoFloor, when set, says why the floor does not run the variant.
	NoFloor string
	// Persist runs the brokers with their persistence on (Shoal's store,
	// Mosquitto's persistence true); mochi-mqtt, which persists only
	// through a storage hook, skips such variants.
	Persist bool
	// Stalled are subscribers that stop reading once subscribed (shoalbench
	// stall): connected before the publishers start, left out of the
	// figures, which are what the other clients see.
	Stalled []Gen
	// Baseline names the variant of the same scenario this one is compared
	// with, broker by broker: the same load without what this one adds.
	Baseline string
	// FloorSubTopic, when set, replaces the subscribers' filter for the
	// floor, which matches topics exactly (no wildcards), and
	// FloorPubTopic the publishers' topic, for the same delivery pattern.
	FloorSubTopic, FloorPubTopic string
	// Cluster runs against Shoal on one node and on brokers.ClusterNodes
	// (brokers.ShoalCluster) only: the generators' Node says which node
	// each connects to, and the run probes the routes before the load
	// starts (probe.go).
	Cluster bool
}

// Skip returns why broker does not run v, or "".
func (v Variant) Skip(broker string) string {
	if broker == brokers.Floor && v.Shared {
		return "the floor has no shared subscriptions"
	}
	if broker == brokers.Floor && v.NoFloor != "" {
		return v.NoFloor
	}
	if broker == brokers.ShoalCluster && !v.Cluster {
		return "three nodes run the cluster scenario only"
	}
	if v.Cluster && !brokers.IsShoal(broker) && broker != brokers.ShoalCluster {
		return "no cluster: the cluster scenario runs Shoal only, on one node and on three"
	}
	if broker == brokers.Mochi && v.Persist {
		return "mochi-mqtt persists only through a storage hook, which the harness does not load"
	}
	return ""
}

// For returns v's generator processes as run against broker.
func (v Variant) For(broker string) (subs, pubs []Gen) {
	subs = append([]Gen(nil), v.Subs...)
	pubs = append([]Gen(nil), v.Pubs...)
	if broker == brokers.Floor {
		for i := range subs {
			if v.FloorSubTopic != "" {
				subs[i].Topic = v.FloorSubTopic
			}
		}
		for i := range pubs {
			if v.FloorPubTopic != "" {
				pubs[i].Topic = v.FloorPubTopic
			}
		}
	}
	return subs, pubs
}

// Scenarios returns the scenario names in the order they run.
func Scenarios() []string {
	return []string{"idle", "p2p", "fanout", "fanin", "mesh", "slowsub", "persist", "cluster"}
}

// Variants returns the variants of the named scenarios at scale s, in
// order; an unknown name is an error.
func Variants(s Scale, names []string) ([]Variant, error) {
	var out []Variant
	for _, n := range names {
		vs, err := variants(s, n)
		if err != nil {
			return nil, err
		}
		out = append(out, vs...)
	}
	return out, nil
}

// interval returns the -I (ms between one publisher's messages) that makes
// pubs publishers offer rate messages per second in all, at least 1 ms.
func interval(pubs, rate int) int {
	return max(1, int(math.Round(float64(pubs)*1000/float64(rate))))
}

func variants(s Scale, name string) ([]Variant, error) {
	d := s.Duration
	// Subscribers outlive the publishers: the runner stops them with
	// SIGINT once the publishers are done and the last messages had time
	// to arrive. Their own --duration only bounds them should it not.
	subDur := d + 2*time.Minute
	sub := func(n int, topic string, qos int) Gen {
		return Gen{Mode: "sub", Count: n, Topic: topic, QoS: qos, Duration: subDur}
	}
	pub := func(n int, topic string, qos, iv int) Gen {
		return Gen{Mode: "pub", Count: n, Topic: topic, QoS: qos, Size: s.Payload, Interval: iv, Duration: d}
	}
	// sat and rate give a variant at saturation and at a fixed offered rate.
	both := func(rate, pubs int, f mkVariant) []Variant {
		return []Variant{f(0, "sat"), f(interval(pubs, rate), "rate")}
	}
	switch name {
	case "idle":
		half := s.IdleConns / 2
		return []Variant{{
			Scenario: "idle", Name: "idle", Idle: true, Settle: s.Settle, Quiet: s.Quiet,
			Desc: fmt.Sprintf("%d connections, each subscribed to its own topic idle/%%i, in 2 generator processes of %d", 2*half, half),
			Subs: []Gen{
				{Mode: "sub", Count: half, Topic: "idle/%i", QoS: 1, Start: 0, Src: []string{"127.0.0.1", "127.0.0.2"}, Duration: 10 * time.Minute},
				{Mode: "sub", Count: half, Topic: "idle/%i", QoS: 1, Start: half, Src: []string{"127.0.0.3", "127.0.0.4"}, Duration: 10 * time.Minute},
			},
		}}, nil
	case "p2p":
		n := s.P2P
		var out []Variant
		for _, q := range []int{0, 1} {
			out = append(out, both(s.P2PRate, n, func(iv int, suffix string) Variant {
				return Variant{
					Scenario: "p2p", Name: fmt.Sprintf("q%d-%s", q, suffix), Fanout: 1,
					Desc: fmt.Sprintf("%d publishers to %d subscribers on bench/%%i, QoS %d, %s", n, n, q, offered(iv, n, s.P2PRate)),
					Subs: []Gen{sub(n, "bench/%i", q)},
					Pubs: []Gen{pub(n, "bench/%i", q, iv)},
				}
			})...)
		}
		return out, nil
	case "fanout":
		mk := func(n, iv int, name string, rate int) Variant {
			return Variant{
				Scenario: "fanout", Name: name, Fanout: n,
				Desc: fmt.Sprintf("1 publisher to %d subscribers of fanout/t, QoS 0, %s", n, offered(iv, 1, rate)),
				Subs: []Gen{sub(n, "fanout/t", 0)},
				Pubs: []Gen{pub(1, "fanout/t", 0, iv)},
			}
		}
		n := s.FanoutSubs
		out := both(s.FanoutRate, 1, func(iv int, suffix string) Variant { return mk(n, iv, "q0-"+suffix, s.FanoutRate) })
		for _, w := range s.FanoutWide {
			iv := interval(1, w.Rate)
			v := mk(w.Subs, iv, fmt.Sprintf("q0-%d-rate", w.Subs), w.Rate)
			v.Desc += fmt.Sprintf(": %d deliveries/s, a message every %d ms for each subscriber", w.Subs*1000/iv, iv)
			out = append(out, v)
		}
		return out, nil
	case "fanin":
		p, n := s.FaninPubs, s.FaninSubs
		var out []Variant
		for _, shared := range []bool{false, true} {
			filter, kind, fan := "fanin/t", "plain", n
			if shared {
				filter, kind, fan = "$share/g/fanin/t", "shared", 1
			}
			out = append(out, both(s.FaninRate, p, func(iv int, suffix string) Variant {
				return Variant{
					Scenario: "fanin", Name: kind + "-" + suffix, Fanout: fan, Shared: shared,
					Desc: fmt.Sprintf("%d publishers to %d subscribers of %s, QoS 0, %s", p, n, filter, offered(iv, p, s.FaninRate)),
					Subs: []Gen{sub(n, filter, 0)},
					Pubs: []Gen{pub(p, "fanin/t", 0, iv)},
				}
			})...)
		}
		return out, nil
	case "mesh":
		n := s.Mesh
		return both(s.MeshRate, n, func(iv int, suffix string) Variant {
			return Variant{
				Scenario: "mesh", Name: "q0-" + suffix, Fanout: n,
				Desc:          fmt.Sprintf("%d clients publish to mesh/%%i and %d subscribe to mesh/+ (floor: all on mesh/all), QoS 0, %s", n, n, offered(iv, n, s.MeshRate)),
				Subs:          []Gen{sub(n, "mesh/+", 0)},
				Pubs:          []Gen{pub(n, "mesh/%i", 0, iv)},
				FloorSubTopic: "mesh/all", FloorPubTopic: "mesh/all",
			}
		}), nil
	case "slowsub":
		// p2p QoS 1 at the fixed rate, then the same with subscribers of
		// bench/# that stop reading: what a stalled consumer costs the
		// others, each broker against its own baseline.
		n, iv := s.P2P, interval(s.P2P, s.P2PRate)
		base := Variant{
			Scenario: "slowsub", Name: "q1-rate", Fanout: 1,
			NoFloor: "the floor has no wildcard subscriptions and no slow-consumer policy",
			Desc:    fmt.Sprintf("%d publishers to %d subscribers on bench/%%i, QoS 1, %s", n, n, offered(iv, n, s.P2PRate)),
			Subs:    []Gen{sub(n, "bench/%i", 1)},
			Pubs:    []Gen{pub(n, "bench/%i", 1, iv)},
		}
		stalled := base
		stalled.Name, stalled.Baseline = "q1-stalled-rate", base.Name
		stalled.Desc = fmt.Sprintf("the same, plus %d subscribers of bench/# at QoS 1 that never read after their SUBACK (shoalbench stall)", s.Stalled)
		stalled.Stalled = []Gen{{Mode: "stall", Count: s.Stalled, Topic: "bench/#", QoS: 1, Duration: subDur}}
		return []Variant{base, stalled}, nil
	case "persist":
		// QoS 1 to persistent sessions (clean session 0), the brokers in
		// memory and then on disk: the cost of durability, at saturation
		// and in latency at the fixed rate.
		n := s.P2P
		mk := func(name string, persist bool, iv int, where string) Variant {
			v := Variant{
				Scenario: "persist", Name: name, Fanout: 1, Persist: persist,
				NoFloor: "the floor has no sessions",
				Desc: fmt.Sprintf("%d publishers to %d persistent subscribers (clean session 0) on bench/%%i, QoS 1, %s, %s",
					n, n, offered(iv, n, s.P2PRate), where),
				Subs: []Gen{sub(n, "bench/%i", 1)},
				Pubs: []Gen{pub(n, "bench/%i", 1, iv)},
			}
			v.Subs[0].Persistent = true
			return v
		}
		mem := mk("q1-mem-sat", false, 0, "persistence off")
		disk := mk("q1-disk-sat", true, 0, "persistence on (Shoal: durability strict, fsync before PUBACK; Mosquitto: persistence true, a snapshot every 30 minutes and at exit)")
		disk.Baseline = mem.Name
		memRate := mk("q1-mem-rate", false, interval(n, s.P2PRate), "persistence off")
		diskRate := mk("q1-disk-rate", true, interval(n, s.P2PRate), "persistence on")
		diskRate.Baseline = memRate.Name
		return []Variant{mem, disk, memRate, diskRate}, nil
	case "cluster":
		return clusterVariants(s, both, sub, pub), nil
	}
	return nil, fmt.Errorf("harness: unknown scenario %q (have %v)", name, Scenarios())
}

// mkVariant makes a variant at -I iv, named with suffix ("sat", "rate").
type mkVariant func(iv int, suffix string) Variant

// clusterVariants are the cluster scenario's: p2p QoS 0 and 1 from
// publishers on node A to subscribers on node B, and a fan-out from one
// publisher on A to subscribers spread over B and C, each at saturation and
// at the p2p and fan-out scenarios' fixed rates. Against a single node
// (Shoal) every client connects to it: the same load, the same config
// (a data directory, as a cluster node needs), without the cluster.
func clusterVariants(s Scale, both func(rate, pubs int, f mkVariant) []Variant, sub func(n int, topic string, qos int) Gen, pub func(n int, topic string, qos, iv int) Gen) []Variant {
	const a, b, c = 0, 1, 2
	at := func(g Gen, node int) Gen { g.Node = node; return g }
	var out []Variant
	n := s.P2P
	for _, q := range []int{0, 1} {
		out = append(out, both(s.P2PRate, n, func(iv int, suffix string) Variant {
			return Variant{
				Scenario: "cluster", Name: fmt.Sprintf("p2p-q%d-%s", q, suffix), Fanout: 1, Cluster: true, Persist: true,
				Desc: fmt.Sprintf("%d publishers on node A to %d subscribers on node B, bench/%%i, QoS %d, %s", n, n, q, offered(iv, n, s.P2PRate)),
				Subs: []Gen{at(sub(n, "bench/%i", q), b)},
				Pubs: []Gen{at(pub(n, "bench/%i", q, iv), a)},
			}
		})...)
	}
	f := s.FanoutSubs
	out = append(out, both(s.FanoutRate, 1, func(iv int, suffix string) Variant {
		onB, onC := at(sub(f/2, "fanout/t", 0), b), at(sub(f-f/2, "fanout/t", 0), c)
		onC.Start = f / 2
		return Variant{
			Scenario: "cluster", Name: "fanout-q0-" + suffix, Fanout: f, Cluster: true, Persist: true,
			Desc: fmt.Sprintf("1 publisher on node A to %d subscribers of fanout/t, %d on node B and %d on node C, QoS 0, %s", f, onB.Count, onC.Count, offered(iv, 1, s.FanoutRate)),
			Subs: []Gen{onB, onC},
			Pubs: []Gen{at(pub(1, "fanout/t", 0, iv), a)},
		}
	})...)
	if s.ClusterOnly != "" {
		out = slices.DeleteFunc(out, func(v Variant) bool { return v.Name != s.ClusterOnly })
	}
	return out
}

// offered describes a variant's publishing rate.
func offered(iv, pubs, rate int) string {
	if iv == 0 {
		return "at saturation"
	}
	return fmt.Sprintf("offered %d msg/s (-I %d per publisher)", pubs*1000/iv, iv)
}
