package auth

import (
	"crypto/pbkdf2"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// The hash schemes of a password file's entries: each parsed once, when
// the file is read, into a verifier.

// verifier is one stored hash. Immutable, so safe for concurrent use.
type verifier interface {
	// match reports whether password hashes to the stored hash, comparing
	// in constant time. An error means the hash could not be computed.
	match(password []byte) (bool, error)
}

// parseHash recognises the scheme of s and checks its fields. It returns
// ErrPasswdScheme or ErrPasswdHash, with a detail for the latter.
func parseHash(s string) (verifier, string, error) {
	switch {
	case strings.HasPrefix(s, "$2a$"), strings.HasPrefix(s, "$2b$"), strings.HasPrefix(s, "$2y$"):
		return parseBcrypt(s)
	case strings.HasPrefix(s, "$argon2id$"):
		return parseArgon2id(s)
	case strings.HasPrefix(s, "$7$"):
		return parsePBKDF2(s)
	case strings.HasPrefix(s, "$6$"):
		return parseSHA512(s)
	}
	return nil, "", ErrPasswdScheme
}

// bcryptHash is "$2b$" cost "$" 22 characters of salt, 31 of hash.
type bcryptHash []byte

func parseBcrypt(s string) (verifier, string, error) {
	if len(s) != 60 {
		return nil, "bcrypt hash is not 60 characters", ErrPasswdHash
	}
	if _, err := bcrypt.Cost([]byte(s)); err != nil {
		return nil, err.Error(), ErrPasswdHash
	}
	return bcryptHash(s), "", nil
}

func (h bcryptHash) match(password []byte) (bool, error) {
	if len(password) > 72 {
		// bcrypt reads 72 bytes at most, and SetPassword refuses longer
		// passwords: a longer one cannot be the one that was set. Hash
		// anyway, for the timing.
		password = password[:72]
		_ = bcrypt.CompareHashAndPassword(h, password)
		return false, nil
	}
	return bcrypt.CompareHashAndPassword(h, password) == nil, nil
}

// argon2Hash is a PHC string "$argon2id$v=19$m=M,t=T,p=P$salt$hash".
type argon2Hash struct {
	time, memory uint32 // passes; KiB
	threads      uint8
	salt, key    []byte
}

// maxArgon2Memory bounds m, in KiB: every login allocates that much, so a
// typo adding a digit could take the broker's memory. 1 GiB is 16 times
// RFC 9106's second recommended option (64 MiB).
const maxArgon2Memory = 1 << 20

func parseArgon2id(s string) (verifier, string, error) {
	f := strings.Split(s, "$") // "", "argon2id", "v=19", params, salt, hash
	if len(f) != 6 {
		return nil, "want $argon2id$v=19$m=M,t=T,p=P$salt$hash", ErrPasswdHash
	}
	if f[2] != "v=19" {
		return nil, "only version 19 (v=19) is supported", ErrPasswdHash
	}
	h := argon2Hash{}
	seen := map[string]bool{}
	for _, kv := range strings.Split(f[3], ",") {
		k, v, _ := strings.Cut(kv, "=")
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil || n == 0 || seen[k] {
			return nil, "bad parameter " + strconv.Quote(kv), ErrPasswdHash
		}
		seen[k] = true
		switch k {
		case "m":
			if n > maxArgon2Memory {
				return nil, "m over " + strconv.Itoa(maxArgon2Memory) + " KiB", ErrPasswdHash
			}
			h.memory = uint32(n)
		case "t":
			h.time = uint32(n)
		case "p":
			if n > 255 {
				return nil, "p over 255", ErrPasswdHash
			}
			h.threads = uint8(n)
		default:
			return nil, "unknown parameter " + strconv.Quote(kv), ErrPasswdHash
		}
	}
	if len(seen) != 3 {
		return nil, "want m, t and p", ErrPasswdHash
	}
	var err error
	if h.salt, err = decodeB64Lax(f[4]); err != nil || len(h.salt) < 8 {
		return nil, "salt is not base64 of 8 bytes or more", ErrPasswdHash
	}
	if h.key, err = decodeB64Lax(f[5]); err != nil || len(h.key) < 4 {
		return nil, "hash is not base64 of 4 bytes or more", ErrPasswdHash
	}
	return h, "", nil
}

func (h argon2Hash) match(password []byte) (bool, error) {
	k := argon2.IDKey(password, h.salt, h.time, h.memory, h.threads, uint32(len(h.key)))
	return subtle.ConstantTimeCompare(k, h.key) == 1, nil
}

// pbkdf2Hash is Mosquitto's "$7$" iterations "$" base64 salt "$" base64
// hash: PBKDF2-HMAC-SHA512 with a 64-byte output.
type pbkdf2Hash struct {
	iterations int
	salt, key  []byte
}

func parsePBKDF2(s string) (verifier, string, error) {
	f := strings.Split(s, "$") // "", "7", iterations, salt, hash
	if len(f) != 5 {
		return nil, "want $7$iterations$salt$hash", ErrPasswdHash
	}
	n, err := strconv.Atoi(f[2])
	if err != nil || n < 1 {
		return nil, "bad iteration count " + strconv.Quote(f[2]), ErrPasswdHash
	}
	h := pbkdf2Hash{iterations: n}
	if h.salt, err = decodeB64Lax(f[3]); err != nil || len(h.salt) == 0 {
		return nil, "salt is not base64", ErrPasswdHash
	}
	if h.key, err = decodeB64Lax(f[4]); err != nil || len(h.key) != sha512.Size {
		return nil, "hash is not base64 of 64 bytes", ErrPasswdHash
	}
	return h, "", nil
}

func (h pbkdf2Hash) match(password []byte) (bool, error) {
	// In FIPS 140-3 mode PBKDF2 refuses salts under 16 bytes, and
	// mosquitto_passwd writes 12: such a file needs new hashes there.
	k, err := pbkdf2.Key(sha512.New, string(password), h.salt, h.iterations, len(h.key))
	if err != nil {
		return false, err
	}
	return subtle.ConstantTimeCompare(k, h.key) == 1, nil
}

// sha512Hash is the "$6$" base64 salt "$" base64 hash that Mosquitto 1.x
// wrote and mosquitto_passwd -H sha512 still writes: one SHA-512 of the
// password followed by the salt (12 bytes from mosquitto_passwd). It is
// fast to guess: verified so that old files keep working, never written;
// `shoal passwd` or mosquitto_passwd replaces an entry with a slow hash.
type sha512Hash struct {
	salt, key []byte
}

func parseSHA512(s string) (verifier, string, error) {
	f := strings.Split(s, "$") // "", "6", salt, hash
	if len(f) != 4 {
		return nil, "want $6$salt$hash", ErrPasswdHash
	}
	var h sha512Hash
	var err error
	if h.salt, err = decodeB64Lax(f[2]); err != nil || len(h.salt) == 0 {
		return nil, "salt is not base64", ErrPasswdHash
	}
	if h.key, err = decodeB64Lax(f[3]); err != nil || len(h.key) != sha512.Size {
		return nil, "hash is not base64 of 64 bytes", ErrPasswdHash
	}
	return h, "", nil
}

func (h sha512Hash) match(password []byte) (bool, error) {
	d := sha512.New()
	d.Write(password)
	d.Write(h.salt)
	return subtle.ConstantTimeCompare(d.Sum(nil), h.key) == 1, nil
}

// decodeB64Lax decodes standard base64 with or without padding: PHC
// strings have none, mosquitto_passwd writes it.
func decodeB64Lax(s string) ([]byte, error) {
	return base64.RawStdEncoding.Strict().DecodeString(strings.TrimRight(s, "="))
}
