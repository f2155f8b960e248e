package transport_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/shoalmq/shoal/eventloop"
	"github.com/shoalmq/shoal/internal/testutil"
	"github.com/shoalmq/shoal/transport"
)

// These tests run a Server whose enroll function, instead of a reactor,
// echoes every byte back and records the Origin: what the transports do
// is checked without a broker. The broker's tests run them for real.

// wait bounds every wait for something the Server owes.
const wait = 5 * time.Second

// echo is an enroll function that echoes each stream on a goroutine of
// its own, counted so that the test waits for them.
type echo struct {
	mu      sync.Mutex
	origins []eventloop.Origin
	conns   []net.Conn
	wg      sync.WaitGroup
}

func (e *echo) enroll(c net.Conn, o *eventloop.Origin) error {
	e.mu.Lock()
	e.origins = append(e.origins, *o)
	e.conns = append(e.conns, c)
	e.mu.Unlock()
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		_, _ = io.Copy(c, c)
		_ = c.Close()
	}()
	return nil
}

// origin returns the i-th Origin enrolled, waiting for it.
func (e *echo) origin(t *testing.T, i int) eventloop.Origin {
	t.Helper()
	testutil.Eventually(t, wait, "an enrolled connection", func() bool {
		e.mu.Lock()
		defer e.mu.Unlock()
		return len(e.origins) > i
	})
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.origins[i]
}

func (e *echo) count() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.origins)
}

// start runs a Server for cfg (addresses of configured listeners become
// 127.0.0.1:0) and stops it, and the echoes, when the test ends.
func start(t *testing.T, cfg transport.Config) (*transport.Server, *echo) {
	t.Helper()
	return startLogged(t, cfg, zerolog.Nop())
}

// startLogged is start with the Server logging to log.
func startLogged(t *testing.T, cfg transport.Config, log zerolog.Logger) (*transport.Server, *echo) {
	t.Helper()
	for _, a := range []*string{&cfg.TLSListen, &cfg.WSListen, &cfg.WSSListen} {
		if *a != "" {
			*a = "127.0.0.1:0"
		}
	}
	e := &echo{}
	s, err := transport.Start(cfg, e.enroll, log)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		if err := s.Stop(ctx); err != nil {
			t.Errorf("Stop: %v", err)
		}
		e.mu.Lock()
		for _, c := range e.conns {
			_ = c.Close()
		}
		e.mu.Unlock()
		e.wg.Wait()
	})
	return s, e
}

// tlsConfig returns a Config with a TLS listener serving srv's files.
func tlsConfig(srv testutil.Issued) transport.Config {
	cfg := transport.DefaultConfig()
	cfg.TLSListen = "on"
	cfg.CertFile, cfg.KeyFile = srv.CertFile, srv.KeyFile
	return cfg
}

// dialTLS connects, completes the handshake, and checks an echo: with TLS
// 1.3 a server refusing the client's certificate says so only after the
// client's side of the handshake, so the round trip is what proves the
// connection was accepted.
func dialTLS(t *testing.T, addr net.Addr, conf *tls.Config) (*tls.Conn, error) {
	t.Helper()
	d := &net.Dialer{Timeout: wait}
	c, err := tls.DialWithDialer(d, "tcp", addr.String(), conf)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { _ = c.Close() })
	if err := roundTrip(c, "ping"); err != nil {
		return nil, err
	}
	return c, nil
}

// roundTrip writes msg and reads it back.
func roundTrip(c net.Conn, msg string) error {
	_ = c.SetDeadline(time.Now().Add(wait))
	defer func() { _ = c.SetDeadline(time.Time{}) }()
	if _, err := c.Write([]byte(msg)); err != nil {
		return err
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		return err
	}
	if !bytes.Equal(got, []byte(msg)) {
		return io.ErrUnexpectedEOF
	}
	return nil
}

