package main

import (
	"bytes"
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// fixedResults is a small result set: W1 with three systems under both
// guarantees, W2 with two (restore measured), latency for W1 exactly-once.
func fixedResults() resultSet {
	return resultSet{
		Date: time.Date(2026, 12, 1, 7, 56, 0, 0, time.UTC), Records: 200000, Rounds: 3,
		Machine:   "2 CPUs (nproc), memory 24684084 kB, go1.26.8 linux/amd64",
		Workloads: []string{"W1", "W2"},
		Systems:   []string{sysStreamwork, sysKS, sysRaw},
		Runs: []summary{
			{Workload: "W1", System: sysStreamwork, Runs: 3, Rate: 121287},
			{Workload: "W1", System: sysKS, Runs: 3, Rate: 7924},
			{Workload: "W1", System: sysRaw, Runs: 3, Rate: 108232},
			{Workload: "W1", System: sysStreamwork, EOS: true, Runs: 3, Rate: 12078},
			{Workload: "W1", System: sysKS, EOS: true, Runs: 3, Rate: 8202},
			{Workload: "W1", System: sysRaw, EOS: true, Runs: 3, Rate: 77089},
			{Workload: "W2", System: sysStreamwork, EOS: true, Runs: 3, Rate: 69807, RestoreRate: 320981, Restored: 99729},
			{Workload: "W2", System: sysKS, EOS: true, Runs: 3, Rate: 12698, RestoreRate: 59678, Restored: 78350},
		},
		Latency: []latencySummary{
			{Workload: "W1", System: sysStreamwork, EOS: true, Rate: 1000, P50: 61, P99: 112.3, Max: 142.7, Records: 6000},
			{Workload: "W1", System: sysKS, EOS: true, Rate: 1000, P50: 86.6, P99: 716.2, Max: 836, Records: 6000},
		},
	}
}

// count is the number of pixels of colour c in r (scaled coordinates).
func count(img image.Image, r image.Rectangle, c color.RGBA) int {
	n := 0
	r = r.Intersect(img.Bounds())
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			if color.RGBAModel.Convert(img.At(x, y)) == c {
				n++
			}
		}
	}
	return n
}

// TestChart renders the fixed result set: its size follows from the
// layout (one line of machine, three panels; the throughput panel the
// widest), the title, machine and legend lines hold text, each legend
// swatch its system's colour, each panel's title line text, and the
// margins nothing.
func TestChart(t *testing.T) {
	rs := fixedResults()
	img := chart(rs)

	// Throughput: W1 ALOS, W1 EOS (3 bars each), W2 EOS (2 bars).
	plotW := 2*(3*(barW+barGap)-barGap+groupGap) + (2*(barW+barGap) - barGap + groupGap)
	title := "Side-by-side benchmark, 2026-12-01 07:56 UTC, 200,000 records, 3 rounds (medians)"
	lat := "p99 latency, ms from produce to first read-committed output at 1000 rec/s (lower is better)"
	legendW := len("ALOS: at-least-once, EOS: exactly-once") * 7
	for _, name := range []string{"Streamwork", "Kafka Streams", "raw franz-go loop"} {
		legendW += swatch + 6 + len(name)*7 + 20
	}
	w := max(yAxisW+plotW, len(title)*7+1, len(lat)*7+1, legendW) + 2*chartMargin
	h := chartMargin + 2*lineH + 6 + lineH + 8 + 3*(3*lineH+plotH+4+12) - 12 + chartMargin
	if got, want := img.Bounds().Size(), image.Pt(w*chartScale, h*chartScale); got != want {
		t.Fatalf("size %v, want %v", got, want)
	}
	row := func(y0 int) image.Rectangle { // one line of text, scaled
		return image.Rect(chartMargin*chartScale, y0*chartScale, (w-chartMargin)*chartScale, (y0+lineH)*chartScale)
	}
	y := chartMargin
	for _, what := range []string{"title", "machine"} {
		if n := count(img, row(y), textColor); n < 100 {
			t.Errorf("%s line: %d text pixels", what, n)
		}
		y += lineH
	}
	y += 6
	legend := row(y)
	if n := count(img, legend, textColor); n < 300 {
		t.Errorf("legend: %d text pixels", n)
	}
	for _, sys := range rs.Systems {
		if n := count(img, legend, systemColor[sys]); n != swatch*swatch*chartScale*chartScale {
			t.Errorf("legend: %d pixels of %s's colour, want a %d-pixel swatch", n, sys, swatch*swatch*chartScale*chartScale)
		}
	}
	y += lineH + 8
	for i := range 3 {
		if n := count(img, row(y), textColor); n < 300 {
			t.Errorf("panel %d title: %d text pixels", i, n)
		}
		y += 3*lineH + plotH + 4 + 12
	}
	white := color.RGBA{0xff, 0xff, 0xff, 0xff}
	b := img.Bounds()
	for _, m := range []image.Rectangle{
		image.Rect(0, 0, b.Dx(), chartMargin*chartScale),
		image.Rect(0, 0, chartMargin*chartScale/2, b.Dy()),
		image.Rect(0, b.Dy()-chartMargin*chartScale, b.Dx(), b.Dy()),
	} {
		if n := count(img, m, white); n != m.Dx()*m.Dy() {
			t.Errorf("margin %v: %d of %d pixels white", m, n, m.Dx()*m.Dy())
		}
	}
	if !bytes.Equal(img.Pix, chart(rs).Pix) {
		t.Error("two renderings of the same result set differ")
	}
}

