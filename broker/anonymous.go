package broker

import (
	"net"

	"github.com/shoalmq/shoal/internal/enum"
)

// Anonymous says whether clients may connect without credentials: no user
// name, no verified client certificate, no enhanced authentication
// (allow_anonymous).
type Anonymous uint8

const (
	// AnonymousLoopback (the default) lets anonymous clients in while
	// every listener is on a loopback address, and refuses them once one
	// is on any other, in the spirit of Mosquitto 2: a broker that can
	// only be reached from its own host may be open; one on a network is
	// not, unless its configuration says so.
	AnonymousLoopback Anonymous = iota
	// AnonymousAllow lets them in on every listener.
	AnonymousAllow
	// AnonymousDeny refuses them everywhere.
	AnonymousDeny
)

// String returns the config-file spelling: loopback, true or false.
func (a Anonymous) String() string { return anonymousNames.String(a) }

// anonymousNames spells the Anonymous values; the config file also takes
// the booleans as such (config.anonymousValue).
var anonymousNames = enum.New[Anonymous]("Anonymous", "allow_anonymous value", "loopback", "true", "false")

// listeners returns the addresses of every listener c configures, each
// with its config-file key.
func (c *Config) listeners() [][2]string {
	out := [][2]string{{"listen", c.Listen}}
	for _, l := range [][2]string{{"tls_listen", c.Transports.TLSListen}, {"ws_listen", c.Transports.WSListen}, {"wss_listen", c.Transports.WSSListen}} {
		if l[1] != "" {
			out = append(out, l)
		}
	}
	return out
}

// exposed returns the first listener not on a loopback address, as
// "key addr", or "" when every one is.
func (c *Config) exposed() string {
	for _, l := range c.listeners() {
		if !loopback(l[1]) {
			return l[0] + " " + l[1]
		}
	}
	return ""
}

// anonymousAllowed resolves AllowAnonymous for c's listeners.
func (c *Config) anonymousAllowed() bool {
	switch c.AllowAnonymous {
	case AnonymousAllow:
		return true
	case AnonymousDeny:
		return false
	}
	return c.exposed() == ""
}

// loopback reports whether addr ("host:port") can only be reached from
// this host: a loopback IP, or a name that resolves to loopback IPs only
// (localhost). An empty host, or 0.0.0.0 / ::, listens everywhere.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return false
	}
	if ip := net.ParseIP(host); ip != nil {
		return ip.IsLoopback()
	}
	ips, err := net.LookupIP(host)
	if err != nil || len(ips) == 0 {
		return false
	}
	for _, ip := range ips {
		if !ip.IsLoopback() {
			return false
		}
	}
	return true
}

// warnAnonymous logs, at start, what the anonymous rule means for this
// configuration when a listener is on the network: anonymous clients let
// in there (a warning), or refused with nothing else to let anyone in.
func (b *Broker) warnAnonymous() {
	c := &b.cfg
	where := c.exposed()
	if where == "" {
		return
	}
	switch {
	case c.anonymousAllowed():
		b.lg().Warn().Str("listener", where).
			Msg("anonymous clients are allowed on a listener that is not on loopback (allow_anonymous: true): anyone who can reach it may connect")
	case c.Authenticator == nil && len(c.AuthMethods) == 0 && c.Transports.Identity == 0:
		b.lg().Warn().Str("listener", where).
			Msg("a listener is not on loopback, so anonymous clients are refused (allow_anonymous: loopback), and nothing is configured to let anyone else in: set password_file, http_auth_url or scram_users, or allow_anonymous: true")
	}
}
