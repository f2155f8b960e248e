package transport_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/shoalmq/shoal/internal/testutil"
	"github.com/shoalmq/shoal/transport"
)

// mqttConnect is an MQTT 3.1.1 CONNECT: what a client that forgot TLS
// sends to a TLS port.
var mqttConnect = []byte{0x10, 0x0c, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x02, 0x00, 0x3c, 0x00, 0x00}

// plainTalk connects to addr, sends b unencrypted and waits for the
// server to close the connection. It returns the client's address.
func plainTalk(t *testing.T, addr net.Addr, b []byte) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr.String(), wait)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if len(b) > 0 {
		if _, err := c.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	_ = c.SetReadDeadline(time.Now().Add(wait))
	_, _ = io.Copy(io.Discard, c) // until the server closes: the handshake has failed by then
	return c.LocalAddr().String()
}

// waitFailure waits for a line msg on listener whose error passes ok.
func waitFailure(t *testing.T, logs *testutil.SyncBuffer, msg, listener string, ok func(remote, err string) bool) {
	t.Helper()
	testutil.Eventually(t, wait, fmt.Sprintf("a %q line for %s", msg, listener), func() bool {
		for _, l := range logs.Lines(t, msg) {
			if l["level"] == "info" && l["listener"] == listener && ok(fmt.Sprint(l["remote"]), fmt.Sprint(l["error"])) {
				return true
			}
		}
		return false
	})
}

// TestHandshakeFailuresLogged: failed TLS handshakes — a plain MQTT
// client on the TLS port, no client certificate, a certificate from
// another CA, a client that does not trust the server's, silence until
// handshake_timeout — and failed WebSocket upgrades are logged at info
// level with the listener, the remote address and the error; a
// connection closed before its first byte is not.
func TestHandshakeFailuresLogged(t *testing.T) {
	dir := t.TempDir()
	pki := testutil.NewPKI(t, dir, "a")
	rogue := testutil.NewPKI(t, dir, "rogue")
	good := pki.Client("good", "device-1", nil, nil, nil)
	cfg := tlsConfig(pki.Server("srv"))
	cfg.WSListen, cfg.WSSListen = "on", "on"
	cfg.ClientCerts, cfg.ClientCAFile = transport.RequireClientCerts, pki.CAFile
	cfg.HandshakeTimeout = 300 * time.Millisecond
	logs := new(testutil.SyncBuffer)
	s, _ := startLogged(t, cfg, zerolog.New(logs).Level(zerolog.InfoLevel))
	tlsAddr := s.Addr(transport.ListenerTLS)
	exactly := func(want string) func(string, string) bool {
		return func(_, err string) bool { return err == want }
	}
	from := func(remote, want string) func(string, string) bool {
		return func(r, err string) bool { return r == remote && err == want }
	}

	t.Run("MQTT without TLS", func(t *testing.T) {
		remote := plainTalk(t, tlsAddr, mqttConnect)
		waitFailure(t, logs, "TLS handshake failed", "tls", from(remote, "tls: first record does not look like a TLS handshake"))
	})
	t.Run("no client certificate", func(t *testing.T) {
		if _, err := dialTLS(t, tlsAddr, pki.ClientTLS(testutil.Issued{})); err == nil {
			t.Fatal("connected without a certificate")
		}
		waitFailure(t, logs, "TLS handshake failed", "tls", exactly("tls: client didn't provide a certificate"))
	})
	t.Run("client certificate of another CA", func(t *testing.T) {
		if _, err := dialTLS(t, tlsAddr, pki.ClientTLS(rogue.Client("bad", "device-1", nil, nil, nil))); err == nil {
			t.Fatal("connected with another CA's certificate")
		}
		waitFailure(t, logs, "TLS handshake failed", "tls", func(_, err string) bool {
			return strings.HasPrefix(err, "tls: failed to verify certificate: x509: certificate signed by unknown authority")
		})
	})
	t.Run("client with the wrong CA", func(t *testing.T) {
		if _, err := dialTLS(t, tlsAddr, rogue.ClientTLS(good)); err == nil {
			t.Fatal("a client that does not trust the server's certificate connected")
		}
		waitFailure(t, logs, "TLS handshake failed", "tls", exactly("remote error: tls: bad certificate"))
	})
	t.Run("handshake timeout", func(t *testing.T) {
		remote := plainTalk(t, tlsAddr, nil)
		waitFailure(t, logs, "TLS handshake failed", "tls", from(remote, "no handshake within handshake_timeout (300ms)"))
	})
	t.Run("closed before a byte", func(t *testing.T) {
		c, err := net.Dial("tcp", tlsAddr.String())
		if err != nil {
			t.Fatal(err)
		}
		remote := c.LocalAddr().String()
		_ = c.Close()
		time.Sleep(200 * time.Millisecond)
		for _, l := range logs.Lines(t, "") {
			if l["remote"] == remote {
				t.Errorf("a probe that sent nothing is logged: %v", l)
			}
		}
	})
	t.Run("wss without TLS", func(t *testing.T) {
		remote := plainTalk(t, s.Addr(transport.ListenerWSS), mqttConnect)
		waitFailure(t, logs, "TLS handshake failed", "wss", from(remote, "tls: first record does not look like a TLS handshake"))
	})
	t.Run("WebSocket upgrade", func(t *testing.T) {
		base := "http://" + s.Addr(transport.ListenerWS).String()
		for _, path := range []string{"/mqtt", "/nope"} {
			resp, err := http.Get(base + path) // no Upgrade header
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
		}
		waitFailure(t, logs, "WebSocket upgrade failed", "ws", func(_, err string) bool {
			return strings.Contains(err, "WebSocket protocol violation")
		})
		waitFailure(t, logs, "WebSocket upgrade failed", "ws", exactly(`path "/nope" is not ws_path (/mqtt)`))
	})
}

