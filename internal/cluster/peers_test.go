package cluster

import (
	"context"
	"errors"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/shoalmq/shoal/internal/dispatch"
	"github.com/shoalmq/shoal/router"
	"github.com/shoalmq/shoal/store"
)

// jobs is a Submitter that hands on what it is given.
type jobs chan dispatch.Job

func (c jobs) SubmitWait(j dispatch.Job, stop <-chan struct{}) bool {
	select {
	case c <- j:
		return true
	case <-stop:
		return false
	}
}

// client is a subscriber of this node.
type client string

func (c client) ClientID() string { return string(c) }

// routed is one node's routing in a test: its table with Peers, and the
// jobs other nodes sent it.
type routed struct {
	ps    *Peers
	table *Table
	in    jobs
}

func startPeers(t *testing.T, nodes []*Node) []routed {
	t.Helper()
	return startPeersWith(t, nodes, 1024, nil)
}

// startPeersWith is startPeers with each node's jobs holding queue of them
// (0: a node takes one only when the test reads it), and edit, when not
// nil, changing node i's Peers before they start.
func startPeersWith(t *testing.T, nodes []*Node, queue int, edit func(i int, ps *Peers)) []routed {
	t.Helper()
	out := make([]routed, len(nodes))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i, n := range nodes {
		table := NewTable(router.NewTable(0, router.RoundRobin))
		ps, err := n.NewPeers(ctx, table, zerolog.New(zerolog.NewTestWriter(t)))
		if err != nil {
			t.Fatal(err)
		}
		if edit != nil {
			edit(i, ps)
		}
		in := make(jobs, queue)
		if err := ps.Start(ctx, in); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(ps.Close)
		out[i] = routed{ps: ps, table: table, in: in}
	}
	return out
}

// peersFor matches topic in r's table and returns the Peers it names.
func (r routed) peersFor(topic string) []router.Match {
	var m router.Matches
	r.table.Match([]byte(topic), nil, nil, &m)
	var out []router.Match
	for _, mt := range m.List {
		if _, ok := mt.Sub.(dispatch.Peer); ok {
			out = append(out, mt)
		}
	}
	return out
}

// waitFor polls cond until it holds, or fails the test after 15 s: the
// other nodes' interest arrives through a watch, with no event of its own
// to wait on.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func forward(t *testing.T, r routed, topic string, qos byte) int {
	t.Helper()
	m := router.NewMessage([]byte(topic), []byte("p"), []byte{0x03, 0, 1, 'x'}, []byte("pub"), qos, true, time.Now().Add(time.Hour).UnixNano(), nil)
	defer m.Release()
	mts := r.peersFor(topic)
	for i := range mts {
		if rc := mts[i].Sub.(dispatch.Peer).Forward(m, &mts[i]); rc != nil {
			if err := rc.Wait(nil); err != nil {
				t.Fatalf("forwarding %s: %v", topic, err)
			}
		}
	}
	return len(mts)
}

func receive(t *testing.T, r routed) dispatch.Job {
	t.Helper()
	select {
	case j := <-r.in:
		return j
	case <-time.After(15 * time.Second):
		t.Fatal("no message from another node")
	}
	panic("unreachable")
}

