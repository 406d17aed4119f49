package main

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
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
	restoreRate      float64 // changelog records restored per second; 0: not measured
	restored         float64
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
			restored:  col(func(r result) float64 { return float64(r.restored) }),
			restoreRate: col(func(r result) float64 {
				if r.restoreTime <= 0 {
					return 0
				}
				return float64(r.restored) / r.restoreTime.Seconds()
			}),
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
func report(cfg config, ds dataset, results []result, lats []latencyResult) error {
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
	if cfg.restore {
		md.WriteString("\nRestore: after each run of a stateful workload the system starts again with the same application id, an empty state directory and no new input; " +
			"restored is the changelog records it applied (Streamwork: Metrics.RestoredRecords; Kafka Streams: a restore listener's batch counts), " +
			"the rate is over the time from the first store starting to restore until every task is restored (Kafka Streams: until it is RUNNING).\n\n")
		md.WriteString("| workload | guarantee | system | restored | restore rec/s | vs Kafka Streams |\n|---|---|---|---:|---:|---:|\n")
		for i := range sums {
			s := &sums[i]
			if s.restoreRate == 0 {
				continue
			}
			vs := "—"
			if o := find(s.workload, sysKS, s.eos); o != nil && o != s && o.restoreRate > 0 {
				vs = fmt.Sprintf("%.2f×", s.restoreRate/o.restoreRate)
			}
			fmt.Fprintf(&md, "| %s | %s | %s | %.0f | %.0f | %s |\n", s.workload, guaranteeName(s.eos), s.system, s.restored, s.restoreRate, vs)
		}
	}
	if len(lats) > 0 {
		fmt.Fprintf(&md, "\nLatency: each system again on a fresh input topic; once its consumer group is stable, a producer writes %d records/s for %v "+
			"(the same records, event times and keys as above, scaled down); the latency of an input record is from just before it is produced "+
			"until a read-committed consumer sees the first output that includes it (W1, W4: the output carrying its id; W2, W3, W3f: "+
			"the first output of its key whose count covers it). Exactly-once everywhere, at-least-once for the stateless W1 and W4 only "+
			"(an at-least-once record cache holds an aggregate's updates for its 30 s commit interval).\n\n", lats[0].rate, cfg.latencyDuration)
		md.WriteString("| workload | guarantee | system | p50 ms | p99 ms | max ms | records |\n|---|---|---|---:|---:|---:|---:|\n")
		for _, l := range lats {
			fmt.Fprintf(&md, "| %s | %s | %s | %.1f | %.1f | %.1f | %d |\n", l.workload, guaranteeName(l.eos), l.system,
				ms(l.p50), ms(l.p99), ms(l.max), l.records)
		}
	}
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
	if err := png.Encode(f, chart(cfg, sums, lats)); err != nil {
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

// chart draws three panels of bars, left to right: throughput (input
// records/s), restore rate (changelog records/s) and p99 latency (ms; lower
// is better). Each has one group per workload and guarantee (W1
// at-least-once, W1 exactly-once, ...; exactly-once groups underlined in
// grey), one bar per system, heights to scale within the panel, faint lines
// every power-of-ten step; a legend of colour swatches (left to right in
// the order of -systems) sits above the first panel.
func chart(cfg config, sums []summary, lats []latencyResult) image.Image {
	const h, top, bottom, left, panelGap = 300, 30, 20, 20, 40
	type bar struct {
		system string
		v      float64
	}
	type group struct {
		eos  bool
		bars []bar
	}
	panel := func(val func(w, sys string, eos bool) (float64, bool)) []group {
		var gs []group
		for _, w := range cfg.workloads {
			for _, eos := range []bool{false, true} {
				g := group{eos: eos}
				for _, sys := range cfg.systems {
					if v, ok := val(w, sys, eos); ok {
						g.bars = append(g.bars, bar{sys, v})
					}
				}
				if len(g.bars) > 0 {
					gs = append(gs, g)
				}
			}
		}
		return gs
	}
	sum := func(w, sys string, eos bool) *summary {
		for i := range sums {
			if s := &sums[i]; s.workload == w && s.system == sys && s.eos == eos {
				return s
			}
		}
		return nil
	}
	panels := [][]group{
		panel(func(w, sys string, eos bool) (float64, bool) {
			s := sum(w, sys, eos)
			return rateOf(s), s != nil
		}),
		panel(func(w, sys string, eos bool) (float64, bool) {
			s := sum(w, sys, eos)
			if s == nil || s.restoreRate == 0 {
				return 0, false
			}
			return s.restoreRate, true
		}),
	}
	panels = append(panels, panel(func(w, sys string, eos bool) (float64, bool) {
		for _, l := range lats {
			if l.workload == w && l.system == sys && l.eos == eos {
				return ms(l.p99), true
			}
		}
		return 0, false
	}))
	const barW, gap, groupGap = 14, 3, 20
	width := left
	for _, p := range panels {
		for _, g := range p {
			width += len(g.bars)*(barW+gap) + groupGap
		}
		width += panelGap
	}
	img := image.NewRGBA(image.Rect(0, 0, max(width, 200), h+top+bottom))
	fill(img, img.Bounds(), color.RGBA{0xff, 0xff, 0xff, 0xff})
	x := left
	for _, p := range panels {
		var maxV float64
		pw := 0
		for _, g := range p {
			for _, b := range g.bars {
				maxV = max(maxV, b.v)
			}
			pw += len(g.bars)*(barW+gap) + groupGap
		}
		if maxV <= 0 {
			continue
		}
		scale := float64(h) / maxV
		step := math.Pow(10, math.Floor(math.Log10(maxV)))
		for r := step; r < maxV; r += step {
			y := top + h - int(r*scale)
			fill(img, image.Rect(x, y, x+pw, y+1), color.RGBA{0xdd, 0xdd, 0xdd, 0xff})
		}
		for _, g := range p {
			for _, b := range g.bars {
				fill(img, image.Rect(x, top+h-int(b.v*scale), x+barW, top+h), systemColor[b.system])
				x += barW + gap
			}
			if g.eos {
				fill(img, image.Rect(x-len(g.bars)*(barW+gap), top+h+4, x-gap, top+h+8), color.RGBA{0x88, 0x88, 0x88, 0xff})
			}
			x += groupGap
		}
		fill(img, image.Rect(x-pw, top+h, x, top+h+1), color.RGBA{0, 0, 0, 0xff})
		x += panelGap
	}
	lx := left
	for _, sys := range cfg.systems {
		fill(img, image.Rect(lx, 8, lx+14, 22), systemColor[sys])
		lx += 24
	}
	return img
}

func rateOf(s *summary) float64 {
	if s == nil {
		return 0
	}
	return s.rate
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func fill(img *image.RGBA, r image.Rectangle, c color.RGBA) {
	r = r.Intersect(img.Bounds())
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			img.SetRGBA(x, y, c)
		}
	}
}
