package store

import (
	"errors"
	"fmt"
	"github.com/shoalmq/shoal/internal/enum"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"
)

// How OpenPebble treats a directory (STYLE item 30: never touch what you
// did not prove is yours):
//
//   - A directory that holds anything but a store's files is not opened:
//     *ForeignError. data_dir pointed at a home directory must not fill it
//     with Pebble files, let alone be salvaged.
//   - A store another process has open is not opened: *InUseError, with
//     that process's pid. Pebble locks its directory with a POSIX record
//     lock on LOCK; OpenPebble takes that lock first, so that "in use" is
//     known before anything else is tried, and asks the kernel who holds it.
//   - An error from the operating system (permissions, a full disk, too
//     many open files) or a store written by a newer release is returned
//     as it is. It says nothing about the data.
//   - Anything else Pebble refuses — a malformed manifest, a table whose
//     size does not match it, a damaged OPTIONS file — is damage. With
//     OnDamage Refuse OpenPebble returns *DamagedError and changes nothing.
//     With Salvage (the default) the directory is renamed, whole and as it
//     was, to dir.damaged-<time>, a fresh store is made in dir, and every
//     record that a working copy of the damaged one still yields is copied
//     into it; the log names the kept directory.

// OnDamage says what the store does when it finds itself damaged.
type OnDamage uint8

const (
	// Salvage (the default) copies what can still be read into a fresh
	// store and keeps the damaged directory beside it, renamed: the broker
	// starts, and nothing is deleted.
	Salvage OnDamage = iota
	// Refuse fails the open or the load with a *DamagedError and changes
	// nothing, for an operator who would rather look first.
	Refuse
)

// String returns the config-file spelling.
func (d OnDamage) String() string { return onDamages.String(d) }

// ParseOnDamage reads the config-file spelling of a OnDamage.
func ParseOnDamage(s string) (OnDamage, error) { return onDamages.Parse(s) }

// onDamages spells the OnDamage values, in order.
var onDamages = enum.New[OnDamage]("OnDamage", "value", "salvage", "refuse")

// PebbleOptions configures OpenPebble.
type PebbleOptions struct {
	Logger   zerolog.Logger
	OnDamage OnDamage
}

// InUseError: another process has the store open.
type InUseError struct {
	Dir string
	PID int // the holder's, 0 if the kernel did not say
}

func (e *InUseError) Error() string {
	if e.PID == os.Getpid() {
		return fmt.Sprintf("store: %s is already open in this process", e.Dir)
	}
	if e.PID > 0 {
		return fmt.Sprintf("store: %s is in use by another process (pid %d); stop it, or give this one another data_dir", e.Dir, e.PID)
	}
	return fmt.Sprintf("store: %s is in use by another process; stop it, or give this one another data_dir", e.Dir)
}

// DamagedError: the store is damaged and OnDamage is Refuse; nothing was
// changed.
type DamagedError struct {
	Dir string
	Err error
}

func (e *DamagedError) Error() string {
	return fmt.Sprintf("store: %s is damaged (%v); nothing was changed. on_damage: salvage copies what can be read into a fresh store and keeps this directory as it is, renamed", e.Dir, e.Err)
}

func (e *DamagedError) Unwrap() error { return e.Err }

// ForeignError: the directory holds files that are not a store's.
type ForeignError struct {
	Dir  string
	File string // one of them
}

func (e *ForeignError) Error() string {
	return fmt.Sprintf("store: %s holds %q, which is not a file of Shoal's store: refusing to use it as the data directory (point data_dir at an empty or new directory)", e.Dir, e.File)
}

// markerFile, in a store's directory, says that Shoal made it.
const markerFile = "SHOAL-STORE"

