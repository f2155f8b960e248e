package admin

import (
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/shoalmq/shoal/broker"
)

// The dashboard's history: one goroutine of the Server samples
// broker.Stats every historyInterval and keeps the last historyWindow of
// samples in a ring, so that a page opened now draws the last minutes at
// once instead of starting blank. /api/history serves them by column, the
// shape the charts take.
const (
	// historyInterval is 2 s. Stats locks every session in turn: with
	// 100,000 sessions one call takes about 6 ms (BenchmarkStats in
	// package broker, on a 2-core AMD EPYC), 0.3% of a core at this
	// pace. Rates over 2 s are also steadier to read than over 1 s, and
	// 2 s is finer than the 15 to 60 s a Prometheus scrape gives.
	historyInterval = 2 * time.Second
	// historyWindow is 10 minutes: enough to see what happened just
	// before someone opened the page (a reconnect storm, a burst of
	// drops); longer history is Prometheus's job.
	historyWindow = 10 * time.Minute
	// historyLen is 300 samples: one or two per chart pixel on a page
	// 400 to 800 pixels wide, so no downsampling. The ring costs
	// 300 × 112 B ≈ 33 KB, allocated once.
	historyLen = int(historyWindow / historyInterval)
)

// The series of a sample, in the order /api/history lists them.
const (
	seriesConnected     = iota // clients connected
	seriesSessions             // sessions, connected or not
	seriesSubscriptions        // subscriptions
	seriesMsgsIn               // PUBLISH packets from clients, per second
	seriesMsgsOut              // PUBLISH packets to clients, per second
	seriesBytesIn              // MQTT bytes read, per second
	seriesBytesOut             // MQTT bytes written, per second
	seriesDrops                // messages dropped, per second
	seriesDropped              // messages dropped since start
	seriesQueued               // QoS 1/2 messages waiting in session queues
	seriesInflight             // QoS 1/2 messages sent, not yet acknowledged
	seriesRetainedUser         // retained messages on topics not starting with '$'
	seriesRetainedSys          // retained messages on '$' topics ($SYS)
	numSeries
)

// seriesNames are the series' names in /api/history.
var seriesNames = [numSeries]string{
	seriesConnected:     "clients_connected",
	seriesSessions:      "sessions",
	seriesSubscriptions: "subscriptions",
	seriesMsgsIn:        "messages_in_per_s",
	seriesMsgsOut:       "messages_out_per_s",
	seriesBytesIn:       "bytes_in_per_s",
	seriesBytesOut:      "bytes_out_per_s",
	seriesDrops:         "dropped_per_s",
	seriesDropped:       "dropped_total",
	seriesQueued:        "queued",
	seriesInflight:      "inflight",
	seriesRetainedUser:  "retained_user",
	seriesRetainedSys:   "retained_sys",
}

// sample is the broker's figures at one moment. A rate is NaN in the first
// sample, which has no earlier one to be measured against.
type sample struct {
	at int64 // Unix milliseconds
	v  [numSeries]float64
}

// counters are the totals that rates are the differences of.
type counters struct {
	at                                       time.Time
	msgsIn, msgsOut, bytesIn, bytesOut, drop int64
}

// history is the ring of the last samples. record is called by one
// goroutine at a time (the Server's sampler); since and meta by any.
type history struct {
	mu      sync.Mutex
	ring    []sample // fixed length; guarded by mu
	next    int      // where the next sample goes; guarded by mu
	n       int      // samples held, at most len(ring); guarded by mu
	version string   // the broker's, from the last sample; guarded by mu
	started time.Time

	// The recording goroutine's own.
	last     counters
	haveLast bool
}

// newHistory returns an empty history that keeps size samples.
func newHistory(size int) *history { return &history{ring: make([]sample, size)} }

