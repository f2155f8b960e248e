package broker_test

import (
	"fmt"
	"math/rand/v2"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/shoalmq/shoal/broker"
	"github.com/shoalmq/shoal/codec"
	"github.com/shoalmq/shoal/internal/testutil"
)

// Abuse: clients that try to wear the broker down. In each test the
// broker must keep serving a well-behaved pair of clients, stay within
// bounded memory, and close what the abuser holds.

// stillServes checks that a fresh subscriber and publisher can still talk
// through the broker.
func stillServes(t *testing.T, addr, tag string) {
	t.Helper()
	sub, _ := testutil.DialConnect(t, addr, codec.V5, codec.Connect{ClientID: []byte("ok-sub-" + tag), CleanStart: true})
	sub.Subscribe(1, "ok/"+tag, 1)
	pub, _ := testutil.DialConnect(t, addr, codec.V311, codec.Connect{ClientID: []byte("ok-pub-" + tag), CleanStart: true})
	pub.SendPublish(codec.Publish{Topic: []byte("ok/" + tag), QoS: 1, PacketID: 1, Payload: []byte("fine")})
	pub.ExpectAck(codec.PUBACK, 1, testutil.Wait)
	if p, _ := sub.ExpectPublish(testutil.Wait); string(p.Payload) != "fine" {
		t.Fatalf("%s: got %q", tag, p.Payload)
	}
	sub.Drop()
	pub.Drop()
}

