package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
)

// summary is the median of one (workload, guarantee, system)'s rounds, as
// written to the markdown tables and to <base>.json.
type summary struct {
	Workload    string  `json:"workload"`
	System      string  `json:"system"`
	EOS         bool    `json:"eos"`
	Runs        int     `json:"runs"`
	Rate        float64 `json:"rate"`           // input records/s, process start to verified output
	Steady      float64 `json:"steady"`         // input records/s from 10 % to 90 % of the input
	CPUPerM     float64 `json:"cpu_s_per_m"`    // CPU seconds per million input records
	RSSMiB      float64 `json:"peak_rss_mib"`   // peak RSS
	First       float64 `json:"first_output_s"` // seconds to the first output
	Outputs     float64 `json:"outputs"`
	Changelog   float64 `json:"changelog"`
	RestoreRate float64 `json:"restore_rate"` // changelog records restored per second; 0: not measured
	Restored    float64 `json:"restored"`
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
		out = append(out, summary{Workload: k.w, System: k.sys, EOS: k.eos, Runs: len(rs),
			Rate:      col(func(r result) float64 { return r.throughput(n) }),
			Steady:    col(func(r result) float64 { return r.steady }),
			CPUPerM:   col(func(r result) float64 { return r.cpu.Seconds() / float64(n) * 1e6 }),
			RSSMiB:    col(func(r result) float64 { return float64(r.maxRSS) / (1 << 20) }),
			First:     col(func(r result) float64 { return r.firstOutput.Seconds() }),
			Outputs:   col(func(r result) float64 { return float64(r.outputs) }),
			Changelog: col(func(r result) float64 { return float64(r.changelog) }),
			Restored:  col(func(r result) float64 { return float64(r.restored) }),
			RestoreRate: col(func(r result) float64 {
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
			if s := &sums[i]; s.Workload == w && s.System == sys && s.EOS == eos {
				return s
			}
		}
		return nil
	}
	ratio := func(s *summary, sys string) string {
		o := find(s.Workload, sys, s.EOS)
		if o == nil || o == s || o.Rate == 0 {
			return "—"
		}
		return fmt.Sprintf("%.2f×", s.Rate/o.Rate)
	}
	now := time.Now().UTC()
	mach := machine(cfg)
	var md bytes.Buffer
	fmt.Fprintf(&md, "# Side-by-side benchmark, %s\n\n", now.Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&md, "Machine: %s.\n\n", mach)
	fmt.Fprintf(&md, "Input: %d records of about 100 bytes over %d partitions (%d keys, %d categories, event times over %v), "+
		"1 worker / 1 stream thread, default record caches and commit intervals, medians of %d interleaved rounds. "+
		"Rate: input records over the time from process start until a read-committed consumer has the complete, verified output. "+
		"Steady: input records per second between outputs reaching 10 %% and 90 %% of the input's event time. "+
		"CPU from the child process's rusage, peak RSS from its VmHWM (/proc) just before it is stopped. Outputs: records read committed; changelog: end offsets of the changelog topics (transaction markers included).\n\n",
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
			s.Workload, guaranteeName(s.EOS), s.System, s.Rate, s.Steady, s.CPUPerM, s.RSSMiB, s.First, s.Outputs, s.Changelog,
			ratio(s, sysKS), ratio(s, sysRaw))
	}
	if cfg.restore {
		md.WriteString("\nRestore: after each run of a stateful workload the system starts again with the same application id, an empty state directory and no new input; " +
			"restored is the changelog records it applied (Streamwork: Metrics.RestoredRecords; Kafka Streams: a restore listener's batch counts), " +
			"the rate is over the time from the first store starting to restore until every task is restored (Kafka Streams: until it is RUNNING).\n\n")
		md.WriteString("| workload | guarantee | system | restored | restore rec/s | vs Kafka Streams |\n|---|---|---|---:|---:|---:|\n")
		for i := range sums {
			s := &sums[i]
			if s.RestoreRate == 0 {
				continue
			}
			vs := "—"
			if o := find(s.Workload, sysKS, s.EOS); o != nil && o != s && o.RestoreRate > 0 {
				vs = fmt.Sprintf("%.2f×", s.RestoreRate/o.RestoreRate)
			}
			fmt.Fprintf(&md, "| %s | %s | %s | %.0f | %.0f | %s |\n", s.Workload, guaranteeName(s.EOS), s.System, s.Restored, s.RestoreRate, vs)
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
	rs := resultSet{Date: now.Truncate(time.Minute), Records: ds.n, Rounds: cfg.rounds, Machine: mach,
		Workloads: cfg.workloads, Systems: cfg.systems, Runs: sums, Latency: latencySummaries(lats)}
	if err := writeResultSet(base+".json", rs); err != nil {
		return err
	}
	if err := writeChart(base+".png", rs); err != nil {
		return err
	}
	fmt.Printf("bench: wrote %s.md, %s.json and %s.png\n", base, base, base)
	os.Stdout.Write(md.Bytes())
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
