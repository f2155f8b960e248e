package harness

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/shoalmq/shoal/bench/harness/brokers"
	"github.com/shoalmq/shoal/bench/harness/proc"
)

// clusterListenTimeout bounds a cluster node's start: a node serves
// clients only once its embedded NATS has joined the others and
// JetStream answers (it gives up after 30 s itself).
const clusterListenTimeout = 45 * time.Second

// node is one broker process of a run and its MQTT port.
type node struct {
	p    *proc.Proc
	port int
}

// nodes are the broker processes of one run: one, or a cluster's. The
// run's figures for the broker are their sums.
type nodes []node

// startBrokers starts broker for v (all of a cluster's nodes at once: each
// waits for the others) and waits until every node accepts connections.
func (r *Runner) startBrokers(ctx context.Context, v Variant, broker, dir string, rec *Record) (nodes, error) {
	var ns nodes
	start := func(name string, argv []string, port int) error {
		p, err := r.Procs.Start(proc.Spec{Name: name, Argv: argv, CPU: BrokerCPU})
		if err != nil {
			return err
		}
		ns = append(ns, node{p: p, port: port})
		rec.Commands = append(rec.Commands, r.record(p.Argv))
		return nil
	}
	timeout := listenTimeout
	if broker == brokers.ShoalCluster {
		cns, err := brokers.Cluster(brokers.ClusterNodes, dir)
		if err != nil {
			return nil, err
		}
		for i, conf := range brokers.ShoalClusterConfigs(cns, brokers.ClusterNodes) {
			n := cns[i]
			if err := os.MkdirAll(n.DataDir, 0o755); err != nil {
				return ns, err
			}
			cfg := filepath.Join(dir, "shoal-"+n.Name+".yaml")
			if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
				return ns, err
			}
			if err := start(broker+"-"+n.Name, []string{r.Bins.Shoal, "-c", cfg, "--log-level", "warn"}, n.Port); err != nil {
				return ns, err
			}
		}
		timeout = clusterListenTimeout
	} else {
		ports, err := brokers.FreePorts(1)
		if err != nil {
			return nil, err
		}
		port := ports[0]
		argv, err := r.Bins.Command(broker, port, dir, v.Persist)
		if err != nil {
			return nil, err
		}
		if err := start(broker, argv, port); err != nil {
			return ns, err
		}
	}
	for _, n := range ns {
		if err := waitListening(ctx, n.port, n.p, timeout); err != nil {
			return ns, err
		}
	}
	return ns, nil
}

// port returns the MQTT port of node i, counted modulo the nodes: a load
// meant for node B of a cluster goes to the one node of a single broker.
func (ns nodes) port(i int) int { return ns[i%len(ns)].port }

func (ns nodes) procs() []*proc.Proc {
	out := make([]*proc.Proc, len(ns))
	for i, n := range ns {
		out[i] = n.p
	}
	return out
}

func (ns nodes) kill() {
	for _, n := range ns {
		n.p.Kill()
	}
}

// exited returns an error naming the first node that exited, or nil.
func (ns nodes) exited() error {
	for _, n := range ns {
		if n.p.Exited() {
			return fmt.Errorf("%s exited during the run: %w", n.p.Name, n.p.Result())
		}
	}
	return nil
}

// cpu returns the nodes' CPU time in all, in seconds.
func (ns nodes) cpu() (float64, error) {
	var sum float64
	for _, n := range ns {
		c, err := proc.ReadCPU(n.p.Pid())
		if err != nil {
			return 0, err
		}
		sum += c
	}
	return sum, nil
}

// mem returns the nodes' VmRSS and VmHWM, each summed.
func (ns nodes) mem() (proc.Mem, error) {
	var sum proc.Mem
	for _, n := range ns {
		m, err := proc.ReadMem(n.p.Pid())
		if err != nil {
			return sum, err
		}
		sum.RSS += m.RSS
		sum.Peak += m.Peak
	}
	return sum, nil
}

// counters returns the nodes' kernel counters, summed. The segments are
// those of the MQTT sockets only: NATS's routes between nodes are not
// counted.
func (ns nodes) counters(ctx context.Context) (proc.Counters, error) {
	var sum proc.Counters
	for _, n := range ns {
		c, err := proc.ReadCounters(ctx, n.p.Pid(), n.port)
		if err != nil {
			return sum, err
		}
		sum = sum.Add(c)
	}
	return sum, nil
}

// startPerf attaches perf stat to every node; the returned function stops
// them all and sums their counts.
func (ns nodes) startPerf(dir string) (stop func() (map[string]float64, error), err error) {
	var perfs []*proc.PerfStat
	stop = func() (map[string]float64, error) {
		sum := make(map[string]float64)
		var errs []error
		for _, p := range perfs {
			m, err := p.Stop()
			errs = append(errs, err)
			for k, v := range m {
				sum[k] += v
			}
		}
		perfs = nil
		return sum, errors.Join(errs...)
	}
	for i, n := range ns {
		p, err := proc.StartPerf(n.p.Pid(), filepath.Join(dir, fmt.Sprintf("perf-%d.txt", i)))
		if err != nil {
			_, _ = stop()
			return nil, err
		}
		perfs = append(perfs, p)
	}
	return stop, nil
}
