package conn

import (
	"github.com/shoalmq/shoal/codec"
	"github.com/shoalmq/shoal/internal/admit"
	"github.com/shoalmq/shoal/internal/reason"
)

// Who a client is and what it may do is package admit's to decide: the
// connection hands it the CONNECT it validated (login), the AUTH packets
// of an enhanced authentication exchange (onAuth) and the login pool's
// verdict (Notify), and connects the client when told to (admitted). This
// file is the connection's side of that seam: client implements
// admit.Conn.

// login hands the CONNECT onConnect validated to package admit; p is the
// decoded CONNECT, valid only during the call. A CONNECT that waits — for
// an enhanced authentication exchange or for the login pool — keeps cp in
// clientExt, where it also names the client in a refusal line.
func (c *client) login(ls *loopState, p *codec.Connect, cp connectParams) error {
	gr, out, err := c.h.gate.Login(c, admit.Request{ClientID: cp.id, Connect: p, Net: c.conn})
	if o := c.conn.Origin(); err == nil && out == admit.Admit && (o == nil || !o.Internal) {
		// A cluster's node takes the session; the embedding program's own
		// clients (bridges, $SYS) are each node's.
		gr, out, err = c.h.gate.Claim(c, cp.id, cp.clean, gr)
	}
	if err != nil {
		return err
	}
	if out == admit.Admit {
		return c.admitted(ls, cp, gr)
	}
	cp.user, cp.hasUser = string(p.Username), p.UsernameFlag
	e := c.extra()
	e.pending = &cp
	c.state = stateAuth
	if out == admit.Exchange {
		return c.admittedIf(c.h.gate.Step(c, cp.id, p.Props.AuthData))
	}
	return nil
}

// onAuth handles an AUTH packet from the client.
func (c *client) onAuth(ls *loopState, body []byte) error {
	a := &ls.disconnect
	if err := a.Decode(codec.AUTH, body, c.version); err != nil {
		return err
	}
	var id string
	switch e := c.ext; {
	case c.state == stateConnected:
		id = c.sess.ClientID()
	case e != nil && e.pending != nil:
		id = e.pending.id
	}
	return c.admittedIf(c.h.gate.Auth(c, a, c.state == stateConnected, id))
}

// verdict runs on the client's loop when the login pool's verdict is in
// (noteLogin). The client may have gone, or timed out, in the meantime.
func (c *client) verdict() {
	e := c.ext
	if e == nil || !e.adm.Waiting() || c.state != stateAuth || c.conn.Closing() {
		return
	}
	// The client's packets after CONNECT wait paused: offer them again.
	c.conn.Loop().Wake()
	if err := c.admittedIf(c.h.gate.Verdict(c, e.pending.id)); err != nil {
		c.closeWith(0, err) // counted by admit, or by admitted
	}
}

// admittedIf connects the client whose CONNECT waited, when admit says
// so, and returns admit's refusal otherwise. A refusal leaves e.pending
// set: it names the client in the log.
func (c *client) admittedIf(gr admit.Grant, out admit.Outcome, err error) error {
	e := c.ext
	if err == nil && out == admit.Admit {
		gr, out, err = c.h.gate.Claim(c, e.pending.id, e.pending.clean, gr)
	}
	if err != nil || out != admit.Admit {
		return err
	}
	if err := c.admitted(c.h.loops[c.LoopIndex()], *e.pending, gr); err != nil {
		return err
	}
	e.pending = nil
	return nil
}

// admitted connects a client admit let in, with its topic rights (none:
// every right). Its will must be one it could publish itself.
func (c *client) admitted(ls *loopState, cp connectParams, gr admit.Grant) error {
	if gr.Perms != nil {
		if w, _ := c.will(); w != nil && !gr.Perms.CanPublish(w.Topic) {
			c.h.stats.RefusedLogin.Add(1)
			return errWillDenied.Because("will topic %q not allowed by the ACL", reason.Clip(string(w.Topic)))
		}
		c.extra().perms = gr.Perms
	}
	if !c.h.gate.Holds(cp.id, gr.Epoch) {
		return admit.ErrNewerClaim // it may be attached here: leave it be
	}
	c.finishConnect(ls, cp, gr.AuthData)
	if !c.h.gate.Holds(cp.id, gr.Epoch) {
		// Another node claimed the session since, and may have found
		// nothing here to take over: it is the owner.
		c.h.kick(c, false)
	}
	return nil
}

// waitingLogin reports whether the client's CONNECT is with the login
// pool: its further packets wait.
func (c *client) waitingLogin() bool { return c.ext != nil && c.ext.adm.Waiting() }

// Admission implements admit.Conn.
func (c *client) Admission() *admit.State { return &c.extra().adm }

// PostVerdict implements admit.Conn: the verdict goes to the client's
// loop as a note.
func (c *client) PostVerdict() { c.h.disp.Notify(c, noteLogin) }

// SendAuth implements admit.Conn: an AUTH packet with the connection's
// method and data.
func (c *client) SendAuth(code codec.ReasonCode, data []byte) {
	a := codec.Disconnect{Type: codec.AUTH, Code: code}
	a.Props.Set(codec.PropAuthMethod)
	a.Props.AuthMethod = []byte(c.ext.adm.Method())
	if len(data) > 0 {
		a.Props.Set(codec.PropAuthData)
		a.Props.AuthData = data
	}
	buf := c.conn.Buffer()
	buf.B = a.Append(buf.B, codec.V5)
}
