package enum

import "testing"

type color uint8

var colors = New[color]("color", "colour", "red", "green", "blue")

func TestNames(t *testing.T) {
	for v, want := range []string{"red", "green", "blue"} {
		if got := colors.String(color(v)); got != want {
			t.Errorf("String(%d) = %q, want %q", v, got, want)
		}
		if got, err := colors.Parse(want); err != nil || got != color(v) {
			t.Errorf("Parse(%q) = %d, %v", want, got, err)
		}
		if !colors.Valid(color(v)) {
			t.Errorf("Valid(%d) = false", v)
		}
	}
	if got := colors.String(7); got != "color(7)" {
		t.Errorf("String(7) = %q", got)
	}
	if colors.Valid(3) {
		t.Error("Valid(3) = true")
	}
	if _, err := colors.Parse("Red"); err == nil || err.Error() != `unknown colour "Red" (want red, green or blue)` {
		t.Errorf("Parse(Red): %v", err)
	}
}
