package broker_test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/shoalmq/shoal/broker"
	"github.com/shoalmq/shoal/internal/testutil"
)

// awaitInterest waits until each of brokers sends topic to want other
// nodes: a node's subscriptions reach the others through a watch, after
// the SUBACK.
func awaitInterest(t *testing.T, topic string, want map[*broker.Broker]int) {
	t.Helper()
	for b, n := range want {
		testutil.Eventually(t, waitFor, fmt.Sprintf("%d nodes' interest in %q", n, topic),
			func() bool { return b.ClusterPeersFor(topic) == n })
	}
}

// TestClusterRouteBothWays: messages published on any node reach the
// matching subscribers on the others, in each publisher's order, once per
// session even with overlapping filters, at the lower of the two QoS —
// paho and mosquitto_pub publishing, paho subscribing.
func TestClusterRouteBothWays(t *testing.T) {
	bs := startClusterBrokers(t, 3)
	addr := func(i int) string { return bs[i].Addr().String() }

	overlap, low := newInbox(), newInbox()
	// One handler for the connection: paho calls a handler per matching
	// subscription, which would count one PUBLISH twice.
	s1 := pahoConnect(t, addr(1), "overlap", func(o *mqtt.ClientOptions) { o.SetDefaultPublishHandler(overlap.handler) })
	for _, f := range []string{"r/+", "r/#"} {
		must(t, s1.Subscribe(f, 2, nil))
	}
	subscribe(t, pahoConnect(t, addr(0), "low"), "r/#", 0, low)
	if n := bs[1].SubscriptionCount(); n != 2 {
		t.Fatalf("node 1 counts %d subscriptions, want its own 2", n)
	}
	awaitInterest(t, "r/x", map[*broker.Broker]int{bs[0]: 1, bs[1]: 1, bs[2]: 2})

	const n = 50
	p := pahoConnect(t, addr(2), "pub2")
	for i := range n {
		must(t, p.Publish("r/x", 1, false, strconv.Itoa(i)))
	}
	for _, c := range []struct {
		name string
		in   *inbox
		qos  byte
	}{{"overlap", overlap, 1}, {"low", low, 0}} {
		got := c.in.wait(t, n)
		for i, m := range got {
			if m.topic != "r/x" || m.payload != strconv.Itoa(i) || m.qos != c.qos {
				t.Fatalf("%s: message %d is %+v, want r/x %d at QoS %d, in order", c.name, i, m, i, c.qos)
			}
		}
	}

	// The other way: from node 1 to node 0, QoS 2, and mosquitto_pub from
	// node 0 to node 1.
	p1 := pahoConnect(t, addr(1), "pub1")
	must(t, p1.Publish("r/y", 2, false, "two"))
	pub(t, addr(0), "-q", "1", "-t", "r/z", "-m", "from-mosquitto")
	if m := low.wait(t, n+2)[n:]; m[0].payload != "two" && m[1].payload != "two" {
		t.Fatalf("node 0 got %+v, want node 1's message", m)
	}
	got := overlap.wait(t, n+2)[n:]
	if got[0].payload != "two" || got[1].payload != "from-mosquitto" || got[1].qos != 1 || got[0].qos != 2 {
		t.Fatalf("node 1 got %+v", got)
	}
	overlap.quiet(t, n+2, 200*time.Millisecond)
}

// TestClusterRouteSharedAcrossNodes: a shared group with two members on
// one node and one on another is one group (MQTT 5 paho members): each
// message goes to exactly one member, and round robin gives each member
// its third, weighted by members, not by nodes.
func TestClusterRouteSharedAcrossNodes(t *testing.T) {
	bs := startClusterBrokers(t, 3)
	var members []*p5Client
	for i, node := range []int{1, 1, 2} {
		m, _ := p5Dial(t, bs[node].Addr().String(), p5CP(fmt.Sprint("member", i)), nil)
		m.sub(t, "$share/g/s/#", 1)
		members = append(members, m)
	}
	testutil.Eventually(t, waitFor, "node 0 to see the group's 3 members", func() bool { return bs[0].ClusterPeerSubscriptions() == 3 })
	pub, _ := p5Dial(t, bs[0].Addr().String(), p5CP("pub"), nil)
	var want []string
	for i := range 90 {
		want = append(want, strconv.Itoa(i))
		pub.say(t, "s/1", want[i], 1)
	}
	got := p5Gather(t, len(want), members...)
	p5Once(t, got, want)
	for i, g := range got {
		if len(g) != len(want)/3 {
			t.Errorf("member %d got %d messages, want %d", i, len(g), len(want)/3)
		}
	}
}

// TestClusterRouteWill: a will published because a client on one node
// went away reaches a subscriber on another.
func TestClusterRouteWill(t *testing.T) {
	bs := startClusterBrokers(t, 3) // two JetStream peers need each other to elect a leader: slow under load
	in := newInbox()
	subscribe(t, pahoConnect(t, bs[1].Addr().String(), "watcher"), "will/#", 1, in)
	awaitInterest(t, "will/dies", map[*broker.Broker]int{bs[0]: 1})
	var d dropper
	pahoConnect(t, bs[0].Addr().String(), "dies", func(o *mqtt.ClientOptions) {
		o.SetWill("will/dies", "gone", 1, false)
		o.SetCustomOpenConnectionFn(d.open)
	})
	d.drop()
	if m := in.wait(t, 1)[0]; m.topic != "will/dies" || m.payload != "gone" || m.qos != 1 {
		t.Fatalf("will = %+v", m)
	}
}

// TestClusterRouteRetainedReadYourWrite: a SUBSCRIBE on one node right
// after a retained PUBLISH was acknowledged on another gets the message,
// every time (mosquitto_pub, then mosquitto_sub at once); a delete on a
// third node is seen by the next SUBSCRIBE anywhere.
func TestClusterRouteRetainedReadYourWrite(t *testing.T) {
	bs := startClusterBrokers(t, 3)
	host := func(i int) []string {
		h, p := testutil.HostPort(t, bs[i].Addr().String())
		return []string{"-h", h, "-p", p}
	}
	sub := func(i int, args ...string) string {
		t.Helper()
		out, err := testutil.Mosquitto(t, 10*time.Second, "mosquitto_sub", append(host(i), args...)...)
		if err != nil {
			t.Fatalf("mosquitto_sub %v: %v: %s", args, err, out)
		}
		return out
	}
	for i := range 10 {
		topic := fmt.Sprintf("state/%d", i)
		pub(t, bs[0].Addr().String(), "-q", "1", "-r", "-t", topic, "-m", "v"+strconv.Itoa(i))
		if got := sub(1+i%2, "-C", "1", "-W", "5", "-t", topic); got != "v"+strconv.Itoa(i)+"\n" {
			t.Fatalf("node %d read %q for %s right after node 0 acknowledged it", 1+i%2, got, topic)
		}
	}
	pub(t, bs[2].Addr().String(), "-q", "1", "-r", "-n", "-t", "state/3")
	// -W ends it ("Timed out") after the retained ones: 9 are left,
	// wherever one reads.
	for i := range bs {
		out, _ := testutil.Mosquitto(t, 10*time.Second, "mosquitto_sub", append(host(i), "-W", "1", "-t", "state/#", "-v")...)
		if n := strings.Count(out, "state/"); n != 9 || strings.Contains(out, "state/3 ") {
			t.Fatalf("node %d has %d retained messages after the delete: %q", i, n, out)
		}
	}
}
