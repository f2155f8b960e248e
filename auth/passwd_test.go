package auth

import (
	"context"
	"crypto/pbkdf2"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// testBcrypt hashes password at bcrypt's minimum cost, to keep tests fast.
func testBcrypt(t testing.TB, password string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

// testArgon2id hashes password as a PHC argon2id string, with small
// parameters (64 KiB, one pass).
func testArgon2id(password string) string {
	salt := []byte("sixteen byte slt")
	key := argon2.IDKey([]byte(password), salt, 1, 64, 1, 32)
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=19$m=64,t=1,p=1$%s$%s", enc.EncodeToString(salt), enc.EncodeToString(key))
}

// testPBKDF2 hashes password as mosquitto_passwd does ($7$).
func testPBKDF2(t testing.TB, password string, iterations int) string {
	t.Helper()
	salt := []byte("twelve bytes")
	key, err := pbkdf2.Key(sha512.New, password, salt, iterations, sha512.Size)
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.StdEncoding
	return fmt.Sprintf("$7$%d$%s$%s", iterations, enc.EncodeToString(salt), enc.EncodeToString(key))
}

// writePasswdFile writes content to name in a new temporary directory.
func writePasswdFile(t testing.TB, name, content string, mode os.FileMode) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // past the umask
		t.Fatal(err)
	}
	return path
}

