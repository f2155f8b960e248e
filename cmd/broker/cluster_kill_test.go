package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoalmq/shoal/internal/testutil"
)

// TestClusterNodeKill: three broker processes form a cluster; a persistent
// subscriber's session is on node 1, offline, when node 1 is killed with
// SIGKILL in the middle of QoS 1 and QoS 2 traffic published on node 0.
// Every message node 0 acknowledged — those node 1 had stored for the
// session before it died, and those that went on to node 1's subject of
// the forward stream after — reaches the subscriber when it comes back on
// node 2, QoS 2 ones once each: the session is in the replicated copy,
// and a survivor rescues what was sent to the dead node (rescue_after
// 1s). So does the will of a client that was connected to node 1, which
// a survivor publishes.
//
// The clients are paho.golang's, as in TestCrashKeepsAcknowledged, whose
// subscriber and publisher this test shares.
//
// Once node 1 is gone, the streams it led elect new leaders, and what
// was on its way to them waits meanwhile: the publisher may hear nothing
// for 10 s and more (paho's PacketTimeout ends its wait for those; it
// goes on publishing, as a client would), so the test allows
// failoverDrain for the acknowledgements after the kill. make stress's
// TestClusterKillRounds kills at random points, any node.
func TestClusterNodeKill(t *testing.T) {
	procs, addrs := startClusterProcs(t, "kill", "1s")

	sub := subscribedOn(t, addrs, 1, 0)
	if err := sub.close(); err != nil { // offline from now on: node 1 keeps its queue
		t.Fatal(err)
	}

	// A client with a delayed will (1 s) is connected to node 1 when it
	// dies: a survivor publishes the will.
	const will = "will-k-q1"
	if _, err := connectWillerID(addrs[1], will, "kill-willer"); err != nil {
		t.Fatal(err)
	}
	pub, err := startPublisher(addrs[0], "k")
	if err != nil {
		t.Fatal(err)
	}
	logs := func() { logAll(t, procs) }
	pub.awaitMore(t, 300, crashDrain, logs, "before the kill")
	procs[1].kill()
	killedAt := pub.ackedCount()
	pub.awaitMore(t, 300, failoverDrain, func() { // on, with node 1 dead
		procs[0].dumpStacks() // where the publisher's node stalls
		logs()
	}, "after the kill")
	pub.stop()
	acked := pub.ackedList()

	start := time.Now()
	// As a client would, it tries again: the CONNECT waits for node 1's
	// rescue, which waits for JetStream to elect new leaders for what node
	// 1 led (seconds); meanwhile a claim may be refused (0x88, server
	// unavailable).
	for try := 1; ; try++ {
		prev := sub.c
		err := sub.connect(addrs[2], false)
		if err == nil {
			break
		}
		if try == 30 || sub.c != prev { // connected, without its session: no use trying again
			logs()
			t.Fatalf("subscriber on node 2: %v", err)
		}
		t.Logf("subscriber on node 2, try %d: %v", try, err)
		time.Sleep(time.Second)
	}
	// Node 0 sends what is published from now on to node 2 once its watch
	// of the interest bucket says so; until then, to node 1's subject,
	// where the rescuer no longer keeps the session (README, "What it
	// does not do yet"). Probe until one arrives, then the ends.
	if !probe(t, sub, addrs[0], "again") {
		logs()
		t.Fatal("node 0 never sent to the subscriber on node 2")
	}
	ends := []string{"end-q1", "end-q2"}
	if err := publishEnds(addrs[0], ends); err != nil {
		t.Fatal(err)
	}
	sub.await(append(acked, append(ends, will)...), 60*time.Second)
	lost := sub.missing(acked)
	got := sub.snapshot()
	dup2 := 0
	for p, n := range got {
		if n > 1 && strings.Contains(p, "-q2-") {
			dup2++
		}
	}
	t.Logf("%d published, %d acknowledged (%d before the kill), %d lost, QoS 2 duplicates %d; all in %v after the subscriber came back on node 2",
		pub.sent.Load(), len(acked), killedAt, len(lost), dup2, time.Since(start).Round(time.Millisecond))
	if len(lost) > 0 {
		t.Errorf("%d acknowledged messages lost, e.g. %v", len(lost), lost[:min(5, len(lost))])
		logs()
	}
	if dup2 > 0 {
		t.Errorf("%d QoS 2 messages delivered more than once", dup2)
	}
	if got[will] == 0 {
		t.Error("the will of a client connected to node 1 when it died was never published")
	}
	for _, e := range ends {
		if got[e] == 0 {
			t.Errorf("%s, published on node 0 after the subscriber came back on node 2, never arrived", e)
			logs()
		}
	}
	if err := sub.err(); err != nil {
		t.Error(err)
	}
	_ = sub.close()
}

