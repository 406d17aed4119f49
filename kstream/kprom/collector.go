package kprom

import (
	"errors"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/streamwork-go/streamwork/kstream"
)

// Source is what a Collector reads on each scrape: *kstream.App, or
// *kstreamtest.Driver in tests.
type Source interface {
	Metrics() kstream.Metrics
}

// Option configures a Collector.
type Option interface{ apply(*config) }

type config struct {
	appID string
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// ApplicationID sets the application_id label. By default it is the
// Source's own (App.ApplicationID), when it has one.
func ApplicationID(id string) Option { return optionFunc(func(c *config) { c.appID = id }) }

// Collector is a prometheus.Collector over a kstream App's Metrics.
type Collector struct {
	src   Source
	appID string
}

var _ prometheus.Collector = (*Collector)(nil)

// NewCollector returns a Collector that reads src.Metrics on each scrape.
// It fails when src is nil or no application id is known (pass
// ApplicationID for a Source without one).
func NewCollector(src Source, opts ...Option) (*Collector, error) {
	if src == nil {
		return nil, errors.New("kprom: NewCollector needs an App")
	}
	var c config
	if a, ok := src.(interface{ ApplicationID() string }); ok {
		c.appID = a.ApplicationID()
	}
	for _, o := range opts {
		if o != nil {
			o.apply(&c)
		}
	}
	if c.appID == "" {
		return nil, errors.New("kprom: no application id: pass ApplicationID")
	}
	return &Collector{src: src, appID: c.appID}, nil
}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("streamwork_"+name, help, append([]string{"application_id"}, labels...), nil)
}

