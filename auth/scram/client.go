package scram

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"github.com/shoalmq/shoal/auth"
	"strings"
)

// Iteration counts Client accepts from a server. The floor is RFC
// 7677 section 4's "at least 4096". The ceiling keeps a hostile server from
// making the client compute PBKDF2 for minutes: 1<<22 iterations take
// about a second on one core, and OWASP's 2023 advice for PBKDF2-HMAC-
// SHA256 (600,000) fits well under it.
const (
	minClientIterations = 4096
	maxClientIterations = 1 << 22
)

// Client is the client side of SCRAM-SHA-256, for tests and tools:
// First gives the CONNECT's Authentication Data, Final answers the
// server's AUTH 0x18, Verify checks the CONNACK's (or AUTH 0x00's) final
// data. It does no channel binding and no authorization identity.
//
// A Client serves one exchange and one goroutine; it is not safe for
// concurrent use. Use a new one to re-authenticate.
type Client struct {
	password  string
	firstBare string // "n=" saslname ",r=" c-nonce
	nonce     string // c-nonce
	state     uint8  // 0 new, 1 Final done, 2 ended (verified or failed)
	serverSig []byte // expected ServerSignature, set by Final
}

// NewClient returns a client that authenticates user with password.
// Both are used as given, with no SASLprep: fine for printable ASCII, the
// only user names the server accepts. The nonce comes from crypto/rand.
func NewClient(user, password string) *Client {
	return newClient(user, password, rand.Text())
}

// newClient takes the nonce, so tests can replay RFC 7677's exchange.
func newClient(user, password, nonce string) *Client {
	return &Client{
		password:  password,
		firstBare: "n=" + escapeName(user) + ",r=" + nonce,
		nonce:     nonce,
	}
}

// First returns client-first-message, "n,,n=<user>,r=<nonce>" (RFC 5802
// section 7), the Authentication Data of the CONNECT (or of the AUTH 0x19
// that starts a re-authentication). It returns a new slice each time, the
// same bytes every time.
func (c *Client) First() []byte {
	return []byte(gs2Header + c.firstBare)
}

// Final parses server-first-message and returns client-final-message,
// "c=biws,r=<nonce>,p=<proof>" (RFC 5802 section 7), for the client's AUTH
// 0x18. It may be called once, after First; it does not keep serverFirst.
func (c *Client) Final(serverFirst []byte) ([]byte, error) {
	if c.state != 0 {
		return nil, ErrClientState
	}
	c.state = 2 // unless we get to the end
	if len(serverFirst) > maxMessage {
		return nil, ErrTooLong
	}
	msg := string(serverFirst)
	attrs, err := firstAttrs(msg, 3)
	if err != nil {
		return nil, err
	}
	nonce, ok1 := attr(attrs[0], 'r')
	saltB64, ok2 := attr(attrs[1], 's')
	iterStr, ok3 := attr(attrs[2], 'i')
	if !ok1 || !ok2 || !ok3 || !validNonce(nonce) || !validExtensions(attrs[3:]) {
		return nil, ErrMalformed
	}
	// The server's nonce must extend ours: otherwise this is a replay, or
	// an answer to someone else [RFC 5802 section 5.1, "r"].
	if len(nonce) <= len(c.nonce) || !strings.HasPrefix(nonce, c.nonce) {
		return nil, ErrServerNonce
	}
	salt, err := decodeB64(saltB64)
	if err != nil {
		return nil, err
	}
	if len(salt) == 0 {
		return nil, ErrMalformed
	}
	iter, ok := parseIterations(iterStr)
	if !ok {
		return nil, ErrMalformed
	}
	if iter < minClientIterations || iter > maxClientIterations {
		return nil, ErrIterations
	}

	// [RFC 5802 section 3]
	salted, err := pbkdf2.Key(sha256.New, c.password, salt, iter, sha256.Size)
	if err != nil {
		return nil, auth.ErrKeyDerivation
	}
	clientKey := hmacSHA256(salted, "Client Key")
	storedKey := sha256.Sum256(clientKey)
	withoutProof := "c=" + b64.EncodeToString([]byte(gs2Header)) + ",r=" + nonce
	authMsg := []string{c.firstBare, ",", msg, ",", withoutProof}
	proof := hmacSHA256(storedKey[:], authMsg...)
	subtle.XORBytes(proof, proof, clientKey)
	c.serverSig = hmacSHA256(hmacSHA256(salted, "Server Key"), authMsg...)
	c.state = 1
	return []byte(withoutProof + ",p=" + b64.EncodeToString(proof)), nil
}

// Verify checks server-final-message "v=<ServerSignature>" (RFC 5802
// section 7), proving the server knew the user's keys. A server-error
// "e=..." gives ErrServerRefused. Call it once, after Final.
func (c *Client) Verify(serverFinal []byte) error {
	if c.state != 1 {
		return ErrClientState
	}
	c.state = 2
	if len(serverFinal) > maxMessage {
		return ErrTooLong
	}
	attrs := strings.Split(string(serverFinal), ",")
	if strings.HasPrefix(attrs[0], "m=") {
		return ErrExtension
	}
	if _, ok := attr(attrs[0], 'e'); ok {
		return ErrServerRefused
	}
	v, ok := attr(attrs[0], 'v')
	if !ok || !validExtensions(attrs[1:]) {
		return ErrMalformed
	}
	sig, err := decodeB64(v)
	if err != nil {
		return err
	}
	if !hmac.Equal(sig, c.serverSig) {
		return ErrServerSignature
	}
	return nil
}
