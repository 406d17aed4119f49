package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamwork-go/streamwork/kstream"
)

var update = flag.Bool("update", false, "rewrite testdata/default.golden from the run")

// shuffleLine matches a task line of the normalise stage, whose count
// depends on which worker owns which read task (each worker's producer
// deals its own records in turn over the shuffle's partitions).
var shuffleLine = regexp.MustCompile(`(?m)^  task 1_\d    ?(\d+) events$`)

// maskShuffle replaces the normalise tasks' counts by "N" and returns
// them.
func maskShuffle(t *testing.T, out string) (string, []int) {
	t.Helper()
	var counts []int
	for _, m := range shuffleLine.FindAllStringSubmatch(out, -1) {
		n, err := strconv.Atoi(m[1])
		if err != nil {
			t.Fatal(err)
		}
		counts = append(counts, n)
	}
	return shuffleLine.ReplaceAllStringFunc(out, func(s string) string {
		return s[:strings.LastIndexByte(strings.TrimSuffix(s, " events"), ' ')+1] + "N events"
	}), counts
}

// The example end to end on an in-process broker, for the default seed and
// another: what each task handled and the counts, against a model computed
// from the generated events and Kafka's key partitioner; the shuffle's
// split within what round robin by each of the workers allows; for the
// default seed, the whole output against testdata/default.golden (the
// README's).
func TestTollboothOnEmbeddedBroker(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, cfg := range []config{
		{seed: DefaultSeed, events: DefaultEvents, workers: DefaultWorkers},
		{seed: 7, events: 100, workers: 2},
	} {
		t.Run(fmt.Sprint("seed-", cfg.seed), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			var out bytes.Buffer
			if err := run(ctx, c.ListenAddrs(), cfg, fmt.Sprint("test-", cfg.seed), t.TempDir(), slog.New(slog.DiscardHandler), &out); err != nil {
				t.Fatal(err)
			}
			got, shuffled := maskShuffle(t, out.String())
			want, _ := maskShuffle(t, model(t, cfg))
			if got != want {
				t.Fatalf("output:\n%s\nwant (normalise counts masked):\n%s", out.String(), want)
			}
			sum := 0
			for _, n := range shuffled {
				sum += n
				// Each worker's share differs by at most one between
				// partitions: all of them by at most the worker count.
				if lo, hi := cfg.events/ShufflePartitions-cfg.workers, cfg.events/ShufflePartitions+cfg.workers; n < lo || n > hi {
					t.Errorf("a normalise task got %d events, want %d to %d", n, lo, hi)
				}
			}
			if len(shuffled) != ShufflePartitions || sum != cfg.events {
				t.Errorf("normalise tasks got %v events, want %d tasks sharing %d", shuffled, ShufflePartitions, cfg.events)
			}
			if cfg.seed != DefaultSeed {
				return
			}
			golden := filepath.Join("testdata", "default.golden")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			g, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(g) {
				t.Fatalf("output:\n%s\nwant %s:\n%s", got, golden, g)
			}
		})
	}
}

// model prints the summary the example must print for cfg, from the
// generated events: the tasks of a keyed stage are the partitions Kafka's
// key partitioner picks (murmur2, as the producer and the App's sinks do);
// the counts are sums over the events; every booth's events arrive in
// sequence.
func model(t *testing.T, cfg config) string {
	t.Helper()
	events := Generate(cfg.seed, cfg.events)
	tr := NewTrace()
	part := func(key string, n int) int32 {
		p := kgo.StickyKeyPartitioner(nil).ForTopic("t")
		r := &kgo.Record{Key: []byte(key)}
		if !p.RequiresConsistency(r) {
			t.Fatal("a keyed record must keep its partition")
		}
		return int32(p.Partition(r, n))
	}
	booths := map[string]BoothCount{}
	types := map[string]TypeCount{}
	for i, e := range events {
		tr.add(StageRead, kstream.TaskID{Subtopology: 0, Partition: part(e.Booth, InputPartitions)}, e.Booth)
		tr.add(StageNormalise, kstream.TaskID{Subtopology: 1, Partition: int32(i % ShufflePartitions)}, e.Booth)
		tr.add(StageCountByType, kstream.TaskID{Subtopology: 2, Partition: part(e.Type, ByTypePartitions)}, e.Type)
		tr.add(StageCountByBooth, kstream.TaskID{Subtopology: 3, Partition: part(e.Booth, ByBoothPartitions)}, e.Booth)
		b := booths[e.Booth]
		if b.ByType == nil {
			b.ByType = map[string]int64{}
		}
		b.Vehicles++
		b.ByType[e.Type]++
		b.LastSeq = e.Seq
		booths[e.Booth] = b
		tc := types[e.Type]
		tc.Vehicles++
		tc.TollCents += TollCents[e.Type]
		if NormalisePlate(e.Plate) != e.Plate {
			tc.RewrittenPlates++
		}
		types[e.Type] = tc
	}
	var out bytes.Buffer
	printSummary(&out, cfg, len(booths), tr, booths, types)
	return out.String()
}

func TestNormalisePlate(t *testing.T) {
	for raw, want := range map[string]string{
		"ab-123 cd": "AB123CD", "AB123CD": "AB123CD", "xy 007 zz": "XY007ZZ", "Q-1-R": "Q1R", "": "",
	} {
		if got := NormalisePlate(raw); got != want {
			t.Errorf("NormalisePlate(%q) = %q, want %q", raw, got, want)
		}
	}
}

// The generator is deterministic but for its start time, numbers each
// booth's events from 1, and keeps event times increasing.
func TestGenerate(t *testing.T) {
	a, b := Generate(3, 500), Generate(3, 500)
	seq := map[string]int64{}
	for i := range a {
		if a[i].Booth != b[i].Booth || a[i].Type != b[i].Type || a[i].Plate != b[i].Plate || a[i].Seq != b[i].Seq ||
			a[i].TS.Sub(a[0].TS) != b[i].TS.Sub(b[0].TS) {
			t.Fatalf("event %d differs between two generations: %+v and %+v", i, a[i], b[i])
		}
		seq[a[i].Booth]++
		if a[i].Seq != seq[a[i].Booth] {
			t.Fatalf("event %d of %s has seq %d, want %d", i, a[i].Booth, a[i].Seq, seq[a[i].Booth])
		}
		if i > 0 && !a[i].TS.After(a[i-1].TS) {
			t.Fatalf("event %d at %v, not after the one before (%v)", i, a[i].TS, a[i-1].TS)
		}
	}
	if len(seq) != len(booths) {
		t.Fatalf("%d booths have events, want %d", len(seq), len(booths))
	}
}
