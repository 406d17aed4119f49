package main

import (
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"strconv"
	"strings"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// systemColor colours each system's bars and legend swatch; colorOf
// gives any other system grey.
var systemColor = map[string]color.RGBA{
	sysStreamwork: {0x1f, 0x77, 0xb4, 0xff},
	sysKS:         {0xd6, 0x27, 0x28, 0xff},
	sysRaw:        {0x2c, 0xa0, 0x2c, 0xff},
}

func colorOf(sys string) color.RGBA {
	if c, ok := systemColor[sys]; ok {
		return c
	}
	return color.RGBA{0x7f, 0x7f, 0x7f, 0xff}
}

// systemLabel names each system in the legend.
var systemLabel = map[string]string{
	sysStreamwork: "Streamwork",
	sysKS:         "Kafka Streams",
	sysRaw:        "raw franz-go loop",
}

var (
	textColor = color.RGBA{0x22, 0x22, 0x22, 0xff}
	gridColor = color.RGBA{0xdd, 0xdd, 0xdd, 0xff}
	axisColor = color.RGBA{0x00, 0x00, 0x00, 0xff}
	white     = color.RGBA{0xff, 0xff, 0xff, 0xff}
)

// The chart's layout, in pixels before it is scaled up by chartScale
// (nearest neighbour, so the 7x13 font stays sharp).
const (
	chartScale  = 2
	chartMargin = 16
	lineH       = 16  // a line of text: the 13-pixel font and 3 pixels of leading
	plotH       = 180 // a panel's bars at full scale
	yAxisW      = 48  // the scale labels left of a panel
	barW        = 34  // wide enough for a 5-character value above the bar
	barGap      = 6
	groupGap    = 16
	minGroupW   = 56 // wide enough for "W3f EOS" under a one-bar group
	swatch      = 12
	minChartW   = 640
)

var face = basicfont.Face7x13

// chartPanel is one panel: a title and its bars grouped by workload and
// guarantee.
type chartPanel struct {
	title  string
	format func(float64) string // a bar's value
	tick   func(float64) string // a scale line's value
	groups []chartGroup
}

type chartGroup struct {
	label string // "W2 EOS"
	bars  []chartBar
}

type chartBar struct {
	system string
	v      float64
}

func (g chartGroup) width() int { return max(len(g.bars)*(barW+barGap)-barGap, minGroupW) }

func (p chartPanel) width() int {
	w := 0
	for _, g := range p.groups {
		w += g.width() + groupGap
	}
	return w
}

// panels lays rs out as up to three panels, top to bottom: throughput
// (input records/s), restore rate (changelog records/s) and p99 latency
// (ms). A panel with no values is left out.
func (rs resultSet) panels() []chartPanel {
	build := func(title string, format, tick func(float64) string, val func(w, sys string, eos bool) (float64, bool)) []chartPanel {
		p := chartPanel{title: title, format: format, tick: tick}
		for _, w := range rs.Workloads {
			for _, eos := range []bool{false, true} {
				g := chartGroup{label: w + " " + map[bool]string{false: "ALOS", true: "EOS"}[eos]}
				for _, sys := range rs.Systems {
					if v, ok := val(w, sys, eos); ok {
						g.bars = append(g.bars, chartBar{sys, v})
					}
				}
				if len(g.bars) > 0 {
					p.groups = append(p.groups, g)
				}
			}
		}
		if len(p.groups) == 0 {
			return nil
		}
		return []chartPanel{p}
	}
	run := func(w, sys string, eos bool) *summary {
		for i := range rs.Runs {
			if s := &rs.Runs[i]; s.Workload == w && s.System == sys && s.EOS == eos {
				return s
			}
		}
		return nil
	}
	var ps []chartPanel
	ps = append(ps, build("Throughput, input rec/s from process start to verified output (higher is better)", fmtRate, tickRate,
		func(w, sys string, eos bool) (float64, bool) {
			s := run(w, sys, eos)
			return s.rate(), s != nil
		})...)
	ps = append(ps, build("Restore rate, changelog rec/s into an empty state directory (higher is better)", fmtRate, tickRate,
		func(w, sys string, eos bool) (float64, bool) {
			s := run(w, sys, eos)
			if s == nil || s.RestoreRate == 0 {
				return 0, false
			}
			return s.RestoreRate, true
		})...)
	latTitle := "p99 latency, ms from produce to first read-committed output (lower is better)"
	if len(rs.Latency) > 0 && rs.Latency[0].Rate > 0 {
		latTitle = fmt.Sprintf("p99 latency, ms from produce to first read-committed output at %d rec/s (lower is better)", rs.Latency[0].Rate)
	}
	ps = append(ps, build(latTitle, fmtMs, tickMs,
		func(w, sys string, eos bool) (float64, bool) {
			for _, l := range rs.Latency {
				if l.Workload == w && l.System == sys && l.EOS == eos {
					return l.P99, true
				}
			}
			return 0, false
		})...)
	return ps
}

func (s *summary) rate() float64 {
	if s == nil {
		return 0
	}
	return s.Rate
}

// chart draws rs: a title (date, records, rounds), the machine, a legend
// (a colour swatch and name per system, in rs.Systems order, and the
// guarantees' abbreviations), then the panels top to bottom. Each panel
// has its title with its unit, scale lines at 1, 2 or 5 times a power of
// ten with their values on the left, one group of bars per workload and
// guarantee labelled underneath ("W2 EOS"), one bar per system with its
// value above it ("121k", "716ms"), heights to scale within the panel.
// The same rs always gives the same pixels.
func chart(rs resultSet) *image.RGBA {
	panels := rs.panels()
	title := fmt.Sprintf("Side-by-side benchmark, %s, %s records, %s",
		rs.Date.UTC().Format("2006-01-02 15:04 MST"), thousands(rs.Records), plural(rs.Rounds, "round"))
	if rs.Rounds > 1 {
		title += " (medians)"
	}
	type legendItem struct {
		c    color.RGBA
		text string
	}
	var legend []legendItem
	for _, sys := range rs.Systems {
		name := systemLabel[sys]
		if name == "" {
			name = sys
		}
		legend = append(legend, legendItem{colorOf(sys), name})
	}
	const legendNote = "ALOS: at-least-once, EOS: exactly-once"
	legendW := textW(legendNote)
	for _, it := range legend {
		legendW += swatch + 6 + textW(it.text) + 20
	}

	width := max(minChartW, textW(title)+1, legendW)
	for _, p := range panels {
		width = max(width, yAxisW+p.width(), textW(p.title)+1)
	}
	width += 2 * chartMargin
	machine := wrap("Machine: "+rs.Machine, (width-2*chartMargin)/textW("m"))

	height := chartMargin + (1+len(machine))*lineH + 6 + lineH + 8
	panelH := lineH + lineH + plotH + 4 + lineH + 12 // title, value headroom, bars, labels, gap
	height += len(panels)*panelH + chartMargin - 12

	img := image.NewRGBA(image.Rect(0, 0, width, height))
	fill(img, img.Bounds(), white)
	y := chartMargin
	// A bolder title: the string twice, one pixel apart.
	text(img, chartMargin, y, title, textColor)
	text(img, chartMargin+1, y, title, textColor)
	y += lineH
	for _, l := range machine {
		text(img, chartMargin, y, l, textColor)
		y += lineH
	}
	y += 6
	x := chartMargin
	for _, it := range legend {
		fill(img, image.Rect(x, y+1, x+swatch, y+1+swatch), it.c)
		x += swatch + 6
		text(img, x, y, it.text, textColor)
		x += textW(it.text) + 20
	}
	text(img, x, y, legendNote, textColor)
	y += lineH + 8

	for _, p := range panels {
		text(img, chartMargin, y, p.title, textColor)
		text(img, chartMargin+1, y, p.title, textColor)
		y += lineH + lineH // the title, then room for the tallest bar's value
		drawPanel(img, p, chartMargin, y)
		y += plotH + 4 + lineH + 12
	}
	return upscale(img, chartScale)
}

// drawPanel draws p's scale and bars with the plot's top left at (x0, top).
func drawPanel(img *image.RGBA, p chartPanel, x0, top int) {
	var maxV float64
	for _, g := range p.groups {
		for _, b := range g.bars {
			maxV = max(maxV, b.v)
		}
	}
	step := niceStep(maxV)
	axisMax := step * math.Ceil(maxV/step)
	if axisMax <= 0 {
		axisMax = 1
	}
	scale := float64(plotH) / axisMax
	bottom := top + plotH
	left, right := x0+yAxisW, x0+yAxisW+p.width()
	for i := 0; step > 0; i++ {
		v := float64(i) * step
		if v > axisMax*(1+1e-9) {
			break
		}
		y := bottom - int(math.Round(v*scale))
		if i > 0 {
			fill(img, image.Rect(left, y, right, y+1), gridColor)
		}
		l := p.tick(v)
		text(img, left-6-textW(l), y-6, l, textColor)
	}
	x := left
	for _, g := range p.groups {
		gw := g.width()
		bx := x + (gw-(len(g.bars)*(barW+barGap)-barGap))/2
		for _, b := range g.bars {
			h := int(math.Round(b.v * scale))
			if b.v > 0 {
				h = max(h, 1)
			}
			fill(img, image.Rect(bx, bottom-h, bx+barW, bottom), colorOf(b.system))
			l := p.format(b.v)
			text(img, bx+(barW-textW(l)+1)/2, bottom-h-lineH+1, l, textColor)
			bx += barW + barGap
		}
		text(img, x+(gw-textW(g.label)+1)/2, bottom+4, g.label, textColor)
		x += gw + groupGap
	}
	fill(img, image.Rect(left, bottom, right-groupGap, bottom+1), axisColor)
	fill(img, image.Rect(left-1, top, left, bottom+1), axisColor)
}

// text draws s with the top of its line at y.
func text(img *image.RGBA, x, y int, s string, c color.RGBA) {
	d := font.Drawer{Dst: img, Src: image.NewUniform(c), Face: face,
		Dot: fixed.P(x, y+face.Ascent)}
	d.DrawString(s)
}

func textW(s string) int { return font.MeasureString(face, s).Ceil() }

// wrap breaks s at spaces into lines of at most n characters.
func wrap(s string, n int) []string {
	var lines []string
	line := ""
	for _, w := range strings.Fields(s) {
		if line != "" && len(line)+1+len(w) > n {
			lines = append(lines, line)
			line = ""
		}
		if line != "" {
			line += " "
		}
		line += w
	}
	return append(lines, line)
}

// niceStep is the step of a panel's scale lines: 1, 2 or 5 times a power
// of ten, giving 3 to 6 lines up to maxV.
func niceStep(maxV float64) float64 {
	if maxV <= 0 {
		return 0
	}
	raw := maxV / 4
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5} {
		if m*mag >= raw {
			return m * mag
		}
	}
	return 10 * mag
}

