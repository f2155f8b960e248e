package broker_test

import (
	"slices"
	"testing"
	"time"

	"github.com/shoalmq/shoal/broker"
	"github.com/shoalmq/shoal/codec"
	"github.com/shoalmq/shoal/internal/testutil"
)

// TestReload: Reload applies the limits to what comes next, names the
// settings that need a restart, and refuses an invalid configuration.
func TestReload(t *testing.T) {
	var cfg broker.Config
	b, addr := testutil.StartBroker(t, func(c *broker.Config) { c.MaxQueued = 1000; cfg = *c })

	bad := cfg
	bad.MaxInflight = 0
	if _, err := b.Reload(bad); err == nil {
		t.Fatal("an invalid configuration was taken")
	}

	next := cfg
	next.MaxQueued = 2
	next.SlowConsumer = broker.DropSlow
	next.QueuePolicy = broker.DropNewest
	next.Listen = "127.0.0.1:1"
	restart, err := b.Reload(next)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(restart, []string{"Listen"}) {
		t.Errorf("needs a restart: %v, want [Listen]", restart)
	}

	// An offline session now keeps 2 messages, the first two.
	s, _ := testutil.DialConnect(t, addr, codec.V311, codec.Connect{ClientID: []byte("q")})
	s.Subscribe(1, "r/t", 1)
	s.SendDisconnect(codec.Success)
	testutil.Eventually(t, testutil.Wait, "offline", func() bool { return b.SessionFor("q").LoopHint() < 0 })
	p, _ := testutil.DialConnect(t, addr, codec.V311, codec.Connect{ClientID: []byte("p"), CleanStart: true})
	for i := uint16(1); i <= 4; i++ {
		p.SendPublish(codec.Publish{Topic: []byte("r/t"), QoS: 1, PacketID: i, Payload: []byte{'0' + byte(i)}})
		p.ExpectAck(codec.PUBACK, i, testutil.Wait)
	}
	back, _ := testutil.DialConnect(t, addr, codec.V311, codec.Connect{ClientID: []byte("q")})
	var got []string
	for range 2 {
		m, _ := back.ExpectPublish(testutil.Wait)
		got = append(got, string(m.Payload))
		back.SendAck(codec.PUBACK, m.PacketID)
	}
	back.ExpectSilence(200 * time.Millisecond)
	if !slices.Equal(got, []string{"1", "2"}) {
		t.Errorf("queued %v, want [1 2]: max_queued 2 with drop-newest", got)
	}
}
