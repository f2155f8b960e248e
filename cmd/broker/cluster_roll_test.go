package main

import (
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestClusterRollingRestart: three broker processes form a cluster, and a
// release rolls out: node 0, then 1, then 2 is stopped with SIGTERM and
// started again on its data directory, while a publisher on a node that
// stays up sends QoS 1 and QoS 2 messages. A persistent subscriber is
// connected to each node, and one more is offline, its session on node 1.
// A subscriber whose node stops (DISCONNECT 0x8B, server shutting down)
// resumes its session on the next node; the offline one comes back at
// the end. Each of them gets every message a publisher had acknowledged,
// QoS 2 ones once each.
//
// The clients are paho.golang's, as in TestClusterNodeKill.
//
// What it takes (package cluster, handover.go): the rescuer of a stopped
// node passes on to a session's new node what still comes for the
// session at the stopped node's subject, the new node holds that until
// the session is adopted, and delivers each message once, by its
// Origin; a restarted node reads a session with thousands of messages
// from the copy in time. Without the passing on, each subscriber that
// moved lost hundreds of the messages published while it moved (659,
// 358 and 106 of 8,449 in one run); without the window open before the
// adoption, 3 to 7 QoS 2 messages came twice; with the copy read one
// record at a time, the offline subscriber lost what its node's rescuer
// kept for it (5,468 of 11,347).
//
// The copy's receipts (package replica) keep a QoS 2 message completed
// on one node from coming again after the session's next move (one to
// thirteen per subscriber in three of five runs before them); the repair
// of a copy JetStream did not confirm, and the lingers counted by the
// stream's time, keep the offline session's last messages (one and five
// lost in two of those runs) and the movers' (426 in one later run).
//
// It runs in make stress (SHOAL_CLUSTER_ROLL=1), not in make test: it
// takes a minute or two, and does not pass every run yet. Of the last
// five, one delivered seven QoS 2 messages twice to the offline session,
// and in one a rescue read its gone node's subject slower than the
// publisher filled it (README, "What it does not do yet").
func TestClusterRollingRestart(t *testing.T) {
	if os.Getenv("SHOAL_CLUSTER_ROLL") == "" {
		t.Skip("in make stress: run with SHOAL_CLUSTER_ROLL=1")
	}
	procs, addrs := startClusterProcs(t, "roll", "1s")
	var earlier []string // the logs of the runs that were stopped
	logs := func() {
		for _, l := range earlier {
			t.Log(l)
		}
		logAll(t, procs)
	}

	subs := make([]*crashSub, 3)
	for i := range subs {
		subs[i] = newCrashSubID(fmt.Sprintf("roll-sub-%d", i))
		subs[i].expect = []byte{0x8B} // its node stops
		if err := subs[i].connect(addrs[i], true); err != nil {
			t.Fatalf("subscriber on node %d: %v", i, err)
		}
	}
	offline := newCrashSubID("roll-offline")
	if err := offline.connect(addrs[1], true); err != nil {
		t.Fatal(err)
	}
	all := append(subs[:3:3], offline)
	probeAll(t, all, addrs, logs)
	if err := offline.close(); err != nil {
		t.Fatal(err)
	}

	on := make([]int, len(subs)) // the node each subscriber is connected to
	for i := range on {
		on[i] = i
	}
	var acked []string
	var published int64
	start := time.Now()
	for x := range procs {
		// The publisher is on a node that stays up while x restarts: the
		// one restarted last, or, first, the last one.
		from := (x + 2) % 3
		pub, err := startPacedPublisher(addrs[from], fmt.Sprintf("r%d", x), rollRate)
		if err != nil {
			logs()
			t.Fatalf("publisher on node %d: %v", from, err)
		}
		pub.awaitMore(t, 200, crashDrain, logs, fmt.Sprintf("publisher on node %d", from))
		stopped := time.Now()
		procs[x].stop(t)
		pub.awaitMore(t, 200, failoverDrain, logs, fmt.Sprintf("node %d stopped, publisher on node %d", x, from))
		for i, s := range subs {
			if on[i] != x {
				continue
			}
			if err := s.gone(); err != nil {
				t.Fatal(err)
			}
			on[i] = (x + 1) % 3
			resume(t, s, addrs[on[i]], logs)
		}
		<-procs[x].done
		earlier = append(earlier, fmt.Sprintf("node %d's log before its restart:\n%s", x, procs[x].stderr.String()))
		procs[x] = procs[x].again(t)
		procs[x].waitListening(t, addrs[x])
		t.Logf("node %d stopped and serving again in %v", x, time.Since(stopped).Round(time.Millisecond))
		// Node x is back: a message published there reaches everyone
		// connected.
		for i, s := range subs {
			if !probe(t, s, addrs[x], fmt.Sprintf("back%d", x)) {
				logs()
				t.Fatalf("subscriber %d (node %d) never got a message published on node %d after it restarted", i, on[i], x)
			}
		}
		pub.awaitMore(t, 200, failoverDrain, logs, fmt.Sprintf("node %d restarted, publisher on node %d", x, from))
		pub.stop()
		acked = append(acked, pub.ackedList()...)
		published += pub.sent.Load()
	}
	resume(t, offline, addrs[2], logs)
	ends := []string{"end-q1", "end-q2"}
	if err := publishEnds(addrs[0], ends); err != nil {
		t.Fatal(err)
	}
	want := append(acked, ends...)
	for i, s := range all {
		s.await(want, 60*time.Second)
		lost := s.missing(want)
		var dups []string
		for p, n := range s.snapshot() {
			if n > 1 && strings.Contains(p, "-q2-") {
				dups = append(dups, p)
			}
		}
		dup2 := len(dups)
		t.Logf("subscriber %s: %d published, %d acknowledged, %d lost, QoS 2 duplicates %d",
			s.id, published, len(acked), len(lost), dup2)
		if len(lost) > 0 {
			t.Errorf("subscriber %d: %d acknowledged messages lost: %s", i, len(lost), spans(lost))
		}
		if dup2 > 0 {
			t.Errorf("subscriber %d: %d QoS 2 messages delivered more than once: %s", i, dup2, spans(dups))
			for _, p := range dups {
				t.Logf("%s: %q", p, s.receipts(p))
			}
		}
		if err := s.err(); err != nil {
			t.Error(err)
		}
	}
	if t.Failed() {
		logs()
	}
	t.Logf("rolled in %v", time.Since(start).Round(time.Millisecond))
	for _, s := range all {
		_ = s.close()
	}
}

// rollRate is the rolling restart's publishing rate, messages a second:
// one the subscribers (Receive Maximum crashSubWindow) keep up with, so
// that a message published once a node is back does not wait behind a
// backlog of thousands.
const rollRate = 300

// resume reconnects s to addr, resuming its session, trying again for
// 30 s while the cluster refuses (0x88: the session's last owner has not
// answered yet, or its rescue is under way).
func resume(t *testing.T, s *crashSub, addr string, logs func()) {
	t.Helper()
	for try := 1; ; try++ {
		prev := s.c
		err := s.connect(addr, false)
		if err == nil {
			return
		}
		if try == 30 || s.c != prev { // connected, without its session: no use trying again
			logs()
			t.Fatalf("%s on %s: %v", s.id, addr, err)
		}
		t.Logf("%s on %s, try %d: %v", s.id, addr, try, err)
		time.Sleep(time.Second)
	}
}

// spans sums up payloads such as "r1-q2-17" by their prefix: the numbers
// of each, as ranges.
func spans(payloads []string) string {
	nums := map[string][]int{}
	for _, p := range payloads {
		i := strings.LastIndexByte(p, '-')
		n, err := strconv.Atoi(p[i+1:])
		if i < 0 || err != nil {
			nums[p] = append(nums[p], -1)
			continue
		}
		nums[p[:i]] = append(nums[p[:i]], n)
	}
	var out []string
	for _, prefix := range slices.Sorted(maps.Keys(nums)) {
		ns := nums[prefix]
		slices.Sort(ns)
		var rs []string
		for i := 0; i < len(ns); {
			j := i
			for j+1 < len(ns) && ns[j+1] <= ns[j]+2 { // a prefix has every other number
				j++
			}
			rs = append(rs, fmt.Sprintf("%d-%d", ns[i], ns[j]))
			i = j + 1
		}
		out = append(out, fmt.Sprintf("%s: %d in %s", prefix, len(ns), strings.Join(rs, ",")))
	}
	return strings.Join(out, "; ")
}