func TestValidate(t *testing.T) {
	ok := transport.DefaultConfig()
	tests := []struct {
		name string
		edit func(c *transport.Config)
		want string // prefix; "" for valid
	}{
		{"defaults", func(*transport.Config) {}, ""},
		{"ws only", func(c *transport.Config) { c.WSListen = ":8080" }, ""},
		{"bad address", func(c *transport.Config) { c.WSListen = "8080" }, `ws_listen: want host:port or "" (off)`},
		{"tls without cert", func(c *transport.Config) { c.TLSListen = ":8883" }, "tls_cert_file: must be set"},
		{"wss without key", func(c *transport.Config) { c.WSSListen = ":8443"; c.CertFile = "c.pem" },
			"tls_key_file: must be set"},
		{"key without cert", func(c *transport.Config) { c.KeyFile = "k.pem" }, "tls_key_file: tls_cert_file and tls_key_file go together"},
		{"path", func(c *transport.Config) { c.WSPath = "mqtt" }, `ws_path: "mqtt" must start with /`},
		{"any path", func(c *transport.Config) { c.WSPath = transport.AnyPath }, ""},
		{"require without CA", func(c *transport.Config) { c.ClientCerts = transport.RequireClientCerts },
			"tls_client_ca_file: it or tls_client_ca_dir must be set when tls_client_certs is require"},
		{"require with a CA directory", func(c *transport.Config) {
			c.ClientCerts, c.ClientCADir = transport.RequireClientCerts, "/etc/ssl/certs"
		}, ""},
		{"TLS 1.1", func(c *transport.Config) { c.MinVersion = tls.VersionTLS11 }, "tls_min_version: "},
		{"identity without client certs", func(c *transport.Config) { c.Identity = transport.IdentityCN },
			"tls_identity: cn needs tls_client_certs optional or require"},
		{"no handshakes", func(c *transport.Config) { c.MaxHandshakes = 0 }, "transport: max handshakes 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.edit(&c)
			err := c.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Validate: %v, want nil", err)
			case tt.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tt.want)):
				t.Errorf("Validate: %v, want %q...", err, tt.want)
			}
		})
	}
}

func TestParsePolicies(t *testing.T) {
	for _, p := range []transport.ClientCertPolicy{transport.NoClientCerts, transport.OptionalClientCerts, transport.RequireClientCerts} {
		if got, err := transport.ParseClientCertPolicy(p.String()); err != nil || got != p {
			t.Errorf("ParseClientCertPolicy(%q) = %v, %v", p, got, err)
		}
	}
	for _, v := range []transport.TLSVersion{transport.TLS12, transport.TLS13} {
		if got, err := transport.ParseTLSVersion(v.String()); err != nil || got != v {
			t.Errorf("ParseTLSVersion(%q) = %v, %v", v, got, err)
		}
	}
	if _, err := transport.ParseTLSVersion("1.1"); err == nil {
		t.Error(`ParseTLSVersion("1.1") succeeded`)
	}
	for _, s := range []transport.IdentitySource{transport.NoIdentity, transport.IdentityCN, transport.IdentitySAN, transport.IdentitySubject} {
		if got, err := transport.ParseIdentitySource(s.String()); err != nil || got != s {
			t.Errorf("ParseIdentitySource(%q) = %v, %v", s, got, err)
		}
	}
	if _, err := transport.ParseClientCertPolicy("required"); err == nil {
		t.Error(`ParseClientCertPolicy("required") succeeded`)
	}
	if _, err := transport.ParseIdentitySource("CN"); err == nil {
		t.Error(`ParseIdentitySource("CN") succeeded`)
	}
}

// TestStartErrorsNameKeys: files that do not load and addresses that do
// not bind fail Start with the key at fault.
func TestStartErrorsNameKeys(t *testing.T) {
	dir := t.TempDir()
	pki := testutil.NewPKI(t, dir, "a")
	srv := pki.Server("srv")
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	for _, tt := range []struct {
		name string
		edit func(c *transport.Config)
		want string
	}{
		{"missing cert", func(c *transport.Config) { c.CertFile = dir + "/nope.pem" }, "tls_cert_file: open "},
		{"missing key", func(c *transport.Config) { c.KeyFile = dir + "/nope.pem" }, "tls_key_file: open "},
		{"key of another cert", func(c *transport.Config) { c.KeyFile = pki.Server("other").KeyFile },
			"tls_cert_file: " + srv.CertFile + " with "},
		{"CA not PEM", func(c *transport.Config) {
			c.ClientCerts, c.ClientCAFile = transport.RequireClientCerts, srv.KeyFile
		}, "tls_client_ca_file: " + srv.KeyFile + " holds no PEM certificate"},
		{"address in use", func(c *transport.Config) { c.TLSListen = busy.Addr().String() }, "tls_listen: listen tcp"},
		{"CA directory missing", func(c *transport.Config) {
			c.ClientCerts, c.ClientCADir = transport.RequireClientCerts, dir+"/nope"
		}, "tls_client_ca_dir: open "},
		{"CA directory without a CA", func(c *transport.Config) {
			c.ClientCerts, c.ClientCADir = transport.RequireClientCerts, t.TempDir()
		}, "tls_client_ca_dir: "},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tlsConfig(srv)
			cfg.TLSListen = "127.0.0.1:0"
			tt.edit(&cfg)
			s, err := transport.Start(cfg, (&echo{}).enroll, zerolog.Nop())
			if err == nil {
				_ = s.Stop(context.Background())
				t.Fatalf("Start succeeded, want %q...", tt.want)
			}
			if !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("Start: %v, want %q...", err, tt.want)
			}
		})
	}
}
