package broker_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoalmq/shoal/broker"
	"github.com/shoalmq/shoal/codec"
	"github.com/shoalmq/shoal/internal/testutil"
)

// TestClusterSessionMoves: a persistent session made on node 0 resumes on
// node 1 with Session Present, the messages queued for it while it was
// away (published on node 2), and its subscriptions, which now bring the
// messages to node 1; node 0 no longer has it, but for a while passes on
// what still comes there for it, and the session gets each message once.
func TestClusterSessionMoves(t *testing.T) {
	bs := startClusterBrokers(t, 3)
	addr := func(i int) string { return bs[i].Addr().String() }
	c, _ := p5Dial(t, addr(0), p5Expiry("mover", true, 300), nil)
	c.sub(t, "m/#", 1)
	c.bye(t)
	awaitInterest(t, "m/x", map[*broker.Broker]int{bs[2]: 1})
	pub, _ := p5Dial(t, addr(2), p5CP("pub"), nil)
	for i := range 5 {
		pub.say(t, "m/x", fmt.Sprint("q", i), 1)
	}
	testutil.Eventually(t, waitFor, "node 0 to queue 5 for the session", func() bool {
		n, _, ok := bs[0].SessionQueue("mover")
		return ok && n == 5
	})

	c, ack := p5Dial(t, addr(1), p5Expiry("mover", false, 300), nil)
	if !ack.SessionPresent {
		t.Fatal("CONNACK on node 1: Session Present 0, want 1")
	}
	for i := range 5 {
		c.expect(t, "m/x", fmt.Sprint("q", i))
	}
	if bs[0].SessionFor("mover") != nil || bs[0].SubscriptionCount() != 0 {
		t.Fatalf("node 0 still has the session (%d subscriptions)", bs[0].SubscriptionCount())
	}
	// Node 2 sends to node 1 now, and to node 0 as long as node 0 passes
	// on what comes for the session there: each once to the session.
	awaitNodeAmong(t, bs[2], "m/x", "n1")
	pub.say(t, "m/x", "after", 1)
	pub.say(t, "m/x", "after2", 2)
	c.expect(t, "m/x", "after")
	c.expect(t, "m/x", "after2")
	if len(bs[2].ClusterNodesFor("m/x")) == 2 {
		testutil.Eventually(t, waitFor, "node 0 to pass on what came for the session", func() bool { return bs[0].PassedOn() == 2 })
	}
	c.quiet(t)
}

// TestClusterSessionTakeover: a client connected to node 0 that connects
// again to node 1 takes its session over: the connection on node 0 gets
// DISCONNECT 0x8E (session taken over), the one on node 1 Session Present
// and what was still in flight, and the messages published on node 2
// after arrive there.
func TestClusterSessionTakeover(t *testing.T) {
	bs := startClusterBrokers(t, 3)
	old, _ := p5Dial(t, bs[0].Addr().String(), p5Expiry("t", true, 300), nil)
	old.sub(t, "t/#", 1)
	awaitInterest(t, "t/x", map[*broker.Broker]int{bs[2]: 1})
	pub, _ := p5Dial(t, bs[2].Addr().String(), p5CP("pub"), nil)
	for i := range 5 {
		pub.say(t, "t/x", fmt.Sprint("m", i), 1)
	}
	for i := range 5 {
		old.expect(t, "t/x", fmt.Sprint("m", i))
	}
	start := time.Now()
	c, ack := p5Dial(t, bs[1].Addr().String(), p5Expiry("t", false, 300), nil)
	old.serverDisconnect(t, 0x8E)
	t.Logf("the connection on node 0 was taken over %v after the CONNECT to node 1 began", time.Since(start))
	if !ack.SessionPresent {
		t.Fatal("CONNACK on node 1: Session Present 0, want 1")
	}
	awaitNodeAmong(t, bs[2], "t/x", "n1")
	pub.say(t, "t/x", "new", 1)
	// Before it, the new connection may get again what the old one had
	// not yet acknowledged when it was taken over: in flight, the session
	// took them along [MQTT-4.4.0-1].
	for {
		m := c.next(t)
		if p := string(m.Payload); p == "new" {
			break
		} else if len(p) != 2 || p[0] != 'm' || p[1] < '0' || p[1] > '4' {
			t.Fatalf("after the takeover: %q, want a resend of m0..m4, then \"new\"", p)
		}
	}
}

