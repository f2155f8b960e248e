package admin

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"html/template"
	"net/http"
	"time"
)

// dashboardHTML is the live dashboard. On load it draws /api/history (the
// last ten minutes, kept by the server), then asks for what is new every
// interval; the charts are uPlot's.
//
//go:embed static/dashboard.html
var dashboardHTML string

var dashboardPage = template.Must(template.New("dashboard").Parse(dashboardHTML))

// dashboard serves the page. Its sign-out button shows only when there is
// a token to sign out of.
func (s *Server) dashboard(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_ = dashboardPage.Execute(w, struct{ SignOut bool }{SignOut: s.creds.Load().token != ""})
}

// uPlot, the dashboard's chart library: the files of npm package uplot,
// byte for byte, at the version admin/testdata/browser/package.json pins
// (make vendor-uplot copies them; TestVendoredUPlot checks them).
//
//go:embed static/vendor/uplot/uPlot.iife.min.js
var uplotJS []byte

//go:embed static/vendor/uplot/uPlot.min.css
var uplotCSS []byte

//go:embed static/vendor/uplot/LICENSE
var uplotLicense []byte

// asset serves an embedded file under an ETag of its contents, so that a
// browser asks again on each load (Cache-Control: no-cache) and gets 304
// until the binary changes. They are public: library code, no data.
func asset(contentType string, body []byte) http.HandlerFunc {
	sum := sha256.Sum256(body)
	etag := `"` + hex.EncodeToString(sum[:8]) + `"`
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", contentType)
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("ETag", etag)
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
	}
}
