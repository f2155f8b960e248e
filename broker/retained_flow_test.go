package broker_test

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"runtime"
	"runtime/metrics"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/shoalmq/shoal/broker"
	"github.com/shoalmq/shoal/codec"
	"github.com/shoalmq/shoal/internal/testutil"
)

// Retained messages on SUBSCRIBE go out at the pace the client takes them
// (broker/retained.go): never through the session queue, never counted as
// a slow consumer, never dropped as a slow client, with a bounded amount of
// the broker's memory however many there are.

// manyRetained is how many retained messages the large tests subscribe to:
// ten times the default max_queued, and 10 MiB of 1 KiB payloads, more
// than twice the 4 MiB backlog at which QoS 0 deliveries are dropped.
const manyRetained = 10000

// retainedTopic is the i-th retained topic under prefix.
func retainedTopic(prefix string, i int) string { return fmt.Sprintf("%s/%05d", prefix, i) }

// publishRetained publishes n retained messages prefix/00000.. with
// payloads of size bytes at qos (1 or 2) through a paho 3.1.1 client,
// keeping at most 32 unacknowledged, and waits until the store has want
// retained messages in all.
func publishRetained(t *testing.T, b *broker.Broker, addr, prefix string, n int, qos byte, size, want int) {
	t.Helper()
	c := pahoConnect(t, addr, "retainer-"+prefix)
	payload := bytes.Repeat([]byte("x"), size)
	var toks []mqtt.Token
	for i := 0; i < n; i++ {
		toks = append(toks, c.Publish(retainedTopic(prefix, i), qos, true, payload))
		if len(toks) == 32 || i == n-1 {
			for _, tk := range toks {
				must(t, tk)
			}
			toks = toks[:0]
		}
	}
	c.Disconnect(50)
	testutil.Eventually(t, waitFor, "retained messages stored", func() bool { return b.RetainedCount() >= want })
}

// checkNoSlowness fails if the broker dropped a message for a slow client
// or a full queue, or disconnected a slow consumer.
func checkNoSlowness(t *testing.T, b *broker.Broker) {
	t.Helper()
	st := b.Stats()
	for _, d := range []string{"slow_client", "queue_full"} {
		if n := st.Drops[d]; n != 0 {
			t.Errorf("%d messages dropped as %s", n, d)
		}
	}
	if n := st.Disconnects["slow_consumer"]; n != 0 {
		t.Errorf("%d clients disconnected as slow consumers", n)
	}
}

// checkTopics fails unless got (one topic per entry) is each of the n
// topics under prefix exactly once.
func checkTopics(t *testing.T, got []string, prefix string, n int) {
	t.Helper()
	seen := make(map[string]int, n)
	for _, tp := range got {
		seen[tp]++
	}
	missing, twice := 0, 0
	for i := 0; i < n; i++ {
		switch seen[retainedTopic(prefix, i)] {
		case 0:
			missing++
		case 1:
		default:
			twice++
		}
	}
	if missing != 0 || twice != 0 || len(got) != n {
		t.Fatalf("%d messages: %d of the %d retained topics missing, %d more than once", len(got), missing, n, twice)
	}
}

// heapPeak samples the heap's objects — live and not yet swept, what
// MemStats.HeapAlloc says, read without stopping the world — every
// millisecond until the returned function is called, which returns the
// highest sample.
func heapPeak() func() uint64 {
	done, res := make(chan struct{}), make(chan uint64)
	go func() {
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		tk := time.NewTicker(time.Millisecond)
		defer tk.Stop()
		var peak uint64
		for {
			metrics.Read(s)
			peak = max(peak, s[0].Value.Uint64())
			select {
			case <-done:
				res <- peak
				return
			case <-tk.C:
			}
		}
	}()
	return func() uint64 { close(done); return <-res }
}

