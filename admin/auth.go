package admin

import (
	"crypto/sha256"
	"crypto/subtle"
	_ "embed"
	"encoding/hex"
	"html/template"
	"net/http"
	"strings"
)

// Who may use the API and the dashboard, when Config.Token is set:
//
//   - a request with "Authorization: Bearer TOKEN", any method: scripts;
//   - a GET or HEAD with the session cookie: a browser, after the token was
//     typed into the form of the 401 page and POSTed to /login.
//
// The token never travels in an address (a query string lands in proxy
// and server logs, browser history and Referer headers). The cookie is
// HttpOnly (page scripts cannot read it) and SameSite=Strict (another
// site's pages cannot make the browser send it), and it lives until the
// browser closes. Its value is a hash of the token, not the token: a
// stolen cookie reads the API but is no bearer token, and it cannot
// change anything, since DELETE needs the header. Changing the token
// invalidates every cookie.
//
// A request that fails gets 401: JSON for scripts, and for a browser
// (Accept: text/html, and always on /dashboard) the page below, which says
// how to pass the token.

// cookieName is the session cookie's name.
const cookieName = "shoal_admin"

// cookieValue is what the session cookie holds for token.
func cookieValue(token string) string {
	sum := sha256.Sum256([]byte("shoal admin session cookie\x00" + token))
	return hex.EncodeToString(sum[:])
}

// credentials are the token and the session cookie's value made from it,
// swapped whole by SetToken.
type credentials struct {
	token  string
	cookie string // "" when token is
}

func newCredentials(token string) *credentials {
	c := &credentials{token: token}
	if token != "" {
		c.cookie = cookieValue(token)
	}
	return c
}

// allowed reports whether r carries the token: in its Authorization header,
// or for a GET or HEAD in the session cookie.
func (s *Server) allowed(r *http.Request) bool {
	cr := s.creds.Load()
	if cr.token == "" {
		return true // loopback only: CheckConfig
	}
	if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), []byte("Bearer "+cr.token)) == 1 {
		return true
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	c, err := r.Cookie(cookieName)
	return err == nil && subtle.ConstantTimeCompare([]byte(c.Value), []byte(cr.cookie)) == 1
}

// authorized wraps an /api/ handler with the token check.
func (s *Server) authorized(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.allowed(r) {
			s.unauthorized(w, r, wantsHTML(r))
			return
		}
		h(w, r)
	}
}

// page wraps the handler of an HTML page with the token check: a browser
// that fails it gets the 401 page.
func (s *Server) page(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.allowed(r) {
			s.unauthorized(w, r, true)
			return
		}
		h(w, r)
	}
}

// wantsHTML reports whether r comes from a browser's address bar rather
// than a script: browsers put text/html in Accept, fetch and curl do not.
func wantsHTML(r *http.Request) bool { return strings.Contains(r.Header.Get("Accept"), "text/html") }

// unauthorized answers 401, as JSON or as the page that says how to pass
// the token.
func (s *Server) unauthorized(w http.ResponseWriter, r *http.Request, html bool) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="shoal"`)
	if !html {
		writeError(w, http.StatusUnauthorized, "a valid bearer token is required")
		return
	}
	next := r.URL.RequestURI()
	if r.Method != http.MethodGet || !localPath(next) {
		next = "/dashboard"
	}
	writeLoginPage(w, r.Host, next, false)
}

// writeLoginPage writes the 401 page: how to pass the token, and a form
// that logs in and goes on to next. wrong says a token was refused.
func writeLoginPage(w http.ResponseWriter, host, next string, wrong bool) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusUnauthorized)
	_ = unauthorizedPage.Execute(w, struct {
		Next, Host string
		Wrong      bool
	}{Next: next, Host: host, Wrong: wrong})
}

// localPath reports whether p is a path on this server, safe to redirect
// to: "/x", not "//evil.example/" or "/\evil.example/", which browsers
// read as another host.
func localPath(p string) bool {
	return strings.HasPrefix(p, "/") && !strings.HasPrefix(p, "//") && !strings.HasPrefix(p, `/\`)
}

// login takes the token from the 401 page's form (POST, so it is in no
// address), sets the session cookie and sends the browser back to the
// page it asked for.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	next := r.PostFormValue("next")
	if !localPath(next) {
		next = "/dashboard"
	}
	if cr := s.creds.Load(); cr.token != "" {
		if subtle.ConstantTimeCompare([]byte(r.PostFormValue("token")), []byte(cr.token)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="shoal"`)
			writeLoginPage(w, r.Host, next, true)
			return
		}
		http.SetCookie(w, s.sessionCookie(r, cr.cookie, 0))
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// logout clears the session cookie.
func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, s.sessionCookie(r, "", -1))
	http.Redirect(w, r, "/dashboard", http.StatusSeeOther)
}

// sessionCookie is the session cookie with value; maxAge -1 deletes it, 0
// keeps it until the browser closes.
func (s *Server) sessionCookie(r *http.Request, value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: cookieName, Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil}
}

// unauthorizedPage is the 401 page for browsers. Its script carries over
// the address fragment the dashboard used to take (/dashboard#token=...):
// it takes the token out of the address and sends it with the form.
//
//go:embed static/unauthorized.html
var unauthorizedHTML string

var unauthorizedPage = template.Must(template.New("401").Parse(unauthorizedHTML))
