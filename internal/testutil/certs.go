package testutil

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// PKI is a throwaway certificate authority for TLS tests: it issues
// ECDSA P-256 certificates valid for an hour and writes them as PEM files
// into a directory of the test's. Not safe for concurrent use.
type PKI struct {
	t      testing.TB
	dir    string
	name   string
	ca     *x509.Certificate
	caKey  crypto.Signer
	CAFile string // the CA certificate, PEM
}

// NewPKI creates a CA called name, writing name-ca.pem into dir (a
// t.TempDir()).
func NewPKI(t testing.TB, dir, name string) *PKI {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: name + " test CA"},
		NotBefore:             time.Now().Add(-time.Minute),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	p := &PKI{t: t, dir: dir, name: name, ca: ca, caKey: key, CAFile: filepath.Join(dir, name+"-ca.pem")}
	writePEM(t, p.CAFile, "CERTIFICATE", der)
	return p
}

// Issued is a certificate the PKI issued, with its files.
type Issued struct {
	CertFile, KeyFile string
	Cert              *x509.Certificate
}

// Server issues a server certificate for 127.0.0.1, ::1 and localhost,
// written to <file>.pem and <file>-key.pem.
func (p *PKI) Server(file string) Issued {
	p.t.Helper()
	return p.issue(file, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "localhost"},
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
}

// Client issues a client certificate with Common Name cn and the given
// Subject Alternative Names (each may be nil).
func (p *PKI) Client(file, cn string, dns, emails []string, uris []string) Issued {
	p.t.Helper()
	tmpl := &x509.Certificate{
		Subject:        pkix.Name{CommonName: cn},
		DNSNames:       dns,
		EmailAddresses: emails,
		ExtKeyUsage:    []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	for _, u := range uris {
		pu, err := url.Parse(u)
		if err != nil {
			p.t.Fatal(err)
		}
		tmpl.URIs = append(tmpl.URIs, pu)
	}
	return p.issue(file, tmpl)
}

func (p *PKI) issue(file string, tmpl *x509.Certificate) Issued {
	p.t.Helper()
	key := newKey(p.t)
	tmpl.SerialNumber = serial(p.t)
	tmpl.NotBefore = time.Now().Add(-time.Minute)
	tmpl.NotAfter = time.Now().Add(time.Hour)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, key.Public(), p.caKey)
	if err != nil {
		p.t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		p.t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		p.t.Fatal(err)
	}
	is := Issued{CertFile: filepath.Join(p.dir, file+".pem"), KeyFile: filepath.Join(p.dir, file+"-key.pem"), Cert: cert}
	writePEM(p.t, is.CertFile, "CERTIFICATE", der)
	writePEM(p.t, is.KeyFile, "PRIVATE KEY", keyDER)
	return is
}

// Pool is a certificate pool holding the CA, for a client's RootCAs.
func (p *PKI) Pool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(p.ca)
	return pool
}

// ClientTLS is a Go client's TLS configuration trusting the CA, with the
// client certificate c unless it is the zero Issued.
func (p *PKI) ClientTLS(c Issued) *tls.Config {
	p.t.Helper()
	conf := &tls.Config{RootCAs: p.Pool(), ServerName: "localhost", MinVersion: tls.VersionTLS12}
	if c.CertFile != "" {
		pair, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			p.t.Fatal(err)
		}
		// Always sent, as mosquitto and paho send theirs: Go's default
		// sends none when the server names other CAs.
		conf.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &pair, nil }
	}
	return conf
}

// CopyFile replaces dst's contents with src's, as an operator rotating a
// certificate in place does.
func CopyFile(t testing.TB, dst, src string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func serial(t testing.TB) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func writePEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}