// fmtRate is a compact rate, at most five characters: 950, 7.9k, 121k,
// 1.21M.
func fmtRate(v float64) string {
	switch {
	case v < 999.5:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v < 9950:
		return strconv.FormatFloat(v/1e3, 'f', 1, 64) + "k"
	case v < 999.5e3:
		return strconv.FormatFloat(v/1e3, 'f', 0, 64) + "k"
	default:
		return strconv.FormatFloat(v/1e6, 'f', 2, 64) + "M"
	}
}

// fmtMs is a compact duration in milliseconds, at most five characters:
// 9.5ms, 716ms, 1.65s, 11.7s.
func fmtMs(v float64) string {
	switch {
	case v < 9.95:
		return strconv.FormatFloat(v, 'f', 1, 64) + "ms"
	case v < 999.5:
		return strconv.FormatFloat(v, 'f', 0, 64) + "ms"
	case v < 9995:
		return strconv.FormatFloat(v/1e3, 'f', 2, 64) + "s"
	default:
		return strconv.FormatFloat(v/1e3, 'f', 1, 64) + "s"
	}
}

// tickRate and tickMs label scale lines, which are round: 0, 50k, 2.5k.
func tickRate(v float64) string {
	switch {
	case v >= 1e6:
		return strconv.FormatFloat(v/1e6, 'f', -1, 64) + "M"
	case v >= 1e3:
		return strconv.FormatFloat(v/1e3, 'f', -1, 64) + "k"
	default:
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
}

func tickMs(v float64) string {
	switch {
	case v == 0:
		return "0"
	case v >= 1e3:
		return strconv.FormatFloat(v/1e3, 'f', -1, 64) + "s"
	default:
		return strconv.FormatFloat(v, 'f', -1, 64) + "ms"
	}
}

// thousands writes n with comma separators: 200,000.
func thousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0 && s[i-1] != '-'; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return strconv.Itoa(n) + " " + unit + "s"
}

