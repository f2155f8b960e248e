package router

import (
	"github.com/shoalmq/shoal/internal/enum"
	"math/rand/v2"
	"strings"
	"sync/atomic"
)

// SharedStrategy chooses which member of a shared-subscription group
// receives a message. Each message goes to exactly one member of each
// matching group (MQTT 5 §4.8.2, which leaves the choice to the server).
type SharedStrategy uint8

const (
	// RoundRobin cycles through the members with a per-group atomic counter
	// (default): fair, and what clients expect from load balancing.
	RoundRobin SharedStrategy = iota
	// Random picks a member uniformly at random.
	Random
	// HashClient picks by a hash of the publisher's client id, so one
	// publisher's messages keep their order at one member while membership
	// is stable.
	HashClient
	// HashTopic picks by a hash of the topic, so one topic's messages keep
	// their order at one member while membership is stable.
	HashTopic
)

// String returns the config-file spelling.
func (s SharedStrategy) String() string { return sharedStrategies.String(s) }

// ParseSharedStrategy reads the config-file spelling of a SharedStrategy.
func ParseSharedStrategy(s string) (SharedStrategy, error) { return sharedStrategies.Parse(s) }

// sharedStrategies spells the SharedStrategy values, in order.
var sharedStrategies = enum.New[SharedStrategy]("SharedStrategy", "shared subscription strategy", "round-robin", "random", "hash-client", "hash-topic")

const sharePrefix = "$share/"

// ParseShared splits a shared subscription filter "$share/{ShareName}/{filter}"
// into its group (ShareName) and inner filter: "$share/g/a/+" gives "g",
// "a/+", true.
//
// A filter that does not start with "$share/" is not shared: it returns "",
// filter, false. A malformed share returns "", "", false: an empty ShareName
// [MQTT-4.8.2-1], a ShareName containing '+' or '#', or no '/' and non-empty
// filter after it [MQTT-4.8.2-2]. It does not check the inner filter's
// syntax. Safe for concurrent use.
func ParseShared(filter string) (group, inner string, ok bool) {
	rest, found := strings.CutPrefix(filter, sharePrefix)
	if !found {
		return "", filter, false
	}
	group, inner, found = strings.Cut(rest, "/")
	if !found || group == "" || inner == "" || strings.ContainsAny(group, "+#") {
		return "", "", false
	}
	return group, inner, true
}

// group is one shared-subscription group: identified by its name and the
// node (inner filter) it hangs on [MQTT-4.8.2].
type group struct {
	name    string
	filter  string // the whole filter as subscribed, "$share/{name}/{inner}"
	members []sub  // in subscription order; never empty while linked
	next    atomic.Uint64
}

// pick returns the index of the member of g that receives the message m is
// matching. The shard holding g must be read-locked. The strategy proposes a
// member; if m.Usable says it can't take messages now (offline, stalled, or
// on another node when a node picks among its own), another usable member
// gets it instead, so one member that left or stalls doesn't black-hole the
// group's messages (MQTT 5 section 4.8.2): round robin and random draw
// again, so that the usable members still share evenly, and the hashes,
// which would propose the same member again, take the next usable one in
// subscription order. With no usable member the proposal stands.
func (t *Table) pick(g *group, m *Matches) int {
	n := uint64(len(g.members))
	if n == 1 {
		return 0
	}
	i := t.propose(g, m, n)
	if m.Usable == nil || m.Usable(g.members[i].s) {
		return int(i)
	}
	if t.strategy == RoundRobin || t.strategy == Random {
		// n-1 more turns of round robin visit every other member.
		for k := uint64(1); k < n; k++ {
			if j := t.propose(g, m, n); m.Usable(g.members[j].s) {
				return int(j)
			}
		}
	}
	for k := uint64(1); k < n; k++ {
		if j := (i + k) % n; m.Usable(g.members[j].s) {
			return int(j)
		}
	}
	return int(i)
}

// propose returns the member of g's n that t's strategy proposes for the
// message m is matching.
func (t *Table) propose(g *group, m *Matches, n uint64) uint64 {
	switch t.strategy {
	case Random:
		// math/rand/v2's top-level source is per-thread runtime state: no
		// lock and no shared cache line between router workers, which a
		// per-Table generator would need.
		return rand.Uint64N(n)
	case HashClient:
		return uint64(fnv32(m.fromID)) % n
	case HashTopic:
		return uint64(fnv32(m.topic)) % n
	}
	return (g.next.Add(1) - 1) % n
}

// PickShared chooses a member of the shared group named by filter, a whole
// "$share/{group}/{filter}" string, for a message that a member can no longer
// take: its session ended with the message unacknowledged, and MQTT 5
// section 4.8.2 asks that it go to another member. usable (may be nil)
// passes over members as Matches.Usable does. It reports false when the
// group is gone. Safe for concurrent use.
func (t *Table) PickShared(filter string, usable func(Subscriber) bool) (Match, bool) {
	sh, inner, name, shared := t.split(filter)
	if !shared {
		return Match{}, false
	}
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	n := &sh.root
	for lvl, rest, more := cutLevel(inner); ; lvl, rest, more = cutLevel(rest) {
		if n = n.child(lvl); n == nil {
			return Match{}, false
		}
		if !more {
			break
		}
	}
	g := n.group(name)
	if g == nil {
		return Match{}, false
	}
	m := Matches{Usable: usable}
	s := &g.members[t.pick(g, &m)]
	out := Match{Sub: s.s, QoS: s.qos, RetainAsPublished: s.flags&flagRetainAsPublished != 0, Shared: true, Group: g.filter}
	if s.id != 0 {
		out.SubIDs = []uint32{s.id}
	}
	return out, true
}
