package auth

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// httpBackend is a test authentication service answering every request
// with status and body, and counting requests.
type httpBackend struct {
	srv    *httptest.Server
	hits   atomic.Int64
	status atomic.Int64
	body   atomic.Pointer[string]
	last   atomic.Pointer[http.Request] // clone of the last request
	lastIn atomic.Pointer[map[string]any]
}

func newHTTPBackend(t testing.TB, status int, body string) *httpBackend {
	t.Helper()
	b := &httpBackend{}
	b.set(status, body)
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.hits.Add(1)
		var in map[string]any
		_ = json.NewDecoder(r.Body).Decode(&in)
		b.lastIn.Store(&in)
		b.last.Store(r.Clone(context.Background()))
		if s := int(b.status.Load()); s == http.StatusFound {
			http.Redirect(w, r, "/elsewhere", s)
			return
		}
		w.WriteHeader(int(b.status.Load()))
		_, _ = w.Write([]byte(*b.body.Load()))
	}))
	t.Cleanup(b.srv.Close)
	return b
}

func (b *httpBackend) set(status int, body string) {
	b.status.Store(int64(status))
	b.body.Store(&body)
}

// newTestHTTP returns an authenticator for url, closed when the test ends.
func newTestHTTP(t testing.TB, cfg HTTPConfig) *HTTP {
	t.Helper()
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	h, err := NewHTTP(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	return h
}

// wantBackendError fails unless err wraps ErrBackend, carries code 0x88
// and its message holds detail.
func wantBackendError(t testing.TB, err error, detail string) {
	t.Helper()
	var ae *Error
	if !errors.Is(err, ErrBackend) || !errors.As(err, &ae) || ae.Code != CodeServerUnavailable {
		t.Fatalf("err = %v, want one wrapping ErrBackend with code 0x88", err)
	}
	if !strings.Contains(err.Error(), detail) {
		t.Errorf("message %q lacks %q", err, detail)
	}
}

func TestHTTPNewErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  HTTPConfig
		want error
	}{
		{name: "no URL", cfg: HTTPConfig{Timeout: time.Second}, want: ErrHTTPURL},
		{name: "ftp", cfg: HTTPConfig{URL: "ftp://auth.example/", Timeout: time.Second}, want: ErrHTTPURL},
		{name: "no host", cfg: HTTPConfig{URL: "http:///auth", Timeout: time.Second}, want: ErrHTTPURL},
		{name: "relative", cfg: HTTPConfig{URL: "/auth", Timeout: time.Second}, want: ErrHTTPURL},
		{name: "unparsable", cfg: HTTPConfig{URL: "http://[::1", Timeout: time.Second}, want: ErrHTTPURL},
		{name: "no timeout", cfg: HTTPConfig{URL: "http://auth.example/"}, want: ErrHTTPTimeout},
		{name: "negative TTL", cfg: HTTPConfig{URL: "http://auth.example/", Timeout: time.Second, CacheTTL: -1}, want: ErrHTTPCache},
		{name: "negative size", cfg: HTTPConfig{URL: "http://auth.example/", Timeout: time.Second, CacheSize: -1}, want: ErrHTTPCache},
		{name: "header name", cfg: HTTPConfig{URL: "http://auth.example/", Timeout: time.Second, Header: map[string]string{"Bad Name": "x"}}, want: ErrHTTPHeader},
		{name: "header value", cfg: HTTPConfig{URL: "http://auth.example/", Timeout: time.Second, Header: map[string]string{"X-Token": "a\r\nInjected: 1"}}, want: ErrHTTPHeader},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if h, err := NewHTTP(tc.cfg); h != nil || !errors.Is(err, tc.want) {
				t.Errorf("NewHTTP = %v, %v; want %v", h, err, tc.want)
			}
		})
	}
}