// failoverDrain bounds the wait for a publisher's acknowledgements once a
// node of the cluster is gone: the streams it led elect new leaders
// (JetStream's elections take 4 to 9 s, after the missed heartbeats that
// start them), and what was on its way to them waits for its answer
// meanwhile (10 s at most: forwardAckTimeout, the replica's ackTimeout).
const failoverDrain = 45 * time.Second

// startClusterProcs starts three broker processes as one cluster (named
// name, rescue_after after), each routing to the other two, and returns
// them once they listen, with their MQTT addresses.
func startClusterProcs(t *testing.T, name, after string) ([]*brokerProc, []string) {
	t.Helper()
	bin := buildBroker(t)
	dir := t.TempDir()
	routes := testutil.RouteAddrs(t, 3)
	addrs := make([]string, 3)
	admins := make([]string, 3)
	procs := make([]*brokerProc, 3)
	for i := range addrs {
		addrs[i] = testutil.FreeAddr(t)
	}
	for i := range addrs {
		var others []string
		for j, r := range routes {
			if j != i {
				others = append(others, fmt.Sprintf("%q", r))
			}
		}
		logLevel := "info"
		if l := os.Getenv("SHOAL_CLUSTER_LOG"); l != "" {
			logLevel = l // to see a failing run closer
		}
		cfg := filepath.Join(dir, fmt.Sprintf("n%d.yaml", i))
		admins[i] = testutil.FreeAddr(t)
		conf := fmt.Sprintf("listen: %q\ndata_dir: %q\nlog_level: %s\nlog_format: json\nadmin_listen: %q\nallow_anonymous: true\nmax_queued: 1000000\n"+
			"cluster:\n  name: %s\n  node: n%d\n  listen: %q\n  routes: [%s]\n  rescue_after: %s\n",
			addrs[i], filepath.Join(dir, fmt.Sprintf("data%d", i)), logLevel, admins[i], name, i, routes[i], strings.Join(others, ", "), after)
		if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		procs[i] = spawnBroker(t, bin, "", "-c", cfg) // together: each waits for the others
		procs[i].admin = admins[i]
	}
	for i, p := range procs {
		p.waitListening(t, addrs[i])
	}
	return procs, addrs
}

// subscribedOn connects a crashSub, with a new session, to node on of
// addrs, and returns it once node from routes to it: a message published
// there before would match no one (no loss, but nothing to count on), so
// it probes until one arrives. expect are the DISCONNECT reason codes the
// test expects from the broker.
func subscribedOn(t *testing.T, addrs []string, on, from int, expect ...byte) *crashSub {
	t.Helper()
	sub := newCrashSub()
	sub.expect = expect
	if err := sub.connect(addrs[on], true); err != nil {
		t.Fatalf("subscriber on node %d: %v", on, err)
	}
	if !probe(t, sub, addrs[from], "probe") {
		t.Fatalf("node %d never got a message published on node %d", on, from)
	}
	return sub
}

// logAll logs each process's log and, of one still running, its cluster
// metrics.
func logAll(t *testing.T, procs []*brokerProc) {
	for i, p := range procs {
		t.Logf("node %d's log:\n%s", i, p.stderr.String())
		if m := p.clusterMetrics(); m != "" {
			t.Logf("node %d's cluster metrics:\n%s", i, m)
		}
	}
}

// clusterMetrics returns the shoal_cluster lines of p's /metrics, or ""
// when p has no admin listener or does not answer.
func (p *brokerProc) clusterMetrics() string {
	if p.admin == "" {
		return ""
	}
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + p.admin + "/metrics")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var b strings.Builder
	for line := range strings.Lines(string(body)) {
		if strings.HasPrefix(line, "shoal_cluster") {
			b.WriteString(line)
		}
	}
	return b.String()
}

// probeAll has a message published on each node of addrs reach each of
// subs: every node routes to every subscriber before a count starts.
func probeAll(t *testing.T, subs []*crashSub, addrs []string, logs func()) {
	t.Helper()
	for n := range addrs {
		for _, s := range subs {
			if !probe(t, s, addrs[n], fmt.Sprintf("probe%d", n)) {
				logs()
				t.Fatalf("%s never got a message published on node %d", s.id, n)
			}
		}
	}
}

// probe publishes QoS 1 messages on addr, a fifth of a second apart, until
// sub receives one; false if none arrives in 30s.
func probe(t *testing.T, sub *crashSub, addr, prefix string) bool {
	t.Helper()
	for i := range 150 {
		p := fmt.Sprintf("%s-q1-%d", prefix, i)
		if err := publishEnds(addr, []string{p}); err != nil {
			t.Fatal(err)
		}
		if len(sub.await([]string{p}, 200*time.Millisecond)) == 0 {
			return true
		}
	}
	return false
}
