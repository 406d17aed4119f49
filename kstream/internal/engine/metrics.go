package engine

import (
	"sync/atomic"
	"time"
)

// Counters are the counters of one App, shared by its workers and tasks.
type Counters struct {
	Processed       atomic.Int64
	Punctuations    atomic.Int64
	SkippedDeser    atomic.Int64
	SkippedProcess  atomic.Int64
	SkippedProduce  atomic.Int64
	DeadLetterDeser atomic.Int64
	DeadLetterProc  atomic.Int64
	DeadLetterProd  atomic.Int64
	Produced        atomic.Int64
	// changelogProduced counts acknowledged changelog records; restored
	// counts changelog records applied by restore.
	ChangelogProduced atomic.Int64
	Restored          atomic.Int64
	Dropped           atomic.Int64
	Late              atomic.Int64 // records dropped by windowed operators as late
	LateWritten       atomic.Int64 // late records written to a late-records topic
	IdleAdvances      atomic.Int64 // windowed stream time advanced by the wall clock
	GlobalRecords     atomic.Int64
	Commits           atomic.Int64
	Aborts            atomic.Int64 // aborted transactions (exactly-once)
	Restarts          atomic.Int64 // workers restarted after a fencing
	Paused            atomic.Int64 // partitions paused for backpressure now
	MaxPaused         atomic.Int64 // the largest value paused has had
	// EnforcedProcessing counts records processed while an input partition
	// of their task was empty after its idle wait (Task.Process).
	EnforcedProcessing atomic.Int64
	// Shed counts records dropped by the sources' load-shedding policies.
	Shed atomic.Int64
}

// addPaused adds d (+1 on pause, -1 on resume) to the paused partitions and
// keeps the maximum.
func (m *Counters) AddPaused(d int64) {
	now := m.Paused.Add(d)
	for {
		old := m.MaxPaused.Load()
		if now <= old || m.MaxPaused.CompareAndSwap(old, now) {
			return
		}
	}
}

func (m *Counters) Skipped(k ErrorKind) {
	switch k {
	case DeserializationErrorKind:
		m.SkippedDeser.Add(1)
	case ProcessingErrorKind:
		m.SkippedProcess.Add(1)
	default:
		m.SkippedProduce.Add(1)
	}
}

func (m *Counters) DeadLettered(k ErrorKind) {
	switch k {
	case DeserializationErrorKind:
		m.DeadLetterDeser.Add(1)
	case ProcessingErrorKind:
		m.DeadLetterProc.Add(1)
	default:
		m.DeadLetterProd.Add(1)
	}
}