// loadPasswd loads path, failing the test on an error.
func loadPasswd(t testing.TB, path string) *PasswordFile {
	t.Helper()
	p, err := LoadPasswordFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// passwdLogin is a CONNECT with a user name and password.
func passwdLogin(user, password string) *Login {
	return &Login{ClientID: "c1", Username: user, HasUsername: true, Password: []byte(password), HasPassword: true, Remote: "127.0.0.1:5000", Listener: "tcp"}
}

// TestPasswdSkipsBadLines: a line that cannot be used costs its user
// only, with a warning naming the line and, where it can be read, the
// user; the other users load.
func TestPasswdSkipsBadLines(t *testing.T) {
	good := testBcrypt(t, "pw")
	tests := []struct {
		name    string
		content string // bob is always added after it
		want    error
		line    int
		msg     string // a substring of the message
		gone    string // a user the file names who must not load
	}{
		{name: "no colon", content: "# users\nalice\n", want: ErrPasswdSyntax, line: 2},
		{name: "no hash", content: "alice:\n", want: ErrPasswdSyntax, line: 1, msg: `user "alice"`, gone: "alice"},
		{name: "empty user", content: ":" + good + "\n", want: ErrPasswdUser, line: 1},
		{name: "colon in user", content: "\n\na:b:" + good + "\n", want: ErrPasswdUser, line: 3, msg: `"a:b"`},
		{name: "control char", content: "al\x01ice:" + good + "\n", want: ErrPasswdUser, line: 1},
		{name: "not utf-8", content: "al\xffice:" + good + "\n", want: ErrPasswdUser, line: 1},
		{name: "duplicate", content: "alice:" + good + "\ncarol:" + good + "\nalice:" + good + "\n", want: ErrPasswdDuplicate, line: 3, msg: "first on line 1: both lines skipped", gone: "alice"},
		{name: "plain text", content: "alice:secret\n", want: ErrPasswdScheme, line: 1, msg: `user "alice"`, gone: "alice"},
		{name: "sha512 short", content: "alice:$6$c2FsdA==$aGFzaA==\n", want: ErrPasswdHash, line: 1, msg: `user "alice": hash is not base64 of 64 bytes`, gone: "alice"},
		{name: "sha512 fields", content: "alice:$6$c2FsdA==\n", want: ErrPasswdHash, line: 1, gone: "alice"},
		{name: "argon2i", content: "alice:$argon2i$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaA\n", want: ErrPasswdScheme, line: 1, gone: "alice"},
		{name: "short bcrypt", content: "alice:" + good[:59] + "\n", want: ErrPasswdHash, line: 1, gone: "alice"},
		{name: "bcrypt cost", content: "alice:$2a$99" + good[6:] + "\n", want: ErrPasswdHash, line: 1, gone: "alice"},
		{name: "argon2 version", content: "alice:$argon2id$v=16$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaA\n", want: ErrPasswdHash, line: 1, gone: "alice"},
		{name: "argon2 no version", content: "alice:$argon2id$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaA\n", want: ErrPasswdHash, line: 1, gone: "alice"},
		{name: "argon2 missing p", content: "alice:$argon2id$v=19$m=64,t=1$c2FsdHNhbHQ$aGFzaA\n", want: ErrPasswdHash, line: 1, gone: "alice"},
		{name: "argon2 zero t", content: "alice:$argon2id$v=19$m=64,t=0,p=1$c2FsdHNhbHQ$aGFzaA\n", want: ErrPasswdHash, line: 1, gone: "alice"},
		{name: "argon2 huge m", content: "alice:$argon2id$v=19$m=4000000,t=1,p=1$c2FsdHNhbHQ$aGFzaA\n", want: ErrPasswdHash, line: 1, gone: "alice"},
		{name: "argon2 bad salt", content: "alice:$argon2id$v=19$m=64,t=1,p=1$!!$aGFzaA\n", want: ErrPasswdHash, line: 1, gone: "alice"},
		{name: "pbkdf2 iterations", content: "alice:$7$0$c2FsdA==$aGFzaA==\n", want: ErrPasswdHash, line: 1, gone: "alice"},
		{name: "pbkdf2 short hash", content: "alice:$7$101$c2FsdA==$aGFzaA==\n", want: ErrPasswdHash, line: 1, gone: "alice"},
		{name: "pbkdf2 fields", content: "alice:$7$101$c2FsdA==\n", want: ErrPasswdHash, line: 1, gone: "alice"},
	}
	ctx := context.Background()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := writePasswdFile(t, "users.pw", tc.content+"bob:"+testBcrypt(t, "b")+"\n", 0o600)
			p := loadPasswd(t, path)
			ws := p.Warnings()
			if len(ws) != 1 || !errors.Is(ws[0], tc.want) {
				t.Fatalf("Warnings = %v; want one %v", ws, tc.want)
			}
			err := ws[0]
			var fe *FileError
			if !errors.As(err, &fe) || fe.Path != path || fe.Line != tc.line {
				t.Fatalf("warning %#v: want a *FileError for %s line %d", err, path, tc.line)
			}
			prefix := "auth: " + path + ":" + strconv.Itoa(tc.line) + ": "
			if msg := err.Error(); !strings.HasPrefix(msg, prefix) || !strings.Contains(msg, tc.msg) {
				t.Errorf("message %q: want prefix %q and %q", msg, prefix, tc.msg)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("message %q quotes the line", err)
			}
			if err := p.Authenticate(ctx, passwdLogin("bob", "b")); err != nil {
				t.Errorf("bob, on a good line: %v", err)
			}
			if tc.gone != "" {
				if err := p.Authenticate(ctx, passwdLogin(tc.gone, "pw")); err != ErrUnknownUser {
					t.Errorf("%s, on a skipped line: %v, want ErrUnknownUser", tc.gone, err)
				}
			}
		})
	}
}

// TestPasswdBlanks: blanks around the user name and the hash are not part
// of them, as in Mosquitto's reading of the file.
func TestPasswdBlanks(t *testing.T) {
	p := loadPasswd(t, writePasswdFile(t, "users.pw", "  alice \t: "+testBcrypt(t, "pw")+" \r\n", 0o600))
	if err := p.Authenticate(context.Background(), passwdLogin("alice", "pw")); err != nil || len(p.Warnings()) != 0 {
		t.Errorf("alice: %v, warnings %v", err, p.Warnings())
	}
}

func TestPasswdMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "none.pw")
	_, err := LoadPasswordFile(path)
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("err = %v, want ErrNotExist", err)
	}
	if want := "auth: " + path + ": open: "; !strings.HasPrefix(err.Error(), want) {
		t.Errorf("message %q, want prefix %q", err, want)
	}
}

