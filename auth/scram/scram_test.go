package scram

import (
	"bytes"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha256"
	"errors"
	"fmt"
	"github.com/shoalmq/shoal/auth"
	"strings"
	"sync"
	"testing"
)

// The exchange of RFC 7677 section 3: user "user", password "pencil".
const (
	rfcUser        = "user"
	rfcPassword    = "pencil"
	rfcClientNonce = "rOprNGfwEbeRWgbNEkqO"
	rfcServerNonce = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
	rfcSalt        = "W22ZaJ0SNY7soEsUEjb6gQ=="
	rfcIterations  = 4096
	rfcClientFirst = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
	rfcServerFirst = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
	rfcClientFinal = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
	rfcServerFinal = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
)

// testStore holds the RFC user and one whose name needs saslname escapes.
func testStore(t testing.TB) MemStore {
	t.Helper()
	salt, err := b64.DecodeString(rfcSalt)
	if err != nil {
		t.Fatal(err)
	}
	return MemStore{
		rfcUser: NewCredentials(rfcPassword, salt, rfcIterations),
		"a,b=c": NewCredentials("p=w,d", []byte("another salt 16b"), 4096),
	}
}

// fixedNonce makes the server nonce the RFC's.
func fixedNonce() string { return rfcServerNonce }

// step calls x.Step and fails the test on an error.
func step(t *testing.T, x auth.Exchange, in string) (string, bool) {
	t.Helper()
	out, done, err := x.Step([]byte(in))
	if err != nil {
		t.Fatalf("Step(%q): %v", in, err)
	}
	return string(out), done
}

// run drives a whole exchange between method m and client c. It returns
// how many server Steps ran, and the first error from either side.
func run(m auth.Method, c *Client) (x auth.Exchange, steps int, err error) {
	x = m.Start("client-1")
	out, done, err := x.Step(c.First())
	steps++
	if err != nil {
		return x, steps, err
	}
	if done {
		return x, steps, errors.New("done after client-first")
	}
	final, err := c.Final(out)
	if err != nil {
		return x, steps, err
	}
	out, done, err = x.Step(final)
	steps++
	if err != nil {
		return x, steps, err
	}
	if !done {
		return x, steps, errors.New("not done after client-final")
	}
	return x, steps, c.Verify(out)
}

// wantErr fails unless err is want.
func wantErr(t *testing.T, err error, want *auth.Error) {
	t.Helper()
	var e *auth.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T), want %v", err, err, want)
	}
	if e != want {
		t.Fatalf("error %v, want %v", e, want)
	}
}

// TestErrors: every error has the auth package's prefix and the reason
// code the broker is meant to send.
func TestErrors(t *testing.T) {
	codes := map[*auth.Error]byte{
		ErrTooLong:           0x81,
		ErrMalformed:         0x81,
		ErrBase64:            0x81,
		ErrChannelBinding:    0x8C,
		ErrExtension:         0x8C,
		ErrAuthzID:           0x87,
		ErrUsername:          0x86,
		ErrBindingMismatch:   0x87,
		ErrNonce:             0x87,
		ErrBadCredentials:    0x86,
		ErrStoredCredentials: 0x80,
		ErrServerNonce:       0x87,
		ErrIterations:        0x87,
		ErrServerSignature:   0x87,
		ErrServerRefused:     0x87,
		ErrClientState:       0x82,
	}
	// One cause each, among these and the auth errors an exchange shares.
	msgs := map[string]bool{auth.ErrExchangeEnded.Msg: true, auth.ErrKeyDerivation.Msg: true}
	for e, code := range codes {
		if e.Code != code {
			t.Errorf("%v: code %#x, want %#x", e, e.Code, code)
		}
		if !strings.HasPrefix(e.Error(), "auth: ") {
			t.Errorf("%q lacks the package prefix", e.Error())
		}
		if msgs[e.Msg] {
			t.Errorf("two errors say %q: one cause each", e.Msg)
		}
		msgs[e.Msg] = true
	}
}

