package kstream_test

import (
	"testing"
	"time"

	"github.com/streamwork-go/streamwork/kstream"
	"github.com/streamwork-go/streamwork/kstream/kstreamtest"
	"github.com/streamwork-go/streamwork/serde"
)

// The test driver's Metrics: records in and out of every node, per task
// and partition counts, lag, end-to-end latency against the driver's
// clock, and store sizes, in a topology with a filter, a repartition and a
// count.
func TestDriverMetricsSections(t *testing.T) {
	b := kstream.NewBuilder()
	in := kstream.From(b, "in", serde.String, serde.Int64, kstream.Named("source"))
	pos := in.Filter(func(_ string, v int64) bool { return v > 0 }, kstream.Named("positive"))
	g := kstream.GroupBy(pos, func(k string, _ int64) string { return "g-" + k }, serde.String, serde.Int64, kstream.Named("regroup"))
	kstream.Count(g, kstream.StoreName("counts"), kstream.Named("count")).
		ToStream(kstream.Named("changes")).To("out", serde.String, serde.Int64, kstream.Named("sink"))
	start := time.UnixMilli(1_700_000_000_000)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d, err := kstreamtest.NewAt(topo, start, kstream.ApplicationID("m"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	input := kstreamtest.Input(d, "in", serde.String, serde.Int64)
	// Latencies (driver clock minus timestamp): 1024 ms three times, then
	// 2048 and 4096 ms; the value -1 is filtered out.
	for _, r := range []struct {
		k   string
		v   int64
		lat time.Duration
	}{{"a", 1, 1024}, {"b", -1, 1024}, {"a", 2, 1024}, {"c", 3, 2048}, {"a", 4, 4096}} {
		if err := input.Pipe(r.k, r.v, start.Add(-r.lat*time.Millisecond)); err != nil {
			t.Fatal(err)
		}
	}
	m := d.Metrics()
	type inOut struct {
		sub     int
		in, out int64
	}
	nodes := map[string]inOut{}
	for _, n := range m.Nodes {
		nodes[n.Name] = inOut{n.Subtopology, n.RecordsIn, n.RecordsOut}
		if n.ProcessingTime < 0 || n.RecordsPerSecond != 0 || n.Utilization != 0 {
			t.Errorf("node %s: time %v, rate %v, utilization %v", n.Name, n.ProcessingTime, n.RecordsPerSecond, n.Utilization)
		}
	}
	equal(t, "nodes", nodes, map[string]inOut{
		"source":                        {0, 5, 5},
		"positive":                      {0, 5, 4},
		"KSTREAM-KEY-SELECT-0000000002": {0, 4, 4},
		"regroup-repartition-sink":      {0, 4, 4},
		"regroup-repartition-source":    {1, 4, 4},
		"count":                         {1, 4, 4},
		"changes":                       {1, 4, 4},
		"sink":                          {1, 4, 4},
	})
	names := make([]string, len(m.Nodes))
	for i, n := range m.Nodes {
		names[i] = n.Name
	}
	equal(t, "node order", names, []string{"KSTREAM-KEY-SELECT-0000000002", "positive", "regroup-repartition-sink", "source",
		"changes", "count", "regroup-repartition-source", "sink"})

	if len(m.TaskStats) != 2 {
		t.Fatalf("tasks: %+v", m.TaskStats)
	}
	streamTime := start.Add(-1024 * time.Millisecond).UnixMilli()
	for i, want := range []struct {
		id        string
		processed int64
	}{{"0_0", 5}, {"1_0", 4}} {
		ts := m.TaskStats[i]
		if ts.ID.String() != want.id || ts.RecordsProcessed != want.processed || ts.Buffered != 0 || ts.StreamTime != streamTime ||
			ts.State != "running" || ts.ProcessingTime <= 0 {
			t.Errorf("task %d = %+v, want %s with %d processed, stream time %d", i, ts, want.id, want.processed, streamTime)
		}
	}
	if len(m.Partitions) != 2 {
		t.Fatalf("partitions: %+v", m.Partitions)
	}
	for i, want := range []struct {
		topic, task string
		p50, p99    time.Duration
	}{
		{"in", "0_0", 1024 * time.Millisecond, 4096 * time.Millisecond},
		// The repartitioned records keep their timestamps: the filtered
		// one (1024 ms) is missing.
		{"m-regroup-repartition", "1_0", 1024 * time.Millisecond, 4096 * time.Millisecond},
	} {
		p := m.Partitions[i]
		if p.Topic != want.topic || p.Partition != 0 || p.Task.String() != want.task || p.Lag != 0 || p.Buffered != 0 ||
			p.LatencyP50 != want.p50 || p.LatencyP99 != want.p99 || p.Paused || p.Pauses != 0 {
			t.Errorf("partition %d = %+v, want %s of %s, lag 0, p50 %v, p99 %v", i, p, want.topic, want.task, want.p50, want.p99)
		}
	}
	// The memory engine counts key and value bytes: "g-a" and "g-c", each
	// with an 8-byte timestamp and an 8-byte count.
	equal(t, "stores", m.Stores, []kstream.StoreMetrics{{Name: "counts", Task: m.TaskStats[1].ID, ApproxBytes: 2 * (3 + 16), ApproxKeys: 2}})
	if len(m.Workers) != 0 || len(m.Restores) != 0 || !m.Time.Equal(start) {
		t.Errorf("workers %v, restores %v, time %v", m.Workers, m.Restores, m.Time)
	}

	// The latency window: RateWindow later, records of before no longer
	// count.
	if err := d.AdvanceWallClock(kstream.RateWindow); err != nil {
		t.Fatal(err)
	}
	if err := input.Pipe("d", 5, d.Now().Add(-2*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	m = d.Metrics()
	if p := m.Partitions[0]; p.LatencyP50 != 2*time.Millisecond || p.LatencyP99 != 2*time.Millisecond {
		t.Errorf("latency after RateWindow: p50 %v, p99 %v, want 2ms", p.LatencyP50, p.LatencyP99)
	}
	if n := m.Nodes[3]; n.Name != "source" || n.RecordsIn != 6 {
		t.Errorf("source after one more record: %+v", n)
	}
}
