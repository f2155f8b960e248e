package admin_test

import (
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/shoalmq/shoal/broker"
	"github.com/shoalmq/shoal/codec"
	"github.com/shoalmq/shoal/internal/testutil"
)

// TestStoreSyncMetric: with a store, /metrics has the histogram of sync
// durations, counting the sync a PUBACK waited for.
func TestStoreSyncMetric(t *testing.T) {
	_, addr, base := startAdminWith(t, adminOpts{edit: func(c *broker.Config) { c.DataDir = filepath.Join(t.TempDir(), "data") }})
	// Clean session 0: a persistent session, whose messages are stored.
	sub, _ := testutil.DialConnect(t, addr, codec.V311, codec.Connect{ClientID: []byte("keeper")})
	sub.Subscribe(1, "t", 1)
	pub, _ := testutil.DialConnect(t, addr, codec.V311, codec.Connect{ClientID: []byte("p"), CleanStart: true})
	pub.SendPublish(codec.Publish{Topic: []byte("t"), QoS: 1, PacketID: 1, Payload: []byte("x")})
	pub.ExpectAck(codec.PUBACK, 1, testutil.Wait)

	code, body := call(t, "GET", base+"/metrics", "")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	for _, want := range []string{
		`# TYPE shoal_store_sync_duration_seconds histogram`,
		`shoal_store_sync_duration_seconds_bucket{le="0.0001"}`,
		`shoal_store_sync_duration_seconds_bucket{le="2.5"}`,
		`shoal_store_sync_duration_seconds_bucket{le="+Inf"}`,
		`shoal_store_sync_duration_seconds_sum`,
	} {
		if !regexp.MustCompile(regexp.QuoteMeta(want)).MatchString(body) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	m := regexp.MustCompile(`(?m)^shoal_store_sync_duration_seconds_count (\d+)$`).FindStringSubmatch(body)
	if m == nil {
		t.Fatal("/metrics lacks shoal_store_sync_duration_seconds_count")
	}
	if n, _ := strconv.Atoi(m[1]); n == 0 {
		t.Error("no sync counted after an acknowledged QoS 1 message for a persistent session")
	}

	_, _, memBase := startAdmin(t, "")
	if _, body := call(t, "GET", memBase+"/metrics", ""); regexp.MustCompile(`shoal_store_sync`).MatchString(body) {
		t.Error("persistence off, and /metrics has shoal_store_sync_duration_seconds")
	}
}