// TestRFC7677Vector replays RFC 7677 section 3 byte for byte through the
// server and the client.
func TestRFC7677Vector(t *testing.T) {
	m := New(testStore(t), WithNonce(fixedNonce))
	if m.Name() != "SCRAM-SHA-256" {
		t.Fatalf("Name() = %q", m.Name())
	}
	x := m.Start("c1")
	if out, done := step(t, x, rfcClientFirst); out != rfcServerFirst || done {
		t.Fatalf("server-first = %q, %v\nwant %q", out, done, rfcServerFirst)
	}
	if x.Identity() != "" {
		t.Fatalf("Identity before done = %q", x.Identity())
	}
	if out, done := step(t, x, rfcClientFinal); out != rfcServerFinal || !done {
		t.Fatalf("server-final = %q, %v\nwant %q", out, done, rfcServerFinal)
	}
	if x.Identity() != rfcUser {
		t.Fatalf("Identity() = %q", x.Identity())
	}

	c := newClient(rfcUser, rfcPassword, rfcClientNonce)
	if got := string(c.First()); got != rfcClientFirst {
		t.Fatalf("client-first = %q", got)
	}
	final, err := c.Final([]byte(rfcServerFirst))
	if err != nil || string(final) != rfcClientFinal {
		t.Fatalf("client-final = %q, %v\nwant %q", final, err, rfcClientFinal)
	}
	if err := c.Verify([]byte(rfcServerFinal)); err != nil {
		t.Fatalf("Verify: %v", err)
	}
}

func TestNewCredentials(t *testing.T) {
	salt := []byte("0123456789abcdef")
	c := NewCredentials("pencil", salt, 4096)
	salt[0] = 'X'
	if string(c.Salt) != "0123456789abcdef" || c.Iterations != 4096 {
		t.Fatalf("salt %q iterations %d: salt not copied?", c.Salt, c.Iterations)
	}
	if len(c.StoredKey) != 32 || len(c.ServerKey) != 32 || bytes.Equal(c.StoredKey, c.ServerKey) {
		t.Fatalf("keys %x %x", c.StoredKey, c.ServerKey)
	}
	if d := NewCredentials("pencil", []byte("0123456789abcdef"), 4096); !bytes.Equal(c.StoredKey, d.StoredKey) {
		t.Fatal("not deterministic")
	}
	if d := NewCredentials("pencil", []byte("0123456789abcdef"), 4097); bytes.Equal(c.StoredKey, d.StoredKey) {
		t.Fatal("iterations ignored")
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("iterations 0: no panic")
			}
		}()
		NewCredentials("pencil", salt, 0)
	}()
}

func TestRoundTrip(t *testing.T) {
	m := New(testStore(t))
	for _, u := range []struct{ user, password string }{
		{user: rfcUser, password: rfcPassword},
		{user: "a,b=c", password: "p=w,d"}, // sent as "a=2Cb=3Dc"
	} {
		c := NewClient(u.user, u.password)
		x, steps, err := run(m, c)
		if err != nil {
			t.Fatalf("%s: %v", u.user, err)
		}
		if steps != 2 || x.Identity() != u.user {
			t.Fatalf("%s: steps %d identity %q", u.user, steps, x.Identity())
		}
	}
	if got := string(NewClient("a,b=c", "").First()); !strings.HasPrefix(got, "n,,n=a=2Cb=3Dc,r=") {
		t.Fatalf("escaped client-first = %q", got)
	}
}

// TestEmptyInitialResponse: CONNECT with a method but no data gets an empty
// challenge, then client-first comes in AUTH. Only once.
func TestEmptyInitialResponse(t *testing.T) {
	m := New(testStore(t), WithNonce(fixedNonce))
	x := m.Start("c1")
	out, done, err := x.Step(nil)
	if err != nil || done || len(out) != 0 {
		t.Fatalf("Step(nil) = %q, %v, %v", out, done, err)
	}
	if out, _ := step(t, x, rfcClientFirst); out != rfcServerFirst {
		t.Fatalf("server-first = %q", out)
	}
	if out, done := step(t, x, rfcClientFinal); out != rfcServerFinal || !done {
		t.Fatalf("server-final = %q, %v", out, done)
	}

	x = m.Start("c1")
	x.Step(nil)
	_, _, err = x.Step([]byte{})
	wantErr(t, err, ErrMalformed)
}

func TestWrongPassword(t *testing.T) {
	m := New(testStore(t))
	x, steps, err := run(m, NewClient(rfcUser, "pencil2"))
	wantErr(t, err, ErrBadCredentials)
	if err.(*auth.Error).Code != 0x86 || steps != 2 || x.Identity() != "" {
		t.Fatalf("code %#x steps %d identity %q", err.(*auth.Error).Code, steps, x.Identity())
	}
}