// TestPeersRouteOncePerNode: a node whose sessions have overlapping
// filters gets a matching message once, with its topic, QoS, retain flag,
// properties, publisher and expiry; when the last of its sessions
// unsubscribes, the other nodes stop sending.
func TestPeersRouteOncePerNode(t *testing.T) {
	rs := startPeers(t, startCluster(t, 3))
	a, b := client("a"), client("b")
	rs[1].table.Subscribe(a, "x/+", router.Options{QoS: 1})
	rs[1].table.Subscribe(b, "x/#", router.Options{QoS: 1})
	rs[1].table.Subscribe(b, "x/+", router.Options{QoS: 1})
	if got := rs[1].table.Count(); got != 3 {
		t.Fatalf("node 1 counts %d subscriptions, want its own 3", got)
	}
	waitFor(t, "node 0 to see node 1's interest in x/y", func() bool { return len(rs[0].peersFor("x/y")) == 1 })
	waitFor(t, "node 2 to see node 1's interest in x/#", func() bool { return len(rs[2].peersFor("x")) == 1 })
	if n := rs[0].table.Count(); n != 0 {
		t.Fatalf("node 0 counts %d subscriptions, want 0: Peers are not its own", n)
	}

	if n := forward(t, rs[0], "x/y", 2); n != 1 {
		t.Fatalf("node 0 forwarded to %d Peers, want 1", n)
	}
	j := receive(t, rs[1])
	m := j.Msg
	left := time.Until(time.Unix(0, m.Expiry))
	if !j.Local || j.Group != "" || string(m.Topic) != "x/y" || m.QoS != 2 || !m.Retain ||
		string(m.Payload) != "p" || string(m.FromID) != "pub" || string(m.Props) != "\x03\x00\x01x" ||
		left < 59*time.Minute || left > time.Hour {
		t.Fatalf("node 1 got %+v (topic %q, payload %q, expiry in %v)", j, m.Topic, m.Payload, left)
	}
	m.Release()
	select {
	case j := <-rs[1].in:
		t.Fatalf("a second copy: %q", j.Msg.Topic)
	case <-time.After(100 * time.Millisecond):
	}

	rs[1].table.Unsubscribe(a, "x/+") // b still has it
	rs[1].table.Unsubscribe(b, "x/#")
	waitFor(t, "node 0 to see x/# go", func() bool { return len(rs[0].peersFor("x")) == 0 })
	if len(rs[0].peersFor("x/y")) != 1 {
		t.Fatal("node 0 lost node 1's x/+ with a's unsubscribe")
	}
	rs[1].table.Unsubscribe(b, "x/+")
	waitFor(t, "node 0 to see x/+ go", func() bool { return rs[0].table.peerSubs.Load() == 0 })
}

// TestPeersSharedGroupByMembers: a shared group with two members on one
// node and one on another is one group of three: round robin on a third
// node gives each member one message in three.
func TestPeersSharedGroupByMembers(t *testing.T) {
	rs := startPeers(t, startCluster(t, 3))
	const g = "$share/g/s/+"
	rs[1].table.Subscribe(client("m1"), g, router.Options{QoS: 1})
	rs[1].table.Subscribe(client("m2"), g, router.Options{QoS: 1})
	rs[2].table.Subscribe(client("m3"), g, router.Options{QoS: 1})
	waitFor(t, "node 0 to see 3 members", func() bool {
		return rs[0].table.peerSubs.Load() == 3
	})
	for range 30 {
		if n := forward(t, rs[0], "s/1", 1); n != 1 {
			t.Fatalf("a group message went to %d members", n)
		}
	}
	count := func(r routed, n int) {
		t.Helper()
		for range n {
			j := receive(t, r)
			if j.Group != g || !j.Local {
				t.Fatalf("got group %q local %v, want %q", j.Group, j.Local, g)
			}
			if err := j.Done.Ack(); err != nil { // the stream holds 16 batches unacknowledged
				t.Fatal(err)
			}
		}
		select {
		case j := <-r.in:
			t.Fatalf("more than %d for this node: %q", n, j.Msg.Topic)
		case <-time.After(100 * time.Millisecond):
		}
	}
	count(rs[1], 20)
	count(rs[2], 10)
}

