package main

import (
	"bytes"
	"context"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// The example briefly on an in-process broker: a source three times
// faster than the operator, a small buffer. The summary has its lines, and
// the facts that hold exactly: every record produced is processed or still
// in Kafka, the buffers filled and paused fetching, the dashboard was
// served on loopback.
func TestBackpressureOnEmbeddedBroker(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg := Config{Duration: 3 * time.Second, Rate: 1500, Cost: 2 * time.Millisecond, Buffer: 20, Partitions: 3, Dashboard: "127.0.0.1:0"}
	var out bytes.Buffer
	if err := run(ctx, c.ListenAddrs(), cfg, "test", t.TempDir(), slog.New(slog.DiscardHandler), &out); err != nil {
		t.Fatal(err)
	}
	t.Logf("output:\n%s", out.String())
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	want := []string{
		`^dashboard: http://127\.0\.0\.1:\d+/$`,
		`^source: 3 partitions, written at 1500 records/s for 3(\.\d+)?s; slow operator: 2ms a record; buffer: 20 records a partition$`,
		`^produced:  \d+ records \(\d+/s\)$`,
		`^processed: \d+ records \(\d+/s over the App's \d+\.\d+s\)$`,
		`^lag:       \d+ records left in Kafka \(end offsets - committed offsets\); the App last saw \d+$`,
		`^produced = processed \+ lag: (\d+) = (\d+) \+ (\d+) \(holds\)$`,
		`^paused:    \d+ partitions paused as the source stopped, (\d+) at most \(fetching stops while a buffer is full\)$`,
		`^operator:  busy \d+% of the App's time \(\S+ in \d+ records\)$`,
	}
	if len(lines) < len(want) {
		t.Fatalf("%d lines, want at least %d", len(lines), len(want))
	}
	var sums, paused []string
	for i, re := range want {
		m := regexp.MustCompile(re).FindStringSubmatch(lines[i])
		if m == nil {
			t.Fatalf("line %d %q does not match %s", i, lines[i], re)
		}
		switch i {
		case 5:
			sums = m[1:]
		case 6:
			paused = m[1:]
		}
	}
	n := func(s string) int64 {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	produced, processed, lag := n(sums[0]), n(sums[1]), n(sums[2])
	if produced != processed+lag || produced < 1000 || processed == 0 || lag == 0 {
		t.Fatalf("produced %d, processed %d, lag %d: want produced = processed + lag, with records on both sides", produced, processed, lag)
	}
	if maxPaused := n(paused[0]); maxPaused < 1 || maxPaused > 3 {
		t.Fatalf("at most %d partitions paused, want 1 to 3 (the source outpaces the operator three times)", maxPaused)
	}
}

// With -shed, the source drops records while its partition lags by more
// than the bound: every record written is processed, shed or still in
// Kafka, exactly.
func TestBackpressureSheddingOnEmbeddedBroker(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg := Config{Duration: 3 * time.Second, Rate: 1500, Cost: 2 * time.Millisecond, Buffer: 20, Partitions: 3, Shed: 50}
	var out bytes.Buffer
	if err := run(ctx, c.ListenAddrs(), cfg, "shed", t.TempDir(), slog.New(slog.DiscardHandler), &out); err != nil {
		t.Fatal(err)
	}
	t.Logf("output:\n%s", out.String())
	shedLine := regexp.MustCompile(`(?m)^shed:      (\d+) records dropped by load shedding \(partition lag over 50\)$`).FindStringSubmatch(out.String())
	sums := regexp.MustCompile(`(?m)^produced = processed \+ shed \+ lag: (\d+) = (\d+) \+ (\d+) \+ (\d+) \(holds\)$`).FindStringSubmatch(out.String())
	if shedLine == nil || sums == nil {
		t.Fatalf("no shed summary in the output")
	}
	n := func(s string) int64 {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	produced, processed, shed, lag := n(sums[1]), n(sums[2]), n(sums[3]), n(sums[4])
	if shed != n(shedLine[1]) || produced != processed+shed+lag || shed == 0 || processed == 0 {
		t.Fatalf("produced %d, processed %d, shed %d, lag %d: want produced = processed + shed + lag with records shed and processed", produced, processed, shed, lag)
	}
}
