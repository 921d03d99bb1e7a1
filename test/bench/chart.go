package bench

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"math"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// Chart geometry, in pixels.
const (
	chartW     = 1200
	panelH     = 330
	marginL    = 80
	marginR    = 20
	legendH    = 40 // one row of legend and the space under it
	legendRowH = 24
	axisH      = 36 // group labels under a panel
	barGap     = 4
	groupGap   = 40
)

var (
	white = color.RGBA{255, 255, 255, 255}
	black = color.RGBA{0, 0, 0, 255}
	grid  = color.RGBA{225, 225, 225, 255}
	// One color per proxy kind, in Proxies order (direct, haproxy, mosn,
	// metaproxy and its features, metaproxy.so and its features): a
	// host's feature rows in shades of its hue, blue for the standalone
	// proxy, green for the plugin.
	barColors = []color.RGBA{{120, 120, 120, 255}, {230, 140, 40, 255}, {150, 80, 170, 255},
		{40, 110, 200, 255}, {20, 55, 130, 255}, {120, 170, 235, 255}, {0, 150, 175, 255},
		{90, 90, 210, 255}, {175, 205, 240, 255}, {10, 30, 80, 255},
		{60, 170, 90, 255}, {25, 100, 50, 255}, {140, 210, 150, 255}, {125, 165, 40, 255},
		{30, 130, 110, 255}, {195, 228, 165, 255}, {15, 60, 30, 255}}
)

// panel is one bar chart of the figure.
type panel struct {
	title string
	value func(Result) float64
	unit  func(float64) string
}

// Chart draws calls/s and p99 latency of every case of plan that ran (its
// median run), as bars grouped by protocol and worker count, and writes
// the PNG to w.
//
// With scale benchmark results it adds a panel of how cost grows with
// routes, endpoints and connections (see drawGrowth).
func Chart(w io.Writer, rs Results, plan Plan, scale []Bench) error {
	panels := []panel{
		{"calls/s (higher is better)", func(r Result) float64 { return r.Result.RPS }, func(v float64) string { return fmt.Sprintf("%.0f", v) }},
		{"p99 latency, ms (lower is better)", func(r Result) float64 { return float64(r.Result.P99us) / 1000 }, func(v float64) string { return fmt.Sprintf("%.1f", v) }},
	}
	growth := growthSeries(scale)
	n := len(panels)
	if len(growth) > 0 {
		n++
	}
	top := legendHeight(plan.Proxies)
	img := image.NewRGBA(image.Rect(0, 0, chartW, top+n*(panelH+axisH)))
	draw.Draw(img, img.Bounds(), image.NewUniform(white), image.Point{}, draw.Src)
	legend(img, plan.Proxies)
	area := func(i int) image.Rectangle {
		return image.Rect(marginL, top+i*(panelH+axisH)+20, chartW-marginR, top+i*(panelH+axisH)+panelH)
	}
	for i, p := range panels {
		drawPanel(img, area(i), p, rs, plan)
	}
	if len(growth) > 0 {
		drawGrowth(img, area(len(panels)), growth)
	}
	return png.Encode(w, img)
}

// legend draws a swatch and the name of every proxy kind where
// legendLayout places them.
func legend(img *image.RGBA, proxies []string) {
	at, _ := legendLayout(proxies)
	for i, p := range proxies {
		x, y := at[i].X, at[i].Y
		fill(img, image.Rect(x, y+14, x+14, y+28), kindColor(p))
		text(img, x+20, y+26, p, black)
	}
}

// legendHeight is the height legend takes for proxies.
func legendHeight(proxies []string) int {
	_, h := legendLayout(proxies)
	return h
}

// legendLayout places the legend's entries left to right, in as many rows
// of legendRowH as the chart's width needs, and returns each entry's top
// left corner and the legend's height.
func legendLayout(proxies []string) (at []image.Point, height int) {
	x, y := marginL, 0
	for _, p := range proxies {
		w := 40 + 7*len(p)
		if x+w > chartW-marginR && x > marginL {
			x, y = marginL, y+legendRowH
		}
		at = append(at, image.Pt(x, y))
		x += w
	}
	return at, y + legendH
}

func kindColor(kind string) color.RGBA {
	for i, k := range Proxies {
		if k == kind {
			return barColors[i%len(barColors)]
		}
	}
	return black
}