// Metrics is a snapshot of an App's counters since it started.
type Metrics struct {
	// RecordsProcessed counts input records taken through the topology
	// (including ones that failed and were skipped or dead-lettered), each
	// once: where it enters the application, not again when it comes back
	// from a repartition topic.
	RecordsProcessed int64
	// RecordsProduced counts output records (sinks, repartition topics,
	// dead letters) written to Kafka and acknowledged; changelog records
	// are counted in ChangelogRecords.
	RecordsProduced int64
	// ChangelogRecords counts records written to store changelogs and
	// acknowledged.
	ChangelogRecords int64
	// RestoredRecords counts changelog records applied to stores while
	// restoring them (see the App's restore), since the App started.
	RestoredRecords int64
	// RestoreRemaining is the number of changelog records the tasks that
	// are restoring now still have to read (offsets, so an estimate on
	// compacted topics). Refreshed with Lag.
	RestoreRemaining int64
	// RestoringTasks are the tasks restoring their stores now, sorted;
	// they are also in Tasks.
	RestoringTasks []TaskID
	// StandbyTasks are the standby tasks this instance keeps now (warm-up
	// replicas included), sorted: copies of other instances' tasks'
	// changelogged stores, updated from their changelogs (StandbyReplicas).
	StandbyTasks []TaskID
	// StandbyLag is, per standby task, how many changelog records its
	// stores are behind the end of its changelogs as of the latest fetch
	// (offsets, so an estimate on compacted topics): what a failover to
	// this instance would restore. Refreshed with Lag.
	StandbyLag map[TaskID]int64
	// Punctuations counts punctuator calls.
	Punctuations int64
	// Dropped counts records an operator dropped by design: tombstones
	// and records with a null key reaching an aggregation.
	Dropped int64
	// LateRecords counts records a windowed aggregation dropped because
	// their window had closed (its end plus grace was at or before stream
	// time; for sliding and session windows, their own rule), once per
	// window refused.
	LateRecords int64
	// LateRecordsWritten counts late records sent to a late-records topic
	// (LateRecordsTo). A failed write is a production error, as for any
	// output (a topic that does not exist, for one).
	LateRecordsWritten int64
	// IdleWindowAdvances counts the times a windowed aggregation advanced
	// its stream time with the wall clock on a quiet input
	// (CloseWindowsWhenIdle).
	IdleWindowAdvances int64
	// Commits counts offset commits (or committed transactions).
	Commits int64
	// TransactionsAborted counts, under exactly-once, the transactions a
	// worker aborted (after a rebalance took partitions away, a commit the
	// group refused, a production failure of the transaction). Each abort
	// rewinds the worker's input to its committed offsets and restores the
	// stores the transaction wrote.
	TransactionsAborted int64
	// WorkerRestarts counts, under exactly-once, the workers that were
	// fenced (their producer epoch or group generation was taken over, as
	// happens to a zombie that resumes after its session expired) or whose
	// transactional producer failed otherwise, and so replaced their client
	// and rejoined the group with fresh tasks.
	WorkerRestarts int64
	// EnforcedProcessing counts records that a task with several input
	// partitions processed while one of them was empty and caught up, after
	// waiting MaxTaskIdle for its records (with MaxTaskIdle 0, at once):
	// each may be out of timestamp order with records that partition gets
	// later. Records processed while every input partition had records, or
	// with NoTaskIdle, are not counted. (Kafka Streams:
	// enforced-processing-total.)
	EnforcedProcessing int64
	// Skipped counts records dropped by an error handler, by ErrorKind.
	Skipped map[ErrorKind]int64
	// DeadLettered counts records sent to a dead-letter topic, by ErrorKind.
	DeadLettered map[ErrorKind]int64
	// Lag is the consumer lag of each input partition assigned to this
	// instance, by topic and partition: the partition's high watermark (from
	// the latest fetch that returned its records) minus the offset of the
	// next record to process. A partition appears once a fetch returned
	// records for it. Refreshed by the workers about every 100ms.
	Lag map[string]map[int32]int64
	// Tasks are the tasks this instance runs now, sorted.
	Tasks []TaskID
	// Paused is the number of input partitions whose fetching is paused
	// now because their buffer is full (see BufferedRecordsPerPartition).
	Paused int
	// MaxPaused is the largest Paused has been since the App started: a
	// non-zero value says backpressure kicked in at some point.
	MaxPaused int

	// Time is when the snapshot was taken.
	Time time.Time
	// Rebalances counts the assignments the workers received.
	Rebalances int64
	// Shed counts records the load-shedding policies dropped (ShedLoad):
	// not processed, so not in RecordsProcessed, but committed.
	Shed int64
	// The detailed sections, each sorted by its identity (see
	// WorkerMetrics, TaskMetrics, NodeMetrics, PartitionMetrics,
	// StoreMetrics, RestoreMetrics).
	Workers    []WorkerMetrics
	TaskStats  []TaskMetrics
	Nodes      []NodeMetrics
	Partitions []PartitionMetrics
	Stores     []StoreMetrics
	Restores   []RestoreMetrics
}

func (m *Counters) Snapshot() Metrics {
	return Metrics{
		RecordsProcessed:    m.Processed.Load(),
		RecordsProduced:     m.Produced.Load(),
		ChangelogRecords:    m.ChangelogProduced.Load(),
		RestoredRecords:     m.Restored.Load(),
		Punctuations:        m.Punctuations.Load(),
		Commits:             m.Commits.Load(),
		TransactionsAborted: m.Aborts.Load(),
		WorkerRestarts:      m.Restarts.Load(),
		Dropped:             m.Dropped.Load(),
		LateRecords:         m.Late.Load(),
		LateRecordsWritten:  m.LateWritten.Load(),
		IdleWindowAdvances:  m.IdleAdvances.Load(),
		EnforcedProcessing:  m.EnforcedProcessing.Load(),
		Shed:                m.Shed.Load(),
		Paused:              int(m.Paused.Load()),
		MaxPaused:           int(m.MaxPaused.Load()),
		Skipped: map[ErrorKind]int64{
			DeserializationErrorKind: m.SkippedDeser.Load(),
			ProcessingErrorKind:      m.SkippedProcess.Load(),
			ProductionErrorKind:      m.SkippedProduce.Load(),
		},
		DeadLettered: map[ErrorKind]int64{
			DeserializationErrorKind: m.DeadLetterDeser.Load(),
			ProcessingErrorKind:      m.DeadLetterProc.Load(),
			ProductionErrorKind:      m.DeadLetterProd.Load(),
		},
	}
}

// The detailed sections of a Metrics snapshot (Workers, TaskStats, Nodes,
// Partitions, Stores, Restores). Each section is sorted by its identity;
// counters are totals since the App started, rates and utilization are
// over the last RateWindow.

