package admin

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/shoalmq/shoal/broker"
)

// stats is a broker.Stats with n of every counter and gauge the history
// reads.
func stats(n int64) *broker.Stats {
	return &broker.Stats{
		ClientsConnected: n, Sessions: int(n), Subscriptions: int(n), Queued: int(n), Inflight: int(n),
		RetainedUser: int(n), RetainedSys: int(n),
		MessagesReceived: [3]int64{n, 0, 0}, MessagesSent: [3]int64{0, n, 0},
		BytesReceived: n, BytesSent: n,
		Drops: map[string]int64{"queue_full": n},
	}
}

// ats returns the samples' times.
func ats(samples []sample) []int64 {
	var out []int64
	for _, s := range samples {
		out = append(out, s.at)
	}
	return out
}

func TestHistoryRingKeepsTheLast(t *testing.T) {
	h := newHistory(3)
	t0 := time.UnixMilli(1_000_000)
	if got := h.since(math.MinInt64, nil); len(got) != 0 {
		t.Fatalf("empty history: %v", ats(got))
	}
	for i := range 5 { // wraps around once
		h.record(t0.Add(time.Duration(i)*time.Second), stats(int64(i)))
		want := min(i+1, 3)
		got := h.since(math.MinInt64, nil)
		if len(got) != want || got[len(got)-1].at != 1_000_000+int64(i)*1000 {
			t.Fatalf("after %d records: %v", i+1, ats(got))
		}
		for j := 1; j < len(got); j++ {
			if got[j].at <= got[j-1].at {
				t.Fatalf("after %d records, not oldest first: %v", i+1, ats(got))
			}
		}
	}
	if got := ats(h.since(1_003_000, nil)); len(got) != 1 || got[0] != 1_004_000 {
		t.Errorf("since the fourth: %v, want only the fifth", got)
	}
	if got := h.since(1_004_000, nil); len(got) != 0 {
		t.Errorf("since the last: %v, want none", ats(got))
	}
}

// Rates are counter differences over the time between samples; the first
// sample has none, and a clock that does not move gives none.
func TestHistoryRates(t *testing.T) {
	h := newHistory(historyLen)
	t0 := time.Unix(1_700_000_000, 0)
	h.record(t0, stats(0))
	h.record(t0.Add(2*time.Second), stats(10))
	h.record(t0.Add(6*time.Second), stats(30))
	h.record(t0.Add(6*time.Second), stats(40)) // same instant: no rate
	h.record(t0.Add(7*time.Second), stats(41))
	got := h.since(math.MinInt64, nil)
	want := []float64{math.NaN(), 5, 5, math.NaN(), 1}
	for _, k := range []int{seriesMsgsIn, seriesMsgsOut, seriesBytesIn, seriesBytesOut, seriesDrops} {
		for i, s := range got {
			if v := s.v[k]; v != want[i] && !(math.IsNaN(v) && math.IsNaN(want[i])) {
				t.Errorf("%s[%d] = %v, want %v", seriesNames[k], i, v, want[i])
			}
		}
	}
	last := got[len(got)-1]
	for _, k := range []int{seriesConnected, seriesSessions, seriesSubscriptions, seriesDropped, seriesQueued,
		seriesInflight, seriesRetainedUser, seriesRetainedSys} {
		if last.v[k] != 41 {
			t.Errorf("%s = %v, want 41", seriesNames[k], last.v[k])
		}
	}
}

func TestHistoryJSON(t *testing.T) {
	h := newHistory(historyLen)
	t0 := time.UnixMilli(1_700_000_000_123)
	st := stats(0)
	st.Version, st.Started = "v1.2.3", t0.Add(-time.Hour)
	h.record(t0, st)
	st = stats(3)
	st.Version, st.Started = "v1.2.3", t0.Add(-time.Hour)
	h.record(t0.Add(1500*time.Millisecond), st)
	version, started := h.meta()
	b := appendHistoryJSON(nil, version, started, h.since(math.MinInt64, nil))
	var got struct {
		Version    string
		Started    time.Time
		IntervalMS int64 `json:"interval_ms"`
		WindowMS   int64 `json:"window_ms"`
		T          []int64
		Series     map[string][]*float64
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	if got.Version != "v1.2.3" || !got.Started.Equal(t0.Add(-time.Hour)) || got.IntervalMS != 2000 || got.WindowMS != 600_000 {
		t.Errorf("header: %+v", got)
	}
	if len(got.T) != 2 || got.T[0] != 1_700_000_000_123 || got.T[1] != 1_700_000_001_623 {
		t.Errorf("t: %v", got.T)
	}
	if len(got.Series) != numSeries {
		t.Errorf("%d series, want %d: %s", len(got.Series), numSeries, b)
	}
	for name, col := range got.Series {
		if len(col) != 2 {
			t.Errorf("%s: %d values, want 2", name, len(col))
		}
	}
	if in := got.Series["messages_in_per_s"]; in[0] != nil || in[1] == nil || *in[1] != 2 {
		t.Errorf("messages_in_per_s: %s", b)
	}
	if u := got.Series["retained_user"]; u[0] == nil || *u[0] != 0 || *u[1] != 3 {
		t.Errorf("retained_user: %s", b)
	}

	// Empty: still valid, every column empty.
	if err := json.Unmarshal(appendHistoryJSON(nil, "", time.Time{}, nil), &got); err != nil || len(got.T) != 0 {
		t.Errorf("empty history: %v %v", err, got.T)
	}
}

// appendNumber rounds to 3 decimals and writes what JSON can read.
func TestAppendNumber(t *testing.T) {
	for v, want := range map[float64]string{
		0: "0", 2.5: "2.5", 1.0 / 3: "0.333", 1e9: "1000000000", math.NaN(): "null", math.Inf(1): "null",
	} {
		if got := string(appendNumber(nil, v)); got != want {
			t.Errorf("appendNumber(%v) = %s, want %s", v, got, want)
		}
	}
	for range 1000 {
		v := rand.Float64() * math.Pow(10, float64(rand.IntN(15)))
		var back float64
		if err := json.Unmarshal(appendNumber(nil, v), &back); err != nil || math.Abs(back-v) > 0.0005+v*1e-15 {
			t.Fatalf("%v written as %s, read back as %v (%v)", v, appendNumber(nil, v), back, err)
		}
	}
}