func TestHTTPAnswers(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		body    string
		want    error  // when backend is ""
		backend string // a substring of the ErrBackend message
	}{
		{name: "allow", status: 200, body: `{"result":"allow"}`, want: nil},
		{name: "deny", status: 200, body: `{"result":"deny"}`, want: ErrDenied},
		{name: "deny not authorized", status: 200, body: `{"result":"deny","reason":"not_authorized"}`, want: ErrDenied},
		{name: "deny bad password", status: 200, body: `{"result":"deny","reason":"bad_password"}`, want: ErrBadPassword},
		{name: "deny other reason", status: 200, body: `{"result":"deny","reason":"banned"}`, want: ErrDenied},
		{name: "ignore", status: 200, body: `{"result":"ignore"}`, want: ErrUnknownUser},
		{name: "extra fields", status: 200, body: `{"result":"allow","is_superuser":true}`, want: nil},
		{name: "401", status: 401, body: "", want: ErrBadPassword},
		{name: "403", status: 403, body: "forbidden", want: ErrDenied},
		{name: "500", status: 500, body: "oops", backend: "status 500"},
		{name: "404", status: 404, body: "", backend: "status 404"},
		{name: "204", status: 204, body: "", backend: "status 204"},
		{name: "redirect", status: 302, backend: "status 302"},
		{name: "not JSON", status: 200, body: "allow", backend: "not the expected JSON"},
		{name: "unknown result", status: 200, body: `{"result":"maybe"}`, backend: `unknown result "maybe"`},
		{name: "no result", status: 200, body: `{}`, backend: `unknown result ""`},
		{name: "big body", status: 200, body: `{"result":"allow","pad":"` + strings.Repeat("x", maxHTTPAnswer) + `"}`, backend: "answer over 65536 bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := newHTTPBackend(t, tc.status, tc.body)
			h := newTestHTTP(t, HTTPConfig{URL: b.srv.URL})
			err := h.Authenticate(context.Background(), passwdLogin("alice", "pw"))
			if tc.backend != "" {
				wantBackendError(t, err, tc.backend)
				return
			}
			if err != tc.want {
				t.Errorf("Authenticate = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestHTTPRequest(t *testing.T) {
	b := newHTTPBackend(t, 200, `{"result":"allow"}`)
	h := newTestHTTP(t, HTTPConfig{URL: b.srv.URL + "/mqtt/auth", Header: map[string]string{"Authorization": "Bearer t0ken"}})
	l := passwdLogin("alice", "pässwörd")
	l.CertIdentity = "device-7"
	if err := h.Authenticate(context.Background(), l); err != nil {
		t.Fatal(err)
	}
	r := b.last.Load()
	if r.Method != http.MethodPost || r.URL.Path != "/mqtt/auth" || r.Header.Get("Content-Type") != "application/json" ||
		r.Header.Get("Authorization") != "Bearer t0ken" {
		t.Errorf("request %s %s, headers %v", r.Method, r.URL.Path, r.Header)
	}
	want := map[string]any{"clientid": "c1", "username": "alice", "password": "pässwörd",
		"remote": "127.0.0.1:5000", "listener": "tcp", "cert_identity": "device-7"}
	got := *b.lastIn.Load()
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("body %v has extra fields", got)
	}

	// A password that is not UTF-8 goes as base64.
	if err := h.Authenticate(context.Background(), passwdLogin("alice", "\xff\x00\x01")); err != nil {
		t.Fatal(err)
	}
	got = *b.lastIn.Load()
	if got["password"] != "" || got["password_base64"] != "/wAB" {
		t.Errorf("binary password sent as %v / %v", got["password"], got["password_base64"])
	}
}

func TestHTTPTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // runs before srv.Close
	const timeout = 200 * time.Millisecond
	h := newTestHTTP(t, HTTPConfig{URL: srv.URL, Timeout: timeout, CacheTTL: time.Minute})
	start := time.Now()
	err := h.Authenticate(context.Background(), passwdLogin("alice", "pw"))
	if d := time.Since(start); d < timeout || d > timeout+time.Second {
		t.Errorf("returned after %v, want about %v", d, timeout)
	}
	wantBackendError(t, err, "no answer within 200ms")

	// The caller's deadline counts too.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	start = time.Now()
	err = h.Authenticate(ctx, passwdLogin("alice", "pw"))
	if d := time.Since(start); d > timeout {
		t.Errorf("with a 20ms context, returned after %v", d)
	}
	wantBackendError(t, err, "no answer")
}

func TestHTTPUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there now
	h := newTestHTTP(t, HTTPConfig{URL: url, CacheTTL: time.Minute})
	wantBackendError(t, h.Authenticate(context.Background(), passwdLogin("alice", "pw")), "POST "+url)
}

