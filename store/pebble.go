package store

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/rs/zerolog"
)

// Pebble is the Store on an embedded Pebble database in one directory.
// Every change is a record in Pebble's write-ahead log; a syncing Commit
// fsyncs the log once for every writer that commits at the same moment.
// OpenPebble (pebble_open.go) says how a directory becomes one, and what
// happens to one that is in use or damaged.
type Pebble struct {
	db   *pebble.DB
	lock *pebble.Lock // the directory's, held from before Open to Close
	dir  string
	log  zerolog.Logger
	opts PebbleOptions
	// setAside is the error that made OpenPebble set the directory aside
	// and salvage it, reported by Load.
	setAside error
	closed   bool
	// damaged is set when Pebble finds a block it cannot read (a checksum
	// mismatch, a truncated file): Load then salvages (or refuses).
	damaged atomic.Bool
}

// pebbleLogger sends Pebble's log to zerolog: its chatter (flushes,
// compactions) at debug level. Its fatal errors panic rather than exit,
// so that Open can recover from them.
type pebbleLogger struct{ log zerolog.Logger }

func (l pebbleLogger) Infof(format string, args ...any) {
	if l.log.Debug().Enabled() {
		l.log.Debug().Str("component", "pebble").Msgf(format, args...)
	}
}

func (l pebbleLogger) Errorf(format string, args ...any) {
	l.log.Error().Str("component", "pebble").Msgf(format, args...)
}

func (l pebbleLogger) Fatalf(format string, args ...any) {
	l.log.Error().Str("component", "pebble").Msgf(format, args...)
	panic(newFatal(format, args))
}

// fatalError is what Fatalf panics with: its message, and the errors among
// its arguments, so that an error of the operating system behind it (a
// full disk while writing the manifest) is still seen as one (isDamage).
type fatalError struct {
	msg  string
	errs []error
}

func newFatal(format string, args []any) *fatalError {
	f := &fatalError{msg: fmt.Sprintf(format, args...)}
	for _, a := range args {
		if err, ok := a.(error); ok {
			f.errs = append(f.errs, err)
		}
	}
	return f
}

func (f *fatalError) Error() string   { return f.msg }
func (f *fatalError) Unwrap() []error { return f.errs }

// recovered turns what Pebble panicked with into an error, keeping a
// fatalError's errors.
func recovered(r any) error {
	if err, ok := r.(error); ok {
		return fmt.Errorf("pebble: %w", err)
	}
	return fmt.Errorf("pebble: %v", r)
}

// NewWriter implements Store.
func (p *Pebble) NewWriter() Writer { return &pebbleWriter{db: p.db, b: p.db.NewBatch()} }

// Mark implements Store.
func (p *Pebble) Mark(name string) ([]byte, error) {
	v, closer, err := p.db.Get(markKey(nil, name))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("store: reading mark %q: %w", name, err)
	}
	defer closer.Close()
	return decodeMark(v)
}

// Empty implements Store: one iterator per kind of state record, each
// asked for its first key.
func (p *Pebble) Empty() (bool, error) {
	for _, kind := range stateKinds {
		it, err := p.db.NewIter(&pebble.IterOptions{LowerBound: []byte{kind}, UpperBound: []byte{kind + 1}})
		if err != nil {
			return false, fmt.Errorf("store: %w", err)
		}
		found := it.First()
		if err := errors.Join(it.Error(), it.Close()); err != nil {
			return false, fmt.Errorf("store: %w", err)
		}
		if found {
			return false, nil
		}
	}
	return true, nil
}

// Sync implements Store.
func (p *Pebble) Sync() error { return p.db.LogData(nil, pebble.Sync) }

// Close implements Store. Call it once no writer is in use; later calls
// do nothing.
func (p *Pebble) Close() error {
	if p.closed {
		return nil
	}
	p.closed = true
	var err error
	if p.db != nil {
		err = errors.Join(p.Sync(), p.db.Close())
	}
	if p.lock != nil {
		err = errors.Join(err, p.lock.Close())
	}
	return err
}

