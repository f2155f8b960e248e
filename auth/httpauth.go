package auth

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Errors of NewHTTP, one per cause: configuration mistakes, never sent to
// a client. Compare with ==.
var (
	// ErrHTTPURL: HTTPConfig.URL is not an absolute http or https URL.
	ErrHTTPURL = &Error{CodeUnspecified, "HTTP authentication URL must be http:// or https:// with a host"}
	// ErrHTTPTimeout: HTTPConfig.Timeout is not positive.
	ErrHTTPTimeout = &Error{CodeUnspecified, "HTTP authentication timeout must be positive"}
	// ErrHTTPCache: HTTPConfig.CacheTTL or CacheSize is negative.
	ErrHTTPCache = &Error{CodeUnspecified, "HTTP authentication cache TTL and size must not be negative"}
	// ErrHTTPHeader: an HTTPConfig.Header name is not an HTTP token, or a
	// value holds CR, LF or NUL.
	ErrHTTPHeader = &Error{CodeUnspecified, "invalid HTTP authentication header"}
)

// Limits of the HTTP authenticator.
const (
	// maxHTTPAnswer bounds the response body read: the answer is a few
	// dozen bytes, so 64 KiB is generous and keeps a broken back end from
	// making the broker buffer megabytes per login.
	maxHTTPAnswer = 64 << 10
	// defaultHTTPCacheSize is HTTPConfig.CacheSize when it is 0.
	defaultHTTPCacheSize = 4096
	// httpConns bounds connections to the back end. The broker runs
	// Authenticate on a bounded pool; 64 idle connections kept per host
	// let a reconnect storm reuse them instead of opening one per login,
	// and 128 in all keep a storm from flooding the back end.
	httpIdleConns = 64
	httpMaxConns  = 128
)

// HTTPConfig configures an HTTP authenticator.
type HTTPConfig struct {
	// URL receives a POST per login; http or https. Required.
	URL string
	// Timeout bounds each request, connection and TLS handshake
	// included; a back end that takes longer is unavailable (0x88).
	// Required, positive; the caller's context may cut it shorter.
	Timeout time.Duration
	// CacheTTL is how long allow, deny and ignore answers are remembered.
	// 0 turns the cache off. The key covers the client identifier, user
	// name, password, certificate identity and listener, not the remote
	// address: a back end that decides by address wants 0.
	CacheTTL time.Duration
	// CacheSize bounds the answers remembered; 0 means 4096.
	CacheSize int
	// Header is added to every request, e.g. "Authorization". Copied by
	// NewHTTP.
	Header map[string]string
}

// HTTP authenticates clients by asking a web service. Each login is a POST
// of a JSON object to the configured URL:
//
//	{"clientid": "...", "username": "...", "password": "...",
//	 "remote": "host:port", "listener": "tcp", "cert_identity": ""}
//
// The password is a JSON string when it is valid UTF-8; otherwise
// "password" is "" and "password_base64" holds its standard base64.
//
// The service answers 200 with {"result": "allow" | "deny" | "ignore"}
// and, for "deny", an optional "reason": "bad_password" (ErrBadPassword,
// 0x86) or "not_authorized" (ErrDenied, 0x87, the default). "ignore" is
// ErrUnknownUser: the next authenticator in a Chain decides. 401 is
// ErrBadPassword and 403 ErrDenied, without a body. Anything else — other
// statuses, redirects (not followed), a malformed body, a timeout — is an
// error wrapping ErrBackend (0x88): errors.Is(err, ErrBackend) holds,
// errors.As finds the *Error, and the message says what went wrong.
//
// Answers are cached (HTTPConfig.CacheTTL); back end errors are not.
// Proxy environment variables are ignored: the request goes straight to
// the URL's host. All methods are safe for concurrent use.
type HTTP struct {
	url     string
	safeURL string // for messages: the URL without its password
	header  http.Header
	timeout time.Duration
	client  *http.Client
	cache   *answerCache
	key     keyer
}

// NewHTTP checks cfg and returns an HTTP authenticator. Its error is one
// of ErrHTTPURL, ErrHTTPTimeout, ErrHTTPCache, ErrHTTPHeader, possibly
// wrapped with detail.
func NewHTTP(cfg HTTPConfig) (*HTTP, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, ErrHTTPURL
	}
	switch {
	case cfg.Timeout <= 0:
		return nil, ErrHTTPTimeout
	case cfg.CacheTTL < 0, cfg.CacheSize < 0:
		return nil, ErrHTTPCache
	}
	h := &HTTP{url: u.String(), safeURL: u.Redacted(), header: http.Header{}, timeout: cfg.Timeout, key: newKeyer()}
	for k, v := range cfg.Header {
		if !validHeader(k, v) {
			return nil, fmt.Errorf("%w: %q", ErrHTTPHeader, k)
		}
		h.header.Set(k, v)
	}
	h.header.Set("Content-Type", "application/json")
	size := cfg.CacheSize
	if size == 0 {
		size = defaultHTTPCacheSize
	}
	h.cache = newAnswerCache(size, cfg.CacheTTL)
	dialer := &net.Dialer{Timeout: cfg.Timeout, KeepAlive: 30 * time.Second}
	h.client = &http.Client{
		Transport: &http.Transport{
			DialContext:         dialer.DialContext,
			TLSHandshakeTimeout: cfg.Timeout,
			MaxIdleConns:        httpIdleConns,
			MaxIdleConnsPerHost: httpIdleConns,
			MaxConnsPerHost:     httpMaxConns,
			IdleConnTimeout:     90 * time.Second,
			ForceAttemptHTTP2:   true,
		},
		// A redirect is an answer we do not understand; following it
		// would also send the password wherever it points.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return h, nil
}

