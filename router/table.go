package router

import (
	"math/bits"
	"sync"
	"sync/atomic"
	"unsafe"
)

// Subscriber is who receives messages; implemented by the broker's session
// type (a pointer). Compared with ==, so its dynamic type must be comparable;
// ClientID is called during Match with a shard read-locked and must not call
// back into the Table.
type Subscriber interface{ ClientID() string }

// Options are one subscription's options, as granted in SUBACK.
type Options struct {
	QoS               byte   // granted maximum QoS 0..2 (larger values are clamped to 2)
	NoLocal           bool   // v5: don't deliver the subscriber's own messages [MQTT-3.8.3-3]
	RetainAsPublished bool   // v5
	RetainHandling    byte   // v5: 0,1,2 (the table stores it; the broker acts on it)
	SubID             uint32 // v5 Subscription Identifier, 0 = none
}

// DefaultShards is the number of literal shards NewTable uses when asked for
// none. Shards only keep a SUBSCRIBE from stalling matches on other first
// levels: readers of one first level share one RWMutex whatever the count.
// 64 makes a collision between two given busy first levels unlikely (1 in
// 64) for 8 KiB of padded shards. This rests on that reasoning, not on a
// measurement: on the 2-CPU machine it was written on,
// BenchmarkMatchParallelChurn could not tell 1, 16 and 64 shards apart
// (216-270 ns/op each, within noise); measure again on a large machine.
const DefaultShards = 64

// maxShards bounds NewTable's argument; more shards than this only waste
// memory.
const maxShards = 1 << 16

// cacheLine is the padding unit between shards so that two shards' mutexes
// never share a cache line (128 covers the adjacent-line prefetcher on x86).
const cacheLine = 128

type shardState struct {
	mu    sync.RWMutex
	root  node         // guarded by mu
	nodes int          // guarded by mu: nodes below root, for pruning checks
	subs  atomic.Int64 // subscriptions in this shard; written with mu held
}

// shard is one lock stripe of the table: a trie under its own RWMutex.
type shard struct {
	shardState
	_ [(cacheLine - unsafe.Sizeof(shardState{})%cacheLine) % cacheLine]byte
}

// Subscriptions is what the broker needs of a subscription table: the
// in-memory Table today, a persistent or clustered one later. Methods are
// safe for concurrent use.
type Subscriptions interface {
	// Subscribe adds or replaces s's subscription to filter.
	Subscribe(s Subscriber, filter string, o Options) (existed bool)
	// Unsubscribe removes it.
	Unsubscribe(s Subscriber, filter string) (existed bool)
	// Match appends topic's receivers to m.
	Match(topic []byte, from Subscriber, fromID []byte, m *Matches)
	// Count is the number of subscriptions.
	Count() int
	// PickShared chooses a member of a shared group for a message another
	// member could not finish.
	PickShared(filter string, usable func(Subscriber) bool) (Match, bool)
}

var _ Subscriptions = (*Table)(nil)

// Table is the subscription table: every session's topic filters, matched
// against each published topic. It is lock-striped: filters are sharded by a
// hash of their first level, and filters whose first level is '+' or '#' live
// in a separate wildcard-root shard, so Match read-locks at most two shards
// (one at a time) and a SUBSCRIBE blocks only matches on its own stripe.
//
// All methods are safe for concurrent use.
type Table struct {
	strategy SharedStrategy
	mask     uint32
	shards   []shard // literal first level; len is a power of two
	wild     shard   // first level '+' or '#'
}

// NewTable returns an empty table with shards literal shards (rounded up to
// a power of two; shards <= 0 means DefaultShards) and the given strategy
// for shared subscriptions.
func NewTable(shards int, strategy SharedStrategy) *Table {
	if shards <= 0 {
		shards = DefaultShards
	}
	shards = min(shards, maxShards)
	n := 1 << bits.Len(uint(shards-1))
	return &Table{
		strategy: strategy,
		mask:     uint32(n - 1),
		shards:   make([]shard, n),
	}
}

// shardFor returns the shard of a (non-shared, inner) filter.
func (t *Table) shardFor(filter string) *shard {
	first, _, _ := cutLevel(filter)
	if first == "+" || first == "#" {
		return &t.wild
	}
	return &t.shards[fnv32(first)&t.mask]
}

// split returns the shard and in-shard filter for a filter as the client
// sent it, and the share group if it is a shared subscription. A malformed
// "$share/..." filter is stored as the literal filter it spells: the caller
// should have rejected it, and a literal can never match a real topic's
// subscriber by accident beyond that same spelling.
func (t *Table) split(filter string) (s *shard, inner, group string, shared bool) {
	group, inner, shared = ParseShared(filter)
	if !shared {
		inner = filter
	}
	return t.shardFor(inner), inner, group, shared
}

