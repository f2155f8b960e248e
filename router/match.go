package router

// Match is one receiver of a message, after de-duplication.
type Match struct {
	Sub Subscriber
	// QoS is the maximum granted QoS over all of Sub's matching non-shared
	// filters [MQTT-3.3.4-2], or the member's granted QoS for a shared entry
	// [MQTT-4.8.2-3]. The broker delivers at min(QoS, message QoS).
	QoS byte
	// RetainAsPublished is true if any matching filter has it.
	RetainAsPublished bool
	// SubIDs are the Subscription Identifiers of every matching filter that
	// has one [MQTT-3.3.4-3], [MQTT-3.3.4-4]. The storage is reused: valid
	// until the next Reset or Match on the same Matches.
	SubIDs []uint32
	// Shared is true if this entry came from a shared-subscription group.
	Shared bool
	// Group is that group's whole filter ("$share/g/a/+"), for
	// Table.PickShared; "" for non-shared entries.
	Group string
}

// linearDedupe is how many entries one Match call may produce before
// de-duplication switches from scanning them to a map: scanning 16 interface
// values is cheaper than hashing one.
const linearDedupe = 16

// Matches is a reusable result buffer for Table.Match: one per router worker,
// used by one goroutine at a time. Its zero value is ready to use. Once its
// buffers have grown to the worker's largest fan-out, Match allocates
// nothing.
type Matches struct {
	// List holds the receivers. Entries and their SubIDs are valid until the
	// next Reset or Match on this Matches.
	List []Match

	// Usable, when set, tells shared-subscription picks whether a member
	// can take a message now; see Table.pick. It is called with a shard
	// read-locked and must not call back into the Table.
	Usable func(Subscriber) bool
	// NoShared leaves shared groups out of the matches: the message was
	// already given to one member of each (by another node of a cluster,
	// which picked the member for the whole group).
	NoShared bool

	start   int                  // first entry of the current Match call
	nodes   int                  // trie nodes that contributed non-shared entries this call
	indexed int                  // List[start:indexed] are in index; -1 while unused this call
	index   map[Subscriber]int32 // Sub -> entry, for large de-duplications
	topic   []byte               // the call's topic, for HashTopic
	fromID  []byte               // the call's publisher id, for HashClient and No Local
	from    Subscriber           // the call's publisher, for No Local
}

// Reset empties m, keeping its storage. It drops m's references to
// subscribers so a worker's idle buffer does not keep closed sessions alive.
func (m *Matches) Reset() {
	for i := range m.List {
		m.List[i].Sub = nil
	}
	m.List = m.List[:0]
}

// Match appends to m every subscriber whose filter matches topic, a valid
// topic name (no wildcards). from is the publishing session (may be nil) and
// fromID its client id (may be empty): filters with NoLocal skip a
// subscriber that is from or whose ClientID equals fromID [MQTT-3.8.3-3].
// fromID also feeds the HashClient strategy, topic the HashTopic one.
//
// Matching follows MQTT §4.7: '+' matches exactly one level, '#' the rest
// including the parent level ("sport/#" matches "sport") [MQTT-4.7.1-1]
// (v3.1.1: [MQTT-4.7.1-2]); filters starting with '+' or '#' do not match
// topics starting with '$' [MQTT-4.7.2-1]; empty levels are real levels
// ("a//b" has three), and no normalisation is done [MQTT-4.7.3-4].
//
// A subscriber whose non-shared filters overlap appears once, with the
// maximum QoS and every Subscription Identifier [MQTT-3.3.4-2],
// [MQTT-3.3.4-4]. Each matching shared group, identified by (name, inner
// filter), contributes exactly one member chosen by the Table's strategy; so a
// subscriber with a normal and a shared match appears twice, once with
// Shared set. NoLocal is not applied to shared members: a client may not set
// it on a shared subscription [MQTT-3.8.3-4].
//
// Match read-locks the topic's first-level shard, then the wildcard shard,
// never both at once, and holds neither when it returns: the caller delivers
// without locks. Safe for concurrent use with a distinct m per goroutine;
// allocation-free once m's storage has grown.
func (t *Table) Match(topic []byte, from Subscriber, fromID []byte, m *Matches) {
	m.start, m.nodes, m.indexed = len(m.List), 0, -1
	m.topic, m.fromID, m.from = topic, fromID, from

	first, _, _ := cutLevelBytes(topic)
	// An empty shard is skipped without touching its lock: its counter is
	// written under the lock, so a Subscribe that returned before this
	// Match began is always seen.
	if sh := &t.shards[fnv32(first)&t.mask]; sh.subs.Load() != 0 {
		sh.mu.RLock()
		t.walk(&sh.root, topic, m)
		sh.mu.RUnlock()
	}
	// Everything in the wildcard shard starts with '+' or '#'. [MQTT-4.7.2-1]
	if (len(topic) == 0 || topic[0] != '$') && t.wild.subs.Load() != 0 {
		t.wild.mu.RLock()
		t.walk(&t.wild.root, topic, m)
		t.wild.mu.RUnlock()
	}

	if m.indexed >= 0 {
		clear(m.index)
	}
	m.topic, m.fromID, m.from = nil, nil, nil
}