// validHeader reports whether name is an HTTP token (RFC 9110 section
// 5.1) and value has no CR, LF or NUL (section 5.5).
func validHeader(name, value string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
		if !ok {
			return false
		}
	}
	for i := 0; i < len(value); i++ {
		if c := value[i]; c == '\r' || c == '\n' || c == 0 {
			return false
		}
	}
	return true
}

// Close closes idle connections to the back end and returns nil; it is
// an io.Closer so that the broker can close authenticators alike.
// Authenticate still works afterwards (it opens new connections). Safe
// for concurrent use.
func (h *HTTP) Close() error {
	h.client.CloseIdleConnections()
	return nil
}

// httpLogin is the request body.
type httpLogin struct {
	ClientID       string `json:"clientid"`
	Username       string `json:"username"`
	Password       string `json:"password"`
	PasswordBase64 string `json:"password_base64,omitempty"`
	Remote         string `json:"remote"`
	Listener       string `json:"listener"`
	CertIdentity   string `json:"cert_identity"`
}

// httpAnswer is the response body of a 200.
type httpAnswer struct {
	Result string `json:"result"`
	Reason string `json:"reason"`
}

// backendError is an ErrBackend with what went wrong. It unwraps to
// ErrBackend, so callers read the code with errors.As and test the cause
// with errors.Is; the detail is for the log.
type backendError struct{ detail string }

func (e *backendError) Error() string { return ErrBackend.Error() + ": " + e.detail }
func (e *backendError) Unwrap() error { return ErrBackend }

// Authenticate implements Authenticator: it asks the back end, or the
// cache. It returns within HTTPConfig.Timeout (or ctx's deadline, if
// sooner). Safe for concurrent use.
func (h *HTTP) Authenticate(ctx context.Context, l *Login) error {
	key := h.key.sum(l.ClientID, l.Username, string(l.Password), l.CertIdentity, l.Listener,
		connectFlags(l.HasUsername, l.HasPassword))
	if hit, answer := h.cache.get(key, time.Now()); hit {
		return answer
	}
	answer, err := h.ask(ctx, l)
	if err != nil {
		return err
	}
	h.cache.put(key, answer, time.Now())
	return answer
}

// connectFlags encodes the two CONNECT flags for the cache key: an empty user
// name is not the same login as none.
func connectFlags(user, password bool) string {
	b := []byte{'0', '0'}
	if user {
		b[0] = '1'
	}
	if password {
		b[1] = '1'
	}
	return string(b)
}

// ask makes the request. It returns the back end's answer (nil for allow)
// or, with err != nil, a *backendError.
func (h *HTTP) ask(ctx context.Context, l *Login) (answer, err error) {
	body := httpLogin{ClientID: l.ClientID, Username: l.Username, Remote: l.Remote, Listener: l.Listener, CertIdentity: l.CertIdentity}
	if utf8.Valid(l.Password) {
		body.Password = string(l.Password)
	} else {
		body.PasswordBase64 = base64.StdEncoding.EncodeToString(l.Password)
	}
	data, err := json.Marshal(body)
	if err != nil {
		return nil, &backendError{"encoding the request: " + err.Error()}
	}
	ctx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.url, bytes.NewReader(data))
	if err != nil {
		return nil, &backendError{err.Error()}
	}
	req.Header = h.header.Clone()
	resp, err := h.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its message repeats the URL, password and all
		}
		if ctx.Err() != nil {
			return nil, &backendError{fmt.Sprintf("POST %s: no answer within %v: %v", h.safeURL, h.timeout, err)}
		}
		return nil, &backendError{fmt.Sprintf("POST %s: %v", h.safeURL, err)}
	}
	defer resp.Body.Close()
	// Read to the end (bounded) even when the status says enough, so that
	// the connection can be reused.
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxHTTPAnswer+1))
	switch {
	case err != nil:
		return nil, &backendError{fmt.Sprintf("POST %s: reading the answer: %v", h.safeURL, err)}
	case len(raw) > maxHTTPAnswer:
		return nil, &backendError{fmt.Sprintf("POST %s: answer over %d bytes", h.safeURL, maxHTTPAnswer)}
	case resp.StatusCode == http.StatusUnauthorized:
		return ErrBadPassword, nil
	case resp.StatusCode == http.StatusForbidden:
		return ErrDenied, nil
	case resp.StatusCode != http.StatusOK:
		return nil, &backendError{fmt.Sprintf("POST %s: status %s", h.safeURL, resp.Status)}
	}
	var a httpAnswer
	if err := json.Unmarshal(raw, &a); err != nil {
		return nil, &backendError{fmt.Sprintf("POST %s: answer is not the expected JSON: %v", h.safeURL, err)}
	}
	switch a.Result {
	case "allow":
		return nil, nil
	case "ignore":
		return ErrUnknownUser, nil
	case "deny":
		if a.Reason == "bad_password" {
			return ErrBadPassword, nil
		}
		return ErrDenied, nil // "not_authorized", none, or one we do not know
	}
	return nil, &backendError{fmt.Sprintf("POST %s: unknown result %s", h.safeURL, strconv.Quote(a.Result))}
}
