package retained

import (
	"slices"
	"sync/atomic"

	"github.com/shoalmq/shoal/router"
)

// Req is one filter of a SUBSCRIBE that is owed its retained messages,
// with the options it was granted.
type Req struct {
	Filter string
	Opts   router.Options
}

// Barrier makes a reader of retained messages wait for the writes that
// came before it: a cluster's, whose retained messages on this node are a
// copy of the cluster's that may not yet have what another node set.
type Barrier interface {
	// After calls fn, on a goroutine of its own, once every retained
	// message set anywhere before the call can be read here.
	After(fn func())
}

// Waits are a client's SUBSCRIBEs whose retained messages wait for a
// barrier (a cluster's: until this node has every retained message set
// before them), oldest first. They are read in the order they came: one
// only when it and every one before it are done. The client's loop owns
// Waits; a Wait's Done may come from any goroutine.
type Waits struct {
	list []*Wait
}

// Wait is one SUBSCRIBE's filters waiting for the barrier.
type Wait struct {
	reqs []Req
	done atomic.Bool
}

// Done says w's barrier is passed. Safe for concurrent use.
func (w *Wait) Done() { w.done.Store(true) }

// Add queues a copy of reqs behind the SUBSCRIBEs already waiting.
func (ws *Waits) Add(reqs []Req) *Wait {
	w := &Wait{reqs: slices.Clone(reqs)}
	ws.list = append(ws.list, w)
	return w
}

// Ready takes the waits at the front that are done, and calls fn for
// each of their filters, in order.
func (ws *Waits) Ready(fn func(Req)) {
	for len(ws.list) > 0 && ws.list[0].done.Load() {
		w := ws.list[0]
		ws.list[0] = nil
		ws.list = ws.list[1:]
		for _, r := range w.reqs {
			fn(r)
		}
	}
	if len(ws.list) == 0 {
		ws.list = nil
	}
}