// OpenPebble opens (or creates) the store in dir, as described at the top
// of this file.
func OpenPebble(dir string, o PebbleOptions) (*Pebble, error) {
	p := &Pebble{dir: dir, log: o.Logger, opts: o}
	if err := checkNoCutSalvage(dir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	if err := checkStoreDir(dir); err != nil {
		return nil, err
	}
	lock, err := lockStore(dir)
	if err != nil {
		return nil, err
	}
	p.lock = lock
	db, err := p.open(dir, lock)
	if err == nil {
		if err = markStore(dir); err != nil {
			_ = db.Close()
		}
	}
	if err == nil {
		p.db = db
		return p, nil
	}
	if !isDamage(err) {
		_ = lock.Close()
		return nil, fmt.Errorf("store: %s: %w", dir, err)
	}
	if o.OnDamage == Refuse {
		_ = lock.Close()
		return nil, &DamagedError{Dir: dir, Err: err}
	}
	if err := p.salvageOpen(err); err != nil {
		if p.db != nil {
			_ = p.db.Close()
		}
		if p.lock != nil {
			_ = p.lock.Close()
		}
		return nil, err
	}
	return p, nil
}

// open opens dir with lock held (nil: Pebble takes it), turning a panic
// from Pebble's fatal-error path into an error. Damage Pebble finds in a
// file later (by default fatal) is logged and marks the store damaged
// instead.
func (p *Pebble) open(dir string, lock *pebble.Lock) (*pebble.DB, error) {
	return p.openDB(dir, lock, false)
}

// openDB is open, read-only if asked: no flushes, no compactions.
func (p *Pebble) openDB(dir string, lock *pebble.Lock, readOnly bool) (db *pebble.DB, err error) {
	defer func() {
		if r := recover(); r != nil {
			db, err = nil, recovered(r)
		}
	}()
	el := &pebble.EventListener{DataCorruption: func(info pebble.DataCorruptionInfo) {
		p.damaged.Store(true)
		p.log.Error().Err(info.Details).Str("file", info.Path).Msg("store: damaged file")
	}}
	return pebble.Open(dir, &pebble.Options{Logger: pebbleLogger{p.log}, EventListener: el, Lock: lock, ReadOnly: readOnly})
}

// lockStore takes dir's lock — Pebble's own, so that no Pebble can open
// it meanwhile — or says who holds it.
func lockStore(dir string) (*pebble.Lock, error) {
	lock, err := pebble.LockDirectory(dir, vfs.Default)
	if err == nil {
		return lock, nil
	}
	if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EACCES) {
		return nil, &InUseError{Dir: dir, PID: lockHolder(filepath.Join(dir, "LOCK"))}
	}
	if strings.Contains(err.Error(), "held by current process") {
		return nil, &InUseError{Dir: dir, PID: os.Getpid()}
	}
	return nil, fmt.Errorf("store: locking %s: %w", dir, err)
}

// lockHolder asks the kernel which process holds the record lock on file:
// 0 if it cannot tell.
func lockHolder(file string) int {
	f, err := os.Open(file)
	if err != nil {
		return 0
	}
	defer f.Close()
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: io.SeekStart}
	if err := unix.FcntlFlock(f.Fd(), unix.F_GETLK, &lk); err != nil || lk.Type == unix.F_UNLCK {
		return 0
	}
	return int(lk.Pid)
}

// checkStoreDir returns a *ForeignError unless every entry of dir is one a
// store has: Pebble's files and the marker. lost+found is allowed, for a
// data directory that is a file system of its own, and so is ClusterDir.
func checkStoreDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	for _, e := range entries {
		if !storeFile(e.Name(), e.IsDir()) {
			return &ForeignError{Dir: dir, File: e.Name()}
		}
	}
	return nil
}

// checkNoCutSalvage refuses a missing or empty dir that has a damaged
// store kept beside it (dir.damaged-*, dir.salvage-*): a salvage that was
// cut short (a crash between its renames) leaves that, and starting on a
// fresh empty store then would leave the data out of sight.
func checkNoCutSalvage(dir string) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil // reported as what it is by what follows
	default:
		for _, e := range entries {
			if e.Name() != "lost+found" {
				return nil // not empty
			}
		}
	}
	var kept []string
	for _, pat := range []string{".damaged-*", ".salvage-*"} {
		m, _ := filepath.Glob(dir + pat)
		kept = append(kept, m...)
	}
	if len(kept) == 0 {
		return nil
	}
	return fmt.Errorf("store: %s is missing or empty, and %s is beside it: a salvage may have been cut short. Move the store to keep back to %s (or the others out of the way) and start again", dir, strings.Join(kept, ", "), dir)
}

// ClusterDir is the directory of a store's directory (data_dir) where a
// cluster node keeps its JetStream state (package internal/cluster). It is
// not the store's: OpenPebble accepts it, and a salvage leaves it in
// place rather than setting it aside with the damaged store.
const ClusterDir = "cluster"

// storeFile reports whether name is a file Pebble or the store makes in a
// store's directory, or ClusterDir.
func storeFile(name string, isDir bool) bool {
	if isDir {
		return name == "lost+found" || name == ClusterDir
	}
	switch {
	case name == markerFile, name == "LOCK", name == "CURRENT":
		return true
	case strings.HasPrefix(name, "MANIFEST-"), strings.HasPrefix(name, "OPTIONS-"), strings.HasPrefix(name, "marker."):
		return true
	case strings.HasSuffix(name, ".sst"), strings.HasSuffix(name, ".log"), strings.HasSuffix(name, ".blob"), strings.HasSuffix(name, ".dbtmp"):
		return true
	}
	return false
}

// markStore writes dir's marker if it has none.
func markStore(dir string) error {
	path := filepath.Join(dir, markerFile)
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	return os.WriteFile(path, []byte("A Shoal persistent store (Pebble). Do not edit these files.\n"), 0o644)
}

