package admit

import (
	"sync/atomic"

	"github.com/shoalmq/shoal/auth"
	"github.com/shoalmq/shoal/codec"
	"github.com/shoalmq/shoal/eventloop"
	"github.com/shoalmq/shoal/internal/counters"
	"github.com/shoalmq/shoal/internal/limit"
	"github.com/shoalmq/shoal/internal/reason"
)

// Access is what Reload swaps: who may connect and what they may do.
// Connections keep the permissions they were given when they connected.
type Access struct {
	// Anonymous lets clients in without credentials (allow_anonymous,
	// resolved for the listeners).
	Anonymous bool
	// Authn checks user names and passwords; nil: nothing does.
	Authn auth.Authenticator
	// Authz says which topics each client may use; nil: all of them.
	Authz auth.Authorizer
}

// Conn is the connection being admitted, as package conn implements it.
type Conn interface {
	// Admission is the connection's admission state, made on first use.
	// Loop goroutine only.
	Admission() *State
	// SendAuth writes an AUTH packet with code, the connection's
	// authentication method (State.Method) and data. Loop goroutine only.
	SendAuth(code codec.ReasonCode, data []byte)
	// PostVerdict tells the connection's loop that the login pool's
	// verdict is in: the loop then calls Gate.Verdict. Called by a login
	// worker.
	PostVerdict()
}

// State is one connection's admission: the enhanced authentication
// method named in CONNECT and the exchange in progress, who the first
// exchange authenticated, and the login out with the pool. The zero value
// is a connection that has asked for nothing yet.
type State struct {
	method     string
	identity   string // who the CONNECT's exchange authenticated
	exchange   auth.Exchange
	connecting bool   // the exchange is the CONNECT's, not a re-authentication
	login      *login // the CONNECT out with the login pool (pool.go)
	claim      *claim // the CONNECT's session claim out with Owners (claim.go)
}

// Method is the enhanced authentication method named in CONNECT; "" when
// there is none.
func (s *State) Method() string { return s.method }

// Waiting reports whether the CONNECT is with the login pool, or its
// session's claim with the cluster: the client's further packets wait.
func (s *State) Waiting() bool { return s.login != nil || s.claim != nil }

// Outcome is what became of a CONNECT, an AUTH packet or a login's
// verdict that was not refused.
type Outcome uint8

const (
	// Wait: nothing to do now. The login pool has the CONNECT, or an
	// exchange goes on (AUTH 0x18 sent), or a re-authentication is done
	// (AUTH 0x00 sent).
	Wait Outcome = iota
	// Admit: connect the client with the Grant.
	Admit
	// Exchange: an enhanced authentication exchange began and the CONNECT
	// waits for it; Step it with the CONNECT's Authentication Data.
	Exchange
)

// Grant is what an admitted client gets.
type Grant struct {
	// Perms are its topic rights; nil: every right (no Authorizer, or a
	// connection of the embedding program's own).
	Perms auth.Permissions
	// AuthData is the last Authentication Data of the CONNECT's exchange,
	// for the CONNACK.
	AuthData []byte
	// Epoch is the epoch of this node's claim of the client's session, in
	// a cluster (Claim); 0: not claimed (a single node).
	Epoch uint64
}

// Request is what a CONNECT says about who the client is. Connect is the
// decoded CONNECT, valid only during Login.
type Request struct {
	ClientID string // as CONNECT decided it (assigned when the client sent none)
	Connect  *codec.Connect
	Net      *eventloop.Conn // the network connection: its origin and address
}

// Refusals of a CONNECT, answered with a CONNACK in every protocol
// version (package conn, client.closeWith).
var (
	errAnonymous = &reason.Error{Code: codec.NotAuthorized, Msg: "anonymous clients are not allowed"}
	errNoAuthn   = &reason.Error{Code: codec.BadUsernameOrPassword, Msg: "no authenticator configured to check the user name"}
	// ErrLoginBusy refuses a CONNECT when the login pool's queue is full;
	// its log line names the queue's size (Gate.Queue).
	ErrLoginBusy = &reason.Error{Code: codec.ServerBusy, Msg: "too many logins waiting"}
)

// Gate decides who may connect and what they may do, for every
// connection of the broker, and runs the login pool (RunLogins). Its
// methods that take no Conn are safe for concurrent use.
type Gate struct {
	access  atomic.Pointer[Access]
	methods *auth.Registry // enhanced authentication methods
	logins  chan *login    // CONNECTs waiting for the Authenticator
	limits  *atomic.Pointer[limit.Limits]
	stats   *counters.Conns
	owners  Owners // nil: a single node
}

// NewGate returns a Gate admitting clients by a, with the enhanced
// authentication methods given, queue logins waiting for the login pool,
// the limits in force (a login may take ConnectTimeout) and the counters
// of refusals.
func NewGate(a Access, methods []auth.Method, queue int, limits *atomic.Pointer[limit.Limits], stats *counters.Conns, owners Owners) *Gate {
	g := &Gate{methods: auth.NewRegistry(methods...), logins: make(chan *login, queue), limits: limits, stats: stats, owners: owners}
	g.access.Store(&a)
	return g
}

// SetAccess makes a the rules for connections from now on (Reload);
// connected clients keep what they were granted.
func (g *Gate) SetAccess(a Access) { g.access.Store(&a) }

// Queue is how many logins may wait for the login pool.
func (g *Gate) Queue() int { return cap(g.logins) }

// Login decides how the client of c proves who it is, once package conn
// has validated its CONNECT: it admits it at once, starts an exchange
// (Exchange) or hands the credentials to the login pool (Wait), or
// refuses it. Loop goroutine of c.
func (g *Gate) Login(c Conn, r Request) (Grant, Outcome, error) {
	p := r.Connect
	if p.Version == codec.V5 && p.Props.Has(codec.PropAuthMethod) {
		return g.startAuth(c, r.ClientID, string(p.Props.AuthMethod))
	}
	var certID string
	if o := r.Net.Origin(); o != nil {
		if o.Internal {
			// The embedding program itself: nothing to prove, every right.
			return Grant{}, Admit, nil
		}
		certID = o.CertIdentity
	}
	as := g.access.Load()
	switch {
	case certID != "":
		// A certificate the TLS handshake verified is the credential.
		return g.admit(certID, r.ClientID, nil)
	case p.UsernameFlag || p.PasswordFlag:
		if as.Authn == nil {
			if as.Anonymous {
				// Nothing can check the name, so nothing trusts it: the
				// client is anonymous to the Authorizer too, or anyone
				// could claim the rights of any user.
				return g.admit("", r.ClientID, nil)
			}
			g.stats.RefusedLogin.Add(1)
			return Grant{}, Wait, errNoAuthn
		}
		return g.checkLogin(c, as.Authn, r)
	case as.Anonymous:
		return g.admit("", r.ClientID, nil)
	}
	g.stats.RefusedLogin.Add(1)
	return Grant{}, Wait, errAnonymous
}

// admit gives an authenticated client its permissions. What it may do is
// decided now, by the rules in force now.
func (g *Gate) admit(identity, clientID string, authData []byte) (Grant, Outcome, error) {
	gr := Grant{AuthData: authData}
	if as := g.access.Load(); as.Authz != nil {
		gr.Perms = as.Authz.For(identity, clientID)
	}
	return gr, Admit, nil
}
