package session

import "sync"

// Store keeps sessions by client identifier. The in-memory MemStore is the
// only implementation today; a persistent one (issue: persistence) and a
// clustered one will implement the same methods. All methods are safe for
// concurrent use.
type Store interface {
	// GetOrCreate returns the session of id, creating an offline one if
	// there is none.
	GetOrCreate(id string) (s *Session, created bool)
	// Get returns the session of id or nil.
	Get(id string) *Session
	// Delete removes id's session if it is still s, and reports whether it
	// did. The compare keeps a late cleanup from removing a newer session.
	Delete(id string, s *Session) bool
	// Len is the number of sessions.
	Len() int
	// Range calls fn for each session until fn returns false. fn runs with a
	// shard lock held: it must neither lock a session (the lock order is
	// session, then store) nor call back into the Store.
	Range(fn func(*Session) bool)
}

// storeShards splits the map so that a connect storm does not serialise on
// one mutex; 64 keeps each shard's contention negligible at 2..64 loops.
const storeShards = 64

// MemStore is the in-memory Store: a sharded map.
type MemStore struct {
	shards [storeShards]storeShard
}

type storeShard struct {
	mu sync.Mutex
	m  map[string]*Session
}

// NewMemStore returns an empty in-memory store.
func NewMemStore() *MemStore {
	st := &MemStore{}
	for i := range st.shards {
		st.shards[i].m = make(map[string]*Session)
	}
	return st
}

func (st *MemStore) shard(id string) *storeShard {
	// FNV-1a, inline so that hashing a string does not allocate.
	h := uint32(2166136261)
	for i := 0; i < len(id); i++ {
		h ^= uint32(id[i])
		h *= 16777619
	}
	return &st.shards[h%storeShards]
}

// GetOrCreate implements Store.
func (st *MemStore) GetOrCreate(id string) (*Session, bool) {
	sh := st.shard(id)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if s := sh.m[id]; s != nil {
		return s, false
	}
	s := New(id)
	sh.m[id] = s
	return s, true
}

// Get implements Store.
func (st *MemStore) Get(id string) *Session {
	sh := st.shard(id)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.m[id]
}

// Delete implements Store.
func (st *MemStore) Delete(id string, s *Session) bool {
	sh := st.shard(id)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	cur, ok := sh.m[id]
	if !ok || cur != s {
		return false
	}
	delete(sh.m, id)
	return true
}

// Len implements Store.
func (st *MemStore) Len() int {
	n := 0
	for i := range st.shards {
		sh := &st.shards[i]
		sh.mu.Lock()
		n += len(sh.m)
		sh.mu.Unlock()
	}
	return n
}

// Range implements Store.
func (st *MemStore) Range(fn func(*Session) bool) {
	for i := range st.shards {
		sh := &st.shards[i]
		sh.mu.Lock()
		for _, s := range sh.m {
			if !fn(s) {
				sh.mu.Unlock()
				return
			}
		}
		sh.mu.Unlock()
	}
}
