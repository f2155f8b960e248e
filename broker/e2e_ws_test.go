package broker_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoalmq/shoal/broker"
	"github.com/shoalmq/shoal/codec"
	"github.com/shoalmq/shoal/internal/testutil"
	"github.com/shoalmq/shoal/transport"
)

// End-to-end tests of MQTT over WebSocket and secure WebSocket: with our
// codec over a Go WebSocket client, and with Eclipse Paho's Python client
// (transport="websockets"). The browser test is in e2e_ws_browser_test.go.

// wsSetup is a broker with ws and wss listeners (wss asking for optional
// client certificates, identity from the CN) and its certificates.
type wsSetup struct {
	b        *broker.Broker
	tcp      string
	ws, wss  string // ws:// and wss:// URLs of ws_path
	pki      *testutil.PKI
	dev      testutil.Issued
	wsPort   string
	wssPort  string
	listenIP string
}

func startWS(t *testing.T) *wsSetup {
	t.Helper()
	s := &wsSetup{pki: testutil.NewPKI(t, t.TempDir(), "shoal")}
	srv := s.pki.Server("server")
	s.dev = s.pki.Client("sensor-1", "sensor-1", nil, nil, nil)
	s.b, s.tcp = testutil.StartBroker(t, func(c *broker.Config) {
		c.Transports.WSListen, c.Transports.WSSListen = "127.0.0.1:0", "127.0.0.1:0"
		c.Transports.CertFile, c.Transports.KeyFile = srv.CertFile, srv.KeyFile
		c.Transports.ClientCAFile, c.Transports.ClientCerts = s.pki.CAFile, transport.OptionalClientCerts
		c.Transports.Identity = transport.IdentityCN
	})
	ws, wss := s.b.ListenerAddr("ws").String(), s.b.ListenerAddr("wss").String()
	s.ws, s.wss = "ws://"+ws+"/mqtt", "wss://"+wss+"/mqtt"
	s.listenIP, s.wsPort = testutil.HostPort(t, ws)
	_, s.wssPort = testutil.HostPort(t, wss)
	return s
}

// TestWebSocketGoClient: MQTT 3.1.1 and 5 over ws and wss share the router
// and sessions with TCP clients, both ways; a wss client's certificate
// identity reaches the broker.
func TestWebSocketGoClient(t *testing.T) {
	s := startWS(t)
	tcpSub, _ := testutil.DialConnect(t, s.tcp, codec.V311, codec.Connect{ClientID: []byte("tcp-sub"), CleanStart: true})
	tcpSub.Subscribe(1, "up/#", 1)
	tcpPub, _ := testutil.DialConnect(t, s.tcp, codec.V5, codec.Connect{ClientID: []byte("tcp-pub"), CleanStart: true})

	for _, c := range []struct {
		name     string
		raw      func() *testutil.Raw
		listener string
		identity string
	}{
		{"ws v3.1.1", func() *testutil.Raw { return testutil.DialWS(t, s.ws, nil, codec.V311) }, "ws", ""},
		{"ws v5", func() *testutil.Raw { return testutil.DialWS(t, s.ws, nil, codec.V5) }, "ws", ""},
		{"wss v5 with certificate", func() *testutil.Raw { return testutil.DialWS(t, s.wss, s.pki.ClientTLS(s.dev), codec.V5) }, "wss", "sensor-1"},
		{"wss v3.1.1 without certificate", func() *testutil.Raw {
			return testutil.DialWS(t, s.wss, s.pki.ClientTLS(testutil.Issued{}), codec.V311)
		}, "wss", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			id := strings.ReplaceAll(c.name, " ", "-")
			r := c.raw()
			if ack := r.Connect(codec.Connect{ClientID: []byte(id), CleanStart: true}); ack.Code != codec.Success {
				t.Fatalf("CONNACK %v", ack.Code)
			}
			r.Subscribe(1, "down/"+id, 1)
			tcpPub.SendPublish(codec.Publish{Topic: []byte("down/" + id), Payload: []byte("to " + id), QoS: 1, PacketID: 7})
			tcpPub.ExpectAck(codec.PUBACK, 7, testutil.Wait)
			p, _ := r.ExpectPublish(testutil.Wait)
			if string(p.Payload) != "to "+id {
				t.Errorf("got %q over %s", p.Payload, c.listener)
			}
			r.SendAck(codec.PUBACK, p.PacketID)

			r.SendPublish(codec.Publish{Topic: []byte("up/" + id), Payload: []byte("from " + id)})
			got, _ := tcpSub.ExpectPublish(testutil.Wait)
			if string(got.Payload) != "from "+id {
				t.Errorf("TCP subscriber got %q", got.Payload)
			}
			if got.QoS > 0 {
				tcpSub.SendAck(codec.PUBACK, got.PacketID)
			}
			ci, ok := s.b.Client(id)
			if !ok || ci.Listener != c.listener || ci.CertIdentity != c.identity || !strings.HasPrefix(ci.Address, "127.0.0.1:") {
				t.Errorf("ClientInfo = %+v, want listener %s, identity %q, a loopback address", ci, c.listener, c.identity)
			}
			r.SendDisconnect(codec.Success)
			if !r.Closed(testutil.Wait) {
				t.Error("connection not closed after DISCONNECT")
			}
		})
	}
}

