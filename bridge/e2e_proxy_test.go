package bridge_test

import (
	"io"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/shoalmq/shoal/bridge"
	"github.com/shoalmq/shoal/broker"
	"github.com/shoalmq/shoal/internal/testutil"
)

// proxy forwards TCP connections to a target, and can cut the network
// path: down closes every connection and refuses new ones until up.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	isDown bool
	conns  []net.Conn
}

func newProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target}
	testutil.Serve(t, ln, p.down, func(c net.Conn) {
		p.mu.Lock()
		if p.isDown {
			p.mu.Unlock()
			_ = c.Close()
			return
		}
		s, err := net.Dial("tcp", target)
		if err != nil {
			p.mu.Unlock()
			_ = c.Close()
			return
		}
		p.conns = append(p.conns, c, s)
		p.mu.Unlock()
		pipe(c, s)
	})
	return p
}

// pipe copies between c and s, both ways, until either closes.
func pipe(c, s net.Conn) {
	done := make(chan struct{})
	go func() { _, _ = io.Copy(s, c); _ = s.Close(); close(done) }()
	_, _ = io.Copy(c, s)
	_ = c.Close()
	<-done
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.isDown = true
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
}

func (p *proxy) up() {
	p.mu.Lock()
	p.isDown = false
	p.mu.Unlock()
}

// TestNetworkCutQoS2: Shoal bridges to another Shoal through a proxy that
// cuts the path in the middle of a QoS 2 stream. What the edge
// acknowledged arrives, exactly once: the bridge resends in-flight
// messages with their packet ids, and the remote knows them.
func TestNetworkCutQoS2(t *testing.T) {
	const n = 1000
	_, central := testutil.StartBroker(t, nil)
	p := newProxy(t, central)
	got := newTally()
	subscribe(t, pahoClient(t, central, "central-sub", true, nil), "q2/#", 2, got.handler)
	b, addr := testutil.StartBroker(t, edge(p.addr(), []bridge.Topic{{Pattern: "q2/#", Direction: bridge.Out, QoS: 2}}, nil))
	waitState(t, b, "up")
	pub := pahoClient(t, addr, "edge-pub", false, nil)
	var acked []string
	for i := range n {
		if i == n/2 {
			p.down()
			testutil.Eventually(t, 20*time.Second, "the link to see the cut", func() bool { return bridgeStats(t, b).State != "up" })
			p.up()
		}
		pl := "m-" + strconv.Itoa(i)
		if tok := pub.Publish("q2/x", 2, false, pl); tok.WaitTimeout(20*time.Second) && tok.Error() == nil {
			acked = append(acked, pl)
		}
	}
	got.waitAll(t, 60*time.Second, acked)
	st := bridgeStats(t, b)
	t.Logf("published %d, acknowledged by the edge %d, received on central %d (distinct), duplicates %d; bridge: %+v",
		n, len(acked), len(acked)-len(got.missing(acked)), got.dups(), st)
	if got.dups() != 0 {
		t.Errorf("%d duplicates at QoS 2", got.dups())
	}
	if st.Connects < 2 {
		t.Errorf("connects %d: the path was cut", st.Connects)
	}
}

// TestQueueBoundWhileDown: with the remote unreachable, the bridge holds
// its in-flight window (64) and its local session queue holds max_queued
// (10, drop-oldest) more; the rest is dropped and counted. When the
// remote comes, exactly those 74 go across.
func TestQueueBoundWhileDown(t *testing.T) {
	const n = 200
	_, central := testutil.StartBroker(t, nil)
	p := newProxy(t, central)
	p.down()
	got := newTally()
	subscribe(t, pahoClient(t, central, "central-sub", true, nil), "q/#", 1, got.handler)
	b, addr := testutil.StartBroker(t, func(cfg *broker.Config) {
		cfg.MaxQueued = 10
		edge(p.addr(), []bridge.Topic{{Pattern: "q/#", Direction: bridge.Out, QoS: 1}}, nil)(cfg)
	})
	// Until the bridge's session on the edge has subscribed, a message
	// published there matches no one (acknowledged, and counted nowhere:
	// about one run in a hundred under load published the first dozens
	// too early).
	testutil.Eventually(t, 10*time.Second, "the bridge's subscription on the edge", func() bool { return b.Stats().Subscriptions >= 1 })
	pub := pahoClient(t, addr, "edge-pub", false, nil)
	acked := publishAll(t, pub, "q/x", "m", n, nil)
	if len(acked) != n {
		t.Fatalf("the edge acknowledged %d of %d", len(acked), n)
	}
	testutil.Eventually(t, 10*time.Second, "64 held, 10 queued, 126 dropped", func() bool {
		st := bridgeStats(t, b)
		return st.Holding == 64 && st.Queued == 10 && st.Dropped == n-74
	})
	p.up()
	var want []string
	for i := range 64 {
		want = append(want, "m-"+strconv.Itoa(i)) // in flight to the bridge
	}
	for i := n - 10; i < n; i++ {
		want = append(want, "m-"+strconv.Itoa(i)) // the newest, kept by drop-oldest
	}
	got.waitAll(t, 30*time.Second, want)
	// A sentinel behind them bounds the wait for any more.
	publishAll(t, pub, "q/x", "sentinel", 1, nil)
	got.waitAll(t, 30*time.Second, []string{"sentinel-0"})
	got.mu.Lock()
	distinct := len(got.seen)
	got.mu.Unlock()
	st := bridgeStats(t, b)
	t.Logf("published %d while the remote was down; held %d + queued %d arrived; dropped %d; bridge: %+v", n, 64, 10, st.Dropped, st)
	testutil.Eventually(t, 10*time.Second, "nothing held or queued", func() bool {
		st := bridgeStats(t, b)
		return st.Holding == 0 && st.Queued == 0
	})
	if distinct != 75 {
		t.Errorf("%d distinct messages arrived, want 74 and the sentinel", distinct)
	}
}

// TestTryPrivateRefused: a remote that refuses the bridge mark (CONNACK
// 0x01, unacceptable protocol version, as a broker that knows only plain
// 3.1.1 answers 0x84) is asked again without it, and the link comes up.
func TestTryPrivateRefused(t *testing.T) {
	_, central := testutil.StartBroker(t, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	levels := make(chan byte, 16)
	testutil.Serve(t, ln, func() {}, func(c net.Conn) {
		// CONNECT: header (2 bytes, short), name "MQTT" (6), level.
		head := make([]byte, 9)
		if _, err := io.ReadFull(c, head); err != nil {
			_ = c.Close()
			return
		}
		levels <- head[8]
		if head[8]&0x80 != 0 {
			_, _ = c.Write([]byte{0x20, 0x02, 0x00, 0x01})
			_ = c.Close()
			return
		}
		s, err := net.Dial("tcp", central)
		if err != nil {
			_ = c.Close()
			return
		}
		_, _ = s.Write(head)
		pipe(c, s)
	})
	b, _ := testutil.StartBroker(t, edge(ln.Addr().String(), []bridge.Topic{{Pattern: "a/#", QoS: 1}}, nil))
	waitState(t, b, "up")
	if first, second := <-levels, <-levels; first != 0x84 || second != 0x04 {
		t.Errorf("protocol levels %#x then %#x, want 0x84 then 0x04", first, second)
	}
}
