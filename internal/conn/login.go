package conn

import (
	"context"
	"errors"

	"github.com/shoalmq/shoal/auth"
	"github.com/shoalmq/shoal/codec"
	"github.com/shoalmq/shoal/eventloop"
	"github.com/shoalmq/shoal/internal/reason"
)

// Login: who a client is, whether it may connect, and what it may do.
//
//	CONNECT -> identity:  verified client certificate  -> admit
//	                      enhanced authentication      -> auth.go, then admit
//	                      user name (and password)     -> Authenticator on the login pool,
//	                                                      result posted to the loop -> admit
//	                      nothing                      -> admit if anonymous clients are allowed (Access.Anonymous)
//	admit   -> Authorizer.For(identity, client id), will topic check -> finishConnect
//
// The Authenticator may be slow on purpose (bcrypt) or wait on a network,
// so it never runs on an event loop. While a login is out, the client's
// later packets wait unread in its buffer (eventloop.ErrPause), and the
// connect timeout still runs.

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

// Refusals of a CONNECT, answered with a CONNACK in every protocol
// version (closeWith).
var (
	errAnonymous      = &reason.Error{Code: codec.NotAuthorized, Msg: "anonymous clients are not allowed"}
	errNoAuthn        = &reason.Error{Code: codec.BadUsernameOrPassword, Msg: "no authenticator configured to check the user name"}
	errLoginBusy      = &reason.Error{Code: codec.ServerBusy, Msg: "too many logins waiting"}
	errWillDenied     = &reason.Error{Code: codec.NotAuthorized, Msg: "will topic not allowed"}
	errWillTopicLimit = &reason.Error{Code: codec.TopicNameInvalid, Msg: "will topic longer than max_topic_length or max_topic_levels"}
	errTooManyConns   = &reason.Error{Code: codec.QuotaExceeded, Msg: "max_connections reached"}
	errConnectRate    = &reason.Error{Code: codec.ConnectionRateExceeded, Msg: "too many connections from this address"}
	errClientIDLength = &reason.Error{Code: codec.ClientIDNotValid, Msg: "client identifier longer than max_client_id_length"}
)

// loginJob is one CONNECT whose credentials an AuthWorker checks. The
// worker sets err and posts the job back to the client's loop.
type loginJob struct {
	c     *client
	authn auth.Authenticator
	login auth.Login
	err   error
}

// login decides how the client proves who it is, after onConnect has
// validated CONNECT; p is the decoded CONNECT, valid only during the call.
func (c *client) login(ls *loopState, p *codec.Connect, cp connectParams) error {
	as := c.h.access.Load()
	if c.version == codec.V5 && p.Props.Has(codec.PropAuthMethod) {
		cp.user, cp.hasUser = string(p.Username), p.UsernameFlag
		return c.startAuth(ls, cp, string(p.Props.AuthMethod), p.Props.AuthData)
	}
	var certID string
	if o := c.conn.Origin(); o != nil {
		if o.Internal {
			// The embedding program itself: nothing to prove, every right.
			c.finishConnect(ls, cp, nil)
			return nil
		}
		certID = o.CertIdentity
	}
	switch {
	case certID != "":
		// A certificate the TLS handshake verified is the credential.
		return c.admit(ls, cp, certID, nil)
	case p.UsernameFlag || p.PasswordFlag:
		cp.user, cp.hasUser = string(p.Username), p.UsernameFlag
		if as.Authn == nil {
			if as.Anonymous {
				// Nothing can check the name, so nothing trusts it: the
				// client is anonymous to the Authorizer too, or anyone
				// could claim the rights of any user.
				return c.admit(ls, cp, "", nil)
			}
			c.h.stats.RefusedLogin.Add(1)
			return errNoAuthn
		}
		return c.checkLogin(ls, as.Authn, p, cp)
	case as.Anonymous:
		return c.admit(ls, cp, "", nil)
	}
	c.h.stats.RefusedLogin.Add(1)
	return errAnonymous
}

