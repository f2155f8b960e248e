package transport

import (
	"crypto/tls"
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
	// IdentitySubject takes the whole subject, in RFC 4514 order and
	// form ("CN=dev 1,OU=Sensors,O=Example,C=GB"), as Mosquitto's
	// use_subject_as_username does.
	IdentitySubject
)

// String returns the config-file spelling.
func (s IdentitySource) String() string { return identitySources.String(s) }

// ParseIdentitySource reads the config-file spelling of an IdentitySource.
func ParseIdentitySource(s string) (IdentitySource, error) { return identitySources.Parse(s) }

// identitySources spells the IdentitySource values, in order.
var identitySources = enum.New[IdentitySource]("IdentitySource", "certificate identity", "none", "cn", "san", "subject")

// TLSVersion is the oldest TLS version the listeners accept.
type TLSVersion uint16

// The versions a listener may require at least. TLS 1.0 and 1.1 are not
// offered at all: RFC 8996 deprecates them, and every MQTT client library
// of the last decade speaks 1.2.
const (
	TLS12 TLSVersion = tls.VersionTLS12
	TLS13 TLSVersion = tls.VersionTLS13
)

// String returns the version's config-file spelling.
func (v TLSVersion) String() string {
	switch v {
	case TLS12:
		return "1.2"
	case TLS13:
		return "1.3"
	}
	return fmt.Sprintf("TLSVersion(%#x)", uint16(v))
}

// ParseTLSVersion reads the config-file spelling of a TLSVersion.
func ParseTLSVersion(s string) (TLSVersion, error) {
	switch s {
	case "1.2":
		return TLS12, nil
	case "1.3":
		return TLS13, nil
	}
	return 0, fmt.Errorf("unknown TLS version %q (want 1.2 or 1.3)", s)
}

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
	// (ws_path); other paths get 404. AnyPath upgrades at every path, as
	// Mosquitto's WebSocket listeners do. Default "/mqtt".
	WSPath string

	// CertFile and KeyFile are the PEM server certificate chain and its
	// private key for tls_listen and wss_listen (tls_cert_file,
	// tls_key_file). Required when either listens. Read at Start and again
	// by Reload.
	CertFile, KeyFile string
	// ClientCAFile holds the PEM CA certificates that verify client
	// certificates (tls_client_ca_file). It or ClientCADir is required
	// unless ClientCerts is none. Reloaded with the server certificate.
	ClientCAFile string
	// ClientCADir is a directory whose files hold more such CA
	// certificates (tls_client_ca_dir), in the manner of OpenSSL's capath:
	// every regular file in it that holds PEM certificates is read, others
	// are passed over. Reloaded with the server certificate.
	ClientCADir string
	// MinVersion is the oldest TLS version accepted (tls_min_version).
	// Default TLS12. Reloaded with the server certificate.
	MinVersion TLSVersion
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

// AnyPath as WSPath upgrades to WebSocket at every HTTP path.
const AnyPath = "*"

// DefaultConfig returns the defaults: no listener, WebSocket path "/mqtt",
// no client certificates, TLS 1.2 and up, at most 1024 handshakes at once.
func DefaultConfig() Config {
	return Config{WSPath: "/mqtt", MaxHandshakes: 1024, MinVersion: TLS12}
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
	case c.WSPath != AnyPath && !strings.HasPrefix(c.WSPath, "/"):
		return fmt.Errorf("ws_path: %q must start with / (or be %s, any path)", c.WSPath, AnyPath)
	case c.ClientCerts > RequireClientCerts:
		return fmt.Errorf("tls_client_certs: %v is unknown", c.ClientCerts)
	case c.Identity > IdentitySubject:
		return fmt.Errorf("tls_identity: %v is unknown", c.Identity)
	case c.MinVersion != TLS12 && c.MinVersion != TLS13:
		return fmt.Errorf("tls_min_version: %v is unknown", c.MinVersion)
	case c.UsesTLS() && c.CertFile == "":
		return errors.New("tls_cert_file: must be set when tls_listen or wss_listen is")
	case c.UsesTLS() && c.KeyFile == "":
		return errors.New("tls_key_file: must be set when tls_listen or wss_listen is")
	case (c.CertFile == "") != (c.KeyFile == ""):
		return errors.New("tls_key_file: tls_cert_file and tls_key_file go together")
	case c.ClientCerts != NoClientCerts && c.ClientCAFile == "" && c.ClientCADir == "":
		return fmt.Errorf("tls_client_ca_file: it or tls_client_ca_dir must be set when tls_client_certs is %v", c.ClientCerts)
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
