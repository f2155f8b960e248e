package broker_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoalmq/shoal/broker"
	"github.com/shoalmq/shoal/codec"
	"github.com/shoalmq/shoal/internal/testutil"
)

// browserDir holds the npm packages of the headless-browser tests
// (playwright-core, mqtt), shared with the admin dashboard's test; make
// deps installs them.
const browserDir = "../admin/testdata/browser"

// mqttPage is the page the browser opens: MQTT.js (its browser bundle,
// served beside it) connects to the broker URL in the query over
// WebSocket, subscribes to browser/in, answers the first message on
// browser/out, and sets window.result.
const mqttPage = `<!doctype html>
<meta charset="utf-8">
<title>MQTT over WebSocket</title>
<script src="/mqtt.min.js"></script>
<pre id="log"></pre>
<script>
window.result = null;
const log = (s) => { document.getElementById('log').textContent += s + '\n'; };
const fail = (e) => { if (!window.result) window.result = { error: String(e) }; };
const client = mqtt.connect(new URLSearchParams(location.search).get('broker'), {
  clientId: 'browser', protocolVersion: 5, reconnectPeriod: 0, connectTimeout: 10000,
});
client.on('error', fail);
client.on('connect', () => {
  log('connected');
  client.subscribe('browser/in', { qos: 1 }, (err) => err ? fail(err) : log('subscribed'));
});
client.on('message', (topic, payload) => {
  const text = new TextDecoder().decode(payload);
  log('message ' + topic + ' ' + text);
  client.publish('browser/out', 'got: ' + text, { qos: 1 }, (err) => {
    if (err) return fail(err);
    window.result = { topic, payload: text };
    client.end();
  });
});
</script>
`

// TestMQTTOverWebSocketInBrowser: MQTT.js in headless Chromium (Debian's
// chromium, driven by npm's playwright-core) connects to ws_listen from a
// page of another origin, receives what a TCP client publishes and
// answers it.
func TestMQTTOverWebSocketInBrowser(t *testing.T) {
	dir, err := filepath.Abs(browserDir)
	if err != nil {
		t.Fatal(err)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatal("node is not installed: run make deps")
	}
	bundle := filepath.Join(dir, "node_modules", "mqtt", "dist", "mqtt.min.js")
	for _, p := range []string{filepath.Join(dir, "node_modules", "playwright-core"), bundle} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%s is not installed: run make deps", p)
		}
	}
	if _, err := os.Stat("/usr/bin/chromium"); err != nil {
		t.Fatal("/usr/bin/chromium is not installed: run make deps")
	}

	b, addr := testutil.StartBroker(t, func(c *broker.Config) { c.Transports.WSListen = "127.0.0.1:0" })
	sub, _ := testutil.DialConnect(t, addr, codec.V311, codec.Connect{ClientID: []byte("tcp-sub"), CleanStart: true})
	sub.Subscribe(1, "browser/out", 1)

	mux := http.NewServeMux()
	mux.HandleFunc("/mqtt.min.js", func(w http.ResponseWriter, r *http.Request) { http.ServeFile(w, r, bundle) })
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(mqttPage))
	})
	site := httptest.NewServer(mux)
	defer site.Close()
	page := site.URL + "/?broker=" + url.QueryEscape("ws://"+b.ListenerAddr("ws").String()+"/mqtt")

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join(dir, "mqttws.mjs"), page)
	cmd.Dir = dir
	cmd.WaitDelay = time.Second
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); _ = cmd.Wait() }()

	testutil.Eventually(t, 30*time.Second, "the browser subscribed", func() bool { return b.SubscriptionCount() == 2 })
	if ci, ok := b.Client("browser"); !ok || ci.Listener != "ws" || ci.Protocol != "5.0" {
		t.Errorf("browser ClientInfo = %+v, want MQTT 5.0 over ws", ci)
	}
	pub, _ := testutil.DialConnect(t, addr, codec.V311, codec.Connect{ClientID: []byte("tcp-pub"), CleanStart: true})
	pub.SendPublish(codec.Publish{Topic: []byte("browser/in"), Payload: []byte("hello browser"), QoS: 1, PacketID: 1})
	pub.ExpectAck(codec.PUBACK, 1, testutil.Wait)
	p, _ := sub.ExpectPublish(10 * time.Second)
	if string(p.Topic) != "browser/out" || string(p.Payload) != "got: hello browser" {
		t.Errorf("TCP subscriber got %s %q, want the browser's answer", p.Topic, p.Payload)
	}
	sub.SendAck(codec.PUBACK, p.PacketID)

	if err := cmd.Wait(); err != nil {
		t.Fatalf("mqttws.mjs: %v\n%s", err, stderr.String())
	}
	var out struct {
		Result struct{ Topic, Payload, Error string }
		Log    string
		Errors []string
	}
	if err := json.Unmarshal([]byte(stdout.String()), &out); err != nil {
		t.Fatalf("mqttws.mjs printed %q: %v", stdout.String(), err)
	}
	t.Logf("page log:\n%s", out.Log)
	if out.Result.Error != "" || out.Result.Topic != "browser/in" || out.Result.Payload != "hello browser" {
		t.Errorf("page result %+v, want browser/in \"hello browser\"", out.Result)
	}
	if len(out.Errors) > 0 {
		t.Errorf("the page logged errors: %q", out.Errors)
	}
}
