package replica

import (
	"encoding/binary"
	"errors"
	"slices"

	"github.com/shoalmq/shoal/store"
)

// What a writer gathers for the stream, besides its local writer's batch.
const (
	opPutSession = iota
	opDeleteSession
	opPutDelivery
	opMarkSent
	opDeleteDelivery
	opPutAwaitRel
	opDeleteAwaitRel
	opReceived
)

// op is one change to a session: kind, the client id, the record's number
// (a delivery's Seq, an awaited packet id) and its encoding, data[from:to]
// of the writer's buffer.
type op struct {
	kind     uint8
	clientID string
	n        uint64
	from, to int
}

// writer is a Store's writer: the local store's, and the changes to copy,
// published when it commits. One goroutine's, as the local writer is.
type writer struct {
	store.Writer
	r    *Store
	ops  []op
	data []byte
	subj []byte // scratch
	// strict: a syncing Commit fails when the stream did not confirm a
	// change (CopyWriter's: the stream is all it writes).
	strict bool
	// shelf: ShelfWriter's.
	shelf bool
	// anew: a repair's (RepairWith). The session it writes replaces
	// the older records of its generation, on condition (expect) that
	// the session record is still the one the repair read.
	anew   bool
	expect uint64
	// unheld are the sessions whose changes since the last Commit were
	// not published because another node holds them by now (learnt as
	// the loop went on: a rescuer took them while this node was frozen,
	// or a client took its session elsewhere): a syncing Commit returns
	// them in a store.UnvouchedError.
	unheld []string
}

func (w *writer) add(kind uint8, clientID string, n uint64, from int) {
	w.ops = append(w.ops, op{kind: kind, clientID: clientID, n: n, from: from, to: len(w.data)})
}

func (w *writer) PutSession(s *store.Session) {
	w.Writer.PutSession(s)
	from := len(w.data)
	w.data = store.AppendSession(w.data, s)
	w.add(opPutSession, s.ClientID, 0, from)
}

func (w *writer) DeleteSession(clientID string) {
	w.Writer.DeleteSession(clientID)
	w.add(opDeleteSession, clientID, 0, len(w.data))
}

func (w *writer) PutDelivery(clientID string, d store.Delivery) {
	w.Writer.PutDelivery(clientID, d)
	from := len(w.data)
	w.data = binary.AppendUvarint(w.data, d.Msg.Origin) // the copy's own, before the record
	w.data = store.AppendDelivery(w.data, &d)
	w.add(opPutDelivery, clientID, d.Seq, from)
	if d.State != 0 {
		from = len(w.data)
		w.data = store.AppendSent(w.data, d.PacketID, d.State)
		w.add(opMarkSent, clientID, d.Seq, from)
	}
}

func (w *writer) MarkSent(clientID string, seq uint64, packetID uint16, state uint8) {
	w.Writer.MarkSent(clientID, seq, packetID, state)
	from := len(w.data)
	w.data = store.AppendSent(w.data, packetID, state)
	w.add(opMarkSent, clientID, seq, from)
}

func (w *writer) DeleteDelivery(clientID string, seq uint64) {
	w.Writer.DeleteDelivery(clientID, seq)
	w.add(opDeleteDelivery, clientID, seq, len(w.data))
}

func (w *writer) PutAwaitRel(clientID string, id uint16) {
	w.Writer.PutAwaitRel(clientID, id)
	w.add(opPutAwaitRel, clientID, uint64(id), len(w.data))
}

func (w *writer) DeleteAwaitRel(clientID string, id uint16) {
	w.Writer.DeleteAwaitRel(clientID, id)
	w.add(opDeleteAwaitRel, clientID, uint64(id), len(w.data))
}

// Received implements store.ReceiptWriter: the copy keeps origin for
// receivedTTL past rescue_after (Store.receipts), under the session's
// generation.
func (w *writer) Received(clientID string, origin uint64) {
	w.add(opReceived, clientID, origin, len(w.data))
}

