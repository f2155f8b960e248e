package transport

import (
	"errors"
	"fmt"
	"github.com/shoalmq/shoal/internal/enum"
	"net"
	"strings"
	"time"
)

// ClientCertPolicy says whether TLS clients (tls_listen, wss_listen) must
// present a certificate.
type ClientCertPolicy uint8

const (
	// NoClientCerts asks for no client certificate (default).
	NoClientCerts ClientCertPolicy = iota
	// OptionalClientCerts asks for one and verifies it against the client
	// CA pool when given; a client without one still connects.
	OptionalClientCerts
	// RequireClientCerts refuses the handshake without a certificate that
	// the client CA pool verifies (mutual TLS).
	RequireClientCerts
)

// String returns the config-file spelling.
func (p ClientCertPolicy) String() string { return clientCertPolicies.String(p) }

// ParseClientCertPolicy reads the config-file spelling of a ClientCertPolicy.
func ParseClientCertPolicy(s string) (ClientCertPolicy, error) { return clientCertPolicies.Parse(s) }

// clientCertPolicies spells the ClientCertPolicy values, in order.
var clientCertPolicies = enum.New[ClientCertPolicy]("ClientCertPolicy", "client certificate policy", "none", "optional", "require")

// IdentitySource says which field of a verified client certificate becomes
// the connection's identity (eventloop.Origin.CertIdentity).
type IdentitySource uint8

const (
	// NoIdentity takes none (default).
	NoIdentity IdentitySource = iota
	// IdentityCN takes the subject's Common Name.
	IdentityCN
	// IdentitySAN takes the first Subject Alternative Name: a DNS name,
	// else an email address, else a URI.
	IdentitySAN
)

// String returns the config-file spelling.
func (s IdentitySource) String() string { return identitySources.String(s) }

// ParseIdentitySource reads the config-file spelling of a IdentitySource.
func ParseIdentitySource(s string) (IdentitySource, error) { return identitySources.Parse(s) }

// identitySources spells the IdentitySource values, in order.
var identitySources = enum.New[IdentitySource]("IdentitySource", "certificate identity", "none", "cn", "san")

// Config configures the TLS and WebSocket listeners. Each field documents
// its default and its config-file key; start from DefaultConfig. A zero
// Config runs no listener.
type Config struct {
	// TLSListen is the address of the MQTT over TLS listener (tls_listen),
	// e.g. ":8883". Default "": off.
	TLSListen string
	// WSListen is the address of the MQTT over WebSocket listener
	// (ws_listen), e.g. ":8080". Default "": off.
	WSListen string
	// WSSListen is the address of the MQTT over secure WebSocket listener
	// (wss_listen), e.g. ":8443". Default "": off.
	WSSListen string
	// WSPath is the one HTTP path where ws and wss upgrade to WebSocket
	// (ws_path); other paths get 404. Default "/mqtt".
	WSPath string

	// CertFile and KeyFile are the PEM server certificate chain and its
	// private key for tls_listen and wss_listen (tls_cert_file,
	// tls_key_file). Required when either listens. Read at Start and again
	// by Reload.
	CertFile, KeyFile string
	// ClientCAFile holds the PEM CA certificates that verify client
	// certificates (tls_client_ca_file). Required unless ClientCerts is
	// none. Reloaded with the server certificate.
	ClientCAFile string
	// ClientCerts says whether clients must present a certificate
	// (tls_client_certs). Default NoClientCerts.
	ClientCerts ClientCertPolicy
	// Identity says which certificate field names a verified client
	// (tls_identity). Default NoIdentity.
	Identity IdentitySource

	// HandshakeTimeout bounds a connection's TLS handshake and WebSocket
	// upgrade; the broker's connect_timeout then bounds CONNECT, as for
	// TCP. Default 0: 10 seconds (the broker passes its connect_timeout).
	HandshakeTimeout time.Duration
	// MaxHandshakes bounds the connections between accept and enrolment
	// (TLS handshake, WebSocket upgrade), over all listeners. When that
	// many are under way no more are accepted: new ones wait in the
	// kernel's backlog, so a flood of connections that start a handshake
	// and stall costs at most this many handshake states — 42 KB each
	// measured, 43 MB at the default — however long it lasts. 1024 is
	// about half a second of full handshakes on a 2-CPU machine (2,100/s
	// measured, client and broker sharing the CPUs), so a reconnect storm
	// waits its turn instead of being refused. Default 1024.
	MaxHandshakes int
}

// DefaultConfig returns the defaults: no listener, WebSocket path "/mqtt",
// no client certificates, at most 1024 handshakes at once.
func DefaultConfig() Config {
	return Config{WSPath: "/mqtt", MaxHandshakes: 1024}
}

// UsesTLS reports whether a listener needs the server certificate.
func (c *Config) UsesTLS() bool { return c.TLSListen != "" || c.WSSListen != "" }

// Validate reports the first setting that cannot work, naming its
// config-file key. It does not read the files: Start and Reload do, and
// their errors name the key too.
func (c *Config) Validate() error {
	for _, l := range []struct{ key, addr string }{
		{"tls_listen", c.TLSListen}, {"ws_listen", c.WSListen}, {"wss_listen", c.WSSListen},
	} {
		if l.addr == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(l.addr); err != nil {
			return fmt.Errorf("%s: want host:port or \"\" (off): %w", l.key, err)
		}
	}
	switch {
	case c.WSPath == "" || !strings.HasPrefix(c.WSPath, "/"):
		return fmt.Errorf("ws_path: %q must start with /", c.WSPath)
	case c.ClientCerts > RequireClientCerts:
		return fmt.Errorf("tls_client_certs: %v is unknown", c.ClientCerts)
	case c.Identity > IdentitySAN:
		return fmt.Errorf("tls_identity: %v is unknown", c.Identity)
	case c.UsesTLS() && c.CertFile == "":
		return errors.New("tls_cert_file: must be set when tls_listen or wss_listen is")
	case c.UsesTLS() && c.KeyFile == "":
		return errors.New("tls_key_file: must be set when tls_listen or wss_listen is")
	case (c.CertFile == "") != (c.KeyFile == ""):
		return errors.New("tls_key_file: tls_cert_file and tls_key_file go together")
	case c.ClientCerts != NoClientCerts && c.ClientCAFile == "":
		return fmt.Errorf("tls_client_ca_file: must be set when tls_client_certs is %v", c.ClientCerts)
	case c.Identity != NoIdentity && c.ClientCerts == NoClientCerts:
		return fmt.Errorf("tls_identity: %v needs tls_client_certs optional or require", c.Identity)
	case c.HandshakeTimeout < 0:
		return fmt.Errorf("transport: handshake timeout %v is negative", c.HandshakeTimeout)
	case c.MaxHandshakes < 1:
		return fmt.Errorf("transport: max handshakes %d must be at least 1", c.MaxHandshakes)
	}
	return nil
}

// handshakeTimeout is HandshakeTimeout with its default.
func (c *Config) handshakeTimeout() time.Duration {
	if c.HandshakeTimeout > 0 {
		return c.HandshakeTimeout
	}
	return 10 * time.Second
}
