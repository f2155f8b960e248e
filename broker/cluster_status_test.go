package broker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shoalmq/shoal/admin"
	"github.com/shoalmq/shoal/broker"
	"github.com/shoalmq/shoal/codec"
	"github.com/shoalmq/shoal/internal/testutil"
)

// httpGet returns url's body; it fails the test unless the answer is 200.
func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, body)
	}
	return string(body)
}

// apiCluster reads /api/cluster.
func apiCluster(t *testing.T, base string) broker.ClusterStatus {
	t.Helper()
	var cs broker.ClusterStatus
	if body := httpGet(t, base+"/api/cluster"); json.Unmarshal([]byte(body), &cs) != nil {
		t.Fatalf("/api/cluster: %s", body)
	}
	return cs
}

// metric is the value of the sample named (with its labels) exactly so in
// a /metrics body; ok is false when there is none.
func metric(body, sample string) (v float64, ok bool) {
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(sample) + ` (\S+)$`).FindStringSubmatch(body)
	if m == nil {
		return 0, false
	}
	v, err := strconv.ParseFloat(m[1], 64)
	return v, err == nil
}

// TestClusterStatusSingleNode: a broker without a cluster section says so,
// in the admin API's own words, and has no cluster metrics or $SYS
// cluster topics.
func TestClusterStatusSingleNode(t *testing.T) {
	b, addr := testutil.StartBroker(t, func(c *broker.Config) { c.SysInterval = 50 * time.Millisecond })
	base := testutil.StartAdmin(t, b, admin.Config{}, nil)
	if body := strings.Join(strings.Fields(httpGet(t, base+"/api/cluster")), ""); body != `{"enabled":false}` {
		t.Errorf("/api/cluster on a single node: %s, want {\"enabled\": false}", body)
	}
	if body := httpGet(t, base+"/metrics"); strings.Contains(body, "shoal_cluster_") {
		t.Error("/metrics of a single node has shoal_cluster_ metrics")
	}
	sub, _ := testutil.DialConnect(t, addr, codec.V311, codec.Connect{ClientID: []byte("sys"), CleanStart: true})
	sub.Subscribe(1, "$SYS/broker/#", 0)
	seen := map[string]bool{}
	for !seen["$SYS/broker/uptime"] { // a round's first topic; the retained ones come first
		p, _ := sub.ExpectPublish(testutil.Wait)
		seen[string(p.Topic)] = true
		if strings.HasPrefix(string(p.Topic), "$SYS/broker/cluster/") {
			t.Fatalf("a single node published %s", p.Topic)
		}
	}
}