// isDamage tells damage in a store's files from an error of the operating
// system or a store too new for this release, which say nothing of the
// data. An error of the operating system anywhere in err's chain — also
// behind a fatal error of Pebble's (a manifest it could not write for a
// full disk) — is not damage.
func isDamage(err error) bool {
	var pe *fs.PathError
	var errno syscall.Errno
	switch {
	case errors.As(err, &pe), errors.As(err, &errno):
		return false
	case strings.Contains(err.Error(), "format major version"):
		return false // written by a newer release
	}
	return true
}

// stamp is a time for a directory name: sortable, UTC, no colons.
func stamp(t time.Time) string { return t.UTC().Format("20060102T150405.000Z") }

// setAside renames dir, whole, to dir.damaged-<time> and returns the new
// name, absolute if it can be: it goes into the log for an operator who
// may not know the broker's working directory. The caller puts a
// directory back in dir's place, then gives ClusterDir back to it
// (returnClusterDir).
func setAside(dir string) (string, error) {
	aside := dir + ".damaged-" + stamp(time.Now())
	if err := os.Rename(dir, aside); err != nil {
		return "", err
	}
	if abs, err := filepath.Abs(aside); err == nil {
		aside = abs
	}
	return aside, nil
}

// returnClusterDir moves ClusterDir, if the damaged store set aside in
// aside has one, back into dir, the fresh store: the cluster's state is
// not the store's, nor damaged with it.
func returnClusterDir(aside, dir string) error {
	err := os.Rename(filepath.Join(aside, ClusterDir), filepath.Join(dir, ClusterDir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// salvageOpen deals with a directory Pebble cannot open (cause): the
// directory is kept, renamed; a fresh store is made in its place; and
// whatever a working copy of the damaged one yields is copied in. The
// working copy — the damaged files but the OPTIONS ones, which only record
// the settings of an earlier open — is this call's own and removed after.
func (p *Pebble) salvageOpen(cause error) error {
	dir := p.dir
	aside, err := setAside(dir) // the lock file moves with it
	if err != nil {
		return fmt.Errorf("store: %s is damaged (%v), and setting it aside failed: %w", dir, cause, err)
	}
	// Pebble knows its locks by path: the one taken on dir must go before
	// dir can be locked again. Nothing opens the renamed directory.
	_ = p.lock.Close()
	p.lock = nil
	keptIn := fmt.Sprintf(" (the damaged store is kept in %s)", aside)
	if err := os.Mkdir(dir, 0o755); err != nil {
		return fmt.Errorf("store: salvage: %w%s", err, keptIn)
	}
	if err := returnClusterDir(aside, dir); err != nil {
		return fmt.Errorf("store: salvage: %w%s", err, keptIn)
	}
	if p.lock, err = lockStore(dir); err != nil {
		return fmt.Errorf("%w%s", err, keptIn)
	}
	if p.db, err = p.open(dir, p.lock); err != nil {
		return fmt.Errorf("store: salvage: %w%s", err, keptIn)
	}
	if err := markStore(dir); err != nil {
		return fmt.Errorf("store: salvage: %w%s", err, keptIn)
	}

	copied, readErr := 0, error(nil)
	work := aside + ".work"
	if readErr = copyForSalvage(aside, work); readErr == nil {
		var old *pebble.DB
		if old, readErr = (&Pebble{log: p.log}).openDB(work, nil, true); readErr == nil {
			copied, readErr = copyRecords(p.db, old, nil)
			_ = old.Close()
		}
	}
	_ = os.RemoveAll(work)
	ev := p.log.Error().Err(cause).Str("dir", dir).Str("damaged_kept_as", aside).Int("records_kept", copied)
	if readErr != nil {
		ev = ev.AnErr("salvage_error", readErr)
	}
	ev.Msg("store damaged: what could be read was copied to a fresh store; the damaged one is kept")
	p.setAside = fmt.Errorf("%s could not be opened (%v); kept as %s, %d records copied from it", dir, cause, aside, copied)
	return nil
}

// copyForSalvage fills work with a copy of the store files in src but its
// lock and OPTIONS files. Tables, never changed once written, are hard
// links; the rest is copied, as Pebble may write to it on open.
func copyForSalvage(src, work string) error {
	if err := os.Mkdir(work, 0o755); err != nil {
		return err
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || name == "LOCK" || strings.HasPrefix(name, "OPTIONS-") {
			continue
		}
		from, to := filepath.Join(src, name), filepath.Join(work, name)
		if strings.HasSuffix(name, ".sst") && os.Link(from, to) == nil {
			continue
		}
		if err := copyFile(from, to); err != nil {
			return err
		}
	}
	return nil
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	return errors.Join(err, out.Close())
}
