package auth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"
)

// DefaultBcryptCost is the bcrypt cost of new password file entries. One
// hash at cost 10 took 54-56 ms on the development machine (AMD EPYC, 2
// vCPUs; BenchmarkBcryptCost: cost 9 26 ms, 11 107 ms, 12 213 ms). That
// makes guessing expensive (OWASP's floor for bcrypt is 10) while a
// reconnect storm of a few hundred clients still clears in seconds; and
// PasswordFile's success cache spares reconnects the hash altogether
// (BenchmarkPasswdCacheHit: 0.6 µs).
const DefaultBcryptCost = 10

// Errors about password files, one per cause. They reach the operator (a
// failed start, a failed reload, the passwd subcommand), never a client,
// inside a *FileError that names the file and the line. Compare with
// errors.Is.
var (
	// ErrPasswdSyntax: a line that is neither blank, nor a comment, nor
	// user:hash.
	ErrPasswdSyntax = &Error{CodeUnspecified, "malformed line, want user:hash"}
	// ErrPasswdUser: a user name that is empty, not UTF-8, contains ':' or
	// control characters, starts with '#' or space, or ends with space.
	ErrPasswdUser = &Error{CodeUnspecified, "invalid user name"}
	// ErrPasswdDuplicate: a user with two lines.
	ErrPasswdDuplicate = &Error{CodeUnspecified, "duplicate user"}
	// ErrPasswdScheme: a hash that is none of bcrypt ($2a$, $2b$, $2y$),
	// argon2id ($argon2id$) or Mosquitto's SHA-512 ($6$) and
	// PBKDF2-SHA512 ($7$).
	ErrPasswdScheme = &Error{CodeUnspecified, "unknown password hash scheme"}
	// ErrPasswdHash: a hash of a known scheme with bad fields.
	ErrPasswdHash = &Error{CodeUnspecified, "malformed password hash"}
	// ErrPasswdNoUser: DeletePassword of a user the file does not have.
	ErrPasswdNoUser = &Error{CodeUnspecified, "no such user in the password file"}
	// ErrPasswdEmpty: SetPassword with an empty password.
	ErrPasswdEmpty = &Error{CodeUnspecified, "empty password"}
	// ErrPasswdTooLong: SetPassword with a password over 72 bytes, which
	// bcrypt would silently cut short.
	ErrPasswdTooLong = &Error{CodeUnspecified, "password longer than 72 bytes"}
	// ErrPasswdCost: SetPassword with a bcrypt cost outside [4, 31].
	ErrPasswdCost = &Error{CodeUnspecified, "bcrypt cost out of range [4, 31]"}
)

// FileError is an error about a password file: which file, which line,
// and what is wrong with it. Err is one of the ErrPasswd values or an I/O
// error; errors.Is and errors.As see through to it.
type FileError struct {
	Path   string
	Line   int    // 1-based; 0 when the error is about the whole file
	Err    error  // the cause
	Detail string // about this occurrence, e.g. the user name; may be ""
}

// Error reads "auth: users.pw:3: duplicate user: \"bob\", first on line 1".
func (e *FileError) Error() string {
	var b strings.Builder
	b.WriteString("auth: ")
	b.WriteString(e.Path)
	if e.Line > 0 {
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(e.Line))
	}
	b.WriteString(": ")
	var ae *Error
	var pe *fs.PathError
	switch {
	case errors.As(e.Err, &ae):
		b.WriteString(ae.Msg)
	case errors.As(e.Err, &pe) && pe.Path == e.Path:
		b.WriteString(pe.Op + ": " + pe.Err.Error()) // the path is said already
	default:
		b.WriteString(e.Err.Error())
	}
	if e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	return b.String()
}

// Unwrap returns Err.
func (e *FileError) Unwrap() error { return e.Err }

// Defaults of PasswordFile's success cache.
const (
	// passwdCacheTTL bounds how long a password that was right stays
	// trusted without a hash. Reload empties the cache, so a changed or
	// deleted entry takes effect at once; the TTL only bounds memory of a
	// password that was right once.
	passwdCacheTTL = 5 * time.Minute
	// passwdCacheSize is the most successes remembered: 4096 entries of
	// about 100 bytes, well under a MiB, covering a reconnect storm of a
	// few thousand devices.
	passwdCacheSize = 4096
)

