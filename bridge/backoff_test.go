package bridge

import (
	"testing"
	"time"
)

// TestNextWait: restart_timeout with one number waits that long; with a
// base and a cap, decorrelated jitter stays within [base, 3*previous) and
// under the cap.
func TestNextWait(t *testing.T) {
	constant := Backoff{Base: 20 * time.Second}
	if w := nextWait(constant, 0, nil); w != 20*time.Second {
		t.Errorf("constant: %v", w)
	}
	b := Backoff{Base: 5 * time.Second, Cap: 30 * time.Second}
	low := func(int64) int64 { return 0 }
	high := func(n int64) int64 { return n - 1 }
	if w := nextWait(b, 0, low); w != 5*time.Second {
		t.Errorf("first, lowest: %v", w)
	}
	if w := nextWait(b, 0, high); w != 15*time.Second-1 {
		t.Errorf("first, highest: %v, want just under 3*base", w)
	}
	if w := nextWait(b, 8*time.Second, high); w != 24*time.Second-1 {
		t.Errorf("after 8s, highest: %v", w)
	}
	if w := nextWait(b, 20*time.Second, high); w != 30*time.Second {
		t.Errorf("capped: %v", w)
	}
}