// TestUnknownUser: an unknown user meets the same server-first shape, the
// same error at the same step as a wrong password, and the same salt each
// time, as a real user would.
func TestUnknownUser(t *testing.T) {
	secret := []byte("broker secret")
	m := New(testStore(t), WithSecret(secret))

	_, wrongSteps, wrongErr := run(m, NewClient(rfcUser, "nope"))
	x, steps, err := run(m, NewClient("mallory", "nope"))
	if err != wrongErr || steps != wrongSteps {
		t.Fatalf("unknown user: %v after %d steps; wrong password: %v after %d", err, steps, wrongErr, wrongSteps)
	}
	wantErr(t, err, ErrBadCredentials)
	if x.Identity() != "" {
		t.Fatalf("Identity() = %q", x.Identity())
	}

	salt := func(m auth.Method, user string) string {
		out, _, err := m.Start("c").Step([]byte("n,,n=" + user + ",r=abc"))
		if err != nil {
			t.Fatal(err)
		}
		attrs := strings.Split(string(out), ",")
		if len(attrs) != 3 || attrs[2] != "i=4096" {
			t.Fatalf("server-first %q", out)
		}
		s, err := decodeB64(strings.TrimPrefix(attrs[1], "s="))
		if err != nil || len(s) != 16 {
			t.Fatalf("salt %q: %x, %v", attrs[1], s, err)
		}
		return attrs[1]
	}
	if salt(m, "mallory") != salt(m, "mallory") {
		t.Fatal("decoy salt changes between exchanges")
	}
	if salt(m, "mallory") == salt(m, "trudy") {
		t.Fatal("two unknown users share a salt")
	}
	if salt(m, "mallory") != salt(New(MemStore{}, WithSecret(secret)), "mallory") {
		t.Fatal("same secret, different decoy salt")
	}
	if salt(m, "mallory") == salt(New(MemStore{}, WithSecret([]byte("other"))), "mallory") {
		t.Fatal("decoy salt ignores the secret")
	}

	m = New(MemStore{}, WithUnknownUserParams(10000, 32))
	out, _, err := m.Start("c").Step([]byte("n,,n=mallory,r=abc"))
	if err != nil {
		t.Fatal(err)
	}
	attrs := strings.Split(string(out), ",")
	if s, _ := decodeB64(attrs[1][2:]); len(s) != 32 || attrs[2] != "i=10000" {
		t.Fatalf("server-first %q with WithUnknownUserParams(10000, 32)", out)
	}
}

// TestUnknownUserKnownFlag: a proof that matches the exchange's keys still
// fails when the user is unknown. No client can find such a proof for the
// decoy keys (that needs a SHA-256 preimage), so the test swaps real keys
// into an unknown user's exchange.
func TestUnknownUserKnownFlag(t *testing.T) {
	m := New(MemStore{})
	x := m.Start("c")
	const bare = "n=mallory,r=abc"
	serverFirst, _ := step(t, x, "n,,"+bare)
	sx := x.(*exchange)
	sx.creds = NewCredentials("pw", sx.creds.Salt, sx.creds.Iterations)
	_, _, err := x.Step([]byte(clientFinalFor(t, "pw", "n,,", bare, serverFirst)))
	wantErr(t, err, ErrBadCredentials)
}

// clientFinalFor computes a client-final message the long way, for gs2
// headers Client does not send.
func clientFinalFor(t *testing.T, password, gs2, firstBare, serverFirst string) string {
	t.Helper()
	attrs := strings.Split(serverFirst, ",")
	salt, err := b64.DecodeString(attrs[1][2:])
	if err != nil {
		t.Fatal(err)
	}
	var iter int
	fmt.Sscanf(attrs[2], "i=%d", &iter)
	salted, err := pbkdf2.Key(sha256.New, password, salt, iter, 32)
	if err != nil {
		t.Fatal(err)
	}
	mac := func(key []byte, s string) []byte {
		h := hmac.New(sha256.New, key)
		h.Write([]byte(s))
		return h.Sum(nil)
	}
	clientKey := mac(salted, "Client Key")
	stored := sha256.Sum256(clientKey)
	withoutProof := "c=" + b64.EncodeToString([]byte(gs2)) + "," + attrs[0]
	sig := mac(stored[:], firstBare+","+serverFirst+","+withoutProof)
	for i := range sig {
		sig[i] ^= clientKey[i]
	}
	return withoutProof + ",p=" + b64.EncodeToString(sig)
}

