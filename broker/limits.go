package broker

import (
	"time"

	"golang.org/x/sys/unix"

	"github.com/shoalmq/shoal/eventloop"
	"github.com/shoalmq/shoal/internal/limit"
)

// Limits that protect the broker from one client or one address: how many
// connections, how fast they come, how fast a client publishes, how long
// its topics are. Their defaults and reasons are in Config; the checks
// live where the packets are handled, the mechanisms in package limit.

// refusalHeadroom is how many connections past MaxConnections are still
// accepted, to be told CONNACK 0x97 rather than cut without a word; past
// it a new connection is closed at accept, so a flood cannot use up the
// file descriptors the refusals need.
const refusalHeadroom = 1024

// fdReserve is what an automatic MaxConnections leaves of the file limit
// for everything that is not a client: the store's files, the listeners,
// the admin API, log files.
const fdReserve = 256

// maxConnections resolves MaxConnections 0 to the process's file limit
// less fdReserve.
func (c *Config) maxConnections() int {
	if c.MaxConnections > 0 {
		return c.MaxConnections
	}
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil || rl.Cur > 1<<30 {
		return 1 << 20
	}
	return max(int(rl.Cur)-fdReserve, 1)
}

// overConnections reports whether a CONNECT must be refused because the
// broker already holds MaxConnections connections (this one included),
// counting those closed but still lingering (eventloop.Conn.Close): they
// hold descriptors too.
func (b *Broker) overConnections(lim *limit.Limits) bool {
	return b.open.Load()+b.engine.Lingering() > int64(lim.MaxConnections)
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