func (w *writer) Dirty() bool { return len(w.ops) > 0 || w.Writer.Dirty() }

// Commit commits the local changes, then publishes the changes to the
// sessions this node holds; with sync, it returns once the stream has
// confirmed them and every change published before (a change it could
// not confirm is counted in Store.Failures: on this node's disk only,
// until the repair). A syncing Commit returns store.ErrUnvouched when
// the node does not serve as the wait ends (Holder.Serving) and some
// publish, this writer's or another's, came after the last one a wait
// ended on while it served (Store.vouched): frozen or cut off meanwhile,
// it cannot tell whether another node took the sessions on without them.
func (w *writer) Commit(sync bool) error {
	if err := w.Writer.Commit(sync); err != nil {
		return err
	}
	r := w.r
	r.mu.Lock()
	for i := range w.ops {
		w.publishLocked(&w.ops[i])
	}
	clear(w.ops) // the client ids
	w.ops, w.data = w.ops[:0], w.data[:0]
	n := r.published
	r.mu.Unlock()
	unheld := w.unheld
	w.unheld = w.unheld[:0]
	if !sync {
		return nil
	}
	failed := r.Failures.Load()
	r.wait(n, w.strict)
	if w.strict {
		if r.Failures.Load() != failed {
			return errNotReplicated
		}
		return nil
	}
	if r.holder.Serving() {
		r.vouch(n)
		if len(unheld) > 0 {
			return &store.UnvouchedError{Clients: slices.Clone(unheld)}
		}
		return nil
	}
	if n > r.vouched.Load() {
		// The wait ended on a node frozen meanwhile (SIGSTOP: the
		// confirmations came, or failed, as it thawed), or cut off
		// (Hold): a rescuer may have read the copy before these
		// publishes landed in it, or without them. What waited for
		// them must not go out (persist drops it).
		return store.ErrUnvouched
	}
	if len(unheld) > 0 {
		return &store.UnvouchedError{Clients: slices.Clone(unheld)}
	}
	return nil
}

// errNotReplicated fails a strict writer's syncing Commit: some change
// since the last one may not be in the stream.
var errNotReplicated = errors.New("replica: the stream did not confirm every change")

// publishLocked publishes o, if its session is this node's to write.
// w.r.mu must be held.
func (w *writer) publishLocked(o *op) {
	r := w.r
	epoch, mine := r.holder.Mine(o.clientID)
	gen, ok := r.gens[o.clientID]
	if w.shelf {
		// A rescuer's: it writes the sessions it took on (Continue)
		// until it hands them over (Forget), whatever claim came since.
		mine = ok
	}
	if ok && !mine && o.kind != opDeleteSession {
		// Held elsewhere since this node last wrote it: what waits
		// for this change must not go out (Commit). A rescuer read the
		// copy without it (a PUBREL sent then, for a PUBREC not in the
		// copy, had the rescuer send the PUBLISH again: a freeze run's
		// QoS 2 duplicates).
		if k := len(w.unheld); k == 0 || w.unheld[k-1] != o.clientID {
			w.unheld = append(w.unheld, o.clientID)
		}
	}
	switch o.kind {
	case opPutSession:
		if !mine {
			return
		}
		fresh := !ok
		if fresh { // begun here: every older generation is another node's, or gone
			gen = epoch
			r.gens[o.clientID] = gen
		}
		rec := binary.AppendUvarint(make([]byte, 0, 10+o.to-o.from), gen)
		rec = append(rec, w.data[o.from:o.to]...)
		var p purge
		switch {
		case fresh: // every older generation is another node's, or gone
			p = purge{client: o.clientID, below: true}
			r.log.Debug().Str("client", o.clientID).Uint64("gen", gen).
				Msg("replica: a session begun here; its older records go")
		case w.anew: // a repair: this generation's older records
			p = purge{client: o.clientID, gen: gen, below: true}
		}
		w.subj = subjectOf(w.subj[:0], o.clientID, 0, 0, 0)
		var expect uint64
		if w.anew && !fresh {
			expect = w.expect
		}
		r.publishIfLocked(o.clientID, w.subj, rec, 0, p, expect)
		return
	case opDeleteSession:
		delete(r.gens, o.clientID)
		if !ok || !mine {
			return // handed over: the session goes on elsewhere
		}
		w.subj = subjectOf(w.subj[:0], o.clientID, 0, 0, 0)
		r.publishLocked(o.clientID, w.subj, nil, tombstoneTTL, purge{client: o.clientID, gen: gen})
		return
	}
	if !ok || !mine {
		return
	}
	var kind byte
	switch o.kind {
	case opPutDelivery, opDeleteDelivery:
		kind = 'd'
	case opMarkSent:
		kind = 'm'
	case opReceived:
		kind = 'o'
	default:
		kind = 'r'
	}
	w.subj = subjectOf(w.subj[:0], o.clientID, gen, kind, o.n)
	switch o.kind {
	case opPutDelivery, opMarkSent:
		r.publishLocked(o.clientID, w.subj, append([]byte(nil), w.data[o.from:o.to]...), 0, purge{})
	case opPutAwaitRel:
		r.publishLocked(o.clientID, w.subj, []byte{1}, 0, purge{})
	case opReceived:
		r.publishLocked(o.clientID, w.subj, nil, r.receipts, purge{})
	case opDeleteDelivery:
		r.publishLocked(o.clientID, w.subj, nil, tombstoneTTL, purge{})
		w.subj = subjectOf(w.subj[:0], o.clientID, gen, 'm', o.n)
		r.publishLocked(o.clientID, w.subj, nil, tombstoneTTL, purge{})
	default:
		r.publishLocked(o.clientID, w.subj, nil, tombstoneTTL, purge{})
	}
}