// drawPanel draws one panel's grid, bars, value labels and group labels in
// area (the plotting rectangle).
func drawPanel(img *image.RGBA, area image.Rectangle, p panel, rs Results, plan Plan) {
	type group struct {
		label string
		cases []Case
	}
	var groups []group
	top := 0.0
	for _, proto := range plan.Protocols {
		for _, w := range plan.Workers {
			g := group{label: fmt.Sprintf("%s, %d workers", proto, w)}
			for _, k := range plan.Proxies {
				c := Case{proto, w, k}
				g.cases = append(g.cases, c)
				if r, ok := rs.Median(c); ok {
					top = math.Max(top, p.value(r))
				}
			}
			groups = append(groups, g)
		}
	}
	text(img, area.Min.X, area.Min.Y-6, p.title, black)
	step, steps := axis(top)
	top = step * float64(steps)
	y := func(v float64) int { return area.Max.Y - int(v/top*float64(area.Dy())) }
	for i := 0; i <= steps; i++ {
		v := step * float64(i)
		fill(img, image.Rect(area.Min.X, y(v), area.Max.X, y(v)+1), grid)
		label := p.unit(v)
		text(img, area.Min.X-8-7*len(label), y(v)+4, label, black)
	}
	if len(groups) == 0 {
		return
	}
	groupW := (area.Dx() - groupGap*(len(groups)-1)) / len(groups)
	for gi, g := range groups {
		gx := area.Min.X + gi*(groupW+groupGap)
		barW := (groupW - barGap*(len(g.cases)-1)) / len(g.cases)
		for bi, c := range g.cases {
			bx := gx + bi*(barW+barGap)
			r, ok := rs.Median(c)
			if !ok {
				text(img, bx+barW/2-10, area.Max.Y-4, "n/a", black)
				continue
			}
			v := p.value(r)
			fill(img, image.Rect(bx, y(v), bx+barW, area.Max.Y), kindColor(c.Proxy))
			label := p.unit(v)
			text(img, bx+(barW-7*len(label))/2, y(v)-3, label, black)
		}
		text(img, gx+(groupW-7*len(g.label))/2, area.Max.Y+18, g.label, black)
	}
	fill(img, image.Rect(area.Min.X, area.Max.Y, area.Max.X, area.Max.Y+1), black)
}

// axis returns the grid step of a value axis that reaches v: 1, 2, 2.5 or
// 5 times a power of ten, about a fifth of v, and the number of steps.
func axis(v float64) (step float64, n int) {
	if v <= 0 {
		return 1, 1
	}
	raw := v / 5
	e := math.Pow(10, math.Floor(math.Log10(raw)))
	step = 10 * e
	for _, m := range []float64{1, 2, 2.5, 5} {
		if m*e >= raw {
			step = m * e
			break
		}
	}
	return step, int(math.Ceil(v / step))
}

func fill(img *image.RGBA, r image.Rectangle, c color.Color) {
	draw.Draw(img, r, image.NewUniform(c), image.Point{}, draw.Src)
}

// text draws s with its baseline at y.
func text(img *image.RGBA, x, y int, s string, c color.Color) {
	d := font.Drawer{Dst: img, Src: image.NewUniform(c), Face: basicfont.Face7x13, Dot: fixed.P(x, y)}
	d.DrawString(s)
}

// sizeColors tell the sizes of a growth group apart, smallest first.
var sizeColors = []color.RGBA{{170, 200, 235, 255}, {70, 130, 200, 255}, {20, 55, 130, 255}}

// drawGrowth draws a group of bars per series: its value at each size over
// its value at the smallest size, on a log scale, so a cost that stays flat
// is a row of bars of height 1 and one that grows with the size climbs.
func drawGrowth(img *image.RGBA, area image.Rectangle, ss []series) {
	text(img, area.Min.X, area.Min.Y-6, "how cost grows: each size over the smallest (10 / 1,000 / 10,000 routes or endpoints; 1 / 100 / 10,000 connections), log scale", black)
	top := 10.0
	for _, s := range ss {
		for _, v := range s.values {
			for s.values[0] > 0 && v/s.values[0] > top {
				top *= 10
			}
		}
	}
	const bottom = 0.5
	y := func(v float64) int {
		v = math.Max(v, bottom)
		return area.Max.Y - int(math.Log10(v/bottom)/math.Log10(top/bottom)*float64(area.Dy()))
	}
	for v := 1.0; v <= top; v *= 10 {
		fill(img, image.Rect(area.Min.X, y(v), area.Max.X, y(v)+1), grid)
		label := fmt.Sprintf("%gx", v) // the font has no ×
		text(img, area.Min.X-8-7*len(label), y(v)+4, label, black)
	}
	gap := 12
	groupW := (area.Dx() - gap*(len(ss)-1)) / len(ss)
	for gi, s := range ss {
		gx := area.Min.X + gi*(groupW+gap)
		barW := (groupW - 2*(len(s.values)-1)) / max(1, len(s.values))
		for bi, v := range s.values {
			if s.values[0] <= 0 {
				break
			}
			g := v / s.values[0]
			bx := gx + bi*(barW+2)
			fill(img, image.Rect(bx, y(g), bx+barW, area.Max.Y), sizeColors[bi%len(sizeColors)])
			if bi == len(s.values)-1 {
				label := fmt.Sprintf("%.1f", g)
				text(img, bx+(barW-7*len(label))/2, y(g)-3, label, black)
			}
		}
		text(img, gx+(groupW-7*len(s.label))/2, area.Max.Y+18, s.label, black)
	}
	fill(img, image.Rect(area.Min.X, area.Max.Y, area.Max.X, area.Max.Y+1), black)
}
