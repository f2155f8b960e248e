package transport

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"
)

// files names what certs reads: the Config fields that Reload may change.
type files struct {
	cert, key, clientCA string
	clientCADir         string
	clientCerts         ClientCertPolicy
	identity            IdentitySource
	minVersion          TLSVersion
}

func filesOf(c *Config) files {
	return files{cert: c.CertFile, key: c.KeyFile, clientCA: c.ClientCAFile, clientCADir: c.ClientCADir,
		clientCerts: c.ClientCerts, identity: c.Identity, minVersion: c.MinVersion}
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
		MinVersion:   max(uint16(f.minVersion), tls.VersionTLS12),
		Certificates: []tls.Certificate{pair},
	}
	if f.clientCerts != NoClientCerts {
		pool, err := clientCAs(f)
		if err != nil {
			return nil, err
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

// clientCAs reads the CA certificates of tls_client_ca_file and every
// file of tls_client_ca_dir that holds PEM certificates.
func clientCAs(f files) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	if f.clientCA != "" {
		caPEM, err := os.ReadFile(f.clientCA)
		if err != nil {
			return nil, fmt.Errorf("tls_client_ca_file: %w", err)
		}
		if !pool.AppendCertsFromPEM(caPEM) {
			return nil, fmt.Errorf("tls_client_ca_file: %s holds no PEM certificate", f.clientCA)
		}
	}
	if f.clientCADir != "" {
		entries, err := os.ReadDir(f.clientCADir)
		if err != nil {
			return nil, fmt.Errorf("tls_client_ca_dir: %w", err)
		}
		found := false
		for _, e := range entries {
			// OpenSSL's capath holds the certificates and, after openssl
			// rehash, links to them named by hash: following the links
			// reads a certificate twice, which a pool takes in its stride.
			path := filepath.Join(f.clientCADir, e.Name())
			if fi, err := os.Stat(path); err == nil && fi.IsDir() {
				continue
			}
			data, err := os.ReadFile(path)
			if err != nil {
				return nil, fmt.Errorf("tls_client_ca_dir: %w", err)
			}
			if pool.AppendCertsFromPEM(data) {
				found = true
			}
		}
		if !found {
			return nil, fmt.Errorf("tls_client_ca_dir: %s holds no file of PEM certificates", f.clientCADir)
		}
	}
	return pool, nil
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
	case IdentitySubject:
		return leaf.Subject.String()
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
