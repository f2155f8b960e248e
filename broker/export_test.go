package broker

import (
	"github.com/shoalmq/shoal/router"
	"github.com/shoalmq/shoal/session"
)

// Hooks for the broker_test package's tests of orderings that timing alone
// would rarely show. Test binaries only.

// RouteThroughWorkers makes every message go through the router workers,
// never routed inline by its loop. Call it before clients connect.
func (b *Broker) RouteThroughWorkers() { b.noInline.Store(true) }

// SessionFor returns the session of client id, nil if there is none.
func (b *Broker) SessionFor(id string) *session.Session { return b.sessions.Get(id) }

// RouteOnIdleWorker routes one message from "testpub" with worker 0's
// scratch and stops there, as a worker does in the middle of a batch:
// nothing committed, nothing posted. Worker 0 must be idle (no publisher
// may use it meanwhile); PostIdleWorker ends the batch.
func (b *Broker) RouteOnIdleWorker(topic, payload string, qos byte) {
	w := b.workers[0]
	m := router.NewMessage([]byte(topic), []byte(payload), nil, []byte("testpub"), qos, false, 0, nil)
	w.route(b, m)
	m.Release()
}

// PostIdleWorker ends worker 0's batch begun by RouteOnIdleWorker: commit,
// then post.
func (b *Broker) PostIdleWorker() { b.workers[0].post() }

// RetainedExtraRefs is how many references to the retained messages
// matching filter are held beyond the store's own: by deliveries in flight
// or queued, and by retained snapshots still being sent.
func (b *Broker) RetainedExtraRefs(filter string) int {
	n := 0
	b.retained.Match(filter, func(m *router.Message) bool {
		n += int(m.Refs()) - 2 // the store's, and the one Match holds during the call
		return true
	})
	return n
}
