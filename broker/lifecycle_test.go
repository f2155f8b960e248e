package broker_test

import (
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/shoalmq/shoal/broker"
	"github.com/shoalmq/shoal/codec"
	"github.com/shoalmq/shoal/internal/testutil"
)

// TestLifecycleLog: connects, disconnects (with the reason) and takeovers
// are logged at info level — and a reconnect storm is cut to the rate
// limit, with the lines held back counted in a warning.
func TestLifecycleLog(t *testing.T) {
	var logs testutil.SyncBuffer
	_, addr := testutil.StartBroker(t, func(c *broker.Config) {
		c.Logger = zerolog.New(&logs).Level(zerolog.InfoLevel)
		c.SysInterval = 0
	})
	a, _ := testutil.DialConnect(t, addr, codec.V311, codec.Connect{ClientID: []byte("twin")})
	b, _ := testutil.DialConnect(t, addr, codec.V311, codec.Connect{ClientID: []byte("twin")})
	a.ExpectClosed(testutil.Wait)
	b.SendDisconnect(codec.Success)
	testutil.Eventually(t, testutil.Wait, "the lines", func() bool {
		out := logs.String()
		return strings.Contains(out, `"reason":"normal"`) && strings.Contains(out, `"session taken over"`) &&
			strings.Contains(out, `"reason":"takeover"`) && strings.Count(out, `"client connected"`) == 2
	})

	// A storm: 600 connections in a row, far over 2 loops' bursts of 100.
	for i := range 600 {
		r := testutil.Dial(t, addr, codec.V311)
		r.Connect(codec.Connect{ClientID: []byte("storm"), CleanStart: true})
		r.Drop()
		_ = i
	}
	time.Sleep(1200 * time.Millisecond) // a tick reports what was held back
	out := logs.String()
	lines := strings.Count(out, `"client connected"`) + strings.Count(out, `"client disconnected"`) + strings.Count(out, `"session taken over"`)
	if lines > 2*100+2*20*10+10 { // bursts plus the rate over a generous 10 s
		t.Errorf("%d lifecycle lines for a storm of 600 connections: not rate-limited", lines)
	}
	if !strings.Contains(out, "connection events not logged") {
		t.Errorf("no report of the lines held back")
	}
}
