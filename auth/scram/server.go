package scram

import (
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"github.com/shoalmq/shoal/auth"
	"strconv"
	"strings"
)

// SHA256 is the Authentication Method name of SCRAM-SHA-256, the SASL
// mechanism name of RFC 7677 section 3.
const SHA256 = "SCRAM-SHA-256"

// Credentials is what the server keeps for one user: the salt, the
// iteration count and two keys derived from the password (RFC 5802 section
// 3). The password itself cannot be recovered from them; StoredKey lets the
// server check a proof, ServerKey lets it prove itself to the client.
type Credentials struct {
	Salt       []byte
	Iterations int
	StoredKey  []byte // H(ClientKey), 32 bytes
	ServerKey  []byte // HMAC(SaltedPassword, "Server Key"), 32 bytes
}

// NewCredentials derives the credentials of password (RFC 5802 section 3):
//
//	SaltedPassword = Hi(password, salt, iterations)  (PBKDF2-HMAC-SHA-256)
//	ClientKey      = HMAC(SaltedPassword, "Client Key")
//	StoredKey      = H(ClientKey)
//	ServerKey      = HMAC(SaltedPassword, "Server Key")
//
// password is used as given: SASLprep is the identity on printable ASCII,
// the only passwords Client is meant for. Use a random salt of 16 bytes
// or more and at least 4096 iterations, RFC 7677 section 4's floor and
// Client's. It is meant for configuration time and panics if
// iterations < 1 or PBKDF2 refuses the parameters (FIPS 140-3 mode refuses
// salts under 16 bytes). salt is copied. Safe for concurrent use.
func NewCredentials(password string, salt []byte, iterations int) Credentials {
	if iterations < 1 {
		panic("scram: NewCredentials: iterations < 1")
	}
	salted, err := pbkdf2.Key(sha256.New, password, salt, iterations, sha256.Size)
	if err != nil {
		panic("scram: NewCredentials: " + err.Error())
	}
	clientKey := hmacSHA256(salted, "Client Key")
	stored := sha256.Sum256(clientKey)
	return Credentials{
		Salt:       append([]byte(nil), salt...),
		Iterations: iterations,
		StoredKey:  stored[:],
		ServerKey:  hmacSHA256(salted, "Server Key"),
	}
}

// usable reports whether c can take part in an exchange.
func (c Credentials) usable() bool {
	return len(c.Salt) > 0 && c.Iterations >= 1 &&
		len(c.StoredKey) == sha256.Size && len(c.ServerKey) == sha256.Size
}

// CredentialStore finds a user's credentials by user name (after the
// saslname escapes are decoded). Implementations must be safe for
// concurrent use: every connection's exchange calls Lookup.
type CredentialStore interface {
	Lookup(username string) (Credentials, bool)
}

// MemStore is a CredentialStore held in memory. It is safe for concurrent
// Lookup as long as nobody modifies the map after handing it to New;
// to change users, build a new store and a new method.
type MemStore map[string]Credentials

// Lookup implements CredentialStore.
func (m MemStore) Lookup(username string) (Credentials, bool) {
	c, ok := m[username]
	return c, ok
}

// Option configures New.
type Option func(*server)

// WithSecret sets the key from which the decoy credentials of unknown users
// are derived. Default: 32 random bytes per New call. A random secret
// changes the decoy salt of an unknown user at every restart while a real
// user's salt stays put, which tells a patient prober who exists; a broker
// that cares passes a fixed secret from its configuration. secret is
// copied.
func WithSecret(secret []byte) Option {
	s := append([]byte(nil), secret...)
	return func(m *server) { m.secret = s }
}

// WithUnknownUserParams sets the iteration count and salt length of the
// decoy credentials handed to unknown users. They should match what most
// real users have, or the server-first message gives the difference away.
// Default: 4096 iterations (RFC 7677 section 4) and 16 bytes of salt (RFC
// 7677's example). Panics if iterations < 1 or saltLen is not in [1, 64].
func WithUnknownUserParams(iterations, saltLen int) Option {
	if iterations < 1 || saltLen < 1 || saltLen > 64 {
		panic("scram: WithUnknownUserParams: out of range")
	}
	return func(m *server) { m.decoyIter, m.decoySalt = iterations, saltLen }
}

// WithNonce replaces the server nonce generator, for tests that check
// messages byte for byte. f must be safe for concurrent use and return a
// non-empty string of visible ASCII without ','; Step panics otherwise.
// Default: crypto/rand.Text, 26 base32 characters (130 bits).
func WithNonce(f func() string) Option {
	return func(m *server) { m.nonce = f }
}

