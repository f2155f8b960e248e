package transport_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/shoalmq/shoal/internal/testutil"
	"github.com/shoalmq/shoal/transport"
)

// TestTLS: a handshake with the configured certificate, TLS 1.2 at least,
// then the plaintext is enrolled with its Origin.
func TestTLS(t *testing.T) {
	pki := testutil.NewPKI(t, t.TempDir(), "a")
	srv := pki.Server("srv")
	s, e := start(t, tlsConfig(srv))
	c, err := dialTLS(t, s.Addr(transport.ListenerTLS), pki.ClientTLS(testutil.Issued{}))
	if err != nil {
		t.Fatalf("TLS client: %v", err)
	}
	if got := c.ConnectionState().PeerCertificates[0].SerialNumber; got.Cmp(srv.Cert.SerialNumber) != 0 {
		t.Errorf("server certificate serial %x, want %x", got, srv.Cert.SerialNumber)
	}
	o := e.origin(t, 0)
	if o.Listener != "tls" || o.Remote.String() != c.LocalAddr().String() || o.CertIdentity != "" {
		t.Errorf("Origin = %+v, want tls from %s without identity", o, c.LocalAddr())
	}

	old := pki.ClientTLS(testutil.Issued{})
	old.MaxVersion = tls.VersionTLS11
	if _, err := dialTLS(t, s.Addr(transport.ListenerTLS), old); err == nil {
		t.Error("a TLS 1.1 client connected")
	}
	if s.Addr(transport.ListenerWS) != nil {
		t.Error("Addr(ws) is not nil with no ws_listen")
	}
}

// TestMutualTLS: tls_client_certs require refuses a client without a
// certificate and one whose certificate another CA signed; optional lets
// the first in without an identity; the identity comes from cn or san.
func TestMutualTLS(t *testing.T) {
	dir := t.TempDir()
	pki := testutil.NewPKI(t, dir, "a")
	rogue := testutil.NewPKI(t, dir, "rogue")
	srv := pki.Server("srv")
	good := pki.Client("good", "device-42", nil, []string{"ops@example.com"}, []string{"spiffe://shoal/device/42"})
	dnsOnly := pki.Client("dns", "device-43", []string{"d43.example.com"}, nil, nil)
	uriOnly := pki.Client("uri", "device-44", nil, nil, []string{"spiffe://shoal/device/44"})
	bad := rogue.Client("bad", "device-42", nil, nil, nil)

	mtls := func(p transport.ClientCertPolicy, id transport.IdentitySource) transport.Config {
		cfg := tlsConfig(srv)
		cfg.ClientCerts, cfg.ClientCAFile, cfg.Identity = p, pki.CAFile, id
		return cfg
	}

	t.Run("require", func(t *testing.T) {
		s, e := start(t, mtls(transport.RequireClientCerts, transport.IdentityCN))
		addr := s.Addr(transport.ListenerTLS)
		if _, err := dialTLS(t, addr, pki.ClientTLS(testutil.Issued{})); err == nil {
			t.Error("a client without a certificate connected")
		}
		if _, err := dialTLS(t, addr, pki.ClientTLS(bad)); err == nil {
			t.Error("a client with another CA's certificate connected")
		}
		if _, err := dialTLS(t, addr, pki.ClientTLS(good)); err != nil {
			t.Fatalf("a client with a good certificate: %v", err)
		}
		if o := e.origin(t, 0); o.CertIdentity != "device-42" {
			t.Errorf("CertIdentity = %q, want the CN device-42", o.CertIdentity)
		}
		if n := e.count(); n != 1 {
			t.Errorf("%d connections enrolled, want only the good one", n)
		}
	})
	t.Run("optional", func(t *testing.T) {
		s, e := start(t, mtls(transport.OptionalClientCerts, transport.IdentityCN))
		addr := s.Addr(transport.ListenerTLS)
		if _, err := dialTLS(t, addr, pki.ClientTLS(testutil.Issued{})); err != nil {
			t.Fatalf("a client without a certificate: %v", err)
		}
		if o := e.origin(t, 0); o.CertIdentity != "" {
			t.Errorf("CertIdentity = %q without a certificate", o.CertIdentity)
		}
		if _, err := dialTLS(t, addr, pki.ClientTLS(bad)); err == nil {
			t.Error("a client with another CA's certificate connected")
		}
	})
	t.Run("san", func(t *testing.T) {
		s, e := start(t, mtls(transport.RequireClientCerts, transport.IdentitySAN))
		addr := s.Addr(transport.ListenerTLS)
		for i, c := range []struct {
			cert testutil.Issued
			want string
		}{
			{dnsOnly, "d43.example.com"},          // DNS first
			{good, "ops@example.com"},             // then email
			{uriOnly, "spiffe://shoal/device/44"}, // then URI
		} {
			if _, err := dialTLS(t, addr, pki.ClientTLS(c.cert)); err != nil {
				t.Fatal(err)
			}
			if o := e.origin(t, i); o.CertIdentity != c.want {
				t.Errorf("CertIdentity = %q, want %q", o.CertIdentity, c.want)
			}
		}
	})
}

