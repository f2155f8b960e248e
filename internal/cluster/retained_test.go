package cluster

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/shoalmq/shoal/router"
)

func startRetained(t *testing.T, nodes []*Node) []*Retained {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out := make([]*Retained, len(nodes))
	for i, n := range nodes {
		r := NewRetained()
		if err := r.Open(ctx, n, zerolog.New(zerolog.NewTestWriter(t))); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(r.Close)
		out[i] = r
	}
	return out
}

func retain(r *Retained, topic, payload string, expiry int64) {
	m := router.NewMessage([]byte(topic), []byte(payload), nil, []byte("pub"), 1, true, expiry, nil)
	r.Set(m)
	m.Release()
}

// collect reads filter's retained messages on r after its Barrier.
func collect(t *testing.T, r *Retained, filter string) map[string]*router.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.Barrier(ctx); err != nil {
		t.Fatal(err)
	}
	out := map[string]*router.Message{}
	for _, m := range r.Collect(filter, nil) {
		out[string(m.Topic)] = m
		t.Cleanup(m.Release)
	}
	return out
}

// TestRetainedReadYourWrite: a retained message set on one node is there
// for the next reader on another, right after Set returns, with its
// payload and time left; a delete on a third node is seen everywhere; each
// node's own $SYS topics stay its own.
func TestRetainedReadYourWrite(t *testing.T) {
	rs := startRetained(t, startCluster(t, 3))
	expiry := time.Now().Add(time.Hour).UnixNano()
	for i := range 20 { // each read right after its write: no waiting between
		topic := "room/" + strings.Repeat("x", i) + "/t.emp"
		retain(rs[0], topic, "v", expiry)
		if got := collect(t, rs[i%2+1], "room/+/#"); got[topic] == nil {
			t.Fatalf("node %d: %q not there right after Set on node 0 (has %d)", i%2+1, topic, len(got))
		}
	}
	got := collect(t, rs[2], "room/#")
	m := got["room//t.emp"]
	if len(got) != 20 || m == nil || string(m.Payload) != "v" || m.QoS != 1 || !m.Retain {
		t.Fatalf("node 2 has %d messages; room//t.emp: %+v", len(got), m)
	}
	if left := time.Until(time.Unix(0, m.Expiry)); left < 59*time.Minute || left > time.Hour {
		t.Fatalf("expires in %v, want just under an hour", left)
	}
	retain(rs[1], "room//t.emp", "", 0)
	for i, r := range rs {
		if got := collect(t, r, "room/#"); len(got) != 19 || got["room//t.emp"] != nil {
			t.Fatalf("node %d still has the deleted message (%d messages)", i, len(got))
		}
	}
	retain(rs[0], "$SYS/broker/uptime", "1", 0)
	if len(collect(t, rs[0], "$SYS/#")) != 1 || len(collect(t, rs[1], "$SYS/#")) != 0 {
		t.Fatal("$SYS is not each node's own")
	}
}

// TestRetainedTooLong: a topic whose key NATS cannot take (longer than a
// cluster's max_topic_length allows) is refused and counted, not
// half-stored; the longest allowed is taken.
func TestRetainedTooLong(t *testing.T) {
	rs := startRetained(t, startCluster(t, 1))
	retain(rs[0], strings.Repeat("%", 1200), "v", 0)
	if rs[0].Failed.Load() != 1 || len(collect(t, rs[0], "#")) != 0 {
		t.Fatalf("failed %d", rs[0].Failed.Load())
	}
	retain(rs[0], strings.Repeat("%", MaxTopicLength), "v", 0)
	if rs[0].Failed.Load() != 1 || len(collect(t, rs[0], "#")) != 1 {
		t.Fatalf("failed %d: the longest topic allowed was refused", rs[0].Failed.Load())
	}
}

// TestRetainedBarrierWaitsForMirror: a reader on a node whose mirror is
// behind waits (After) until the mirror has the write another node's Set
// returned from, and then reads it.
func TestRetainedBarrierWaitsForMirror(t *testing.T) {
	rs := startRetained(t, startCluster(t, 3))
	rs[1].applying.Lock() // node 1's mirror falls behind
	retain(rs[0], "late/t", "v", 0)
	read := make(chan int, 1)
	rs[1].After(func() {
		list := rs[1].Collect("late/#", nil)
		for _, m := range list {
			m.Release()
		}
		read <- len(list)
	})
	select {
	case n := <-read:
		t.Fatalf("the reader went ahead of the mirror (read %d)", n)
	case <-time.After(300 * time.Millisecond):
	}
	rs[1].applying.Unlock()
	select {
	case n := <-read:
		if n != 1 {
			t.Fatalf("read %d messages after the wait, want the one set", n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the reader never went on")
	}
}

// TestRetainedRewatch: a mirror that missed changes — a message the
// bucket no longer has, one the bucket got while its watch was silent —
// has exactly what the bucket holds after Rewatch, and the watch made anew
// brings what comes after. This node's $SYS messages stay.
func TestRetainedRewatch(t *testing.T) {
	r := startRetained(t, startCluster(t, 1))[0]
	retain(r, "kept", "k", 0)
	sys := router.NewMessage([]byte("$SYS/broker/x"), []byte("s"), nil, nil, 0, true, 0, nil)
	r.Set(sys)
	sys.Release()
	// What a silent watch leaves behind: a message in the mirror alone,
	// and one in the bucket alone (written around the mirror).
	stale := router.NewMessage([]byte("gone"), []byte("g"), nil, nil, 1, true, 0, nil)
	r.MemRetained.Set(stale)
	stale.Release()
	missed := router.NewMessage([]byte("missed"), []byte("m"), nil, []byte("pub"), 1, true, 0, nil)
	key, err := Subject(nil, retainedRoot, "missed")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r.watch.mu.Lock()
	r.watch.stopLocked() // silent from now on
	r.watch.mu.Unlock()
	if _, err := r.kv.Put(ctx, string(key), appendFrame(nil, missed, "", time.Now().UnixNano())); err != nil {
		t.Fatal(err)
	}
	missed.Release()
	if err := r.Rewatch(ctx); err != nil {
		t.Fatal(err)
	}
	got := collect(t, r, "#")
	if len(got) != 2 || got["kept"] == nil || got["missed"] == nil {
		t.Fatalf("after Rewatch the mirror has %v, want kept and missed", keys(got))
	}
	if len(collect(t, r, "$SYS/#")) != 1 {
		t.Fatal("Rewatch dropped this node's $SYS message")
	}
	retain(r, "after", "a", 0)
	if collect(t, r, "after")["after"] == nil {
		t.Fatal("the watch made anew did not bring a message set after it")
	}
}

func keys(m map[string]*router.Message) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
