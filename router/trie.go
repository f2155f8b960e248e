package router

import (
	"bytes"
	"slices"
	"strings"
)

// maxListKids is how many literal children a node keeps in a plain slice
// before it switches to a map. Below it a linear scan of string headers beats
// hashing the level (compare length, then bytes) and costs 8 bytes a child
// instead of a map slot's ~40; past it the scan's cost grows with fan-out, so
// a node like "bench" with 100k children must be a map. The slice is not
// sorted: at eight entries a binary search saves nothing.
const maxListKids = 8

// node is one level of a filter trie. It is kept to three words and a string
// header (48 bytes) because the common table is hundreds of thousands of
// leaves, one per literal topic, each with one subscriber: everything a leaf
// does not need lives behind ext.
type node struct {
	level string // this level's name, stored once (also the key in the parent's map)
	ext   *ext   // children and shared groups; nil for a leaf without groups
	subs  []sub  // non-shared subscriptions whose filter ends here, one per subscriber
}

// ext holds what only inner nodes and shared-subscription nodes need.
type ext struct {
	list   []*node          // literal children while there are at most maxListKids
	m      map[string]*node // literal children past maxListKids; list is then nil
	plus   *node            // the '+' child
	hash   *node            // the '#' child
	groups []*group         // shared subscriptions whose inner filter ends here
}

func (e *ext) empty() bool {
	return len(e.list) == 0 && len(e.m) == 0 && e.plus == nil && e.hash == nil && len(e.groups) == 0
}

// sub is one subscription as stored in a node: 24 bytes.
type sub struct {
	s     Subscriber
	id    uint32 // Subscription Identifier, 0 = none
	qos   byte
	flags byte
}

const (
	flagNoLocal byte = 1 << iota
	flagRetainAsPublished
	// Retain Handling occupies bits 2 and 3 (flags>>rhShift & 3).
	rhShift = 2
)

func makeSub(s Subscriber, o Options) sub {
	q := o.QoS
	if q > 2 {
		q = 2 // the caller validated; clamp rather than deliver an impossible QoS
	}
	e := sub{s: s, id: o.SubID, qos: q, flags: (o.RetainHandling & 3) << rhShift}
	if o.NoLocal {
		e.flags |= flagNoLocal
	}
	if o.RetainAsPublished {
		e.flags |= flagRetainAsPublished
	}
	return e
}

// empty reports whether n can be pruned: nothing ends at it or below it.
func (n *node) empty() bool { return len(n.subs) == 0 && n.ext == nil }

// child returns n's child for a filter level ("+" and "#" are the wildcard
// children), or nil.
func (n *node) child(level string) *node {
	e := n.ext
	if e == nil {
		return nil
	}
	switch level {
	case "+":
		return e.plus
	case "#":
		return e.hash
	}
	if e.m != nil {
		return e.m[level]
	}
	for _, c := range e.list {
		if c.level == level {
			return c
		}
	}
	return nil
}

// literal returns n's literal child for a topic level, or nil. The string
// conversions below are compiled without allocating (map index and ==).
func (n *node) literal(level []byte) *node {
	e := n.ext
	if e == nil {
		return nil
	}
	if e.m != nil {
		return e.m[string(level)]
	}
	for _, c := range e.list {
		if c.level == string(level) {
			return c
		}
	}
	return nil
}

// addChild creates n's child for level, which must not exist yet. The level
// is cloned so the trie never pins the caller's (possibly large) filter or
// packet string.
func (n *node) addChild(level string) *node {
	c := &node{level: strings.Clone(level)}
	if n.ext == nil {
		n.ext = &ext{}
	}
	e := n.ext
	switch {
	case level == "+":
		e.plus = c
	case level == "#":
		e.hash = c
	case e.m != nil:
		e.m[c.level] = c
	case len(e.list) < maxListKids:
		e.list = append(e.list, c)
	default:
		e.m = make(map[string]*node, 2*maxListKids)
		for _, k := range e.list {
			e.m[k.level] = k
		}
		e.m[c.level] = c
		e.list = nil
	}
	return c
}

// removeChild unlinks the child c from n and drops n.ext once it holds
// nothing.
func (n *node) removeChild(c *node) {
	e := n.ext
	switch {
	case e.plus == c:
		e.plus = nil
	case e.hash == c:
		e.hash = nil
	case e.m != nil:
		delete(e.m, c.level)
		// Back to a slice at half the threshold, so a node hovering around
		// maxListKids does not convert on every subscribe/unsubscribe.
		if len(e.m) <= maxListKids/2 {
			e.list = make([]*node, 0, len(e.m))
			for _, k := range e.m {
				e.list = append(e.list, k)
			}
			e.m = nil
		}
	default:
		if i := slices.Index(e.list, c); i >= 0 {
			e.list = slices.Delete(e.list, i, i+1)
		}
		if len(e.list) == 0 {
			e.list = nil
		}
	}
	n.tidy()
}

// tidy drops n.ext when it holds nothing, so empty() sees a prunable node.
func (n *node) tidy() {
	if n.ext != nil && n.ext.empty() {
		n.ext = nil
	}
}

// group returns the shared group with the given name ending at n, or nil.
func (n *node) group(name string) *group {
	if n.ext == nil {
		return nil
	}
	for _, g := range n.ext.groups {
		if g.name == name {
			return g
		}
	}
	return nil
}

// removeGroup unlinks g from n.
func (n *node) removeGroup(g *group) {
	e := n.ext
	if i := slices.Index(e.groups, g); i >= 0 {
		e.groups = slices.Delete(e.groups, i, i+1)
	}
	if len(e.groups) == 0 {
		e.groups = nil
	}
	n.tidy()
}

// setSub replaces s's entry in list or appends one, and reports whether it
// replaced. The scan is linear: a subscriber appears once per node, and
// SUBSCRIBE is rare next to PUBLISH, so no per-node index is kept.
func setSub(list []sub, e sub) ([]sub, bool) {
	for i := range list {
		if list[i].s == e.s {
			list[i] = e
			return list, true
		}
	}
	return append(list, e), false
}

// removeSub deletes s's entry from list and reports whether there was one.
// Order is kept so that round-robin over a shared group stays fair when a
// member leaves.
func removeSub(list []sub, s Subscriber) ([]sub, bool) {
	for i := range list {
		if list[i].s == s {
			list = slices.Delete(list, i, i+1)
			switch {
			case len(list) == 0:
				list = nil
			case cap(list) > 8 && len(list) < cap(list)/4:
				// A hot topic that lost most of its audience gives the
				// memory back.
				list = slices.Clone(list)
			}
			return list, true
		}
	}
	return list, false
}

// cutLevel splits a filter at its first '/': the level, what follows the
// slash, and whether there was a slash (so "a/" has a further, empty level:
// empty levels are real levels).
func cutLevel(s string) (level, rest string, more bool) {
	if i := strings.IndexByte(s, '/'); i >= 0 {
		return s[:i], s[i+1:], true
	}
	return s, "", false
}

// cutLevelBytes is cutLevel for topic names.
func cutLevelBytes(b []byte) (level, rest []byte, more bool) {
	if i := bytes.IndexByte(b, '/'); i >= 0 {
		return b[:i], b[i+1:], true
	}
	return b, nil, false
}

// fnv32 is 32-bit FNV-1a, written out so hashing a topic or client id on the
// match path costs no allocation and no interface call.
func fnv32[T string | []byte](b T) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(b); i++ {
		h ^= uint32(b[i])
		h *= 16777619
	}
	return h
}