// TestGS2YFlag: "y,," (client could bind, thinks the server can't) is
// accepted without binding, and its "c=" must be base64("y,,") = "eSws".
func TestGS2YFlag(t *testing.T) {
	m := New(testStore(t))
	first := "n=user,r=abc"
	x := m.Start("c")
	serverFirst, _ := step(t, x, "y,,"+first)
	final := clientFinalFor(t, rfcPassword, "y,,", first, serverFirst)
	if !strings.HasPrefix(final, "c=eSws,") {
		t.Fatalf("final %q", final)
	}
	if _, done := step(t, x, final); !done || x.Identity() != rfcUser {
		t.Fatalf("done %v identity %q", done, x.Identity())
	}

	x = m.Start("c")
	serverFirst, _ = step(t, x, "y,,"+first)
	final = clientFinalFor(t, rfcPassword, "n,,", first, serverFirst)
	_, _, err := x.Step([]byte(final))
	wantErr(t, err, ErrBindingMismatch)
}

func TestClientFirstErrors(t *testing.T) {
	m := New(testStore(t))
	cases := []struct {
		name string
		msg  string
		want *auth.Error // nil: accepted
	}{
		{name: "ok", msg: "n,,n=user,r=abc"},
		{name: "unknown user ok", msg: "n,,n=nobody,r=abc"},
		{name: "escapes", msg: "n,,n=a=2Cb=3Dc,r=abc"},
		{name: "space in name", msg: "n,,n=jo ann,r=abc"},
		{name: "extension", msg: "n,,n=user,r=abc,x=1,y=2"},
		{name: "channel binding", msg: "p=tls-unique,,n=user,r=abc", want: ErrChannelBinding},
		{name: "channel binding server-end-point", msg: "p=tls-server-end-point,,n=user,r=abc", want: ErrChannelBinding},
		{name: "authzid", msg: "n,a=admin,n=user,r=abc", want: ErrAuthzID},
		{name: "mandatory extension", msg: "n,,m=foo,n=user,r=abc", want: ErrExtension},
		{name: "bad flag", msg: "x,,n=user,r=abc", want: ErrMalformed},
		{name: "no gs2", msg: "n=user,r=abc", want: ErrMalformed},
		{name: "short gs2", msg: "n,", want: ErrMalformed},
		{name: "bad authzid", msg: "n,b=x,n=user,r=abc", want: ErrMalformed},
		{name: "no nonce", msg: "n,,n=user", want: ErrMalformed},
		{name: "swapped", msg: "n,,r=abc,n=user", want: ErrMalformed},
		{name: "empty nonce", msg: "n,,n=user,r=", want: ErrMalformed},
		{name: "nonce DEL", msg: "n,,n=user,r=ab\x7f", want: ErrMalformed},
		{name: "nonce space", msg: "n,,n=user,r=a b", want: ErrMalformed},
		{name: "bad extension", msg: "n,,n=user,r=abc,zz", want: ErrMalformed},
		{name: "empty extension", msg: "n,,n=user,r=abc,x=", want: ErrMalformed},
		{name: "trailing comma", msg: "n,,n=user,r=abc,", want: ErrMalformed},
		{name: "lower-case escape", msg: "n,,n=a=2cb,r=abc", want: ErrMalformed},
		{name: "bare =", msg: "n,,n=a=b,r=abc", want: ErrMalformed},
		{name: "= at end", msg: "n,,n=ab=,r=abc", want: ErrMalformed},
		{name: "empty name", msg: "n,,n=,r=abc", want: ErrUsername},
		{name: "non-ASCII name", msg: "n,,n=\u00fcser,r=abc", want: ErrUsername},
		{name: "control in name", msg: "n,,n=us\ter,r=abc", want: ErrUsername},
		{name: "NUL in name", msg: "n,,n=us\x00er,r=abc", want: ErrUsername},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, done, err := m.Start("c").Step([]byte(c.msg))
			if done {
				t.Fatal("done after client-first")
			}
			if c.want == nil {
				if err != nil || !bytes.HasPrefix(out, []byte("r=abc")) {
					t.Fatalf("= %q, %v", out, err)
				}
				return
			}
			wantErr(t, err, c.want)
			if out != nil {
				t.Fatalf("out %q with an error", out)
			}
		})
	}
}