// TestHandshakeFailureFlood: 1,000 failed handshakes write at most the
// burst and the rate's lines; every failure is either a line or counted
// in a report of those held back.
func TestHandshakeFailureFlood(t *testing.T) {
	pki := testutil.NewPKI(t, t.TempDir(), "a")
	logs := new(testutil.SyncBuffer)
	s, _ := startLogged(t, tlsConfig(pki.Server("srv")), zerolog.New(logs).Level(zerolog.InfoLevel))
	addr := s.Addr(transport.ListenerTLS)

	const n, clients = 1000, 16
	began := time.Now()
	var wg sync.WaitGroup
	next := make(chan struct{}, n)
	for range n {
		next <- struct{}{}
	}
	close(next)
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range next {
				c, err := net.DialTimeout("tcp", addr.String(), wait)
				if err != nil {
					t.Error(err)
					return
				}
				_, _ = c.Write(mqttConnect)
				_ = c.SetReadDeadline(time.Now().Add(wait))
				_, _ = io.Copy(io.Discard, c)
				_ = c.Close()
			}
		}()
	}
	wg.Wait()
	took := time.Since(began)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := s.Stop(ctx); err != nil { // reports what is still held back
		t.Fatal(err)
	}

	lines := logs.Lines(t, "TLS handshake failed")
	held := 0
	for _, l := range lines {
		if v, ok := l["suppressed"].(float64); ok {
			held += int(v)
		}
	}
	for _, l := range logs.Lines(t, "failed handshakes not logged: over the rate limit") {
		held += int(l["lines"].(float64))
	}
	t.Logf("%d failures in %v: %d lines, %d held back", n, took, len(lines), held)
	if max := 20 + int(5*took.Seconds()) + 1; len(lines) > max {
		t.Errorf("%d lines for %d failures in %v, want at most %d", len(lines), n, took, max)
	}
	if len(lines)+held != n {
		t.Errorf("%d lines + %d held back = %d, want every one of the %d failures", len(lines), held, len(lines)+held, n)
	}
}
