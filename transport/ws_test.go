package transport_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"sync"
	"testing"

	"github.com/coder/websocket"
	"github.com/shoalmq/shoal/internal/testutil"
	"github.com/shoalmq/shoal/transport"
)

// wsClient dials url offering protos, over TLS when conf is set, and
// returns the connection and its local address. It fails the test on
// error.
func wsClient(t *testing.T, url string, conf *tls.Config, protos ...string) (*websocket.Conn, net.Addr) {
	t.Helper()
	c, local, err := wsDial(url, conf, protos...)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	t.Cleanup(func() { _ = c.CloseNow() })
	return c, local
}

func wsDial(url string, conf *tls.Config, protos ...string) (*websocket.Conn, net.Addr, error) {
	var (
		mu    sync.Mutex
		local net.Addr
	)
	tr := &http.Transport{
		TLSClientConfig: conf,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err == nil {
				mu.Lock()
				local = c.LocalAddr()
				mu.Unlock()
			}
			return c, err
		},
	}
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPClient: &http.Client{Transport: tr}, Subprotocols: protos})
	mu.Lock()
	defer mu.Unlock()
	return c, local, err
}

// wsEcho sends msg as a binary message and reads the echo.
func wsEcho(t *testing.T, c *websocket.Conn, msg string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageBinary, []byte(msg)); err != nil {
		t.Fatalf("write: %v", err)
	}
	typ, got, err := c.Read(ctx)
	if err != nil || typ != websocket.MessageBinary || string(got) != msg {
		t.Fatalf("read %v %q, %v; want binary %q", typ, got, err, msg)
	}
}

// TestWebSocket: an upgrade at ws_path selects the mqtt subprotocol
// [MQTT-6.0.0-4], carries binary messages both ways, and reaches the
// reactor with the client's address; other paths are 404; a text frame
// closes the connection [MQTT-6.0.0-1].
func TestWebSocket(t *testing.T) {
	cfg := transport.DefaultConfig()
	cfg.WSListen = "on"
	s, e := start(t, cfg)
	host := s.Addr(transport.ListenerWS).String()
	base := "ws://" + host

	c, local := wsClient(t, base+"/mqtt", nil, "mqtt")
	if c.Subprotocol() != "mqtt" {
		t.Errorf("subprotocol %q, want mqtt", c.Subprotocol())
	}
	wsEcho(t, c, "hello")
	if o := e.origin(t, 0); o.Listener != "ws" || o.Remote.String() != local.String() {
		t.Errorf("Origin = %+v, want ws from %s", o, local)
	}

	for _, tt := range []struct {
		offer []string
		want  string
	}{
		{[]string{"mqttv3.1"}, "mqttv3.1"}, // MQTT 3.1 clients' name
		{[]string{"wamp", "mqtt"}, "mqtt"},
		{nil, ""}, // served without one
	} {
		c, _ := wsClient(t, base+"/mqtt", nil, tt.offer...)
		if c.Subprotocol() != tt.want {
			t.Errorf("offering %q: subprotocol %q, want %q", tt.offer, c.Subprotocol(), tt.want)
		}
		wsEcho(t, c, "x")
	}

	resp, err := http.Get("http://" + host + "/other")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /other: %s, want 404", resp.Status)
	}

	// [MQTT-6.0.0-1]: a text frame closes the connection.
	c, _ = wsClient(t, base+"/mqtt", nil, "mqtt")
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageText, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	_, _, err = c.Read(ctx)
	if status := websocket.CloseStatus(err); status != websocket.StatusUnsupportedData {
		t.Errorf("after a text frame: %v (status %d), want a close with 1003", err, status)
	}
}

// TestWebSocketAnyPath: ws_path "*" upgrades at every path, as
// Mosquitto's WebSocket listeners do.
func TestWebSocketAnyPath(t *testing.T) {
	cfg := transport.DefaultConfig()
	cfg.WSListen, cfg.WSPath = "on", transport.AnyPath
	s, _ := start(t, cfg)
	for _, path := range []string{"/", "/mqtt", "/ws/deep"} {
		c, _ := wsClient(t, "ws://"+s.Addr(transport.ListenerWS).String()+path, nil, "mqtt")
		wsEcho(t, c, "at "+path)
	}
}

// TestSecureWebSocket: wss with mutual TLS hands the client certificate's
// identity over, and refuses a client without one.
func TestSecureWebSocket(t *testing.T) {
	pki := testutil.NewPKI(t, t.TempDir(), "a")
	srv := pki.Server("srv")
	dev := pki.Client("dev", "sensor-9", nil, nil, nil)
	cfg := transport.DefaultConfig()
	cfg.WSSListen = "on"
	cfg.CertFile, cfg.KeyFile = srv.CertFile, srv.KeyFile
	cfg.ClientCerts, cfg.ClientCAFile, cfg.Identity = transport.RequireClientCerts, pki.CAFile, transport.IdentityCN
	s, e := start(t, cfg)
	url := "wss://" + s.Addr(transport.ListenerWSS).String() + "/mqtt"

	c, _ := wsClient(t, url, pki.ClientTLS(dev), "mqtt")
	wsEcho(t, c, "over TLS")
	if o := e.origin(t, 0); o.Listener != "wss" || o.CertIdentity != "sensor-9" {
		t.Errorf("Origin = %+v, want wss with identity sensor-9", o)
	}
	if c, _, err := wsDial(url, pki.ClientTLS(testutil.Issued{}), "mqtt"); err == nil {
		_ = c.CloseNow()
		t.Error("a client without a certificate upgraded")
	} else if errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("refusal took the whole timeout: %v", err)
	}
}
