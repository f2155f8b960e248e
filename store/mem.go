package store

import (
	"bytes"
	"slices"
	"sync"
)

// Mem is a Store in memory, with the same records and the same semantics
// as Pebble except that nothing survives the process. It lets tests stop a
// broker and start another on the same state, and it runs the store test
// suite without a disk.
type Mem struct {
	mu sync.Mutex
	kv map[string][]byte
}

// NewMem returns an empty in-memory store.
func NewMem() *Mem { return &Mem{kv: make(map[string][]byte)} }

// NewWriter implements Store.
func (m *Mem) NewWriter() Writer { return &memWriter{m: m} }

// Mark implements Store.
func (m *Mem) Mark(name string) ([]byte, error) {
	m.mu.Lock()
	v, ok := m.kv[string(markKey(nil, name))]
	m.mu.Unlock()
	if !ok {
		return nil, nil
	}
	return decodeMark(v)
}

// Empty implements Store.
func (m *Mem) Empty() (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k := range m.kv {
		if slices.Contains(stateKinds[:], k[0]) {
			return false, nil
		}
	}
	return true, nil
}

// Sync implements Store: memory is as durable as it gets.
func (m *Mem) Sync() error { return nil }

// Close implements Store. The records stay: a Mem may be loaded again.
func (m *Mem) Close() error { return nil }

// Len is the number of records, for tests.
func (m *Mem) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.kv)
}

// Load implements Store.
func (m *Mem) Load(l Loader) error {
	var drops [][]byte
	// Mem's salvage is Pebble's without a disk: the records that do not
	// decode are not kept.
	drop := func(k []byte) { drops = append(drops, bytes.Clone(k)) }
	load(m, l, drop, drop)
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, k := range drops {
		delete(m.kv, string(k))
	}
	return nil
}

// scan implements source: a sorted snapshot of kind's records, so fn may
// run without the lock.
func (m *Mem) scan(_ Loader, kind byte, _ string, fn func(k, v []byte)) {
	m.mu.Lock()
	var keys []string
	for k := range m.kv {
		if k[0] == kind {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	vals := make([][]byte, len(keys))
	for i, k := range keys {
		vals[i] = m.kv[k]
	}
	m.mu.Unlock()
	for i, k := range keys {
		fn([]byte(k), vals[i])
	}
}

// memOp is one gathered change: a set (val non-nil), a delete, or a range
// delete (end non-nil).
type memOp struct {
	key, val, end []byte
}

type memWriter struct {
	m   *Mem
	ops []memOp
}

func (w *memWriter) set(k, v []byte) {
	w.ops = append(w.ops, memOp{key: k, val: append([]byte{}, v...)})
}

func (w *memWriter) del(k []byte) { w.ops = append(w.ops, memOp{key: k}) }

func (w *memWriter) PutSession(s *Session) {
	w.set(clientKey(nil, kindSession, s.ClientID), encodeSession(nil, s))
}

func (w *memWriter) DeleteSession(clientID string) {
	for _, kind := range []byte{kindDelivery, kindSent, kindAwait} {
		k := clientKey(nil, kind, clientID)
		w.ops = append(w.ops, memOp{key: k, end: prefixEnd(k)})
	}
	w.del(clientKey(nil, kindSession, clientID))
}

func (w *memWriter) PutDelivery(clientID string, d Delivery) {
	w.set(seqKey(nil, kindDelivery, clientID, d.Seq), encodeDelivery(nil, &d))
}

func (w *memWriter) MarkSent(clientID string, seq uint64, pid uint16, state uint8) {
	w.set(seqKey(nil, kindSent, clientID, seq), encodeSent(nil, pid, state))
}

func (w *memWriter) DeleteDelivery(clientID string, seq uint64) {
	w.del(seqKey(nil, kindDelivery, clientID, seq))
	w.del(seqKey(nil, kindSent, clientID, seq))
}

func (w *memWriter) PutAwaitRel(clientID string, id uint16) {
	w.set(awaitKey(nil, clientID, id), nil)
}

func (w *memWriter) DeleteAwaitRel(clientID string, id uint16) { w.del(awaitKey(nil, clientID, id)) }

func (w *memWriter) PutRetained(m Message) {
	w.set(append([]byte{kindRetained}, m.Topic...), encodeRetained(nil, &m))
}

func (w *memWriter) DeleteRetained(topic []byte) {
	w.del(append([]byte{kindRetained}, topic...))
}

func (w *memWriter) PutMark(name string, v []byte) {
	w.set(markKey(nil, name), encodeMark(nil, v))
}

func (w *memWriter) Dirty() bool { return len(w.ops) > 0 }

func (w *memWriter) Commit(bool) error {
	w.m.mu.Lock()
	defer w.m.mu.Unlock()
	for _, op := range w.ops {
		switch {
		case op.end != nil:
			for k := range w.m.kv {
				if k >= string(op.key) && k < string(op.end) {
					delete(w.m.kv, k)
				}
			}
		case op.val != nil:
			w.m.kv[string(op.key)] = op.val
		default:
			delete(w.m.kv, string(op.key))
		}
	}
	clear(w.ops)
	w.ops = w.ops[:0]
	return nil
}
