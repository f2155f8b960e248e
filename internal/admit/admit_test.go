package admit

import (
	"errors"
	"sync/atomic"
	"testing"

	"github.com/shoalmq/shoal/auth"
	"github.com/shoalmq/shoal/codec"
	"github.com/shoalmq/shoal/eventloop"
	"github.com/shoalmq/shoal/internal/counters"
	"github.com/shoalmq/shoal/internal/limit"
)

// fakeConn records what the Gate asks of a connection.
type fakeConn struct {
	st   State
	sent []codec.ReasonCode
}

func (c *fakeConn) Admission() *State                        { return &c.st }
func (c *fakeConn) SendAuth(code codec.ReasonCode, _ []byte) { c.sent = append(c.sent, code) }
func (c *fakeConn) PostVerdict()                             {}

// twoSteps is a method whose exchange takes the name in its second step.
type twoSteps struct{}

func (twoSteps) Name() string               { return "TWO" }
func (twoSteps) Start(string) auth.Exchange { return &twoStepsX{} }

type twoStepsX struct {
	n   int
	who string
}

func (x *twoStepsX) Step(in []byte) ([]byte, bool, error) {
	x.n++
	if x.n == 1 {
		return []byte("again"), false, nil
	}
	if string(in) == "bad" {
		return nil, false, &auth.Error{Code: byte(codec.NotAuthorized)}
	}
	x.who = string(in)
	return []byte("ok"), true, nil
}
func (x *twoStepsX) Identity() string { return x.who }

func newGate(a Access) (*Gate, *counters.Conns) {
	var lim atomic.Pointer[limit.Limits]
	lim.Store(&limit.Limits{})
	st := &counters.Conns{}
	return NewGate(a, []auth.Method{twoSteps{}}, 1, &lim, st, nil), st
}

func TestLoginAnonymous(t *testing.T) {
	ec := &eventloop.Conn{}
	g, st := newGate(Access{Anonymous: false})
	_, _, err := g.Login(&fakeConn{}, Request{ClientID: "c", Connect: &codec.Connect{Version: codec.V311}, Net: ec})
	if !errors.Is(err, errAnonymous) || st.RefusedLogin.Load() != 1 {
		t.Fatalf("anonymous refused: err %v, refusals %d", err, st.RefusedLogin.Load())
	}
	_, _, err = g.Login(&fakeConn{}, Request{ClientID: "c", Connect: &codec.Connect{Version: codec.V311, UsernameFlag: true}, Net: ec})
	if !errors.Is(err, errNoAuthn) {
		t.Fatalf("user name and no authenticator: err %v", err)
	}
	g.SetAccess(Access{Anonymous: true})
	if _, out, err := g.Login(&fakeConn{}, Request{ClientID: "c", Connect: &codec.Connect{Version: codec.V311, UsernameFlag: true}, Net: ec}); err != nil || out != Admit {
		t.Fatalf("anonymous allowed: %v, %v", out, err)
	}
}

// TestExchange: CONNECT starts the exchange, a step goes on with AUTH
// 0x18, the last admits with the method's data; re-authenticating as
// someone else is refused.
func TestExchange(t *testing.T) {
	g, _ := newGate(Access{})
	c := &fakeConn{}
	p := &codec.Connect{Version: codec.V5}
	p.Props.Set(codec.PropAuthMethod)
	p.Props.AuthMethod = []byte("TWO")
	if _, out, err := g.Login(c, Request{ClientID: "c", Connect: p, Net: &eventloop.Conn{}}); err != nil || out != Exchange {
		t.Fatalf("Login: %v, %v", out, err)
	}
	if _, out, err := g.Step(c, "c", nil); err != nil || out != Wait || len(c.sent) != 1 || c.sent[0] != codec.ContinueAuthentication {
		t.Fatalf("first step: %v, %v, sent %v", out, err, c.sent)
	}
	a := &codec.Disconnect{Type: codec.AUTH, Code: codec.ContinueAuthentication}
	a.Props.AuthMethod = []byte("TWO")
	a.Props.AuthData = []byte("alice")
	gr, out, err := g.Auth(c, a, false, "c")
	if err != nil || out != Admit || string(gr.AuthData) != "ok" || c.st.Method() != "TWO" {
		t.Fatalf("last step: %v, %v, %q", out, err, gr.AuthData)
	}
	a.Code = codec.ReAuthenticate
	a.Props.AuthData = nil
	if _, out, err := g.Auth(c, a, true, "c"); err != nil || out != Wait {
		t.Fatalf("re-authenticate: %v, %v", out, err)
	}
	a.Code = codec.ContinueAuthentication
	a.Props.AuthData = []byte("mallory")
	if _, _, err := g.Auth(c, a, true, "c"); !errors.Is(err, errAuthIdentityChanged) {
		t.Fatalf("re-authentication as another: %v", err)
	}
	a.Props.AuthMethod = []byte("OTHER")
	if _, _, err := g.Auth(c, a, true, "c"); !errors.Is(err, errAuthMethodChanged) {
		t.Fatalf("another method: %v", err)
	}
	if _, _, err := g.Auth(&fakeConn{}, a, true, "c"); !errors.Is(err, errAuthUnexpected) {
		t.Fatalf("AUTH without a method: %v", err)
	}
}