// TestChartPanels checks the bars, their labels and the scale of the fixed
// result set.
func TestChartPanels(t *testing.T) {
	ps := fixedResults().panels()
	var got []string
	for _, p := range ps {
		var gs []string
		for _, g := range p.groups {
			var bs []string
			for _, b := range g.bars {
				bs = append(bs, b.system+"="+p.format(b.v))
			}
			gs = append(gs, g.label+": "+strings.Join(bs, " "))
		}
		got = append(got, strings.Join(gs, "; "))
	}
	want := []string{
		"W1 ALOS: streamwork=121k kafka-streams=7.9k raw=108k; W1 EOS: streamwork=12k kafka-streams=8.2k raw=77k; W2 EOS: streamwork=70k kafka-streams=13k",
		"W2 EOS: streamwork=321k kafka-streams=60k",
		"W1 EOS: streamwork=112ms kafka-streams=716ms",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("panels\n%q\nwant\n%q", got, want)
	}
	for _, c := range []struct {
		v    float64
		f    func(float64) string
		want string
	}{
		{950, fmtRate, "950"}, {9949, fmtRate, "9.9k"}, {999_499, fmtRate, "999k"}, {1_210_000, fmtRate, "1.21M"},
		{9.5, fmtMs, "9.5ms"}, {716.2, fmtMs, "716ms"}, {1653.6, fmtMs, "1.65s"}, {11718.2, fmtMs, "11.7s"},
		{0, tickRate, "0"}, {2500, tickRate, "2.5k"}, {150000, tickRate, "150k"}, {0, tickMs, "0"}, {500, tickMs, "500ms"}, {15000, tickMs, "15s"},
	} {
		if got := c.f(c.v); got != c.want || len(got) > 5 {
			t.Errorf("format(%v) = %q, want %q", c.v, got, c.want)
		}
	}
	for _, c := range [][2]float64{{121287, 50000}, {351014, 100000}, {11718.2, 5000}, {716.2, 200}, {1, 0.5}} {
		if got := niceStep(c[0]); math.Abs(got-c[1]) > 1e-9 {
			t.Errorf("niceStep(%v) = %v, want %v", c[0], got, c[1])
		}
	}
}

