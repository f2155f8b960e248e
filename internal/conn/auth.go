package conn

import (
	"github.com/shoalmq/shoal/auth"
	"github.com/shoalmq/shoal/codec"
	"github.com/shoalmq/shoal/internal/reason"
)

// Enhanced authentication (MQTT 5 section 4.12). The method logic lives in
// package auth; this file moves its data between CONNECT, AUTH and CONNACK
// packets:
//
//	CONNECT(method, data) -> AUTH 0x18(data) -> AUTH 0x18(data) ... -> CONNACK 0x00(data)
//	connected: AUTH 0x19(data) -> AUTH 0x18(data) ... -> AUTH 0x00(data)
//
// A failed first authentication is answered with a refusing CONNACK, a
// failed re-authentication with DISCONNECT [MQTT-4.12.0-4], [MQTT-4.12.1-2].

// Errors of the AUTH exchange found by the broker rather than the method.
var (
	errAuthMethodUnknown   = &reason.Error{Code: codec.BadAuthenticationMethod, Msg: "authentication method not supported"}
	errAuthMethodChanged   = &reason.Error{Code: codec.ProtocolError, Msg: "AUTH with a different authentication method"} // [MQTT-4.12.0-5]
	errAuthUnexpected      = &reason.Error{Code: codec.ProtocolError, Msg: "AUTH without enhanced authentication"}        // [MQTT-4.12.0-7]
	errAuthReason          = &reason.Error{Code: codec.ProtocolError, Msg: "AUTH reason code not valid here"}
	errAuthIdentityChanged = &reason.Error{Code: codec.NotAuthorized, Msg: "re-authentication as another user"}
)

// authFailure turns a method's refusal into the broker's error, keeping
// the method's reason code; the detail stays in the logs, never in a
// Reason String, where it would help an attacker.
func authFailure(method string, err error) error {
	code := codec.NotAuthorized
	if ae, ok := err.(*auth.Error); ok {
		code = codec.ReasonCode(ae.Code)
	}
	return &reason.Error{Code: code, Msg: "authentication failed", Detail: "authentication failed (method " + method + "): " + err.Error()}
}

// startAuth begins the exchange named in CONNECT. cp waits in clientExt
// until it succeeds.
func (c *client) startAuth(ls *loopState, cp connectParams, method string, data []byte) error {
	m, ok := c.h.auth.Lookup(method)
	if !ok {
		return errAuthMethodUnknown.Because("authentication method %q not supported", reason.Clip(method)) // [MQTT-4.12.0-1]
	}
	e := c.extra()
	e.authMethod = method
	e.exchange = m.Start(cp.id)
	e.pending = &cp
	c.state = stateAuth
	return c.stepAuth(ls, data)
}

// stepAuth feeds the client's Authentication Data to the exchange in
// progress and answers: AUTH 0x18 to go on, or success — CONNACK during
// CONNECT, AUTH 0x00 on re-authentication.
func (c *client) stepAuth(ls *loopState, data []byte) error {
	e := c.ext
	out, done, err := e.exchange.Step(data)
	if err != nil {
		e.exchange = nil
		return authFailure(e.authMethod, err) // logged as the refusal or the disconnect
	}
	if !done {
		c.sendAuth(codec.ContinueAuthentication, out) // [MQTT-4.12.0-2]
		return nil
	}
	id := e.exchange.Identity()
	e.exchange = nil
	if cp := e.pending; cp != nil {
		if err := c.admit(ls, *cp, id, out); err != nil { // CONNACK 0x00 [MQTT-4.12.0-3]
			return err // e.pending names the client in the refusal line
		}
		e.pending = nil
		return nil
	}
	if id != e.identity {
		// Re-authentication confirms who the client is; it is not a way
		// to become someone else on an open session.
		return errAuthIdentityChanged
	}
	c.sendAuth(codec.Success, out) // re-authentication done [MQTT-4.12.1-2]
	return nil
}

// onAuth handles an AUTH packet from the client.
func (c *client) onAuth(ls *loopState, body []byte) error {
	a := &ls.disconnect
	if err := a.Decode(codec.AUTH, body, c.version); err != nil {
		return err
	}
	e := c.ext
	if e == nil || e.authMethod == "" {
		return errAuthUnexpected
	}
	if string(a.Props.AuthMethod) != e.authMethod {
		return errAuthMethodChanged
	}
	switch {
	case a.Code == codec.ContinueAuthentication && e.exchange != nil:
		return c.stepAuth(ls, a.Props.AuthData)
	case a.Code == codec.ReAuthenticate && c.state == stateConnected && e.exchange == nil:
		m, ok := c.h.auth.Lookup(e.authMethod)
		if !ok {
			return errAuthMethodUnknown
		}
		e.exchange = m.Start(c.sess.ClientID()) // [MQTT-4.12.1-1]
		return c.stepAuth(ls, a.Props.AuthData)
	}
	return errAuthReason
}

// sendAuth writes an AUTH packet with the connection's method and data.
func (c *client) sendAuth(code codec.ReasonCode, data []byte) {
	a := codec.Disconnect{Type: codec.AUTH, Code: code}
	a.Props.Set(codec.PropAuthMethod)
	a.Props.AuthMethod = []byte(c.ext.authMethod)
	if len(data) > 0 {
		a.Props.Set(codec.PropAuthData)
		a.Props.AuthData = data
	}
	buf := c.conn.Buffer()
	buf.B = a.Append(buf.B, codec.V5)
}