// TestClusterSessionOneOwner: twenty connects with one client id to three
// nodes at once leave exactly one connection: the others are taken over
// (0x8E) or, superseded before they attached, refused (0x9C), and the
// owners' bucket names the node of the one left.
func TestClusterSessionOneOwner(t *testing.T) {
	bs := startClusterBrokers(t, 3)
	const n = 20
	clients := make([]*p5Client, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// One whose claim a newer one superseded before it could
			// attach is refused (0x9C, use another server).
			// Twenty claims of one key contend for its compare-and-set:
			// on a loaded machine that takes more than p5Wait.
			c, ack, err := p5ConnectWithin(t, bs[i%3].Addr().String(), p5CP("same"), nil, 20*time.Second)
			switch {
			case err == nil:
				clients[i] = c
			case ack == nil || ack.ReasonCode != 0x9C:
				t.Errorf("connect %d: %v (CONNACK %+v)", i, err, ack)
			}
		}()
	}
	wg.Wait()
	alive := func() (n, at int) {
		for i, c := range clients {
			if c == nil {
				continue
			}
			select {
			case d := <-c.disc:
				if d.ReasonCode != 0x8E {
					t.Fatalf("connection %d: DISCONNECT %#02x, want 0x8E", i, d.ReasonCode)
				}
				clients[i] = nil
			default:
				n, at = n+1, i
			}
		}
		return n, at
	}
	deadline := time.Now().Add(15 * time.Second)
	for n, _ := alive(); n != 1; n, _ = alive() {
		if time.Now().After(deadline) {
			var left []int
			for i, c := range clients {
				if c != nil {
					left = append(left, i)
				}
			}
			t.Fatalf("%d connections left, want 1: %v (client i connected to node i%%3)", n, left)
		}
		time.Sleep(10 * time.Millisecond)
	}
	_, at := alive()
	_, owners := bs[0].ClusterNode()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	testutil.Eventually(t, waitFor, "the owners' bucket to name the node left", func() bool {
		o, ok, err := owners.Get(ctx, "same")
		return err == nil && ok && o.Node == fmt.Sprintf("n%d", at%3)
	})
	attached := 0
	for _, b := range bs {
		if s := b.SessionFor("same"); s != nil {
			s.Lock()
			if s.OwnerLocked() != nil {
				attached++
			}
			s.Unlock()
		}
	}
	if attached != 1 {
		t.Fatalf("%d nodes have the session attached, want 1", attached)
	}
}

// awaitNodes waits until b sends a message on topic to exactly the nodes
// named.
func awaitNodes(t *testing.T, b *broker.Broker, topic string, nodes ...string) {
	t.Helper()
	want := strings.Join(nodes, " ")
	testutil.Eventually(t, waitFor, fmt.Sprintf("messages on %s to go to [%s]", topic, want), func() bool {
		return strings.Join(b.ClusterNodesFor(topic), " ") == want
	})
}

// awaitNodeAmong waits until b sends messages on topic to node, among
// others or not.
func awaitNodeAmong(t *testing.T, b *broker.Broker, topic, node string) {
	t.Helper()
	testutil.Eventually(t, waitFor, fmt.Sprintf("messages on %s to go to %s", topic, node), func() bool {
		return slices.Contains(b.ClusterNodesFor(topic), node)
	})
}

// TestClusterSessionFromReplica: a persistent session whose node is gone
// when its client connects elsewhere is read from the cluster's replicated
// copy (package replica): Session Present, the messages queued for it and
// its subscriptions, which bring the next messages to the new node.
// Without the copy the session would start afresh (the handoff request
// has no one to answer it).
func TestClusterSessionFromReplica(t *testing.T) {
	bs := startClusterBrokers(t, 3)
	addr := func(i int) string { return bs[i].Addr().String() }
	c, _ := p5Dial(t, addr(1), p5Expiry("orphan", true, 300), nil)
	c.sub(t, "o/#", 1)
	c.bye(t)
	pub, _ := p5Dial(t, addr(1), p5CP("pub1"), nil) // on the session's node: stored there, and copied
	for i := range 5 {
		pub.say(t, "o/x", fmt.Sprint("q", i), 1)
	}
	n, _, ok := bs[1].SessionQueue("orphan")
	if !ok || n != 5 {
		t.Fatalf("node 1 queued %d for the session (found %v), want 5", n, ok)
	}
	pub.bye(t)
	stop(t, bs[1])

	c, ack := p5Dial(t, addr(0), p5Expiry("orphan", false, 300), nil)
	if !ack.SessionPresent {
		t.Fatal("CONNACK on node 0: Session Present 0, want 1")
	}
	for i := range 5 {
		c.expect(t, "o/x", fmt.Sprint("q", i))
	}
	// Node 1's interest stays while it is away; node 0's is added.
	// A node's leaving costs JetStream an election of the leaders it
	// had, which writes of the interest bucket wait for: seconds.
	start := time.Now()
	testutil.Eventually(t, 30*time.Second, "node 2 to send o/x to node 0 too", func() bool {
		return strings.Join(bs[2].ClusterNodesFor("o/x"), " ") == "n0 n1"
	})
	t.Logf("node 0's interest reached node 2 %v after the session was adopted", time.Since(start))
	pub, _ = p5Dial(t, addr(2), p5CP("pub2"), nil)
	pub.say(t, "o/x", "after", 1)
	c.expect(t, "o/x", "after")
}