// TestClientFinalTampered alters a good client-final in every field.
func TestClientFinalTampered(t *testing.T) {
	m := New(testStore(t), WithNonce(fixedNonce))
	good := rfcClientFinal
	goodProof := good[strings.LastIndex(good, ",p=")+3:]
	flipped := []byte(goodProof)
	flipped[0] ^= 0x01 // 'd' -> 'e': still base64, a different proof
	cases := []struct {
		name string
		msg  string
		want *auth.Error // nil: accepted
	}{
		{name: "good", msg: good},
		{name: "bad nonce", msg: strings.Replace(good, "$k0,", "$k1,", 1), want: ErrNonce},
		{name: "client nonce only", msg: "c=biws,r=" + rfcClientNonce + ",p=" + goodProof, want: ErrNonce},
		{name: "bad c", msg: strings.Replace(good, "c=biws", "c=eSws", 1), want: ErrBindingMismatch},
		{name: "c with binding data", msg: strings.Replace(good, "c=biws", "c=cD10bHMtdW5pcXVlLCxYWFg=", 1), want: ErrBindingMismatch},
		{name: "c not base64", msg: strings.Replace(good, "c=biws", "c=bi!s", 1), want: ErrBase64},
		{name: "c bad padding bits", msg: strings.Replace(good, "c=biws", "c=bix=", 1), want: ErrBase64},
		{name: "bad proof", msg: strings.Replace(good, goodProof, string(flipped), 1), want: ErrBadCredentials},
		{name: "proof not base64", msg: strings.Replace(good, goodProof, "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ", 1), want: ErrBase64},
		{name: "proof with newline", msg: strings.Replace(good, goodProof, "dHzbZapWIk4jUhN+Ute9\nytag9zjfMHgsqmmiz7AndVQ=", 1), want: ErrBase64},
		{name: "proof too short", msg: strings.Replace(good, goodProof, "dHzbZapW", 1), want: ErrMalformed},
		{name: "proof empty", msg: strings.Replace(good, goodProof, "", 1), want: ErrMalformed},
		{name: "no proof", msg: good[:strings.LastIndex(good, ",p=")], want: ErrMalformed},
		{name: "proof first", msg: "p=" + goodProof + ",c=biws,r=x", want: ErrMalformed},
		{name: "proof not last", msg: good + ",x=1", want: ErrMalformed},
		// A valid extension is taken into the AuthMessage, so the proof
		// made without it no longer matches.
		{name: "extension inserted", msg: strings.Replace(good, ",p=", ",x=1,p=", 1), want: ErrBadCredentials},
		{name: "empty", msg: "", want: ErrMalformed},
		{name: "garbage", msg: "hello", want: ErrMalformed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			x := m.Start("c")
			step(t, x, rfcClientFirst)
			out, done, err := x.Step([]byte(c.msg))
			if c.want == nil {
				if err != nil || !done || string(out) != rfcServerFinal {
					t.Fatalf("= %q, %v, %v", out, done, err)
				}
				return
			}
			wantErr(t, err, c.want)
			if done || out != nil || x.Identity() != "" {
				t.Fatalf("out %q done %v identity %q with an error", out, done, x.Identity())
			}
		})
	}
}

func TestOversizeInput(t *testing.T) {
	m := New(testStore(t))
	msg := func(n int) []byte { // a client-first of n bytes, unknown user
		const head, tail = "n,,n=", ",r=abc"
		return []byte(head + strings.Repeat("u", n-len(head)-len(tail)) + tail)
	}
	if _, _, err := m.Start("c").Step(msg(maxMessage)); err != nil {
		t.Fatalf("%d bytes: %v", maxMessage, err)
	}
	_, _, err := m.Start("c").Step(msg(maxMessage + 1))
	wantErr(t, err, ErrTooLong)

	x := m.Start("c")
	if _, _, err := x.Step([]byte(rfcClientFirst)); err != nil {
		t.Fatal(err)
	}
	_, _, err = x.Step(make([]byte, 1<<20))
	wantErr(t, err, ErrTooLong)

	c := NewClient("u", "p")
	_, err = c.Final(make([]byte, maxMessage+1))
	wantErr(t, err, ErrTooLong)
}

