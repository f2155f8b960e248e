package broker_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/shoalmq/shoal/broker"
	"github.com/shoalmq/shoal/codec"
	"github.com/shoalmq/shoal/internal/testutil"
)

// TestStoreSyncTimed: the syncs that PUBACKs wait for are counted in
// Stats.StoreSync, over both stores (suite rule 26), and the histogram is
// cumulative; with persistence off there is none.
func TestStoreSyncTimed(t *testing.T) {
	for name, use := range storeKinds(t) {
		t.Run(name, func(t *testing.T) {
			b, addr := testutil.StartBroker(t, use)
			// Clean session 0: a persistent session, whose messages are stored.
			sub, _ := testutil.DialConnect(t, addr, codec.V311, codec.Connect{ClientID: []byte("keeper")})
			sub.Subscribe(1, "t", 1)
			pub, _ := testutil.DialConnect(t, addr, codec.V311, codec.Connect{ClientID: []byte("p"), CleanStart: true})
			pub.SendPublish(codec.Publish{Topic: []byte("t"), QoS: 1, PacketID: 7, Payload: []byte("x")})
			pub.ExpectAck(codec.PUBACK, 7, testutil.Wait) // after a sync, in strict mode

			st := b.Stats().StoreSync
			if st == nil || st.Count == 0 {
				t.Fatalf("StoreSync = %+v after an acknowledged QoS 1 message for a persistent session; want syncs counted", st)
			}
			last := st.Buckets[len(st.Buckets)-1]
			if last.Le != 0 || last.Count != st.Count {
				t.Errorf("+Inf bucket %+v, want Le 0 and the count %d", last, st.Count)
			}
			for i := 1; i < len(st.Buckets); i++ {
				if st.Buckets[i].Count < st.Buckets[i-1].Count {
					t.Errorf("buckets not cumulative: %+v", st.Buckets)
				}
				if i < len(st.Buckets)-1 && st.Buckets[i].Le <= st.Buckets[i-1].Le {
					t.Errorf("bucket bounds not increasing: %+v", st.Buckets)
				}
			}
			if st.Sum <= 0 || st.Sum > time.Duration(st.Count)*10*time.Second {
				t.Errorf("sum %v over %d syncs", st.Sum, st.Count)
			}
		})
	}
	b, _ := testutil.StartBroker(t, nil)
	if st := b.Stats().StoreSync; st != nil {
		t.Errorf("persistence off: StoreSync = %+v, want nil", st)
	}
}

// TestRelaxedSyncTimed: relaxed durability's once-a-second sync is timed
// too.
func TestRelaxedSyncTimed(t *testing.T) {
	b, _ := testutil.StartBroker(t, func(c *broker.Config) {
		c.DataDir = filepath.Join(t.TempDir(), "data")
		c.Durability = broker.Relaxed
	})
	testutil.Eventually(t, 5*time.Second, "a relaxed sync to be counted", func() bool {
		st := b.Stats().StoreSync
		return st != nil && st.Count > 0
	})
}