func TestHTTPCache(t *testing.T) {
	ctx := context.Background()
	b := newHTTPBackend(t, 200, `{"result":"allow"}`)
	h := newTestHTTP(t, HTTPConfig{URL: b.srv.URL, CacheTTL: time.Minute})
	for range 3 {
		if err := h.Authenticate(ctx, passwdLogin("alice", "pw")); err != nil {
			t.Fatal(err)
		}
	}
	if n := b.hits.Load(); n != 1 {
		t.Errorf("three logins made %d requests, want 1", n)
	}
	// Denials are cached too; every part of the key counts.
	b.set(200, `{"result":"deny"}`)
	other := passwdLogin("alice", "pw")
	other.ClientID = "c2"
	noPassword := passwdLogin("alice", "")
	noPassword.HasPassword = false
	for _, l := range []*Login{passwdLogin("alice", "PW"), passwdLogin("bob", "pw"), other, passwdLogin("alice", ""), noPassword} {
		for range 2 {
			if err := h.Authenticate(ctx, l); err != ErrDenied {
				t.Fatalf("%+v: %v, want ErrDenied", l, err)
			}
		}
	}
	if n := b.hits.Load(); n != 6 {
		t.Errorf("five new logins twice each made %d requests in all, want 6", n)
	}

	// Errors are not cached: the next login asks again.
	b.set(503, "")
	login := passwdLogin("carol", "pw")
	wantBackendError(t, h.Authenticate(ctx, login), "status 503")
	b.set(200, `{"result":"allow"}`)
	if err := h.Authenticate(ctx, login); err != nil {
		t.Errorf("after the back end recovered: %v", err)
	}
	if n := b.hits.Load(); n != 8 {
		t.Errorf("%d requests, want 8", n)
	}
}

func TestHTTPCacheOffAndExpiry(t *testing.T) {
	ctx := context.Background()
	b := newHTTPBackend(t, 200, `{"result":"allow"}`)
	off := newTestHTTP(t, HTTPConfig{URL: b.srv.URL})
	for range 2 {
		if err := off.Authenticate(ctx, passwdLogin("alice", "pw")); err != nil {
			t.Fatal(err)
		}
	}
	if n := b.hits.Load(); n != 2 {
		t.Errorf("without a cache two logins made %d requests", n)
	}
	short := newTestHTTP(t, HTTPConfig{URL: b.srv.URL, CacheTTL: 50 * time.Millisecond})
	_ = short.Authenticate(ctx, passwdLogin("alice", "pw"))
	time.Sleep(100 * time.Millisecond)
	_ = short.Authenticate(ctx, passwdLogin("alice", "pw"))
	if n := b.hits.Load(); n != 4 {
		t.Errorf("an expired answer was used: %d requests, want 4", n)
	}
}

func TestHTTPRedactsURLPassword(t *testing.T) {
	b := newHTTPBackend(t, 500, "")
	url := strings.Replace(b.srv.URL, "http://", "http://broker:hunter2@", 1)
	h := newTestHTTP(t, HTTPConfig{URL: url})
	err := h.Authenticate(context.Background(), passwdLogin("alice", "pw"))
	wantBackendError(t, err, "status 500")
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("message %q shows the URL's password", err)
	}
	if u, p, _ := b.last.Load().BasicAuth(); u != "broker" || p != "hunter2" {
		t.Errorf("basic auth %q/%q not sent", u, p)
	}
}

// TestHTTPInChain: "ignore" passes the login on to the next authenticator.
func TestHTTPInChain(t *testing.T) {
	b := newHTTPBackend(t, 200, `{"result":"ignore"}`)
	h := newTestHTTP(t, HTTPConfig{URL: b.srv.URL})
	p := loadPasswd(t, writePasswdFile(t, "users.pw", "alice:"+testBcrypt(t, "pw")+"\n", 0o600))
	c := Chain(h, p)
	if err := c.Authenticate(context.Background(), passwdLogin("alice", "pw")); err != nil {
		t.Errorf("chain: %v", err)
	}
	b.set(200, `{"result":"deny"}`)
	if err := c.Authenticate(context.Background(), passwdLogin("alice", "other")); err != ErrDenied {
		t.Errorf("chain after deny: %v", err)
	}
}
