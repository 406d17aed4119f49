package main

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
)

// summary is the median of one (workload, guarantee, system)'s rounds.
type summary struct {
	workload, system string
	eos              bool
	runs             int
	rate, steady     float64
	cpuPerM          float64 // CPU seconds per million input records
	rssMiB           float64
	first            float64 // seconds
	outputs          float64
	changelog        float64
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func summarize(n int, results []result) []summary {
	type key struct {
		w, sys string
		eos    bool
	}
	var order []key
	by := map[key][]result{}
	for _, r := range results {
		k := key{r.workload, r.system, r.eos}
		if _, ok := by[k]; !ok {
			order = append(order, k)
		}
		by[k] = append(by[k], r)
	}
	var out []summary
	for _, k := range order {
		rs := by[k]
		col := func(f func(r result) float64) float64 {
			var xs []float64
			for _, r := range rs {
				xs = append(xs, f(r))
			}
			return median(xs)
		}
		out = append(out, summary{workload: k.w, system: k.sys, eos: k.eos, runs: len(rs),
			rate:      col(func(r result) float64 { return r.throughput(n) }),
			steady:    col(func(r result) float64 { return r.steady }),
			cpuPerM:   col(func(r result) float64 { return r.cpu.Seconds() / float64(n) * 1e6 }),
			rssMiB:    col(func(r result) float64 { return float64(r.maxRSS) / (1 << 20) }),
			first:     col(func(r result) float64 { return r.firstOutput.Seconds() }),
			outputs:   col(func(r result) float64 { return float64(r.outputs) }),
			changelog: col(func(r result) float64 { return float64(r.changelog) }),
		})
	}
	return out
}

// machine describes where the benchmark ran.
func machine(cfg config) string {
	mem := "unknown"
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) >= 2 && f[0] == "MemTotal:" {
				mem = f[1] + " kB"
			}
		}
	}
	java := "none"
	if out, err := exec.Command("java", "-version").CombinedOutput(); err == nil {
		java = strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
	}
	broker := cfg.brokerVersion
	if broker == "" {
		broker = "given by -brokers"
	}
	return fmt.Sprintf("%d CPUs (nproc), memory %s, %s %s/%s, Java %s, Apache Kafka broker %s on the same machine",
		runtime.NumCPU(), mem, runtime.Version(), runtime.GOOS, runtime.GOARCH, java, broker)
}

// report writes the markdown table and the chart to cfg.outDir.
func report(cfg config, ds dataset, results []result) error {
	sums := summarize(ds.n, results)
	find := func(w, sys string, eos bool) *summary {
		for i := range sums {
			if s := &sums[i]; s.workload == w && s.system == sys && s.eos == eos {
				return s
			}
		}
		return nil
	}
	ratio := func(s *summary, sys string) string {
		o := find(s.workload, sys, s.eos)
		if o == nil || o == s || o.rate == 0 {
			return "—"
		}
		return fmt.Sprintf("%.2f×", s.rate/o.rate)
	}
	now := time.Now().UTC()
	var md bytes.Buffer
	fmt.Fprintf(&md, "# Side-by-side benchmark, %s\n\n", now.Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&md, "Machine: %s.\n\n", machine(cfg))
	fmt.Fprintf(&md, "Input: %d records of about 100 bytes over %d partitions (%d keys, %d categories, event times over %v), "+
		"1 worker / 1 stream thread, default record caches and commit intervals, medians of %d interleaved rounds. "+
		"Rate: input records over the time from process start until a read-committed consumer has the complete, verified output. "+
		"Steady: input records per second between outputs reaching 10 %% and 90 %% of the input's event time. "+
		"CPU and peak RSS from the child process's rusage. Outputs: records read committed; changelog: end offsets of the changelog topics (transaction markers included).\n\n",
		ds.n, partitions, numKeys, numCategories, span, cfg.rounds)
	if cfg.note != "" {
		fmt.Fprintf(&md, "%s\n\n", cfg.note)
	}
	for _, w := range cfg.workloads {
		fmt.Fprintf(&md, "- %s: %s\n", w, workloadDoc[w])
	}
	md.WriteString("\n| workload | guarantee | system | rec/s | steady rec/s | CPU-s per M rec | peak RSS MiB | first output s | outputs | changelog | vs Kafka Streams | vs raw loop |\n")
	md.WriteString("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for i := range sums {
		s := &sums[i]
		fmt.Fprintf(&md, "| %s | %s | %s | %.0f | %.0f | %.2f | %.0f | %.2f | %.0f | %.0f | %s | %s |\n",
			s.workload, guaranteeName(s.eos), s.system, s.rate, s.steady, s.cpuPerM, s.rssMiB, s.first, s.outputs, s.changelog,
			ratio(s, sysKS), ratio(s, sysRaw))
	}
	md.WriteString("\nNot measured yet: end-to-end latency at a fixed input rate, restore rate after the state directory is deleted, and W3 with emit-final.\n")
	if err := os.MkdirAll(cfg.outDir, 0o755); err != nil {
		return err
	}
	base := filepath.Join(cfg.outDir, fmt.Sprintf("%s-%d", now.Format("2006-01-02-1504"), ds.n))
	if err := os.WriteFile(base+".md", md.Bytes(), 0o644); err != nil {
		return err
	}
	f, err := os.Create(base + ".png")
	if err != nil {
		return err
	}
	if err := png.Encode(f, chart(cfg, sums)); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	fmt.Printf("bench: wrote %s.md and %s.png\n", base, base)
	os.Stdout.Write(md.Bytes())
	return nil
}