// TestAbuseSlowloris: a CONNECT trickled one byte at a time does not keep
// its connection past connect_timeout; a complete frame, not a byte, is a
// sign of life.
func TestAbuseSlowloris(t *testing.T) {
	_, addr := testutil.StartBroker(t, func(c *broker.Config) { c.ConnectTimeout = time.Second })
	c := codec.Connect{Version: codec.V311, ClientID: []byte("slowloris-with-a-long-client-identifier"), CleanStart: true}
	frame := c.Append(nil)
	conns := make([]net.Conn, 20)
	for i := range conns {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		conns[i] = nc
	}
	start := time.Now()
	closed := make([]bool, len(conns))
	for i := 0; i < len(frame)-1 && time.Since(start) < 5*time.Second; i++ {
		for j, nc := range conns {
			if !closed[j] {
				if _, err := nc.Write(frame[i : i+1]); err != nil {
					closed[j] = true
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	stillServes(t, addr, "slowloris")
	for _, nc := range conns {
		_ = nc.SetReadDeadline(time.Now().Add(3 * time.Second))
		if _, err := nc.Read(make([]byte, 16)); err == nil {
			t.Fatal("a trickling client got an answer")
		} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatal("a trickling client outlived connect_timeout")
		}
	}
}

// TestAbuseHalfOpenFlood: a thousand connections that never send CONNECT
// cost nothing lasting: others are served meanwhile, and every one is
// closed at connect_timeout.
func TestAbuseHalfOpenFlood(t *testing.T) {
	b, addr := testutil.StartBroker(t, func(c *broker.Config) { c.ConnectTimeout = time.Second })
	conns := make([]net.Conn, 1000)
	for i := range conns {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		conns[i] = nc
	}
	stillServes(t, addr, "halfopen")
	deadline := time.Now().Add(5 * time.Second)
	for _, nc := range conns {
		_ = nc.SetReadDeadline(deadline)
		if _, err := nc.Read(make([]byte, 1)); err == nil {
			t.Fatal("a silent connection got bytes")
		} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatal("a silent connection outlived connect_timeout")
		}
	}
	if n := b.Stats().ClientsConnected; n != 0 {
		t.Errorf("%d clients connected, want 0", n)
	}
}

// TestAbuseRandomBytes: connections sending random bytes, before and
// after a valid CONNECT, are closed without harm to anyone else.
func TestAbuseRandomBytes(t *testing.T) {
	_, addr := testutil.StartBroker(t, func(c *broker.Config) { c.ConnectTimeout = time.Second })
	rng := rand.New(rand.NewPCG(1, 2))
	var wg sync.WaitGroup
	for i := range 200 {
		junk := make([]byte, 1+rng.IntN(4096))
		for j := range junk {
			junk[j] = byte(rng.Uint32())
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			nc, err := net.Dial("tcp", addr)
			if err != nil {
				t.Error(err)
				return
			}
			defer nc.Close()
			if i%2 == 1 { // half of them connect properly first
				c := codec.Connect{Version: codec.V5, ClientID: []byte(fmt.Sprint("junk", i)), CleanStart: true}
				_, _ = nc.Write(c.Append(nil))
			}
			_, _ = nc.Write(junk)
			_ = nc.SetReadDeadline(time.Now().Add(3 * time.Second))
			buf := make([]byte, 4096)
			for {
				if _, err := nc.Read(buf); err != nil {
					// Junk after a CONNECT that reads as the start of a
					// long frame waits for the rest, as any partial
					// frame does, until keep-alive ends it; junk instead
					// of a CONNECT is closed at once (or, if it starts
					// like one, at connect_timeout).
					ne, ok := err.(net.Error)
					if ok && ne.Timeout() && i%2 == 0 {
						t.Errorf("connection %d: junk instead of CONNECT (% x...) still open", i, junk[:min(len(junk), 4)])
					}
					return
				}
			}
		}()
	}
	stillServes(t, addr, "random")
	wg.Wait()
	stillServes(t, addr, "random-after")
}

// TestAbuseSubscriberNeverReads: a client subscribed to # that never
// reads its socket costs bounded memory while others publish 64 MiB past
// it, and the other subscribers get everything.
func TestAbuseSubscriberNeverReads(t *testing.T) {
	b, addr := testutil.StartBroker(t, nil)
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.(*net.TCPConn).SetReadBuffer(4 << 10)
	c := codec.Connect{Version: codec.V311, ClientID: []byte("glutton"), CleanStart: true}
	s := codec.Subscribe{PacketID: 1, Filters: []codec.Subscription{{Filter: []byte("#"), QoS: 0}}}
	if _, err := nc.Write(s.Append(c.Append(nil), codec.V311)); err != nil {
		t.Fatal(err)
	}
	reader, _ := testutil.DialConnect(t, addr, codec.V311, codec.Connect{ClientID: []byte("reader"), CleanStart: true})
	reader.Subscribe(1, "flood", 1)
	pub, _ := testutil.DialConnect(t, addr, codec.V311, codec.Connect{ClientID: []byte("flooder"), CleanStart: true})

	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	payload := make([]byte, 64<<10)
	const n = 1024 // 64 MiB
	done := make(chan int)
	go func() {
		got := 0
		for got < n {
			f, err := reader.Read(10 * time.Second)
			if err != nil {
				break
			}
			if f.Header.Type == codec.PUBLISH {
				got++
				var p codec.Publish
				if p.DecodeClient(f.Header.Flags, f.Body, codec.V311) == nil && p.QoS > 0 {
					_, _ = reader.Conn.Write(codec.AppendAck(nil, codec.PUBACK, p.PacketID, codec.Success, codec.V311))
				}
			}
		}
		done <- got
	}()
	// QoS 1, each PUBACK awaited: the reader, which acknowledges, gets
	// every message; the glutton (QoS 0) gets what fits its backlog.
	for i := range n {
		p := codec.Publish{Topic: []byte("flood"), QoS: 1, PacketID: uint16(i%60000 + 1), Payload: payload}
		p.Payload[0] = byte(i)
		pub.SendPublish(p)
		pub.ExpectAck(codec.PUBACK, p.PacketID, testutil.Wait)
	}
	if got := <-done; got != n {
		t.Fatalf("the reading subscriber got %d of %d messages", got, n)
	}
	var after runtime.MemStats
	runtime.GC() // what is garbage (the frames the reader copied) is not the broker's
	runtime.ReadMemStats(&after)
	// The glutton's backlog stops growing at the slow-client bound (4 MiB
	// of QoS 0); allow for the loops' buffers and the test's own.
	if grew := int64(after.HeapInuse) - int64(before.HeapInuse); grew > 48<<20 {
		t.Errorf("heap grew %d MiB while 64 MiB went past a stalled subscriber", grew>>20)
	}
	if b.Stats().Drops["slow_client"] == 0 {
		t.Error("no message to the stalled subscriber was dropped")
	}
	stillServes(t, addr, "glutton")
}

// TestAbuseReconnectLoop: a client reconnecting in a tight loop with the
// same client identifier (each connection taking the session over from
// the last) does not disturb others, and the broker ends with one session
// for it.
func TestAbuseReconnectLoop(t *testing.T) {
	b, addr := testutil.StartBroker(t, nil)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := codec.Connect{Version: codec.V311, ClientID: []byte("same-id"), CleanStart: g == 0, KeepAlive: 30}
			frame := c.Append(nil)
			for {
				select {
				case <-stop:
					return
				default:
				}
				nc, err := net.Dial("tcp", addr)
				if err != nil {
					continue
				}
				_, _ = nc.Write(frame)
				_ = nc.SetReadDeadline(time.Now().Add(time.Second))
				_, _ = nc.Read(make([]byte, 4))
				nc.Close()
			}
		}()
	}
	for i := range 20 {
		stillServes(t, addr, fmt.Sprint("loop", i))
	}
	close(stop)
	wg.Wait()
	testutil.Eventually(t, 5*time.Second, "the reconnecting client's connections to go", func() bool {
		return b.Stats().ClientsConnected == 0
	})
	if n := b.SessionCount(); n > 1 {
		t.Errorf("%d sessions left, want at most the reconnecting client's one", n)
	}
}
