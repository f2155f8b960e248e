package broker_test

import (
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shoalmq/shoal/internal/testutil"
)

// End-to-end MQTT 5 tests with mosquitto_pub, mosquitto_sub and
// mosquitto_rr -V mqttv5 (Debian mosquitto-clients 2.0): properties set
// with -D and printed with -F. The basics for every protocol version are in
// e2e_mosquitto_test.go, whose startSub and pub these tests share.
//
// mosquitto_sub 2.0.11 has no options for No Local, Retain As Published or
// Retain Handling (--nl, --rap, --retain-handling came later); the Python
// tests cover those.

// mosq5 runs a mosquitto client at MQTT 5 against addr and returns its
// combined output and exit error, without judging either.
func mosq5(t *testing.T, addr string, timeout time.Duration, name string, args ...string) (string, error) {
	t.Helper()
	host, port := testutil.HostPort(t, addr)
	return testutil.Mosquitto(t, timeout, name, append([]string{"-h", host, "-p", port, "-V", "mqttv5"}, args...)...)
}

// mosq5OK is mosq5 failing the test unless the client exits 0.
func mosq5OK(t *testing.T, addr string, name string, args ...string) string {
	t.Helper()
	out, err := mosq5(t, addr, 10*time.Second, name, args...)
	if err != nil {
		t.Fatalf("%s %q: %v: %s", name, args, err, out)
	}
	return out
}

