package transport

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"
)

// files names what certs reads: the Config fields that Reload may change.
type files struct {
	cert, key, clientCA string
	clientCerts         ClientCertPolicy
	identity            IdentitySource
}

func filesOf(c *Config) files {
	return files{cert: c.CertFile, key: c.KeyFile, clientCA: c.ClientCAFile,
		clientCerts: c.ClientCerts, identity: c.Identity}
}

// material is one loaded generation of certificates, with the tls.Configs
// built from it. It is never changed once published.
type material struct {
	files
	leaf *x509.Certificate // the server certificate, for logs and tests
	mqtt *tls.Config       // for tls_listen
	http *tls.Config       // for wss_listen: the same, offering HTTP/1.1 by ALPN
}

// certs serves the current material to handshakes. Reload swaps in a new
// generation; a handshake reads the pointer once, through
// tls.Config.GetConfigForClient, so connections already made keep what
// they negotiated and a reload needs no restart. Safe for concurrent use.
type certs struct {
	cur atomic.Pointer[material]
}

// load reads f's files and publishes them. On error it changes nothing:
// the previous generation, if any, goes on serving.
func (cs *certs) load(f files) (*material, error) {
	m, err := loadMaterial(f)
	if err != nil {
		return nil, err
	}
	cs.cur.Store(m)
	return m, nil
}

// loadMaterial reads the certificate, key and client CAs named by f.
// Errors name the config-file key of the file at fault.
func loadMaterial(f files) (*material, error) {
	certPEM, err := os.ReadFile(f.cert)
	if err != nil {
		return nil, fmt.Errorf("tls_cert_file: %w", err)
	}
	keyPEM, err := os.ReadFile(f.key)
	if err != nil {
		return nil, fmt.Errorf("tls_key_file: %w", err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("tls_cert_file: %s with %s: %w", f.cert, f.key, err)
	}
	m := &material{files: f, leaf: pair.Leaf}
	base := &tls.Config{
		// TLS 1.0 and 1.1 are deprecated (RFC 8996); every MQTT client
		// library of the last decade speaks 1.2.
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{pair},
	}
	if f.clientCerts != NoClientCerts {
		caPEM, err := os.ReadFile(f.clientCA)
		if err != nil {
			return nil, fmt.Errorf("tls_client_ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(caPEM) {
			return nil, fmt.Errorf("tls_client_ca_file: %s holds no PEM certificate", f.clientCA)
		}
		base.ClientCAs = pool
		base.ClientAuth = tls.VerifyClientCertIfGiven
		if f.clientCerts == RequireClientCerts {
			base.ClientAuth = tls.RequireAndVerifyClientCert
		}
		// A resumed session skips certificate verification, so after a
		// reload that dropped a CA it would let the CA's clients back
		// in; MQTT connections are long-lived, full handshakes cheap.
		base.SessionTicketsDisabled = true
	}
	m.mqtt = base
	m.http = base.Clone()
	m.http.NextProtos = []string{"http/1.1"} // no h2: WebSocket upgrades need HTTP/1.1
	return m, nil
}

// serverConfig returns the tls.Config a listener is built with: it asks
// certs for the current generation at every handshake.
func (cs *certs) serverConfig(forHTTP bool) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			m := cs.cur.Load()
			if m == nil {
				return nil, errors.New("transport: no certificate loaded")
			}
			if forHTTP {
				return m.http, nil
			}
			return m.mqtt, nil
		},
	}
}

// identity returns the identity of a connection's verified client
// certificate by src; "" without a verified chain.
func identity(st tls.ConnectionState, src IdentitySource) string {
	if len(st.VerifiedChains) == 0 || len(st.VerifiedChains[0]) == 0 {
		return ""
	}
	leaf := st.VerifiedChains[0][0]
	switch src {
	case IdentityCN:
		return leaf.Subject.CommonName
	case IdentitySAN:
		switch {
		case len(leaf.DNSNames) > 0:
			return leaf.DNSNames[0]
		case len(leaf.EmailAddresses) > 0:
			return leaf.EmailAddresses[0]
		case len(leaf.URIs) > 0:
			return leaf.URIs[0].String()
		}
	}
	return ""
}

// describe is what the logs say about a loaded certificate.
func describe(m *material) (subject, serial string, notAfter time.Time) {
	if m.leaf == nil {
		return "", "", time.Time{}
	}
	return m.leaf.Subject.String(), m.leaf.SerialNumber.Text(16), m.leaf.NotAfter
}
