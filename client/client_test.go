package client_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoalmq/shoal/broker"
	"github.com/shoalmq/shoal/client"
	"github.com/shoalmq/shoal/codec"
	"github.com/shoalmq/shoal/internal/testutil"
)

var versions = []struct {
	name string
	v    byte
}{{"v3.1.1", codec.V311}, {"v5", codec.V5}}

func newEngine(t *testing.T, loops int) *client.Engine {
	t.Helper()
	e, err := client.NewEngine(loops)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return e
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// inbox collects the messages a connection receives.
type inbox struct {
	mu   sync.Mutex
	msgs []got
	ch   chan struct{}
}

type got struct {
	topic, payload string
	qos            byte
}

func newInbox() *inbox { return &inbox{ch: make(chan struct{}, 1<<16)} }

func (b *inbox) on(m *client.Message) {
	b.mu.Lock()
	b.msgs = append(b.msgs, got{string(m.Topic), string(m.Payload), m.QoS})
	b.mu.Unlock()
	b.ch <- struct{}{}
}

func (b *inbox) wait(t *testing.T, n int) []got {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		b.mu.Lock()
		if len(b.msgs) >= n {
			out := append([]got(nil), b.msgs...)
			b.mu.Unlock()
			return out
		}
		b.mu.Unlock()
		select {
		case <-b.ch:
		case <-deadline:
			t.Fatalf("timed out waiting for %d messages", n)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	for _, tc := range versions {
		t.Run(tc.name, func(t *testing.T) {
			_, addr := testutil.StartBroker(t, nil)
			e := newEngine(t, 2)
			ctx := ctxT(t)
			in := newInbox()
			var subClosed atomic.Value
			sub, err := e.Connect(ctx, client.Options{Addr: addr, ClientID: "sub", Version: tc.v, CleanStart: true,
				KeepAlive: 30, OnMessage: in.on, OnClose: func(err error) { subClosed.Store(fmt.Sprint(err)) }})
			if err != nil {
				t.Fatal(err)
			}
			granted, err := sub.Subscribe(ctx, "rt/#", 2)
			if err != nil || granted != 2 {
				t.Fatalf("Subscribe = %d, %v; want 2, nil", granted, err)
			}
			pub, err := e.Connect(ctx, client.Options{Addr: addr, ClientID: "pub", Version: tc.v, CleanStart: true})
			if err != nil {
				t.Fatal(err)
			}
			for qos := byte(0); qos <= 2; qos++ {
				if err := pub.PublishWait(ctx, fmt.Sprintf("rt/%d", qos), []byte{'m', '0' + qos}, qos, false); err != nil {
					t.Fatalf("PublishWait QoS %d: %v", qos, err)
				}
			}
			msgs := in.wait(t, 3)
			// One publisher, one subscription: order is kept per QoS, and here
			// each PublishWait finished before the next began.
			for qos := byte(0); qos <= 2; qos++ {
				want := got{fmt.Sprintf("rt/%d", qos), string([]byte{'m', '0' + qos}), qos}
				if msgs[qos] != want {
					t.Errorf("message %d = %+v, want %+v", qos, msgs[qos], want)
				}
			}
			if pub.Outstanding() != 0 {
				t.Errorf("Outstanding = %d after acknowledgements", pub.Outstanding())
			}
			if err := sub.Unsubscribe(ctx, "rt/#"); err != nil {
				t.Fatalf("Unsubscribe: %v", err)
			}
			if err := pub.PublishWait(ctx, "rt/x", []byte("after"), 1, false); err != nil {
				t.Fatal(err)
			}
			if err := pub.Disconnect(); err != nil {
				t.Errorf("Disconnect: %v", err)
			}
			if err := sub.Disconnect(); err != nil {
				t.Errorf("Disconnect: %v", err)
			}
			if got := subClosed.Load(); got != "<nil>" {
				t.Errorf("OnClose after Disconnect got %v, want nil", got)
			}
			in.mu.Lock()
			n := len(in.msgs)
			in.mu.Unlock()
			if n != 3 {
				t.Errorf("%d messages after Unsubscribe, want 3", n)
			}
			if err := pub.Publish("rt/0", nil, 0, false); !errors.Is(err, client.ErrClosed) {
				t.Errorf("Publish after Disconnect = %v, want ErrClosed", err)
			}
		})
	}
}

func TestRefused(t *testing.T) {
	_, addr := testutil.StartBroker(t, nil)
	e := newEngine(t, 1)
	// MQTT 3.1 requires a client identifier of 1 to 23 bytes [MQTT-3.1.3-5].
	_, err := e.Connect(ctxT(t), client.Options{Addr: addr, Version: codec.V31, CleanStart: true})
	var re *client.ReasonError
	if !errors.As(err, &re) || re.Packet != codec.CONNACK || re.Code != codec.ClientIDNotValid {
		t.Fatalf("Connect = %v, want a CONNACK refusal 0x85", err)
	}
}

func TestSubscribeRefused(t *testing.T) {
	_, addr := testutil.StartBroker(t, nil)
	e := newEngine(t, 1)
	ctx := ctxT(t)
	c, err := e.Connect(ctx, client.Options{Addr: addr, ClientID: "s", Version: codec.V5, CleanStart: true})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Subscribe(ctx, "a/#/b", 1) // '#' not last [MQTT-4.7.1-1]
	var re *client.ReasonError
	if !errors.As(err, &re) || re.Packet != codec.SUBACK || !re.Code.IsError() {
		t.Fatalf("Subscribe = %v, want a SUBACK failure", err)
	}
}

func TestReceiveMaximum(t *testing.T) {
	_, addr := testutil.StartBroker(t, func(c *broker.Config) { c.ReceiveMaximum = 5 })
	e := newEngine(t, 1)
	ctx := ctxT(t)
	c, err := e.Connect(ctx, client.Options{Addr: addr, ClientID: "rm", Version: codec.V5, CleanStart: true})
	if err != nil {
		t.Fatal(err)
	}
	if c.Window() != 5 {
		t.Fatalf("Window = %d, want the broker's Receive Maximum 5", c.Window())
	}
	// 50 QoS 1 messages through a window of 5 all complete.
	for i := range 50 {
		if err := c.Publish("rm", []byte{byte(i)}, 1, false); err != nil {
			t.Fatal(err)
		}
	}
	testutil.Eventually(t, 10*time.Second, "all acknowledged", func() bool { return c.Outstanding() == 0 })
}

func TestManyConnections(t *testing.T) {
	const n = 1000
	_, addr := testutil.StartBroker(t, nil)
	e := newEngine(t, 2)
	ctx := ctxT(t)
	conns := make([]*client.Conn, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for w := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 32 {
				c, err := e.Connect(ctx, client.Options{Addr: addr, ClientID: fmt.Sprintf("m%d", i), Version: codec.V311,
					CleanStart: true, KeepAlive: 60})
				if err != nil {
					errs <- err
					return
				}
				conns[i] = c
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// Every connection works: each subscribes to its own topic and gets
	// its own message back.
	var received atomic.Int64
	in := newInbox()
	sub, err := e.Connect(ctx, client.Options{Addr: addr, ClientID: "all", Version: codec.V311, CleanStart: true,
		OnMessage: func(m *client.Message) { received.Add(1); in.on(m) }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sub.Subscribe(ctx, "many/+", 1); err != nil {
		t.Fatal(err)
	}
	for i, c := range conns {
		if err := c.Publish(fmt.Sprintf("many/%d", i), []byte("x"), 1, false); err != nil {
			t.Fatal(err)
		}
	}
	in.wait(t, n)
	for _, c := range conns {
		if err := c.Disconnect(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestConcurrentPublish publishes from many goroutines into one connection
// and checks every message arrives once; run with -race.
func TestConcurrentPublish(t *testing.T) {
	for _, tc := range versions {
		t.Run(tc.name, func(t *testing.T) {
			const writers, each = 8, 500
			// Room for every message in the subscriber's queue: on a busy
			// machine it falls behind the 8 writers, and a full queue
			// would disconnect it as a slow consumer (by design) and lose
			// the rest.
			_, addr := testutil.StartBroker(t, func(c *broker.Config) { c.MaxQueued = 2 * writers * each })
			e := newEngine(t, 2)
			ctx := ctxT(t)
			var mu sync.Mutex
			seen := make(map[string]int)
			var total atomic.Int64
			sub, err := e.Connect(ctx, client.Options{Addr: addr, ClientID: "cs", Version: tc.v, CleanStart: true,
				OnMessage: func(m *client.Message) {
					mu.Lock()
					seen[string(m.Payload)]++
					mu.Unlock()
					total.Add(1)
				}})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := sub.Subscribe(ctx, "cp", 1); err != nil {
				t.Fatal(err)
			}
			wake := make(chan struct{}, 1)
			pub, err := e.Connect(ctx, client.Options{Addr: addr, ClientID: "cp", Version: tc.v, CleanStart: true,
				MaxQueued: 4096, // small, so ErrQueueFull and OnWritable are exercised
				OnWritable: func() {
					select {
					case wake <- struct{}{}:
					default:
					}
				}})
			if err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			var full atomic.Int64
			for w := range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; i < each; {
						qos := byte(i % 2)
						err := pub.Publish("cp", fmt.Appendf(nil, "%d-%d", w, i), qos, false)
						switch {
						case err == nil:
							i++
						case errors.Is(err, client.ErrQueueFull):
							full.Add(1)
							select {
							case <-wake:
							case <-time.After(10 * time.Millisecond):
							}
						default:
							t.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			t.Logf("ErrQueueFull %d times", full.Load())
			testutil.Eventually(t, 10*time.Second, "all delivered", func() bool { return total.Load() >= writers*each })
			mu.Lock()
			defer mu.Unlock()
			for k, n := range seen {
				if n != 1 {
					t.Errorf("%s delivered %d times", k, n)
				}
			}
			if len(seen) != writers*each {
				t.Errorf("%d distinct messages, want %d", len(seen), writers*each)
			}
		})
	}
}

func TestWillOnClose(t *testing.T) {
	_, addr := testutil.StartBroker(t, nil)
	e := newEngine(t, 1)
	ctx := ctxT(t)
	in := newInbox()
	sub, err := e.Connect(ctx, client.Options{Addr: addr, ClientID: "w-sub", Version: codec.V5, CleanStart: true, OnMessage: in.on})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sub.Subscribe(ctx, "will/#", 1); err != nil {
		t.Fatal(err)
	}
	c, err := e.Connect(ctx, client.Options{Addr: addr, ClientID: "w", Version: codec.V5, CleanStart: true,
		Will: &client.Will{Topic: "will/w", Payload: []byte("gone"), QoS: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	<-c.Done()
	if m := in.wait(t, 1)[0]; m.topic != "will/w" || m.payload != "gone" {
		t.Fatalf("will = %+v", m)
	}
}

func TestKeepAlive(t *testing.T) {
	// Only under -short (a quick local run); make test and CI never pass it,
	// so this always runs there.
	if testing.Short() {
		t.Skip("waits 3 s")
	}
	_, addr := testutil.StartBroker(t, nil)
	e := newEngine(t, 1)
	c, err := e.Connect(ctxT(t), client.Options{Addr: addr, ClientID: "ka", Version: codec.V311, CleanStart: true, KeepAlive: 1})
	if err != nil {
		t.Fatal(err)
	}
	// Idle for three keep-alive periods: PINGREQs keep it open (the broker
	// closes after 1.5 periods of silence [MQTT-3.1.2-24]).
	select {
	case <-c.Done():
		t.Fatalf("closed while idle: %v", c.Err())
	case <-time.After(3 * time.Second):
	}
}

func TestEngineClose(t *testing.T) {
	_, addr := testutil.StartBroker(t, nil)
	e, err := client.NewEngine(1)
	if err != nil {
		t.Fatal(err)
	}
	closed := make(chan error, 1)
	c, err := e.Connect(ctxT(t), client.Options{Addr: addr, ClientID: "ec", Version: codec.V311, CleanStart: true,
		OnClose: func(err error) { closed <- err }})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-closed; !errors.Is(err, client.ErrEngineClosed) {
		t.Fatalf("OnClose got %v, want ErrEngineClosed", err)
	}
	if err := c.Publish("x", nil, 1, false); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("Publish after Engine.Close = %v", err)
	}
	if _, err := e.Connect(ctxT(t), client.Options{Addr: addr}); !errors.Is(err, client.ErrEngineClosed) {
		t.Fatalf("Connect after Close = %v", err)
	}
}

// sink is a stand-in broker for allocation tests, so that only the
// client's allocations are counted: it accepts one connection, answers its
// CONNECT and discards the rest.
func sink(t *testing.T) string { return fakeBroker(t, nil) }

// fakeBroker accepts one connection, answers its CONNECT, writes send
// (if any) and discards whatever the client sends.
func fakeBroker(t *testing.T, send []byte) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		var d codec.Decoder
		var cp codec.Connect
		buf := make([]byte, 4096)
		for {
			n, err := nc.Read(buf)
			if err != nil {
				return
			}
			_, _ = d.Write(buf[:n])
			if _, body, ok, _ := d.Next(); ok {
				if err := cp.Decode(body); err != nil {
					return
				}
				break
			}
		}
		ack := codec.Connack{Code: codec.Success}
		if _, err := nc.Write(ack.Append(nil, cp.Version)); err != nil {
			return
		}
		go func() { _, _ = nc.Write(send) }()
		_, _ = io.Copy(io.Discard, nc)
	}()
	return ln.Addr().String()
}

// TestPublishAllocs checks that queueing and sending a message allocates
// nothing in the steady state: the topic is not copied and the queue's
// buffers are reused. (A loop wake-up costs gnet one small allocation, but
// one wake-up serves every message queued meanwhile.)
func TestPublishAllocs(t *testing.T) {
	// Only under -short (a quick local run); make test and CI never pass it,
	// so this always runs there.
	if testing.Short() {
		t.Skip("measures allocations")
	}
	addr := sink(t)
	e := newEngine(t, 1)
	c, err := e.Connect(ctxT(t), client.Options{Addr: addr, ClientID: "allocs", Version: codec.V5, CleanStart: true,
		MaxQueued: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	payload := make([]byte, 100)
	publish := func() {
		if err := c.Publish("allocs/t", payload, 0, false); err != nil {
			t.Fatal(err)
		}
	}
	for range 20000 { // warm up the queue's buffers
		publish()
	}
	if avg := testing.AllocsPerRun(20000, publish); avg > 0.1 {
		t.Errorf("%.2f allocations per Publish, want ~0", avg)
	}
}

// TestReceiveAllocs checks that receiving and acknowledging QoS 1 messages
// allocates nothing per message.
func TestReceiveAllocs(t *testing.T) {
	// Only under -short (a quick local run); make test and CI never pass it,
	// so this always runs there.
	if testing.Short() {
		t.Skip("measures allocations")
	}
	const n = 50000
	var stream []byte
	for i := range n {
		p := codec.Publish{QoS: 1, Topic: []byte("in/t"), PacketID: uint16(i%65535 + 1), Payload: make([]byte, 64)}
		stream = p.Append(stream, codec.V5)
	}
	addr := fakeBroker(t, stream)
	e := newEngine(t, 1)
	var got atomic.Int64
	var before runtime.MemStats
	started, measuring := make(chan struct{}), make(chan struct{})
	_, err := e.Connect(ctxT(t), client.Options{Addr: addr, ClientID: "recv", Version: codec.V5, CleanStart: true,
		OnMessage: func(*client.Message) {
			if got.Add(1) == 1000 {
				// Measure from here, past warm-up: hold the stream until
				// the counters are read, or a fast machine finishes it
				// before they are and nothing is measured.
				close(started)
				<-measuring
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	<-started
	runtime.ReadMemStats(&before)
	from := got.Load()
	close(measuring)
	testutil.Eventually(t, 10*time.Second, "all messages", func() bool { return got.Load() == n })
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	// Eventually's own polling allocates a little; per message it is noise.
	if per := float64(after.Mallocs-before.Mallocs) / float64(n-from); per > 0.05 {
		t.Errorf("%.3f allocations per received message, want ~0", per)
	}
}

// TestInboundQoS2Once checks that a QoS 2 message the broker sends again
// before PUBREL is delivered once [MQTT-4.3.3-10], and that the client
// answers PUBREC and PUBCOMP.
func TestInboundQoS2Once(t *testing.T) {
	var stream []byte
	p := codec.Publish{QoS: 2, Topic: []byte("q2"), PacketID: 7, Payload: []byte("once")}
	stream = p.Append(stream, codec.V311)
	p.Dup = true
	stream = p.Append(stream, codec.V311)
	stream = codec.AppendAck(stream, codec.PUBREL, 7, codec.Success, codec.V311)
	p.Dup, p.Payload = false, []byte("next")
	stream = p.Append(stream, codec.V311) // id 7 again after PUBREL: a new message
	addr := fakeBroker(t, stream)
	e := newEngine(t, 1)
	in := newInbox()
	if _, err := e.Connect(ctxT(t), client.Options{Addr: addr, ClientID: "q2", Version: codec.V311, OnMessage: in.on}); err != nil {
		t.Fatal(err)
	}
	msgs := in.wait(t, 2)
	time.Sleep(50 * time.Millisecond)
	in.mu.Lock()
	defer in.mu.Unlock()
	if len(in.msgs) != 2 || msgs[0].payload != "once" || msgs[1].payload != "next" {
		t.Fatalf("delivered %+v, want once then next", in.msgs)
	}
}