// TestPeersClearOldInterest: a node starting again writes its interest
// over what it published before: the key of a filter its sessions still
// have (restored) stays all along, the key of one they no longer have is
// deleted once it starts routing.
func TestPeersClearOldInterest(t *testing.T) {
	nodes := startCluster(t, 1)
	rs := startPeers(t, nodes)
	rs[0].table.Subscribe(client("a"), "old/#", router.Options{})
	rs[0].table.Subscribe(client("a"), "kept/#", router.Options{})
	oldKey, _ := rs[0].ps.key("old/#", 1)
	keptKey, _ := rs[0].ps.key("kept/#", 1)
	kv := rs[0].ps.kv
	has := func(key string) bool {
		_, err := kv.Get(context.Background(), key)
		return err == nil
	}
	waitFor(t, "the keys to be written", func() bool { return has(oldKey) && has(keptKey) })
	rs[0].ps.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	table := NewTable(router.NewTable(0, router.RoundRobin))
	table.Subscribe(client("a"), "kept/#", router.Options{}) // restored
	ps, err := nodes[0].NewPeers(ctx, table, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if !has(oldKey) || !has(keptKey) {
		t.Fatal("a key was deleted before the node routes again")
	}
	if err := ps.Start(ctx, make(jobs, 16)); err != nil {
		t.Fatal(err)
	}
	defer ps.Close()
	waitFor(t, "the old key to be deleted", func() bool { return !has(oldKey) })
	if !has(keptKey) {
		t.Fatal("the key of a filter the node still has was deleted")
	}
}

// TestInterestKeys: every filter, shared or not, survives its key.
func TestInterestKeys(t *testing.T) {
	ps := &Peers{self: "n-1"}
	for _, f := range []string{"a", "a/+/#", "#", "+", "/", "//", "$SYS/#", "a.b/*/>", "sp ace/=/%",
		"$share/g/a/+", "$share/g.h/#", "$share/=/x//y", "ünï/cödé"} {
		for _, n := range []int{1, 7} {
			key, _ := ps.key(f, n)
			node, filter, shared, ok := parseKey(key)
			_, _, wantShared := router.ParseShared(f)
			if !ok || node != "n-1" || filter != f || shared != wantShared {
				t.Errorf("%q: key %q gives %q %q %v %v", f, key, node, filter, shared, ok)
			}
		}
	}
	for _, bad := range []string{"", "i", "i.n", "x.n.a", "i.n.a..b", "g.n.g", "i.n.=G0"} {
		if _, _, _, ok := parseKey(bad); ok {
			t.Errorf("%q parsed", bad)
		}
	}
}

// TestFrames: a message survives its frame; a damaged frame is refused.
func TestFrames(t *testing.T) {
	now := time.Now().UnixNano()
	m := router.NewMessage([]byte("t/1"), []byte("payload"), []byte{1, 2}, []byte("id"), 1, false, 0, nil)
	defer m.Release()
	b := appendFrame(nil, m, "$share/g/t/+", now)
	got, group, err := decodeFrame(b, now)
	if err != nil || group != "$share/g/t/+" || string(got.Topic) != "t/1" || string(got.Payload) != "payload" ||
		got.QoS != 1 || got.Retain || got.Expiry != 0 || string(got.FromID) != "id" || string(got.Props) != "\x01\x02" {
		t.Fatalf("decoded %+v %q %v", got, group, err)
	}
	got.Release()
	for i := range len(b) - len("payload") {
		if m, _, err := decodeFrame(b[:i], now); err == nil {
			m.Release()
			t.Fatalf("a frame cut at %d decoded", i)
		}
	}
	if _, _, err := decodeFrame(append([]byte{9}, b[1:]...), now); err == nil {
		t.Fatal("another version decoded")
	}

	// The message's identity, and the session a frame is for alone.
	m.Origin = 1<<63 + 5
	b = appendFrameTo(nil, m, "", "moved", now)
	got, _, to, err := decodeFrameTo(b, now)
	if err != nil || got.Origin != m.Origin || to != "moved" || string(got.Payload) != "payload" {
		t.Fatalf("decoded origin %d, to %q, %v; want %d, moved", got.Origin, to, err, m.Origin)
	}
	got.Release()

	// Version 1, as the buckets may keep it: no origin, no to.
	v1 := []byte{1, 1, 0, 3, 't', '/', '1', 2, 'i', 'd', 0, 0, 'p'}
	got, group, to, err = decodeFrameTo(v1, now)
	if err != nil || string(got.Topic) != "t/1" || string(got.FromID) != "id" || string(got.Payload) != "p" ||
		group != "" || to != "" || got.Origin != 0 {
		t.Fatalf("version 1 decoded as %+v %q %q %v", got, group, to, err)
	}
	got.Release()
}

// TestPeersCountDrops: QoS 0 messages NATS drops because this node does
// not take them fast enough (its pending limit overflowed) are counted in
// Drops.
func TestPeersCountDrops(t *testing.T) {
	// Nobody takes node 1's messages (its workers are stuck), and it
	// holds 4 at most.
	rs := startPeersWith(t, startCluster(t, 3), 0, func(i int, ps *Peers) {
		if i == 1 {
			ps.pending = [2]int{4, 1 << 20}
		}
	})
	rs[1].table.Subscribe(client("a"), "d/#", router.Options{QoS: 1})
	waitFor(t, "node 0 to see node 1's interest", func() bool { return len(rs[0].peersFor("d/x")) == 1 })
	for range 100 {
		forward(t, rs[0], "d/x", 0)
	}
	waitFor(t, "node 1 to count what NATS dropped", func() bool { return rs[1].ps.Drops() >= 90 })
}

// TestPeersForwardStored: QoS 1 messages for a node that takes nothing for
// a while wait in the forward stream, each confirmed to its sender, where
// QoS 0 ones would be dropped (TestPeersCountDrops); once the node takes
// them it gets every one, in order, and one it did not acknowledge comes
// again after it restarts its routing.
func TestPeersForwardStored(t *testing.T) {
	nodes := startCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// Node 1 takes one when the test reads it, holds as few as in
	// TestPeersCountDrops, and gets again soon what it did not
	// acknowledge.
	rs := startPeersWith(t, nodes, 0, func(i int, ps *Peers) {
		if i == 1 {
			ps.pending = [2]int{4, 1 << 20}
			ps.ackWait = time.Second
		}
	})
	rs[1].table.Subscribe(client("a"), "d/#", router.Options{QoS: 1})
	waitFor(t, "node 0 to see node 1's interest", func() bool { return len(rs[0].peersFor("d/x")) == 1 })
	const n = 100
	for i := range n {
		forward(t, rs[0], "d/"+strconv.Itoa(i), 1) // fails the test unless confirmed
	}
	if d := rs[1].ps.Drops(); d != 0 {
		t.Fatalf("%d QoS 1 messages dropped", d)
	}
	for i := range n {
		j := receive(t, rs[1])
		if got, want := string(j.Msg.Topic), "d/"+strconv.Itoa(i); got != want || j.Done == nil {
			t.Fatalf("message %d: %q (Done %v), want %q from the stream", i, got, j.Done != nil, want)
		}
		if i < n-1 {
			if err := j.Done.Ack(); err != nil {
				t.Fatal(err)
			}
		}
		j.Msg.Release()
	}
	// The last one was not acknowledged: a new consumer gets it again.
	rs[1].ps.Close()
	table := NewTable(router.NewTable(0, router.RoundRobin))
	ps, err := nodes[1].NewPeers(ctx, table, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	ps.ackWait = time.Second
	in := make(jobs, 1)
	if err := ps.Start(ctx, in); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ps.Close)
	j := receive(t, routed{in: in})
	if got, want := string(j.Msg.Topic), "d/"+strconv.Itoa(n-1); got != want {
		t.Fatalf("after a restart: %q, want the unacknowledged %q", got, want)
	}
	if err := j.Done.Ack(); err != nil {
		t.Fatal(err)
	}
}

// TestPeersForwardBatches: QoS 1 messages for one node forwarded before
// any receipt is waited for go as one stream message, up to
// forwardBatchFrames; the node gets each of them, in order, and the
// stream lets the batch go once the last of them is acknowledged.
func TestPeersForwardBatches(t *testing.T) {
	rs := startPeers(t, startCluster(t, 3))
	rs[1].table.Subscribe(client("a"), "b/#", router.Options{QoS: 1})
	waitFor(t, "node 0 to see node 1's interest", func() bool { return len(rs[0].peersFor("b/x")) == 1 })
	const n = forwardBatchFrames + 10 // a full batch, and the rest
	var receipts []dispatch.Receipt
	for i := range n {
		m := router.NewMessage([]byte("b/"+strconv.Itoa(i)), []byte("p"), nil, []byte("pub"), 1, false, 0, nil)
		mts := rs[0].peersFor("b/x")
		receipts = append(receipts, mts[0].Sub.(dispatch.Peer).Forward(m, &mts[0]))
		m.Release()
	}
	for _, rc := range receipts {
		if err := rc.Wait(nil); err != nil {
			t.Fatal(err)
		}
	}
	counts, _ := rs[0].ps.Forwards.Read()
	if got := sumCounts(counts[:]); got != 2 {
		t.Fatalf("%d stream messages confirmed, want 2: a full batch and the rest", got)
	}
	var acks []dispatch.Acker
	for i := range n {
		j := receive(t, rs[1])
		if got, want := string(j.Msg.Topic), "b/"+strconv.Itoa(i); got != want {
			t.Fatalf("message %d: %q, want %q", i, got, want)
		}
		j.Msg.Release()
		acks = append(acks, j.Done)
	}
	if acks[0] != acks[forwardBatchFrames-1] || acks[0] == acks[forwardBatchFrames] {
		t.Fatal("the messages of one batch do not share its acknowledgement")
	}
	stream, err := rs[0].ps.node.js.Stream(context.Background(), forwardStream)
	if err != nil {
		t.Fatal(err)
	}
	left := func() uint64 {
		info, err := stream.Info(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return info.State.Msgs
	}
	for _, a := range acks[:n-1] {
		if err := a.Ack(); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the stream to let the full batch go", func() bool { return left() == 1 })
	if err := acks[n-1].Ack(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the stream to let the last batch go", func() bool { return left() == 0 })
}

// TestCountFrames: a batch's framing is checked before its frames are
// read.
func TestCountFrames(t *testing.T) {
	for _, c := range []struct {
		data []byte
		n    int
		ok   bool
	}{
		{nil, 0, true},
		{[]byte{0, 0, 0, 1, 'x', 0, 0, 0, 0}, 2, true},
		{[]byte{0, 0, 0, 2, 'x'}, 0, false},
		{[]byte{0, 0, 0}, 0, false},
	} {
		if n, ok := countFrames(c.data); n != c.n || ok != c.ok {
			t.Errorf("countFrames(% x) = %d, %v; want %d, %v", c.data, n, ok, c.n, c.ok)
		}
	}
}

func sumCounts(counts []int64) (n int64) {
	for _, c := range counts {
		n += c
	}
	return n
}

// TestPeersPassOn: a session this node hands over leaves a stand-in in
// its table (Peers.leave) that keeps this node's interest in its filters
// and sends what they match on to the new node, addressed to the session,
// with its Origin (QoS 0 is not passed on, a shared group is left to its
// other members); when the session is back, the stand-in goes, and with
// it the interest.
func TestPeersPassOn(t *testing.T) {
	rs := startPeers(t, startCluster(t, 3))
	l := rs[0].ps.leave("x", "n1", []string{"t/#", "$share/g/s"}, true)
	if n := rs[0].table.Count(); n != 0 {
		t.Fatalf("the stand-in counts as %d subscriptions of the node", n)
	}
	waitFor(t, "node 1 to see node 0's interest in t/#", func() bool { return len(rs[1].peersFor("t/a")) == 1 })
	if len(rs[1].peersFor("s")) != 0 {
		t.Fatal("the stand-in joined a shared group")
	}

	var ms router.Matches
	rs[0].table.Match([]byte("t/a"), nil, nil, &ms)
	if len(ms.List) != 1 || ms.List[0].Sub != l {
		t.Fatalf("node 0 matches %+v, want the stand-in", ms.List)
	}
	q0 := router.NewMessage([]byte("t/a"), []byte("p"), nil, []byte("pub"), 0, false, 0, nil)
	defer q0.Release()
	if l.PassOn(q0, &ms.List[0]) != nil {
		t.Fatal("a QoS 0 message passed on")
	}
	m := router.NewMessage([]byte("t/a"), []byte("p"), nil, []byte("pub"), 2, false, 0, nil)
	defer m.Release()
	m.Origin = 99
	if err := l.PassOn(m, &ms.List[0]).Wait(nil); err != nil {
		t.Fatal(err)
	}
	j := receive(t, rs[1])
	if string(j.Msg.Topic) != "t/a" || j.To != "x" || !j.Local || j.Msg.Origin != 99 || j.Msg.QoS != 2 {
		t.Fatalf("node 1 got %q for %q (local %v), origin %d, QoS %d; want t/a for x, origin 99, QoS 2",
			j.Msg.Topic, j.To, j.Local, j.Msg.Origin, j.Msg.QoS)
	}
	j.Msg.Release()
	if rs[0].ps.PassedOn.Load() != 1 {
		t.Fatalf("PassedOn %d, want 1", rs[0].ps.PassedOn.Load())
	}

	rs[0].ps.stayBack("x")
	ms.Reset()
	rs[0].table.Match([]byte("t/a"), nil, nil, &ms)
	if len(ms.List) != 0 {
		t.Fatalf("node 0 still matches %+v once the session is back", ms.List)
	}
	waitFor(t, "node 1 to see node 0's interest go", func() bool { return len(rs[1].peersFor("t/a")) == 0 })
}

// TestStandInWaitsForBacklog: a node that starts with batches waiting in
// its subject of the forward stream, and stand-ins for sessions taken
// elsewhere while it was gone (Peers.LeaveFor), starts their lingers only
// once it has read those batches: reading a backlog of thousands can take
// longer than the linger, and what the stand-ins no longer pass on is
// lost (242 and 426 messages for two subscribers in a rolling restart).
func TestStandInWaitsForBacklog(t *testing.T) {
	nodes := startCluster(t, 3)
	rs := startPeers(t, nodes[1:])
	// Node 1 sends node 0, not started yet, a batch.
	send := rs[0].ps.leave("z", "n0", []string{"v/#"}, false)
	m := router.NewMessage([]byte("v/a"), []byte("p"), nil, []byte("pub"), 1, false, 0, nil)
	defer m.Release()
	if err := send.PassOn(m, nil).Wait(nil); err != nil {
		t.Fatal(err)
	}
	var l *leaving // node 0 takes the batch only when the test reads it
	n0 := startPeersWith(t, nodes[:1], 0, func(_ int, ps *Peers) {
		l = ps.leave("y", "n2", []string{"u/#"}, false)
	})[0]
	if got := n0.ps.backlog.Load(); got == 0 {
		t.Fatal("node 0 started with a batch in its subject, and no backlog")
	}
	n0.ps.leavingMu.Lock()
	early := l.timer != nil
	n0.ps.leavingMu.Unlock()
	if early {
		t.Fatal("the stand-in's linger started before node 0 read its backlog")
	}
	j := receive(t, n0)
	j.Msg.Release()
	if j.Done != nil {
		_ = j.Done.Ack()
	}
	waitFor(t, "the stand-in's linger to start once the backlog is read", func() bool {
		n0.ps.leavingMu.Lock()
		defer n0.ps.leavingMu.Unlock()
		return l.timer != nil
	})
}

// TestStandInLingerOutlastsAckWait: a stand-in put for a session taken
// elsewhere while this node was gone (no interest: LeaveFor) stays past
// the forward stream's ack wait, as the stream may send the node again,
// that long after it runs again, a batch it had handed the node before;
// one that keeps the node's interest (a live handover) stays
// movedLinger.
func TestStandInLingerOutlastsAckWait(t *testing.T) {
	for _, ackWait := range []time.Duration{0, time.Second} {
		ps := &Peers{ackWait: ackWait}
		want := ackWait
		if want == 0 {
			want = forwardAckWait
		}
		if got := ps.lingerOf(false); got <= want {
			t.Errorf("ack wait %v: a stand-in without interest lingers %v, want more than %v", ackWait, got, want)
		}
		if got := ps.lingerOf(true); got != movedLinger {
			t.Errorf("ack wait %v: a stand-in with interest lingers %v, want %v", ackWait, got, movedLinger)
		}
	}
}

// ackMsg is a stream message that records its acknowledgement.
type ackMsg struct {
	jetstream.Msg
	acked chan struct{}
}

func (m *ackMsg) Ack() error { close(m.acked); return nil }

// openGate is a gate a test opens.
type openGate struct {
	on    atomic.Bool
	round chan struct{} // closed when on is set
}

func (g *openGate) Serving() bool { return g.on.Load() }

func (g *openGate) Await(stop <-chan struct{}) bool {
	for !g.on.Load() {
		select {
		case <-g.round:
		case <-stop:
			return false
		}
	}
	return true
}

// TestBatchAckWaitsForServing: a batch from the forward stream whose
// messages were stored while the node did not serve (frozen, or cut off)
// is acknowledged only once it serves again — meanwhile it stays in the
// stream for a rescuer to read — and at once by a node that serves.
func TestBatchAckWaitsForServing(t *testing.T) {
	g := &openGate{round: make(chan struct{})}
	ps := &Peers{gate: g, stop: make(chan struct{})}
	m := &ackMsg{acked: make(chan struct{})}
	a := &batchAck{msg: m, ps: ps}
	a.left.Store(2)
	_ = a.Ack()
	_ = a.Ack() // the last: the batch is done, while the node does not serve
	select {
	case <-m.acked:
		t.Fatal("acknowledged while the node does not serve")
	default:
	}
	g.on.Store(true)
	close(g.round)
	select {
	case <-m.acked:
	case <-time.After(10 * time.Second):
		t.Fatal("not acknowledged once the node serves")
	}

	now := &ackMsg{acked: make(chan struct{})}
	b := &batchAck{msg: now, ps: ps}
	b.left.Store(1)
	_ = b.Ack()
	select {
	case <-now.acked:
	default:
		t.Fatal("a node that serves did not acknowledge at once")
	}
}

// batchMsg is a forward stream batch, without metadata, that counts the
// times it was said to be in hand.
type batchMsg struct {
	ackMsg
	data     []byte
	progress atomic.Int32
}

func (m *batchMsg) Data() []byte { return m.data }
func (m *batchMsg) Metadata() (*jetstream.MsgMetadata, error) {
	return nil, errors.New("no metadata")
}
func (m *batchMsg) InProgress() error { m.progress.Add(1); return nil }

// isAcked reports whether m was acknowledged.
func (m *ackMsg) isAcked() bool {
	select {
	case <-m.acked:
		return true
	default:
		return false
	}
}

// TestShelvedAddressedRetried: a message from the forward stream
// addressed to a session on this node's shelf, whose addition the copy
// does not confirm at first (JetStream electing leaders as a frozen node
// comes back), is offered again until the copy confirms it, and its
// batch is acknowledged. Before, the batch stopped there: it came again
// only after the stream's ack wait, and what of it was routed already
// was routed twice.
func TestShelvedAddressedRetried(t *testing.T) {
	r := NewRescuer()
	w := &failingOrigins{fails: 2}
	r.w = w
	sh := &shelved{id: "c", from: "n2", read: make(chan struct{})}
	close(sh.read)
	r.mu.Lock()
	r.shelf["c"] = sh
	r.loadLocked(sh, &store.Bundle{Session: store.Session{ClientID: "c",
		Subs: []store.Sub{{Filter: "t/#", Opts: router.Options{QoS: 2}}}}})
	r.mu.Unlock()
	s := NewSessions()
	s.setShelf(r)
	ps := &Peers{sessions: s, stop: make(chan struct{}), log: zerolog.Nop()}
	defer close(ps.stop)

	m := router.NewMessage([]byte("t/a"), []byte("p"), nil, []byte("pub"), 2, false, 0, nil)
	m.Origin = 7
	msg := &batchMsg{ackMsg: ackMsg{acked: make(chan struct{})},
		data: appendBatchFrame(nil, m, "", "c", time.Now().UnixNano())}
	m.Release()
	ps.receiveStored(msg)
	select {
	case <-msg.acked:
	default:
		t.Fatal("the batch was not acknowledged once the copy confirmed its message")
	}
	if len(w.got) != 3 || w.got[2] != 7 {
		t.Fatalf("put %v, want origin 7 offered three times", w.got)
	}
	if _, kept := sh.kept[7]; !kept {
		t.Fatal("origin 7 not kept on the shelved session")
	}

	// Not confirmed for half the ack wait: the stream sends the batch
	// again, before it sends again those the consumer holds behind it.
	w.fail = true
	ps.ackWait = 4 * time.Second
	m = router.NewMessage([]byte("t/a"), []byte("p"), nil, []byte("pub"), 2, false, 0, nil)
	m.Origin = 8
	msg = &batchMsg{ackMsg: ackMsg{acked: make(chan struct{})},
		data: appendBatchFrame(nil, m, "", "c", time.Now().UnixNano())}
	m.Release()
	start := time.Now()
	ps.receiveStored(msg)
	if took := time.Since(start); msg.isAcked() || took < 2*time.Second || took > 6*time.Second {
		t.Fatalf("unconfirmed: acknowledged %v after %v; want not, after half the ack wait", msg.isAcked(), took)
	}
	if msg.progress.Load() == 0 {
		t.Fatal("the batch was not said to be in hand while it was offered again")
	}
}

// TestParkedBatchKeptInHand: a batch one of whose messages is parked for
// a session (a claim here could not read it) is said to be in hand every
// half ack wait, until it is acknowledged: parked longer than the ack
// wait, it came again, and what of it was routed already was routed
// twice.
func TestParkedBatchKeptInHand(t *testing.T) {
	s := NewSessions()
	in := make(jobs, 4)
	ps := &Peers{disp: in, stop: make(chan struct{}), ackWait: 200 * time.Millisecond, log: zerolog.Nop()}
	defer close(ps.stop)
	ps.Handover(s)
	s.mu.Lock()
	s.unread["x"] = "n2"
	s.mu.Unlock()
	m := router.NewMessage([]byte("t/a"), []byte("p"), nil, []byte("pub"), 1, false, 0, nil)
	msg := &batchMsg{ackMsg: ackMsg{acked: make(chan struct{})},
		data: appendBatchFrame(appendBatchFrame(nil, m, "", "x", 0), m, "", "", 0)}
	m.Release()
	ps.receiveStored(msg)
	j := receive(t, routed{in: in}) // the frame for no session in particular
	j.Msg.Release()
	_ = j.Done.Ack()
	waitFor(t, "the batch to be said in hand", func() bool { return msg.progress.Load() >= 2 })
	if msg.isAcked() {
		t.Fatal("acknowledged while a message of it is parked")
	}
}
