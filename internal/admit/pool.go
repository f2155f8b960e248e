package admit

import (
	"context"
	"errors"

	"github.com/shoalmq/shoal/auth"
	"github.com/shoalmq/shoal/codec"
	"github.com/shoalmq/shoal/eventloop"
	"github.com/shoalmq/shoal/internal/reason"
)

// login is one CONNECT whose credentials a login worker checks. The
// worker sets err and posts the verdict back to the client's loop.
type login struct {
	c     Conn
	authn auth.Authenticator
	login auth.Login
	err   error
}

// checkLogin hands the credentials to the login pool. A full queue refuses
// the client at once: under a reconnect storm the broker answers "busy"
// instead of queueing without bound.
func (g *Gate) checkLogin(c Conn, authn auth.Authenticator, r Request) (Grant, Outcome, error) {
	p := r.Connect
	j := &login{c: c, authn: authn, login: auth.Login{
		ClientID:    r.ClientID,
		Username:    string(p.Username),
		Password:    append([]byte(nil), p.Password...),
		HasUsername: p.UsernameFlag,
		HasPassword: p.PasswordFlag,
		Remote:      r.Net.RemoteAddr().String(),
		Listener:    listenerOf(r.Net),
	}}
	select {
	case g.logins <- j:
	default:
		g.stats.RefusedLoginBusy.Add(1)
		return Grant{}, Wait, ErrLoginBusy
	}
	c.Admission().login = j
	return Grant{}, Wait, nil
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
func (g *Gate) RunLogins(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case j := <-g.logins:
			ctx, cancel := context.WithTimeout(ctx, g.limits.Load().ConnectTimeout)
			j.err = j.authn.Authenticate(ctx, &j.login)
			cancel()
			clear(j.login.Password)
			j.c.PostVerdict()
		}
	}
}

// Verdict takes the login pool's verdict on c's CONNECT, on c's loop once
// PostVerdict has reached it, and only while c waits for it
// (State.Waiting) and still may connect: it admits the client of
// clientID, or refuses it.
func (g *Gate) Verdict(c Conn, clientID string) (Grant, Outcome, error) {
	st := c.Admission()
	if cl := st.claim; cl != nil {
		st.claim = nil
		return g.claimed(cl)
	}
	j := st.login
	st.login = nil
	if j.err != nil {
		g.stats.RefusedLogin.Add(1)
		return Grant{}, Wait, loginRefusal(j.err)
	}
	return g.admit(j.login.Username, clientID, nil)
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
