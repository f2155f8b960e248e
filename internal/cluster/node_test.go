package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// freeAddrs returns n distinct loopback addresses whose ports were free a
// moment ago: on 127.0.0.2, not 127.0.0.1, where the nodes' client
// listeners take ports of the kernel's choosing, and held together until
// all are picked (see testutil.RouteAddrs, which this package cannot
// import).
func freeAddrs(t *testing.T, n int) []string {
	t.Helper()
	addrs := make([]string, n)
	for i := range addrs {
		l, err := net.Listen("tcp", "127.0.0.2:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		addrs[i] = l.Addr().String()
	}
	return addrs
}

// startCluster starts n embedded nodes, each routing to the others, and
// closes them when the test ends.
func startCluster(t *testing.T, n int) []*Node {
	t.Helper()
	addrs := freeAddrs(t, n)
	nodes := make([]*Node, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i := range nodes {
		var routes []string
		for j, a := range addrs {
			if j != i {
				routes = append(routes, a)
			}
		}
		cfg := Config{Settings: Settings{Name: "test", Node: fmt.Sprintf("n%d", i), Listen: addrs[i], Routes: routes,
			Replicas: min(3, n)}, DataDir: t.TempDir(), Logger: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel).With().Str("node", fmt.Sprint(i)).Logger()}
		wg.Add(1)
		go func() { // a clustered JetStream needs its peers up to elect a leader
			defer wg.Done()
			nodes[i], errs[i] = Start(ctx, cfg)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			for _, nd := range nodes {
				if nd != nil {
					nd.Close()
				}
			}
			t.Fatalf("node %d: %v", i, err)
		}
	}
	t.Cleanup(func() {
		for _, nd := range nodes {
			nd.Close()
		}
	})
	return nodes
}

// TestClusterRoutes: three embedded nodes form one NATS cluster: a message
// published on one reaches a subscriber on another, by subject.
func TestClusterRoutes(t *testing.T) {
	nodes := startCluster(t, 3)
	sub, err := nodes[2].Conn().SubscribeSync("shoal.m.a.>")
	if err != nil {
		t.Fatal(err)
	}
	if err := nodes[2].Conn().Flush(); err != nil {
		t.Fatal(err)
	}
	subj, _ := Subject(nil, "shoal", "a/b c")
	deadline := time.Now().Add(10 * time.Second)
	for {
		// Interest takes a moment to cross the routes: publish until it
		// arrives.
		if err := nodes[0].Conn().Publish(string(subj), []byte("hello")); err != nil {
			t.Fatal(err)
		}
		m, err := sub.NextMsg(100 * time.Millisecond)
		if err == nil {
			if topic, ok := Topic("shoal", m.Subject); !ok || topic != "a/b c" || string(m.Data) != "hello" {
				t.Fatalf("got %q %q", m.Subject, m.Data)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("nothing crossed the cluster in 10 s")
		}
	}
}

// TestOwnersRace: twenty claims of one client id at once, spread over
// three nodes, each get an epoch of their own; the bucket ends with
// exactly one owner, the claim with the highest epoch, and every node's
// watcher sees it last.
func TestOwnersRace(t *testing.T) {
	nodes := startCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	owners := make([]*Owners, len(nodes))
	var mu sync.Mutex
	last := make([]Owner, len(nodes)) // what each node's watcher saw last
	for i, nd := range nodes {
		o, err := nd.OpenOwners(ctx)
		if err != nil {
			t.Fatal(err)
		}
		owners[i] = o
		if err := o.Watch(ctx, func(id string, ow Owner) {
			if id == "dev/1 $x" {
				mu.Lock()
				last[i] = ow
				mu.Unlock()
			}
		}); err != nil {
			t.Fatal(err)
		}
	}
	claims := make([]Owner, 20)
	var wg sync.WaitGroup
	for k := range claims {
		wg.Add(1)
		go func() {
			defer wg.Done()
			now, _, err := owners[k%3].Claim(ctx, "dev/1 $x")
			if err != nil {
				t.Error(err)
			}
			claims[k] = now
		}()
	}
	wg.Wait()
	seen := map[uint64]bool{}
	var top Owner
	for _, c := range claims {
		if seen[c.Epoch] {
			t.Fatalf("two claims got epoch %d", c.Epoch)
		}
		seen[c.Epoch] = true
		if c.Epoch > top.Epoch {
			top = c
		}
	}
	if top.Epoch != uint64(len(claims)) {
		t.Errorf("highest epoch %d after %d claims", top.Epoch, len(claims))
	}
	got, ok, err := owners[1].Get(ctx, "dev/1 $x")
	if err != nil || !ok || got != top {
		t.Fatalf("owner %+v (%v, %v), want the highest claim %+v", got, ok, err, top)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		done := last[0] == top && last[1] == top && last[2] == top
		saw := append([]Owner(nil), last...)
		mu.Unlock()
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("watchers saw %+v last, want %+v on every node", saw, top)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestOwnersClaimOnCondition: a claim made on the owner a node read
// (Sessions.Reclaim, for a node settling its stored sessions) takes the
// session only while that is still its owner; one that a client claimed
// elsewhere since, or that has no owner any more, stays as it is. Without
// the condition, a node back from a freeze took a session its client had
// just claimed on another node, and the client's connection was taken
// over (380 messages lost in a freeze run).
func TestOwnersClaimOnCondition(t *testing.T) {
	nodes := startCluster(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var owners [2]*Owners
	for i, nd := range nodes {
		o, err := nd.OpenOwners(ctx)
		if err != nil {
			t.Fatal(err)
		}
		owners[i] = o
	}
	read, _, err := owners[0].Claim(ctx, "c")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := owners[1].claim(ctx, "c", &read, false); err != nil {
		t.Fatalf("a claim on the owner as read: %v", err)
	}
	if _, _, err := owners[0].claim(ctx, "c", &read, false); !errors.Is(err, ErrOwnerChanged) {
		t.Fatalf("a claim on an owner that changed since: %v, want ErrOwnerChanged", err)
	}
	if got, ok, err := owners[0].Get(ctx, "c"); err != nil || !ok || got.Node != "n1" || got.Epoch != 2 {
		t.Fatalf("owner %+v (%v, %v), want n1's claim, epoch 2", got, ok, err)
	}
	if _, _, err := owners[0].claim(ctx, "none", &read, false); !errors.Is(err, ErrOwnerChanged) {
		t.Fatalf("a claim on an owner of a session that has none: %v, want ErrOwnerChanged", err)
	}
	// A rescue claim, from n1's claim as read.
	n1 := Owner{Node: "n1", Epoch: 2}
	if now, ok, err := owners[0].ClaimFrom(ctx, "c", n1); err != nil || !ok || now != (Owner{Node: "n0", Epoch: 3, Rescue: true}) {
		t.Fatalf("a rescue claim from %+v: %+v (%v, %v), want n0's rescue claim, epoch 3", n1, now, ok, err)
	}
	if now, ok, err := owners[1].ClaimFrom(ctx, "c", n1); err != nil || ok {
		t.Fatalf("a second rescue claim from %+v: %+v (%v, %v), want none", n1, now, ok, err)
	}
}

// TestOwnersOpenTogether: three nodes open the owners' bucket at the
// same moment, as brokers started together do, and each gets it within
// the bounded time (each waited out its whole context when an attempt
// that got no answer was not tried again).
func TestOwnersOpenTogether(t *testing.T) {
	nodes := startCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, nd := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = nd.OpenOwners(ctx)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("node %d: %v", i, err)
		}
	}
}

// TestOneNode: a node without routes runs JetStream on its own
// (replicas 1), as a one-node cluster does, and claims sessions.
func TestOneNode(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := Start(ctx, Config{Settings: Settings{Name: "t", Node: "solo", Listen: freeAddrs(t, 1)[0], Replicas: 1}, DataDir: t.TempDir(),
		Logger: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	o, err := n.OpenOwners(ctx)
	if err != nil {
		t.Fatal(err)
	}
	first, before, err := o.Claim(ctx, "c1")
	if err != nil || first.Epoch != 1 || before.Node != "" {
		t.Fatalf("first claim: %+v, before %+v, %v", first, before, err)
	}
	second, before, err := o.Claim(ctx, "c1")
	if err != nil || second.Epoch != 2 || before != first {
		t.Fatalf("second claim: %+v, before %+v, %v", second, before, err)
	}
}

// TestConfigValidate: bad cluster settings name their key.
func TestConfigValidate(t *testing.T) {
	good := Config{Settings: Settings{Name: "c", Node: "a", Listen: "127.0.0.1:7422", Routes: []string{"127.0.0.1:7423"}, Replicas: 2}, DataDir: "d"}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		edit func(*Config)
		want string
	}{
		{func(c *Config) { c.Name = "a b" }, "cluster.name"},
		{func(c *Config) { c.Node = "" }, "cluster.node"},
		{func(c *Config) { c.Replicas = 0 }, "cluster.replicas"},
		{func(c *Config) { c.Listen = "7422" }, "cluster.listen"},
		{func(c *Config) { c.Routes = []string{"h:99999"} }, "cluster.routes"},
		{func(c *Config) { c.DataDir = "" }, "data_dir"},
		{func(c *Config) { c.NATSURL = "nats://h:4222" }, "cluster.nats_url"},
		{func(c *Config) { c.Routes = []string{c.Listen} }, "cluster.routes"},
		{func(c *Config) { c.Routes = nil }, "cluster.replicas: 2 is more than the 1 node"},
	} {
		c := good
		tc.edit(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want an error naming %s", c, err, tc.want)
		}
	}
}

// TestDefaultReplicas: three nodes routing to each other replicate 3
// ways, a lone node 1, and neither is more than Validate allows.
func TestDefaultReplicas(t *testing.T) {
	for _, tc := range []struct {
		routes   int
		external bool
		want     int
	}{{0, false, 1}, {1, false, 2}, {2, false, 3}, {4, false, 3}, {0, true, 3}} {
		if got := DefaultReplicas(tc.routes, tc.external); got != tc.want {
			t.Errorf("DefaultReplicas(%d, %v) = %d, want %d", tc.routes, tc.external, got, tc.want)
		}
	}
}

// TestNoPeersYet: OpenOwners retries JetStream's "no suitable peers for
// placement" (nodes started together, not yet peers), wrapped or not, and
// nothing else.
func TestNoPeersYet(t *testing.T) {
	noPeers := &jetstream.APIError{Code: 400, ErrorCode: 10005, Description: "no suitable peers for placement"}
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{noPeers, true},
		{fmt.Errorf("creating: %w", noPeers), true},
		{&jetstream.APIError{Code: 400, ErrorCode: jetstream.JSErrCodeBadRequest}, false},
		{errors.New("no suitable peers for placement"), false},
		{context.DeadlineExceeded, false},
	} {
		if got := noPeersYet(tc.err); got != tc.want {
			t.Errorf("noPeersYet(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// TestNATSLoggerRouteRetry: NATS's report that a route could not connect
// yet is a warning, other errors stay errors.
func TestNATSLoggerRouteRetry(t *testing.T) {
	var out bytes.Buffer
	l := natsLogger{zerolog.New(&out)}
	l.Errorf("Error trying to connect to route (attempt %v): %v", 1, "connection refused")
	l.Errorf("Error listening on router port: %d", 7422)
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], `"level":"warn"`) || !strings.Contains(lines[1], `"level":"error"`) {
		t.Fatalf("logged:\n%s\nwant the route retry at warn, the listener failure at error", out.String())
	}
}
