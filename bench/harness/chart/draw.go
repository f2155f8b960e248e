package main

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"math"
	"strconv"

	"golang.org/x/image/font"
	"golang.org/x/image/font/gofont/gobold"
	"golang.org/x/image/font/gofont/goregular"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/math/fixed"
)

// Layout, in pixels.
const (
	minPanelW = 560
	barSlot   = 46 // width per bar, room for its value label
	groupGap  = 20
	maxBarW   = 90
	panelH    = 420
	margin    = 24
	headerH   = 86 // title, note and legend
	axisW     = 64 // y labels
	labelH    = 40 // group labels under the bars
)

// palette gives each series (broker) its colour, in spec order: Shoal
// first in a strong blue, the others in colours that stay apart in grey.
var palette = []color.RGBA{
	{0x1f, 0x5f, 0xbf, 0xff},
	{0xe0, 0x7b, 0x1a, 0xff},
	{0x3a, 0x9e, 0x5c, 0xff},
	{0x8c, 0x8c, 0x8c, 0xff},
	{0xa6, 0x3d, 0x9e, 0xff},
}

var (
	ink   = color.RGBA{0x22, 0x22, 0x22, 0xff}
	faint = color.RGBA{0x77, 0x77, 0x77, 0xff}
	grid  = color.RGBA{0xe4, 0xe4, 0xe4, 0xff}
)

type faces struct{ title, text, small font.Face }

func loadFaces() (faces, error) {
	reg, err := opentype.Parse(goregular.TTF)
	if err != nil {
		return faces{}, err
	}
	bold, err := opentype.Parse(gobold.TTF)
	if err != nil {
		return faces{}, err
	}
	face := func(f *opentype.Font, size float64) (font.Face, error) {
		return opentype.NewFace(f, &opentype.FaceOptions{Size: size, DPI: 72, Hinting: font.HintingFull})
	}
	var fs faces
	if fs.title, err = face(bold, 20); err != nil {
		return fs, err
	}
	if fs.text, err = face(reg, 14); err != nil {
		return fs, err
	}
	fs.small, err = face(reg, 11)
	return fs, err
}

// Draw renders s.
func Draw(s Spec) (*image.RGBA, error) {
	if len(s.Panels) == 0 {
		return nil, fmt.Errorf("no panels")
	}
	fs, err := loadFaces()
	if err != nil {
		return nil, err
	}
	// Every panel is as wide as the widest needs: equal panels read as a
	// pair.
	panelW := minPanelW
	for _, p := range s.Panels {
		panelW = max(panelW, axisW+16+len(p.Groups)*(len(s.Series)*barSlot+groupGap))
	}
	cols := s.Columns
	if cols <= 0 || cols > len(s.Panels) {
		cols = len(s.Panels)
	}
	rows := (len(s.Panels) + cols - 1) / cols
	w := margin*2 + panelW*cols
	h := headerH + panelH*rows + margin
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)

	text(img, fs.title, ink, margin, 28, s.Title)
	text(img, fs.small, faint, margin, 48, s.Note)
	x := margin
	for i, name := range s.Series {
		rect(img, x, 62, x+14, 76, palette[i%len(palette)])
		x += 20
		text(img, fs.text, ink, x, 75, name)
		x += width(fs.text, name) + 22
	}
	for i, p := range s.Panels {
		x0, y0 := margin+(i%cols)*panelW, headerH+(i/cols)*panelH
		drawPanel(img, fs, image.Rect(x0, y0, x0+panelW, y0+panelH), p, len(s.Series))
	}
	return img, nil
}

func drawPanel(img *image.RGBA, fs faces, r image.Rectangle, p Panel, nseries int) {
	text(img, fs.text, ink, r.Min.X+axisW, r.Min.Y+16, p.Title)
	plot := image.Rect(r.Min.X+axisW, r.Min.Y+40, r.Max.X-16, r.Max.Y-labelH)

	top := 0.0
	for _, g := range p.Values {
		for _, v := range g {
			if v != nil && *v > top {
				top = *v
			}
		}
	}
	step := niceStep(top / 5)
	top = step * math.Max(1, math.Ceil(top*1.08/step)) // headroom for the value labels
	y := func(v float64) int { return plot.Max.Y - int(math.Round(v/top*float64(plot.Dy()))) }
	for t := 0.0; t <= top*1.0001; t += step {
		rect(img, plot.Min.X, y(t), plot.Max.X, y(t)+1, grid)
		l := compact(t)
		text(img, fs.small, faint, plot.Min.X-8-width(fs.small, l), y(t)+4, l)
	}
	rect(img, plot.Min.X, plot.Max.Y, plot.Max.X, plot.Max.Y+1, ink)

	ng := max(len(p.Groups), 1)
	groupW := plot.Dx() / ng
	barW := min(maxBarW, max(4, (groupW-groupGap)/max(nseries, 1)))
	for gi, name := range p.Groups {
		gx := plot.Min.X + gi*groupW + (groupW-barW*nseries)/2
		for si := 0; si < nseries; si++ {
			bx := gx + si*barW
			if gi >= len(p.Values) || si >= len(p.Values[gi]) || p.Values[gi][si] == nil {
				l := "n/a"
				text(img, fs.small, faint, bx+(barW-width(fs.small, l))/2, plot.Max.Y-4, l)
				continue
			}
			v := *p.Values[gi][si]
			rect(img, bx+1, y(v), bx+barW-1, plot.Max.Y, palette[si%len(palette)])
			l := compact(v)
			text(img, fs.small, ink, bx+(barW-width(fs.small, l))/2, y(v)-4, l)
		}
		text(img, fs.text, ink, plot.Min.X+gi*groupW+(groupW-width(fs.text, name))/2, plot.Max.Y+22, name)
	}
}

// niceStep rounds x up to 1, 2 or 5 times a power of ten.
func niceStep(x float64) float64 {
	if x <= 0 || math.IsNaN(x) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(x)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= x {
			return m * p
		}
	}
	return 10 * p
}

// compact prints a value in at most about five characters: 0.35, 4.2,
// 120, 12.5k, 3.1M.
func compact(v float64) string {
	a := math.Abs(v)
	switch {
	case a >= 1e6:
		return trim(strconv.FormatFloat(v/1e6, 'f', 2, 64)) + "M"
	case a >= 1e4:
		return trim(strconv.FormatFloat(v/1e3, 'f', 1, 64)) + "k"
	case a >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 10:
		return trim(strconv.FormatFloat(v, 'f', 1, 64))
	case a == 0:
		return "0"
	}
	return trim(strconv.FormatFloat(v, 'f', 2, 64))
}

// trim drops trailing zeros after a decimal point, and the point.
func trim(s string) string {
	for len(s) > 1 && s[len(s)-1] == '0' && containsDot(s) {
		s = s[:len(s)-1]
	}
	if s[len(s)-1] == '.' {
		s = s[:len(s)-1]
	}
	return s
}

func containsDot(s string) bool {
	for i := range len(s) {
		if s[i] == '.' {
			return true
		}
	}
	return false
}

func rect(img *image.RGBA, x0, y0, x1, y1 int, c color.Color) {
	draw.Draw(img, image.Rect(x0, y0, x1, y1), image.NewUniform(c), image.Point{}, draw.Src)
}

func text(img *image.RGBA, f font.Face, c color.Color, x, y int, s string) {
	d := font.Drawer{Dst: img, Src: image.NewUniform(c), Face: f, Dot: fixed.P(x, y)}
	d.DrawString(s)
}

func width(f font.Face, s string) int {
	return font.MeasureString(f, s).Ceil()
}