// TestMosquittoStyleTLS: the settings a Mosquitto listener maps to — the
// whole subject as the identity (use_subject_as_username), client CAs
// from a directory (capath), TLS 1.3 at least (tls_version tlsv1.3).
func TestMosquittoStyleTLS(t *testing.T) {
	dir := t.TempDir()
	pki := testutil.NewPKI(t, dir, "a")
	srv := pki.Server("srv")
	good := pki.Client("good", "device 42", nil, nil, nil)
	caDir := filepath.Join(dir, "capath")
	if err := os.Mkdir(caDir, 0o700); err != nil {
		t.Fatal(err)
	}
	testutil.CopyFile(t, filepath.Join(caDir, "ca.pem"), pki.CAFile)
	if err := os.WriteFile(filepath.Join(caDir, "README"), []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(caDir, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	cfg := tlsConfig(srv)
	cfg.ClientCerts, cfg.ClientCADir, cfg.Identity = transport.RequireClientCerts, caDir, transport.IdentitySubject
	cfg.MinVersion = transport.TLS13
	s, e := start(t, cfg)
	addr := s.Addr(transport.ListenerTLS)
	c, err := dialTLS(t, addr, pki.ClientTLS(good))
	if err != nil {
		t.Fatalf("a client with a good certificate: %v", err)
	}
	if v := c.ConnectionState().Version; v != tls.VersionTLS13 {
		t.Errorf("version %#x, want TLS 1.3", v)
	}
	if o := e.origin(t, 0); o.CertIdentity != "CN=device 42" {
		t.Errorf("CertIdentity = %q, want the subject", o.CertIdentity)
	}
	old := pki.ClientTLS(good)
	old.MaxVersion = tls.VersionTLS12
	if _, err := dialTLS(t, addr, old); err == nil {
		t.Error("a TLS 1.2 client connected to a listener that wants 1.3")
	}
}

// TestReload: after the files are replaced and Reload runs, new
// connections get the new certificate while one made before goes on; a
// reload that fails keeps the certificate in use.
func TestReload(t *testing.T) {
	dir := t.TempDir()
	pki := testutil.NewPKI(t, dir, "a")
	first, second := pki.Server("first"), pki.Server("second")
	live := pki.Server("live") // the files the Server is configured with
	testutil.CopyFile(t, live.CertFile, first.CertFile)
	testutil.CopyFile(t, live.KeyFile, first.KeyFile)
	s, _ := start(t, tlsConfig(live))
	addr := s.Addr(transport.ListenerTLS)
	serialOf := func(c *tls.Conn) string { return c.ConnectionState().PeerCertificates[0].SerialNumber.String() }

	before, err := dialTLS(t, addr, pki.ClientTLS(testutil.Issued{}))
	if err != nil {
		t.Fatal(err)
	}
	if serialOf(before) != first.Cert.SerialNumber.String() {
		t.Fatalf("serial %s, want the first certificate's", serialOf(before))
	}
	testutil.CopyFile(t, live.CertFile, second.CertFile)
	testutil.CopyFile(t, live.KeyFile, second.KeyFile)
	if err := s.Reload(); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	after, err := dialTLS(t, addr, pki.ClientTLS(testutil.Issued{}))
	if err != nil {
		t.Fatal(err)
	}
	if serialOf(after) != second.Cert.SerialNumber.String() {
		t.Errorf("after Reload serial %s, want the second certificate's %s", serialOf(after), second.Cert.SerialNumber)
	}
	if err := roundTrip(before, "still here"); err != nil {
		t.Errorf("the connection made before Reload: %v", err)
	}

	// A half-done rotation (new certificate, old key) is refused.
	testutil.CopyFile(t, live.CertFile, first.CertFile)
	if err := s.Reload(); err == nil || !strings.HasPrefix(err.Error(), "tls_cert_file: ") {
		t.Errorf("Reload with a mismatched key: %v, want a tls_cert_file error", err)
	}
	again, err := dialTLS(t, addr, pki.ClientTLS(testutil.Issued{}))
	if err != nil {
		t.Fatal(err)
	}
	if serialOf(again) != second.Cert.SerialNumber.String() {
		t.Errorf("after a failed Reload serial %s, want the second certificate's still", serialOf(again))
	}

	// Reconfigure: new file names apply, a new address needs a restart.
	cfg := tlsConfig(first)
	cfg.TLSListen = "127.0.0.1:1"
	need, err := s.Reconfigure(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(need) != 1 || need[0] != "TLSListen" {
		t.Errorf("Reconfigure needs restart for %v, want [TLSListen]", need)
	}
	third, err := dialTLS(t, addr, pki.ClientTLS(testutil.Issued{}))
	if err != nil {
		t.Fatal(err)
	}
	if serialOf(third) != first.Cert.SerialNumber.String() {
		t.Errorf("after Reconfigure serial %s, want the first certificate's", serialOf(third))
	}
}

// TestHandshakeLimits: a connection that never completes its handshake is
// closed after HandshakeTimeout; while MaxHandshakes are under way the
// next connection waits; Stop ends handshakes under way at once.
func TestHandshakeLimits(t *testing.T) {
	pki := testutil.NewPKI(t, t.TempDir(), "a")
	cfg := tlsConfig(pki.Server("srv"))
	cfg.MaxHandshakes = 2
	cfg.HandshakeTimeout = 2 * time.Second
	s, e := start(t, cfg)
	addr := s.Addr(transport.ListenerTLS)

	silent := func() net.Conn {
		c, err := net.DialTimeout("tcp", addr.String(), wait)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	a, _ := silent(), silent()
	time.Sleep(100 * time.Millisecond) // both accepted, both slots taken
	conf := pki.ClientTLS(testutil.Issued{})
	// Well within the silent ones' timeout: the third waits for a slot.
	d := &net.Dialer{Timeout: 500 * time.Millisecond}
	if c, err := tls.DialWithDialer(d, "tcp", addr.String(), conf); err == nil {
		_ = c.Close()
		t.Fatal("a third handshake completed while two held both slots")
	}
	_ = a.Close()
	began := time.Now()
	if _, err := dialTLS(t, addr, conf); err != nil {
		t.Fatalf("after a slot was freed: %v", err)
	}
	t.Logf("handshake after a slot was freed took %v", time.Since(began))

	// The remaining silent connection is closed by the timeout.
	began = time.Now()
	b := silent()
	_ = b.SetReadDeadline(time.Now().Add(wait))
	if _, err := b.Read(make([]byte, 1)); err == nil {
		t.Error("a silent connection got bytes")
	} else if ne := (net.Error)(nil); errors.As(err, &ne) && ne.Timeout() {
		t.Errorf("a silent connection was not closed within %v", wait)
	}
	if d := time.Since(began); d < 1500*time.Millisecond {
		t.Errorf("a silent connection was closed after %v, before the handshake timeout", d)
	}
	if n := e.count(); n != 1 {
		t.Errorf("%d enrolled, want 1", n)
	}
}

// TestStopEndsHandshakes: Stop does not wait out the handshake timeout.
func TestStopEndsHandshakes(t *testing.T) {
	pki := testutil.NewPKI(t, t.TempDir(), "a")
	cfg := tlsConfig(pki.Server("srv"))
	cfg.TLSListen = "127.0.0.1:0"
	cfg.HandshakeTimeout = time.Minute
	s, err := transport.Start(cfg, (&echo{}).enroll, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		c, err := net.DialTimeout("tcp", s.Addr(transport.ListenerTLS).String(), wait)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	time.Sleep(100 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := s.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
}
