package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
)

// TestClusterKillRounds is make stress's randomized cluster test: each of
// SHOAL_CLUSTER_ROUNDS rounds starts three broker processes as a cluster,
// with a persistent subscriber connected to each node, one more offline
// (its session on a node at random) and a client with a delayed will
// (1 s) on each node; a publisher on a node at random sends QoS 1 and 2
// messages; at a point chosen at random (after 50 to 600 acknowledgements)
// a node chosen at random — the publisher's own, a third of the time — is
// killed with SIGKILL. Publishing goes on from a survivor; the dead
// node's subscriber resumes its session on a survivor; the dead node
// starts again; the offline subscriber comes back. Every subscriber must
// get every acknowledged message, QoS 2 ones once each, and the dead
// node's will. The counts over all rounds are printed at the end, with the
// time from the kill to the dead node's subscriber being served elsewhere.
//
// The clients are paho.golang's (crashSub, crashPub). The publisher stops
// before the dead node's subscriber resumes, so that the rounds count
// the kill alone; TestClusterRollingRestart moves sessions under traffic.
//
// Twenty rounds take about eight minutes, so make test leaves them to
// make stress and kills one node once instead (TestClusterNodeKill).
func TestClusterKillRounds(t *testing.T) {
	rounds, _ := strconv.Atoi(os.Getenv("SHOAL_CLUSTER_ROUNDS"))
	if rounds <= 0 {
		t.Skip("make stress runs it (SHOAL_CLUSTER_ROUNDS=20): a few minutes")
	}
	seed := uint64(time.Now().UnixNano())
	if s, err := strconv.ParseUint(os.Getenv("SHOAL_CLUSTER_SEED"), 10, 64); err == nil {
		seed = s
	}
	t.Logf("seed %d (SHOAL_CLUSTER_SEED to run the same rounds again)", seed)
	rng := rand.New(rand.NewPCG(seed, seed))
	var total roundCounts
	for r := range rounds {
		var c roundCounts
		ok := t.Run(fmt.Sprintf("round%d", r), func(t *testing.T) { c = killRound(t, rng) })
		total.add(c)
		if !ok {
			break
		}
	}
	med, worst := spread(total.takeovers)
	rmed, rworst := spread(total.resumes)
	t.Logf("%d rounds: %d published, %d acknowledged, %d refused, %d unanswered; %d lost, %d QoS 2 duplicates (over 4 subscribers each); wills %d of %d; the dead node's subscriber served on a survivor after median %v (at most %v) from the kill, its reconnection median %v (at most %v)",
		total.rounds, total.published, total.acked, total.refused, total.unanswered, total.lost, total.dup2,
		total.wills, total.rounds*4, med, worst, rmed, rworst)
}

// roundCounts are one round's counts, or all rounds'.
type roundCounts struct {
	rounds, published, acked, refused, unanswered, lost, dup2, wills int
	// takeovers: from the kill to the dead node's subscriber served on a
	// survivor (its publisher's acknowledgements after the kill come
	// first); resumes: that subscriber's reconnection alone.
	takeovers, resumes []time.Duration
}

func (c *roundCounts) add(o roundCounts) {
	c.rounds += o.rounds
	c.published += o.published
	c.acked += o.acked
	c.refused += o.refused
	c.unanswered += o.unanswered
	c.lost += o.lost
	c.dup2 += o.dup2
	c.wills += o.wills
	c.takeovers = append(c.takeovers, o.takeovers...)
	c.resumes = append(c.resumes, o.resumes...)
}

// spread is the median and the largest of ds, sorted in place.
func spread(ds []time.Duration) (med, worst time.Duration) {
	if len(ds) == 0 {
		return 0, 0
	}
	slices.Sort(ds)
	return ds[len(ds)/2].Round(time.Millisecond), ds[len(ds)-1].Round(time.Millisecond)
}

