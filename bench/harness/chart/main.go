// Command chart draws a benchmark chart as a PNG: side-by-side panels, one
// per metric, each a bar group per variant with one bar per broker. The
// harness (bench/harness) writes the JSON spec and runs this program.
//
// It is its own module so that its one dependency, golang.org/x/image
// (for the Go fonts), stays out of Shoal's go.mod.
//
//	chart -in spec.json -out chart.png
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"image/png"
	"os"
)

// Spec mirrors harness.ChartSpec.
type Spec struct {
	Title  string   `json:"title"`
	Note   string   `json:"note"`
	Series []string `json:"series"`
	Panels []Panel  `json:"panels"`
	// Columns is how many panels a row holds; 0 puts all in one row.
	Columns int `json:"columns"`
}

// Panel mirrors harness.ChartPanel: Values[group][series], nil when
// missing.
type Panel struct {
	Title  string       `json:"title"`
	Groups []string     `json:"groups"`
	Values [][]*float64 `json:"values"`
}

func main() {
	in := flag.String("in", "", "chart spec (JSON)")
	out := flag.String("out", "", "PNG to write")
	flag.Parse()
	if err := run(*in, *out); err != nil {
		fmt.Fprintln(os.Stderr, "chart:", err)
		os.Exit(1)
	}
}

func run(in, out string) error {
	if in == "" || out == "" {
		return fmt.Errorf("-in and -out are required")
	}
	b, err := os.ReadFile(in)
	if err != nil {
		return err
	}
	var s Spec
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	img, err := Draw(s)
	if err != nil {
		return err
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
