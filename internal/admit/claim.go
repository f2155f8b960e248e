package admit

import (
	"github.com/shoalmq/shoal/codec"
	"github.com/shoalmq/shoal/internal/reason"
)

// Owners decides which node of a cluster a client's session belongs to:
// package cluster's Sessions. A single node has none, and admits a client
// as soon as it has proved who it is.
type Owners interface {
	// Claim makes this node the owner of clientID's session — bringing
	// the session here from the node that had it, or ending it there when
	// clean — and then calls done, on a goroutine of its own, with the
	// claim's epoch, or the error that keeps the client out.
	Claim(clientID string, clean bool, done func(epoch uint64, err error))
	// Holds reports whether this node still holds the claim of clientID
	// with epoch: a newer claim, made on another node meanwhile, takes the
	// session there. Loop goroutine.
	Holds(clientID string, epoch uint64) bool
	// Serving reports whether this node may take clients and QoS 1 and 2
	// messages now: not while it is cut off from its cluster's majority,
	// which alone can store them with their replication.
	Serving() bool
}

// ErrCutOff refuses a CONNECT on a node cut off from its cluster's
// majority: the client may connect to another node.
var ErrCutOff = &reason.Error{Code: codec.ServerUnavailable, Msg: "this node is cut off from its cluster's majority"}

// ErrNewerClaim refuses a CONNECT whose claim of its session a newer one
// superseded before its client could attach (another connection of the
// same client id, here or on another node, has the session): it must not
// take the session over from that one.
var ErrNewerClaim = &reason.Error{Code: codec.UseAnotherServer, Msg: "a newer connection of this client id has the session"}

// claim is one CONNECT's claim out with Owners; its owner's goroutine
// sets epoch and err before it posts the verdict.
type claim struct {
	grant Grant
	epoch uint64
	err   error
}

// Claim claims the session of a client Login (or an exchange, or the
// login pool) admitted with gr, in a cluster: it returns Wait, and the
// verdict comes back through Conn.PostVerdict and Verdict, with
// Grant.Epoch set. On a single node, or once claimed (gr.Epoch set), it
// admits at once. Loop goroutine of c.
func (g *Gate) Claim(c Conn, clientID string, clean bool, gr Grant) (Grant, Outcome, error) {
	if g.owners == nil || gr.Epoch != 0 {
		return gr, Admit, nil
	}
	if !g.owners.Serving() {
		return Grant{}, Wait, ErrCutOff
	}
	cl := &claim{grant: gr}
	c.Admission().claim = cl
	g.owners.Claim(clientID, clean, func(epoch uint64, err error) {
		cl.epoch, cl.err = epoch, err
		c.PostVerdict()
	})
	return Grant{}, Wait, nil
}

// Holds reports whether this node still owns clientID's session as
// claimed with epoch (always, on a single node). Loop goroutine.
func (g *Gate) Holds(clientID string, epoch uint64) bool {
	return g.owners == nil || g.owners.Holds(clientID, epoch)
}

// Serving reports whether this node takes QoS 1 and 2 messages now
// (Owners.Serving; always, on a single node). Loop goroutine.
func (g *Gate) Serving() bool {
	return g.owners == nil || g.owners.Serving()
}

// claimed is Verdict for a claim: the client is admitted with its grant
// and the claim's epoch, or refused as the server's failure.
func (g *Gate) claimed(cl *claim) (Grant, Outcome, error) {
	if cl.err != nil {
		return Grant{}, Wait, &reason.Error{Code: codec.ServerUnavailable, Msg: "the cluster did not give this node the session",
			Detail: cl.err.Error()}
	}
	gr := cl.grant
	gr.Epoch = cl.epoch
	return gr, Admit, nil
}