// TestStepAfterEnd: an exchange takes no input once it has ended, however
// it ended.
func TestStepAfterEnd(t *testing.T) {
	m := New(testStore(t), WithNonce(fixedNonce))
	x := m.Start("c")
	step(t, x, rfcClientFirst)
	step(t, x, rfcClientFinal)
	for _, in := range []string{"", rfcClientFirst, rfcClientFinal} {
		out, done, err := x.Step([]byte(in))
		wantErr(t, err, auth.ErrExchangeEnded)
		if out != nil || done {
			t.Fatalf("out %q done %v", out, done)
		}
	}
	if x.Identity() != rfcUser {
		t.Fatalf("Identity() after extra steps = %q", x.Identity())
	}

	x = m.Start("c")
	x.Step([]byte("p=x,,n=user,r=abc"))
	_, _, err := x.Step([]byte(rfcClientFirst))
	wantErr(t, err, auth.ErrExchangeEnded)
}

func TestStoredCredentialsUnusable(t *testing.T) {
	good := NewCredentials("pw", []byte("salt"), 4096)
	for name, c := range map[string]Credentials{
		"no salt":       {Iterations: 4096, StoredKey: good.StoredKey, ServerKey: good.ServerKey},
		"no iterations": {Salt: good.Salt, StoredKey: good.StoredKey, ServerKey: good.ServerKey},
		"short key":     {Salt: good.Salt, Iterations: 4096, StoredKey: good.StoredKey[:16], ServerKey: good.ServerKey},
		"no server key": {Salt: good.Salt, Iterations: 4096, StoredKey: good.StoredKey},
	} {
		m := New(MemStore{"u": c})
		_, _, err := m.Start("c").Step([]byte("n,,n=u,r=abc"))
		if !errors.Is(err, ErrStoredCredentials) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestNoncePerExchange(t *testing.T) {
	m := New(testStore(t))
	seen := map[string]bool{}
	for range 100 {
		out, _, err := m.Start("c").Step([]byte("n,,n=user,r=abc"))
		if err != nil {
			t.Fatal(err)
		}
		nonce := strings.Split(string(out), ",")[0]
		if seen[nonce] || len(nonce) < len("r=abc")+20 {
			t.Fatalf("nonce %q repeated or short", nonce)
		}
		seen[nonce] = true
	}
}

func TestClientErrors(t *testing.T) {
	const cn = "cnonce"
	cases := []struct {
		name        string
		serverFirst string
		want        *auth.Error
	}{
		{name: "nonce not extended", serverFirst: "r=cnonce,s=c2FsdA==,i=4096", want: ErrServerNonce},
		{name: "other nonce", serverFirst: "r=xnoncexx,s=c2FsdA==,i=4096", want: ErrServerNonce},
		{name: "too few iterations", serverFirst: "r=cnonceS,s=c2FsdA==,i=4095", want: ErrIterations},
		{name: "too many iterations", serverFirst: "r=cnonceS,s=c2FsdA==,i=100000000", want: ErrIterations},
		{name: "leading zero", serverFirst: "r=cnonceS,s=c2FsdA==,i=04096", want: ErrMalformed},
		{name: "signed", serverFirst: "r=cnonceS,s=c2FsdA==,i=+4096", want: ErrMalformed},
		{name: "huge", serverFirst: "r=cnonceS,s=c2FsdA==,i=99999999999999999999", want: ErrMalformed},
		{name: "salt not base64", serverFirst: "r=cnonceS,s=c2Fsd!==,i=4096", want: ErrBase64},
		{name: "empty salt", serverFirst: "r=cnonceS,s=,i=4096", want: ErrMalformed},
		{name: "missing i", serverFirst: "r=cnonceS,s=c2FsdA==", want: ErrMalformed},
		{name: "order", serverFirst: "s=c2FsdA==,r=cnonceS,i=4096", want: ErrMalformed},
		{name: "mandatory extension", serverFirst: "m=x,r=cnonceS,s=c2FsdA==,i=4096", want: ErrExtension},
		{name: "server error", serverFirst: "e=other-error", want: ErrMalformed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := newClient("u", "p", cn).Final([]byte(c.serverFirst))
			wantErr(t, err, c.want)
		})
	}

	c := newClient(rfcUser, rfcPassword, rfcClientNonce)
	wantErr(t, c.Verify([]byte(rfcServerFinal)), ErrClientState)
	if _, err := c.Final([]byte(rfcServerFirst)); err != nil {
		t.Fatal(err)
	}
	_, err := c.Final([]byte(rfcServerFirst))
	wantErr(t, err, ErrClientState)

	verify := func(serverFinal string) error {
		c := newClient(rfcUser, rfcPassword, rfcClientNonce)
		if _, err := c.Final([]byte(rfcServerFirst)); err != nil {
			t.Fatal(err)
		}
		return c.Verify([]byte(serverFinal))
	}
	wantErr(t, verify("v=7rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="), ErrServerSignature)
	wantErr(t, verify("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4"), ErrBase64)
	wantErr(t, verify("e=invalid-proof"), ErrServerRefused)
	wantErr(t, verify("m=x"), ErrExtension)
	wantErr(t, verify(""), ErrMalformed)
	if err := verify(rfcServerFinal + ",x=1"); err != nil {
		t.Fatalf("server-final with an extension: %v", err)
	}
	c = newClient(rfcUser, rfcPassword, rfcClientNonce)
	c.Final([]byte(rfcServerFirst))
	c.Verify([]byte(rfcServerFinal))
	wantErr(t, c.Verify([]byte(rfcServerFinal)), ErrClientState)
}

// TestReauthentication: each re-authentication is a new auth.Exchange of the
// same auth.Method and may name another user; the broker compares identities.
func TestReauthentication(t *testing.T) {
	m := New(testStore(t))
	first, _, err := run(m, NewClient(rfcUser, rfcPassword))
	if err != nil {
		t.Fatal(err)
	}
	again, _, err := run(m, NewClient("a,b=c", "p=w,d"))
	if err != nil {
		t.Fatal(err)
	}
	if first.Identity() != rfcUser || again.Identity() != "a,b=c" {
		t.Fatalf("identities %q, %q", first.Identity(), again.Identity())
	}
}

// TestConcurrentExchanges runs many exchanges on one auth.Method at once; run
// it with -race.
func TestConcurrentExchanges(t *testing.T) {
	m := New(testStore(t))
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 16 {
		wg.Go(func() {
			for j := range 4 {
				user, pass, want := rfcUser, rfcPassword, error(nil)
				switch (i + j) % 3 {
				case 1:
					pass, want = "wrong", ErrBadCredentials
				case 2:
					user, want = fmt.Sprintf("ghost%d", i), ErrBadCredentials
				}
				x, _, err := run(m, NewClient(user, pass))
				if err != want {
					errs <- fmt.Errorf("%s/%s: %v, want %v", user, pass, err, want)
					return
				}
				if want == nil && x.Identity() != user {
					errs <- fmt.Errorf("identity %q, want %q", x.Identity(), user)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// FuzzServer feeds arbitrary client-first and client-final messages.
// The server must not panic, must fail only with a *auth.Error, must end the
// exchange after an error or success, and may succeed only as "user".
func FuzzServer(f *testing.F) {
	f.Add([]byte(rfcClientFirst), []byte(rfcClientFinal))
	f.Add([]byte("y,,n=user,r=rOprNGfwEbeRWgbNEkqO"), []byte(rfcClientFinal))
	f.Add([]byte("n,,n=a=2Cb,r=x,e=1"), []byte("c=biws,r=x,p=AAAA"))
	f.Add([]byte{}, []byte(rfcClientFirst))
	m := New(testStore(f), WithNonce(fixedNonce))
	f.Fuzz(func(t *testing.T, first, final []byte) {
		x := m.Start("c")
		ended := false
		for _, in := range [][]byte{first, final, final} {
			out, done, err := x.Step(in)
			if ended {
				if err != auth.ErrExchangeEnded {
					t.Fatalf("Step after the end: %v", err)
				}
				continue
			}
			if err != nil {
				var e *auth.Error
				if !errors.As(err, &e) || out != nil || done {
					t.Fatalf("%q %v %T %v", out, done, err, err)
				}
				ended = true
				continue
			}
			if done {
				if x.Identity() != rfcUser || !bytes.HasPrefix(out, []byte("v=")) {
					t.Fatalf("done as %q with %q", x.Identity(), out)
				}
				ended = true
			}
		}
	})
}

// BenchmarkServer measures the server's part of one exchange: no
// PBKDF2 there, only a handful of HMACs.
func BenchmarkServer(b *testing.B) {
	m := New(testStore(b), WithNonce(fixedNonce))
	first, final := []byte(rfcClientFirst), []byte(rfcClientFinal)
	b.ReportAllocs()
	for b.Loop() {
		x := m.Start("c")
		x.Step(first)
		if _, done, err := x.Step(final); !done || err != nil {
			b.Fatal(done, err)
		}
	}
}