func TestPasswdAuthenticate(t *testing.T) {
	content := strings.Join([]string{
		"# Shoal users",
		"",
		"  alice:" + testBcrypt(t, "alice pw") + "  ",
		"bob:" + testArgon2id("bob pw"),
		"carol:" + testPBKDF2(t, "carol pw", 101) + "\r",
		"dave:" + testBcrypt(t, strings.Repeat("d", 72)),
		"émile:" + testBcrypt(t, "é"),
	}, "\n")
	p := loadPasswd(t, writePasswdFile(t, "users.pw", content, 0o600))
	if p.Len() != 5 {
		t.Fatalf("Len = %d, want 5", p.Len())
	}
	noPassword := passwdLogin("alice", "")
	noPassword.HasPassword = false
	anonymous := passwdLogin("", "")
	anonymous.HasUsername = false
	withCert := passwdLogin("alice", "alice pw")
	withCert.CertIdentity = "alice"
	tests := []struct {
		name  string
		login *Login
		want  error
	}{
		{name: "bcrypt", login: passwdLogin("alice", "alice pw"), want: nil},
		{name: "bcrypt wrong", login: passwdLogin("alice", "alice pW"), want: ErrBadPassword},
		{name: "argon2id", login: passwdLogin("bob", "bob pw"), want: nil},
		{name: "argon2id wrong", login: passwdLogin("bob", "alice pw"), want: ErrBadPassword},
		{name: "pbkdf2", login: passwdLogin("carol", "carol pw"), want: nil},
		{name: "pbkdf2 wrong", login: passwdLogin("carol", "carol"), want: ErrBadPassword},
		{name: "72 bytes", login: passwdLogin("dave", strings.Repeat("d", 72)), want: nil},
		{name: "73 bytes", login: passwdLogin("dave", strings.Repeat("d", 73)), want: ErrBadPassword},
		{name: "utf-8", login: passwdLogin("émile", "é"), want: nil},
		{name: "unknown", login: passwdLogin("mallory", "alice pw"), want: ErrUnknownUser},
		{name: "case matters", login: passwdLogin("Alice", "alice pw"), want: ErrUnknownUser},
		{name: "no password", login: noPassword, want: ErrBadPassword},
		{name: "empty password", login: passwdLogin("alice", ""), want: ErrBadPassword},
		{name: "anonymous", login: anonymous, want: ErrUnknownUser},
		{name: "certificate", login: withCert, want: ErrUnknownUser},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := p.Authenticate(context.Background(), tc.login); err != tc.want {
				t.Errorf("Authenticate = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestPasswdTimingDecoy(t *testing.T) {
	p := loadPasswd(t, writePasswdFile(t, "users.pw", "alice:"+testBcrypt(t, "pw")+"\n", 0o600))
	if err := p.Authenticate(context.Background(), passwdLogin("mallory", "pw")); err != ErrUnknownUser {
		t.Fatalf("Authenticate = %v, want ErrUnknownUser", err)
	}
	if n := p.verifies.Load(); n != 1 {
		t.Errorf("an unknown user cost %d hashes, want 1 like a known user", n)
	}
	withCert := passwdLogin("alice", "pw")
	withCert.CertIdentity = "alice"
	_ = p.Authenticate(context.Background(), withCert)
	if n := p.verifies.Load(); n != 1 {
		t.Errorf("a certificate login hashed (%d hashes)", n)
	}
}

func TestPasswdCache(t *testing.T) {
	p := loadPasswd(t, writePasswdFile(t, "users.pw", "alice:"+testBcrypt(t, "pw")+"\n", 0o600))
	ctx := context.Background()
	for i := range 3 {
		if err := p.Authenticate(ctx, passwdLogin("alice", "pw")); err != nil {
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	if n := p.verifies.Load(); n != 1 {
		t.Errorf("three logins cost %d hashes, want 1", n)
	}
	// Failures are not cached, and a cached success does not let another
	// password in.
	for range 2 {
		if err := p.Authenticate(ctx, passwdLogin("alice", "PW")); err != ErrBadPassword {
			t.Fatalf("wrong password: %v", err)
		}
	}
	if n := p.verifies.Load(); n != 3 {
		t.Errorf("after two failures %d hashes, want 3", n)
	}
	noPassword := passwdLogin("alice", "")
	noPassword.HasPassword = false
	if err := p.Authenticate(ctx, noPassword); err != ErrBadPassword {
		t.Errorf("no password: %v", err)
	}

	// A TTL that is over at once: every login hashes.
	p.cacheTTL = time.Nanosecond
	if err := p.Reload(); err != nil {
		t.Fatal(err)
	}
	before := p.verifies.Load()
	for range 2 {
		if err := p.Authenticate(ctx, passwdLogin("alice", "pw")); err != nil {
			t.Fatal(err)
		}
	}
	if n := p.verifies.Load() - before; n != 2 {
		t.Errorf("with an expired cache two logins cost %d hashes, want 2", n)
	}
}

func TestPasswdAnswerCacheBound(t *testing.T) {
	var k keyer
	a, b, c, d, e := k.sum("a"), k.sum("b"), k.sum("c"), k.sum("d"), k.sum("e")
	now := time.Now()
	cache := newAnswerCache(3, time.Minute)
	cache.put(a, nil, now)       // slot 0
	cache.put(b, ErrDenied, now) // slot 1
	cache.put(c, nil, now)       // slot 2
	if hit, ans := cache.get(b, now); !hit || ans != ErrDenied {
		t.Fatalf("get(b) = %v, %v", hit, ans)
	}
	// c expires; d takes slot 0 from a, the oldest; c comes back in slot
	// 1, evicting b. When e takes slot 2, which c left, c must stay.
	if hit, _ := cache.get(c, now.Add(time.Minute)); hit {
		t.Fatal("c did not expire")
	}
	cache.put(d, nil, now)
	cache.put(c, nil, now)
	cache.put(e, nil, now)
	for _, tc := range []struct {
		name string
		key  [32]byte
		want bool
	}{
		{name: "a", key: a, want: false},
		{name: "b", key: b, want: false},
		{name: "c", key: c, want: true},
		{name: "d", key: d, want: true},
		{name: "e", key: e, want: true},
	} {
		if hit, _ := cache.get(tc.key, now); hit != tc.want {
			t.Errorf("get(%s) hit = %v, want %v", tc.name, hit, tc.want)
		}
	}
	if n := cache.len(); n != 3 {
		t.Errorf("len = %d, want the bound, 3", n)
	}
	if newAnswerCache(0, time.Minute) != nil || newAnswerCache(10, 0) != nil {
		t.Error("a zero size or TTL should turn the cache off")
	}
	var off *answerCache
	off.put(a, nil, now)
	if hit, _ := off.get(a, now); hit {
		t.Error("a nil cache hit")
	}
}

func TestPasswdKeyerSeparatesParts(t *testing.T) {
	k := newKeyer()
	if k.sum("ab", "c") == k.sum("a", "bc") {
		t.Error("length prefixes do not separate the parts")
	}
	if k.sum("a") == newKeyer().sum("a") {
		t.Error("two keyers agree: the key is not random")
	}
}

func TestPasswdReload(t *testing.T) {
	ctx := context.Background()
	path := writePasswdFile(t, "users.pw", "alice:"+testBcrypt(t, "old")+"\n", 0o600)
	p := loadPasswd(t, path)
	if err := p.Authenticate(ctx, passwdLogin("alice", "old")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("alice:"+testBcrypt(t, "new")+"\nbob:"+testBcrypt(t, "b")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := p.Reload(); err != nil {
		t.Fatal(err)
	}
	// The cached success of "old" went with the old contents.
	if err := p.Authenticate(ctx, passwdLogin("alice", "old")); err != ErrBadPassword {
		t.Errorf("old password after reload: %v", err)
	}
	if err := p.Authenticate(ctx, passwdLogin("alice", "new")); err != nil {
		t.Errorf("new password after reload: %v", err)
	}
	if p.Len() != 2 {
		t.Errorf("Len = %d, want 2", p.Len())
	}

	// A bad line costs its user, not the reload.
	if err := os.WriteFile(path, []byte("alice:"+testBcrypt(t, "x")+"\nbroken line\nbob:"+testBcrypt(t, "b")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := p.Reload(); err != nil {
		t.Fatal(err)
	}
	var fe *FileError
	if ws := p.Warnings(); len(ws) != 1 || !errors.As(ws[0], &fe) || fe.Line != 2 || !errors.Is(fe, ErrPasswdSyntax) {
		t.Fatalf("warnings after a reload with a bad line: %v", ws)
	}
	if err := p.Authenticate(ctx, passwdLogin("bob", "b")); err != nil || p.Len() != 2 {
		t.Errorf("after a reload with a bad line: %v, Len %d", err, p.Len())
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := p.Reload(); !errors.Is(err, os.ErrNotExist) || p.Len() != 2 {
		t.Errorf("reload of a removed file: %v, Len %d", err, p.Len())
	}
}

// TestPasswdConcurrent is for the race detector: logins while reloading.
func TestPasswdConcurrent(t *testing.T) {
	path := writePasswdFile(t, "users.pw", "alice:"+testBcrypt(t, "pw")+"\n", 0o600)
	p := loadPasswd(t, path)
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			for range 20 {
				if err := p.Authenticate(context.Background(), passwdLogin("alice", "pw")); err != nil {
					t.Errorf("goroutine %d: %v", i, err)
					return
				}
			}
		})
	}
	for range 10 {
		if err := p.Reload(); err != nil {
			t.Error(err)
		}
	}
	wg.Wait()
}

func TestPasswdEdit(t *testing.T) {
	ctx := context.Background()
	original := "# Shoal users\n\nalice:" + testBcrypt(t, "a") + "\n# bob is next\nbob:" + testBcrypt(t, "b") + "\n"
	path := writePasswdFile(t, "users.pw", original, 0o640)

	if err := SetPassword(path, "bob", "b2", bcrypt.MinCost); err != nil {
		t.Fatal(err)
	}
	if err := SetPassword(path, "carol", "c", bcrypt.MinCost); err != nil {
		t.Fatal(err)
	}
	lines := readLines(t, path)
	if len(lines) != 6 || lines[0] != "# Shoal users" || lines[1] != "" || !strings.HasPrefix(lines[2], "alice:") ||
		lines[3] != "# bob is next" || !strings.HasPrefix(lines[4], "bob:$2a$04$") || !strings.HasPrefix(lines[5], "carol:") {
		t.Fatalf("after SetPassword:\n%s", strings.Join(lines, "\n"))
	}
	if lines[2] != strings.Split(original, "\n")[2] {
		t.Error("alice's line changed")
	}
	assertMode(t, path, 0o640)
	p := loadPasswd(t, path)
	for user, pw := range map[string]string{"alice": "a", "bob": "b2", "carol": "c"} {
		if err := p.Authenticate(ctx, passwdLogin(user, pw)); err != nil {
			t.Errorf("%s: %v", user, err)
		}
	}

	if err := DeletePassword(path, "bob"); err != nil {
		t.Fatal(err)
	}
	lines = readLines(t, path)
	if len(lines) != 5 || lines[3] != "# bob is next" || !strings.HasPrefix(lines[4], "carol:") {
		t.Fatalf("after DeletePassword:\n%s", strings.Join(lines, "\n"))
	}
	assertMode(t, path, 0o640)
	if err := DeletePassword(path, "bob"); !errors.Is(err, ErrPasswdNoUser) || !strings.Contains(err.Error(), path) {
		t.Errorf("deleting bob twice: %v", err)
	}
	if err := p.Reload(); err != nil {
		t.Fatal(err)
	}
	if err := p.Authenticate(ctx, passwdLogin("bob", "b2")); err != ErrUnknownUser {
		t.Errorf("bob after delete: %v", err)
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".*tmp")); len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

func TestPasswdEditNewFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "new.pw")
	if err := DeletePassword(path, "alice"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("DeletePassword on a missing file: %v", err)
	}
	if err := SetPassword(path, "alice", "a", bcrypt.MinCost); err != nil {
		t.Fatal(err)
	}
	assertMode(t, path, 0o600)
	if lines := readLines(t, path); len(lines) != 1 || !strings.HasPrefix(lines[0], "alice:$2a$04$") {
		t.Fatalf("new file: %q", lines)
	}

	// CreatePasswordFile replaces the contents, keeping the mode.
	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := CreatePasswordFile(path, "bob", "b", bcrypt.MinCost); err != nil {
		t.Fatal(err)
	}
	if lines := readLines(t, path); len(lines) != 1 || !strings.HasPrefix(lines[0], "bob:") {
		t.Fatalf("created file: %q", lines)
	}
	assertMode(t, path, 0o640)

	// Through a symbolic link: the link stays, its target changes.
	link := filepath.Join(dir, "link.pw")
	if err := os.Symlink("new.pw", link); err != nil {
		t.Fatal(err)
	}
	if err := SetPassword(link, "carol", "c", bcrypt.MinCost); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("the link was replaced: %v", err)
	}
	if lines := readLines(t, path); len(lines) != 2 || !strings.HasPrefix(lines[1], "carol:") {
		t.Fatalf("target after edit through link: %q", lines)
	}
}

func TestPasswdEditErrors(t *testing.T) {
	good := testBcrypt(t, "pw")
	broken := writePasswdFile(t, "broken.pw", "alice:"+good+"\nnonsense\n", 0o600)
	path := writePasswdFile(t, "users.pw", "alice:"+good+"\n", 0o600)
	tests := []struct {
		name     string
		path     string
		user, pw string
		cost     int
		want     error
	}{
		{name: "colon", path: path, user: "a:b", pw: "x", want: ErrPasswdUser},
		{name: "comment", path: path, user: "#a", pw: "x", want: ErrPasswdUser},
		{name: "newline", path: path, user: "a\nb", pw: "x", want: ErrPasswdUser},
		{name: "empty user", path: path, user: "", pw: "x", want: ErrPasswdUser},
		{name: "empty password", path: path, user: "bob", pw: "", want: ErrPasswdEmpty},
		{name: "long password", path: path, user: "bob", pw: strings.Repeat("x", 73), want: ErrPasswdTooLong},
		{name: "low cost", path: path, user: "bob", pw: "x", cost: 3, want: ErrPasswdCost},
		{name: "high cost", path: path, user: "bob", pw: "x", cost: 32, want: ErrPasswdCost},
		{name: "broken file", path: broken, user: "bob", pw: "x", cost: bcrypt.MinCost, want: ErrPasswdSyntax},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before, _ := os.ReadFile(tc.path)
			err := SetPassword(tc.path, tc.user, tc.pw, tc.cost)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.path) {
				t.Errorf("SetPassword = %v, want %v naming the file", err, tc.want)
			}
			if after, _ := os.ReadFile(tc.path); string(after) != string(before) {
				t.Error("the file changed")
			}
		})
	}
}

// TestPasswdMosquittoAgrees checks that a file written by Mosquitto's own
// mosquitto_passwd loads and verifies: migrating from Mosquitto is a copy.
func TestPasswdMosquittoAgrees(t *testing.T) {
	// internal/testutil.Tool does this lookup, but importing testutil here
	// would be a cycle (testutil -> broker -> auth); same rule: a missing
	// tool is a broken set-up, not a skip.
	tool, err := exec.LookPath("mosquitto_passwd")
	if err != nil {
		t.Fatal("mosquitto_passwd not found on PATH: run `make deps` (installs mosquitto and friends)")
	}
	path := filepath.Join(t.TempDir(), "mosquitto.pw")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, args := range [][]string{
		{"-b", "-c", path, "alice", "s3cret pass"},
		{"-b", path, "bob", "pässwörd"},
		{"-H", "sha512", "-b", path, "dave", "old style"},
		{"-H", "sha512-pbkdf2", "-b", path, "erin", "new style"},
	} {
		if out, err := exec.CommandContext(ctx, tool, args...).CombinedOutput(); err != nil {
			t.Fatalf("mosquitto_passwd %q: %v\n%s", args, err, out)
		}
	}
	if data, _ := os.ReadFile(path); !strings.Contains(string(data), "alice:$7$") || !strings.Contains(string(data), "dave:$6$") {
		t.Fatalf("mosquitto_passwd wrote no $7$ or no $6$ hash:\n%s", data)
	}
	p := loadPasswd(t, path)
	tests := []struct {
		user, password string
		want           error
	}{
		{user: "alice", password: "s3cret pass", want: nil},
		{user: "alice", password: "s3cret", want: ErrBadPassword},
		{user: "bob", password: "pässwörd", want: nil},
		{user: "carol", password: "x", want: ErrUnknownUser},
		{user: "dave", password: "old style", want: nil},
		{user: "dave", password: "old styl", want: ErrBadPassword},
		{user: "erin", password: "new style", want: nil},
	}
	for _, tc := range tests {
		if err := p.Authenticate(ctx, passwdLogin(tc.user, tc.password)); err != tc.want {
			t.Errorf("%s/%q: %v, want %v", tc.user, tc.password, err, tc.want)
		}
	}
	// Shoal's editing keeps Mosquitto's entries.
	if err := SetPassword(path, "carol", "c", bcrypt.MinCost); err != nil {
		t.Fatal(err)
	}
	p = loadPasswd(t, path)
	if err := p.Authenticate(ctx, passwdLogin("alice", "s3cret pass")); err != nil || p.Len() != 5 {
		t.Errorf("after SetPassword: %v, Len %d", err, p.Len())
	}
}

// MosquittoExamples is where Debian's mosquitto package puts the example
// files it ships (pwfile.example, aclfile.example, mosquitto.conf).
const mosquittoExamples = "/usr/share/doc/mosquitto/examples"

// TestPasswdMosquittoExample loads the pwfile.example that the mosquitto
// package ships: $6$ entries for three users, each with the password
// "password".
func TestPasswdMosquittoExample(t *testing.T) {
	path := filepath.Join(mosquittoExamples, "pwfile.example")
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("%v: run `make deps` (installs the mosquitto package)", err)
	}
	p := loadPasswd(t, path)
	if len(p.Warnings()) != 0 || p.Len() != 3 {
		t.Fatalf("warnings %v, Len %d; want none and 3", p.Warnings(), p.Len())
	}
	ctx := context.Background()
	for _, user := range []string{"roger", "sub_client", "pub_client"} {
		if err := p.Authenticate(ctx, passwdLogin(user, "password")); err != nil {
			t.Errorf("%s: %v", user, err)
		}
		if err := p.Authenticate(ctx, passwdLogin(user, "Password")); err != ErrBadPassword {
			t.Errorf("%s with a wrong password: %v", user, err)
		}
	}
}