// heapNow is the heap's objects after a collection: what is live.
func heapNow() uint64 {
	runtime.GC()
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// maxRetainedHeapGrowth bounds how much the heap may grow while the broker
// sends manyRetained messages of 1 KiB to mosquitto_sub. Sent the old way,
// all at once, QoS 0 encoded 4 MiB into the connection's output buffer in
// one go, in a buffer grown by doubling, which gnet then copied what the
// kernel did not take into its own (and the rest, 5,951 messages, was
// dropped as a slow client's): the heap peaked 16 MiB over the start.
// Paced, the broker holds the snapshot (80 KB), at most a 64 KiB chunk of
// output and what gnet buffers of it: the peak was 0.2 to 0.8 MiB, the
// test's own collection of mosquitto_sub's output included.
const maxRetainedHeapGrowth = 3 << 20

// TestMosquittoManyRetained: mosquitto_sub -C 10000 subscribes to 10,000
// retained messages of 1 KiB at each QoS and gets every one, once, with no
// drop and no slow-consumer disconnect, while the broker's heap grows by
// less than maxRetainedHeapGrowth. Before retained messages were paced,
// QoS 0 lost some 1,950 to the slow-client drop (10 MiB encoded at once
// against a 4 MiB backlog limit), and QoS 1/2 overflowed the in-flight
// window plus max_queued: the client was disconnected, reconnected,
// subscribed again and got the first thousand again.
//
// Not parallel: the heap measurement wants the process to itself, and Go
// runs parallel tests only after the sequential ones. Under the race
// detector the heap is only reported.
func TestMosquittoManyRetained(t *testing.T) {
	for _, tc := range []struct {
		qos     byte
		version string
		pubQoS  byte // the retained messages' own QoS; a QoS 0 publish could be dropped
	}{
		{qos: 0, version: "mqttv311", pubQoS: 1},
		{qos: 1, version: "mqttv311", pubQoS: 1},
		{qos: 2, version: "mqttv5", pubQoS: 2},
	} {
		t.Run(fmt.Sprintf("qos%d", tc.qos), func(t *testing.T) {
			b, addr := testutil.StartBroker(t, nil)
			publishRetained(t, b, addr, "r", manyRetained, tc.pubQoS, 1024, manyRetained)
			host, port := testutil.HostPort(t, addr)

			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, testutil.Tool(t, "mosquitto_sub"), "-h", host, "-p", port,
				"-V", tc.version, "-q", fmt.Sprint(tc.qos), "-t", "r/#", "-C", fmt.Sprint(manyRetained), "-F", "%t")
			var out, errOut bytes.Buffer
			out.Grow(manyRetained * 12) // the topics: no growth while measuring
			cmd.Stdout, cmd.Stderr = &out, &errOut

			base := heapNow()
			peak := heapPeak()
			err := cmd.Run()
			growth := int64(peak()) - int64(base)
			t.Logf("heap: %d KiB before, peak %+d KiB while sending", base>>10, growth>>10)
			if growth > maxRetainedHeapGrowth && !raceEnabled {
				t.Errorf("the heap grew by %d KiB while sending %d retained messages, want at most %d KiB",
					growth>>10, manyRetained, maxRetainedHeapGrowth>>10)
			}
			checkNoSlowness(t, b)
			if ctx.Err() != nil {
				t.Fatalf("mosquitto_sub timed out with %d lines; stderr %q", strings.Count(out.String(), "\n"), errOut.String())
			}
			if err != nil {
				t.Fatalf("mosquitto_sub: %v: %s", err, errOut.String())
			}
			checkTopics(t, strings.Fields(out.String()), "r", manyRetained)
		})
	}
}

// TestV5PahoManyRetained: paho.golang with Receive Maximum 64 subscribes
// to 10,000 retained messages with Subscription Identifier 7, at each QoS:
// every one arrives once, with RETAIN set [MQTT-3.3.1-8] and the
// identifier [MQTT-3.3.4-3], and the broker never disconnects it.
func TestV5PahoManyRetained(t *testing.T) {
	t.Parallel()
	for _, qos := range []byte{0, 1, 2} {
		t.Run(fmt.Sprintf("qos%d", qos), func(t *testing.T) {
			t.Parallel()
			b, addr := testutil.StartBroker(t, nil)
			publishRetained(t, b, addr, "r", manyRetained, max(qos, 1), 1024, manyRetained)
			cp := p5CP(fmt.Sprintf("many%d", qos))
			cp.Properties = &paho.ConnectProperties{ReceiveMaximum: paho.Uint16(64)}
			c, _ := p5Dial(t, addr, cp, nil)
			subID := 7
			c.subWith(t, &paho.Subscribe{
				Properties:    &paho.SubscribeProperties{SubscriptionIdentifier: &subID},
				Subscriptions: []paho.SubscribeOptions{{Topic: "r/#", QoS: qos}},
			}, qos)
			var got []string
			for len(got) < manyRetained {
				select {
				case p := <-c.msgs:
					got = append(got, p.Topic)
					if !p.Retain || p.QoS != qos || p.Properties == nil || p.Properties.SubscriptionIdentifier == nil ||
						*p.Properties.SubscriptionIdentifier != 7 {
						t.Fatalf("%s: retain %v, QoS %d, properties %+v: want a retained QoS %d message with identifier 7",
							p.Topic, p.Retain, p.QoS, p.Properties, qos)
					}
				case d := <-c.disc:
					t.Fatalf("DISCONNECT %#x after %d messages", d.ReasonCode, len(got))
				case <-time.After(10 * time.Second):
					t.Fatalf("nothing for 10 s after %d of %d messages", len(got), manyRetained)
				}
			}
			checkTopics(t, got, "r", manyRetained)
			c.say(t, "done", "x", 1) // a round trip: the connection is still there
			checkNoSlowness(t, b)
		})
	}
}