func fill(img *image.RGBA, r image.Rectangle, c color.RGBA) {
	r = r.Intersect(img.Bounds())
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			img.SetRGBA(x, y, c)
		}
	}
}

// upscale enlarges src k times, each pixel a k×k square.
func upscale(src *image.RGBA, k int) *image.RGBA {
	b := src.Bounds()
	dst := image.NewRGBA(image.Rect(0, 0, b.Dx()*k, b.Dy()*k))
	for y := 0; y < b.Dy()*k; y++ {
		for x := 0; x < b.Dx()*k; x++ {
			dst.SetRGBA(x, y, src.RGBAAt(b.Min.X+x/k, b.Min.Y+y/k))
		}
	}
	return dst
}

// writeChart renders rs into a PNG at path.
func writeChart(path string, rs resultSet) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(f, chart(rs)); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// chartFrom re-renders the chart of the result set at path (<base>.json)
// into <base>.png, running nothing.
func chartFrom(path string) (string, error) {
	rs, err := readResultSet(path)
	if err != nil {
		return "", err
	}
	out := strings.TrimSuffix(path, ".json") + ".png"
	return out, writeChart(out, rs)
}

// jsonFromMarkdown reads the tables of a report's markdown at path
// (<base>.md, written before reports had their JSON) and writes them to
// <base>.json.
func jsonFromMarkdown(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	rs, err := parseMarkdown(b)
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	out := strings.TrimSuffix(path, ".md") + ".json"
	return out, writeResultSet(out, rs)
}