// walk matches the levels in rest (at least one, possibly empty) below n.
// The shard holding n must be read-locked.
func (t *Table) walk(n *node, rest []byte, m *Matches) {
	for {
		e := n.ext
		if e == nil {
			return
		}
		// '#' below n matches whatever remains, at least one level here.
		if e.hash != nil {
			t.collect(e.hash, m)
		}
		lvl, next, more := cutLevelBytes(rest)
		if e.plus != nil {
			t.arrive(e.plus, next, more, m)
		}
		c := n.literal(lvl)
		if c == nil {
			return
		}
		if !more {
			t.arrive(c, nil, false, m)
			return
		}
		n, rest = c, next
	}
}

// arrive continues matching at c, reached by one topic level: with more
// levels to go it walks on; at the last level c's own filters match, and so
// does a '#' below c, since "sport/#" matches "sport" [MQTT-4.7.1-1].
func (t *Table) arrive(c *node, next []byte, more bool, m *Matches) {
	if more {
		t.walk(c, next, m)
		return
	}
	t.collect(c, m)
	if c.ext != nil && c.ext.hash != nil {
		t.collect(c.ext.hash, m)
	}
}

// collect adds the subscriptions ending at n: every non-shared one, and one
// member of each shared group. The shard holding n must be read-locked.
func (t *Table) collect(n *node, m *Matches) {
	if len(n.subs) > 0 {
		m.addSubs(n.subs)
	}
	if n.ext != nil && !m.NoShared {
		for _, g := range n.ext.groups {
			m.push(&g.members[t.pick(g, m)], g)
		}
	}
}

// addSubs adds one node's non-shared subscriptions. A subscriber appears at
// most once per node, so the first node of a call needs no de-duplication;
// only later nodes look entries up, which keeps a 1,000-subscriber topic at
// O(matches).
func (m *Matches) addSubs(subs []sub) {
	m.nodes++
	dedupe := m.nodes > 1
	for i := range subs {
		s := &subs[i]
		if s.flags&flagNoLocal != 0 && m.local(s.s) {
			continue // [MQTT-3.8.3-3]
		}
		if dedupe {
			if j := m.find(s.s); j >= 0 {
				m.List[j].merge(s)
				continue
			}
		}
		m.push(s, nil)
	}
}

// local reports whether s is the publisher of the message being matched.
func (m *Matches) local(s Subscriber) bool {
	if m.from != nil && s == m.from {
		return true
	}
	return len(m.fromID) > 0 && s.ClientID() == string(m.fromID)
}

// find returns the index of s's non-shared entry from this call, or -1.
func (m *Matches) find(s Subscriber) int {
	if m.indexed < 0 && len(m.List)-m.start <= linearDedupe {
		for j := m.start; j < len(m.List); j++ {
			if e := &m.List[j]; !e.Shared && e.Sub == s {
				return j
			}
		}
		return -1
	}
	if m.index == nil {
		m.index = make(map[Subscriber]int32)
	}
	if m.indexed < 0 {
		m.indexed = m.start
	}
	// Index lazily: entries pushed since the last lookup are added here,
	// so push itself never touches the map.
	for ; m.indexed < len(m.List); m.indexed++ {
		if e := &m.List[m.indexed]; !e.Shared {
			m.index[e.Sub] = int32(m.indexed)
		}
	}
	if j, ok := m.index[s]; ok {
		return int(j)
	}
	return -1
}

// push appends an entry for s, reusing the SubIDs storage of whatever entry
// last occupied the slot.
func (m *Matches) push(s *sub, g *group) {
	n := len(m.List)
	if n < cap(m.List) {
		m.List = m.List[:n+1]
	} else {
		m.List = append(m.List, Match{})
	}
	e := &m.List[n]
	e.Sub = s.s
	e.QoS = s.qos
	e.RetainAsPublished = s.flags&flagRetainAsPublished != 0
	e.Shared = g != nil
	e.Group = ""
	if g != nil {
		e.Group = g.filter
	}
	e.SubIDs = e.SubIDs[:0]
	if s.id != 0 {
		e.SubIDs = append(e.SubIDs, s.id)
	}
}

// merge folds another matching filter of the same subscriber into e
// [MQTT-3.3.4-2], [MQTT-3.3.4-3].
func (e *Match) merge(s *sub) {
	e.QoS = max(e.QoS, s.qos)
	e.RetainAsPublished = e.RetainAsPublished || s.flags&flagRetainAsPublished != 0
	if s.id != 0 {
		e.SubIDs = append(e.SubIDs, s.id)
	}
}