// systemColor colours each system's bars.
var systemColor = map[string]color.RGBA{
	sysStreamwork: {0x1f, 0x77, 0xb4, 0xff},
	sysKS:         {0xd6, 0x27, 0x28, 0xff},
	sysRaw:        {0x2c, 0xa0, 0x2c, 0xff},
}

// chart draws the throughput bars: one group per workload and guarantee
// (W1 at-least-once, W1 exactly-once, ...), one bar per system, heights to
// scale, with a legend of colour swatches (left to right in the order of
// -systems) and faint lines every 100,000 records/s.
func chart(cfg config, sums []summary) image.Image {
	const barW, gap, groupGap, h, top, bottom, left = 18, 4, 28, 300, 30, 20, 20
	type group struct {
		bars []summary
	}
	var groups []group
	var maxRate float64
	for _, w := range cfg.workloads {
		for _, eos := range []bool{false, true} {
			var g group
			for _, sys := range cfg.systems {
				for _, s := range sums {
					if s.workload == w && s.eos == eos && s.system == sys {
						g.bars = append(g.bars, s)
						maxRate = max(maxRate, s.rate)
					}
				}
			}
			if len(g.bars) > 0 {
				groups = append(groups, g)
			}
		}
	}
	width := left
	for _, g := range groups {
		width += len(g.bars)*(barW+gap) + groupGap
	}
	img := image.NewRGBA(image.Rect(0, 0, max(width, 200), h+top+bottom))
	fill(img, img.Bounds(), color.RGBA{0xff, 0xff, 0xff, 0xff})
	if maxRate <= 0 {
		return img
	}
	scale := float64(h) / maxRate
	for r := 100_000.0; r < maxRate; r += 100_000 {
		y := top + h - int(r*scale)
		fill(img, image.Rect(0, y, img.Bounds().Dx(), y+1), color.RGBA{0xdd, 0xdd, 0xdd, 0xff})
	}
	x := left
	for _, g := range groups {
		for _, s := range g.bars {
			bh := int(s.rate * scale)
			fill(img, image.Rect(x, top+h-bh, x+barW, top+h), systemColor[s.system])
			x += barW + gap
		}
		// Exactly-once groups are underlined in grey.
		if g.bars[0].eos {
			fill(img, image.Rect(x-len(g.bars)*(barW+gap), top+h+4, x-gap, top+h+8), color.RGBA{0x88, 0x88, 0x88, 0xff})
		}
		x += groupGap
	}
	fill(img, image.Rect(0, top+h, img.Bounds().Dx(), top+h+1), color.RGBA{0, 0, 0, 0xff})
	lx := left
	for _, sys := range cfg.systems {
		fill(img, image.Rect(lx, 8, lx+14, 22), systemColor[sys])
		lx += 24
	}
	return img
}

func fill(img *image.RGBA, r image.Rectangle, c color.RGBA) {
	r = r.Intersect(img.Bounds())
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			img.SetRGBA(x, y, c)
		}
	}
}
