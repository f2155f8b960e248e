package cluster

import (
	"context"
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/rs/zerolog"
)

// TestStatus: each of three nodes lists the three, up, with the same meta
// leader marked; a node that leaves is then down on the others' lists;
// and the owners' records are counted by node, the whole bucket or up to
// a limit.
func TestStatus(t *testing.T) {
	nodes := startCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// states reads nd's Status as name → "up"/"down", and its meta leader.
	states := func(nd *Node) (map[string]string, string) {
		st, err := nd.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		leaders := 0
		for _, s := range st.Servers {
			got[s.Name] = map[bool]string{true: "up", false: "down"}[s.Up]
			if s.Self != (s.Name == nd.Name()) {
				t.Errorf("%s: server %s has Self %v", nd.Name(), s.Name, s.Self)
			}
			if s.Leader {
				leaders++
			}
		}
		if st.External || (st.MetaLeader != "" && leaders != 1) {
			t.Errorf("%s: external %v, %d servers marked leader for meta leader %q", nd.Name(), st.External, leaders, st.MetaLeader)
		}
		return got, st.MetaLeader
	}
	allUp := map[string]string{"n0": "up", "n1": "up", "n2": "up"}
	waitFor(t, "every node to list the three up, under one meta leader", func() bool {
		leader := ""
		for _, nd := range nodes {
			got, l := states(nd)
			if !maps.Equal(got, allUp) || l == "" || (leader != "" && l != leader) {
				return false
			}
			leader = l
		}
		return true
	})

	o0, err := nodes[0].OpenOwners(ctx)
	if err != nil {
		t.Fatal(err)
	}
	o1, err := nodes[1].OpenOwners(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		o  *Owners
		id string
	}{{o0, "a"}, {o0, "b"}, {o1, "c"}, {o1, "a"}} { // a goes over to n1
		if _, _, err := c.o.Claim(ctx, c.id); err != nil {
			t.Fatal(err)
		}
	}
	counts, complete, err := o0.CountByNode(ctx, 1000)
	if want := map[string]int{"n0": 1, "n1": 2}; err != nil || !complete || !maps.Equal(counts, want) {
		t.Errorf("CountByNode: %v (complete %v, %v), want %v", counts, complete, err, want)
	}
	counts, complete, err = o0.CountByNode(ctx, 2)
	if n := counts["n0"] + counts["n1"]; err != nil || complete || n != 2 {
		t.Errorf("CountByNode up to 2: %v (complete %v, %v), want 2 counted, incomplete", counts, complete, err)
	}

	nodes[2].Close()
	waitFor(t, "n0 and n1 to list n2 down", func() bool {
		for _, nd := range nodes[:2] {
			if got, _ := states(nd); got["n2"] != "down" || got["n0"] != "up" || got["n1"] != "up" {
				return false
			}
		}
		return true
	})
}

// TestStatusExternal: with an external NATS, Status lists the servers that
// hold the owners' bucket: here the one server, its leader.
func TestStatusExternal(t *testing.T) {
	srv, err := server.NewServer(&server.Options{ServerName: "ext", Host: "127.0.0.1", Port: server.RANDOM_PORT,
		JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	defer srv.Shutdown()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("the NATS server did not start")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := Start(ctx, Config{Settings: Settings{Name: "t", Node: "shoal1", NATSURL: srv.ClientURL(), Replicas: 1},
		Logger: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if _, err := n.OpenOwners(ctx); err != nil {
		t.Fatal(err)
	}
	st, err := n.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := []Server{{Name: "ext", Up: true, Leader: true}}; !st.External || st.MetaLeader != "" || len(st.Servers) != 1 || st.Servers[0] != want[0] {
		t.Errorf("Status: %+v, want external with servers %+v", st, want)
	}
}

// TestScanAfterClaims: a scan, or a Get, made right after a claim, on any
// node, has it, whichever of the bucket's replicas its consumer is placed
// on or would answer — the claims go round the three nodes, and the reads
// do too.
func TestScanAfterClaims(t *testing.T) {
	nodes := startCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	owners := make([]*Owners, len(nodes))
	for i, nd := range nodes {
		var err error
		if owners[i], err = nd.OpenOwners(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 60 {
		by, scanner := owners[i%3], owners[(i+1)%3]
		id := fmt.Sprintf("c%d", i%4)
		now, _, err := by.Claim(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		got, err := scanner.Select(ctx, func(Owner) bool { return true })
		if err != nil {
			t.Fatal(err)
		}
		if got[id] != now {
			t.Fatalf("claim %d: %s claimed %s (%+v); a scan on %s then read %+v", i, nodes[i%3].Name(), id, now, nodes[(i+1)%3].Name(), got[id])
		}
		if ow, _, err := owners[(i+2)%3].Get(ctx, id); err != nil || ow != now {
			t.Fatalf("claim %d: %s claimed %s (%+v); a Get on %s then read %+v (%v)", i, nodes[i%3].Name(), id, now, nodes[(i+2)%3].Name(), ow, err)
		}
	}
}