// TestClusterRescue: node 1 goes, leaving an offline persistent session
// and its interest, so that QoS 1 and 2 messages published on node 0 for
// it wait in node 1's subject of the forward stream. A survivor rescues
// node 1 (rescue_after 1s): it takes the session from the replicated
// copy and adds those messages to it. The client, connecting to node 2,
// gets them all, once each, in order.
func TestClusterRescue(t *testing.T) {
	bs := startClusterBrokersWith(t, 3, func(c *broker.Config) { c.Cluster.RescueAfter = time.Second })
	addr := func(i int) string { return bs[i].Addr().String() }
	c, _ := p5Dial(t, addr(1), p5Expiry("left", true, 300), nil)
	c.sub(t, "r/#", 2)
	c.bye(t)
	awaitInterest(t, "r/x", map[*broker.Broker]int{bs[0]: 1})
	pub, _ := p5Dial(t, addr(0), p5CP("pub"), nil)
	var want []string
	for i := range 3 { // stored on node 1 for the session, and in the copy
		p := fmt.Sprint("before", i)
		pub.say(t, "r/x", p, byte(1+i%2))
		want = append(want, p)
	}
	testutil.Eventually(t, waitFor, "node 1 to queue 3 for the session", func() bool {
		n, _, ok := bs[1].SessionQueue("left")
		return ok && n == 3
	})
	stop(t, bs[1])

	for i := range 6 {
		p := fmt.Sprint("m", i)
		pub.say(t, "r/x", p, byte(1+i%2)) // PUBACK or PUBCOMP: in the forward stream
		want = append(want, p)
	}
	start := time.Now()
	testutil.Eventually(t, 60*time.Second, "a survivor to rescue the 6 messages", func() bool {
		return bs[0].RescueDelivered()+bs[2].RescueDelivered() == 6
	})
	t.Logf("rescued %v after the last PUBACK", time.Since(start))

	c, ack := p5Dial(t, addr(2), p5Expiry("left", false, 300), nil)
	if !ack.SessionPresent {
		t.Fatal("CONNACK on node 2: Session Present 0, want 1")
	}
	for _, p := range want {
		c.expect(t, "r/x", p)
	}
	c.quiet(t)
}

