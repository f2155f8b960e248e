package broker_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/shoalmq/shoal/broker"
	"github.com/shoalmq/shoal/internal/cluster"
	"github.com/shoalmq/shoal/internal/testutil"
)

// TestClusterWillDelayed: an MQTT 5 client with a Will Delay Interval
// (2 s, its session kept 60 s) vanishes from node 0 (its TCP connection
// closed, no DISCONNECT): its will waits in the cluster's replicated
// state, seen by every node, and a subscriber on node 1 gets it once,
// after the delay [MQTT-3.1.3-9]. If node 0 closes while the will waits,
// a surviving node publishes it, once, the grace after it was due.
func TestClusterWillDelayed(t *testing.T) {
	for _, ownerCloses := range []bool{false, true} {
		t.Run(fmt.Sprintf("ownerCloses=%v", ownerCloses), func(t *testing.T) {
			bs := startClusterBrokers(t, 3)
			w, _ := p5Dial(t, bs[1].Addr().String(), p5CP("watcher"), nil)
			w.sub(t, "will/#", 1)
			awaitInterest(t, "will/dies", map[*broker.Broker]int{bs[0]: 1, bs[2]: 1})

			c, _ := p5Dial(t, bs[0].Addr().String(), p5Will("dies", "will/dies", 2), nil)
			left := time.Now()
			c.TerminateConnectionForTest()
			for i, b := range bs {
				testutil.Eventually(t, waitFor, fmt.Sprintf("node %d to know the will", i), func() bool { return b.ClusterWills() == 1 })
			}
			if ownerCloses {
				stop(t, bs[0])
			}
			// Due 2 s after the close, plus the grace when its node is
			// gone, plus room for a loaded machine — and, when node 0
			// closes, for the buckets it led to elect new leaders: a
			// survivor's claim of the will waits for the wills bucket's
			// (tried again each second), its forward for the forward
			// stream's. Once in a fresh-clone make test beside .ci/run and
			// two stress-ng runs, 9 s was not enough.
			wait := 2*time.Second + 5*time.Second
			if ownerCloses {
				wait += 10 * time.Second
			}
			if ownerCloses {
				wait += cluster.DefaultWillGrace
			}
			select {
			case p := <-w.msgs:
				if p.Topic != "will/dies" || string(p.Payload) != "gone:dies" || p.QoS != 1 {
					t.Fatalf("got %q on %q at QoS %d", p.Payload, p.Topic, p.QoS)
				}
			case <-time.After(wait):
				t.Fatalf("no will within %v", wait)
			}
			if since := time.Since(left); since < 2*time.Second {
				t.Fatalf("will published %v after the client vanished, before its 2 s delay", since)
			} else if ownerCloses && since < 2*time.Second+cluster.DefaultWillGrace {
				t.Fatalf("will published %v after the client vanished, before its delay and the grace", since)
			}
			for i, b := range bs[1:] {
				testutil.Eventually(t, waitFor, fmt.Sprintf("node %d to see the will gone", i+1), func() bool { return b.ClusterWills() == 0 })
			}
			w.quiet(t) // once
		})
	}
}