// TestClusterStatus: three nodes each report the three up under one meta
// leader — in ClusterStatus, /api/cluster, /metrics and $SYS — count the
// messages that cross between them on both ends, time the replicated
// writes, count each node's sessions by the owners' bucket as clients
// connect and move, and report a node that leaves as down.
func TestClusterStatus(t *testing.T) {
	bs := startClusterBrokersWith(t, 3, func(c *broker.Config) { c.SysInterval = 100 * time.Millisecond })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	states := func(cs broker.ClusterStatus) string {
		var s []string
		for _, n := range cs.Nodes {
			s = append(s, fmt.Sprintf("%s:%s", n.Name, n.State))
		}
		return strings.Join(s, " ")
	}
	for i, b := range bs {
		testutil.Eventually(t, 10*time.Second, fmt.Sprintf("node %d to see the three up under a meta leader", i), func() bool {
			cs := b.ClusterStatus(ctx)
			return states(cs) == "n0:up n1:up n2:up" && cs.MetaLeader != "" && cs.Error == ""
		})
	}
	leader := bs[0].ClusterStatus(ctx).MetaLeader
	for i, b := range bs {
		cs := b.ClusterStatus(ctx)
		if !cs.Enabled || cs.Name != "test" || cs.Node != fmt.Sprintf("n%d", i) || cs.NATS != "embedded" || cs.MetaLeader != leader {
			t.Errorf("node %d: %+v; want cluster test, node n%d, embedded, meta leader %s", i, cs, i, leader)
		}
		for _, n := range cs.Nodes {
			if n.Self != (n.Name == cs.Node) || n.Leader != (n.Name == leader) {
				t.Errorf("node %d lists %+v", i, n)
			}
		}
	}

	// Messages from n0 to a subscriber on n1; a retained one too.
	sub, _ := testutil.DialConnect(t, bs[1].Addr().String(), codec.V311, codec.Connect{ClientID: []byte("s1"), CleanStart: true})
	sub.Subscribe(1, "x/#", 1)
	awaitInterest(t, "x/y", map[*broker.Broker]int{bs[0]: 1})
	pub, _ := testutil.DialConnect(t, bs[0].Addr().String(), codec.V311, codec.Connect{ClientID: []byte("p0"), CleanStart: true})
	const n = 5
	for i := range n {
		pub.SendPublish(codec.Publish{Topic: []byte("x/y"), QoS: 1, PacketID: uint16(i + 1), Retain: i == n-1, Payload: []byte("m")})
		pub.ExpectAck(codec.PUBACK, uint16(i+1), p5Wait)
	}
	for range n {
		p, _ := sub.ExpectPublish(p5Wait)
		if p.QoS > 0 {
			sub.SendAck(codec.PUBACK, p.PacketID)
		}
	}
	t0, t1 := bs[0].ClusterStatus(ctx), bs[1].ClusterStatus(ctx)
	if t0.Traffic.MessagesSent != n || t0.Traffic.MessagesReceived != 0 || t1.Traffic.MessagesReceived != n || t1.Traffic.MessagesSent != 0 {
		t.Errorf("n0 %+v, n1 %+v: want %d sent by n0, received by n1", t0.Traffic, t1.Traffic, n)
	}
	if t0.Traffic.PeerSubscriptions != 1 || t1.Traffic.PeerSubscriptions != 0 {
		t.Errorf("peer subscriptions: n0 %d, n1 %d; want n1's x/# on n0", t0.Traffic.PeerSubscriptions, t1.Traffic.PeerSubscriptions)
	}
	if r := t0.Replication["retained"]; r == nil || r.Count != 1 {
		t.Errorf("n0's retained writes timed: %+v, want 1", r)
	}
	if r := t1.Replication["interest"]; r == nil || r.Count < 1 {
		t.Errorf("n1's interest writes timed: %+v, want its x/#", r)
	}
	if r := t0.Replication["forward"]; r == nil || r.Count != n {
		t.Errorf("n0's QoS 1 forwards timed: %+v, want %d", r, n)
	}

	// Sessions by owner: a CONNECT makes its node the session's owner.
	// With p0 on n0 and s1 on n1: a and b connect to n0, c to n1, then b
	// again to n2, which takes it over.
	for _, c := range []struct {
		b  *broker.Broker
		id string
	}{{bs[0], "a"}, {bs[0], "b"}, {bs[1], "c"}, {bs[2], "b"}} {
		testutil.DialConnect(t, c.b.Addr().String(), codec.V311, codec.Connect{ClientID: []byte(c.id), KeepAlive: 60})
	}
	bs[2].RecountOwners()
	cs := bs[2].ClusterStatus(ctx)
	sessions := map[string]int{}
	for _, nd := range cs.Nodes {
		sessions[nd.Name] = nd.Sessions
	}
	if want := map[string]int{"n0": 2, "n1": 2, "n2": 1}; cs.Owners == nil || cs.Owners.Counted != 5 || !cs.Owners.Complete || !maps.Equal(sessions, want) {
		t.Errorf("n2 counts sessions %v (%+v), want %v", sessions, cs.Owners, want)
	}

	// The admin API and the metrics say the same.
	base := testutil.StartAdmin(t, bs[0], admin.Config{}, nil)
	bs[0].RecountOwners()
	api := apiCluster(t, base)
	if api.Name != "test" || api.Node != "n0" || states(api) != "n0:up n1:up n2:up" || api.Traffic == nil || api.Traffic.MessagesSent != n {
		t.Errorf("/api/cluster: %+v", api)
	}
	body := httpGet(t, base+"/metrics")
	for sample, want := range map[string]float64{
		"shoal_cluster_messages_sent_total":                                     n,
		"shoal_cluster_messages_received_total":                                 0,
		"shoal_cluster_messages_dropped_total":                                  0,
		"shoal_cluster_messages_not_stored_total":                               0,
		"shoal_cluster_retained_failures_total":                                 0,
		"shoal_cluster_rescued_messages_total":                                  0,
		"shoal_cluster_passed_on_messages_total":                                0,
		"shoal_cluster_nodes_up":                                                3,
		"shoal_cluster_cut_off":                                                 0,
		`shoal_cluster_node_up{node="n2"}`:                                      1,
		`shoal_cluster_node_sessions{node="n0"}`:                                2,
		`shoal_cluster_node_sessions{node="n1"}`:                                2,
		`shoal_cluster_node_sessions{node="n2"}`:                                1,
		"shoal_cluster_peer_subscriptions":                                      1,
		`shoal_cluster_replication_seconds_count{bucket="retained"}`:            1,
		`shoal_cluster_replication_seconds_bucket{bucket="retained",le="+Inf"}`: 1,
	} {
		if got, ok := metric(body, sample); !ok || got != want {
			t.Errorf("/metrics: %s = %v (present %v), want %v", sample, got, ok, want)
		}
	}
	if _, ok := metric(body, `shoal_cluster_replication_seconds_count{bucket="interest"}`); !ok {
		t.Error("/metrics lacks the interest bucket's writes") // n0 has none of its own: n1's are counted above
	}

	// $SYS, on n0: its own view.
	sys, _ := testutil.DialConnect(t, bs[0].Addr().String(), codec.V311, codec.Connect{ClientID: []byte("sys"), CleanStart: true})
	sys.Subscribe(1, "$SYS/broker/cluster/#", 0)
	want := map[string]string{"name": "test", "node": "n0", "leader": leader, "nodes": "3", "messages/sent": strconv.Itoa(n),
		"messages/received": "0", "messages/dropped": "0", "messages/not_stored": "0", "retained/failures": "0", "subscriptions/remote": "1"}
	got := map[string]string{}
	for deadline := time.Now().Add(10 * time.Second); len(got) < len(want) || !maps.Equal(got, want); {
		if time.Now().After(deadline) {
			t.Fatalf("$SYS/broker/cluster/ on n0: %v, want %v", got, want)
		}
		p, _ := sys.ExpectPublish(testutil.Wait)
		got[strings.TrimPrefix(string(p.Topic), "$SYS/broker/cluster/")] = string(p.Payload)
	}

	// n2 leaves: the others see it down.
	stop(t, bs[2])
	for i, b := range bs[:2] {
		testutil.Eventually(t, 10*time.Second, fmt.Sprintf("node %d to see n2 down", i), func() bool {
			return states(b.ClusterStatus(ctx)) == "n0:up n1:up n2:down"
		})
	}
	if got, _ := metric(httpGet(t, base+"/metrics"), `shoal_cluster_node_up{node="n2"}`); got != 0 {
		t.Errorf(`shoal_cluster_node_up{node="n2"} = %v after n2 left, want 0`, got)
	}
}
