package testutil

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// NewRaw wraps an established connection — TLS, WebSocket — as a Raw
// MQTT connection; it is closed when the test ends.
func NewRaw(t testing.TB, c net.Conn, version byte) *Raw {
	t.Helper()
	t.Cleanup(func() { _ = c.Close() })
	return &Raw{t: t, Conn: c, Version: version, buf: make([]byte, 64<<10)}
}

// DialTLS opens a raw MQTT connection over TLS to addr with conf and
// completes the handshake.
func DialTLS(t testing.TB, addr string, conf *tls.Config, version byte) *Raw {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, conf)
	if err != nil {
		t.Fatalf("TLS dial %s: %v", addr, err)
	}
	return NewRaw(t, c, version)
}

// DialWS opens a raw MQTT connection over WebSocket: url is ws:// or
// wss:// (then conf, which may be nil for ws, is the client's TLS
// configuration). It offers the "mqtt" subprotocol and fails the test
// unless the server selects it [MQTT-6.0.0-4].
func DialWS(t testing.TB, url string, conf *tls.Config, version byte) *Raw {
	t.Helper()
	tr := &http.Transport{TLSClientConfig: conf}
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{
		HTTPClient: &http.Client{Transport: tr}, Subprotocols: []string{"mqtt"},
	})
	if err != nil {
		t.Fatalf("WebSocket dial %s: %v", url, err)
	}
	if ws.Subprotocol() != "mqtt" {
		t.Fatalf("WebSocket subprotocol %q, want mqtt", ws.Subprotocol())
	}
	return NewRaw(t, websocket.NetConn(context.Background(), ws, websocket.MessageBinary), version)
}
