package broker_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/shoalmq/shoal/broker"
	"github.com/shoalmq/shoal/internal/testutil"
)

// TestClusterSessionMoves: a persistent session made on node 0 resumes on
// node 1 with Session Present, the messages queued for it while it was
// away (published on node 2), and its subscriptions, which now bring the
// messages to node 1; node 0 no longer has it.
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
	// Node 2 sends to node 1 now: node 0's interest went with the session.
	testutil.Eventually(t, waitFor, "node 2 to see the session's filter on node 1 only", func() bool {
		return bs[2].ClusterPeerSubscriptions() == 1 && bs[1].SubscriptionCount() == 1
	})
	pub.say(t, "m/x", "after", 1)
	c.expect(t, "m/x", "after")
}

// TestClusterSessionTakeover: a client connected to node 0 that connects
// again to node 1 takes its session over: the connection on node 0 gets
// DISCONNECT 0x8E (session taken over), the one on node 1 Session Present,
// and the messages published on node 2 meanwhile arrive, in order, on one
// connection or the other.
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
	testutil.Eventually(t, waitFor, "node 2 to send to node 1", func() bool {
		return bs[2].ClusterPeerSubscriptions() == 1 && bs[1].SubscriptionCount() == 1 && bs[0].SubscriptionCount() == 0
	})
	pub.say(t, "t/x", "new", 1)
	c.expect(t, "t/x", "new")
}

// TestClusterSessionOneOwner: twenty connects with one client id to three
// nodes at once leave exactly one connection: the others are taken over
// (0x8E), and the owners' bucket names the node of the one left.
func TestClusterSessionOneOwner(t *testing.T) {
	bs := startClusterBrokers(t, 3)
	const n = 20
	clients := make([]*p5Client, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, _, err := p5Connect(t, bs[i%3].Addr().String(), p5CP("same"), nil)
			if err == nil {
				clients[i] = c
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
	testutil.Eventually(t, 10*time.Second, "one connection left", func() bool {
		n, _ := alive()
		return n == 1
	})
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
