package router

import (
	"strings"
	"sync"
	"sync/atomic"
)

// Retained stores the retained message of each topic. The broker talks to
// it through this interface so that a persistent store can replace the
// in-memory one.
type Retained interface {
	// Set stores m as the retained message of m.Topic, replacing any
	// previous one [MQTT-3.3.1-5], taking its own reference to m. When m's
	// payload is empty it instead removes the topic's retained message
	// [MQTT-3.3.1-6] and does not store m [MQTT-3.3.1-7]. The caller keeps
	// its own reference either way. The message replaced or removed is
	// marked superseded (Message.Superseded) before Set returns.
	Set(m *Message)
	// Match calls fn for every retained message whose topic matches filter
	// (a plain filter: wildcards allowed, no "$share/" prefix), with the '$'
	// rule applied [MQTT-4.7.2-1]. fn's message is valid only during the
	// call unless fn takes m.Ref(). Match stops when fn returns false. fn
	// may call back into the store. Expired messages are not filtered out:
	// fn should check m.Expired.
	Match(filter string, fn func(m *Message) bool)
	// Collect appends to out the retained messages whose topics match
	// filter, as Match finds them, each with a reference taken that the
	// caller gives back, and returns the extended slice: a snapshot to
	// deliver over time. It copies no message.
	Collect(filter string, out []*Message) []*Message
	// Count returns the number of retained messages on topics that start
	// with '$' (dollar), which the spec leaves to the server and wildcards
	// at the first level do not match [MQTT-4.7.2-1] (the broker's $SYS
	// topics), and on all other topics (user). Each figure is exact at the
	// moment it is read; the two are read apart, so a concurrent Set may be
	// in one and not yet in the other.
	Count() (user, dollar int)
}

// MemRetained is the in-memory Retained store: a trie of topic levels under
// one RWMutex. Retained messages change far less often than they are
// published through, and Match runs once per SUBSCRIBE, so one lock is
// enough. All methods are safe for concurrent use.
type MemRetained struct {
	mu   sync.RWMutex
	root rnode // guarded by mu
	// Messages on topics not starting with '$' and on those that do:
	// written with mu held, read without it (Count), so that a scrape or
	// a dashboard sample costs two loads rather than a walk of the trie.
	user, dollar atomic.Int64
}

var _ Retained = (*MemRetained)(nil)

// rnode is one topic level of the retained trie.
type rnode struct {
	level string
	list  []*rnode          // children while there are at most maxListKids
	m     map[string]*rnode // children past maxListKids; list is then nil
	msg   *Message          // the retained message of this exact topic, or nil
}

// NewRetained returns an empty in-memory retained store.
func NewRetained() *MemRetained { return &MemRetained{} }

// Count implements Retained.
func (r *MemRetained) Count() (user, dollar int) { return int(r.user.Load()), int(r.dollar.Load()) }

// counter is the count that a message on topic belongs to.
func (r *MemRetained) counter(topic []byte) *atomic.Int64 {
	if len(topic) > 0 && topic[0] == '$' {
		return &r.dollar
	}
	return &r.user
}

// Set implements Retained. The previous message's reference is released
// after the lock is dropped.
func (r *MemRetained) Set(m *Message) {
	if len(m.Payload) == 0 {
		r.clear(m.Topic) // [MQTT-3.3.1-6], [MQTT-3.3.1-7]
		return
	}
	m.Ref()
	r.mu.Lock()
	n := &r.root
	for lvl, rest, more := cutLevelBytes(m.Topic); ; lvl, rest, more = cutLevelBytes(rest) {
		c := n.child(lvl)
		if c == nil {
			c = n.add(string(lvl))
		}
		n = c
		if !more {
			break
		}
	}
	old := n.msg
	n.msg = m // [MQTT-3.3.1-5]
	if old == nil {
		r.counter(m.Topic).Add(1)
	} else {
		old.superseded.Store(true)
	}
	r.mu.Unlock()
	if old != nil {
		old.Release()
	}
}

// clear removes topic's retained message, pruning nodes left empty.
func (r *MemRetained) clear(topic []byte) {
	var buf [maxPathOnStack]*rnode
	path := buf[:0]
	r.mu.Lock()
	n := &r.root
	for lvl, rest, more := cutLevelBytes(topic); ; lvl, rest, more = cutLevelBytes(rest) {
		if n = n.child(lvl); n == nil {
			r.mu.Unlock()
			return
		}
		path = append(path, n)
		if !more {
			break
		}
	}
	old := n.msg
	n.msg = nil
	if old != nil {
		r.counter(topic).Add(-1)
		old.superseded.Store(true)
	}
	for i := len(path) - 1; i >= 0 && path[i].empty(); i-- {
		parent := &r.root
		if i > 0 {
			parent = path[i-1]
		}
		parent.remove(path[i])
	}
	r.mu.Unlock()
	if old != nil {
		old.Release()
	}
}

