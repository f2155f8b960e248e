package admin_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/shoalmq/shoal/admin"
	"github.com/shoalmq/shoal/broker"
	"github.com/shoalmq/shoal/codec"
	"github.com/shoalmq/shoal/internal/testutil"
)

// historyDoc is /api/history's answer.
type historyDoc struct {
	Version    string
	IntervalMS int64 `json:"interval_ms"`
	WindowMS   int64 `json:"window_ms"`
	T          []int64
	Series     map[string][]*float64
}

// getHistory fetches base+"/api/history"+query.
func getHistory(t *testing.T, base, query string) historyDoc {
	t.Helper()
	code, body := call(t, "GET", base+"/api/history"+query, token)
	var h historyDoc
	if code != 200 || json.Unmarshal([]byte(body), &h) != nil {
		t.Fatalf("/api/history%s: %d %s", query, code, body)
	}
	return h
}

// tick has the sampler take a sample at at, and waits until it is in the
// history: the sampler reads Stats after it takes the tick, so what the
// test does next must wait.
func tick(t *testing.T, ticks chan<- time.Time, base string, at time.Time) {
	t.Helper()
	ticks <- at
	testutil.Eventually(t, testutil.Wait, "the sample to be recorded", func() bool {
		h := getHistory(t, base, "?since="+strconv.FormatInt(at.UnixMilli()-1, 10))
		return len(h.T) > 0
	})
}

// publishAcked publishes n QoS 1 messages and waits for each PUBACK: Stats
// counts them by then (a loop publishes its counters before it flushes its
// output).
func publishAcked(t *testing.T, pub *testutil.Raw, n int, id *uint16) {
	t.Helper()
	for range n {
		*id++
		pub.SendPublish(codec.Publish{Topic: []byte("h/t"), QoS: 1, PacketID: *id, Payload: []byte("x")})
		pub.ExpectAck(codec.PUBACK, *id, testutil.Wait)
	}
}

// The sampler takes a sample at each tick; /api/history serves them by
// column, rates from the counters' differences over the ticks' times, and
// ?since= only the newer ones.
func TestAPIHistory(t *testing.T) {
	ticks := make(chan time.Time)
	_, addr, base := startAdminWith(t, adminOpts{token: token, ticks: ticks})
	pub, _ := testutil.DialConnect(t, addr, codec.V311, codec.Connect{ClientID: []byte("h"), CleanStart: true})
	var id uint16

	t0 := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	at := func(i int) time.Time { return t0.Add(time.Duration(i) * 2 * time.Second) }
	tick(t, ticks, base, at(0))
	publishAcked(t, pub, 4, &id)
	tick(t, ticks, base, at(1))
	publishAcked(t, pub, 10, &id)
	tick(t, ticks, base, at(2))
	last := at(2)
	h := getHistory(t, base, "")
	if len(h.T) != 3 {
		t.Fatalf("%d samples, want 3: %v", len(h.T), h.T)
	}
	if h.T[0] != t0.UnixMilli() || h.T[2] != last.UnixMilli() || h.IntervalMS != 2000 || h.WindowMS != 600_000 {
		t.Errorf("times %v, interval %d, window %d", h.T, h.IntervalMS, h.WindowMS)
	}
	in := h.Series["messages_in_per_s"]
	if len(in) != 3 || in[0] != nil || in[1] == nil || *in[1] != 2 || in[2] == nil || *in[2] != 5 {
		t.Errorf("messages_in_per_s: %v, want [null 2 5]", deref(in))
	}
	if c := h.Series["clients_connected"]; len(c) != 3 || c[2] == nil || *c[2] != 1 {
		t.Errorf("clients_connected: %v", deref(c))
	}
	if b := h.Series["bytes_in_per_s"]; b[2] == nil || *b[2] <= 0 {
		t.Errorf("bytes_in_per_s: %v", deref(b))
	}
	for _, name := range []string{"messages_out_per_s", "bytes_out_per_s", "dropped_per_s", "dropped_total",
		"queued", "inflight", "retained_user", "retained_sys", "sessions", "subscriptions"} {
		if len(h.Series[name]) != 3 {
			t.Errorf("%s: %v", name, deref(h.Series[name]))
		}
	}

	if got := getHistory(t, base, "?since="+strconv.FormatInt(h.T[1], 10)); len(got.T) != 1 || got.T[0] != h.T[2] {
		t.Errorf("since the second sample: %v", got.T)
	}
	if code, body := call(t, "GET", base+"/api/history?since=yesterday", token); code != http.StatusBadRequest {
		t.Errorf("since=yesterday: %d %s", code, body)
	}
	if code, _ := call(t, "GET", base+"/api/history", ""); code != http.StatusUnauthorized {
		t.Errorf("without the token: %d", code)
	}
}

func deref(col []*float64) []any {
	out := make([]any, len(col))
	for i, v := range col {
		if v != nil {
			out[i] = *v
		}
	}
	return out
}

// Without injected ticks, the sampler takes its first sample at Start: a
// page opened in the first interval has a point to draw.
func TestHistoryFirstSampleAtStart(t *testing.T) {
	_, _, base := startAdmin(t, token)
	testutil.Eventually(t, testutil.Wait, "a first sample", func() bool { return len(getHistory(t, base, "").T) >= 1 })
}

// Close stops the sampler goroutine and waits for it: after Close, nothing
// takes a tick.
func TestHistorySamplerStopsWithClose(t *testing.T) {
	b, _ := testutil.StartBroker(t, func(c *broker.Config) { c.SysInterval = 0 })
	s, err := admin.New(b, admin.Config{Listen: "127.0.0.1:0", Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	ticks := make(chan time.Time)
	s.SetHistoryTicks(ticks)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case ticks <- time.Now():
	case <-time.After(testutil.Wait):
		t.Fatal("the sampler takes no tick")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case ticks <- time.Now():
		t.Fatal("a tick was taken after Close: the sampler is still running")
	case <-time.After(100 * time.Millisecond):
	}
}