var (
	// App-wide.
	dProcessed       = desc("records_processed_total", "Input records taken through the topology.")
	dProduced        = desc("records_produced_total", "Output records written to Kafka and acknowledged (changelogs excluded).")
	dChangelog       = desc("changelog_records_total", "Records written to store changelogs and acknowledged.")
	dRestored        = desc("restored_records_total", "Changelog records applied to stores while restoring them.")
	dRestoreLeft     = desc("restore_remaining_records", "Changelog records the restoring tasks still have to read.")
	dPunctuations    = desc("punctuations_total", "Punctuator calls.")
	dDropped         = desc("dropped_records_total", "Records an operator dropped by design (null keys, tombstones reaching an aggregation).")
	dLate            = desc("late_records_total", "Records windowed aggregations dropped because their window had closed.")
	dLateWritten     = desc("late_records_written_total", "Late records sent to a late-records topic.")
	dIdleAdvances    = desc("idle_window_advances_total", "Times a windowed aggregation advanced its stream time with the wall clock.")
	dCommits         = desc("commits_total", "Offset commits or committed transactions.")
	dAborts          = desc("transactions_aborted_total", "Transactions aborted (exactly-once).")
	dRestarts        = desc("worker_restarts_total", "Workers restarted after a fencing (exactly-once).")
	dEnforced        = desc("enforced_processing_total", "Records processed while an input partition of their task was empty after its idle wait.")
	dSkipped         = desc("skipped_records_total", "Records an error handler skipped, by error kind.", "kind")
	dDeadLettered    = desc("dead_lettered_records_total", "Records sent to a dead-letter topic, by error kind.", "kind")
	dRebalances      = desc("rebalances_total", "Assignments the workers received.")
	dShed            = desc("shed_records_total", "Records the load-shedding policies dropped.")
	dPaused          = desc("paused_partitions", "Input partitions paused now because their buffer is full.")
	dPausedMax       = desc("paused_partitions_max", "The largest number of partitions paused at once since the App started.")
	dWorkerTasks     = desc("worker_tasks", "Active tasks of the worker.", "worker")
	dWorkerProcessed = desc("worker_records_processed_total", "Input records the worker took through its tasks.", "worker")
	dWorkerRate      = desc("worker_records_per_second", "Records the worker processed per second over the rate window.", "worker")
	dWorkerBusy      = desc("worker_busy_seconds_total", "Time the worker spent processing, punctuating and committing.", "worker")
	dWorkerUtil      = desc("worker_utilization_ratio", "Busy time over wall time over the rate window.", "worker")
	dWorkerHeadroom  = desc("worker_headroom_ratio", "1 - utilization: the share of the worker's capacity still free.", "worker")
	dWorkerCommits   = desc("worker_commits_total", "The worker's commits.", "worker")
	dCommitLatency   = desc("worker_commit_latency_seconds", "Mean time a commit took over the rate window.", "worker")
	dCommitMax       = desc("worker_commit_latency_max_seconds", "Longest time a commit took since the worker started.", "worker")
	dWorkerRebal     = desc("worker_rebalances_total", "Assignments the worker received.", "worker")
	dTaskProcessed   = desc("task_records_processed_total", "Records the task took from its queues.", "task", "worker")
	dTaskRate        = desc("task_records_per_second", "Records the task processed per second over the rate window.", "task", "worker")
	dTaskTime        = desc("task_processing_seconds_total", "Time spent processing the task's records.", "task", "worker")
	dTaskBuffered    = desc("task_buffered_records", "Records in the task's queues.", "task", "worker")
	dTaskStreamTime  = desc("task_stream_time_seconds", "The task's stream time, in seconds since the epoch (absent before its first record).", "task", "worker")
	dTaskRestoring   = desc("task_restoring", "1 while the task restores its stores, else 0.", "task", "worker")
	dNodeIn          = desc("node_records_in_total", "Records the node received.", "node", "subtopology")
	dNodeOut         = desc("node_records_out_total", "Records the node forwarded (a sink: handed to the producer).", "node", "subtopology")
	dNodeRate        = desc("node_records_per_second", "Records the node received per second over the rate window.", "node", "subtopology")
	dNodeTime        = desc("node_processing_seconds_total", "Time spent in the node itself, children excluded (estimated from sampled records).", "node", "subtopology")
	dNodeUtil        = desc("node_utilization_ratio", "The node's processing time over wall time over the rate window: the share of one worker it takes.", "node", "subtopology")
	dPartLag         = desc("partition_lag_records", "The partition's end minus the offset of the next record to process (absent while unknown).", "topic", "partition", "task", "worker")
	dPartBuffered    = desc("partition_buffered_records", "The partition's records fetched and not yet processed.", "topic", "partition", "task", "worker")
	dPartPaused      = desc("partition_paused", "1 while fetching the partition is paused because its buffer is full.", "topic", "partition", "task", "worker")
	dPartPauses      = desc("partition_pauses_total", "Times fetching the partition was paused.", "topic", "partition", "task", "worker")
	dPartPausedTime  = desc("partition_paused_seconds_total", "Time fetching the partition was paused.", "topic", "partition", "task", "worker")
	dPartThrashing   = desc("partition_thrashing", "1 while the partition pauses and resumes more than the bound over the rate window.", "topic", "partition", "task", "worker")
	dPartShed        = desc("partition_shed_records_total", "The partition's records the load-shedding policy dropped.", "topic", "partition", "task", "worker")
	dPartLatency50   = desc("partition_latency_p50_seconds", "Median end-to-end latency (processing wall clock minus record timestamp) over the rate window.", "topic", "partition", "task", "worker")
	dPartLatency99   = desc("partition_latency_p99_seconds", "99th percentile of the end-to-end latency over the rate window.", "topic", "partition", "task", "worker")
	dStoreBytes      = desc("store_bytes", "The store engine's estimate of the store's size.", "store", "task")
	dStoreKeys       = desc("store_keys", "The store engine's estimate of its number of keys.", "store", "task")
	dRestoreDone     = desc("restore_done_records", "Changelog records the store restored so far.", "store", "task")
	dRestoreLeftS    = desc("restore_left_records", "Changelog records the store still has to restore.", "store", "task")
	dRestoreRate     = desc("restore_records_per_second", "The store's restore rate over the rate window.", "store", "task")
	dRestoreETA      = desc("restore_eta_seconds", "Time the store's restore has left at that rate (0 when unknown).", "store", "task")

	allDescs = []*prometheus.Desc{dProcessed, dProduced, dChangelog, dRestored, dRestoreLeft, dPunctuations, dDropped,
		dLate, dLateWritten, dIdleAdvances, dCommits, dAborts, dRestarts, dEnforced, dSkipped, dDeadLettered, dRebalances,
		dShed, dPaused, dPausedMax, dWorkerTasks, dWorkerProcessed, dWorkerRate, dWorkerBusy, dWorkerUtil, dWorkerHeadroom,
		dWorkerCommits, dCommitLatency, dCommitMax, dWorkerRebal, dTaskProcessed, dTaskRate, dTaskTime, dTaskBuffered,
		dTaskStreamTime, dTaskRestoring, dNodeIn, dNodeOut, dNodeRate, dNodeTime, dNodeUtil, dPartLag, dPartBuffered,
		dPartPaused, dPartPauses, dPartPausedTime, dPartThrashing, dPartShed, dPartLatency50, dPartLatency99, dStoreBytes, dStoreKeys,
		dRestoreDone, dRestoreLeftS, dRestoreRate, dRestoreETA}
)

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range allDescs {
		ch <- d
	}
}