// TestV5PahoRetainedCleanStart is the report: a fresh MQTT 5
// client with Clean Start and default settings subscribes to 1,200
// retained QoS 1 messages. It got 64, then DISCONNECT 0x97 (its window of
// 64 and max_queued 1,000 overflowed), and with its session gone it did
// the same again on every reconnect. It gets all 1,200 now.
func TestV5PahoRetainedCleanStart(t *testing.T) {
	t.Parallel()
	b, addr := testutil.StartBroker(t, nil)
	const n = 1200
	publishRetained(t, b, addr, "r", n, 1, 16, n)
	c, _ := p5Dial(t, addr, p5CP("fresh"), nil)
	c.sub(t, "r/#", 1)
	var got []string
	for len(got) < n {
		select {
		case p := <-c.msgs:
			got = append(got, p.Topic)
		case d := <-c.disc:
			t.Fatalf("DISCONNECT %#x after %d of %d messages", d.ReasonCode, len(got), n)
		case <-time.After(p5Wait):
			t.Fatalf("nothing for %v after %d of %d messages", p5Wait, len(got), n)
		}
	}
	checkTopics(t, got, "r", n)
	c.say(t, "done", "x", 1)
	checkNoSlowness(t, b)
}

// v5Drainer connects a raw MQTT 5 client with Clean Start and Session
// Expiry 0 and subscribes it to filter at qos.
func v5Drainer(t *testing.T, addr, id, filter string, qos byte) *testutil.Raw {
	t.Helper()
	r, _ := testutil.DialConnect(t, addr, codec.V5, codec.Connect{ClientID: []byte(id), CleanStart: true})
	if codes := r.Subscribe(1, filter, qos); len(codes) != 1 || codes[0] != codec.ReasonCode(qos) {
		t.Fatalf("SUBACK %v", codes)
	}
	return r
}

// ping makes a PINGREQ round trip and returns the PUBLISH packets that came
// before the PINGRESP, failing on any other packet (a DISCONNECT).
func ping(t *testing.T, r *testutil.Raw) []codec.Publish {
	t.Helper()
	r.Send(codec.AppendPing(nil, codec.PINGREQ))
	var pubs []codec.Publish
	for {
		f, err := r.Read(testutil.Wait)
		if err != nil {
			t.Fatalf("waiting for PINGRESP: %v", err)
		}
		switch f.Header.Type {
		case codec.PINGRESP:
			return pubs
		case codec.PUBLISH:
			pubs = append(pubs, r.Publish(f))
		default:
			t.Fatalf("got %v (body % x) waiting for PINGRESP", f.Header.Type, f.Body)
		}
	}
}

