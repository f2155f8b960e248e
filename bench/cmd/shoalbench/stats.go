package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	benchsum "github.com/shoalmq/shoal/bench/internal/summary"
	"github.com/shoalmq/shoal/client"
)

// Latencies are recorded in microseconds, 1 µs .. 60 s, to 3 significant
// digits: 0.1% resolution at any magnitude.
func newHist() *hdrhistogram.Histogram { return hdrhistogram.New(1, 60_000_000, 3) }

// recvShards stripes the subscribers' counters and latency histograms.
// OnMessage runs on the client's few loop goroutines, so at most that many
// record at once; 16 stripes keep them apart at any sensible --loops, and
// the reporter merges 16 histograms a second.
const recvShards = 16

// recvShard is what the subscribers with index ≡ i (mod recvShards)
// received since the reporter last looked. mu guards every field.
type recvShard struct {
	mu      sync.Mutex
	hist    *hdrhistogram.Histogram
	recv    int64
	unique  int64
	badLen  int64 // payloads too short to carry a stamp
	allUniq int64 // unique messages since the start; never reset
	firstNs int64 // arrival of the shard's first and last message
	lastNs  int64
	_       [64]byte // keep neighbouring shards off this cache line
}

// counter is a per-publisher-driver message count: summed when read, so
// drivers never share a cache line.
type counter struct {
	n atomic.Int64
	_ [56]byte
}

// meter holds every figure a run reports.
type meter struct {
	mode    string
	clients int
	start   time.Time

	connected atomic.Int64
	failed    atomic.Int64
	dropped   atomic.Int64 // connections lost after CONNACK

	connMu      sync.Mutex // guards the connect-phase fields below
	connack     *hdrhistogram.Histogram
	firstDial   time.Time
	lastConnack time.Time

	sent     []counter // one per publisher driver
	shards   [recvShards]recvShard
	pubStart atomic.Int64 // Unix ns of the first publish
	pubEnd   atomic.Int64 // Unix ns when publishing and acknowledgements ended

	// Reporter-owned.
	total    *hdrhistogram.Histogram // every latency so far
	sec      *hdrhistogram.Histogram // the last second's
	recv     int64
	unique   int64
	badLen   int64
	firstNs  int64
	lastNs   int64
	lastSent int64
	lastRecv int64
	lastAt   time.Time
}

func newMeter(mode string, clients, drivers int) *meter {
	m := &meter{mode: mode, clients: clients, start: time.Now(), connack: newHist(),
		sent: make([]counter, max(drivers, 1)), total: newHist(), sec: newHist()}
	for i := range m.shards {
		m.shards[i].hist = newHist()
	}
	m.lastAt = m.start
	return m
}

// connectedOne records a connection's dial-to-CONNACK time.
func (m *meter) connectedOne(dialed time.Time, d time.Duration) {
	m.connected.Add(1)
	m.connMu.Lock()
	defer m.connMu.Unlock()
	_ = m.connack.RecordValue(max(d.Microseconds(), 1))
	if m.firstDial.IsZero() || dialed.Before(m.firstDial) {
		m.firstDial = dialed
	}
	if end := dialed.Add(d); end.After(m.lastConnack) {
		m.lastConnack = end
	}
}

// onDrop is a client's OnClose: it counts connections that broke, not
// those the run closed itself.
func (m *meter) onDrop(err error) {
	if err != nil && !errors.Is(err, client.ErrEngineClosed) {
		m.dropped.Add(1)
	}
}

// received records one message at subscriber shard i. Called on a client
// loop.
func (m *meter) received(i int, nowNs int64, st stamp, ok, unique bool) {
	s := &m.shards[i%recvShards]
	s.mu.Lock()
	s.recv++
	if !ok {
		s.badLen++
	} else {
		_ = s.hist.RecordValue(max((nowNs-st.sentNs)/1000, 1))
		if unique {
			s.unique++
			s.allUniq++
		}
	}
	if s.firstNs == 0 {
		s.firstNs = nowNs
	}
	s.lastNs = nowNs
	s.mu.Unlock()
}

// collect moves the shards' figures into the meter's. Reporter only.
func (m *meter) collect() {
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		m.sec.Merge(s.hist)
		s.hist.Reset()
		m.recv += s.recv
		m.unique += s.unique
		m.badLen += s.badLen
		if s.firstNs != 0 && (m.firstNs == 0 || s.firstNs < m.firstNs) {
			m.firstNs = s.firstNs
		}
		m.lastNs = max(m.lastNs, s.lastNs)
		s.recv, s.unique, s.badLen, s.firstNs, s.lastNs = 0, 0, 0, 0, 0
		s.mu.Unlock()
	}
}