// Continue makes this node write clientID's session on under generation
// gen, the one its records in the stream are under (Read): a node that
// took a session over without adopting it (package cluster's rescue)
// adds to what the last owner wrote.
func (r *Store) Continue(clientID string, gen uint64) {
	r.mu.Lock()
	r.gens[clientID] = gen
	r.mu.Unlock()
}

// Forget drops what this node knows of clientID's session's generation,
// as a session handed over does, without writing anything.
func (r *Store) Forget(clientID string) {
	r.mu.Lock()
	delete(r.gens, clientID)
	r.mu.Unlock()
}

// CopyWriter returns a writer that writes the stream only, not the local
// store: for sessions this node keeps in the stream alone (Continue).
// A syncing Commit of it fails when the stream did not confirm a change
// (this one's, or another writer's meanwhile: the caller keeps what it
// has and tries again).
func (r *Store) CopyWriter() store.Writer { return &writer{Writer: noLocal{}, r: r, strict: true} }

// ShelfWriter returns a CopyWriter for the sessions this node continues
// (Continue) until it forgets them (Forget), whether or not it holds the
// newest claim of them: a rescuer's, which keeps adding to a session
// while the node its client connected to waits for it (package cluster's
// rescue).
func (r *Store) ShelfWriter() store.Writer {
	return &writer{Writer: noLocal{}, r: r, strict: true, shelf: true}
}

// noLocal is a store.Writer that writes nothing.
type noLocal struct{}

func (noLocal) PutSession(*store.Session)              {}
func (noLocal) DeleteSession(string)                   {}
func (noLocal) PutDelivery(string, store.Delivery)     {}
func (noLocal) MarkSent(string, uint64, uint16, uint8) {}
func (noLocal) DeleteDelivery(string, uint64)          {}
func (noLocal) PutAwaitRel(string, uint16)             {}
func (noLocal) DeleteAwaitRel(string, uint16)          {}
func (noLocal) PutRetained(store.Message)              {}
func (noLocal) DeleteRetained([]byte)                  {}
func (noLocal) PutMark(string, []byte)                 {}
func (noLocal) Dirty() bool                            { return false }
func (noLocal) Commit(bool) error                      { return nil }