// Load implements Store. Each kind of record is read with its own
// iterator, so an unreadable part of one kind costs only the rest of that
// kind. A store found damaged — a block Pebble cannot read, or records
// that do not decode — is salvaged (salvage) or, with OnDamage Refuse,
// left as it is: Load returns a *DamagedError and deletes nothing.
func (p *Pebble) Load(l Loader) error {
	if p.setAside != nil {
		l.Corrupt("data directory", p.setAside)
	}
	cl := &countingLoader{Loader: l}
	var drops, bad [][]byte
	load(p, cl,
		func(k []byte) { drops = append(drops, append([]byte(nil), k...)) },
		func(k []byte) { bad = append(bad, append([]byte(nil), k...)) })
	if p.damaged.Load() || cl.corrupt > 0 {
		if p.opts.OnDamage == Refuse {
			return &DamagedError{Dir: p.dir, Err: fmt.Errorf("%d records or parts could not be read; the first: %w", cl.corrupt, cl.first)}
		}
		return p.salvage(append(drops, bad...))
	}
	del := p.db.NewBatch()
	defer del.Close()
	for _, k := range drops {
		_ = del.Delete(k, nil)
	}
	return del.Commit(pebble.Sync)
}

// countingLoader counts what Load reports to Corrupt.
type countingLoader struct {
	Loader
	corrupt int
	first   error
}

func (c *countingLoader) Corrupt(what string, err error) {
	if c.corrupt == 0 {
		c.first = fmt.Errorf("%s: %w", what, err)
	}
	c.corrupt++
	c.Loader.Corrupt(what, err)
}

// salvage copies every record that can still be read, but those in skip
// (refused by the Loader, or not decodable), into a fresh store, which
// takes the directory's place; the damaged one is kept as it is, renamed to
// dir.damaged-<time>, and named in the log. A damaged store left in place
// would fail again at each read of the bad block, and its compactions
// with it.
func (p *Pebble) salvage(skipKeys [][]byte) error {
	skip := make(map[string]bool, len(skipKeys))
	for _, k := range skipKeys {
		skip[string(k)] = true
	}
	tmp := p.dir + ".salvage-" + stamp(time.Now())
	fresh, err := p.open(tmp, nil)
	if err != nil {
		return fmt.Errorf("store: salvage: %w", err)
	}
	copied, err := copyRecords(fresh, p.db, skip)
	err = errors.Join(err, markStore(tmp), fresh.Close())
	_ = p.db.Close() // damaged: whatever it says
	p.db = nil
	if err != nil {
		_ = os.RemoveAll(tmp) // this call's own, and nothing moved yet
		return fmt.Errorf("store: salvage into %s: %w", tmp, err)
	}
	// Renaming the directory moves its lock file with it; the lock is
	// released once the fresh store is in place.
	aside, err := setAside(p.dir)
	if err != nil {
		return fmt.Errorf("store: salvage: %w (the salvaged copy is in %s)", err, tmp)
	}
	if err := os.Rename(tmp, p.dir); err != nil {
		return fmt.Errorf("store: salvage: %w (the damaged store is in %s, the salvaged copy in %s)", err, aside, tmp)
	}
	if err := returnClusterDir(aside, p.dir); err != nil {
		return fmt.Errorf("store: salvage: %w (the damaged store is in %s)", err, aside)
	}
	_ = p.lock.Close()
	p.lock = nil
	p.log.Error().Str("dir", p.dir).Str("damaged_kept_as", aside).Int("records_kept", copied).
		Msg("store damaged: what could be read was copied to a fresh store; the damaged one is kept")
	p.damaged.Store(false)
	if p.lock, err = pebble.LockDirectory(p.dir, vfs.Default); err != nil {
		return fmt.Errorf("store: after salvage: %w", err)
	}
	if p.db, err = p.open(p.dir, p.lock); err != nil {
		return fmt.Errorf("store: after salvage: %w", err)
	}
	return nil
}

// copyRecords copies every record of src that can be read, but those in
// skip, into dst, and syncs it. It reports how many it copied. Each first
// key byte (a record kind, known or not) is read with its own iterator: an
// unreadable block ends the copy of its range only (the rest of that range
// is in the kept original).
func copyRecords(dst, src *pebble.DB, skip map[string]bool) (int, error) {
	b := dst.NewBatch()
	defer b.Close()
	copied := 0
	for first := 0; first < 256; first++ {
		opts := &pebble.IterOptions{LowerBound: []byte{byte(first)}}
		if first < 255 {
			opts.UpperBound = []byte{byte(first + 1)}
		}
		it, err := src.NewIter(opts)
		if err != nil {
			continue
		}
		for ok := it.First(); ok; ok = it.Next() {
			v, err := it.ValueAndErr()
			if err != nil || skip[string(it.Key())] {
				continue
			}
			_ = b.Set(it.Key(), v, nil)
			copied++
		}
		_ = it.Close()
	}
	return copied, b.Commit(pebble.Sync)
}