// record adds a sample of st taken at now, replacing the oldest when the
// ring is full. Rates are the counters' differences from the previous
// record over the time between the two; a counter that went down (a
// broker restarted under the same admin server, which Shoal does not do)
// or a clock that did not move gives NaN rather than a wrong figure.
func (h *history) record(now time.Time, st *broker.Stats) {
	c := counters{at: now, msgsIn: st.MessagesIn(), msgsOut: st.MessagesOut(),
		bytesIn: st.BytesReceived, bytesOut: st.BytesSent, drop: dropTotal(st)}
	s := sample{at: now.UnixMilli()}
	s.v[seriesConnected] = float64(st.ClientsConnected)
	s.v[seriesSessions] = float64(st.Sessions)
	s.v[seriesSubscriptions] = float64(st.Subscriptions)
	s.v[seriesDropped] = float64(c.drop)
	s.v[seriesQueued] = float64(st.Queued)
	s.v[seriesInflight] = float64(st.Inflight)
	s.v[seriesRetainedUser] = float64(st.RetainedUser)
	s.v[seriesRetainedSys] = float64(st.RetainedSys)
	var dt float64
	if h.haveLast {
		dt = now.Sub(h.last.at).Seconds()
	}
	rate := func(cur, prev int64) float64 {
		if dt <= 0 || cur < prev {
			return math.NaN()
		}
		return float64(cur-prev) / dt
	}
	s.v[seriesMsgsIn] = rate(c.msgsIn, h.last.msgsIn)
	s.v[seriesMsgsOut] = rate(c.msgsOut, h.last.msgsOut)
	s.v[seriesBytesIn] = rate(c.bytesIn, h.last.bytesIn)
	s.v[seriesBytesOut] = rate(c.bytesOut, h.last.bytesOut)
	s.v[seriesDrops] = rate(c.drop, h.last.drop)
	h.last, h.haveLast = c, true

	h.mu.Lock()
	h.ring[h.next] = s
	h.next = (h.next + 1) % len(h.ring)
	h.n = min(h.n+1, len(h.ring))
	h.version, h.started = st.Version, st.Started
	h.mu.Unlock()
}

// dropTotal is the number of messages dropped, for every cause.
func dropTotal(st *broker.Stats) int64 {
	var n int64
	for _, d := range st.Drops {
		n += d
	}
	return n
}

// since appends to out the samples taken after Unix millisecond after,
// oldest first, and returns the extended slice.
func (h *history) since(after int64, out []sample) []sample {
	h.mu.Lock()
	defer h.mu.Unlock()
	first := h.next - h.n
	if first < 0 {
		first += len(h.ring)
	}
	for i := range h.n {
		if s := &h.ring[(first+i)%len(h.ring)]; s.at > after {
			out = append(out, *s)
		}
	}
	return out
}

// meta returns the broker's version and start time, as of the last sample.
func (h *history) meta() (string, time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.version, h.started
}

// appendHistoryJSON appends /api/history's answer for samples to b:
//
//	{"version": "v0.1.0", "started": "2026-…Z", "interval_ms": 2000, "window_ms": 600000,
//	 "t": [Unix ms, …], "series": {"clients_connected": [3, …], "messages_in_per_s": [null, 12.5, …], …}}
//
// one array per series, each as long as "t"; a rate not yet known is null.
// Written by hand: encoding/json cannot write NaN as null.
func appendHistoryJSON(b []byte, version string, started time.Time, samples []sample) []byte {
	b = append(b, `{"version":`...)
	b = strconv.AppendQuote(b, version)
	b = append(b, `,"started":"`...)
	b = started.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","interval_ms":`...)
	b = strconv.AppendInt(b, historyInterval.Milliseconds(), 10)
	b = append(b, `,"window_ms":`...)
	b = strconv.AppendInt(b, historyWindow.Milliseconds(), 10)
	b = append(b, `,"t":[`...)
	for i := range samples {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, samples[i].at, 10)
	}
	b = append(b, `],"series":{`...)
	for k, name := range seriesNames {
		if k > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendQuote(b, name)
		b = append(b, ":["...)
		for i := range samples {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendNumber(b, samples[i].v[k])
		}
		b = append(b, ']')
	}
	return append(b, "}}\n"...)
}

// appendNumber appends v to 3 decimals, or null for NaN.
func appendNumber(b []byte, v float64) []byte {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return append(b, "null"...)
	}
	return strconv.AppendFloat(b, math.Round(v*1000)/1000, 'f', -1, 64)
}
