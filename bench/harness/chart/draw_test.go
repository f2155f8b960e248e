package main

import (
	"image/color"
	"testing"
)

func TestCompact(t *testing.T) {
	for in, want := range map[float64]string{
		0: "0", 0.354: "0.35", 4.2: "4.2", 12.0: "12", 120.4: "120",
		12500: "12.5k", 100000: "100k", 3100000: "3.1M",
	} {
		if got := compact(in); got != want {
			t.Errorf("compact(%v) = %q; want %q", in, got, want)
		}
	}
}

func TestNiceStep(t *testing.T) {
	for in, want := range map[float64]float64{0: 1, 0.3: 0.5, 1: 1, 1.5: 2, 3: 5, 7: 10, 23000: 50000} {
		if got := niceStep(in); got != want {
			t.Errorf("niceStep(%v) = %v; want %v", in, got, want)
		}
	}
}

func TestDraw(t *testing.T) {
	v := func(x float64) *float64 { return &x }
	img, err := Draw(Spec{
		Title: "t", Series: []string{"a", "b"},
		Panels: []Panel{{Title: "p", Groups: []string{"g1", "g2"}, Values: [][]*float64{{v(10), v(20)}, {v(5), nil}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if w := img.Bounds().Dx(); w != 2*margin+minPanelW {
		t.Fatalf("width %d; want %d", w, 2*margin+minPanelW)
	}
	// The first series' colour must appear: its legend square and bars.
	found := false
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y && !found; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			if img.At(x, y) == color.Color(palette[0]) {
				found = true
				break
			}
		}
	}
	if !found {
		t.Fatal("no pixel in the first series' colour")
	}
	two, err := Draw(Spec{Series: []string{"a"}, Columns: 1, Panels: []Panel{{Title: "p"}, {Title: "q"}}})
	if err != nil {
		t.Fatal(err)
	}
	if h := two.Bounds().Dy(); h != headerH+2*panelH+margin {
		t.Errorf("two rows: height %d; want %d", h, headerH+2*panelH+margin)
	}
	if _, err := Draw(Spec{}); err == nil {
		t.Fatal("Draw of no panels: no error")
	}
}