// server is the SCRAM-SHA-256 auth.Method. Immutable after New.
type server struct {
	store     CredentialStore
	secret    []byte
	decoyIter int
	decoySalt int
	nonce     func() string
}

// New returns the SCRAM-SHA-256 server method (RFC 7677, RFC 5802)
// checking users against store. It does no channel binding (no -PLUS
// variant). The returned auth.Method is safe for concurrent use.
func New(store CredentialStore, opts ...Option) auth.Method {
	m := &server{store: store, decoyIter: 4096, decoySalt: 16, nonce: rand.Text}
	for _, o := range opts {
		o(m)
	}
	if m.secret == nil {
		m.secret = make([]byte, 32)
		rand.Read(m.secret) // never fails since Go 1.24: it crashes the program instead
	}
	return m
}

// Name implements auth.Method. Safe for concurrent use.
func (m *server) Name() string { return SHA256 }

// Start implements auth.Method; clientID is not used. Safe for concurrent use.
func (m *server) Start(string) auth.Exchange { return &exchange{m: m} }

// decoy derives credentials for a user the store doesn't know, so that the
// exchange runs to the proof step exactly as for a known user with a wrong
// password (RFC 5802 section 9 suggests this). They depend only on the
// secret and the name, so asking twice shows the same salt, as for a real
// user. The name is printable ASCII, so the NUL after each label keeps
// label and name apart.
func (m *server) decoy(user string) Credentials {
	var salt []byte
	for i := byte(0); len(salt) < m.decoySalt; i++ {
		salt = append(salt, hmacSHA256(m.secret, "salt\x00", string([]byte{i}), user)...)
	}
	return Credentials{
		Salt:       salt[:m.decoySalt],
		Iterations: m.decoyIter,
		StoredKey:  hmacSHA256(m.secret, "stored key\x00", user),
		ServerKey:  hmacSHA256(m.secret, "server key\x00", user),
	}
}

// exchangeState is where an exchange is. Each state accepts one message, so a
// SCRAM exchange takes at most three steps (an empty one to ask for
// client-first, client-first, client-final) before it ends.
type exchangeState uint8

const (
	stStart      exchangeState = iota // expecting client-first, or nothing
	stAwaitFirst                      // sent an empty challenge; expecting client-first
	stAwaitFinal                      // sent server-first; expecting client-final
	stDone                            // sent server-final
	stFailed                          // returned an error
)

// exchange is one SCRAM-SHA-256 conversation on the server side. It
// belongs to the goroutine driving the connection.
type exchange struct {
	m     *server
	state exchangeState
	known bool // the store has the user; false: creds is a decoy
	creds Credentials
	user  string
	gs2   string // the client's gs2 header, checked against client-final "c="
	nonce string // client nonce + server nonce
	// authPrefix is client-first-message-bare "," server-first-message ","
	// the start of AuthMessage (RFC 5802 section 3), which client-final
	// completes.
	authPrefix string
	identity   string
}

// Step implements auth.Exchange. Call only from the goroutine that owns the
// exchange.
func (x *exchange) Step(in []byte) ([]byte, bool, error) {
	if x.state == stDone || x.state == stFailed {
		return nil, false, auth.ErrExchangeEnded
	}
	if len(in) > maxMessage {
		return x.fail(ErrTooLong)
	}
	switch x.state {
	case stStart:
		if len(in) == 0 {
			// CONNECT named the method but carried no Authentication
			// Data: answer with an empty challenge, as SASL does for a
			// missing initial response (RFC 4422 section 5), and wait for
			// client-first in AUTH 0x18. Only once.
			x.state = stAwaitFirst
			return nil, false, nil
		}
		fallthrough
	case stAwaitFirst:
		out, err := x.clientFirst(string(in))
		if err != nil {
			return x.fail(err)
		}
		x.state = stAwaitFinal
		return out, false, nil
	default: // stAwaitFinal
		out, err := x.clientFinal(string(in))
		if err != nil {
			return x.fail(err)
		}
		x.state = stDone
		x.identity = x.user
		return out, true, nil
	}
}

// Identity implements auth.Exchange. Call only from the goroutine that owns the
// exchange.
func (x *exchange) Identity() string { return x.identity }

func (x *exchange) fail(err error) ([]byte, bool, error) {
	x.state = stFailed
	return nil, false, err
}

