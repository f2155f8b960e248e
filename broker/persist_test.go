package broker_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/shoalmq/shoal/broker"
	"github.com/shoalmq/shoal/codec"
	"github.com/shoalmq/shoal/internal/deadline"
	"github.com/shoalmq/shoal/internal/testutil"
	"github.com/shoalmq/shoal/store"
)

// Persistence across a broker restart within the process: broker A and
// broker B share one store — in memory (store.Mem) or on disk (Pebble in a
// temporary directory). The crash tests in cmd/broker kill a real process.

// storeKinds gives each test both stores: edit sets a broker config up to
// use the shared one.
func storeKinds(t *testing.T) map[string]func(*broker.Config) {
	mem := store.NewMem()
	dir := filepath.Join(t.TempDir(), "data")
	return map[string]func(*broker.Config){
		"mem":    func(c *broker.Config) { c.Store = mem },
		"pebble": func(c *broker.Config) { c.DataDir = dir },
	}
}

// stop closes b before the test ends, as a restart needs.
func stop(t *testing.T, b *broker.Broker) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// TestPersistPahoRestart: a paho.mqtt.golang subscriber's persistent
// session, the QoS 1/2 messages queued for it while it was away and a
// retained message all survive a restart; the subscriber resumes with
// Session Present and gets them in order.
func TestPersistPahoRestart(t *testing.T) {
	for name, use := range storeKinds(t) {
		t.Run(name, func(t *testing.T) {
			a, addr := testutil.StartBroker(t, use)
			in := newInbox()
			persistent := func(o *mqtt.ClientOptions) {
				o.SetCleanSession(false)
				o.SetDefaultPublishHandler(in.handler)
			}
			sub := pahoConnect(t, addr, "keeper-"+name, persistent)
			must(t, sub.Subscribe("p/#", 2, nil))
			sub.Disconnect(50)
			pub := pahoConnect(t, addr, "pub-"+name)
			for i := range 6 {
				must(t, pub.Publish("p/x", byte(1+i%2), false, fmt.Sprint(i)))
			}
			must(t, pub.Publish("r/1", 1, true, "retained"))
			pub.Disconnect(50)
			stop(t, a)

			b, addr := testutil.StartBroker(t, use)
			if n := b.SessionCount(); n != 1 {
				t.Fatalf("%d sessions after restart, want the persistent one", n)
			}
			o := mqtt.NewClientOptions().AddBroker("tcp://" + addr).SetClientID("keeper-" + name).
				SetAutoReconnect(false).SetProtocolVersion(4).SetOrderMatters(true)
			persistent(o)
			again := mqtt.NewClient(o)
			tok := again.Connect()
			must(t, tok)
			defer again.Disconnect(50)
			if !tok.(*mqtt.ConnectToken).SessionPresent() {
				t.Fatal("Session Present 0 after restart")
			}
			got := in.wait(t, 6)
			for i, m := range got {
				if m.payload != fmt.Sprint(i) || m.topic != "p/x" {
					t.Fatalf("message %d after restart: %+v", i, m)
				}
			}
			in.quiet(t, 6, 200*time.Millisecond)

			rin := newInbox()
			fresh := pahoConnect(t, addr, "fresh-"+name)
			subscribe(t, fresh, "r/#", 1, rin)
			if m := rin.wait(t, 1)[0]; m.payload != "retained" || !m.retained {
				t.Fatalf("retained after restart: %+v", m)
			}
		})
	}
}

