package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/streamwork-go/streamwork/integration/kafkatest"
)

func TestMain(m *testing.M) { kafkatest.Main(m) }

// TestSmoke builds the harness and runs every workload with Streamwork and
// the raw loop, once, on 20,000 records against the test broker: each run
// must end with its complete output verified, and the report must be
// written. (Kafka Streams runs are left to the full benchmark: a JVM
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
		"-systems", "streamwork,raw", "-commit-interval", "500ms", "-out", results)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("bench: %v\n%s", err, out)
	}
	// 4 workloads × 2 guarantees with Streamwork, W1 × 2 with the raw loop.
	if n := strings.Count(string(out), "bench: W"); n != 10 {
		t.Fatalf("%d verified runs, want 10:\n%s", n, out)
	}
	entries, err := os.ReadDir(results)
	if err != nil {
		t.Fatal(err)
	}
	var exts []string
	for _, e := range entries {
		exts = append(exts, filepath.Ext(e.Name()))
	}
	if strings.Join(exts, ",") != ".md,.png" {
		t.Fatalf("results %v, want one .md and one .png", exts)
	}
	md, err := os.ReadFile(filepath.Join(results, strings.TrimSuffix(entries[0].Name(), ".md")+".md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range workloads {
		if !strings.Contains(string(md), "| "+w+" | exactly-once | streamwork |") {
			t.Errorf("the table has no %s exactly-once Streamwork row:\n%s", w, md)
		}
	}
}