// PasswordFile authenticates users against a file of "user:hash" lines, in
// the spirit of mosquitto_passwd: one line per user, '#' comments and
// blank lines allowed, blanks around the user name and the hash ignored.
// New entries are bcrypt (SetPassword); argon2id entries in PHC form
// ($argon2id$v=19$m=..,t=..,p=..$salt$hash) and both kinds that
// mosquitto_passwd writes — PBKDF2-SHA512 ($7$, its default since 2.0) and
// salted SHA-512 ($6$, -H sha512, the only one before) — are verified too,
// so files from those tools work unchanged.
//
// A line that cannot be read (no ':', a bad user name, an unknown or
// malformed hash, a user listed twice) costs only its user, as in
// Mosquitto: the file loads without it, and Warnings says which line and
// which user, for the program to log. A file that cannot be read at all
// is an error.
//
// All its methods are safe for concurrent use. Reload swaps in the new
// contents atomically: a running Authenticate finishes against the old.
// The file should be readable by the broker's user only (mode 0600): the
// hashes are slow to guess, not impossible; PasswordFile does not check.
type PasswordFile struct {
	path  string
	table atomic.Pointer[passwdTable]
	key   keyer // keys the success cache; random per PasswordFile

	cacheTTL  time.Duration
	cacheSize int
	verifies  atomic.Int64 // hashes computed, for tests of the cache
}

// passwdTable is one reading of the file. Immutable but for its cache,
// which has its own lock; Reload replaces the whole table, cache and all,
// so a success found against old contents lands in the old cache and is
// forgotten with it.
type passwdTable struct {
	users    map[string]verifier
	decoy    verifier // hashed for unknown users; nil when users is empty
	cache    *answerCache
	warnings []error // the lines skipped, each a *FileError
}

// LoadPasswordFile reads the password file at path. An error (a
// *FileError naming the file) means it could not be read; lines it could
// not use are skipped and reported by Warnings.
func LoadPasswordFile(path string) (*PasswordFile, error) {
	p := &PasswordFile{path: path, key: newKeyer(), cacheTTL: passwdCacheTTL, cacheSize: passwdCacheSize}
	if err := p.Reload(); err != nil {
		return nil, err
	}
	return p, nil
}

// Reload reads the file again. On success it replaces the users, empties
// the success cache and replaces the Warnings; on error (the file cannot
// be read) it keeps the previous contents and returns the error (a
// *FileError), so a SIGHUP with a missing file leaves the broker working.
// Safe for concurrent use with Authenticate.
func (p *PasswordFile) Reload() error {
	f, err := readPasswd(p.path)
	if err != nil {
		return err
	}
	t := &passwdTable{users: f.users, cache: newAnswerCache(p.cacheSize, p.cacheTTL), warnings: f.skipped}
	if len(f.order) > 0 {
		// Hashing an unknown user's password against the first real entry
		// costs what a known user costs (same scheme, same parameters), so
		// timing does not tell who exists. The result is thrown away.
		t.decoy = f.users[f.order[0]]
	}
	p.table.Store(t)
	return nil
}

// Len returns the number of users. Safe for concurrent use.
func (p *PasswordFile) Len() int { return len(p.table.Load().users) }

// Warnings returns the lines of the contents in force that were skipped,
// in file order, each a *FileError naming the line and, where it could be
// read, the user; nil when every line was used. The slice is shared: do
// not modify it. Safe for concurrent use.
func (p *PasswordFile) Warnings() []error { return p.table.Load().warnings }

// Authenticate implements Authenticator. It answers ErrUnknownUser for a
// client without a user name, for one with a certificate identity (the
// broker trusts the certificate itself) and for a user not in the file;
// ErrBadPassword for a known user without a password or with a wrong one;
// nil when the password is right. A success is remembered for five
// minutes, keyed by a keyed hash of user and password, so a reconnect does
// not hash again; failures are not remembered. Unknown users cost a hash
// too, so that response time does not reveal which users exist. It
// returns ErrBackend when ctx is done before it starts (a hash cannot be
// interrupted), and ErrKeyDerivation when PBKDF2 refuses a $7$ entry's
// parameters (FIPS 140-3 mode and a salt under 16 bytes). Safe for
// concurrent use.
func (p *PasswordFile) Authenticate(ctx context.Context, l *Login) error {
	if l.CertIdentity != "" || !l.HasUsername {
		return ErrUnknownUser
	}
	if ctx.Err() != nil {
		return ErrBackend // the client has given up waiting
	}
	t := p.table.Load()
	v, known := t.users[l.Username]
	if !known {
		if t.decoy != nil {
			p.match(t.decoy, l.Password)
		}
		return ErrUnknownUser
	}
	key := p.key.sum(l.Username, string(l.Password))
	if l.HasPassword {
		if hit, _ := t.cache.get(key, time.Now()); hit {
			return nil
		}
	}
	ok, err := p.match(v, l.Password)
	switch {
	case err != nil:
		return ErrKeyDerivation
	case !ok || !l.HasPassword:
		return ErrBadPassword
	}
	t.cache.put(key, nil, time.Now())
	return nil
}

