package eventloop

import "testing"

// TestWakeGate: a window of wake-ups with fewer than one join per
// gateRatio wake-ups closes the gate for gateSkip holds, then it opens for a new window;
// a window that paid leaves it open.
func TestWakeGate(t *testing.T) {
	var g wakeGate
	for i := range gateWindow {
		if !g.allow() {
			t.Fatalf("gate closed after %d wake-ups of a first window", i)
		}
		g.woke()
	}
	for i := range gateSkip {
		if g.allow() {
			t.Fatalf("gate open at hold %d after a window with no joins; want it closed for %d", i, gateSkip)
		}
	}
	for i := range gateWindow {
		if !g.allow() {
			t.Fatalf("gate closed at wake-up %d of the window after the skip", i)
		}
		if i%gateRatio == 0 {
			g.joined() // one wake-up in gateRatio gathered one more write: enough
		}
		g.woke()
	}
	if !g.allow() {
		t.Fatalf("gate closed after a window with a join per %d wake-ups", gateRatio)
	}
	// Joins counted while the gate is closed do not carry into the next window.
	g = wakeGate{}
	for range gateWindow - 1 {
		g.allow()
		g.woke()
	}
	g.joined()
	g.woke() // 1 join in 64 wake-ups: closed
	for range gateSkip - 1 {
		g.allow()
		g.joined()
	}
	if g.allow() {
		t.Fatal("gate open before gateSkip holds went by")
	}
	if g.joins != 0 {
		t.Errorf("joins = %d when the window after the skip begins; want 0", g.joins)
	}
}
