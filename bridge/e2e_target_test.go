package bridge_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/shoalmq/shoal/broker"
	"github.com/shoalmq/shoal/internal/testutil"
)

// shoalAt starts a Shoal broker on addr keeping its state in dir; stop
// closes it (also at the end of the test).
func shoalAt(t *testing.T, addr, dir string) (stop func()) {
	t.Helper()
	cfg := broker.DefaultConfig()
	cfg.Listen = addr
	cfg.Loops, cfg.Workers = 2, 2
	cfg.SysInterval = 0
	cfg.DataDir = dir
	cfg.MaxQueued = 100000
	b, err := broker.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	done := false
	stop = func() {
		if done {
			return
		}
		done = true
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := b.Close(ctx); err != nil {
			t.Errorf("broker.Close: %v", err)
		}
	}
	t.Cleanup(stop)
	return stop
}

// TestFromMosquittoShoalRestart: Shoal as the remote of a real
// mosquitto's bridge (which marks its CONNECT 0x84, try_private, and
// publishes its state under $SYS/broker/connection/ with a will there).
// mosquitto bridges in/# to Shoal at QoS 1; Shoal, persistent, is stopped
// and started again in the middle of the stream. Every message mosquitto
// acknowledged to the publisher reaches the persistent subscriber on
// Shoal.
func TestFromMosquittoShoalRestart(t *testing.T) {
	const n = 2000
	addr := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	dir := t.TempDir()
	stop := shoalAt(t, addr, dir)

	got := newTally()
	sub := pahoClient(t, addr, "edge-sub", true, nil)
	subscribe(t, sub, "in/#", 1, got.handler)
	state := newTally()
	subscribe(t, sub, "$SYS/broker/connection/+/state", 1, state.handler)

	m := testutil.StartMosquitto(t, fmt.Sprintf(`max_queued_messages 0
connection shoal
address %s
topic in/# out 1
remote_clientid central-bridge
restart_timeout 1
keepalive_interval 5
`, addr))
	testutil.Eventually(t, 20*time.Second, "mosquitto's bridge to say 1", func() bool { return state.count("1") > 0 })

	pub := pahoClient(t, m.Addr, "central-pub", false, nil)
	acked := publishAll(t, pub, "in/x", "m", n, func() {
		stop()
		stop = shoalAt(t, addr, dir)
	})
	got.waitAll(t, 60*time.Second, acked)
	t.Logf("published %d, acknowledged by mosquitto %d, received on Shoal %d (distinct), duplicates %d",
		n, len(acked), len(acked)-len(got.missing(acked)), got.dups())
	if len(acked) != n {
		t.Errorf("mosquitto acknowledged %d of %d", len(acked), n)
	}
}
