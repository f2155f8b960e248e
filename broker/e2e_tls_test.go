package broker_test

import (
	"context"
	"crypto/tls"
	"net"
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

// End-to-end tests of the TLS listener with mosquitto_pub and
// mosquitto_sub (OpenSSL underneath), and of certificate reloads. The
// certificates are made for each test: a CA, a server certificate for
// 127.0.0.1 and localhost, client certificates, and a second CA nobody
// trusts.

// tlsSetup is a broker with a TLS listener and the certificates around it.
type tlsSetup struct {
	b       *broker.Broker
	cfg     broker.Config // as started
	tcp     string        // plain TCP listener, host:port
	tls     string        // TLS listener, host:port
	pki     *testutil.PKI
	srv     testutil.Issued
	dev     testutil.Issued // client certificate of CN "sensor-1", SAN sensor-1.example.com
	rogue   testutil.Issued // client certificate from the untrusted CA
	rogueCA string
}

// startTLS starts a broker whose TLS listener asks client certificates by
// policy, taking the identity from their CN.
func startTLS(t *testing.T, policy transport.ClientCertPolicy) *tlsSetup {
	t.Helper()
	dir := t.TempDir()
	s := &tlsSetup{pki: testutil.NewPKI(t, dir, "shoal")}
	s.srv = s.pki.Server("server")
	s.dev = s.pki.Client("sensor-1", "sensor-1", []string{"sensor-1.example.com"}, nil, nil)
	other := testutil.NewPKI(t, dir, "rogue")
	s.rogue, s.rogueCA = other.Client("rogue", "sensor-1", nil, nil, nil), other.CAFile
	s.b, s.tcp = testutil.StartBroker(t, func(c *broker.Config) {
		c.Transports.TLSListen = "127.0.0.1:0"
		c.Transports.CertFile, c.Transports.KeyFile = s.srv.CertFile, s.srv.KeyFile
		if policy != transport.NoClientCerts {
			c.Transports.ClientCAFile = s.pki.CAFile
			c.Transports.ClientCerts = policy
			c.Transports.Identity = transport.IdentityCN
		}
		s.cfg = *c
	})
	s.tls = s.b.ListenerAddr("tls").String()
	return s
}

// tlsArgs are mosquitto's options for the TLS listener: the CA, and the
// client certificate when c is not the zero Issued.
func (s *tlsSetup) tlsArgs(c testutil.Issued) []string {
	args := []string{"--cafile", s.pki.CAFile}
	if c.CertFile != "" {
		args = append(args, "--cert", c.CertFile, "--key", c.KeyFile)
	}
	return args
}

// TestMosquittoOverTLS: a message published over TLS reaches a subscriber
// on plain TCP, and one published on TCP reaches a subscriber over TLS:
// both kinds of connection share the router and sessions.
func TestMosquittoOverTLS(t *testing.T) {
	s := startTLS(t, transport.NoClientCerts)
	for _, v := range mosquittoVersions {
		t.Run(v, func(t *testing.T) {
			wait := startSub(t, s.b, s.tcp, 1, "-V", v, "-q", "1", "-t", "tls/#", "-v", "-C", "1")
			pub(t, s.tls, append(s.tlsArgs(testutil.Issued{}), "-V", v, "-q", "1", "-t", "tls/in", "-m", "over TLS")...)
			if got, want := wait(), "tls/in over TLS\n"; got != want {
				t.Errorf("TCP subscriber got %q, want %q", got, want)
			}
			testutil.Eventually(t, waitFor, "subscriber gone", func() bool { return s.b.SubscriptionCount() == 0 })

			wait = startSub(t, s.b, s.tls, 1, append(s.tlsArgs(testutil.Issued{}), "-V", v, "-q", "1", "-t", "tls/#", "-v", "-C", "1")...)
			pub(t, s.tcp, "-V", v, "-q", "1", "-t", "tls/out", "-m", "from TCP")
			if got, want := wait(), "tls/out from TCP\n"; got != want {
				t.Errorf("TLS subscriber got %q, want %q", got, want)
			}
			testutil.Eventually(t, waitFor, "subscriber gone", func() bool { return s.b.SubscriptionCount() == 0 })
		})
	}
}

// TestMosquittoMutualTLS: with tls_client_certs require, mosquitto with a
// client certificate from the trusted CA connects and its certificate's CN
// reaches the broker (ClientInfo, as the admin API shows it); without a
// certificate, or with one from another CA, the handshake is refused.
func TestMosquittoMutualTLS(t *testing.T) {
	s := startTLS(t, transport.RequireClientCerts)
	host, port := testutil.HostPort(t, s.tls)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sub := exec.CommandContext(ctx, testutil.Tool(t, "mosquitto_sub"), append(s.tlsArgs(s.dev),
		"-h", host, "-p", port, "-i", "mtls-sub", "-t", "m/#", "-v", "-C", "1")...)
	var out strings.Builder
	sub.Stdout, sub.Stderr = &out, &out
	if err := sub.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); _ = sub.Wait() }()
	testutil.Eventually(t, waitFor, "mosquitto_sub subscribed over mutual TLS", func() bool { return s.b.SubscriptionCount() == 1 })
	ci, ok := s.b.Client("mtls-sub")
	if !ok || ci.Listener != "tls" || ci.CertIdentity != "sensor-1" {
		t.Errorf("ClientInfo = %+v, want listener tls and identity sensor-1", ci)
	}

	for _, tt := range []struct {
		name string
		args []string
	}{
		{"no certificate", s.tlsArgs(testutil.Issued{})},
		{"certificate from another CA", s.tlsArgs(s.rogue)},
	} {
		got, err := testutil.Mosquitto(t, 10*time.Second, "mosquitto_pub",
			append(tt.args, "-h", host, "-p", port, "-t", "m/x", "-m", "intruder")...)
		if err == nil {
			t.Errorf("%s: mosquitto_pub succeeded: %s", tt.name, got)
		}
		t.Logf("%s: %v: %s", tt.name, err, strings.TrimSpace(got))
	}
	pub(t, s.tls, append(s.tlsArgs(s.dev), "-t", "m/ok", "-m", "trusted")...)
	if err := sub.Wait(); err != nil {
		t.Fatalf("mosquitto_sub: %v: %s", err, out.String())
	}
	if got := out.String(); got != "m/ok trusted\n" {
		t.Errorf("subscriber got %q, want only the trusted message", got)
	}
}

