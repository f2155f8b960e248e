package harness

import (
	"math"
	"testing"
)

func TestMedian(t *testing.T) {
	nan := math.NaN()
	tests := []struct {
		in   []float64
		want float64
	}{
		{[]float64{3, 1, 2}, 2},
		{[]float64{4, 1, 3, 2}, 2.5},
		{[]float64{7}, 7},
		{[]float64{5, nan, 1}, 3}, // a round that produced nothing is left out
		{[]float64{1, math.Inf(1), 3}, 2},
	}
	for _, tt := range tests {
		if got := Median(tt.in); got != tt.want {
			t.Errorf("Median(%v) = %v; want %v", tt.in, got, tt.want)
		}
	}
	for _, in := range [][]float64{nil, {nan, nan}} {
		if got := Median(in); !math.IsNaN(got) {
			t.Errorf("Median(%v) = %v; want NaN", in, got)
		}
	}
	in := []float64{3, 1, 2}
	Median(in)
	if in[0] != 3 || in[1] != 1 {
		t.Errorf("Median sorted its argument: %v", in)
	}
}

func TestRatio(t *testing.T) {
	if got := Ratio(3, 2); got != 1.5 {
		t.Errorf("Ratio(3, 2) = %v", got)
	}
	for _, c := range [][2]float64{{1, 0}, {0, 0}, {math.NaN(), 1}, {1, math.NaN()}} {
		if got := Ratio(c[0], c[1]); !math.IsNaN(got) {
			t.Errorf("Ratio(%v, %v) = %v; want NaN", c[0], c[1], got)
		}
	}
}

func TestFormat(t *testing.T) {
	for _, tt := range []struct {
		x    float64
		dec  int
		want string
	}{
		{1234567.8, 0, "1,234,568"},
		{999, 0, "999"},
		{1000, 0, "1,000"},
		{0.256, 2, "0.26"},
		{-1234.5, 1, "-1,234.5"},
		{-0.001, 1, "0.0"},
		{math.NaN(), 2, "—"},
	} {
		if got := FormatValue(tt.x, tt.dec); got != tt.want {
			t.Errorf("FormatValue(%v, %d) = %q; want %q", tt.x, tt.dec, got, tt.want)
		}
	}
	if got := FormatRatio(0.4567); got != "0.46×" {
		t.Errorf("FormatRatio = %q", got)
	}
	if got := FormatRatio(math.NaN()); got != "—" {
		t.Errorf("FormatRatio(NaN) = %q", got)
	}
}