// TestClusterRescueThenBack: node 1 goes and is rescued (as in
// TestClusterRescue), then comes back on its data directory: its rescue
// ends, it takes back the session the rescuer kept with the messages that
// came meanwhile, and serves it, with what comes after, once each and in
// order.
func TestClusterRescueThenBack(t *testing.T) {
	var cfgs []broker.Config
	bs := startClusterBrokersWith(t, 3, func(c *broker.Config) {
		c.Cluster.RescueAfter = time.Second
		cfgs = append(cfgs, *c)
	})
	c, _ := p5Dial(t, bs[1].Addr().String(), p5Expiry("back", true, 300), nil)
	c.sub(t, "r/#", 2)
	c.bye(t)
	awaitInterest(t, "r/x", map[*broker.Broker]int{bs[0]: 1})
	stop(t, bs[1])

	pub, _ := p5Dial(t, bs[0].Addr().String(), p5CP("pub"), nil)
	var want []string
	say := func(p string, qos byte) {
		pub.say(t, "r/x", p, qos)
		want = append(want, p)
	}
	for i := range 4 {
		say(fmt.Sprint("gone", i), byte(1+i%2))
	}
	testutil.Eventually(t, 60*time.Second, "a survivor to rescue the 4 messages", func() bool {
		return bs[0].RescueDelivered()+bs[2].RescueDelivered() == 4
	})

	back, err := broker.New(cfgs[1])
	if err != nil {
		t.Fatal(err)
	}
	if mode := os.Getenv(testutil.RouteEnv); mode != "" {
		if err := back.ForceRouting(mode); err != nil {
			t.Fatal(err)
		}
	}
	if err := back.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeBroker(t, back) })
	if n, _, ok := back.SessionQueue("back"); !ok || n != 4 {
		t.Fatalf("node 1, back, has %d messages queued for the session (found %v), want the 4 rescued", n, ok)
	}
	awaitNodes(t, bs[0], "r/x", "n1")
	for i := range 2 {
		say(fmt.Sprint("back", i), byte(1+i%2))
	}

	c, ack := p5Dial(t, back.Addr().String(), p5Expiry("back", false, 300), nil)
	if !ack.SessionPresent {
		t.Fatal("CONNACK on node 1, back: Session Present 0, want 1")
	}
	for _, p := range want {
		c.expect(t, "r/x", p)
	}
	c.quiet(t)
}

// TestClusterSessionMovesMidQoS2: a QoS 2 message's PUBREL went out, its
// PUBCOMP never came, when the client reconnects to another node: the
// session moves with that packet id alone (the message itself is done
// with), and the new node sends the PUBREL again [MQTT-4.4.0-1].
func TestClusterSessionMovesMidQoS2(t *testing.T) {
	bs := startClusterBrokers(t, 3)
	addr := func(i int) string { return bs[i].Addr().String() }
	connect := codec.Connect{ClientID: []byte("mid-q2"), KeepAlive: 30}
	connect.Props.Set(codec.PropSessionExpiry)
	connect.Props.SessionExpiry = 300
	connect.CleanStart = true
	sub, _ := testutil.DialConnect(t, addr(0), codec.V5, connect)
	if codes := sub.Subscribe(1, "q2/#", 2); len(codes) != 1 || codes[0] != 2 {
		t.Fatalf("SUBACK %v, want [2]", codes)
	}
	pub, _ := p5Dial(t, addr(0), p5CP("mid-q2-pub"), nil)
	pub.say(t, "q2/x", "once", 2)
	p, _ := sub.ExpectPublish(waitFor)
	sub.SendAck(codec.PUBREC, p.PacketID)
	sub.ExpectAck(codec.PUBREL, p.PacketID, waitFor)
	sub.Drop() // no PUBCOMP

	connect.CleanStart = false
	again, ack := testutil.DialConnect(t, addr(1), codec.V5, connect)
	if !ack.SessionPresent {
		t.Fatal("CONNACK on node 1: Session Present 0, want 1")
	}
	again.ExpectAck(codec.PUBREL, p.PacketID, waitFor)
	again.SendAck(codec.PUBCOMP, p.PacketID)
	again.ExpectSilence(p5Quiet)
}

// TestClusterReceiptInCopy: once a client has received a QoS 2 message
// (its PUBREC came), the cluster's copy of its session keeps a receipt of
// the message after the delivery itself is gone (PUBCOMP), and a QoS 1
// message leaves none: the session's next node, or a rescuer, reading the
// copy, knows that message, should it come again, was delivered
// (TestRescuerSkipsReceived, package cluster).
func TestClusterReceiptInCopy(t *testing.T) {
	bs := startClusterBrokers(t, 3)
	addr := func(i int) string { return bs[i].Addr().String() }
	c, _ := p5Dial(t, addr(1), p5Expiry("receipts", true, 300), nil)
	c.sub(t, "rc/#", 2)
	pub, _ := p5Dial(t, addr(1), p5CP("receipts-pub"), nil)
	pub.say(t, "rc/x", "one", 1)
	pub.say(t, "rc/x", "two", 2)
	c.expect(t, "rc/x", "one")
	c.expect(t, "rc/x", "two")
	testutil.Eventually(t, waitFor, "the copy to have a receipt of the QoS 2 message", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		got, err := bs[1].CopyReceived(ctx, "receipts")
		return err == nil && len(got) == 1 && got[0] != 0
	})
	n, _, ok := bs[1].SessionQueue("receipts")
	if !ok || n != 0 {
		t.Fatalf("%d queued (found %v), want none", n, ok)
	}
}
