package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/rs/zerolog"
)

// Pebble is the Store on an embedded Pebble database in one directory.
// Every change is a record in Pebble's write-ahead log; a syncing Commit
// fsyncs the log once for every writer that commits at the same moment.
type Pebble struct {
	db  *pebble.DB
	dir string
	log zerolog.Logger
	// setAside is the error that made Open move an unreadable directory
	// aside, reported by Load.
	setAside error
	closed   bool
	// damaged is set when Pebble finds a block it cannot read (a checksum
	// mismatch, a truncated file): Load then copies what it can read into
	// a fresh store.
	damaged atomic.Bool
}

// OpenPebble opens (or creates) the store in dir. A directory Pebble
// cannot open — a corrupted or truncated manifest, say — is renamed to
// dir.unreadable-<unix time> and a new one started: the broker comes up,
// and Load reports what was lost.
func OpenPebble(dir string, log zerolog.Logger) (*Pebble, error) {
	p := &Pebble{dir: dir, log: log}
	db, err := p.open(dir)
	if err != nil {
		// The OPTIONS files only record the settings of an earlier open:
		// a damaged one must not cost the data. Pebble writes a new one.
		if olds, _ := filepath.Glob(filepath.Join(dir, "OPTIONS-*")); len(olds) > 0 {
			for _, f := range olds {
				_ = os.Remove(f)
			}
			if db, err = p.open(dir); err == nil {
				log.Error().Str("dir", dir).Msg("store: unreadable OPTIONS file removed")
			}
		}
	}
	if err != nil {
		aside := dir + ".unreadable-" + strconv.FormatInt(time.Now().Unix(), 10)
		if rerr := os.Rename(dir, aside); rerr != nil {
			return nil, fmt.Errorf("store: %s: %w (and moving it aside failed: %v)", dir, err, rerr)
		}
		log.Error().Err(err).Str("dir", dir).Str("moved_to", aside).Msg("store unreadable: moved aside, starting empty")
		p.setAside = fmt.Errorf("%s unreadable, moved to %s: %w", dir, aside, err)
		if db, err = p.open(dir); err != nil {
			return nil, fmt.Errorf("store: %s: %w", dir, err)
		}
	}
	p.db = db
	return p, nil
}

// open opens dir, turning a panic from Pebble's fatal-error path into an
// error. Damage Pebble finds in a file later (by default fatal) is logged
// and marks the store damaged instead.
func (p *Pebble) open(dir string) (db *pebble.DB, err error) {
	defer func() {
		if r := recover(); r != nil {
			db, err = nil, fmt.Errorf("pebble: %v", r)
		}
	}()
	el := &pebble.EventListener{DataCorruption: func(info pebble.DataCorruptionInfo) {
		p.damaged.Store(true)
		p.log.Error().Err(info.Details).Str("file", info.Path).Msg("store: damaged file")
	}}
	return pebble.Open(dir, &pebble.Options{Logger: pebbleLogger{p.log}, EventListener: el})
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
	panic(fmt.Sprintf(format, args...))
}

// NewWriter implements Store.
func (p *Pebble) NewWriter() Writer { return &pebbleWriter{db: p.db, b: p.db.NewBatch()} }

// Sync implements Store.
func (p *Pebble) Sync() error { return p.db.LogData(nil, pebble.Sync) }

// Close implements Store. Call it once no writer is in use; later calls
// do nothing.
func (p *Pebble) Close() error {
	if p.closed {
		return nil
	}
	p.closed = true
	return errors.Join(p.Sync(), p.db.Close())
}

// Load implements Store. Each kind of record is read with its own
// iterator, so an unreadable part of one kind costs only the rest of that
// kind.
func (p *Pebble) Load(l Loader) error {
	if p.setAside != nil {
		l.Corrupt("data directory", p.setAside)
	}
	var drops [][]byte
	load(p, l, func(k []byte) { drops = append(drops, append([]byte(nil), k...)) })
	if p.damaged.Load() {
		return p.salvage(drops)
	}
	del := p.db.NewBatch()
	defer del.Close()
	for _, k := range drops {
		_ = del.Delete(k, nil)
	}
	return del.Commit(pebble.Sync)
}

// salvage copies every record that can still be read, but those in drops,
// into a fresh store, which takes the directory's place; the damaged one
// is moved to dir.unreadable-<unix time>. A damaged store left in place
// would fail again at each read of the bad block, and its compactions
// with it.
func (p *Pebble) salvage(drops [][]byte) error {
	skip := make(map[string]bool, len(drops))
	for _, k := range drops {
		skip[string(k)] = true
	}
	tmp := p.dir + ".salvage"
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("store: salvage: %w", err)
	}
	fresh, err := p.open(tmp)
	if err != nil {
		return fmt.Errorf("store: salvage: %w", err)
	}
	b := fresh.NewBatch()
	copied := 0
	for _, kind := range []byte{kindSession, kindDelivery, kindSent, kindAwait, kindRetained} {
		it, err := p.db.NewIter(&pebble.IterOptions{LowerBound: []byte{kind}, UpperBound: []byte{kind + 1}})
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
		_ = it.Close() // its error was reported by Load
	}
	err = errors.Join(b.Commit(pebble.Sync), fresh.Close())
	_ = p.db.Close() // damaged: whatever it says
	if err != nil {
		return fmt.Errorf("store: salvage: %w", err)
	}
	aside := p.dir + ".unreadable-" + strconv.FormatInt(time.Now().Unix(), 10)
	if err := os.Rename(p.dir, aside); err != nil {
		return fmt.Errorf("store: salvage: %w", err)
	}
	if err := os.Rename(tmp, p.dir); err != nil {
		return fmt.Errorf("store: salvage: %w", err)
	}
	p.log.Error().Str("dir", p.dir).Str("moved_to", aside).Int("records_kept", copied).
		Msg("store damaged: what could be read was copied to a fresh store")
	p.damaged.Store(false)
	if p.db, err = p.open(p.dir); err != nil {
		return fmt.Errorf("store: after salvage: %w", err)
	}
	return nil
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
