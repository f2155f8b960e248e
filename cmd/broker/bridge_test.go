package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/shoalmq/shoal/internal/testutil"
)

// TestBridgeToMosquitto: Shoal started with a mosquitto.conf whose
// connection section bridges to a real Mosquitto — or with the same bridge
// in its own YAML — forwards "topic a/# out 1" there, as Mosquitto would:
// Mosquitto's clients publish to Shoal and subscribe on Mosquitto. The
// subscriber's session is made first (persistent, QoS 1), so the message
// waits for it however the timing falls.
func TestBridgeToMosquitto(t *testing.T) {
	for _, tc := range []struct {
		name, format, conf string
	}{
		{"mosquitto.conf", "mosquitto", `listener %d 127.0.0.1
allow_anonymous true

connection real
address %s
topic a/# out 1
remote_clientid shoal-e2e
`},
		{"yaml", "yaml", `listen: 127.0.0.1:%d
allow_anonymous: true
persistence: false
bridges:
  - name: real
    addresses: ["%s"]
    topics: [{pattern: a/#, direction: out, qos: 1}]
    remote_client_id: shoal-e2e
`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			remote := testutil.StartMosquitto(t, "")
			conf := writeFile(t, fmt.Sprintf(tc.conf, testutil.FreePort(t), remote.Addr))
			if tc.format == "mosquitto" {
				conf = asRootInProcess(t, conf)
			}
			bridgeForwards(t, remote, conf, tc.format)
		})
	}
}

// bridgeForwards runs Shoal with conf, whose bridge shoal-e2e forwards a/#
// out to remote at QoS 1, and checks that it does.
func bridgeForwards(t *testing.T, remote *testutil.MosquittoBroker, conf, format string) {
	t.Helper()
	rhost, rport := testutil.HostPort(t, remote.Addr)
	sub := func(args ...string) (string, error) {
		return testutil.Mosquitto(t, 15*time.Second, "mosquitto_sub", append([]string{"-h", rhost, "-p", rport}, args...)...)
	}
	persistent := []string{"-i", "e2e-sub", "-c", "-q", "1", "-t", "a/#"}
	if out, err := sub(append(persistent, "-E")...); err != nil {
		t.Fatalf("mosquitto_sub -E on Mosquitto: %v: %s", err, out)
	}
	addr, logs, _ := runWith(t, conf, "--config-format", format, "--admin-listen", "")
	logs.WaitLine(t, 30*time.Second, "bridge: link to the remote broker up", map[string]any{"address": remote.Addr})
	host, lport := testutil.HostPort(t, addr)
	// The bridge's "1", retained on Shoal (after a "0" while the remote
	// was not up yet), comes after its subscription there on the same
	// connection: once it is read, a/# is subscribed.
	testutil.Eventually(t, 10*time.Second, "the bridge's state 1 on Shoal", func() bool {
		out, err := testutil.Mosquitto(t, 5*time.Second, "mosquitto_sub", "-h", host, "-p", lport,
			"-t", "$SYS/broker/connection/shoal-e2e/state", "-C", "1", "-W", "2")
		return err == nil && strings.TrimSpace(out) == "1"
	})
	if out, err := testutil.Mosquitto(t, 15*time.Second, "mosquitto_pub", "-h", host, "-p", lport,
		"-t", "a/b", "-m", "over the bridge", "-q", "1"); err != nil {
		t.Fatalf("mosquitto_pub to Shoal: %v: %s", err, out)
	}
	out, err := sub(append(persistent, "-v", "-C", "1", "-W", "10")...)
	if err != nil || strings.TrimSpace(out) != "a/b over the bridge" {
		t.Errorf("mosquitto_sub on Mosquitto: %q, %v; want \"a/b over the bridge\"", out, err)
	}
}