// TestPersistInflightIDs: a message in flight when the broker stopped is
// resent after the restart with the same packet id and DUP
// [MQTT-4.4.0-1]; one past PUBREC gets its PUBREL again, not the PUBLISH.
func TestPersistInflightIDs(t *testing.T) {
	for name, use := range storeKinds(t) {
		t.Run(name, func(t *testing.T) {
			a, addr := testutil.StartBroker(t, use)
			id := []byte("inflight-" + name)
			sub, _ := testutil.DialConnect(t, addr, codec.V311, codec.Connect{ClientID: id})
			sub.Subscribe(1, "i/t", 2)
			pub, _ := testutil.DialConnect(t, addr, codec.V311, codec.Connect{ClientID: []byte("ipub"), CleanStart: true})
			for i := uint16(1); i <= 2; i++ {
				pub.SendPublish(codec.Publish{Topic: []byte("i/t"), QoS: 2, PacketID: i, Payload: []byte(fmt.Sprint("m", i))})
				pub.ExpectAck(codec.PUBREC, i, testutil.Wait)
				pub.SendAck(codec.PUBREL, i)
				pub.ExpectAck(codec.PUBCOMP, i, testutil.Wait)
			}
			first, _ := sub.ExpectPublish(testutil.Wait)
			second, _ := sub.ExpectPublish(testutil.Wait)
			sub.SendAck(codec.PUBREC, first.PacketID) // first: past PUBREC; second: not acknowledged
			sub.ExpectAck(codec.PUBREL, first.PacketID, testutil.Wait)
			sub.Drop()
			stop(t, a)

			_, addr = testutil.StartBroker(t, use)
			back, ack := testutil.DialConnect(t, addr, codec.V311, codec.Connect{ClientID: id})
			if !ack.SessionPresent {
				t.Fatal("Session Present 0 after restart")
			}
			back.ExpectAck(codec.PUBREL, first.PacketID, testutil.Wait)
			p, flags := back.ExpectPublish(testutil.Wait)
			if p.PacketID != second.PacketID || string(p.Payload) != "m2" || flags&0x08 == 0 {
				t.Fatalf("resent PUBLISH id %d %q flags %#x, want id %d \"m2\" with DUP", p.PacketID, p.Payload, flags, second.PacketID)
			}
			back.SendAck(codec.PUBCOMP, first.PacketID)
			back.SendAck(codec.PUBREC, p.PacketID)
			back.ExpectAck(codec.PUBREL, p.PacketID, testutil.Wait)
			back.SendAck(codec.PUBCOMP, p.PacketID)
			back.ExpectSilence(200 * time.Millisecond)
		})
	}
}

// TestPersistInboundQoS2: a QoS 2 PUBLISH whose PUBREC went out before the
// restart and whose PUBREL did not come is, when the publisher resends it
// after the restart, acknowledged again but not delivered twice
// [MQTT-4.3.3-10].
func TestPersistInboundQoS2(t *testing.T) {
	for name, use := range storeKinds(t) {
		t.Run(name, func(t *testing.T) {
			a, addr := testutil.StartBroker(t, use)
			sid := []byte("q2sub-" + name)
			sub, _ := testutil.DialConnect(t, addr, codec.V311, codec.Connect{ClientID: sid})
			sub.Subscribe(1, "q2/t", 1)
			pid := []byte("q2pub-" + name)
			pub, _ := testutil.DialConnect(t, addr, codec.V311, codec.Connect{ClientID: pid})
			msg := codec.Publish{Topic: []byte("q2/t"), QoS: 2, PacketID: 7, Payload: []byte("once")}
			pub.SendPublish(msg)
			pub.ExpectAck(codec.PUBREC, 7, testutil.Wait)
			p, _ := sub.ExpectPublish(testutil.Wait)
			sub.SendAck(codec.PUBACK, p.PacketID)
			pub.Drop()
			sub.ExpectSilence(100 * time.Millisecond)
			stop(t, a)

			_, addr = testutil.StartBroker(t, use)
			sub2, _ := testutil.DialConnect(t, addr, codec.V311, codec.Connect{ClientID: sid})
			pub2, ack := testutil.DialConnect(t, addr, codec.V311, codec.Connect{ClientID: pid})
			if !ack.SessionPresent {
				t.Fatal("publisher's Session Present 0 after restart")
			}
			msg.Dup = true
			pub2.SendPublish(msg)
			pub2.ExpectAck(codec.PUBREC, 7, testutil.Wait)
			pub2.SendAck(codec.PUBREL, 7)
			pub2.ExpectAck(codec.PUBCOMP, 7, testutil.Wait)
			sub2.ExpectSilence(300 * time.Millisecond) // delivered before the restart: not again
		})
	}
}

