// Package admin is the broker's operations listener: an HTTP server (one
// goroutine per request, off the MQTT event loops) with
//
//   - /metrics: Prometheus metrics from broker.Stats, the Go runtime and
//     the process, computed at scrape time (the broker's counters live per
//     event loop and are summed then);
//   - /healthz (the process answers) and /readyz (the broker accepts MQTT
//     connections);
//   - /api/...: JSON for scripts — stats, clients (list, look up, kick),
//     subscriptions, retained messages (list, delete) — behind a bearer
//     token, which may be left out only on a loopback address;
//   - /dashboard: a live page of connections, message rates and drops.
//
// A Server belongs to one broker.Broker; cmd/broker starts it after the
// broker and stops it first.
package admin
