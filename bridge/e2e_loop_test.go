package bridge_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/shoalmq/shoal/bridge"
	"github.com/shoalmq/shoal/internal/testutil"
)

// crossBoth publishes one message on each broker under loop/ and checks
// that each subscriber, one per broker, gets each exactly once: the
// bridge carries them across, and nothing comes back over it. Sentinels
// published after them, on each side, bound the wait for an echo: an
// echo travels the bridge ahead of them.
func crossBoth(t *testing.T, shoalAddr, mosqAddr string) {
	t.Helper()
	onShoal, onMosq := newTally(), newTally()
	subscribe(t, pahoClient(t, shoalAddr, "sub-shoal", false, nil), "loop/#", 1, onShoal.handler)
	subscribe(t, pahoClient(t, mosqAddr, "sub-mosq", false, nil), "loop/#", 1, onMosq.handler)
	ps := pahoClient(t, shoalAddr, "pub-shoal", false, nil)
	pm := pahoClient(t, mosqAddr, "pub-mosq", false, nil)
	publishAll(t, ps, "loop/a", "from-shoal", 1, nil)
	publishAll(t, pm, "loop/b", "from-mosq", 1, nil)
	both := []string{"from-shoal-0", "from-mosq-0"}
	onShoal.waitAll(t, 20*time.Second, both)
	onMosq.waitAll(t, 20*time.Second, both)
	publishAll(t, ps, "loop/a", "sentinel-shoal", 1, nil)
	publishAll(t, pm, "loop/b", "sentinel-mosq", 1, nil)
	sentinels := []string{"sentinel-shoal-0", "sentinel-mosq-0"}
	onShoal.waitAll(t, 20*time.Second, sentinels)
	onMosq.waitAll(t, 20*time.Second, sentinels)
	for _, p := range append(both, sentinels...) {
		if a, b := onShoal.count(p), onMosq.count(p); a != 1 || b != 1 {
			t.Errorf("%s: %d copies on Shoal, %d on mosquitto; want 1 each (an echo over the bridge)", p, a, b)
		}
	}
}

// TestBothWaysNoLoop: a Shoal bridge with topic loop/# both, to a real
// mosquitto, over MQTT 3.1.1 (mosquitto applies No Local for the bridge
// because of try_private) and MQTT 5 (the bridge asks for No Local).
func TestBothWaysNoLoop(t *testing.T) {
	for _, proto := range []bridge.Protocol{bridge.MQTT311, bridge.MQTT5} {
		t.Run(string(proto), func(t *testing.T) {
			m := testutil.StartMosquitto(t, "")
			b, addr := testutil.StartBroker(t, edge(m.Addr, []bridge.Topic{{Pattern: "loop/#", Direction: bridge.Both, QoS: 1}},
				func(cn *bridge.Connection) { cn.Protocol = proto }))
			waitState(t, b, "up")
			crossBoth(t, addr, m.Addr)
			// Counted on the acknowledgement, which may follow delivery.
			testutil.Eventually(t, 10*time.Second, "2 forwarded each way (message and sentinel)", func() bool {
				st := bridgeStats(t, b)
				return st.ForwardedOut == 2 && st.ForwardedIn == 2
			})
		})
	}
}

// TestMosquittoBridgesBothWaysToShoal: a real mosquitto bridges loop/#
// both ways to Shoal. Its 3.1.1 CONNECT carries the bridge mark, so Shoal
// must not send the bridge's own messages back to it.
func TestMosquittoBridgesBothWaysToShoal(t *testing.T) {
	_, addr := testutil.StartBroker(t, nil)
	m := testutil.StartMosquitto(t, fmt.Sprintf("connection shoal\naddress %s\ntopic loop/# both 1\nremote_clientid central-bridge\nrestart_timeout 1\n", addr))
	state := newTally()
	subscribe(t, pahoClient(t, addr, "watch", false, nil), "$SYS/broker/connection/central-bridge/state", 1, state.handler)
	testutil.Eventually(t, 20*time.Second, "mosquitto's bridge to say 1", func() bool { return state.count("1") > 0 })
	crossBoth(t, addr, m.Addr)
}
