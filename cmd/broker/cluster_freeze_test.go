package main

import (
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestClusterNodeFreeze: three broker processes form a cluster; a
// persistent subscriber is connected to node 2 when node 2 is frozen
// (SIGSTOP) for longer than rescue_after, while QoS 1 and 2 messages for
// it are published on node 0: until a survivor has rescued node 2's
// sessions (a freeze too short for that leaves node 2 their owner). When
// node 2 resumes (SIGCONT) it finds it was rescued: it does not deliver
// what came meanwhile over the stale connection — it tells the client to
// go (DISCONNECT 0x9C, use another server, or 0x8E, taken over) — and
// takes its sessions back. The
// subscriber, reconnecting to node 1, gets every acknowledged message, QoS
// 2 ones once each. The clients are paho.golang's.
//
// It runs in make stress (SHOAL_CLUSTER_FREEZE=1, FREEZE_ROUNDS times),
// not in make test: each run takes up to a minute and a half. Its runs
// at each change are counted in the README (Cluster).
// SHOAL_CLUSTER_LOG=debug shows the rescue message by message.
func TestClusterNodeFreeze(t *testing.T) {
	if os.Getenv("SHOAL_CLUSTER_FREEZE") == "" {
		t.Skip("make stress runs it (SHOAL_CLUSTER_FREEZE=1): a minute or so")
	}
	procs, addrs := startClusterProcs(t, "freeze", "2s")
	logs := func() { logAll(t, procs) }
	// Node 2 tells the client to use another server (0x9C) when it finds
	// it was rescued, or that its session was taken over (0x8E) when the
	// rescuer's claim reaches it first.
	sub := subscribedOn(t, addrs, 2, 0, 0x9C, 0x8E)
	pub, err := startPublisher(addrs[0], "f")
	if err != nil {
		t.Fatal(err)
	}
	if !pub.awaitAcked(200, crashDrain) {
		t.Fatalf("only %d acknowledged in %v", pub.ackedCount(), crashDrain)
	}
	if err := procs[2].cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	early := pub.ackedNow() // node 2 may have sent these before it froze
	frozenAt := len(early)
	frozen := time.Now()
	// Through the seconds in which JetStream elects new leaders for what
	// node 2 led, and a survivor rescues node 2's sessions.
	// (A frozen node's routes stay up, unlike a dead one's: the
	// elections take longer.)
	if !pub.awaitAcked(frozenAt+300, 3*crashDrain) {
		_ = procs[2].cmd.Process.Signal(syscall.SIGCONT)
		logs()
		t.Fatalf("%d acknowledged in %v with node 2 frozen", pub.ackedCount()-frozenAt, 3*crashDrain)
	}
	pub.stop()
	// Frozen until a survivor has rescued node 2's sessions (it says so
	// in its log): past rescue_after, and past the seconds in which the
	// survivors' JetStream elects new leaders for what node 2 led.
	for deadline := time.Now().Add(time.Minute); !strings.Contains(procs[0].stderr.String()+procs[1].stderr.String(), "sessions are shelved here"); {
		if time.Now().After(deadline) {
			_ = procs[2].cmd.Process.Signal(syscall.SIGCONT)
			logs()
			t.Fatal("no survivor rescued node 2 in a minute")
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("node 2 rescued %v after SIGSTOP", time.Since(frozen).Round(time.Millisecond))
	before := sub.snapshot() // what the stale connection had
	if err := procs[2].cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	thawed := time.Now()
	if err := sub.gone(); err != nil {
		logs()
		t.Fatalf("node 2, resumed, kept the stale connection: %v", err)
	}
	t.Logf("node 2 closed the stale connection %v after SIGCONT", time.Since(thawed).Round(time.Millisecond))
	// What node 2 got for the session after it froze, the rescuer has
	// too: node 2 must not deliver it (a write it had queued before it
	// froze may still go out).
	late := 0
	for p, n := range sub.snapshot() {
		if n > before[p] && !early[p] {
			late++
		}
	}
	if late > 0 {
		t.Errorf("node 2 delivered %d messages published while it was frozen over the stale connection: it is no longer the session's owner", late)
	}
	acked := pub.ackedList()
	for try := 1; ; try++ {
		err := sub.connect(addrs[1], false)
		if err == nil {
			break
		}
		if try == 30 {
			logs()
			t.Fatalf("subscriber on node 1: %v", err)
		}
		t.Logf("subscriber on node 1, try %d: %v", try, err)
		time.Sleep(time.Second)
	}
	sub.await(acked, 60*time.Second)
	lost := sub.missing(acked)
	var dups []string
	for p, n := range sub.snapshot() {
		if n > 1 && strings.Contains(p, "-q2-") {
			dups = append(dups, p)
		}
	}
	dup2 := len(dups)
	t.Logf("%d published, %d acknowledged (%d before the freeze), %d lost, QoS 2 duplicates %d",
		pub.sent.Load(), len(acked), frozenAt, len(lost), dup2)
	if len(lost) > 0 {
		t.Errorf("%d acknowledged messages lost: %s", len(lost), spans(lost))
		logs()
	}
	if dup2 > 0 {
		t.Errorf("%d QoS 2 messages delivered more than once: %s", dup2, spans(dups))
		for _, p := range dups {
			t.Logf("%s: %q", p, sub.receipts(p))
		}
		logs()
	}
	sub.mu.Lock()
	told := sub.told
	sub.mu.Unlock()
	if !told {
		t.Error("node 2 closed the stale connection without DISCONNECT 0x9C or 0x8E")
	}
	if err := sub.err(); err != nil {
		t.Error(err)
	}
	_ = sub.close()
}
