// Package router decides who receives an application message. It owns three
// things:
//
//   - Message, the refcounted, pooled copy of a PUBLISH that every
//     subscriber, queue and the retained store share (message.go).
//   - Table, the subscription table: topic filters (shared ones included)
//     matched against a topic, with per-subscriber de-duplication and
//     shared-group member selection (table.go, match.go, shared.go).
//   - Retained and its in-memory implementation MemRetained, the retained
//     message of each topic (retained.go).
//
// # Goroutines
//
// Table and MemRetained are safe for concurrent use by any goroutine. A
// Matches belongs to one router worker: only one goroutine may use it at a
// time. Message is safe for concurrent use; its fields are read-only once
// published.
//
// # Buffer lifetimes
//
// Matches.List and each entry's SubIDs are valid until the next Reset or
// Match on the same Matches. A Message's Topic, Payload, Props and FromID are
// valid while a reference is held; the message passed to a Retained.Match
// callback is valid only during the call unless the callback takes m.Ref().
// Retained.Collect hands out one reference per message it appends: the
// caller keeps them as long as it likes and releases each.
// The table never keeps a caller's string: each trie level is cloned on
// insert.
//
// # Table layout and invariants
//
// The table is lock-striped. A filter lives in the shard chosen by an FNV-1a
// hash of its first level; a filter whose first level is '+' or '#' lives in
// the wildcard shard. So the roots of literal shards have no '+' or '#'
// child, and the wildcard shard's root has only those. A shared subscription
// "$share/g/f" is stored at f's node, in group g.
//
// Each shard is a trie of levels. A node keeps its literal children in a
// slice until it has more than eight, then in a map; the '+' and '#'
// children, and the shared groups, sit in a side struct that leaves never
// allocate. Within a node a subscriber appears at most once among the
// non-shared subscriptions and at most once per group: Subscribe replaces.
// A node with no subscriptions and no children is removed at once, so the
// trie's size follows the number of distinct filters.
//
// Match copies what it needs into a Matches and returns with no lock held;
// the caller delivers lock-free. It allocates nothing once the Matches has
// grown (TestMatchAllocs).
//
// # Lock order
//
// Table: every method holds at most one shard lock at a time. Match
// read-locks the topic's literal shard, releases it, then read-locks the
// wildcard shard; Subscribe, Unsubscribe and Members lock the one shard of
// their filter. Shared groups' round-robin counters are atomics, not locks.
// Should a change ever need two shard locks at once, take literal shards in
// index order, then the wildcard shard.
//
// MemRetained: one RWMutex, r.mu, never held while calling out: Match and
// Collect take references under it, Match calls fn after releasing it, and
// messages are released after it is dropped. A message the store replaces
// or clears is marked superseded under the write lock, before the message
// replacing it is routed, so a holder of a Collect snapshot that sees the
// mark knows its subscribers are getting the newer one.
//
// The Table and MemRetained locks are independent: no method of one calls
// the other, so neither is ever held while taking the other. Subscriber's
// ClientID is called with a shard read-locked and must take no router lock.
package router