// retainedScratch recycles Match's list of referenced messages: SUBSCRIBE
// bursts after a reconnect storm would otherwise allocate one per filter.
var retainedScratch = sync.Pool{New: func() any { return new([]*Message) }}

// maxScratch is the largest list returned to retainedScratch; a "#" over a
// huge store should not pin its list forever.
const maxScratch = 4096

// Match implements Retained. It references the matching messages under the
// read lock and calls fn after dropping it, so fn may block or call Set.
func (r *MemRetained) Match(filter string, fn func(m *Message) bool) {
	p := retainedScratch.Get().(*[]*Message)
	list := r.Collect(filter, (*p)[:0])
	more := true
	for i, m := range list {
		if more {
			more = fn(m)
		}
		m.Release()
		list[i] = nil
	}
	if cap(list) <= maxScratch {
		*p = list[:0]
		retainedScratch.Put(p)
	}
}

// All appends every retained message, on '$' topics too, each with a
// reference taken that the caller gives back, and returns the extended
// slice.
func (r *MemRetained) All(out []*Message) []*Message {
	r.mu.RLock()
	out = r.root.all(out)
	r.mu.RUnlock()
	return out
}

// Collect implements Retained. It holds the read lock while it walks the
// trie, and allocates only to grow out.
func (r *MemRetained) Collect(filter string, out []*Message) []*Message {
	r.mu.RLock()
	out = r.root.match(filter, true, out)
	r.mu.RUnlock()
	return out
}

// match appends, with a reference taken, the messages below n whose topics
// match filter. root is true at the trie's root, where wildcards must skip
// '$' topics [MQTT-4.7.2-1]. r.mu must be held.
func (n *rnode) match(filter string, root bool, out []*Message) []*Message {
	lvl, rest, more := cutLevel(filter)
	switch lvl {
	case "#":
		// '#' matches the parent level too [MQTT-4.7.1-1]; the root is no
		// topic level, so "#" alone starts below it.
		if !root && n.msg != nil {
			out = append(out, n.msg.Ref())
		}
		n.each(root, func(c *rnode) { out = c.all(out) })
	case "+":
		n.each(root, func(c *rnode) {
			if more {
				out = c.match(rest, false, out)
			} else if c.msg != nil {
				out = append(out, c.msg.Ref())
			}
		})
	default:
		c := n.find(lvl)
		if c == nil {
			break
		}
		if more {
			out = c.match(rest, false, out)
		} else if c.msg != nil {
			out = append(out, c.msg.Ref())
		}
	}
	return out
}

// all appends n's message and every message below it, referenced.
func (n *rnode) all(out []*Message) []*Message {
	if n.msg != nil {
		out = append(out, n.msg.Ref())
	}
	n.each(false, func(c *rnode) { out = c.all(out) })
	return out
}

// each calls fn for every child of n; at the root it skips topics starting
// with '$', which no wildcard matches there [MQTT-4.7.2-1].
func (n *rnode) each(root bool, fn func(*rnode)) {
	visit := func(c *rnode) {
		if root && strings.HasPrefix(c.level, "$") {
			return
		}
		fn(c)
	}
	for _, c := range n.list {
		visit(c)
	}
	for _, c := range n.m {
		visit(c)
	}
}

func (n *rnode) empty() bool { return n.msg == nil && len(n.list) == 0 && len(n.m) == 0 }

// child returns n's child for a topic level, or nil.
func (n *rnode) child(level []byte) *rnode {
	if n.m != nil {
		return n.m[string(level)]
	}
	for _, c := range n.list {
		if c.level == string(level) {
			return c
		}
	}
	return nil
}

// find is child for a filter level.
func (n *rnode) find(level string) *rnode {
	if n.m != nil {
		return n.m[level]
	}
	for _, c := range n.list {
		if c.level == level {
			return c
		}
	}
	return nil
}

// add creates n's child for level, which must not exist yet.
func (n *rnode) add(level string) *rnode {
	c := &rnode{level: level}
	switch {
	case n.m != nil:
		n.m[level] = c
	case len(n.list) < maxListKids:
		n.list = append(n.list, c)
	default:
		n.m = make(map[string]*rnode, 2*maxListKids)
		for _, k := range n.list {
			n.m[k.level] = k
		}
		n.m[level] = c
		n.list = nil
	}
	return c
}

// remove unlinks the child c from n.
func (n *rnode) remove(c *rnode) {
	if n.m != nil {
		delete(n.m, c.level)
		if len(n.m) <= maxListKids/2 {
			n.list = make([]*rnode, 0, len(n.m))
			for _, k := range n.m {
				n.list = append(n.list, k)
			}
			n.m = nil
		}
		return
	}
	for i, k := range n.list {
		if k == c {
			last := len(n.list) - 1
			n.list[i] = n.list[last]
			n.list[last] = nil
			n.list = n.list[:last]
			break
		}
	}
	if len(n.list) == 0 {
		n.list = nil
	}
}
