package limit

import (
	"net"
	"net/netip"
	"sync"

	"time"
)

// Bucket is a rate limit: rate tokens a second, at most burst saved.
// The zero value is full on first use. One goroutine uses it.
type Bucket struct {
	tokens float64
	last   int64 // Unix ns of the last refill; 0: never used
}

// Take refills the bucket for the time since its last use and takes one
// token, reporting false (and taking nothing) when there is none.
func (tb *Bucket) Take(now int64, rate float64, burst int) bool {
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

// Tokens is what the bucket held after its last use.
func (tb *Bucket) Tokens() float64 { return tb.tokens }

// full reports whether the bucket would be full at now: forgetting it
// changes nothing.
func (tb *Bucket) full(now int64, rate float64, burst int) bool {
	return tb.tokens+float64(now-tb.last)*rate/1e9 >= float64(burst)
}

// PerAddr holds a token bucket per source address, in shards so that
// loops accepting at once rarely meet on a lock. IPv6 addresses count per
// /64, the block one host usually has, or one host could walk its block to
// escape the limit. The zero value is ready to use.
type PerAddr struct {
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
	mu      sync.Mutex // guards buckets; a leaf (LOCKORDER.md)
	buckets map[netip.Addr]*Bucket
}

// Allow takes a token for addr's bucket. Safe for concurrent use.
func (t *PerAddr) Allow(addr netip.Addr, now int64, rate float64, burst int) bool {
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
			sh.buckets = make(map[netip.Addr]*Bucket)
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
		tb = &Bucket{}
		sh.buckets[addr] = tb
	}
	return tb.Take(now, rate, burst)
}

// addrHash spreads addresses over the shards (FNV-1a of the bytes).
func addrHash(a netip.Addr) uint32 {
	h := uint32(2166136261)
	for _, b := range a.As16() {
		h = (h ^ uint32(b)) * 16777619
	}
	return h
}

// AddrOf is the IP of a remote address; the zero Addr if it has none.
func AddrOf(a net.Addr) netip.Addr {
	if ta, ok := a.(*net.TCPAddr); ok {
		ip, _ := netip.AddrFromSlice(ta.IP)
		return ip
	}
	if ap, err := netip.ParseAddrPort(a.String()); err == nil {
		return ap.Addr()
	}
	return netip.Addr{}
}

// Throttle is a client's publish rate limit (Limits.PublishRate): a
// Bucket, and the timer that wakes the client's loop once the bucket holds
// a token again, to offer it its paused frames — waiting for the loop's
// next tick would let through only a burst a second. The zero value is
// ready to use. One goroutine uses it (the client's loop); the timer
// calls Wake on a goroutine of its own.
type Throttle struct {
	Bucket
	timer *time.Timer
}

// Take takes a token, or, when there is none, has l woken once there is
// one again and reports false.
func (t *Throttle) Take(now int64, rate float64, burst int, l interface{ Wake() }) bool {
	if t.Bucket.Take(now, rate, burst) {
		return true
	}
	wait := time.Duration((1 - t.Tokens()) / rate * 1e9)
	wait = max(wait, time.Millisecond)
	if t.timer == nil {
		t.timer = time.AfterFunc(wait, l.Wake)
		return false
	}
	t.timer.Reset(wait)
	return false
}

// Stop stops the timer: the client is gone.
func (t *Throttle) Stop() {
	if t.timer != nil {
		t.timer.Stop()
	}
}
