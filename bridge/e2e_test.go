package bridge_test

import (
	"strconv"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/rs/zerolog"
	"github.com/shoalmq/shoal/bridge"
	"github.com/shoalmq/shoal/broker"
	"github.com/shoalmq/shoal/internal/testutil"
)

// The bridges here run against peers nobody here wrote: a real mosquitto
// (as the remote broker, and as a bridge to Shoal) and Eclipse Paho
// clients. Every wait is for an event, bounded.

// fast is a restart_timeout for tests: a few hundred milliseconds.
var fast = bridge.Backoff{Base: 50 * time.Millisecond, Cap: 300 * time.Millisecond}

// edge returns a broker edit adding one bridge to remote with topics.
func edge(remote string, topics []bridge.Topic, mod func(*bridge.Connection)) func(*broker.Config) {
	return func(cfg *broker.Config) {
		cn := bridge.DefaultConnection("central")
		cn.Addresses = []string{remote}
		cn.Topics = topics
		cn.RemoteClientID = "edge-1"
		cn.RestartTimeout = fast
		if mod != nil {
			mod(&cn)
		}
		cfg.Bridges.Connections = append(cfg.Bridges.Connections, cn)
	}
}

// pahoClient connects an Eclipse Paho 3.1.1 client that reconnects by
// itself and keeps its session (clean session false) when persistent.
func pahoClient(t *testing.T, addr, id string, persistent bool, onConnect func(mqtt.Client)) mqtt.Client {
	t.Helper()
	o := mqtt.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(id).
		SetCleanSession(!persistent).SetAutoReconnect(true).SetConnectRetry(true).
		SetConnectRetryInterval(50 * time.Millisecond).SetMaxReconnectInterval(200 * time.Millisecond).
		SetKeepAlive(30 * time.Second).SetOrderMatters(false)
	if onConnect != nil {
		o.SetOnConnectHandler(onConnect)
	}
	c := mqtt.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("paho %s: connect: %v", id, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c
}

// tally records the payloads a subscriber got.
type tally struct {
	mu    sync.Mutex
	seen  map[string]int
	total int
	ch    chan struct{} // pinged on each message
}

func newTally() *tally { return &tally{seen: map[string]int{}, ch: make(chan struct{}, 1)} }

func (c *tally) handler(_ mqtt.Client, m mqtt.Message) {
	c.mu.Lock()
	c.seen[string(m.Payload())]++
	c.total++
	c.mu.Unlock()
	select {
	case c.ch <- struct{}{}:
	default:
	}
}

func (c *tally) count(p string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.seen[p]
}

// missing returns which of want the subscriber has not had.
func (c *tally) missing(want []string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, w := range want {
		if c.seen[w] == 0 {
			out = append(out, w)
		}
	}
	return out
}

// waitAll waits until the subscriber has every one of want, or fails
// after d naming what is missing.
func (c *tally) waitAll(t *testing.T, d time.Duration, want []string) {
	t.Helper()
	deadline := time.After(d)
	for {
		miss := c.missing(want)
		if len(miss) == 0 {
			return
		}
		select {
		case <-c.ch:
		case <-deadline:
			t.Fatalf("%d of %d acknowledged messages never arrived, e.g. %q", len(miss), len(want), miss[:min(5, len(miss))])
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (c *tally) dups() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.total - len(c.seen)
}

// subscribe subscribes c (again on each connect, for a fresh session)
// and waits for the SUBACK.
func subscribe(t *testing.T, c mqtt.Client, filter string, qos byte, h mqtt.MessageHandler) {
	t.Helper()
	if tok := c.Subscribe(filter, qos, h); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe %s: %v", filter, tok.Error())
	}
}

// publishAll publishes n QoS 1 messages "prefix-i" on topic, calling
// middle once after half were acknowledged; it returns the payloads the
// broker acknowledged. A publish not acknowledged (the connection broke)
// is not counted: only what the broker took must arrive.
func publishAll(t *testing.T, c mqtt.Client, topic, prefix string, n int, middle func()) (acked []string) {
	t.Helper()
	for i := range n {
		if i == n/2 && middle != nil {
			middle()
		}
		p := prefix + "-" + strconv.Itoa(i)
		tok := c.Publish(topic, 1, false, p)
		if tok.WaitTimeout(20*time.Second) && tok.Error() == nil {
			acked = append(acked, p)
		}
	}
	return acked
}

func bridgeStats(t *testing.T, b *broker.Broker) bridge.Stats {
	t.Helper()
	st := b.Bridges()
	if len(st) != 1 {
		t.Fatalf("%d bridges", len(st))
	}
	return st[0]
}

func waitState(t *testing.T, b *broker.Broker, state string) {
	t.Helper()
	testutil.Eventually(t, 20*time.Second, "bridge "+state, func() bool { return bridgeStats(t, b).State == state })
}

// TestToMosquittoRemoteRestart: Shoal bridges out/# to a real mosquitto
// at QoS 1; mosquitto is stopped (SIGTERM) and started again, with its
// persistence, in the middle of the stream. Every message Shoal
// acknowledged to the publisher reaches the persistent subscriber on
// mosquitto.
func TestToMosquittoRemoteRestart(t *testing.T) {
	const n = 2000
	m := testutil.StartMosquitto(t, "max_queued_messages 0")
	got := newTally()
	sub := pahoClient(t, m.Addr, "central-sub", true, nil)
	subscribe(t, sub, "out/#", 1, got.handler)

	b, addr := testutil.StartBroker(t, func(cfg *broker.Config) {
		cfg.MaxQueued = 4 * n // every message fits while mosquitto is down
		cfg.Logger = zerolog.New(zerolog.NewTestWriter(t))
		edge(m.Addr, []bridge.Topic{{Pattern: "out/#", Direction: bridge.Out, QoS: 1}}, nil)(cfg)
	})
	waitState(t, b, "up")
	pub := pahoClient(t, addr, "edge-pub", false, nil)
	acked := publishAll(t, pub, "out/x", "m", n, func() {
		m.Restart()
	})
	t.Logf("stats after publishing: %+v", bridgeStats(t, b))
	got.waitAll(t, 60*time.Second, acked)
	st := bridgeStats(t, b)
	t.Logf("published %d, acknowledged by Shoal %d, received on mosquitto %d (distinct), duplicates %d; bridge: %+v",
		n, len(acked), len(acked)-len(got.missing(acked)), got.dups(), st)
	if len(acked) != n {
		t.Errorf("Shoal acknowledged %d of %d", len(acked), n)
	}
	if st.Connects < 2 {
		t.Errorf("the bridge connected %d times; mosquitto was restarted", st.Connects)
	}
}
