package conn

import (
	"github.com/shoalmq/shoal/codec"
	"github.com/shoalmq/shoal/internal/counters"
	"github.com/shoalmq/shoal/internal/dispatch"
	"github.com/shoalmq/shoal/internal/limit"
	"github.com/shoalmq/shoal/internal/persist"
	"github.com/shoalmq/shoal/internal/retained"
)

// loopState is the connections' per-loop state: the loop's dispatch and
// persistence parts, and scratch packets the loop decodes into so that
// decoding allocates nothing. Loop goroutine only.
type loopState struct {
	// d is the loop's inbox, fan-out scratch and gathered releases
	// (package dispatch).
	d *dispatch.Loop
	// persist is the loop's store writer (nil: persistence off),
	// committed before each flush, syncing when asked (NeedSync).
	persist *persist.Loop
	// syncing are the clients whose output waits for the loop's next
	// syncing commit (needSync): dropped, with their connections, when
	// the commit comes back unvouched (Handler.BeforeFlush).
	syncing []*client

	// Scratch.
	connect     codec.Connect
	connectOf   *client // whose CONNECT connect holds, for a refusal line (claimed)
	publish     codec.Publish
	ack         codec.Ack
	subscribe   codec.Subscribe
	unsubscribe codec.Unsubscribe
	suback      codec.Suback
	disconnect  codec.Disconnect
	out         codec.Outgoing
	ids         [1]uint32 // out's Subscription Identifier (session.Delivery.IDs)
	props       []byte
	retainedFor []retained.Req
	snapshots   retained.Pool // retained snapshot lists for reuse

	ctr  counters.Loop
	life limit.Lines // lifecycle lines (lifecycle.go)
}