// clientFirst parses client-first-message (RFC 5802 section 7):
//
//	gs2-header "n=" saslname ",r=" c-nonce ["," extensions]
//
// and returns server-first-message:
//
//	"r=" c-nonce s-nonce ",s=" salt ",i=" iteration-count
func (x *exchange) clientFirst(msg string) ([]byte, error) {
	// gs2-cbind-flag: "n" (no binding), "y" (the client could bind but
	// thinks the server can't; true here, so accepted), "p=" (binding
	// required: SCRAM-SHA-256-PLUS, refused) [RFC 5802 section 6].
	switch {
	case strings.HasPrefix(msg, "p="):
		return nil, ErrChannelBinding
	case !strings.HasPrefix(msg, "n,") && !strings.HasPrefix(msg, "y,"):
		return nil, ErrMalformed
	}
	// authzid: empty, or "a=" saslname, which is refused.
	switch {
	case strings.HasPrefix(msg[2:], "a="):
		return nil, ErrAuthzID
	case !strings.HasPrefix(msg[2:], ","):
		return nil, ErrMalformed
	}
	x.gs2, msg = msg[:3], msg[3:]

	attrs, err := firstAttrs(msg, 2)
	if err != nil {
		return nil, err
	}
	name, ok1 := attr(attrs[0], 'n')
	cnonce, ok2 := attr(attrs[1], 'r')
	if !ok1 || !ok2 || !validNonce(cnonce) || !validExtensions(attrs[2:]) {
		return nil, ErrMalformed
	}
	user, err := unescapeName(name)
	if err != nil {
		return nil, err
	}
	if !printableASCII(user) {
		return nil, ErrUsername
	}

	// The decoy is derived for known users too, so both paths do the same
	// hashing before server-first leaves.
	decoy := x.m.decoy(user)
	creds, known := x.m.store.Lookup(user)
	if !known {
		creds = decoy
	} else if !creds.usable() {
		return nil, ErrStoredCredentials
	}
	snonce := x.m.nonce()
	if !validNonce(snonce) {
		panic("scram: WithNonce function returned an invalid nonce")
	}
	x.user, x.creds, x.known = user, creds, known
	x.nonce = cnonce + snonce

	serverFirst := "r=" + x.nonce + ",s=" + b64.EncodeToString(creds.Salt) +
		",i=" + strconv.Itoa(creds.Iterations)
	x.authPrefix = msg + "," + serverFirst + ","
	return []byte(serverFirst), nil
}

// clientFinal parses client-final-message (RFC 5802 section 7):
//
//	"c=" base64(gs2-header) ",r=" nonce ["," extensions] ",p=" base64(proof)
//
// checks it, and returns server-final-message "v=" base64(ServerSignature).
func (x *exchange) clientFinal(msg string) ([]byte, error) {
	attrs := strings.Split(msg, ",")
	if len(attrs) < 3 {
		return nil, ErrMalformed
	}
	last := attrs[len(attrs)-1]
	cb, ok1 := attr(attrs[0], 'c')
	nonce, ok2 := attr(attrs[1], 'r')
	proofB64, ok3 := attr(last, 'p')
	if !ok1 || !ok2 || !ok3 || !validExtensions(attrs[2:len(attrs)-1]) {
		return nil, ErrMalformed
	}
	cbind, err := decodeB64(cb)
	if err != nil {
		return nil, err
	}
	proof, err := decodeB64(proofB64)
	if err != nil {
		return nil, err
	}
	if len(proof) != sha256.Size {
		return nil, ErrMalformed
	}
	// Without channel binding, "c=" carries the gs2 header alone
	// [RFC 5802 section 7, cbind-input].
	if string(cbind) != x.gs2 {
		return nil, ErrBindingMismatch
	}
	if nonce != x.nonce {
		return nil, ErrNonce
	}

	// AuthMessage = client-first-message-bare "," server-first-message ","
	//               client-final-message-without-proof
	// ClientSignature = HMAC(StoredKey, AuthMessage)
	// ClientKey = ClientProof XOR ClientSignature; H(ClientKey) must be StoredKey.
	// [RFC 5802 section 3]
	withoutProof := msg[:len(msg)-len(last)-1]
	clientKey := hmacSHA256(x.creds.StoredKey, x.authPrefix, withoutProof)
	subtle.XORBytes(clientKey, clientKey, proof)
	stored := sha256.Sum256(clientKey)
	// A decoy's keys come from the secret, not from any password, so no
	// proof matches them but for a SHA-256 preimage; x.known makes that
	// certain. Both are checked every time so both paths cost the same.
	match := subtle.ConstantTimeCompare(stored[:], x.creds.StoredKey) == 1
	if !match || !x.known {
		return nil, ErrBadCredentials
	}
	serverSig := hmacSHA256(x.creds.ServerKey, x.authPrefix, withoutProof)
	return []byte("v=" + b64.EncodeToString(serverSig)), nil
}