// TestV5MosquittoPublishProperties: properties set with mosquitto_pub -D
// reach mosquitto_sub unaltered at every QoS, user properties in order and
// with a repeated key: Payload Format Indicator [MQTT-3.3.2-4], Response
// Topic [MQTT-3.3.2-15], Correlation Data [MQTT-3.3.2-16], User Properties
// [MQTT-3.3.2-17] [MQTT-3.3.2-18], Content Type [MQTT-3.3.2-20]; the
// Message Expiry Interval is the sent one less the time waited
// [MQTT-3.3.2-6].
func TestV5MosquittoPublishProperties(t *testing.T) {
	t.Parallel()
	b, addr := testutil.StartBroker(t, nil)
	wait := startSub(t, b, addr, 1, "-V", "mqttv5", "-q", "2", "-t", "mp/#", "-C", "3",
		"-F", "%t|%p|%q|C=%C|E=%E|R=%R|D=%D|F=%F|P=%P")
	for qos := range 3 {
		pub(t, addr, "-V", "mqttv5", "-q", strconv.Itoa(qos), "-t", fmt.Sprintf("mp/q%d", qos), "-m", "hello",
			"-D", "publish", "user-property", "k1", "v1",
			"-D", "publish", "user-property", "k2", "v2",
			"-D", "publish", "user-property", "k1", "v3",
			"-D", "publish", "content-type", "text/plain",
			"-D", "publish", "message-expiry-interval", "60",
			"-D", "publish", "response-topic", "r/1",
			"-D", "publish", "correlation-data", "abc",
			"-D", "publish", "payload-format-indicator", "1")
	}
	lines := strings.Split(strings.TrimSuffix(wait(), "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("got %d lines, want 3: %q", len(lines), lines)
	}
	for qos, line := range lines {
		// Sent 60 s; less than a second waited: 60, or 59 on a slow machine.
		want60 := fmt.Sprintf("mp/q%d|hello|%d|C=text/plain|E=60|R=r/1|D=abc|F=1|P=k1:v1 k2:v2 k1:v3", qos, qos)
		want59 := strings.Replace(want60, "E=60", "E=59", 1)
		if line != want60 && line != want59 {
			t.Errorf("QoS %d:\n got %q\nwant %q", qos, line, want60)
		}
	}
}

// TestV5MosquittoSubscriptionIdentifier: mosquitto_sub -D subscribe
// subscription-identifier 7 gets 7 back on every message its subscription
// matched [MQTT-3.3.4-3]; a subscriber without one gets none.
func TestV5MosquittoSubscriptionIdentifier(t *testing.T) {
	t.Parallel()
	b, addr := testutil.StartBroker(t, nil)
	with := startSub(t, b, addr, 1, "-V", "mqttv5", "-t", "sid/#", "-C", "2", "-F", "[%S] %t %p",
		"-D", "subscribe", "subscription-identifier", "7")
	without := startSub(t, b, addr, 2, "-V", "mqttv5", "-t", "sid/#", "-C", "2", "-F", "[%S] %t %p")
	pub(t, addr, "-V", "mqttv5", "-t", "sid/a", "-m", "one")
	pub(t, addr, "-V", "mqttv5", "-q", "1", "-t", "sid/b/c", "-m", "two")
	if got, want := with(), "[7] sid/a one\n[7] sid/b/c two\n"; got != want {
		t.Errorf("with identifier: got %q, want %q", got, want)
	}
	if got, want := without(), "[] sid/a one\n[] sid/b/c two\n"; got != want {
		t.Errorf("without identifier: got %q, want %q", got, want)
	}
}

// TestV5MosquittoSessionExpiry: mosquitto_sub -c -x 1 leaves a session
// that lasts one second after it disconnects (MQTT 5 section 3.1.2.11.2);
// once it has expired [MQTT-4.1.0-2] the messages queued for it are gone,
// and reconnecting with the same id starts afresh.
func TestV5MosquittoSessionExpiry(t *testing.T) {
	t.Parallel()
	b, addr := testutil.StartBroker(t, nil)
	args := []string{"-c", "-x", "1", "-i", "mosq-expiry", "-q", "1", "-t", "se/t"}
	mosq5OK(t, addr, "mosquitto_sub", append(args, "-E")...) // subscribe and disconnect
	if n := b.SessionCount(); n != 1 {
		t.Fatalf("%d sessions after mosquitto_sub -x 1 exited, want its 1", n)
	}
	pub(t, addr, "-V", "mqttv5", "-q", "1", "-t", "se/t", "-m", "lost")
	testutil.Eventually(t, 4*time.Second, "the session to expire", func() bool { return b.SessionCount() == 0 })
	wait := startSub(t, b, addr, 1, append([]string{"-V", "mqttv5", "-C", "1"}, args...)...)
	pub(t, addr, "-V", "mqttv5", "-q", "1", "-t", "se/t", "-m", "fresh")
	if got := wait(); got != "fresh\n" {
		t.Fatalf("after expiry got %q, want only the new message", got)
	}
}

// TestV5MosquittoWillDelay: a will with -D will will-delay-interval 2 is
// published 2 s after the connection drops, with its properties
// [MQTT-3.1.2-8]; if the client reconnects to its session first, it is
// not published at all [MQTT-3.1.3-9].
func TestV5MosquittoWillDelay(t *testing.T) {
	t.Parallel()
	for _, reconnect := range []bool{false, true} {
		name := "delay-passes"
		if reconnect {
			name = "reconnect-in-time"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b, addr := testutil.StartBroker(t, nil)
			host, port := testutil.HostPort(t, addr)
			watch := startSub(t, b, addr, 1, "-V", "mqttv5", "-t", "will/#", "-q", "1", "-C", "1", "-F", "%t|%p|%C|%P")
			id := "mosq-" + name
			victim := exec.Command(testutil.Tool(t, "mosquitto_sub"), "-h", host, "-p", port, "-V", "mqttv5",
				"-i", id, "-c", "-x", "10", "-t", "other",
				"--will-topic", "will/"+name, "--will-payload", "gone", "--will-qos", "1",
				"-D", "will", "will-delay-interval", "2",
				"-D", "will", "content-type", "text/plain",
				"-D", "will", "user-property", "k", "v")
			if err := victim.Start(); err != nil {
				t.Fatal(err)
			}
			testutil.Eventually(t, waitFor, "victim subscribed", func() bool { return b.SubscriptionCount() >= 2 })
			_ = victim.Process.Kill() // no DISCONNECT: the will is due
			_ = victim.Wait()
			dropped := time.Now()
			if !reconnect {
				got := watch()
				if after := time.Since(dropped); after < 1800*time.Millisecond {
					t.Errorf("will published %v after the drop, want ≥ 2s", after)
				}
				if want := "will/" + name + "|gone|text/plain|k:v\n"; got != want {
					t.Errorf("got %q, want %q", got, want)
				}
				return
			}
			// Resume the session (Clean Start 0) and leave normally.
			mosq5OK(t, addr, "mosquitto_sub", "-i", id, "-c", "-x", "10", "-t", "other", "-E")
			time.Sleep(time.Until(dropped.Add(3 * time.Second)))
			pub(t, addr, "-V", "mqttv5", "-q", "1", "-t", "will/sentinel", "-m", "end")
			if got, want := watch(), "will/sentinel|end||\n"; got != want {
				t.Errorf("got %q, want only the sentinel %q: the will went out though the session resumed", got, want)
			}
		})
	}
}