// match hashes password with v's parameters and compares.
func (p *PasswordFile) match(v verifier, password []byte) (bool, error) {
	p.verifies.Add(1)
	return v.match(password)
}

// validUser reports whether name can be a user of a password file: UTF-8
// (MQTT user names are [MQTT-1.5.4-1]), not empty, no ':' (the separator)
// and no control characters (they would hide in a listing), not starting
// with '#' (a comment) and without surrounding space (lines are trimmed).
func validUser(name string) bool {
	if name == "" || !utf8.ValidString(name) || name[0] == '#' ||
		strings.TrimSpace(name) != name {
		return false
	}
	for _, r := range name {
		if r == ':' || unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// newKeyer returns a keyer with a fresh random key.
func newKeyer() keyer {
	var k keyer
	rand.Read(k[:]) // never fails since Go 1.24: it crashes the program instead
	return k
}

// passwdFile is a password file as read: its lines, kept for editing, and
// its users.
type passwdFile struct {
	lines   []string // without their '\n'
	users   map[string]verifier
	order   []string       // users in file order
	index   map[string]int // user -> index in lines
	skipped []error        // lines not used, each a *FileError
}

func readPasswd(path string) (*passwdFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &FileError{Path: path, Err: err}
	}
	return parsePasswd(path, data), nil
}

// parsePasswd parses data, read from path. A line it cannot use is
// skipped and recorded in skipped; so is every line of a user listed
// twice, since which one was meant cannot be known. Messages never quote a
// line or a hash: a mistyped line may be a password.
func parsePasswd(path string, data []byte) *passwdFile {
	f := &passwdFile{users: map[string]verifier{}, index: map[string]int{}}
	if s := strings.TrimSuffix(string(data), "\n"); s != "" {
		f.lines = strings.Split(s, "\n")
	}
	dup := map[string]bool{}
	for i, raw := range f.lines {
		t := strings.TrimSpace(raw) // and a CR before the LF
		if t == "" || t[0] == '#' {
			continue
		}
		skip := func(err error, detail string) {
			f.skipped = append(f.skipped, &FileError{Path: path, Line: i + 1, Err: err, Detail: detail})
		}
		// The last ':' separates: hashes have none, so a user name with
		// one is reported as such rather than as a strange hash. Blanks
		// around either part are not part of it, as in Mosquitto.
		c := strings.LastIndexByte(t, ':')
		if c < 0 {
			skip(ErrPasswdSyntax, "")
			continue
		}
		user, hash := strings.TrimSpace(t[:c]), strings.TrimSpace(t[c+1:])
		who := "user " + strconv.Quote(user)
		if !validUser(user) {
			skip(ErrPasswdUser, strconv.Quote(user))
			continue
		}
		if hash == "" {
			skip(ErrPasswdSyntax, "no hash for "+who)
			continue
		}
		if j, seen := f.index[user]; seen || dup[user] {
			if seen {
				skip(ErrPasswdDuplicate, fmt.Sprintf("%q, first on line %d: both lines skipped", user, j+1))
				delete(f.users, user)
				delete(f.index, user)
				f.order = slices.DeleteFunc(f.order, func(u string) bool { return u == user })
				dup[user] = true
			} else {
				skip(ErrPasswdDuplicate, fmt.Sprintf("%q again: skipped", user))
			}
			continue
		}
		v, detail, err := parseHash(hash)
		if err != nil {
			if detail != "" {
				who += ": " + detail
			}
			skip(err, who)
			continue
		}
		f.users[user] = v
		f.order = append(f.order, user)
		f.index[user] = i
	}
	return f
}

// SetPassword sets user's password in the password file at path, hashed
// with bcrypt at cost (0 means DefaultBcryptCost). It replaces the user's
// line where it stands, or appends one, and keeps every other line,
// comments included. A missing file is created with mode 0600; an existing
// one keeps its mode (not its owner: run it as the file's owner). A file
// with a line LoadPasswordFile would skip is not touched: the first such
// line is the error, to be mended by hand.
//
// The file is replaced atomically (a temporary file in the same
// directory, synced, then renamed over it), so a broker reloading at the
// same moment reads the old file or the new one, never half of one. Two
// editors at once are not serialised: the last rename wins. Errors are
// *FileError naming path. Safe for concurrent use on different files.
func SetPassword(path, user, password string, cost int) error {
	line, err := passwdLine(path, user, password, cost)
	if err != nil {
		return err
	}
	f, target, mode, err := readForEdit(path, true)
	if err != nil {
		return err
	}
	if i, ok := f.index[user]; ok {
		f.lines[i] = line
	} else {
		f.lines = append(f.lines, line)
	}
	return writePasswd(path, target, f.lines, mode)
}

// CreatePasswordFile writes a password file at path holding user alone,
// as SetPassword would hash it, replacing any file there (keeping its
// mode; 0600 for a new file). Replacement is atomic as in SetPassword.
// Errors are *FileError naming path. Safe for concurrent use on different
// files.
func CreatePasswordFile(path, user, password string, cost int) error {
	line, err := passwdLine(path, user, password, cost)
	if err != nil {
		return err
	}
	target, mode, err := editTarget(path, true)
	if err != nil {
		return err
	}
	return writePasswd(path, target, []string{line}, mode)
}

// DeletePassword removes user's line from the password file at path,
// keeping every other line; ErrPasswdNoUser (in a *FileError) when there
// is none. Replacement is atomic as in SetPassword. Safe for concurrent
// use on different files.
func DeletePassword(path, user string) error {
	f, target, mode, err := readForEdit(path, false)
	if err != nil {
		return err
	}
	i, ok := f.index[user]
	if !ok {
		return &FileError{Path: path, Err: ErrPasswdNoUser, Detail: strconv.Quote(user)}
	}
	f.lines = slices.Delete(f.lines, i, i+1)
	return writePasswd(path, target, f.lines, mode)
}

// passwdLine checks a new entry and hashes its password.
func passwdLine(path, user, password string, cost int) (string, error) {
	bad := func(err error, detail string) (string, error) {
		return "", &FileError{Path: path, Err: err, Detail: detail}
	}
	if cost == 0 {
		cost = DefaultBcryptCost
	}
	switch {
	case !validUser(user):
		return bad(ErrPasswdUser, strconv.Quote(user))
	case password == "":
		return bad(ErrPasswdEmpty, "")
	case len(password) > 72:
		return bad(ErrPasswdTooLong, "")
	case cost < bcrypt.MinCost || cost > bcrypt.MaxCost:
		return bad(ErrPasswdCost, strconv.Itoa(cost))
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), cost)
	if err != nil {
		return bad(err, "")
	}
	return user + ":" + string(h), nil
}

