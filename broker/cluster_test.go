package broker_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/shoalmq/shoal/broker"
	"github.com/shoalmq/shoal/internal/testutil"
)

// clusterBroker is a broker's Config for node name of a cluster, its
// state in dataDir: a listener on a free port, one loop.
func clusterBroker(t *testing.T, name, dataDir string, cc broker.ClusterConfig) broker.Config {
	t.Helper()
	cfg := broker.DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.Loops, cfg.Workers, cfg.AuthWorkers = 1, 1, 1
	cfg.SysInterval = 0
	cfg.DataDir = dataDir
	cfg.Logger = zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel).With().Str("node", name).Logger()
	cc.Node = name
	cfg.Cluster = &cc
	return cfg
}

// closeBroker closes b (stop), then again: the second Close does nothing.
func closeBroker(t *testing.T, b *broker.Broker) {
	t.Helper()
	stop(t, b)
	if err := b.Close(context.Background()); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// startClusterBrokers starts n brokers together, each with a cluster
// section routing to the others, on the routing path the test run forces
// (testutil.RouteEnv), and closes them when the test ends.
func startClusterBrokers(t *testing.T, n int) []*broker.Broker {
	t.Helper()
	return startClusterBrokersWith(t, n, nil)
}

// startClusterBrokersWith is startClusterBrokers, with edit (when not nil)
// changing each broker's config further.
func startClusterBrokersWith(t *testing.T, n int, edit func(*broker.Config)) []*broker.Broker {
	t.Helper()
	addrs := testutil.RouteAddrs(t, n)
	brokers := make([]*broker.Broker, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range addrs {
		var routes []string
		for j, a := range addrs {
			if j != i {
				routes = append(routes, a)
			}
		}
		cfg := clusterBroker(t, fmt.Sprintf("n%d", i), t.TempDir(),
			broker.ClusterConfig{Name: "test", Listen: addrs[i], Routes: routes, Replicas: min(n, 3)})
		if edit != nil {
			edit(&cfg)
		}
		b, err := broker.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if mode := os.Getenv(testutil.RouteEnv); mode != "" {
			if err := b.ForceRouting(mode); err != nil {
				t.Fatal(err)
			}
		}
		brokers[i] = b
		wg.Add(1)
		go func() { // a clustered JetStream needs its peers up to elect a leader
			defer wg.Done()
			errs[i] = b.Start()
		}()
	}
	wg.Wait()
	t.Cleanup(func() {
		for i, b := range brokers {
			if errs[i] == nil { // a failed Start has let go of what it took
				closeBroker(t, b)
			}
		}
	})
	for i, err := range errs {
		if err != nil {
			t.Fatalf("node %d: Start: %v", i, err)
		}
	}
	return brokers
}

// TestClusterThreeNodes: three brokers, each with a cluster section
// routing to the other two, started together in one process, form one
// cluster: each Start returns with its owners' bucket open, and a claim
// made on one node is what the others read. Then they all close.
func TestClusterThreeNodes(t *testing.T) {
	brokers := startClusterBrokers(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i, b := range brokers {
		node, owners := b.ClusterNode()
		if node == nil || owners == nil || node.Name() != fmt.Sprintf("n%d", i) {
			t.Fatalf("node %d: started without its node and owners' bucket (%v, %v)", i, node, owners)
		}
	}
	_, owners := brokers[0].ClusterNode()
	claim, _, err := owners.Claim(ctx, "c1")
	if err != nil {
		t.Fatal(err)
	}
	// A replica answers reads (the bucket's direct get) once it has
	// applied the claim, a moment after the claim is acknowledged.
	for i, b := range brokers[1:] {
		_, o := b.ClusterNode()
		testutil.Eventually(t, 10*time.Second, fmt.Sprintf("node %d to read c1's owner as %+v", i+1, claim), func() bool {
			got, ok, err := o.Get(ctx, "c1")
			return err == nil && ok && got == claim
		})
	}
}

// TestClusterOneNode: a cluster of one — no routes, replicas 1 — starts
// alone, keeps its JetStream state in data_dir/cluster beside the store,
// and starts again on it: the store opens beside the cluster's state, and
// the owners' bucket still has what was claimed.
func TestClusterOneNode(t *testing.T) {
	dir := t.TempDir()
	cc := broker.ClusterConfig{Name: "solo", Listen: testutil.FreeAddr(t), Replicas: 1}
	start := func() *broker.Broker {
		t.Helper()
		b, err := broker.New(clusterBroker(t, "only", dir, cc))
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Start(); err != nil {
			t.Fatalf("Start: %v", err)
		}
		return b
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b := start()
	_, owners := b.ClusterNode()
	claim, _, err := owners.Claim(ctx, "c1")
	if err != nil {
		t.Fatal(err)
	}
	closeBroker(t, b)
	if _, err := os.Stat(filepath.Join(dir, "cluster", "jetstream")); err != nil {
		t.Errorf("no JetStream state in data_dir/cluster: %v", err)
	}

	b = start()
	defer closeBroker(t, b)
	_, owners = b.ClusterNode()
	if got, ok, err := owners.Get(ctx, "c1"); err != nil || !ok || got != claim {
		t.Errorf("after a restart c1's owner is %+v (%v, %v), want %+v", got, ok, err, claim)
	}
}

// TestClusterWithoutSection: a broker without a cluster section has no
// node, and one whose section cannot work is refused by New, naming the
// key.
func TestClusterWithoutSection(t *testing.T) {
	b, _ := testutil.StartBroker(t, nil)
	if node, owners := b.ClusterNode(); node != nil || owners != nil {
		t.Errorf("a broker without Cluster has a node %v and owners %v", node, owners)
	}
	cfg := broker.DefaultConfig()
	cfg.Cluster = &broker.ClusterConfig{Name: "c", Node: "a", Listen: "127.0.0.1:7422", Replicas: 1}
	_, err := broker.New(cfg) // no data_dir
	if err == nil || !strings.HasPrefix(err.Error(), "cluster: ") || !strings.Contains(err.Error(), "data_dir") {
		t.Errorf("a cluster without data_dir: %v, want an error naming cluster and data_dir", err)
	}
	cfg.DataDir = t.TempDir()
	cfg.Cluster.Routes = []string{"127.0.0.1:7422"}
	if _, err := broker.New(cfg); err == nil || !strings.HasPrefix(err.Error(), "cluster.routes: ") {
		t.Errorf("a route to itself: %v, want an error naming cluster.routes", err)
	}
}
