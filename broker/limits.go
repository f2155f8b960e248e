package broker

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/shoalmq/shoal/eventloop"
)

// Limits that protect the broker from one client or one address: how many
// connections, how fast they come, how fast a client publishes, how long
// its topics are. Their defaults and reasons are in Config; the checks
// live where the packets are handled and call these helpers.

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
func (b *Broker) overConnections(lim *Limits) bool {
	return b.open.Load()+b.engine.Lingering() > int64(lim.MaxConnections)
}

// tokenBucket is a rate limit: rate tokens a second, at most burst saved.
// The zero value is full on first use.
type tokenBucket struct {
	tokens float64
	last   int64 // Unix ns of the last refill; 0: never used
}

// take refills the bucket for the time since its last use and takes one
// token, reporting false (and taking nothing) when there is none.
func (tb *tokenBucket) take(now int64, rate float64, burst int) bool {
	if tb.last == 0 {
		tb.tokens = float64(burst)
	} else if now > tb.last {
		tb.tokens = min(float64(burst), tb.tokens+float64(now-tb.last)*rate/1e9)
	}
	tb.last = now
	if tb.tokens < 1 {
		return false
	}
	tb.tokens--
	return true
}

// full reports whether the bucket would be full at now: forgetting it
// changes nothing.
func (tb *tokenBucket) full(now int64, rate float64, burst int) bool {
	return tb.tokens+float64(now-tb.last)*rate/1e9 >= float64(burst)
}

// wakeForToken wakes l when the client's publish bucket holds a token
// again, to offer it its paused frames: waiting for the loop's next tick
// would let through only a burst a second.
func (e *clientExt) wakeForToken(l *eventloop.Loop, rate float64) {
	wait := time.Duration((1 - e.pub.tokens) / rate * 1e9)
	wait = max(wait, time.Millisecond)
	if e.pubTimer == nil {
		e.pubTimer = time.AfterFunc(wait, l.Wake)
		return
	}
	e.pubTimer.Reset(wait)
}

// rateTable holds a token bucket per source address, in shards so that
// loops accepting at once rarely meet on a lock. IPv6 addresses count per
// /64, the block one host usually has, or one host could walk its block to
// escape the limit.
type rateTable struct {
	shards [rateShards]rateShard
}

const (
	rateShards = 16
	// rateShardCap bounds a shard's buckets. Past it, buckets that are
	// full again are forgotten; if that is not enough (a flood from very
	// many addresses) the shard starts over, so the table's memory stays
	// bounded (16 × 4096 buckets, about 3 MiB) at the cost of letting
	// some addresses past their rate once.
	rateShardCap = 4096
)

type rateShard struct {
	mu      sync.Mutex
	buckets map[netip.Addr]*tokenBucket
}

// allow takes a token for addr's bucket. Safe for concurrent use.
func (t *rateTable) allow(addr netip.Addr, now int64, rate float64, burst int) bool {
	if addr.Is6() && !addr.Is4In6() {
		p, _ := addr.Prefix(64)
		addr = p.Addr()
	} else {
		addr = addr.Unmap()
	}
	sh := &t.shards[addrHash(addr)%rateShards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	tb := sh.buckets[addr]
	if tb == nil {
		if sh.buckets == nil {
			sh.buckets = make(map[netip.Addr]*tokenBucket)
		}
		if len(sh.buckets) >= rateShardCap {
			for a, old := range sh.buckets {
				if old.full(now, rate, burst) {
					delete(sh.buckets, a)
				}
			}
			if len(sh.buckets) >= rateShardCap {
				clear(sh.buckets)
			}
		}
		tb = &tokenBucket{}
		sh.buckets[addr] = tb
	}
	return tb.take(now, rate, burst)
}

// addrHash spreads addresses over the shards (FNV-1a of the bytes).
func addrHash(a netip.Addr) uint32 {
	h := uint32(2166136261)
	for _, b := range a.As16() {
		h = (h ^ uint32(b)) * 16777619
	}
	return h
}

// addrOf is the IP of a remote address; the zero Addr if it has none.
func addrOf(a net.Addr) netip.Addr {
	if ta, ok := a.(*net.TCPAddr); ok {
		ip, _ := netip.AddrFromSlice(ta.IP)
		return ip
	}
	if ap, err := netip.ParseAddrPort(a.String()); err == nil {
		return ap.Addr()
	}
	return netip.Addr{}
}

// topicRule says which of lim's topic limits t is over, for the log:
// what names the topic ("will topic").
func topicRule(what string, t []byte, lim *Limits) string {
	if len(t) > lim.MaxTopicLength {
		return fmt.Sprintf("%s of %d bytes longer than max_topic_length (%d)", what, len(t), lim.MaxTopicLength)
	}
	return fmt.Sprintf("%s of %d levels deeper than max_topic_levels (%d)", what, bytes.Count(t, []byte{'/'})+1, lim.MaxTopicLevels)
}

// topicOverLimit reports whether a topic name or filter is longer, in
// bytes or levels, than lim allows.
func topicOverLimit(t []byte, lim *Limits) bool {
	if len(t) > lim.MaxTopicLength {
		return true
	}
	// n bytes hold at most n+1 levels ("//" is three): short topics need
	// no count.
	return len(t)+1 > lim.MaxTopicLevels && bytes.Count(t, []byte{'/'})+1 > lim.MaxTopicLevels
}
