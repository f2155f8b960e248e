package harness

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/shoalmq/shoal/bench/harness/brokers"
	"github.com/shoalmq/shoal/bench/harness/proc"
)

// TestClusterVariants: the generators of a cluster variant connect
// publishers to node A and subscribers elsewhere; on a single broker all
// to it. Only Shoal, on one node and on three, runs them, and the three
// nodes run nothing else.
func TestClusterVariants(t *testing.T) {
	vs, err := Variants(Full(), []string{"cluster"})
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 6 {
		t.Errorf("%d cluster variants; want 6", len(vs))
	}
	three := nodes{{port: 1}, {port: 2}, {port: 3}}
	one := nodes{{port: 9}}
	for _, v := range vs {
		subs, pubs := v.For(brokers.ShoalCluster)
		for _, g := range pubs {
			if three.port(g.Node) != 1 {
				t.Errorf("%s: a publisher on port %d", v.Name, three.port(g.Node))
			}
		}
		total := 0
		for _, g := range subs {
			if p := three.port(g.Node); p == 1 {
				t.Errorf("%s: a subscriber on the publishers' node", v.Name)
			}
			if one.port(g.Node) != 9 {
				t.Errorf("%s: a single broker's subscriber on port %d", v.Name, one.port(g.Node))
			}
			total += g.Count
		}
		if total != v.Fanout && v.Fanout != 1 {
			t.Errorf("%s: %d subscribers; fan-out %d", v.Name, total, v.Fanout)
		}
		for _, b := range []string{brokers.Shoal, brokers.ShoalCluster} {
			if why := v.Skip(b); why != "" {
				t.Errorf("%s: %s skipped: %s", v.Name, b, why)
			}
		}
		for _, b := range []string{brokers.Mosquitto, brokers.Mochi, brokers.Floor} {
			if v.Skip(b) == "" {
				t.Errorf("%s: %s runs it", v.Name, b)
			}
		}
	}
	others, _ := Variants(Quick(), []string{"p2p"})
	if others[0].Skip(brokers.ShoalCluster) == "" {
		t.Error("three nodes run p2p")
	}
	if q, _ := Variants(Quick(), []string{"cluster"}); len(q) != 1 {
		t.Errorf("quick: %d cluster variants; want 1", len(q))
	}
	if got := withCluster([]string{brokers.Mosquitto, brokers.Shoal}, []string{"p2p", "cluster"}); !slices.Equal(got, []string{brokers.Mosquitto, brokers.Shoal, brokers.ShoalCluster}) {
		t.Errorf("withCluster = %q", got)
	}
	if got := withCluster([]string{brokers.Shoal}, []string{"p2p"}); !slices.Equal(got, []string{brokers.Shoal}) {
		t.Errorf("withCluster without the scenario = %q", got)
	}
}

// TestClusterSmoke runs cross-node p2p QoS 1 on three real nodes for one
// second: the probe fails the run unless messages published on node A
// reach subscribers on node B, and every message sent must arrive.
func TestClusterSmoke(t *testing.T) {
	if testing.Short() {
		// -short is for a quick look at the harness alone; make test and
		// CI run without it, so this smoke run is part of every test run.
		t.Skip("-short: builds Shoal and shoalbench and starts three brokers (about 10 s); make test runs it")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	work := t.TempDir()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	bins := brokers.Bins{Shoal: filepath.Join(work, "shoal"), Shoalbench: filepath.Join(work, "shoalbench")}
	for pkg, out := range map[string]string{"./cmd/broker": bins.Shoal, "./bench/cmd/shoalbench": bins.Shoalbench} {
		cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
		cmd.Dir = root
		if msg, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", pkg, err, msg)
		}
	}
	procs := &proc.Procs{LogDir: filepath.Join(work, "logs")}
	if err := os.MkdirAll(procs.LogDir, 0o755); err != nil {
		t.Fatal(err)
	}
	defer procs.KillAll()
	s := Quick()
	s.Duration, s.P2P, s.P2PRate = time.Second, 5, 500
	vs, err := Variants(s, []string{"cluster"})
	if err != nil {
		t.Fatal(err)
	}
	r := &Runner{Bins: bins, Procs: procs, Work: work, Log: t.Logf}
	start := time.Now()
	rec := r.Run(ctx, vs[0], brokers.ShoalCluster, 1)
	t.Logf("%s on %s in %v", vs[0].Name, brokers.ShoalCluster, time.Since(start).Round(time.Millisecond))
	if rec.Error != "" {
		logs, _ := filepath.Glob(filepath.Join(procs.LogDir, "*.log"))
		for _, l := range logs {
			b, _ := os.ReadFile(l)
			t.Logf("%s:\n%s", filepath.Base(l), b)
		}
		t.Fatal(rec.Error)
	}
	if len(rec.Subs) != 1 || len(rec.Pubs) != 1 {
		t.Fatalf("%d subscriber and %d publisher results", len(rec.Subs), len(rec.Pubs))
	}
	sent, got := rec.Pubs[0].Sent, rec.Subs[0].Received
	if sent == 0 || got != sent || rec.Subs[0].Lost != 0 {
		t.Errorf("sent %d on node A, received %d on node B (lost %d)", sent, got, rec.Subs[0].Lost)
	}
}
