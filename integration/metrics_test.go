package integration

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamwork-go/streamwork/integration/kafkatest"
	"github.com/streamwork-go/streamwork/kstream"
	"github.com/streamwork-go/streamwork/kstream/kprom"
	"github.com/streamwork-go/streamwork/serde"
)

// Metrics on the real broker: a filter, a repartition and a count over a
// known input, run to the end by one instance. Every node's records in
// and out, every task's count, each partition's lag (0), the store's keys
// and bytes are exact; commits happened; utilization and latencies are
// sane; the Prometheus collector exposes the same numbers.
func TestMetricsOfARepartitionedCount(t *testing.T) {
	b := kafkatest.Require(t)
	ctx := testContext(t)
	in := newTopic(t, b, "metrics-in", 2)
	out := newTopic(t, b, "metrics-out", 2)
	appID := kafkatest.UniqueName(t, "metrics")
	deleteTopicsAtEnd(t, b, appID+"-regroup-repartition", appID+"-counts-changelog")

	bl := kstream.NewBuilder()
	src := kstream.From(bl, in, serde.String, serde.Int64, kstream.Named("source"))
	pos := src.Filter(func(_ string, v int64) bool { return v > 0 }, kstream.Named("positive"))
	g := kstream.GroupBy(pos, func(k string, _ int64) string { return "g-" + k }, serde.String, serde.Int64, kstream.Named("regroup"))
	kstream.Count(g, kstream.StoreName("counts"), kstream.Named("count")).
		ToStream(kstream.Named("changes")).To(out, serde.String, serde.Int64, kstream.Named("sink"))
	topo, err := bl.Build()
	if err != nil {
		t.Fatal(err)
	}
	app := startApp(t, b, "metrics", topo, kstream.ApplicationID(appID), kstream.StateDir(t.TempDir()),
		kstream.StoreEngine(kstream.MemoryEngine), kstream.CacheMaxBytes(0), kstream.CommitInterval(100*time.Millisecond))
	waitAssigned(ctx, t, 4, app) // 2 sub-topologies x 2 partitions

	// 300 records, keys k0..k9; those of k4 and k9 (i%5 == 4) are negative
	// and filtered out: 240 reach the count, 30 for each of 8 groups. Even
	// keys go to partition 0, odd ones to 1.
	const n, passed = 300, 240
	base := time.Now().Add(-2 * time.Hour)
	recs := make([]*kgo.Record, n)
	for i := range recs {
		v := int64(i + 1)
		if i%5 == 4 {
			v = -v
		}
		val, _ := serde.Int64.Serialize(in, v)
		key := fmt.Sprintf("k%d", i%10)
		recs[i] = &kgo.Record{Topic: in, Partition: int32(i % 10 % 2), Key: []byte(key), Value: val, Timestamp: base.Add(time.Duration(i) * time.Millisecond)}
	}
	produce(ctx, t, producer(t, b), recs)

	node := func(m kstream.Metrics, name string) kstream.NodeMetrics {
		for _, nm := range m.Nodes {
			if nm.Name == name {
				return nm
			}
		}
		return kstream.NodeMetrics{}
	}
	var m kstream.Metrics
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("last metrics: commits %d\nnodes %+v\npartitions %+v\ntasks %+v", m.Commits, m.Nodes, m.Partitions, m.TaskStats)
		}
	})
	// Store sizes are read every second.
	waitFor(ctx, t, "every record through the sink, lag 0, a commit, the store sizes read", func() bool {
		m = app.Metrics()
		if node(m, "sink").RecordsOut != passed || m.Commits == 0 || len(m.Partitions) != 4 {
			return false
		}
		var keys int64
		for _, s := range m.Stores {
			keys += s.ApproxKeys
		}
		if keys != 8 {
			return false
		}
		for _, p := range m.Partitions {
			if p.Lag != 0 {
				return false
			}
		}
		return true
	}, app)

	type inOut struct {
		sub     int
		in, out int64
	}
	got := map[string]inOut{}
	for _, nm := range m.Nodes {
		got[nm.Name] = inOut{nm.Subtopology, nm.RecordsIn, nm.RecordsOut}
		if nm.ProcessingTime < 0 || nm.Utilization < 0 || nm.Utilization > 1 || nm.RecordsPerSecond < 0 {
			t.Errorf("node %+v: time, utilization or rate out of range", nm)
		}
	}
	want := map[string]inOut{
		"source": {0, n, n}, "positive": {0, n, passed}, "KSTREAM-KEY-SELECT-0000000002": {0, passed, passed},
		"regroup-repartition-sink": {0, passed, passed}, "regroup-repartition-source": {1, passed, passed},
		"count": {1, passed, passed}, "changes": {1, passed, passed}, "sink": {1, passed, passed},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("nodes:\n got %v\nwant %v", got, want)
	}
	var sub0, sub1 int64
	for _, ts := range m.TaskStats {
		if ts.ID.Subtopology == 0 {
			sub0 += ts.RecordsProcessed
		} else {
			sub1 += ts.RecordsProcessed
		}
		if ts.State != "running" || ts.Buffered != 0 || ts.Worker != 0 {
			t.Errorf("task %+v", ts)
		}
	}
	if len(m.TaskStats) != 4 || sub0 != n || sub1 != passed {
		t.Fatalf("tasks %+v: processed %d and %d, want %d and %d", m.TaskStats, sub0, sub1, n, passed)
	}
	for _, p := range m.Partitions {
		// Latencies: about 2 h while the window holds the records, 0 after.
		if p.Buffered != 0 || p.Paused || p.LatencyP50 < 0 || p.LatencyP50 > p.LatencyP99 || p.LatencyP99 > 3*time.Hour {
			t.Errorf("partition %+v", p)
		}
	}
	if len(m.Workers) != 1 {
		t.Fatalf("workers %+v", m.Workers)
	}
	w := m.Workers[0]
	if w.Tasks != 4 || w.RecordsProcessed != n+passed || w.Commits == 0 || w.Commits > m.Commits || w.Rebalances < 1 ||
		w.Utilization < 0 || w.Utilization > 1 || w.Headroom != 1-w.Utilization || w.BusyTime <= 0 ||
		w.CommitLatency < 0 || w.CommitLatency > w.CommitLatencyMax && w.CommitLatency > 0 {
		t.Fatalf("worker %+v (App commits %d)", w, m.Commits)
	}
	// The memory engine: 8 keys "g-kN" (4 bytes), each an 8-byte timestamp
	// and an 8-byte count.
	var keys, bytes int64
	for _, s := range m.Stores {
		if s.Name != "counts" || s.Task.Subtopology != 1 {
			t.Errorf("store %+v", s)
		}
		keys += s.ApproxKeys
		bytes += s.ApproxBytes
	}
	if len(m.Stores) != 2 || keys != 8 || bytes != 8*(4+16) {
		t.Fatalf("stores %+v: %d keys, %d bytes, want 8 and %d", m.Stores, keys, bytes, 8*(4+16))
	}
	if len(m.Restores) != 0 || m.Rebalances != w.Rebalances {
		t.Fatalf("restores %+v, rebalances %d", m.Restores, m.Rebalances)
	}

	// The same numbers through the Prometheus collector.
	c, err := kprom.NewCollector(app.App)
	if err != nil {
		t.Fatal(err)
	}
	var exp strings.Builder
	fmt.Fprintf(&exp, "# HELP streamwork_node_records_in_total Records the node received.\n# TYPE streamwork_node_records_in_total counter\n")
	for _, name := range []string{"KSTREAM-KEY-SELECT-0000000002", "changes", "count", "positive", "regroup-repartition-sink", "regroup-repartition-source", "sink", "source"} {
		fmt.Fprintf(&exp, "streamwork_node_records_in_total{application_id=%q,node=%q,subtopology=\"%d\"} %d\n", appID, name, want[name].sub, want[name].in)
	}
	fmt.Fprintf(&exp, "# HELP streamwork_partition_lag_records The partition's end minus the offset of the next record to process (absent while unknown).\n# TYPE streamwork_partition_lag_records gauge\n")
	for _, p := range m.Partitions {
		fmt.Fprintf(&exp, "streamwork_partition_lag_records{application_id=%q,partition=\"%d\",task=%q,topic=%q,worker=\"0\"} 0\n", appID, p.Partition, p.Task.String(), p.Topic)
	}
	fmt.Fprintf(&exp, "# HELP streamwork_store_keys The store engine's estimate of its number of keys.\n# TYPE streamwork_store_keys gauge\n")
	for _, s := range m.Stores {
		fmt.Fprintf(&exp, "streamwork_store_keys{application_id=%q,store=\"counts\",task=%q} %d\n", appID, s.Task.String(), s.ApproxKeys)
	}
	if err := testutil.CollectAndCompare(c, strings.NewReader(exp.String()),
		"streamwork_node_records_in_total", "streamwork_partition_lag_records", "streamwork_store_keys"); err != nil {
		t.Fatal(err)
	}
	if err := app.stop(t); err != nil {
		t.Fatal(err)
	}
}