// Subscribe adds s's subscription to filter with options o, or replaces its
// options if s already has that exact filter, and reports whether it
// replaced [MQTT-3.8.4-3]. filter may be a shared subscription
// "$share/{group}/{filter}" [MQTT-4.8.2-1], [MQTT-4.8.2-2]; a subscriber
// holds at most one membership per (group, filter). The caller validates the
// filter's syntax; nothing it passes makes the table panic. Safe for
// concurrent use.
func (t *Table) Subscribe(s Subscriber, filter string, o Options) (existed bool) {
	sh, inner, name, shared := t.split(filter)
	e := makeSub(s, o)

	sh.mu.Lock()
	defer sh.mu.Unlock()
	n := &sh.root
	for lvl, rest, more := cutLevel(inner); ; lvl, rest, more = cutLevel(rest) {
		c := n.child(lvl)
		if c == nil {
			c = n.addChild(lvl)
			sh.nodes++
		}
		n = c
		if !more {
			break
		}
	}
	if shared {
		g := n.group(name)
		if g == nil {
			g = &group{name: name, filter: filter}
			if n.ext == nil {
				n.ext = &ext{}
			}
			n.ext.groups = append(n.ext.groups, g)
		}
		g.members, existed = setSub(g.members, e)
	} else {
		n.subs, existed = setSub(n.subs, e)
	}
	if !existed {
		sh.subs.Add(1)
	}
	return existed
}

// maxPathOnStack is the filter depth Unsubscribe handles without a heap
// allocation for its path; deeper filters still work.
const maxPathOnStack = 16

// Unsubscribe removes s's subscription to filter (exactly as subscribed,
// "$share/..." included) and reports whether there was one. Nodes left
// empty are pruned, so the table's size follows its subscriptions. Safe for
// concurrent use.
func (t *Table) Unsubscribe(s Subscriber, filter string) (existed bool) {
	sh, inner, name, shared := t.split(filter)

	sh.mu.Lock()
	defer sh.mu.Unlock()
	var buf [maxPathOnStack]*node
	path := buf[:0]
	n := &sh.root
	for lvl, rest, more := cutLevel(inner); ; lvl, rest, more = cutLevel(rest) {
		if n = n.child(lvl); n == nil {
			return false
		}
		path = append(path, n)
		if !more {
			break
		}
	}
	if shared {
		g := n.group(name)
		if g == nil {
			return false
		}
		if g.members, existed = removeSub(g.members, s); existed && len(g.members) == 0 {
			n.removeGroup(g)
		}
	} else {
		n.subs, existed = removeSub(n.subs, s)
	}
	if !existed {
		return false
	}
	sh.subs.Add(-1)
	for i := len(path) - 1; i >= 0 && path[i].empty(); i-- {
		parent := &sh.root
		if i > 0 {
			parent = path[i-1]
		}
		parent.removeChild(path[i])
		sh.nodes--
	}
	return true
}

// Count returns the number of subscriptions, each shared-group member
// counted once. It sums per-shard counters without locking, so under
// concurrent changes it is a recent value, not a snapshot. Safe for
// concurrent use.
func (t *Table) Count() int {
	n := t.wild.subs.Load()
	for i := range t.shards {
		n += t.shards[i].subs.Load()
	}
	return int(n)
}

// Members returns a snapshot of the members of the shared group (group,
// filter), filter being the inner filter ("a/+" for "$share/g/a/+"), in the
// order they joined; nil if there is no such group. The broker uses it to
// fall back to another member when the one Match chose is unusable. It
// allocates. Safe for concurrent use.
func (t *Table) Members(group, filter string) []Subscriber {
	sh := t.shardFor(filter)
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	n := &sh.root
	for lvl, rest, more := cutLevel(filter); ; lvl, rest, more = cutLevel(rest) {
		if n = n.child(lvl); n == nil {
			return nil
		}
		if !more {
			break
		}
	}
	g := n.group(group)
	if g == nil {
		return nil
	}
	out := make([]Subscriber, len(g.members))
	for i := range g.members {
		out[i] = g.members[i].s
	}
	return out
}

// nodeCount returns the number of trie nodes in all shards, for tests that
// check pruning.
func (t *Table) nodeCount() int {
	count := func(s *shard) int {
		s.mu.RLock()
		defer s.mu.RUnlock()
		return s.nodes
	}
	n := count(&t.wild)
	for i := range t.shards {
		n += count(&t.shards[i])
	}
	return n
}