// TestPersistExpiryAndCleanStart: an offline session whose expiry passes
// while the broker is down is gone after the restart; a Clean Start
// removes a session's records from the store.
func TestPersistExpiryAndCleanStart(t *testing.T) {
	mem := store.NewMem()
	clk := deadline.NewFake(time.Now())
	use := func(c *broker.Config) {
		c.Store = mem
		broker.UseClock(c, clk)
	}
	a, addr := testutil.StartBroker(t, use)
	short := codec.Connect{ClientID: []byte("short"), CleanStart: true}
	short.Props.Set(codec.PropSessionExpiry)
	short.Props.SessionExpiry = 1
	r, _ := testutil.DialConnect(t, addr, codec.V5, short)
	r.Subscribe(1, "e/t", 1)
	r.SendDisconnect(codec.Success)
	long, _ := testutil.DialConnect(t, addr, codec.V311, codec.Connect{ClientID: []byte("long")})
	long.Subscribe(1, "e/t", 1)
	long.Drop()
	testutil.Eventually(t, 5*time.Second, "both offline", func() bool { return a.SessionCount() == 2 })
	stop(t, a)
	if mem.Len() != 2 {
		t.Fatalf("%d records, want the 2 sessions", mem.Len())
	}
	clk.Advance(1100 * time.Millisecond) // the broker is down

	b, addr := testutil.StartBroker(t, use)
	if n := b.SessionCount(); n != 1 {
		t.Fatalf("%d sessions after restart, want 1: short's expired while the broker was down", n)
	}
	back := testutil.Dial(t, addr, codec.V311)
	if ack := back.Connect(codec.Connect{ClientID: []byte("long"), CleanStart: true}); ack.SessionPresent {
		t.Fatal("Session Present 1 with Clean Start")
	}
	back.SendDisconnect(codec.Success)
	testutil.Eventually(t, 5*time.Second, "the clean session to end", func() bool { return b.SessionCount() == 0 })
	stop(t, b)
	if n := mem.Len(); n != 0 {
		t.Fatalf("%d records left after the clean start, want 0", n)
	}
}

// TestPersistDamagedStoreServes: a store with an unreadable block is
// salvaged at start (what can be read is kept), and the broker then stores
// new state as usual.
func TestPersistDamagedStoreServes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	use := func(c *broker.Config) { c.DataDir = dir }
	a, addr := testutil.StartBroker(t, use)
	pub, _ := testutil.DialConnect(t, addr, codec.V311, codec.Connect{ClientID: []byte("filler"), CleanStart: true})
	big := make([]byte, 60<<10)
	for i := range 120 { // ~7 MB of retained messages: past a memtable, into a table file
		pub.SendPublish(codec.Publish{Topic: []byte(fmt.Sprintf("big/%d", i)), QoS: 1, PacketID: uint16(i + 1), Retain: true, Payload: big})
		pub.ExpectAck(codec.PUBACK, uint16(i+1), testutil.Wait)
	}
	stop(t, a)
	tables, _ := filepath.Glob(filepath.Join(dir, "*.sst"))
	if len(tables) == 0 {
		t.Fatal("no table file to damage")
	}
	data, err := os.ReadFile(tables[0])
	if err != nil {
		t.Fatal(err)
	}
	for i := len(data) / 3; i < len(data)/3+64; i++ {
		data[i] ^= 0xA5
	}
	if err := os.WriteFile(tables[0], data, 0o644); err != nil {
		t.Fatal(err)
	}

	b, addr := testutil.StartBroker(t, use)
	if n := b.RetainedCount(); n == 0 || n >= 120 {
		t.Errorf("%d retained messages after the damage, want some but not all 120", n)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("data directory after salvage: %v", err)
	}
	sub, _ := testutil.DialConnect(t, addr, codec.V311, codec.Connect{ClientID: []byte("after")})
	sub.Subscribe(1, "new/t", 1) // stores the session: the writers work on the salvaged store
	sub.Drop()
	p2, _ := testutil.DialConnect(t, addr, codec.V311, codec.Connect{ClientID: []byte("p2"), CleanStart: true})
	p2.SendPublish(codec.Publish{Topic: []byte("new/t"), QoS: 1, PacketID: 1, Payload: []byte("kept")})
	p2.ExpectAck(codec.PUBACK, 1, testutil.Wait)
	stop(t, b)

	_, addr = testutil.StartBroker(t, use)
	back, ack := testutil.DialConnect(t, addr, codec.V311, codec.Connect{ClientID: []byte("after")})
	if !ack.SessionPresent {
		t.Fatal("the session stored after the salvage is gone")
	}
	if p, _ := back.ExpectPublish(testutil.Wait); string(p.Payload) != "kept" {
		t.Fatalf("got %q, want kept", p.Payload)
	}
}