// TestRetainedDeliveryInterrupted: a client that goes away in the middle
// of its retained messages — dropping the connection with its window full
// or its socket full, unsubscribing, or taken over — leaves no reference
// to them behind, and the broker goes on serving: a new subscriber gets
// them all. Before retained messages were paced the clients here were
// disconnected as slow consumers (QoS 1: window and queue overflowed) or
// lost QoS 0 messages as slow clients before they could go away.
func TestRetainedDeliveryInterrupted(t *testing.T) {
	t.Parallel()
	b, addr := testutil.StartBroker(t, nil)
	const n = 5000
	publishRetained(t, b, addr, "d", n, 1, 16, n)
	publishRetained(t, b, addr, "e", manyRetained, 1, 1024, n+manyRetained)
	noRefs := func(filter string) {
		t.Helper()
		testutil.Eventually(t, waitFor, "references to "+filter+" released", func() bool { return b.RetainedExtraRefs(filter) == 0 })
	}

	t.Run("window full, connection dropped", func(t *testing.T) {
		r := v5Drainer(t, addr, "drop-q1", "d/#", 1)
		var first []codec.Publish
		for range 64 { // the default max_inflight
			p, _ := r.ExpectPublish(testutil.Wait)
			first = append(first, p)
		}
		if more := ping(t, r); len(more) != 0 {
			t.Fatalf("%d PUBLISH beyond the window of 64", len(more))
		}
		for _, p := range first[:10] {
			r.SendAck(codec.PUBACK, p.PacketID)
		}
		if more := ping(t, r); len(more) != 10 {
			t.Fatalf("%d PUBLISH after 10 PUBACKs, want 10", len(more))
		}
		r.Drop()
		noRefs("d/#")
	})

	t.Run("unsubscribed", func(t *testing.T) {
		r := v5Drainer(t, addr, "unsub-q1", "d/#", 1)
		var first []codec.Publish
		for range 64 {
			p, _ := r.ExpectPublish(testutil.Wait)
			first = append(first, p)
		}
		r.Unsubscribe(2, "d/#")
		for _, p := range first {
			r.SendAck(codec.PUBACK, p.PacketID)
		}
		if more := ping(t, r); len(more) != 0 {
			t.Fatalf("%d retained messages after UNSUBSCRIBE", len(more))
		}
		noRefs("d/#") // still connected: the snapshot went with the subscription
	})

	t.Run("taken over", func(t *testing.T) {
		r := v5Drainer(t, addr, "took-q1", "d/#", 1)
		for range 64 {
			r.ExpectPublish(testutil.Wait)
		}
		testutil.DialConnect(t, addr, codec.V5, codec.Connect{ClientID: []byte("took-q1"), CleanStart: true})
		r.ExpectDisconnect(codec.SessionTakenOver, testutil.Wait)
		noRefs("d/#")
	})

	t.Run("socket full, connection dropped", func(t *testing.T) {
		r := v5Drainer(t, addr, "drop-q0", "e/#", 0)
		r.ExpectPublish(testutil.Wait) // then read nothing: 10 MiB fill the socket
		testutil.Eventually(t, waitFor, "messages sent", func() bool { return b.Stats().MessagesSent[0] > 1000 })
		if b.RetainedExtraRefs("e/#") == 0 {
			t.Fatal("all sent to a client that reads nothing: the test interrupts nothing")
		}
		r.Drop()
		noRefs("e/#")
	})

	// Still serving: a newcomer gets everything.
	host, port := testutil.HostPort(t, addr)
	out, err := testutil.Mosquitto(t, 30*time.Second, "mosquitto_sub", "-h", host, "-p", port,
		"-q", "1", "-t", "d/#", "-C", fmt.Sprint(n), "-F", "%t")
	if err != nil {
		t.Fatalf("mosquitto_sub: %v: %s", err, out)
	}
	checkTopics(t, strings.Fields(out), "d", n)
	checkNoSlowness(t, b)
	noRefs("#")
}

// TestRetainedNotAfterNewer: a retained message published while a
// client's retained messages are still going out reaches it live; the
// older retained message of the same topic, still in the client's
// snapshot, is not sent after it (retained.go, "Ordering").
func TestRetainedNotAfterNewer(t *testing.T) {
	t.Parallel()
	b, addr := testutil.StartBroker(t, nil)
	const n = 20
	publishRetained(t, b, addr, "o", n, 1, 3, n)
	r, _ := testutil.DialConnect(t, addr, codec.V5, codec.Connect{ClientID: []byte("orderly"), CleanStart: true,
		Props: codec.Properties{Present: 1 << codec.PropReceiveMaximum, ReceiveMaximum: 2}})
	if codes := r.Subscribe(1, "o/#", 1); codes[0] != 1 {
		t.Fatalf("SUBACK %v", codes)
	}
	var got []codec.Publish
	for range 2 {
		p, _ := r.ExpectPublish(testutil.Wait)
		got = append(got, p)
	}
	// A topic whose retained copy is still to come.
	var topic string
	for i := 0; i < n && topic == ""; i++ {
		tp := retainedTopic("o", i)
		if string(got[0].Topic) != tp && string(got[1].Topic) != tp {
			topic = tp
		}
	}
	pub := pahoConnect(t, addr, "newer")
	must(t, pub.Publish(topic, 1, true, "new"))
	// Routed live, and queued behind the full window.
	testutil.Eventually(t, waitFor, "the newer message queued", func() bool { return b.Stats().Queued == 1 })
	for acked := 0; ; {
		for ; acked < len(got); acked++ {
			r.SendAck(codec.PUBACK, got[acked].PacketID)
		}
		more := ping(t, r)
		if len(more) == 0 {
			break
		}
		got = append(got, more...)
	}
	if len(got) != n {
		t.Errorf("%d messages, want %d: the %d retained ones but %s's older copy, and the newer one", len(got), n, n-1, topic)
	}
	var seq []string
	for _, p := range got {
		if string(p.Topic) == topic {
			seq = append(seq, string(p.Payload))
		}
	}
	if len(seq) == 0 || seq[len(seq)-1] != "new" {
		t.Fatalf("%s arrived as %q: the older retained message came after the newer one", topic, seq)
	}
	checkNoSlowness(t, b)
}
