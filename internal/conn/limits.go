package conn

import (
	"time"

	"github.com/shoalmq/shoal/eventloop"
	"github.com/shoalmq/shoal/internal/limit"
)

// refusalHeadroom is how many connections past MaxConnections are still
// accepted, to be told CONNACK 0x97 rather than cut without a word; past
// it a new connection is closed at accept, so a flood cannot use up the
// file descriptors the refusals need.
const refusalHeadroom = 1024

// overConnections reports whether a CONNECT must be refused because the
// broker already holds MaxConnections connections (this one included),
// counting those closed but still lingering (eventloop.Conn.Close): they
// hold descriptors too.
func (h *Handler) overConnections(lim *limit.Limits) bool {
	return h.open.Load()+h.engine.Lingering() > int64(lim.MaxConnections)
}

// wakeForToken wakes l when the client's publish bucket holds a token
// again, to offer it its paused frames: waiting for the loop's next tick
// would let through only a burst a second.
func (e *clientExt) wakeForToken(l *eventloop.Loop, rate float64) {
	wait := time.Duration((1 - e.pub.Tokens()) / rate * 1e9)
	wait = max(wait, time.Millisecond)
	if e.pubTimer == nil {
		e.pubTimer = time.AfterFunc(wait, l.Wake)
		return
	}
	e.pubTimer.Reset(wait)
}