// uniqueSoFar is the number of distinct messages received since the
// start. Safe for concurrent use.
func (m *meter) uniqueSoFar() int64 {
	var n int64
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		n += s.allUniq
		s.mu.Unlock()
	}
	return n
}

func (m *meter) sentTotal() int64 {
	var n int64
	for i := range m.sent {
		n += m.sent[i].n.Load()
	}
	return n
}

// progress writes one line about the last interval and folds its
// latencies into the total. Reporter only.
func (m *meter) progress(w io.Writer, now time.Time) {
	m.collect()
	dt := now.Sub(m.lastAt).Seconds()
	sent := m.sentTotal()
	fmt.Fprintf(w, "[%6.1fs] %s conn %d/%d fail %d drop %d | sent %d (%.0f/s) recv %d (%.0f/s) | lat ms p50 %.3f p99 %.3f p999 %.3f\n",
		now.Sub(m.start).Seconds(), m.mode, m.connected.Load(), m.clients, m.failed.Load(), m.dropped.Load(),
		sent, float64(sent-m.lastSent)/dt, m.recv, float64(m.recv-m.lastRecv)/dt,
		ms(m.sec.ValueAtQuantile(50)), ms(m.sec.ValueAtQuantile(99)), ms(m.sec.ValueAtQuantile(99.9)))
	m.total.Merge(m.sec)
	m.sec.Reset()
	m.lastSent, m.lastRecv, m.lastAt = sent, m.recv, now
}

func ms(us int64) float64 { return float64(us) / 1000 }

// summary is the final report: the JSON contract shared with the harness,
// plus what only the human line shows.
type summary struct {
	benchsum.Summary
	Dropped int64 `json:"-"` // human line only: the JSON contract is fixed
}

// finish gathers the final figures. lost and dup come from the mode.
func (m *meter) finish(end time.Time, lost, dup uint64) summary {
	m.collect()
	m.total.Merge(m.sec)
	m.sec.Reset()
	s := summary{Summary: benchsum.Summary{
		Mode: m.mode, Clients: m.clients,
		Connected: m.connected.Load(), ConnectFailed: m.failed.Load(),
		Sent: m.sentTotal(), Received: m.recv,
		LatP50: ms(m.total.ValueAtQuantile(50)), LatP99: ms(m.total.ValueAtQuantile(99)),
		LatP999: ms(m.total.ValueAtQuantile(99.9)),
		Lost:    int64(lost), Dup: int64(dup),
	}, Dropped: m.dropped.Load()}
	m.connMu.Lock()
	s.ConnackP50 = ms(m.connack.ValueAtQuantile(50))
	s.ConnackP99 = ms(m.connack.ValueAtQuantile(99))
	if span := m.lastConnack.Sub(m.firstDial).Seconds(); span > 0 {
		s.ConnectRate = float64(s.Connected) / span
	}
	m.connMu.Unlock()
	switch m.mode {
	case "sub":
		if m.lastNs > m.firstNs {
			s.DurationS = float64(m.lastNs-m.firstNs) / 1e9
		}
	case "pub":
		if a, b := m.pubStart.Load(), m.pubEnd.Load(); a != 0 && b > a {
			s.DurationS = float64(b-a) / 1e9
		}
	default:
		s.DurationS = end.Sub(m.start).Seconds()
	}
	if s.DurationS > 0 {
		s.SentRate = float64(s.Sent) / s.DurationS
		s.RecvRate = float64(s.Received) / s.DurationS
	}
	s.CPUS, _ = cpuSeconds()
	return s
}

// print writes the human summary line to w and, if asJSON, the JSON line
// to out.
func (s summary) print(w, out io.Writer, asJSON bool) error {
	fmt.Fprintf(w, "%s: %d/%d connected (%d failed, %d dropped) at %.0f conn/s, connack p50 %.3f p99 %.3f ms | sent %d (%.0f/s) recv %d (%.0f/s) | lat ms p50 %.3f p99 %.3f p999 %.3f | lost %d dup %d | %.2fs, cpu %.2fs\n",
		s.Mode, s.Connected, s.Clients, s.ConnectFailed, s.Dropped, s.ConnectRate, s.ConnackP50, s.ConnackP99,
		s.Sent, s.SentRate, s.Received, s.RecvRate, s.LatP50, s.LatP99, s.LatP999, s.Lost, s.Dup, s.DurationS, s.CPUS)
	if !asJSON {
		return nil
	}
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(out, "%s\n", b)
	return err
}
