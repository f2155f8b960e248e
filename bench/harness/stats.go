package harness

import (
	"math"
	"slices"
)

// Median returns the median of the finite values in xs (the mean of the
// two middle ones for an even count), and NaN when there is none. NaN
// marks a value a round did not produce, so it is left out.
func Median(xs []float64) float64 {
	v := make([]float64, 0, len(xs))
	for _, x := range xs {
		if !math.IsNaN(x) && !math.IsInf(x, 0) {
			v = append(v, x)
		}
	}
	if len(v) == 0 {
		return math.NaN()
	}
	slices.Sort(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

// Ratio returns a/b, or NaN when either is missing or b is zero: a ratio
// to nothing is not shown rather than shown as infinity.
func Ratio(a, b float64) float64 {
	if math.IsNaN(a) || math.IsNaN(b) || b == 0 {
		return math.NaN()
	}
	return a / b
}

func nan() float64 { return math.NaN() }
