package kstream

import "sync/atomic"

// metrics are the counters of one App, shared by its workers and tasks.
type metrics struct {
	processed       atomic.Int64
	punctuations    atomic.Int64
	skippedDeser    atomic.Int64
	skippedProcess  atomic.Int64
	skippedProduce  atomic.Int64
	deadLetterDeser atomic.Int64
	deadLetterProc  atomic.Int64
	deadLetterProd  atomic.Int64
	produced        atomic.Int64
	// changelogProduced counts acknowledged changelog records; restored
	// counts changelog records applied by restore.
	changelogProduced atomic.Int64
	restored          atomic.Int64
	dropped           atomic.Int64
	globalRecords     atomic.Int64
	commits           atomic.Int64
	aborts            atomic.Int64 // aborted transactions (exactly-once)
	restarts          atomic.Int64 // workers restarted after a fencing
	paused            atomic.Int64 // partitions paused for backpressure now
	maxPaused         atomic.Int64 // the largest value paused has had
}

// addPaused adds d (+1 on pause, -1 on resume) to the paused partitions and
// keeps the maximum.
func (m *metrics) addPaused(d int64) {
	now := m.paused.Add(d)
	for {
		old := m.maxPaused.Load()
		if now <= old || m.maxPaused.CompareAndSwap(old, now) {
			return
		}
	}
}

func (m *metrics) skipped(k ErrorKind) {
	switch k {
	case DeserializationErrorKind:
		m.skippedDeser.Add(1)
	case ProcessingErrorKind:
		m.skippedProcess.Add(1)
	default:
		m.skippedProduce.Add(1)
	}
}

func (m *metrics) deadLettered(k ErrorKind) {
	switch k {
	case DeserializationErrorKind:
		m.deadLetterDeser.Add(1)
	case ProcessingErrorKind:
		m.deadLetterProc.Add(1)
	default:
		m.deadLetterProd.Add(1)
	}
}

// Metrics is a snapshot of an App's counters since it started.
type Metrics struct {
	// RecordsProcessed counts input records taken through the topology
	// (including ones that failed and were skipped or dead-lettered).
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
	// Punctuations counts punctuator calls.
	Punctuations int64
	// Dropped counts records an operator dropped by design: tombstones
	// and records with a null key reaching an aggregation.
	Dropped int64
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
}

func (m *metrics) snapshot() Metrics {
	return Metrics{
		RecordsProcessed:    m.processed.Load(),
		RecordsProduced:     m.produced.Load(),
		ChangelogRecords:    m.changelogProduced.Load(),
		RestoredRecords:     m.restored.Load(),
		Punctuations:        m.punctuations.Load(),
		Commits:             m.commits.Load(),
		TransactionsAborted: m.aborts.Load(),
		WorkerRestarts:      m.restarts.Load(),
		Dropped:             m.dropped.Load(),
		Paused:              int(m.paused.Load()),
		MaxPaused:           int(m.maxPaused.Load()),
		Skipped: map[ErrorKind]int64{
			DeserializationErrorKind: m.skippedDeser.Load(),
			ProcessingErrorKind:      m.skippedProcess.Load(),
			ProductionErrorKind:      m.skippedProduce.Load(),
		},
		DeadLettered: map[ErrorKind]int64{
			DeserializationErrorKind: m.deadLetterDeser.Load(),
			ProcessingErrorKind:      m.deadLetterProc.Load(),
			ProductionErrorKind:      m.deadLetterProd.Load(),
		},
	}
}
