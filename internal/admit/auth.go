package admit

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

// startAuth begins the exchange named in CONNECT.
func (g *Gate) startAuth(c Conn, clientID, method string) (Grant, Outcome, error) {
	m, ok := g.methods.Lookup(method)
	if !ok {
		return Grant{}, Wait, errAuthMethodUnknown.Because("authentication method %q not supported", reason.Clip(method)) // [MQTT-4.12.0-1]
	}
	st := c.Admission()
	st.method = method
	st.exchange = m.Start(clientID)
	st.connecting = true
	return Grant{}, Exchange, nil
}

// Step feeds the client's Authentication Data to the exchange in progress
// and answers: AUTH 0x18 to go on, or success — Admit for the CONNECT's
// exchange (the CONNACK carries Grant.AuthData), AUTH 0x00 for a
// re-authentication. clientID is the client's. Loop goroutine of c.
func (g *Gate) Step(c Conn, clientID string, data []byte) (Grant, Outcome, error) {
	st := c.Admission()
	out, done, err := st.exchange.Step(data)
	if err != nil {
		st.exchange = nil
		return Grant{}, Wait, authFailure(st.method, err) // logged as the refusal or the disconnect
	}
	if !done {
		c.SendAuth(codec.ContinueAuthentication, out) // [MQTT-4.12.0-2]
		return Grant{}, Wait, nil
	}
	id := st.exchange.Identity()
	st.exchange = nil
	if st.connecting {
		st.connecting = false
		st.identity = id
		return g.admit(id, clientID, out) // CONNACK 0x00 [MQTT-4.12.0-3]
	}
	if id != st.identity {
		// Re-authentication confirms who the client is; it is not a way
		// to become someone else on an open session.
		return Grant{}, Wait, errAuthIdentityChanged
	}
	c.SendAuth(codec.Success, out) // re-authentication done [MQTT-4.12.1-2]
	return Grant{}, Wait, nil
}

// Auth handles an AUTH packet a from the client of clientID; connected
// says its CONNACK went out, so that it may re-authenticate. Loop
// goroutine of c.
func (g *Gate) Auth(c Conn, a *codec.Disconnect, connected bool, clientID string) (Grant, Outcome, error) {
	st := c.Admission()
	if st.method == "" {
		return Grant{}, Wait, errAuthUnexpected
	}
	if string(a.Props.AuthMethod) != st.method {
		return Grant{}, Wait, errAuthMethodChanged
	}
	switch {
	case a.Code == codec.ContinueAuthentication && st.exchange != nil:
		return g.Step(c, clientID, a.Props.AuthData)
	case a.Code == codec.ReAuthenticate && connected && st.exchange == nil:
		m, ok := g.methods.Lookup(st.method)
		if !ok {
			return Grant{}, Wait, errAuthMethodUnknown
		}
		st.exchange = m.Start(clientID) // [MQTT-4.12.1-1]
		return g.Step(c, clientID, a.Props.AuthData)
	}
	return Grant{}, Wait, errAuthReason
}
