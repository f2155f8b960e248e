package admin

import (
	_ "embed"
	"net/http"
)

// dashboardHTML is the live dashboard: one page, no external assets. It
// polls /api/stats every second and draws the last five minutes on
// canvases; a token, if the API needs one, comes in the page's fragment
// (/dashboard#token=...) so that it never reaches a server log.
//
//go:embed static/dashboard.html
var dashboardHTML []byte

func dashboard(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(dashboardHTML)
}
