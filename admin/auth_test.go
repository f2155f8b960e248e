package admin_test

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// request makes a request without following redirects and returns the
// response and its body.
func request(t *testing.T, method, url string, body io.Reader, header http.Header, cookies ...*http.Cookie) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	for _, c := range cookies {
		req.AddCookie(c)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

var (
	browser = http.Header{"Accept": {"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}}
	form    = http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
)

// A request without the right token gets 401: JSON for a script, and for a
// browser a page that says how to pass the token; /dashboard always gets
// the page.
func TestUnauthorizedHTMLAndJSON(t *testing.T) {
	_, _, base := startAdmin(t, token)
	for _, tc := range []struct {
		path   string
		header http.Header
		html   bool
	}{
		{"/api/stats", nil, false},
		{"/api/stats", http.Header{"Accept": {"application/json"}, "Authorization": {"Bearer wrong"}}, false},
		{"/api/history", http.Header{"Accept": {"*/*"}}, false}, // what fetch sends
		{"/api/stats", browser, true},
		{"/dashboard", nil, true},
		{"/dashboard", browser, true},
		{"/dashboard", http.Header{"Authorization": {"Bearer " + token + "x"}}, true},
	} {
		resp, body := request(t, "GET", base+tc.path, nil, tc.header)
		ctype := resp.Header.Get("Content-Type")
		if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s %v: %d, WWW-Authenticate %q", tc.path, tc.header, resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
		if !tc.html {
			if ctype != "application/json" || !strings.Contains(body, `"error": "a valid bearer token is required"`) {
				t.Errorf("%s %v: %s %s, want the JSON error", tc.path, tc.header, ctype, body)
			}
			continue
		}
		for _, want := range []string{
			"401: this needs the admin token",
			"<code>admin_token</code>",
			`curl -H "Authorization: Bearer $TOKEN" http://` + strings.TrimPrefix(base, "http://") + `/api/stats`,
			`<form method="post" action="/login"`,
			`name="next" value="` + tc.path + `"`,
		} {
			if !strings.HasPrefix(ctype, "text/html") || !strings.Contains(body, want) {
				t.Errorf("%s %v: %s page lacks %q:\n%s", tc.path, tc.header, ctype, want, body)
			}
		}
	}
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		if code, _ := call(t, "GET", base+path, ""); code != 200 {
			t.Errorf("%s without a token: %d, want 200", path, code)
		}
	}
}

// The 401 page's form logs a browser in: the token goes in a POST body,
// the browser gets an HttpOnly SameSite=Strict cookie that is not the
// token, and that cookie reads the API but changes nothing.
func TestLoginCookie(t *testing.T) {
	_, _, base := startAdmin(t, token)
	login := func(tok, next string) (*http.Response, string) {
		return request(t, "POST", base+"/login", strings.NewReader(url.Values{"token": {tok}, "next": {next}}.Encode()), form)
	}

	resp, body := login("wrong", "/dashboard")
	if resp.StatusCode != http.StatusUnauthorized || len(resp.Cookies()) != 0 || !strings.Contains(body, "That token was not accepted") {
		t.Errorf("wrong token: %d, cookies %v:\n%s", resp.StatusCode, resp.Cookies(), body)
	}

	resp, _ = login(token, "/api/stats")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/api/stats" || len(resp.Cookies()) != 1 {
		t.Fatalf("login: %d, Location %q, cookies %v", resp.StatusCode, resp.Header.Get("Location"), resp.Cookies())
	}
	c := resp.Cookies()[0]
	if c.Name != "shoal_admin" || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" || c.MaxAge != 0 ||
		c.Value == "" || strings.Contains(c.Value, token) {
		t.Errorf("cookie: %+v", c)
	}
	for _, path := range []string{"/dashboard", "/api/stats", "/api/history"} {
		if resp, body := request(t, "GET", base+path, nil, browser, c); resp.StatusCode != 200 {
			t.Errorf("%s with the cookie: %d %s", path, resp.StatusCode, body)
		}
	}
	if resp, _ := request(t, "DELETE", base+"/api/clients/anyone", nil, nil, c); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("DELETE with the cookie alone: %d, want 401", resp.StatusCode)
	}
	if code, _ := call(t, "GET", base+"/api/stats", c.Value); code != http.StatusUnauthorized {
		t.Errorf("the cookie's value as a bearer token: %d, want 401", code)
	}
	forged := &http.Cookie{Name: "shoal_admin", Value: token}
	if resp, _ := request(t, "GET", base+"/api/stats", nil, nil, forged); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("the token itself as the cookie: %d, want 401", resp.StatusCode)
	}

	// next must be a path here, not another host.
	for _, next := range []string{"//evil.example/", `/\evil.example`, "https://evil.example/", ""} {
		if resp, _ := login(token, next); resp.Header.Get("Location") != "/dashboard" {
			t.Errorf("next %q: Location %q, want /dashboard", next, resp.Header.Get("Location"))
		}
	}

	resp, _ = request(t, "POST", base+"/logout", nil, nil, c)
	if resp.StatusCode != http.StatusSeeOther || len(resp.Cookies()) != 1 || resp.Cookies()[0].MaxAge >= 0 {
		t.Errorf("logout: %d, cookies %+v", resp.StatusCode, resp.Cookies())
	}
}

// Without a token (a loopback listener), everything is open and /login
// just goes on.
func TestNoTokenNoLogin(t *testing.T) {
	_, _, base := startAdmin(t, "")
	if resp, _ := request(t, "GET", base+"/dashboard", nil, browser); resp.StatusCode != 200 {
		t.Errorf("/dashboard: %d", resp.StatusCode)
	}
	resp, _ := request(t, "POST", base+"/login", strings.NewReader("token=x&next=/api/stats"), form)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/api/stats" || len(resp.Cookies()) != 0 {
		t.Errorf("login: %d, Location %q, cookies %v", resp.StatusCode, resp.Header.Get("Location"), resp.Cookies())
	}
}
