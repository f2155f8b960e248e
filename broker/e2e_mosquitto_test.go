package broker_test

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/shoalmq/shoal/broker"
	"github.com/shoalmq/shoal/internal/testutil"
)

// End-to-end tests with the mosquitto_pub and mosquitto_sub binaries
// (Debian mosquitto-clients), for each protocol version they speak.

var mosquittoVersions = []string{"mqttv31", "mqttv311", "mqttv5"}

// startSub starts mosquitto_sub in the background and waits until the
// broker holds its subscriptions. The returned function waits for it to
// exit and returns its output.
func startSub(t *testing.T, b *broker.Broker, addr string, wantSubs int, args ...string) func() string {
	t.Helper()
	host, port := testutil.HostPort(t, addr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	cmd := exec.CommandContext(ctx, testutil.Tool(t, "mosquitto_sub"), append([]string{"-h", host, "-p", port}, args...)...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
	})
	testutil.Eventually(t, waitFor, "mosquitto_sub subscribed", func() bool { return b.SubscriptionCount() >= wantSubs })
	return func() string {
		t.Helper()
		err := cmd.Wait()
		if ctx.Err() != nil {
			t.Fatalf("mosquitto_sub %v timed out; output so far: %q", args, out.String())
		}
		if err != nil {
			t.Fatalf("mosquitto_sub %v: %v: %s", args, err, out.String())
		}
		return out.String()
	}
}

func pub(t *testing.T, addr string, args ...string) {
	t.Helper()
	host, port := testutil.HostPort(t, addr)
	out, err := testutil.Mosquitto(t, 10*time.Second, "mosquitto_pub", append([]string{"-h", host, "-p", port}, args...)...)
	if err != nil {
		t.Fatalf("mosquitto_pub %v: %v: %s", args, err, out)
	}
}

// TestMosquittoPubSub is the README session: mosquitto_sub -t 'a/#' -v
// and mosquitto_pub -t a/b -m hi, for every protocol version and QoS.
func TestMosquittoPubSub(t *testing.T) {
	b, addr := testutil.StartBroker(t, nil)
	for _, v := range mosquittoVersions {
		for qos := 0; qos <= 2; qos++ {
			t.Run(fmt.Sprintf("%s-qos%d", v, qos), func(t *testing.T) {
				q := fmt.Sprint(qos)
				wait := startSub(t, b, addr, 1, "-V", v, "-q", q, "-t", "a/#", "-v", "-C", "2")
				pub(t, addr, "-V", v, "-q", q, "-t", "a/b", "-m", "hi")
				pub(t, addr, "-V", v, "-q", q, "-t", "a/b/c", "-m", "there")
				if got, want := wait(), "a/b hi\na/b/c there\n"; got != want {
					t.Fatalf("got %q, want %q", got, want)
				}
				testutil.Eventually(t, waitFor, "subscriber gone", func() bool { return b.SubscriptionCount() == 0 })
			})
		}
	}
}

// TestMosquittoRetained: a retained message published by mosquitto_pub -r
// is delivered to a later mosquitto_sub with the retained flag
// [MQTT-3.3.1-8], and -n -r clears it.
func TestMosquittoRetained(t *testing.T) {
	b, addr := testutil.StartBroker(t, nil)
	pub(t, addr, "-t", "status/dev1", "-m", "online", "-r", "-q", "1")
	testutil.Eventually(t, waitFor, "retained", func() bool { return b.RetainedCount() == 1 })
	for _, v := range mosquittoVersions {
		host, port := testutil.HostPort(t, addr)
		// -F %r prints the retained flag; --retained-only stops at the first live message.
		out, err := testutil.Mosquitto(t, 10*time.Second, "mosquitto_sub", "-h", host, "-p", port,
			"-V", v, "-t", "status/+", "-C", "1", "-F", "%r %t %p")
		if err != nil {
			t.Fatalf("%s: %v: %s", v, err, out)
		}
		if out != "1 status/dev1 online\n" {
			t.Fatalf("%s: got %q", v, out)
		}
	}
	pub(t, addr, "-t", "status/dev1", "-n", "-r")
	testutil.Eventually(t, waitFor, "retained cleared", func() bool { return b.RetainedCount() == 0 })
}

