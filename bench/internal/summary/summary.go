// Package summary is the contract between the load generator and the bench
// harness: the one JSON line shoalbench prints with --json at the end of a
// run, and which the harness parses. Both sides use this type, so the field
// names cannot drift apart.
package summary

// Summary is one generator process's final figures.
type Summary struct {
	Mode          string  `json:"mode"` // conn, sub or pub
	Clients       int     `json:"clients"`
	Connected     int64   `json:"connected"`
	ConnectFailed int64   `json:"connect_failed"`
	ConnectRate   float64 `json:"connect_rate"` // connections per second
	ConnackP50    float64 `json:"connack_p50_ms"`
	ConnackP99    float64 `json:"connack_p99_ms"`
	Sent          int64   `json:"sent"`
	Received      int64   `json:"received"`
	SentRate      float64 `json:"sent_rate"` // per second of DurationS
	RecvRate      float64 `json:"recv_rate"`
	LatP50        float64 `json:"lat_p50_ms"` // publish-to-receive latency
	LatP99        float64 `json:"lat_p99_ms"`
	LatP999       float64 `json:"lat_p999_ms"`
	Lost          int64   `json:"lost"` // never received (sub) or never acknowledged (pub)
	Dup           int64   `json:"dup"`
	// DurationS is first to last message received (sub), first publish to
	// last acknowledgement (pub), or the whole run (conn).
	DurationS float64 `json:"duration_s"`
	CPUS      float64 `json:"cpu_s"` // the generator's own user+system CPU seconds
}