// killRound is one round of TestClusterKillRounds.
func killRound(t *testing.T, rng *rand.Rand) roundCounts {
	procs, addrs := startClusterProcs(t, "rounds", "1s")
	logs := func() { logAll(t, procs) }
	from, victim := rng.IntN(3), rng.IntN(3)
	if rng.IntN(3) != 0 { // a third of the time, the publisher's own node
		victim = (from + 1 + rng.IntN(2)) % 3
	}
	killAfter := 50 + rng.IntN(551)
	offlineOn := rng.IntN(3)
	t.Logf("publisher on node %d, node %d killed after %d acknowledgements, offline session on node %d", from, victim, killAfter, offlineOn)

	subs := make([]*crashSub, 3)
	for i := range subs {
		subs[i] = newCrashSubID(fmt.Sprintf("rounds-sub-%d", i))
		if err := subs[i].connect(addrs[i], true); err != nil {
			logs()
			t.Fatalf("subscriber on node %d: %v", i, err)
		}
	}
	offline := newCrashSubID("rounds-offline")
	if err := offline.connect(addrs[offlineOn], true); err != nil {
		logs()
		t.Fatal(err)
	}
	all := append(subs[:3:3], offline)
	probeAll(t, all, addrs, logs)
	if err := offline.close(); err != nil {
		t.Fatal(err)
	}
	wills := make([]string, 3)
	for i := range addrs {
		wills[i] = fmt.Sprintf("will-%d-q1", i)
		w, err := connectWillerID(addrs[i], wills[i], fmt.Sprintf("rounds-willer-%d", i))
		if err != nil {
			t.Fatal(err)
		}
		if i != victim {
			defer func() { _ = w.Disconnect(&paho.Disconnect{ReasonCode: 0}) }() // normal: no will
		}
	}

	var c roundCounts
	c.rounds = 1
	var acked []string
	pub, err := startPacedPublisher(addrs[from], "p", rollRate)
	if err != nil {
		t.Fatal(err)
	}
	pub.awaitMore(t, killAfter, crashDrain, logs, "before the kill")
	procs[victim].kill()
	killed := time.Now()
	if victim == from { // its publisher's connection is gone: on from a survivor
		pub.stop()
		acked = append(acked, pub.ackedList()...)
		c.published += int(pub.sent.Load())
		from = (victim + 1) % 3
		// Its claim of the client id may be refused (0x88) while the
		// owners' bucket elects a leader, if the dead node led it: as a
		// client would, it tries again.
		for try := 1; ; try++ {
			if pub, err = startPacedPublisher(addrs[from], "s", rollRate); err == nil {
				break
			}
			if try == 30 {
				logs()
				t.Fatal(err)
			}
			t.Logf("publisher on node %d, try %d: %v", from, try, err)
			time.Sleep(time.Second)
		}
	}
	pub.awaitMore(t, 200, failoverDrain, logs, fmt.Sprintf("node %d killed, publisher on node %d", victim, from))
	pub.stop()
	acked = append(acked, pub.ackedList()...)
	c.published += int(pub.sent.Load())
	c.refused, c.unanswered = pub.refused, pub.unanswered

	moved := subs[victim]
	if err := moved.gone(); err != nil {
		t.Fatal(err)
	}
	resumed := time.Now()
	resume(t, moved, addrs[(victim+1+rng.IntN(2))%3], logs)
	c.takeovers = append(c.takeovers, time.Since(killed))
	c.resumes = append(c.resumes, time.Since(resumed))

	procs[victim] = procs[victim].again(t)
	procs[victim].waitListening(t, addrs[victim])
	resume(t, offline, addrs[(victim+1+rng.IntN(2))%3], logs)
	ends := []string{"end-q1", "end-q2"}
	if err := publishEnds(addrs[from], ends); err != nil {
		logs()
		t.Fatal(err)
	}
	want := append(acked, ends...)
	c.acked = len(acked)
	for i, s := range all {
		s.await(want, 60*time.Second)
		s.await(wills[victim:victim+1], 10*time.Second) // due seconds ago
		lost := s.missing(want)
		dup2 := 0
		for p, n := range s.snapshot() {
			if n > 1 && strings.Contains(p, "-q2-") {
				dup2++
			}
		}
		c.lost += len(lost)
		c.dup2 += dup2
		if len(lost) > 0 {
			t.Errorf("subscriber %s: %d acknowledged messages lost, e.g. %v", s.id, len(lost), lost[:min(5, len(lost))])
		}
		if dup2 > 0 {
			t.Errorf("subscriber %s: %d QoS 2 messages delivered more than once", s.id, dup2)
		}
		if len(s.missing([]string{wills[victim]})) == 0 {
			c.wills++
		} else {
			t.Errorf("subscriber %d never got the killed node's will", i)
		}
		if err := s.err(); err != nil {
			t.Error(err)
		}
	}
	t.Logf("%d published, %d acknowledged, %d lost, QoS 2 duplicates %d; the dead node's subscriber served elsewhere %v after the kill (its reconnection %v)",
		c.published, c.acked, c.lost, c.dup2, c.takeovers[0].Round(time.Millisecond), c.resumes[0].Round(time.Millisecond))
	if t.Failed() {
		logs()
	}
	for _, s := range all {
		_ = s.close()
	}
	return c
}