// editTarget resolves path to the file to replace (a symbolic link is
// followed, so that the link survives) and the mode the new file gets.
// When path does not exist and missingOK, it is the target itself, 0600.
func editTarget(path string, missingOK bool) (string, fs.FileMode, error) {
	target, err := filepath.EvalSymlinks(path)
	if errors.Is(err, fs.ErrNotExist) && missingOK {
		return path, 0o600, nil
	}
	if err != nil {
		return "", 0, &FileError{Path: path, Err: err}
	}
	fi, err := os.Stat(target)
	if err != nil {
		return "", 0, &FileError{Path: path, Err: err}
	}
	return target, fi.Mode().Perm(), nil
}

// readForEdit reads the file to edit; see editTarget.
func readForEdit(path string, missingOK bool) (*passwdFile, string, fs.FileMode, error) {
	target, mode, err := editTarget(path, missingOK)
	if err != nil {
		return nil, "", 0, err
	}
	data, err := os.ReadFile(target)
	if errors.Is(err, fs.ErrNotExist) && missingOK {
		data, err = nil, nil
	}
	if err != nil {
		return nil, "", 0, &FileError{Path: path, Err: err}
	}
	f := parsePasswd(path, data)
	if len(f.skipped) > 0 {
		return nil, "", 0, f.skipped[0]
	}
	return f, target, mode, nil
}