// RateWindow is the span over which rates (records per second) and
// utilization in a Metrics snapshot are computed.
const RateWindow = 10 * time.Second

// WorkerMetrics are the numbers of one worker (one goroutine, one Kafka
// client) of this instance.
type WorkerMetrics struct {
	// Worker is the worker's index (0 to Workers(n)-1).
	Worker int
	// Tasks is the number of active tasks the worker runs now.
	Tasks int
	// RecordsProcessed counts input records the worker took through its
	// tasks (each input record once, at its first sub-topology: a record
	// read again from a repartition topic counts again).
	RecordsProcessed int64
	// RecordsPerSecond is the rate of RecordsProcessed over RateWindow.
	RecordsPerSecond float64
	// BusyTime is the time the worker spent processing records,
	// punctuating and committing (not waiting in a poll).
	BusyTime time.Duration
	// Utilization is busy time over wall time over RateWindow, in [0, 1];
	// Headroom is 1 - Utilization: the share of the worker's capacity
	// still free.
	Utilization float64
	Headroom    float64
	// Commits counts the worker's commits; CommitLatency is the mean time
	// one took over RateWindow (flush caches and producer, commit offsets
	// or end the transaction), CommitLatencyMax the longest since start.
	Commits          int64
	CommitLatency    time.Duration
	CommitLatencyMax time.Duration
	// Rebalances counts the assignments the worker received.
	Rebalances int64
}

// TaskMetrics are the numbers of one active task of this instance.
type TaskMetrics struct {
	ID     TaskID
	Worker int
	// State is "restoring" while the task restores its stores, else
	// "running".
	State string
	// RecordsProcessed counts records the task took from its queues.
	RecordsProcessed int64
	// RecordsPerSecond is the rate of RecordsProcessed over RateWindow.
	RecordsPerSecond float64
	// ProcessingTime is the time spent processing the task's records.
	ProcessingTime time.Duration
	// Buffered is the number of records in the task's queues now.
	Buffered int
	// StreamTime is the task's stream time (milliseconds since the epoch),
	// -1 before its first record.
	StreamTime int64
}

// NodeMetrics are the numbers of one node of the topology, summed over the
// active tasks of this instance.
type NodeMetrics struct {
	// Name is the node's name as Describe shows it; Subtopology its
	// sub-topology.
	Name        string
	Subtopology int
	// RecordsIn counts records the node received; RecordsOut records it
	// forwarded to its children (for a sink, records it handed to the
	// producer).
	RecordsIn  int64
	RecordsOut int64
	// RecordsPerSecond is the rate of RecordsIn over RateWindow.
	RecordsPerSecond float64
	// ProcessingTime is the time spent in the node itself, its children
	// excluded.
	ProcessingTime time.Duration
	// Utilization is ProcessingTime over wall time over RateWindow: the
	// share of one worker the node takes.
	Utilization float64
}

// PartitionMetrics are the numbers of one input partition assigned to this
// instance.
type PartitionMetrics struct {
	Topic     string
	Partition int32
	Task      TaskID
	Worker    int
	// Lag is the partition's end (last stable offset of the latest fetch)
	// minus the offset of the next record to process; -1 while unknown.
	Lag int64
	// Buffered is the number of the partition's records fetched and not
	// yet processed.
	Buffered int
	// Paused is whether fetching is paused now because the buffer is full;
	// Pauses counts the times it was paused, PausedTime the total time.
	Paused     bool
	Pauses     int64
	PausedTime time.Duration
	// Thrashing is whether the partition paused and resumed more than the
	// thrashing bound over RateWindow: the instance cannot keep up.
	Thrashing bool
	// Shed counts records the load-shedding policy dropped.
	Shed int64
	// LatencyP50 and LatencyP99 are the end-to-end latency (wall clock at
	// processing minus the record's timestamp) over RateWindow.
	LatencyP50 time.Duration
	LatencyP99 time.Duration
}

// StoreMetrics are the numbers of one store of one task.
type StoreMetrics struct {
	Name string
	Task TaskID
	// ApproxBytes is the store engine's estimate of its size on disk (or
	// in memory); ApproxKeys its estimate of the number of keys, -1 when
	// the engine cannot tell.
	ApproxBytes int64
	ApproxKeys  int64
}

// RestoreMetrics are the progress of one store of one task restoring from
// its changelog.
type RestoreMetrics struct {
	Store string
	Task  TaskID
	// Done is the changelog records restored so far, Left the records
	// still to read (offsets, so an estimate on compacted topics).
	Done int64
	Left int64
	// RecordsPerSecond is the restore rate over RateWindow, ETA the time
	// left at that rate (0 when unknown).
	RecordsPerSecond float64
	ETA              time.Duration
}