// scan calls fn for each record of kind in key order. An iterator error —
// an unreadable block — ends the scan of that kind and is reported.
func (p *Pebble) scan(l Loader, kind byte, what string, fn func(k, v []byte)) {
	it, err := p.db.NewIter(&pebble.IterOptions{LowerBound: []byte{kind}, UpperBound: []byte{kind + 1}})
	if err != nil {
		l.Corrupt(what, err)
		return
	}
	for ok := it.First(); ok; ok = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			p.damaged.Store(true)
			l.Corrupt(what, err)
			continue
		}
		fn(it.Key(), v)
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		p.damaged.Store(true)
		l.Corrupt(what+" (the rest of them)", err)
	}
}

// pebbleWriter gathers changes in a Pebble batch.
type pebbleWriter struct {
	db       *pebble.DB
	b        *pebble.Batch
	key, val []byte // scratch: the batch copies what it is given
}

func (w *pebbleWriter) set() {
	_ = w.b.Set(w.key, w.val, nil) // errors only on a closed batch
}

func (w *pebbleWriter) PutSession(s *Session) {
	w.key = clientKey(w.key[:0], kindSession, s.ClientID)
	w.val = encodeSession(w.val[:0], s)
	w.set()
}

func (w *pebbleWriter) DeleteSession(clientID string) {
	for _, kind := range []byte{kindDelivery, kindSent, kindAwait} {
		w.key = clientKey(w.key[:0], kind, clientID)
		_ = w.b.DeleteRange(w.key, prefixEnd(w.key), nil)
	}
	w.key = clientKey(w.key[:0], kindSession, clientID)
	_ = w.b.Delete(w.key, nil)
}

func (w *pebbleWriter) PutDelivery(clientID string, d Delivery) {
	w.key = seqKey(w.key[:0], kindDelivery, clientID, d.Seq)
	w.val = encodeDelivery(w.val[:0], &d)
	w.set()
}

func (w *pebbleWriter) MarkSent(clientID string, seq uint64, pid uint16, state uint8) {
	w.key = seqKey(w.key[:0], kindSent, clientID, seq)
	w.val = encodeSent(w.val[:0], pid, state)
	w.set()
}

func (w *pebbleWriter) DeleteDelivery(clientID string, seq uint64) {
	w.key = seqKey(w.key[:0], kindDelivery, clientID, seq)
	_ = w.b.Delete(w.key, nil)
	w.key[0] = kindSent
	_ = w.b.Delete(w.key, nil)
}

func (w *pebbleWriter) PutAwaitRel(clientID string, id uint16) {
	w.key = awaitKey(w.key[:0], clientID, id)
	_ = w.b.Set(w.key, nil, nil)
}

func (w *pebbleWriter) DeleteAwaitRel(clientID string, id uint16) {
	w.key = awaitKey(w.key[:0], clientID, id)
	_ = w.b.Delete(w.key, nil)
}

func (w *pebbleWriter) PutRetained(m Message) {
	w.key = append(append(w.key[:0], kindRetained), m.Topic...)
	w.val = encodeRetained(w.val[:0], &m)
	w.set()
}

func (w *pebbleWriter) DeleteRetained(topic []byte) {
	w.key = append(append(w.key[:0], kindRetained), topic...)
	_ = w.b.Delete(w.key, nil)
}

func (w *pebbleWriter) PutMark(name string, v []byte) {
	w.key = markKey(w.key[:0], name)
	w.val = encodeMark(w.val[:0], v)
	w.set()
}

func (w *pebbleWriter) Dirty() bool { return !w.b.Empty() }

func (w *pebbleWriter) Commit(sync bool) error {
	opts := pebble.NoSync
	if sync {
		opts = pebble.Sync
	}
	if w.b.Empty() {
		if !sync {
			return nil
		}
		return w.db.LogData(nil, pebble.Sync)
	}
	err := w.b.Commit(opts)
	w.b.Reset()
	return err
}