// writePasswd replaces target (path as the user named it, for errors) by
// lines: a temporary file in the same directory, so that the rename stays
// on one file system, written, synced, renamed over target, and the
// directory synced so that the rename survives a crash.
func writePasswd(path, target string, lines []string, mode fs.FileMode) error {
	var data []byte
	if len(lines) > 0 {
		data = []byte(strings.Join(lines, "\n") + "\n")
	}
	dir := filepath.Dir(target)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(target)+".*.tmp")
	if err != nil {
		return &FileError{Path: path, Err: err}
	}
	fail := func(err error) error {
		tmp.Close()
		os.Remove(tmp.Name())
		return &FileError{Path: path, Err: err}
	}
	if err := tmp.Chmod(mode); err != nil {
		return fail(err)
	}
	if _, err := tmp.Write(data); err != nil {
		return fail(err)
	}
	if err := tmp.Sync(); err != nil {
		return fail(err)
	}
	if err := tmp.Close(); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp.Name(), target); err != nil {
		os.Remove(tmp.Name())
		return &FileError{Path: path, Err: err}
	}
	// Some file systems cannot sync a directory; the rename is done
	// either way, so that is not worth failing for.
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// keyer makes cache keys: HMAC-SHA256, under a random key that never
// leaves memory, of length-prefixed parts (so that "ab","c" and "a","bc"
// differ). A cache of such keys holds nothing a password can be guessed
// from offline.
type keyer [32]byte

func (k keyer) sum(parts ...string) [32]byte {
	m := hmac.New(sha256.New, k[:])
	var n [8]byte
	for _, p := range parts {
		binary.BigEndian.PutUint64(n[:], uint64(len(p)))
		m.Write(n[:])
		io.WriteString(m, p)
	}
	var out [32]byte
	m.Sum(out[:0])
	return out
}

// answerCache remembers authentication answers (nil for a success, else
// the refusal) for ttl, keyed by keyer sums. It is bounded: once size
// keys are in, a new key takes the place of the oldest. A nil
// *answerCache is a cache that is off. Safe for concurrent use; mu is a
// leaf lock, held for map operations only, never during a hash or a
// request.
type answerCache struct {
	ttl  time.Duration
	size int

	mu   sync.Mutex
	m    map[[32]byte]cacheEntry // guarded by mu
	ring [][32]byte              // keys in insertion order, a ring once full; guarded by mu
	next int                     // the ring slot a new key takes once full; guarded by mu
}

type cacheEntry struct {
	answer  error
	expires time.Time
	slot    int // index in ring; the entry owns the slot
}

// newAnswerCache returns a cache, or nil (off) when size or ttl is not
// positive.
func newAnswerCache(size int, ttl time.Duration) *answerCache {
	if size <= 0 || ttl <= 0 {
		return nil
	}
	return &answerCache{ttl: ttl, size: size, m: make(map[[32]byte]cacheEntry)}
}

// get returns the answer under k if there is one and it has not expired.
func (c *answerCache) get(k [32]byte, now time.Time) (hit bool, answer error) {
	if c == nil {
		return false, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[k]
	if !ok {
		return false, nil
	}
	if !now.Before(e.expires) {
		delete(c.m, k) // its ring slot is reclaimed when the ring comes round
		return false, nil
	}
	return true, e.answer
}

// put stores answer under k until now+ttl.
func (c *answerCache) put(k [32]byte, answer error, now time.Time) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e := cacheEntry{answer: answer, expires: now.Add(c.ttl)}
	if old, ok := c.m[k]; ok {
		e.slot = old.slot
		c.m[k] = e
		return
	}
	if len(c.ring) < c.size {
		e.slot = len(c.ring)
		c.ring = append(c.ring, k)
	} else {
		e.slot = c.next
		// The slot's key may have expired and come back in another slot:
		// evict it only if it still owns this one.
		if old, ok := c.m[c.ring[e.slot]]; ok && old.slot == e.slot {
			delete(c.m, c.ring[e.slot])
		}
		c.ring[e.slot] = k
		c.next = (c.next + 1) % c.size
	}
	c.m[k] = e
}

// len returns the number of keys held, expired ones included.
func (c *answerCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}
