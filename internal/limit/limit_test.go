package limit

import (
	"net"
	"net/netip"
	"testing"
	"time"
)

func TestBucket(t *testing.T) {
	var b Bucket
	now := int64(time.Hour)
	for i := range 3 {
		if !b.Take(now, 1, 3) {
			t.Fatalf("take %d of a full burst of 3 refused", i+1)
		}
	}
	if b.Take(now, 1, 3) {
		t.Fatal("a fourth token within the same instant")
	}
	if !b.Take(now+int64(time.Second), 1, 3) {
		t.Fatal("no token a second later at 1/s")
	}
}

// TestPerAddrIPv6Block: a host cannot walk its /64 to escape the limit,
// and IPv4 counts per address.
func TestPerAddrIPv6Block(t *testing.T) {
	var pa PerAddr
	now := int64(time.Hour)
	if !pa.Allow(netip.MustParseAddr("2001:db8::1"), now, 1, 1) {
		t.Fatal("first connection refused")
	}
	if pa.Allow(netip.MustParseAddr("2001:db8::2"), now, 1, 1) {
		t.Error("another address of the same /64 got its own bucket")
	}
	if !pa.Allow(netip.MustParseAddr("2001:db8:0:1::1"), now, 1, 1) {
		t.Error("another /64 shares the bucket")
	}
	if !pa.Allow(netip.MustParseAddr("192.0.2.1"), now, 1, 1) || !pa.Allow(netip.MustParseAddr("192.0.2.2"), now, 1, 1) {
		t.Error("IPv4 addresses share a bucket")
	}
	if pa.Allow(netip.MustParseAddr("::ffff:192.0.2.1"), now, 1, 1) {
		t.Error("an IPv4-mapped address escapes its IPv4 bucket")
	}
}

func TestTopicOver(t *testing.T) {
	lim := &Limits{MaxTopicLength: 10, MaxTopicLevels: 3}
	for topic, want := range map[string]bool{"a/b/c": false, "a/b/c/d": true, "//": false, "///": true, "0123456789": false, "0123456789a": true} {
		if got := TopicOver([]byte(topic), lim); got != want {
			t.Errorf("TopicOver(%q) = %v, want %v", topic, got, want)
		}
	}
}

func TestAddrOf(t *testing.T) {
	if got := AddrOf(&net.TCPAddr{IP: net.ParseIP("192.0.2.7"), Port: 1}); got.Unmap() != netip.MustParseAddr("192.0.2.7") {
		t.Errorf("TCP address: %v", got)
	}
	if got := AddrOf(&net.UnixAddr{Name: "x"}); got.IsValid() {
		t.Errorf("an address with no IP: %v", got)
	}
}

// TestLinesHoldBackPastTheBurst: a burst goes through, the rest is held
// back and counted once, and the rate refills it.
func TestLinesHoldBackPastTheBurst(t *testing.T) {
	l := Lines{Rate: 20, Burst: 3}
	now := int64(1e9)
	for i := range 5 {
		if got := l.Allow(now); got != (i < 3) {
			t.Fatalf("line %d: Allow = %v", i, got)
		}
	}
	if n := l.Held(); n != 2 {
		t.Fatalf("Held = %d, want 2", n)
	}
	if n := l.Held(); n != 0 {
		t.Fatalf("Held again = %d, want 0", n)
	}
	if !l.Allow(now + 1e9/20) {
		t.Fatal("no line after 1/Rate seconds")
	}
}