// TestChartFrom writes the fixed result set as JSON, re-renders it with
// -chart-from's function and checks the JSON reads back the same and the
// PNG holds the same pixels as a direct rendering.
func TestChartFrom(t *testing.T) {
	rs := fixedResults()
	path := filepath.Join(t.TempDir(), "2026-12-01-0756-200000.json")
	if err := writeResultSet(path, rs); err != nil {
		t.Fatal(err)
	}
	back, err := readResultSet(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, rs) {
		t.Fatalf("read back\n%+v\nwant\n%+v", back, rs)
	}
	out, err := chartFrom(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.TrimSuffix(path, ".json") + ".png"; out != want {
		t.Fatalf("wrote %s, want %s", out, want)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	want := chart(rs)
	if img.Bounds() != want.Bounds() {
		t.Fatalf("PNG %v, want %v", img.Bounds(), want.Bounds())
	}
	for y := range want.Bounds().Dy() {
		for x := range want.Bounds().Dx() {
			if c := color.RGBAModel.Convert(img.At(x, y)); c != want.RGBAAt(x, y) {
				t.Fatalf("pixel (%d, %d) %v, want %v", x, y, c, want.RGBAAt(x, y))
			}
		}
	}
	if _, err := chartFrom(filepath.Join(t.TempDir(), "missing.json")); err == nil {
		t.Error("chartFrom of a missing file: no error")
	}
}

// TestCommittedResults reads every committed markdown report back and
// checks its JSON beside it holds the same figures, to the tables'
// precision.
func TestCommittedResults(t *testing.T) {
	mds, err := filepath.Glob("results/*.md")
	if err != nil || len(mds) == 0 {
		t.Fatalf("no committed results: %v", err)
	}
	for _, md := range mds {
		t.Run(filepath.Base(md), func(t *testing.T) {
			b, err := os.ReadFile(md)
			if err != nil {
				t.Fatal(err)
			}
			got, err := parseMarkdown(b)
			if err != nil {
				t.Fatal(err)
			}
			js, err := readResultSet(strings.TrimSuffix(md, ".md") + ".json")
			if err != nil {
				t.Fatal(err)
			}
			if !got.Date.Equal(js.Date) || got.Records != js.Records || got.Rounds != js.Rounds || got.Machine != js.Machine ||
				!reflect.DeepEqual(got.Workloads, js.Workloads) || !reflect.DeepEqual(got.Systems, js.Systems) {
				t.Fatalf("markdown %v %d %d %q %v %v, JSON %v %d %d %q %v %v", got.Date, got.Records, got.Rounds, got.Machine, got.Workloads, got.Systems,
					js.Date, js.Records, js.Rounds, js.Machine, js.Workloads, js.Systems)
			}
			if len(got.Runs) != len(js.Runs) || len(got.Latency) != len(js.Latency) {
				t.Fatalf("markdown %d runs, %d latencies; JSON %d, %d", len(got.Runs), len(got.Latency), len(js.Runs), len(js.Latency))
			}
			near := func(what string, a, b, tol float64) {
				if math.Abs(a-b) > tol {
					t.Errorf("%s: markdown %v, JSON %v", what, a, b)
				}
			}
			for i, m := range got.Runs {
				j := js.Runs[i]
				if m.Workload != j.Workload || m.System != j.System || m.EOS != j.EOS {
					t.Fatalf("run %d: markdown %s %s %v, JSON %s %s %v", i, m.Workload, m.System, m.EOS, j.Workload, j.System, j.EOS)
				}
				for _, f := range []struct {
					name     string
					a, b, to float64
				}{
					{"rec/s", m.Rate, j.Rate, 0.5}, {"steady", m.Steady, j.Steady, 0.5}, {"CPU", m.CPUPerM, j.CPUPerM, 0.005},
					{"RSS", m.RSSMiB, j.RSSMiB, 0.5}, {"first", m.First, j.First, 0.005}, {"outputs", m.Outputs, j.Outputs, 0.5},
					{"changelog", m.Changelog, j.Changelog, 0.5}, {"restored", m.Restored, j.Restored, 0.5}, {"restore rec/s", m.RestoreRate, j.RestoreRate, 0.5},
				} {
					near(m.Workload+" "+guaranteeName(m.EOS)+" "+m.System+" "+f.name, f.a, f.b, f.to)
				}
			}
			for i, m := range got.Latency {
				j := js.Latency[i]
				if m.Workload != j.Workload || m.System != j.System || m.EOS != j.EOS || m.Rate != j.Rate || m.Records != j.Records {
					t.Fatalf("latency %d: markdown %+v, JSON %+v", i, m, j)
				}
				near("p50", m.P50, j.P50, 0.05)
				near("p99", m.P99, j.P99, 0.05)
				near("max", m.Max, j.Max, 0.05)
			}
		})
	}
}

// TestParseMarkdown checks figures of the 200,000-record report read back
// from its tables, one of each table.
func TestParseMarkdown(t *testing.T) {
	b, err := os.ReadFile("results/2026-12-01-0756-200000.md")
	if err != nil {
		t.Fatal(err)
	}
	rs, err := parseMarkdown(b)
	if err != nil {
		t.Fatal(err)
	}
	if rs.Date != time.Date(2026, 12, 1, 7, 56, 0, 0, time.UTC) || rs.Records != 200000 || rs.Rounds != 1 ||
		strings.Join(rs.Workloads, ",") != "W1,W2,W3,W3f,W4" || strings.Join(rs.Systems, ",") != "streamwork,kafka-streams,raw" ||
		!strings.HasPrefix(rs.Machine, "2 CPUs (nproc), memory 24684084 kB") || len(rs.Runs) != 20 || len(rs.Latency) != 15 {
		t.Fatalf("header %v %d %d %v %v %q, %d runs, %d latencies", rs.Date, rs.Records, rs.Rounds, rs.Workloads, rs.Systems, rs.Machine, len(rs.Runs), len(rs.Latency))
	}
	want := summary{Workload: "W3", System: sysStreamwork, Runs: 1, Rate: 6626, Steady: 107707, CPUPerM: 10.09, RSSMiB: 147, First: 0.68,
		Outputs: 200000, Changelog: 200000, Restored: 200000, RestoreRate: 351014}
	if rs.Runs[10] != want {
		t.Errorf("run 10 %+v, want %+v", rs.Runs[10], want)
	}
	wantLat := latencySummary{Workload: "W1", System: sysKS, EOS: true, Rate: 1000, P50: 86.6, P99: 716.2, Max: 836, Records: 6000}
	if rs.Latency[4] != wantLat {
		t.Errorf("latency 4 %+v, want %+v", rs.Latency[4], wantLat)
	}
	for _, bad := range []string{
		"",
		"# Side-by-side benchmark, yesterday\n",
		"# Side-by-side benchmark, 2026-12-01 07:56 UTC\n\nInput: 10 records, medians of 1 interleaved rounds.\n\n" +
			"| workload | guarantee | system | rec/s | steady rec/s |\n|---|---|---|---:|---:|\n| W1 | maybe-once | raw | 1 | 2 |\n",
		"# Side-by-side benchmark, 2026-12-01 07:56 UTC\n\nInput: 10 records, medians of 1 interleaved rounds.\n\n" +
			"| workload | guarantee | system | rec/s | steady rec/s |\n|---|---|---|---:|---:|\n| W1 | exactly-once | raw | fast | 2 |\n",
	} {
		if rs, err := parseMarkdown([]byte(bad)); err == nil {
			t.Errorf("parseMarkdown(%q) = %+v, want an error", bad, rs)
		}
	}
}

// FuzzParseMarkdown: any input parses or fails without panicking, and what
// parses survives JSON and renders.
func FuzzParseMarkdown(f *testing.F) {
	mds, _ := filepath.Glob("results/*.md")
	for _, md := range mds {
		b, err := os.ReadFile(md)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("# Side-by-side benchmark, 2026-12-01 07:56 UTC\n\nInput: 10 records, medians of 1 interleaved rounds.\n\n- W1: x\n\n" +
		"| workload | guarantee | system | rec/s | steady rec/s | CPU-s per M rec | peak RSS MiB | first output s | outputs | changelog |\n" +
		"|---|---|---|---:|---:|---:|---:|---:|---:|---:|\n| W1 | exactly-once | raw | 1e300 | 2 | 3 | 4 | 5 | 6 | 7 |\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		rs, err := parseMarkdown(b)
		if err != nil {
			return
		}
		js, err := json.Marshal(rs)
		if err != nil {
			return // NaN or ±Inf figures have no JSON
		}
		var back resultSet
		if err := json.Unmarshal(js, &back); err != nil {
			t.Fatalf("unmarshal %s: %v", js, err)
		}
		if len(b) < 8192 {
			chart(back)
		}
	})
}