// Collect implements prometheus.Collector: one Metrics snapshot per call.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	m := c.src.Metrics()
	e := emitter{ch: ch, app: c.appID}
	counter, gauge := prometheus.CounterValue, prometheus.GaugeValue

	e.emit(dProcessed, counter, float64(m.RecordsProcessed))
	e.emit(dProduced, counter, float64(m.RecordsProduced))
	e.emit(dChangelog, counter, float64(m.ChangelogRecords))
	e.emit(dRestored, counter, float64(m.RestoredRecords))
	e.emit(dRestoreLeft, gauge, float64(m.RestoreRemaining))
	e.emit(dPunctuations, counter, float64(m.Punctuations))
	e.emit(dDropped, counter, float64(m.Dropped))
	e.emit(dLate, counter, float64(m.LateRecords))
	e.emit(dLateWritten, counter, float64(m.LateRecordsWritten))
	e.emit(dIdleAdvances, counter, float64(m.IdleWindowAdvances))
	e.emit(dCommits, counter, float64(m.Commits))
	e.emit(dAborts, counter, float64(m.TransactionsAborted))
	e.emit(dRestarts, counter, float64(m.WorkerRestarts))
	e.emit(dEnforced, counter, float64(m.EnforcedProcessing))
	for _, k := range []kstream.ErrorKind{kstream.DeserializationErrorKind, kstream.ProcessingErrorKind, kstream.ProductionErrorKind} {
		e.emit(dSkipped, counter, float64(m.Skipped[k]), k.String())
		e.emit(dDeadLettered, counter, float64(m.DeadLettered[k]), k.String())
	}
	e.emit(dRebalances, counter, float64(m.Rebalances))
	e.emit(dShed, counter, float64(m.Shed))
	e.emit(dPaused, gauge, float64(m.Paused))
	e.emit(dPausedMax, gauge, float64(m.MaxPaused))

	for _, w := range m.Workers {
		l := strconv.Itoa(w.Worker)
		e.emit(dWorkerTasks, gauge, float64(w.Tasks), l)
		e.emit(dWorkerProcessed, counter, float64(w.RecordsProcessed), l)
		e.emit(dWorkerRate, gauge, w.RecordsPerSecond, l)
		e.emit(dWorkerBusy, counter, w.BusyTime.Seconds(), l)
		e.emit(dWorkerUtil, gauge, w.Utilization, l)
		e.emit(dWorkerHeadroom, gauge, w.Headroom, l)
		e.emit(dWorkerCommits, counter, float64(w.Commits), l)
		e.emit(dCommitLatency, gauge, w.CommitLatency.Seconds(), l)
		e.emit(dCommitMax, gauge, w.CommitLatencyMax.Seconds(), l)
		e.emit(dWorkerRebal, counter, float64(w.Rebalances), l)
	}
	for _, t := range m.TaskStats {
		task, w := t.ID.String(), strconv.Itoa(t.Worker)
		e.emit(dTaskProcessed, counter, float64(t.RecordsProcessed), task, w)
		e.emit(dTaskRate, gauge, t.RecordsPerSecond, task, w)
		e.emit(dTaskTime, counter, t.ProcessingTime.Seconds(), task, w)
		e.emit(dTaskBuffered, gauge, float64(t.Buffered), task, w)
		if t.StreamTime >= 0 {
			e.emit(dTaskStreamTime, gauge, float64(t.StreamTime)/1000, task, w)
		}
		e.emit(dTaskRestoring, gauge, boolValue(t.State == "restoring"), task, w)
	}
	for _, n := range m.Nodes {
		sub := strconv.Itoa(n.Subtopology)
		e.emit(dNodeIn, counter, float64(n.RecordsIn), n.Name, sub)
		e.emit(dNodeOut, counter, float64(n.RecordsOut), n.Name, sub)
		e.emit(dNodeRate, gauge, n.RecordsPerSecond, n.Name, sub)
		e.emit(dNodeTime, counter, n.ProcessingTime.Seconds(), n.Name, sub)
		e.emit(dNodeUtil, gauge, n.Utilization, n.Name, sub)
	}
	for _, p := range m.Partitions {
		ls := []string{p.Topic, strconv.Itoa(int(p.Partition)), p.Task.String(), strconv.Itoa(p.Worker)}
		if p.Lag >= 0 {
			e.emit(dPartLag, gauge, float64(p.Lag), ls...)
		}
		e.emit(dPartBuffered, gauge, float64(p.Buffered), ls...)
		e.emit(dPartPaused, gauge, boolValue(p.Paused), ls...)
		e.emit(dPartPauses, counter, float64(p.Pauses), ls...)
		e.emit(dPartPausedTime, counter, p.PausedTime.Seconds(), ls...)
		e.emit(dPartThrashing, gauge, boolValue(p.Thrashing), ls...)
		e.emit(dPartShed, counter, float64(p.Shed), ls...)
		e.emit(dPartLatency50, gauge, p.LatencyP50.Seconds(), ls...)
		e.emit(dPartLatency99, gauge, p.LatencyP99.Seconds(), ls...)
	}
	for _, s := range m.Stores {
		task := s.Task.String()
		if s.ApproxBytes >= 0 {
			e.emit(dStoreBytes, gauge, float64(s.ApproxBytes), s.Name, task)
		}
		if s.ApproxKeys >= 0 {
			e.emit(dStoreKeys, gauge, float64(s.ApproxKeys), s.Name, task)
		}
	}
	for _, r := range m.Restores {
		task := r.Task.String()
		e.emit(dRestoreDone, gauge, float64(r.Done), r.Store, task)
		e.emit(dRestoreLeftS, gauge, float64(r.Left), r.Store, task)
		e.emit(dRestoreRate, gauge, r.RecordsPerSecond, r.Store, task)
		e.emit(dRestoreETA, gauge, r.ETA.Seconds(), r.Store, task)
	}
}

// emitter sends const metrics with the application id as first label.
type emitter struct {
	ch  chan<- prometheus.Metric
	app string
}

func (e emitter) emit(d *prometheus.Desc, t prometheus.ValueType, v float64, labels ...string) {
	e.ch <- prometheus.MustNewConstMetric(d, t, v, append([]string{e.app}, labels...)...)
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
