package kprom_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/streamwork-go/streamwork/kstream"
	"github.com/streamwork-go/streamwork/kstream/kprom"
	"github.com/streamwork-go/streamwork/kstream/kstreamtest"
	"github.com/streamwork-go/streamwork/serde"
)

// fixed is a Source with a fixed snapshot.
type fixed kstream.Metrics

func (f fixed) Metrics() kstream.Metrics { return kstream.Metrics(f) }

// Every section of a snapshot becomes its series, with exact values and
// labels; lag and stream time are left out while unknown.
func TestCollectorSeries(t *testing.T) {
	task := kstream.TaskID{Subtopology: 1, Partition: 2}
	m := kstream.Metrics{
		RecordsProcessed: 7, Commits: 3, Rebalances: 1,
		Skipped:      map[kstream.ErrorKind]int64{kstream.ProcessingErrorKind: 2},
		DeadLettered: map[kstream.ErrorKind]int64{},
		Workers: []kstream.WorkerMetrics{{Worker: 0, Tasks: 1, RecordsProcessed: 7, BusyTime: 1500 * time.Millisecond,
			Utilization: 0.25, Headroom: 0.75, Commits: 3, CommitLatency: 2 * time.Millisecond, Rebalances: 1}},
		TaskStats:  []kstream.TaskMetrics{{ID: task, State: "restoring", RecordsProcessed: 7, StreamTime: -1}},
		Nodes:      []kstream.NodeMetrics{{Name: "count", Subtopology: 1, RecordsIn: 7, RecordsOut: 5}},
		Partitions: []kstream.PartitionMetrics{{Topic: "in", Partition: 2, Task: task, Lag: -1, Buffered: 4, Paused: true, Pauses: 2, LatencyP50: time.Second, LatencyP99: 2 * time.Second}},
		Stores:     []kstream.StoreMetrics{{Name: "counts", Task: task, ApproxBytes: 100, ApproxKeys: -1}},
		Restores:   []kstream.RestoreMetrics{{Store: "counts", Task: task, Done: 10, Left: 30, RecordsPerSecond: 5, ETA: 6 * time.Second}},
	}
	c, err := kprom.NewCollector(fixed(m), kprom.ApplicationID("app"))
	if err != nil {
		t.Fatal(err)
	}
	want := `
# HELP streamwork_commits_total Offset commits or committed transactions.
# TYPE streamwork_commits_total counter
streamwork_commits_total{application_id="app"} 3
# HELP streamwork_skipped_records_total Records an error handler skipped, by error kind.
# TYPE streamwork_skipped_records_total counter
streamwork_skipped_records_total{application_id="app",kind="deserialization"} 0
streamwork_skipped_records_total{application_id="app",kind="processing"} 2
streamwork_skipped_records_total{application_id="app",kind="production"} 0
# HELP streamwork_worker_busy_seconds_total Time the worker spent processing, punctuating and committing.
# TYPE streamwork_worker_busy_seconds_total counter
streamwork_worker_busy_seconds_total{application_id="app",worker="0"} 1.5
# HELP streamwork_worker_utilization_ratio Busy time over wall time over the rate window.
# TYPE streamwork_worker_utilization_ratio gauge
streamwork_worker_utilization_ratio{application_id="app",worker="0"} 0.25
# HELP streamwork_task_restoring 1 while the task restores its stores, else 0.
# TYPE streamwork_task_restoring gauge
streamwork_task_restoring{application_id="app",task="1_2",worker="0"} 1
# HELP streamwork_node_records_out_total Records the node forwarded (a sink: handed to the producer).
# TYPE streamwork_node_records_out_total counter
streamwork_node_records_out_total{application_id="app",node="count",subtopology="1"} 5
# HELP streamwork_partition_paused 1 while fetching the partition is paused because its buffer is full.
# TYPE streamwork_partition_paused gauge
streamwork_partition_paused{application_id="app",partition="2",task="1_2",topic="in",worker="0"} 1
# HELP streamwork_partition_latency_p99_seconds 99th percentile of the end-to-end latency over the rate window.
# TYPE streamwork_partition_latency_p99_seconds gauge
streamwork_partition_latency_p99_seconds{application_id="app",partition="2",task="1_2",topic="in",worker="0"} 2
# HELP streamwork_store_bytes The store engine's estimate of the store's size.
# TYPE streamwork_store_bytes gauge
streamwork_store_bytes{application_id="app",store="counts",task="1_2"} 100
# HELP streamwork_restore_eta_seconds Time the store's restore has left at that rate (0 when unknown).
# TYPE streamwork_restore_eta_seconds gauge
streamwork_restore_eta_seconds{application_id="app",store="counts",task="1_2"} 6
`
	names := []string{"streamwork_commits_total", "streamwork_skipped_records_total", "streamwork_worker_busy_seconds_total",
		"streamwork_worker_utilization_ratio", "streamwork_task_restoring", "streamwork_node_records_out_total",
		"streamwork_partition_paused", "streamwork_partition_latency_p99_seconds", "streamwork_store_bytes", "streamwork_restore_eta_seconds",
		"streamwork_partition_lag_records", "streamwork_task_stream_time_seconds", "streamwork_store_keys"}
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), names...); err != nil {
		t.Fatal(err)
	}
	problems, err := testutil.CollectAndLint(c)
	if err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %+v", err, problems)
	}
}

// NewCollector takes the application id from the App, or from the option.
func TestNewCollectorApplicationID(t *testing.T) {
	if _, err := kprom.NewCollector(nil); err == nil {
		t.Fatal("nil source accepted")
	}
	if _, err := kprom.NewCollector(fixed{}); err == nil || !strings.Contains(err.Error(), "application id") {
		t.Fatalf("source without an id: %v", err)
	}
	b := kstream.NewBuilder()
	kstream.From(b, "in", serde.String, serde.String).To("out", serde.String, serde.String)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	app, err := kstream.New(topo, kstream.ApplicationID("from-app"), kstream.Brokers("127.0.0.1:1"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := kprom.NewCollector(app)
	if err != nil {
		t.Fatal(err)
	}
	const want = `
# HELP streamwork_records_processed_total Input records taken through the topology.
# TYPE streamwork_records_processed_total counter
streamwork_records_processed_total{application_id="from-app"} 0
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "streamwork_records_processed_total"); err != nil {
		t.Fatal(err)
	}
	// The driver has no id of its own.
	d, err := kstreamtest.New(topo)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := kprom.NewCollector(d); err == nil {
		t.Fatal(errors.New("driver without ApplicationID accepted"))
	}
}