// TestMosquittoWill: mosquitto_sub's will is published when it is killed
// [MQTT-3.1.2-8].
func TestMosquittoWill(t *testing.T) {
	b, addr := testutil.StartBroker(t, nil)
	for _, v := range mosquittoVersions {
		t.Run(v, func(t *testing.T) {
			wait := startSub(t, b, addr, 1, "-V", v, "-t", "wills/#", "-v", "-C", "1")
			host, port := testutil.HostPort(t, addr)
			victim := exec.Command(testutil.Tool(t, "mosquitto_sub"), "-h", host, "-p", port, "-V", v,
				"-t", "other", "--will-topic", "wills/"+v, "--will-payload", "bye", "--will-qos", "1")
			if err := victim.Start(); err != nil {
				t.Fatal(err)
			}
			testutil.Eventually(t, waitFor, "victim subscribed", func() bool { return b.SubscriptionCount() >= 2 })
			_ = victim.Process.Kill() // no DISCONNECT: the will must go out
			_ = victim.Wait()
			if got, want := wait(), "wills/"+v+" bye\n"; got != want {
				t.Fatalf("got %q, want %q", got, want)
			}
			testutil.Eventually(t, waitFor, "clean", func() bool { return b.SubscriptionCount() == 0 })
		})
	}
}

// TestMosquittoPersistentSession: mosquitto_sub -c (clean session 0) gets
// the QoS 1 messages published while it was offline [MQTT-3.1.2-4].
func TestMosquittoPersistentSession(t *testing.T) {
	b, addr := testutil.StartBroker(t, nil)
	for i, v := range mosquittoVersions {
		t.Run(v, func(t *testing.T) {
			id := "persist-" + v
			args := []string{"-V", v, "-c", "-i", id, "-q", "1", "-t", "queue/" + v}
			if v == "mqttv5" {
				args = append(args, "-x", "60") // v5 needs a session expiry for -c
			}
			args = append(args, "-C", "1")
			// Earlier subtests' sessions keep their subscriptions.
			wait := startSub(t, b, addr, i+1, args...)
			pub(t, addr, "-V", v, "-q", "1", "-t", "queue/"+v, "-m", "first")
			if got := wait(); got != "first\n" {
				t.Fatalf("got %q", got)
			}
			// Offline now: these wait in the session's queue.
			pub(t, addr, "-V", v, "-q", "1", "-t", "queue/"+v, "-m", "second")
			pub(t, addr, "-V", v, "-q", "1", "-t", "queue/"+v, "-m", "third")
			args[len(args)-1] = "2"
			host, port := testutil.HostPort(t, addr)
			out, err := testutil.Mosquitto(t, 10*time.Second, "mosquitto_sub", append([]string{"-h", host, "-p", port}, args...)...)
			if err != nil || out != "second\nthird\n" {
				t.Fatalf("resumed session got %q (%v)", out, err)
			}
		})
	}
}

// TestMosquittoMixedVersions: 3.1, 3.1.1 and 5 clients exchange messages on
// one broker.
func TestMosquittoMixedVersions(t *testing.T) {
	b, addr := testutil.StartBroker(t, nil)
	for _, subV := range mosquittoVersions {
		for _, pubV := range mosquittoVersions {
			t.Run(pubV+"-to-"+subV, func(t *testing.T) {
				wait := startSub(t, b, addr, 1, "-V", subV, "-q", "1", "-t", "mixed", "-C", "1")
				pub(t, addr, "-V", pubV, "-q", "1", "-t", "mixed", "-m", pubV)
				if got := wait(); got != pubV+"\n" {
					t.Fatalf("got %q", got)
				}
				testutil.Eventually(t, waitFor, "clean", func() bool { return b.SubscriptionCount() == 0 })
			})
		}
	}
}
