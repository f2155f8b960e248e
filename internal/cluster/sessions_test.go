package cluster

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestClaimTurns: claims of one client id on one node take turns — the
// second waits until the first ends, and gives up when its context does
// — while a claim of another client id goes on at once. Without turns,
// a client that gave up on a slow CONNECT and tried again had its second
// claim look for the session where it was before the first claim moved
// it, and start afresh (the session lost).
func TestClaimTurns(t *testing.T) {
	s := NewSessions()
	ctx := context.Background()
	end, err := s.turn(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}

	other, err := s.turn(ctx, "b") // another client id: no wait
	if err != nil {
		t.Fatal(err)
	}
	other()

	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := s.turn(short, "a"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a second claim of a, while the first is under way: %v, want it to wait until its context ends", err)
	}

	second := make(chan func())
	go func() {
		end2, err := s.turn(ctx, "a")
		if err != nil {
			t.Error(err)
		}
		second <- end2
	}()
	select {
	case <-second:
		t.Fatal("a second claim of a went on while the first was under way")
	case <-time.After(50 * time.Millisecond):
	}
	end()
	select {
	case end2 := <-second:
		end2()
	case <-time.After(10 * time.Second):
		t.Fatal("the second claim of a still waits after the first ended")
	}
	s.mu.Lock()
	left := len(s.claiming)
	s.mu.Unlock()
	if left != 0 {
		t.Errorf("%d claims still marked under way after all ended", left)
	}
}