func TestPasswdCanceled(t *testing.T) {
	p := loadPasswd(t, writePasswdFile(t, "users.pw", "alice:"+testBcrypt(t, "pw")+"\n", 0o600))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := p.Authenticate(ctx, passwdLogin("alice", "pw")); err != ErrBackend {
		t.Errorf("canceled context: %v, want ErrBackend", err)
	}
}

func readLines(t testing.TB, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
}

func assertMode(t testing.TB, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != want {
		t.Errorf("%s: mode %v, want %v", path, got, want)
	}
}

// BenchmarkBcryptCost times one bcrypt hash per cost around
// DefaultBcryptCost; its figures are quoted there.
func BenchmarkBcryptCost(b *testing.B) {
	for cost := DefaultBcryptCost - 1; cost <= DefaultBcryptCost+2; cost++ {
		b.Run("cost="+strconv.Itoa(cost), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := bcrypt.GenerateFromPassword([]byte("correct horse"), cost); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkPasswdCacheHit is a reconnect that finds its success cached.
func BenchmarkPasswdCacheHit(b *testing.B) {
	p := loadPasswd(b, writePasswdFile(b, "users.pw", "alice:"+testBcrypt(b, "pw")+"\n", 0o600))
	l := passwdLogin("alice", "pw")
	b.ReportAllocs()
	for b.Loop() {
		if err := p.Authenticate(context.Background(), l); err != nil {
			b.Fatal(err)
		}
	}
}
