// Package admin is the broker's operations listener: an HTTP server (one
// goroutine per request, off the MQTT event loops) with
//
//   - /metrics: Prometheus metrics from broker.Stats, the Go runtime and
//     the process, computed at scrape time (the broker's counters live per
//     event loop and are summed then);
//   - /healthz (the process answers) and /readyz (the broker accepts MQTT
//     connections);
//   - /api/...: JSON for scripts — stats, history, clients (list, look up,
//     kick), subscriptions, retained messages (list, delete), the cluster's
//     nodes — behind a bearer token, which may be left out only on a
//     loopback address;
//   - /dashboard: a page of charts and figures over the last ten minutes.
//
// A Server belongs to one broker.Broker; cmd/broker starts it after the
// broker and stops it first.
//
// # History (history.go)
//
// Start starts one goroutine, the sampler, which reads broker.Stats every
// 2 s and records the figures in a ring of 300 samples (10 minutes, about
// 33 KB allocated once); Close stops it and waits for it before it stops
// the HTTP server. The sampler is the ring's only writer; handlers read it
// under its mutex. Rates are counters' differences over the time between
// two samples. /api/history serves the ring by column, the shape the charts
// take, so that a page opened now draws the last minutes at once; with
// ?since= it serves only newer samples, which the page asks for every 2 s.
// Tests give the sampler their own ticks (SetHistoryTicks in
// export_test.go) instead of its ticker.
//
// # Who may ask (auth.go)
//
// With a token set, /api/ and /dashboard need "Authorization: Bearer
// TOKEN", or, for GET and HEAD only, the session cookie a browser gets by
// POSTing the token to /login from the form of the 401 page. The cookie is
// HttpOnly, SameSite=Strict and lives until the browser closes; it holds a
// hash of the token, not the token. No token is ever taken from a URL.
// A failed request gets a JSON 401, or the 401 page if it asks for HTML.
//
// # The page (dashboard.go, static/)
//
// static/dashboard.html draws its charts with uPlot, whose published files
// are committed under static/vendor/uplot (static/vendor/README.md: the
// npm package, its version, how to update it) and served from the binary
// at /static/.
package admin