// TestV5MosquittoReceiveMaximum: with -D connect receive-maximum 1 the
// broker never has more than one QoS 2 PUBLISH unacknowledged to the
// client [MQTT-3.3.4-9], even when a resumed session has five queued;
// mosquitto_sub -d shows each PUBLISH received and each PUBCOMP sent. The
// default (no Receive Maximum) case shows the check can see pipelining.
func TestV5MosquittoReceiveMaximum(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		extra []string
		check func(t *testing.T, maxOutstanding int)
	}{
		{"receive-maximum-1", []string{"-D", "connect", "receive-maximum", "1"}, func(t *testing.T, n int) {
			if n != 1 {
				t.Errorf("%d QoS 2 PUBLISH packets unacknowledged at once, want at most Receive Maximum 1", n)
			}
		}},
		{"default", nil, func(t *testing.T, n int) {
			if n < 2 {
				t.Errorf("%d QoS 2 PUBLISH packets unacknowledged at once: the queue was not sent ahead of the acknowledgements, so this test cannot tell", n)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, addr := testutil.StartBroker(t, nil)
			topic := "rm/" + tc.name
			args := []string{"-c", "-x", "60", "-i", "mosq-" + tc.name, "-q", "2", "-t", topic}
			mosq5OK(t, addr, "mosquitto_sub", append(args, "-E")...)
			for i := range 5 {
				pub(t, addr, "-V", "mqttv5", "-q", "2", "-t", topic, "-m", strconv.Itoa(i))
			}
			out := mosq5OK(t, addr, "mosquitto_sub", append(append(args, "-C", "5", "-d"), tc.extra...)...)
			outstanding, most := 0, 0
			var payloads []string
			for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
				switch {
				case strings.Contains(line, " received PUBLISH (d") && strings.Contains(line, ", q2,"):
					outstanding++
					most = max(most, outstanding)
				case strings.Contains(line, " sending PUBCOMP "):
					outstanding--
				case !strings.HasPrefix(line, "Client ") && !strings.HasPrefix(line, "Subscribed "):
					payloads = append(payloads, line)
				}
			}
			if got := strings.Join(payloads, " "); got != "0 1 2 3 4" {
				t.Fatalf("payloads %q, want 0 1 2 3 4 in order; output:\n%s", got, out)
			}
			tc.check(t, most)
		})
	}
}

// TestV5MosquittoRequestResponse: mosquitto_rr sends a request with a
// Response Topic and Correlation Data; a paho (Python) responder answers
// on that topic with the same Correlation Data (MQTT 5 section 4.10;
// [MQTT-3.3.2-15], [MQTT-3.3.2-16]).
func TestV5MosquittoRequestResponse(t *testing.T) {
	t.Parallel()
	b, addr := testutil.StartBroker(t, nil)
	responder := startPython(t, addr, "publish.py", "responder", map[string]any{"topic": "rr/req", "count": 1, "timeout": 5})
	testutil.Eventually(t, waitFor, "responder subscribed", func() bool { return b.SubscriptionCount() >= 1 })
	host, port := testutil.HostPort(t, addr)
	out, err := testutil.Mosquitto(t, 10*time.Second, "mosquitto_rr", "-h", host, "-p", port,
		"-t", "rr/req", "-e", "rr/resp/mosq", "-m", "ping", "-q", "1", "-W", "5",
		"-D", "publish", "correlation-data", "abc", "-F", "%t|%p|%D")
	if err != nil {
		t.Fatalf("mosquitto_rr: %v: %s", err, out)
	}
	if want := "rr/resp/mosq|pong:ping|abc\n"; out != want {
		t.Errorf("mosquitto_rr got %q, want %q", out, want)
	}
	r := responder()
	reqs := r.step(t, "requests").Messages
	wantMessages(t, "responder", reqs, "rr/req ping q1")
	if len(reqs) == 1 {
		wantProps(t, "request", reqs[0].Props, pyProps{ResponseTopic: ptr("rr/resp/mosq"), CorrelationData: ptr("616263")})
	}
}
