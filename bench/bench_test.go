package main

import (
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/streamwork-go/streamwork/integration/kafkatest"
)

// restoreRe picks a run's workload, guarantee, changelog offsets and
// restored records out of its line.
var restoreRe = regexp.MustCompile(`bench: (W\w+) streamwork +(\S+) +round 1: .*, (\d+) changelog, restored (\d+) in`)

func TestMain(m *testing.M) { kafkatest.Main(m) }

// TestSmoke builds the harness and runs every workload with Streamwork and
// the raw loop, once, on 20,000 records against the test broker: each run
// must end with its complete output verified, each stateful one with its
// restore measured, each latency run with every input record's latency
// measured, and the report must be written. (Kafka Streams runs are left to the full benchmark: a JVM
// start per run would not fit CI's time.)
func TestSmoke(t *testing.T) {
	b := kafkatest.Require(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "bench")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	results := filepath.Join(dir, "results")
	cmd := exec.CommandContext(t.Context(), bin, "-brokers", strings.Join(b.Addrs, ","), "-records", "20000", "-rounds", "1",
		"-systems", "streamwork,raw", "-commit-interval", "500ms", "-latency-rate", "500", "-latency-duration", "2s", "-out", results)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("bench: %v\n%s", err, out)
	}
	// 5 workloads × 2 guarantees with Streamwork, W1 × 2 with the raw loop.
	if n := strings.Count(string(out), "bench: W"); n != 12 {
		t.Fatalf("%d verified runs, want 12:\n%s", n, out)
	}
	// Latency: every workload exactly-once, W1 and W4 at-least-once too,
	// with Streamwork; W1 with the raw loop: 9 runs of 1,000 records
	// (W1: the 750 that pass its filter; W3f: those in closed windows).
	if n := strings.Count(string(out), "bench: latency W"); n != 9 {
		t.Fatalf("%d latency runs, want 9:\n%s", n, out)
	}
	// Restore: W2, W3, W3f restore their whole changelog (at-least-once:
	// every offset a record; exactly-once: less the transaction markers).
	restores := 0
	for _, m := range restoreRe.FindAllStringSubmatch(string(out), -1) {
		w, g := m[1], m[2]
		changelog, _ := strconv.Atoi(m[3])
		restored, _ := strconv.Atoi(m[4])
		switch {
		case w == "W1":
			if changelog != 0 || restored != 0 {
				t.Errorf("%s %s: %d changelog, %d restored, want none", w, g, changelog, restored)
			}
		case w == "W4": // its table's changelog; no restore run
			if changelog == 0 || restored != 0 {
				t.Errorf("%s %s: %d changelog, %d restored, want a changelog and no restore run", w, g, changelog, restored)
			}
		case g == "at-least-once" && (restored != changelog || restored == 0):
			t.Errorf("%s %s: restored %d of %d changelog records", w, g, restored, changelog)
		case g == "exactly-once" && (restored > changelog || restored == 0):
			t.Errorf("%s %s: restored %d of %d changelog offsets", w, g, restored, changelog)
		default:
			restores++
		}
	}
	if restores != 6 {
		t.Fatalf("%d restores measured, want 6:\n%s", restores, out)
	}
	entries, err := os.ReadDir(results)
	if err != nil {
		t.Fatal(err)
	}
	var exts []string
	for _, e := range entries {
		exts = append(exts, filepath.Ext(e.Name()))
	}
	if strings.Join(exts, ",") != ".json,.md,.png" {
		t.Fatalf("results %v, want one .json, one .md and one .png", exts)
	}
	base := filepath.Join(results, strings.TrimSuffix(entries[0].Name(), ".json"))
	md, err := os.ReadFile(base + ".md")
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range workloads {
		if !strings.Contains(string(md), "| "+w+" | exactly-once | streamwork |") {
			t.Errorf("the table has no %s exactly-once Streamwork row:\n%s", w, md)
		}
	}
	if n := strings.Count(string(md), "| W3f | exactly-once | streamwork |"); n != 3 {
		t.Errorf("%d W3f exactly-once Streamwork rows, want 3 (throughput, restore, latency):\n%s", n, md)
	}
	// The JSON holds what the tables show: the markdown read back agrees.
	rs, err := readResultSet(base + ".json")
	if err != nil {
		t.Fatal(err)
	}
	back, err := parseMarkdown(md)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs.Runs) != 12 || len(back.Runs) != 12 || len(rs.Latency) != 9 || len(back.Latency) != 9 || rs.Records != 20000 || back.Records != 20000 {
		t.Fatalf("JSON %d runs, %d latencies, %d records; markdown %d, %d, %d", len(rs.Runs), len(rs.Latency), rs.Records,
			len(back.Runs), len(back.Latency), back.Records)
	}
	for i := range rs.Runs {
		if j, m := rs.Runs[i], back.Runs[i]; j.Workload != m.Workload || j.System != m.System || j.EOS != m.EOS || math.Abs(j.Rate-m.Rate) > 0.5 {
			t.Errorf("run %d: JSON %+v, markdown %+v", i, j, m)
		}
	}
}
