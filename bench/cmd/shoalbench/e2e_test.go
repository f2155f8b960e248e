package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shoalmq/shoal/broker"
	"github.com/shoalmq/shoal/internal/testutil"
)

type runResult struct {
	code   int
	sum    summary
	stderr string
}

// runCmd runs shoalbench in-process and parses its JSON line.
func runCmd(t *testing.T, ctx context.Context, args ...string) runResult {
	var out, errb testutil.SyncBuffer
	code := run(ctx, args, &out, &errb)
	r := runResult{code: code, stderr: errb.String()}
	line := strings.TrimSpace(out.String())
	if err := json.Unmarshal([]byte(line), &r.sum); err != nil {
		t.Errorf("%s: JSON line %q: %v\nstderr:\n%s", args[0], line, err, r.stderr)
	}
	return r
}

func TestSubPubEndToEnd(t *testing.T) {
	for _, tc := range []struct {
		name      string
		qos       string
		interval  string // -I
		version   string
		expectSub int // --expect given to sub
		wantCode  int
		wantLost  int64
		duration  string
	}{
		{name: "qos1 saturation v5", qos: "1", interval: "0", version: "5", expectSub: 100, duration: "30s"},
		{name: "qos2 saturation v3.1.1", qos: "2", interval: "0", version: "4", expectSub: 100, duration: "30s"},
		{name: "qos0 paced", qos: "0", interval: "2", version: "5", expectSub: 100, duration: "30s"},
		// The subscribers expect 150 from each publisher but get 100: the run
		// ends at --duration with 10 × 2 × 50 lost, a failure at QoS 1.
		{name: "qos1 loss fails", qos: "1", interval: "0", version: "5", expectSub: 150, duration: "3s",
			wantCode: exitLost, wantLost: 1000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, addr := testutil.StartBroker(t, nil)
			host, port := testutil.HostPort(t, addr)
			ready := filepath.Join(t.TempDir(), "ready")
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			common := []string{"-h", host, "-p", port, "-t", "bench/e2e", "-q", tc.qos, "-V", tc.version,
				"-i", "0", "--loops", "2", "--json", "--prefix", "e2e"}

			subDone := make(chan runResult, 1)
			go func() {
				subDone <- runCmd(t, ctx, append([]string{"sub", "-c", "10", "--expect", strconv.Itoa(tc.expectSub),
					"--pubs", "2", "--ready", ready, "--duration", tc.duration}, common...)...)
			}()
			testutil.Eventually(t, 20*time.Second, "sub's --ready file", func() bool {
				_, err := os.Stat(ready)
				return err == nil
			})
			pub := runCmd(t, ctx, append([]string{"pub", "-c", "2", "-I", tc.interval, "-L", "100", "-s", "64",
				"--start-at", ready}, common...)...)
			sub := <-subDone

			if pub.code != exitOK || pub.sum.Sent != 200 || pub.sum.Connected != 2 || pub.sum.Lost != 0 {
				t.Errorf("pub: exit %d, %+v\n%s", pub.code, pub.sum, pub.stderr)
			}
			s := sub.sum
			if sub.code != tc.wantCode || s.Mode != "sub" || s.Connected != 10 || s.Received != 2000 ||
				s.Lost != tc.wantLost || s.Dup != 0 {
				t.Errorf("sub: exit %d, %+v\n%s", sub.code, s, sub.stderr)
			}
			if s.LatP50 <= 0 || s.LatP999 < s.LatP50 || s.RecvRate <= 0 || s.CPUS < 0 { // a short run may truly use under one 10 ms tick
				t.Errorf("sub figures implausible: %+v", s)
			}
			if tc.wantCode == exitLost && !strings.Contains(sub.stderr, "FAILED: 1000 messages lost at QoS 1") {
				t.Errorf("loss not reported on stderr:\n%s", sub.stderr)
			}
		})
	}
}

func TestConnMode(t *testing.T) {
	_, addr := testutil.StartBroker(t, nil)
	host, port := testutil.HostPort(t, addr)
	ready := filepath.Join(t.TempDir(), "ready")
	r := runCmd(t, context.Background(), "conn", "-h", host, "-p", port, "-c", "50", "-R", "1000",
		"--src", "127.0.0.1", "--duration", "1s", "--ready", ready, "--json", "--prefix", "cm")
	if r.code != exitOK || r.sum.Connected != 50 || r.sum.ConnectFailed != 0 || r.sum.ConnectRate <= 0 ||
		r.sum.ConnackP99 <= 0 || r.sum.DurationS < 1 {
		t.Errorf("conn: exit %d, %+v\n%s", r.code, r.sum, r.stderr)
	}
	if b, err := os.ReadFile(ready); err != nil || strings.TrimSpace(string(b)) != "50" {
		t.Errorf("ready file: %q, %v", b, err)
	}
}

// TestStallMode: stalled subscribers connect and subscribe, then never
// acknowledge or read; the broker's slow-consumer policy closes them once
// their window (64) and queue (100) are full, while a reading subscriber of
// the same topic gets every message. The publisher is paced (1 ms): at
// saturation it could outrun even the reading subscriber by a queue.
func TestStallMode(t *testing.T) {
	b, addr := testutil.StartBroker(t, func(c *broker.Config) { c.MaxQueued = 100 })
	host, port := testutil.HostPort(t, addr)
	dir := t.TempDir()
	stallReady, subReady := filepath.Join(dir, "stall"), filepath.Join(dir, "sub")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	common := []string{"-h", host, "-p", port, "-t", "stall/t", "-q", "1", "-V", "4", "--json"}

	stallCtx, stopStall := context.WithCancel(ctx)
	stallDone := make(chan runResult, 1)
	go func() {
		stallDone <- runCmd(t, stallCtx, append([]string{"stall", "-c", "2", "--ready", stallReady, "--prefix", "st"}, common...)...)
	}()
	subDone := make(chan runResult, 1)
	go func() {
		subDone <- runCmd(t, ctx, append([]string{"sub", "-c", "1", "--expect", "400", "--pubs", "1",
			"--ready", subReady, "--duration", "30s", "--prefix", "sb"}, common...)...)
	}()
	for _, f := range []string{stallReady, subReady} {
		testutil.Eventually(t, 20*time.Second, filepath.Base(f)+" ready", func() bool {
			_, err := os.Stat(f)
			return err == nil
		})
	}
	if n := b.SessionCount(); n != 3 {
		t.Fatalf("%d sessions before publishing, want 3 (2 stalled, 1 reading)", n)
	}
	pub := runCmd(t, ctx, append([]string{"pub", "-c", "1", "-I", "1", "-L", "400", "-s", "200",
		"--start-at", subReady, "--prefix", "pb"}, common...)...)
	sub := <-subDone
	if pub.code != exitOK || pub.sum.Sent != 400 {
		t.Errorf("pub: exit %d, %+v\n%s", pub.code, pub.sum, pub.stderr)
	}
	if sub.code != exitOK || sub.sum.Received != 400 || sub.sum.Lost != 0 {
		t.Errorf("sub: exit %d, %+v\n%s", sub.code, sub.sum, sub.stderr)
	}
	// The stalled clients' clean sessions end when the broker closes them.
	testutil.Eventually(t, 10*time.Second, "the stalled clients to be disconnected", func() bool { return b.SessionCount() == 0 })
	stopStall()
	st := <-stallDone
	if st.code != exitOK || st.sum.Mode != "stall" || st.sum.Connected != 2 || st.sum.ConnectFailed != 0 {
		t.Errorf("stall: exit %d, %+v\n%s", st.code, st.sum, st.stderr)
	}
}