// TestWebSocketPython: Paho's Python client over ws (MQTT 3.1.1) and over
// wss with a client certificate (MQTT 5) receives what a TCP client
// publishes and publishes what a TCP client receives.
func TestWebSocketPython(t *testing.T) {
	s := startWS(t)
	tcpSub, _ := testutil.DialConnect(t, s.tcp, codec.V311, codec.Connect{ClientID: []byte("tcp-sub"), CleanStart: true})
	tcpSub.Subscribe(1, "py/out", 0)

	ctx, cancel := context.WithTimeout(context.Background(), pyTimeout)
	defer cancel()
	params, err := json.Marshal(map[string]string{
		"host": s.listenIP, "ws_port": s.wsPort, "wss_port": s.wssPort, "path": "/mqtt",
		"ca": s.pki.CAFile, "cert": s.dev.CertFile, "key": s.dev.KeyFile,
	})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, testutil.Python(t), filepath.Join("testdata", "python", "websocket.py"), string(params))
	cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1")
	cmd.WaitDelay = time.Second
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); _ = cmd.Wait() }()

	testutil.Eventually(t, 10*time.Second, "both Python clients subscribed", func() bool { return s.b.SubscriptionCount() == 3 })
	if ci, ok := s.b.Client("py-wss"); !ok || ci.Listener != "wss" || ci.CertIdentity != "sensor-1" {
		t.Errorf("py-wss ClientInfo = %+v, want wss with identity sensor-1", ci)
	}
	pub, _ := testutil.DialConnect(t, s.tcp, codec.V311, codec.Connect{ClientID: []byte("tcp-pub"), CleanStart: true})
	pub.SendPublish(codec.Publish{Topic: []byte("py/in"), Payload: []byte("from TCP"), QoS: 1, PacketID: 1})
	pub.ExpectAck(codec.PUBACK, 1, testutil.Wait)

	want := map[string]bool{"from py-ws": true, "from py-wss": true}
	for range 2 {
		p, _ := tcpSub.ExpectPublish(5 * time.Second)
		if !want[string(p.Payload)] {
			t.Errorf("TCP subscriber got %q, want one of %v", p.Payload, want)
		}
		delete(want, string(p.Payload))
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("websocket.py: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	var got struct {
		Step     string              `json:"step"`
		Received map[string][]string `json:"received"`
	}
	for _, line := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		if err := json.Unmarshal([]byte(line), &got); err != nil {
			t.Fatalf("websocket.py printed %q: %v", line, err)
		}
		if got.Step == "received" {
			break
		}
	}
	for _, who := range []string{"py-ws", "py-wss"} {
		if m := got.Received[who]; len(m) != 1 || m[0] != "py/in from TCP" {
			t.Errorf("%s received %q, want the TCP client's message", who, m)
		}
	}
}

// TestLargeMessageAcrossTransports: a 700 KB message published over TLS
// reaches a WebSocket subscriber whole and back again — many TLS records
// and WebSocket frames per packet, through both pumps' buffers.
func TestLargeMessageAcrossTransports(t *testing.T) {
	pki := testutil.NewPKI(t, t.TempDir(), "shoal")
	srv := pki.Server("server")
	b, _ := testutil.StartBroker(t, func(c *broker.Config) {
		c.Transports.TLSListen, c.Transports.WSListen = "127.0.0.1:0", "127.0.0.1:0"
		c.Transports.CertFile, c.Transports.KeyFile = srv.CertFile, srv.KeyFile
	})
	tlsC := testutil.DialTLS(t, b.ListenerAddr("tls").String(), pki.ClientTLS(testutil.Issued{}), codec.V5)
	wsC := testutil.DialWS(t, "ws://"+b.ListenerAddr("ws").String()+"/mqtt", nil, codec.V311)
	for _, r := range []*testutil.Raw{tlsC, wsC} {
		if ack := r.Connect(codec.Connect{CleanStart: true, ClientID: []byte(fmt.Sprintf("big-%p", r))}); ack.Code != codec.Success {
			t.Fatalf("CONNACK %v", ack.Code)
		}
		r.Subscribe(1, "big/#", 1)
	}
	payload := make([]byte, 700<<10)
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	for _, dir := range []struct {
		name     string
		from, to *testutil.Raw
	}{{"TLS to WebSocket", tlsC, wsC}, {"WebSocket to TLS", wsC, tlsC}} {
		dir.from.SendPublish(codec.Publish{Topic: []byte("big/x"), Payload: payload, QoS: 1, PacketID: 9})
		for _, r := range []*testutil.Raw{dir.from, dir.to} { // both subscribed
			var p codec.Publish
			for {
				f, err := r.Read(10 * time.Second)
				if err != nil {
					t.Fatalf("%s: %v", dir.name, err)
				}
				if f.Header.Type == codec.PUBLISH {
					p = r.Publish(f)
					break
				}
			}
			if !bytes.Equal(p.Payload, payload) {
				t.Fatalf("%s: got %d bytes, not the %d sent", dir.name, len(p.Payload), len(payload))
			}
			r.SendAck(codec.PUBACK, p.PacketID)
		}
	}
}
