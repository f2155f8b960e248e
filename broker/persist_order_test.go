package broker_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/shoalmq/shoal/broker"
	"github.com/shoalmq/shoal/codec"
	"github.com/shoalmq/shoal/internal/deadline"
	"github.com/shoalmq/shoal/internal/testutil"
	"github.com/shoalmq/shoal/store"
)

// Orderings between the store's writers (one per loop, per worker, and
// the background one): a change committed late must never undo a newer
// one.

// countLoader counts what a store holds, per client id.
type countLoader struct {
	deliveries map[string]int
	sessions   map[string]store.Session
}

func (c *countLoader) Session(s *store.Session) bool {
	cp := *s
	cp.Subs = append([]store.Sub(nil), s.Subs...)
	c.sessions[s.ClientID] = cp
	return true
}
func (c *countLoader) Delivery(id string, _ *store.Delivery) bool { c.deliveries[id]++; return true }
func (c *countLoader) AwaitRel(string, uint16) bool               { return true }
func (c *countLoader) Retained(*store.Message) bool               { return true }
func (c *countLoader) Corrupt(string, error)                      {}

func storedState(t *testing.T, m *store.Mem) *countLoader {
	t.Helper()
	c := &countLoader{deliveries: map[string]int{}, sessions: map[string]store.Session{}}
	if err := m.Load(c); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestPersistOfflineQueueAfterCommit: a worker stores a delivery to an
// offline session but puts it in the session's queue only after
// committing. Were it queued first, the client could resume, complete the
// QoS 2 exchange (its loop deleting the record) before the worker's late
// commit brought the record back: a second delivery after a restart.
func TestPersistOfflineQueueAfterCommit(t *testing.T) {
	mem := store.NewMem()
	use := func(c *broker.Config) { c.Store = mem; c.Workers = 1 }
	a, addr := testutil.StartBroker(t, use)
	sub, _ := testutil.DialConnect(t, addr, codec.V311, codec.Connect{ClientID: []byte("s")})
	sub.Subscribe(1, "t", 2)
	sub.SendDisconnect(codec.Success)
	testutil.Eventually(t, testutil.Wait, "offline", func() bool { return a.SessionFor("s").LoopHint() < 0 })

	a.RouteOnIdleWorker("t", "once", 2) // mid-batch: stored, not committed
	back, ack := testutil.DialConnect(t, addr, codec.V311, codec.Connect{ClientID: []byte("s")})
	if !ack.SessionPresent {
		t.Fatal("Session Present 0")
	}
	back.ExpectSilence(100 * time.Millisecond) // not in the session before the commit
	a.PostIdleWorker()
	p, _ := back.ExpectPublish(testutil.Wait)
	back.SendAck(codec.PUBREC, p.PacketID)
	back.ExpectAck(codec.PUBREL, p.PacketID, testutil.Wait)
	back.SendAck(codec.PUBCOMP, p.PacketID)
	testutil.Eventually(t, testutil.Wait, "the completed delivery to leave the store", func() bool {
		return storedState(t, mem).deliveries["s"] == 0
	})
	back.SendDisconnect(codec.Success)
	stop(t, a)

	_, addr = testutil.StartBroker(t, use)
	again, _ := testutil.DialConnect(t, addr, codec.V311, codec.Connect{ClientID: []byte("s")})
	again.ExpectSilence(300 * time.Millisecond) // delivered once, not again
}

// TestPersistDupPubrecAfterStore: a QoS 2 PUBLISH resent while its first
// copy still waits in a router worker is answered only after that copy is
// routed — and stored for the offline persistent subscriber.
func TestPersistDupPubrecAfterStore(t *testing.T) {
	mem := store.NewMem()
	a, addr := testutil.StartBroker(t, func(c *broker.Config) { c.Store = mem; c.Workers = 1 })
	a.RouteThroughWorkers()
	sub, _ := testutil.DialConnect(t, addr, codec.V311, codec.Connect{ClientID: []byte("s")})
	sub.Subscribe(1, "t", 2)
	sub.SendDisconnect(codec.Success)
	s := a.SessionFor("s")
	testutil.Eventually(t, testutil.Wait, "offline", func() bool { return s.LoopHint() < 0 })

	// Holding the subscriber's session stalls the worker as it queues the
	// first message for it (after storing it)...
	s.Lock()
	locked := true
	defer func() {
		if locked {
			s.Unlock()
		}
	}()
	pub, _ := testutil.DialConnect(t, addr, codec.V311, codec.Connect{ClientID: []byte("p")})
	pub.SendPublish(codec.Publish{Topic: []byte("t"), QoS: 1, PacketID: 1, Payload: []byte("first")})
	pub.ExpectAck(codec.PUBACK, 1, testutil.Wait) // stored; the worker now waits for s
	// ...so the QoS 2 one waits in the worker's queue, not stored yet,
	// when its resend comes.
	pub.SendPublish(codec.Publish{Topic: []byte("t"), QoS: 2, PacketID: 7, Payload: []byte("m")})
	time.Sleep(50 * time.Millisecond)
	pub.SendPublish(codec.Publish{Topic: []byte("t"), QoS: 2, PacketID: 7, Dup: true, Payload: []byte("m")})
	if f, err := pub.Read(300 * time.Millisecond); err == nil {
		t.Fatalf("got %v while the first copy is not routed yet", f.Header.Type)
	}
	s.Unlock()
	locked = false
	pub.ExpectAck(codec.PUBREC, 7, testutil.Wait)
	pub.ExpectAck(codec.PUBREC, 7, testutil.Wait) // the resend's, behind the first
	if n := storedState(t, mem).deliveries["s"]; n != 2 {
		t.Errorf("%d deliveries stored for s, want 2 (first, m)", n)
	}
}

// TestPersistSessionRecordNotStale: the record a closing connection writes
// is committed at once, so a reconnect handled on another loop — which
// writes a newer one — is not overwritten by it later.
func TestPersistSessionRecordNotStale(t *testing.T) {
	mem := store.NewMem()
	b, addr := testutil.StartBroker(t, func(c *broker.Config) { c.Store = mem })
	for round := range 5 { // the two connections land on either loop
		a, _ := testutil.DialConnect(t, addr, codec.V311, codec.Connect{ClientID: []byte("x")})
		a.Subscribe(1, "old", 1)
		a.Drop()
		time.Sleep(20 * time.Millisecond)
		n, _ := testutil.DialConnect(t, addr, codec.V311, codec.Connect{ClientID: []byte("x"), CleanStart: true})
		time.Sleep(1200 * time.Millisecond) // past a tick: every loop has flushed
		if rec, ok := storedState(t, mem).sessions["x"]; ok {
			t.Fatalf("round %d: a record of the clean session survives: %+v", round, rec)
		}
		n.SendDisconnect(codec.Success)
		testutil.Eventually(t, testutil.Wait, "the clean session to end", func() bool { return b.SessionCount() == 0 })
	}
}

// TestPersistWillAfterClose: a delayed will still waiting when the broker
// closes its store is neither published nor touched afterwards, however
// much time passes; it stays on disk, and the next start publishes it once
// its delay, counted from there, has passed.
func TestPersistWillAfterClose(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	clk := deadline.NewFake(time.Now())
	use := func(c *broker.Config) {
		c.DataDir = dir
		broker.UseClock(c, clk)
	}
	a, addr := testutil.StartBroker(t, use)
	c := codec.Connect{ClientID: []byte("w"), WillFlag: true, WillTopic: []byte("will"), WillPayload: []byte("x")}
	c.Props.Set(codec.PropSessionExpiry)
	c.Props.SessionExpiry = 60
	c.WillProps.Set(codec.PropWillDelay)
	c.WillProps.WillDelay = 1
	cl, _ := testutil.DialConnect(t, addr, codec.V5, c)
	cl.Drop()
	waitPending(t, a, 1)
	stop(t, a)
	clk.Advance(2 * time.Second) // past the delay: nothing runs to fire it
	// The will is still on disk for the next start.
	b, addr := testutil.StartBroker(t, use)
	sub, _ := testutil.DialConnect(t, addr, codec.V311, codec.Connect{ClientID: []byte("watch"), CleanStart: true})
	sub.Subscribe(1, "will", 0)
	sub.ExpectSilence(quietFor)
	advance(t, b, clk, time.Second)
	p, _ := sub.ExpectPublish(waitPkt)
	if string(p.Payload) != "x" {
		t.Fatalf("will payload %q", p.Payload)
	}
}