// TestTLSReload: Broker.Reload (SIGHUP) re-reads the certificate files:
// a connection made afterwards is served the new certificate, one made
// before goes on; a reload whose files are broken is refused and changes
// nothing.
func TestTLSReload(t *testing.T) {
	s := startTLS(t, transport.NoClientCerts)
	// The broker was configured with s.srv's files; rotate them in place.
	next := s.pki.Server("next")
	serial := func(r *testutil.Raw) string {
		return r.Conn.(*tls.Conn).ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	conf := s.pki.ClientTLS(testutil.Issued{})

	old := testutil.DialTLS(t, s.tls, conf, codec.V311)
	if ack := old.Connect(codec.Connect{ClientID: []byte("before"), CleanStart: true}); ack.Code != codec.Success {
		t.Fatalf("CONNACK %v", ack.Code)
	}
	old.Subscribe(1, "reload/#", 0)
	if serial(old) != s.srv.Cert.SerialNumber.String() {
		t.Fatal("first connection: not the configured certificate")
	}

	testutil.CopyFile(t, s.srv.CertFile, next.CertFile)
	testutil.CopyFile(t, s.srv.KeyFile, next.KeyFile)
	cfg := s.cfg
	need, err := s.b.Reload(cfg)
	if err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if len(need) != 0 {
		t.Errorf("Reload says %v need a restart", need)
	}
	fresh := testutil.DialTLS(t, s.tls, conf, codec.V5)
	if ack := fresh.Connect(codec.Connect{ClientID: []byte("after"), CleanStart: true}); ack.Code != codec.Success {
		t.Fatalf("CONNACK %v", ack.Code)
	}
	if got, want := serial(fresh), next.Cert.SerialNumber.String(); got != want {
		t.Errorf("after Reload the server certificate serial is %s, want the new %s", got, want)
	}
	fresh.SendPublish(codec.Publish{Topic: []byte("reload/x"), Payload: []byte("still connected")})
	if p, _ := old.ExpectPublish(testutil.Wait); string(p.Payload) != "still connected" {
		t.Errorf("the connection from before Reload got %q", p.Payload)
	}

	// Half a rotation: the old certificate with the new key.
	testutil.CopyFile(t, s.srv.CertFile, s.pki.Server("stray").CertFile)
	if _, err := s.b.Reload(cfg); err == nil || !strings.HasPrefix(err.Error(), "tls_cert_file: ") {
		t.Errorf("Reload with a certificate that does not match its key: %v, want a tls_cert_file error", err)
	}
	again := testutil.DialTLS(t, s.tls, conf, codec.V311)
	if serial(again) != next.Cert.SerialNumber.String() {
		t.Error("a refused Reload changed the certificate")
	}
	cfg.Transports.TLSListen = "127.0.0.1:1"
	testutil.CopyFile(t, s.srv.CertFile, next.CertFile)
	need, err = s.b.Reload(cfg)
	if err != nil || len(need) != 1 || need[0] != "Transports.TLSListen" {
		t.Errorf("Reload with a new tls_listen: %v, %v; want [Transports.TLSListen]", need, err)
	}
}

// TestTLSStartErrors: a certificate that does not load fails Start with
// its key, and Start undoes what it had started: the TCP port is free
// again.
func TestTLSStartErrors(t *testing.T) {
	cfg := broker.DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.SysInterval = 0
	cfg.Transports.TLSListen = "127.0.0.1:0"
	cfg.Transports.CertFile = filepath.Join(t.TempDir(), "missing.pem")
	cfg.Transports.KeyFile = cfg.Transports.CertFile
	b, err := broker.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	err = b.Start()
	if err == nil || !strings.HasPrefix(err.Error(), "tls_cert_file: open ") {
		t.Fatalf("Start: %v, want a tls_cert_file error", err)
	}
	if a := b.Addr(); a != nil {
		if c, err := net.DialTimeout("tcp", a.String(), time.Second); err == nil {
			_ = c.Close()
			t.Errorf("the TCP listener %s still accepts after a failed Start", a)
		}
	}
}
