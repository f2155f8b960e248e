package broker_test

import (
	"bufio"
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
// (package internal/retained): never through the session queue, never counted as
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
// or a full queue, or disconnected a slow consumer, since it had figures
// since (zero: since it started).
func checkNoSlowness(t *testing.T, b *broker.Broker, since broker.Stats) {
	t.Helper()
	st := b.Stats()
	for _, d := range []string{"slow_client", "queue_full"} {
		if n := st.Drops[d] - since.Drops[d]; n != 0 {
			t.Errorf("%d messages dropped as %s", n, d)
		}
	}
	if n := st.Disconnects["slow_consumer"] - since.Disconnects["slow_consumer"]; n != 0 {
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

// heapNow is the heap's objects after a collection: what is live, and
// what was allocated while the collection ran.
func heapNow() uint64 {
	runtime.GC()
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// settledHeap is heapNow once two readings in a row agree within 256 KiB
// (at most 20 tries): a broker an earlier test closed may still be on its
// way out.
func settledHeap() uint64 {
	h := heapNow()
	for range 20 {
		next := heapNow()
		if max(next, h)-min(next, h) < 256<<10 {
			return next
		}
		h = next
	}
	return h
}

// heldHeap is the least of 10 readings of heapNow: what stays live. A
// reading taken while something is being sent also counts what was
// allocated during that collection, garbage included (the output buffer
// pool drops buffers larger than the sizes it calibrated to).
func heldHeap() uint64 {
	h := heapNow()
	for range 9 {
		h = min(h, heapNow())
	}
	return h
}

// maxRetainedHeld bounds how much more live heap the broker may hold while
// a client that stopped reading is in the middle of manyRetained messages
// of 1 KiB. Sent the old way, all at once, to a client whose window is
// larger than the store, QoS 1 encoded all 10 MiB into the connection's
// output, and gnet kept what the kernel did not take: 9 MiB held. (QoS 0
// stopped at 4 MiB, dropping the rest as a slow client's, and the kernel
// took most of that.) Paced, the broker holds the snapshot (80 KB), at
// most a 64 KiB chunk of output and, for QoS 1/2, the in-flight entries
// of what the kernel took: 0.1 to 0.95 MiB measured.
const maxRetainedHeld = 2 << 20

// TestMosquittoManyRetained: mosquitto_sub -C 10000 subscribes to 10,000
// retained messages of 1 KiB at each QoS, paced by its window (MQTT 5
// Receive Maximum) or by its socket alone (3.1.1 with a window larger than
// the store), and gets every one, once, with no drop and no slow-consumer
// disconnect; while it stalls in the middle the broker holds less than
// maxRetainedHeld for it. Before retained messages were paced, QoS 0 lost
// 5,951 of them to the slow-client drop (10 MiB encoded at once against a
// 4 MiB backlog limit); QoS 1/2 with a window overflowed it and
// max_queued, so the client was disconnected, reconnected, subscribed
// again and got the first thousand again; without a window, all 10 MiB
// went into the output at once.
//
// Not parallel: the heap measurement wants the process to itself, and Go
// runs parallel tests only after the sequential ones. Under the race
// detector the heap is only reported.
func TestMosquittoManyRetained(t *testing.T) {
	// One broker for them all: a closed broker can stay reachable for a
	// moment (gnet's Stop finishes in the background), which would move
	// the next one's heap baseline. Its max_inflight is as large as MQTT
	// allows, so that a client's Receive Maximum alone sets its window: a
	// 3.1.1 client, which has none, gets a window larger than the store,
	// and only its socket paces it. Published at QoS 2, the messages go out
	// at each subscription's QoS [MQTT-3.8.4-8].
	b, addr := testutil.StartBroker(t, func(c *broker.Config) { c.MaxInflight = 65535 })
	publishRetained(t, b, addr, "r", manyRetained, 2, 1024, manyRetained)
	host, port := testutil.HostPort(t, addr)
	for _, tc := range []struct {
		name string
		qos  byte
		args []string
	}{
		{"qos0", 0, []string{"-V", "mqttv311"}},
		{"qos1-window64", 1, []string{"-V", "mqttv5", "-D", "connect", "receive-maximum", "64"}},
		{"qos1-socket", 1, []string{"-V", "mqttv311"}},
		{"qos2-window20", 2, []string{"-V", "mqttv5", "-D", "connect", "receive-maximum", "20"}},
		{"qos2-socket", 2, []string{"-V", "mqttv311"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := b.Stats()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			// Each message printed is a line of 1 KiB on a pipe the test
			// does not read yet: once the pipe is full, mosquitto_sub stops
			// reading its socket, in the middle of the retained messages.
			args := append([]string{"-h", host, "-p", port, "-q", fmt.Sprint(tc.qos), "-t", "r/#",
				"-C", fmt.Sprint(manyRetained), "-F", "%t %p"}, tc.args...)
			cmd := exec.CommandContext(ctx, testutil.Tool(t, "mosquitto_sub"), args...)
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			var errOut bytes.Buffer
			cmd.Stderr = &errOut
			base := settledHeap()
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { cancel(); _ = cmd.Wait() })
			testutil.Eventually(t, waitFor, "retained messages going out", func() bool {
				return b.SubscriptionCount() == 1 && b.RetainedExtraRefs("r/#") > 0 &&
					b.Stats().MessagesSent[tc.qos] > before.MessagesSent[tc.qos]
			})
			held := int64(heldHeap()) - int64(base)
			t.Logf("heap: %d KiB before, %+d KiB held while the client stalls", base>>10, held>>10)
			if held > maxRetainedHeld && !raceEnabled {
				t.Errorf("the broker held %d KiB more while in the middle of %d retained messages, want at most %d KiB",
					held>>10, manyRetained, maxRetainedHeld>>10)
			}

			var got []string
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				topic, _, _ := bytes.Cut(sc.Bytes(), []byte(" "))
				got = append(got, string(topic))
			}
			err = cmd.Wait()
			checkNoSlowness(t, b, before)
			if ctx.Err() != nil {
				t.Fatalf("mosquitto_sub timed out with %d messages; stderr %q", len(got), errOut.String())
			}
			if err != nil {
				t.Fatalf("mosquitto_sub: %v: %s", err, errOut.String())
			}
			checkTopics(t, got, "r", manyRetained)
			testutil.Eventually(t, waitFor, "mosquitto_sub gone", func() bool { return b.SubscriptionCount() == 0 })
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
			checkNoSlowness(t, b, broker.Stats{})
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
	checkNoSlowness(t, b, broker.Stats{})
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
	checkNoSlowness(t, b, broker.Stats{})
	noRefs("#")
}

// TestRetainedNotAfterNewer: a retained message published while a
// client's retained messages are still going out reaches it live; the
// older retained message of the same topic, still in the client's
// snapshot, is not sent after it (internal/retained/doc.go, "Ordering").
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
	checkNoSlowness(t, b, broker.Stats{})
}
