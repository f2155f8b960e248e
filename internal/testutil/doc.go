// Package testutil holds what Shoal's tests share: a broker on a free
// loopback port, a raw MQTT connection driven by the codec for protocol
// edge cases (over TCP, TLS or WebSocket), a throwaway certificate
// authority, and runners for the mosquitto command-line clients.
//
// # Ownership
//
// Everything here belongs to the test that made it, and is cleaned up
// when that test ends (t.Cleanup): brokers, Mosquitto processes, raw
// connections; files go into directories the test gives (t.TempDir).
// A Raw connection is driven by one goroutine, the test's. SyncBuffer is
// the exception, made to be shared: goroutines write it (a logger, a
// process's output) while the test reads it, under its mutex, a leaf.
package testutil