// checkLogin hands the credentials to the login pool. A full queue refuses
// the client at once: under a reconnect storm the broker answers "busy"
// instead of queueing without bound.
func (c *client) checkLogin(ls *loopState, authn auth.Authenticator, p *codec.Connect, cp connectParams) error {
	j := &loginJob{c: c, authn: authn, login: auth.Login{
		ClientID:    cp.id,
		Username:    cp.user,
		Password:    append([]byte(nil), p.Password...),
		HasUsername: p.UsernameFlag,
		HasPassword: p.PasswordFlag,
		Remote:      c.conn.RemoteAddr().String(),
		Listener:    listenerOf(c.conn),
	}}
	select {
	case c.h.logins <- j:
	default:
		c.h.stats.RefusedLoginBusy.Add(1)
		return errLoginBusy
	}
	e := c.extra()
	e.pending = &cp
	e.login = j
	c.state = stateAuth
	return nil
}

// listenerOf names the transport a connection came in on.
func listenerOf(ec *eventloop.Conn) string {
	if o := ec.Origin(); o != nil {
		return o.Listener
	}
	return "tcp"
}

// RunLogins checks credentials until ctx ends, which also ends the checks
// under way (an Authenticator waiting on the network). Each goroutine
// running it is one worker of the login pool (Config.AuthWorkers). It owns
// nothing of the client: the verdict goes back to the client's loop.
func (h *Handler) RunLogins(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case j := <-h.logins:
			ctx, cancel := context.WithTimeout(ctx, h.limits().ConnectTimeout)
			j.err = j.authn.Authenticate(ctx, &j.login)
			cancel()
			clear(j.login.Password)
			h.disp.Notify(j.c, noteLogin)
		}
	}
}

// loginDone runs on the client's loop with the Authenticator's verdict.
// The client may have gone, or timed out, in the meantime.
func (c *client) loginDone(ls *loopState, j *loginJob) {
	e := c.ext
	if c.state != stateAuth || c.conn.Closing() || e == nil || e.login != j {
		return
	}
	e.login = nil
	// The client's packets after CONNECT wait paused: offer them again.
	c.conn.Loop().Wake()
	// A refusal leaves e.pending set: it names the client in the log.
	if j.err != nil {
		c.h.stats.RefusedLogin.Add(1)
		c.closeWith(0, loginRefusal(j.err))
		return
	}
	if err := c.admit(ls, *e.pending, j.login.Username, nil); err != nil {
		c.closeWith(0, err) // counted by admit
		return
	}
	e.pending = nil
}

// loginRefusal is the error a refused login is closed with: the
// Authenticator's reason code, or server unavailable for an error of its
// own (its fault, not the client's). What the Authenticator said stays in
// the log: telling a prober which check failed helps it.
func loginRefusal(err error) *reason.Error {
	code := codec.ServerUnavailable
	why := "authenticator error: " + err.Error()
	var ae *auth.Error
	if errors.As(err, &ae) {
		code = codec.ReasonCode(ae.Code)
		switch code {
		case codec.BadUsernameOrPassword:
			why = "bad user name or password (" + err.Error() + ")"
		case codec.NotAuthorized:
			why = "not authorized by the authenticator (" + err.Error() + ")"
		}
	}
	return &reason.Error{Code: code, Msg: "login refused", Detail: why}
}

// admit gives an authenticated client its permissions and connects it.
// Its will must be one it could publish itself.
func (c *client) admit(ls *loopState, cp connectParams, identity string, authData []byte) error {
	if as := c.h.access.Load(); as.Authz != nil {
		perms := as.Authz.For(identity, cp.id)
		if w, _ := c.will(); w != nil && !perms.CanPublish(w.Topic) {
			c.h.stats.RefusedLogin.Add(1)
			return errWillDenied.Because("will topic %q not allowed by the ACL", reason.Clip(string(w.Topic)))
		}
		c.extra().perms = perms
	}
	if identity != "" {
		c.extra().identity = identity
	}
	c.finishConnect(ls, cp, authData)
	return nil
}

// waitingLogin reports whether the client's CONNECT is with the login
// pool: its further packets wait.
func (c *client) waitingLogin() bool { return c.ext != nil && c.ext.login != nil }

// connackRefusal reports whether code refuses a CONNECT with a CONNACK in
// MQTT 3.x too: those with a 3.1.1 return code of their own, and the
// server-side ones that 3.1.1 calls "server unavailable".
func connackRefusal(code codec.ReasonCode) bool {
	switch code {
	case codec.ClientIDNotValid, codec.BadUsernameOrPassword, codec.NotAuthorized, codec.TopicNameInvalid,
		codec.ServerUnavailable, codec.ServerBusy, codec.QuotaExceeded,
		codec.ConnectionRateExceeded, codec.Banned:
		return true
	}
	return false
}
