package main

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"time"
)

func TestExpandTopic(t *testing.T) {
	for _, tc := range []struct{ tmpl, want string }{
		{"bench/t", "bench/t"},
		{"bench/%i", "bench/42"},
		{"bench/%c/x", "bench/cid/x"},
		{"%u/%i/%c", "alice/42/cid"},
		{"100%%", "100%"},
		{"a/%x/%", "a/%x/%"}, // unknown and trailing % stay
		{"%i%i", "4242"},
	} {
		if got := expandTopic(tc.tmpl, 42, "cid", "alice"); got != tc.want {
			t.Errorf("expandTopic(%q) = %q, want %q", tc.tmpl, got, tc.want)
		}
	}
}

func TestStamp(t *testing.T) {
	p := make([]byte, 64)
	in := stamp{sentNs: 0x0102030405060708, seq: 1<<40 + 7, pub: 0xdeadbeef}
	in.put(p)
	// Golden bytes: big-endian time, sequence, index.
	want := []byte{
		0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, // send time
		0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x07, // seq 2^40+7
		0xde, 0xad, 0xbe, 0xef, // publisher index
	}
	if !bytes.Equal(p[:stampSize], want) {
		t.Errorf("stamp bytes % x, want % x", p[:stampSize], want)
	}
	out, err := readStamp(p)
	if err != nil || out != in {
		t.Errorf("readStamp = %+v, %v; want %+v", out, err, in)
	}
	if _, err := readStamp(p[:stampSize-1]); !errors.Is(err, errShortPayload) {
		t.Errorf("short payload: %v", err)
	}
}

func TestTrackerInOrder(t *testing.T) {
	var tr tracker
	for s := range uint64(100) {
		tr.add(1, s)
		tr.add(2, s)
	}
	if lost, dup := tr.loss(100, 2); lost != 0 || dup != 0 {
		t.Errorf("lost %d dup %d, want 0 0", lost, dup)
	}
	// A third publisher never heard from: all 100 of its messages are lost.
	if lost, _ := tr.loss(100, 3); lost != 100 {
		t.Errorf("missing publisher: lost %d, want 100", lost)
	}
}

func TestTrackerGapsReorderDuplicates(t *testing.T) {
	var tr tracker
	seqs := []uint64{0, 1, 3, 2, 2, 5, 1, 4, 9} // 6, 7, 8 missing; 2 and 1 twice
	fresh := 0
	for _, s := range seqs {
		if tr.add(7, s) {
			fresh++
		}
	}
	if fresh != 7 {
		t.Errorf("%d new, want 7", fresh)
	}
	lost, dup := tr.loss(0, 0) // gaps below the highest only
	if lost != 3 || dup != 2 {
		t.Errorf("gaps: lost %d dup %d, want 3 2", lost, dup)
	}
	lost, _ = tr.loss(12, 1) // 10 and 11 never came either
	if lost != 5 {
		t.Errorf("with expect: lost %d, want 5", lost)
	}
}

func TestTrackerWindow(t *testing.T) {
	var tr tracker
	tr.add(0, 0)
	tr.add(0, seqWindow+10) // jump past the window: bits start clean
	if !tr.add(0, 20) {     // inside the window, never seen
		t.Error("seq 20 counted as a duplicate")
	}
	if tr.add(0, 20) {
		t.Error("seq 20 twice not counted as a duplicate")
	}
	tr.add(0, 5) // behind the window: unverifiable, counted new
	pt := tr.pubs[0]
	if pt.dup != 1 || pt.old != 1 || pt.unique != 4 {
		t.Errorf("dup %d old %d unique %d, want 1 1 4", pt.dup, pt.old, pt.unique)
	}
	// Slide one step at a time across more than a window: a slot reused
	// for a new sequence must not remember the old one.
	var tr2 tracker
	for s := range uint64(3 * seqWindow) {
		if !tr2.add(0, s) {
			t.Fatalf("seq %d counted as a duplicate", s)
		}
	}
	for s := uint64(2 * seqWindow); s < 3*seqWindow; s++ {
		if tr2.add(0, s) {
			t.Fatalf("seq %d twice not counted as a duplicate", s)
		}
	}
}

func TestParseStatCPU(t *testing.T) {
	stat := []byte("1234 (shoal bench) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 130 0 0 20 0 8 0 100 0 0\n")
	got, err := parseStatCPU(stat)
	if err != nil || got != 3.8 {
		t.Errorf("parseStatCPU = %v, %v; want 3.8 (380 ticks)", got, err)
	}
	if _, err := cpuSeconds(); err != nil {
		t.Errorf("cpuSeconds: %v", err)
	}
}

func TestParseArgs(t *testing.T) {
	c, err := parseArgs([]string{"pub", "-h", "10.0.0.1", "-p", "1884", "-c", "5", "-t", "t/%i", "-q", "2",
		"-s", "64", "-I", "0", "-L", "7", "-V", "4", "-k", "30", "-S", "100", "--prefix", "x",
		"--src", "127.0.0.2,127.0.0.3", "--duration", "1.5", "--loops", "3", "--json", "-R", "50"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.addr() != "10.0.0.1:1884" || c.count != 5 || c.qos != 2 || c.size != 64 || c.pubInterval != 0 ||
		c.limit != 7 || c.version != 4 || c.keepAlive != 30 || c.start != 100 || len(c.src) != 2 ||
		c.duration != 1500*time.Millisecond || c.loops != 3 || !c.json || c.rate != 50 {
		t.Errorf("parsed %+v", c)
	}
	if id := c.clientID(103); id != "x-pub-103" {
		t.Errorf("clientID = %q", id)
	}
	for _, bad := range [][]string{
		{},
		{"nope"},
		{"pub", "-t", "x", "-s", "19"},
		{"sub"},
		{"conn", "-V", "6"},
		{"conn", "--src", "not-an-ip"},
	} {
		if _, err := parseArgs(bad, io.Discard); err == nil {
			t.Errorf("parseArgs(%q) accepted", bad)
		}
	}
}
