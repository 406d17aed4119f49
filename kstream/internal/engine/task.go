package engine

import (
	"fmt"
	"log/slog"
	"math"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamwork-go/streamwork/kstream/internal/cache"
	"github.com/streamwork-go/streamwork/state"
)

// rawRecord is a record as fetched from Kafka (or piped in by the test
// driver): bytes plus coordinates.
type rawRecord = kgo.Record

// PartitionRoundRobin, as a record's Partition, asks the Collector to spread
// records over the topic's partitions in turn.
const PartitionRoundRobin = -2

// Collector takes the records a task writes. send is asynchronous: the
// runtime reports failures to the production handler. A record with
// Partition < 0 is partitioned by its key (Kafka's murmur2 hash, as the Java
// client does); Partition >= 0 is written to that partition.
type Collector interface {
	Send(t *Task, r *kgo.Record)
}

// TaskEnv is what every task of one worker shares.
type TaskEnv struct {
	AppID     string
	Logger    *slog.Logger
	Collector Collector
	Counters  *Counters
	Now       func() time.Time // the wall clock (punctuation, idle waits)
	// MaxTaskIdle is how long a task with several input partitions waits
	// for records on an empty partition that is caught up before it
	// processes without it (Config.MaxTaskIdle, Kafka Streams'
	// max.task.idle.ms; see Task.Process): 0 does not wait for caught-up
	// partitions, but does for those whose lag is unknown or positive; a
	// negative value never waits.
	MaxTaskIdle time.Duration
	OnDeser     ErrorHandler
	OnProcess   ErrorHandler
	OnProduce   ErrorHandler
	// globals are the instance's global table stores, read-only for tasks.
	Globals map[string]state.Store
	// ShedLog logs the records load shedding drops (nil: not logged);
	// OnShed, when set, is called with the partition of each (the worker
	// counts them per partition).
	ShedLog *ShedLog
	OnShed  func(topic string, partition int32)

	// State. topo has the store specs; state opens engine stores (nil:
	// every store in memory, as in the test driver); cache is the record
	// cache budget (nil or max 0: no caches).
	Topo  *Topology
	State StateOpener
	Cache *cache.Budget
}

// StateOpener opens the engine stores of tasks (the runtime's state
// directory).
type StateOpener interface {
	// Persistent reports whether spec's stores are on disk.
	Persistent(spec *StoreSpec) bool
	// Open opens task id's instance of spec's store and returns it with its
	// directory.
	Open(id TaskID, spec *StoreSpec) (state.Store, string, error)
	// Destroy removes the store in dir from disk.
	Destroy(dir string) error
}

// Task runs one sub-topology for one partition number. All of its methods
// are called from the goroutine of the worker that owns it.
type Task struct {
	ID  TaskID
	Sub *Subtopology
	Env *TaskEnv

	ByStore     map[string]*TaskStore
	StateStores []*TaskStore // in the topology's store order
	Instances   []Instance   // in the sub-topology's node order
	ByNode      map[*Node]Instance
	Queues      []*RecordQueue // one per source topic, in sorted topic order
	ByTopic     map[string]*RecordQueue

	StreamTime  int64 // -1 before the first record
	streamPunct punctuationQueue
	wallPunct   punctuationQueue

	// The record being processed, and failure state for it. curTs is its
	// timestamp (ms), or the time a punctuator fired for.
	Cur      *rawRecord
	CurTs    int64
	CurNode  string
	Failure  error
	FailNode string
	FailKind ErrorKind

	// Views are what nodes offer interactive queries beyond the store
	// itself, by store name (a windowed aggregation's window or session
	// store), set in Init; safe for reads from other goroutines.
	Views map[string]any
	// shared holds what node instances of one task share, by name (the two
	// sides of a join: their stream time).
	shared map[string]any

	// started: the node instances are initialized (after restore); the
	// task may process. closed: close ran.
	Started bool
	Closed  bool
	// txnDirty (exactly-once): the task processed a record or fired a
	// punctuator since its last commit, so the open transaction holds its
	// effects (outputs, store and changelog writes). When the transaction
	// aborts, a dirty task is closed dirty and made again.
	TxnDirty bool

	// Statistics (stats.go): the task's counters, and its nodes' by index
	// in Sub.Nodes. timing: the current record is timed node by node;
	// sampleIn: records until the next timed one; nowMs: the wall clock
	// (Env.Now) of the running Process call.
	Stats    TaskStats
	Nodes    []NodeStats
	nodeIdx  map[*Node]int
	timing   bool
	sampleIn int
	nowMs    int64
	// Processed counts the records the task took from its queues, those
	// of internal topics included (Counters.Processed counts each input
	// record once, where it enters the application). Task goroutine only.
	Processed int64
}

// recordQueue buffers the fetched records of one input partition.
type RecordQueue struct {
	Topic     string
	Partition int32
	source    SourceInstance
	// internal: the topic is one of the application's internal topics
	// (a repartition topic): its records were counted as input where
	// they entered the application.
	internal  bool
	recs      []*rawRecord
	ts        []int64
	head      int
	next      int64 // offset to commit: one past the last record processed
	committed int64 // the offset last handed out by offsetsToCommit
	epoch     int32 // leader epoch of the last record processed, -1 if unknown

	// What the task knows of the partition in Kafka, for idle waits
	// (idle.go): end is its end offset as last seen (the last stable
	// offset: the runtime reads committed), start where fetching it
	// starts while the task has taken no record of it; -1 when unknown.
	end, start int64
	// idleDeadline is when the task stops waiting for records on this
	// partition while it is empty and caught up (zero: no wait running);
	// enforced: the task processed without it since then (logged once).
	idleDeadline time.Time
	enforced     bool

	// shed is the source's load-shedding policy (nil: none); sourceName
	// names the source node.
	shed       *ShedPolicy
	sourceName string
	// Latency is the end-to-end latency of the partition's records;
	// srcStats the statistics of its source node.
	Latency  LatencyHist
	srcStats *NodeStats
}

func (q *RecordQueue) Len() int { return len(q.recs) - q.head }

func (q *RecordQueue) push(r *rawRecord, ts int64) {
	if q.head > 0 && q.head == len(q.recs) {
		q.recs, q.ts, q.head = q.recs[:0], q.ts[:0], 0
	} else if q.head > 1024 && q.head*2 >= len(q.recs) {
		n := copy(q.recs, q.recs[q.head:])
		copy(q.ts, q.ts[q.head:])
		clear(q.recs[n:])
		q.recs, q.ts, q.head = q.recs[:n], q.ts[:n], 0
	}
	q.recs = append(q.recs, r)
	q.ts = append(q.ts, ts)
}

func (q *RecordQueue) pop() (*rawRecord, int64) {
	r, ts := q.recs[q.head], q.ts[q.head]
	q.recs[q.head] = nil
	q.head++
	return r, ts
}

// SourceInstance is the per-task instance of a source node.
type SourceInstance interface {
	Instance
	// timestamp returns the event time of r in milliseconds.
	Timestamp(r *rawRecord) (int64, error)
	// receiveRaw decodes r and forwards it.
	ReceiveRaw(r *rawRecord, ts int64)
}

// NewTask opens a task and starts it: for tasks that need nothing
// restored (the test driver's, and tests').
func NewTask(id TaskID, sub *Subtopology, env *TaskEnv) (*Task, error) {
	t, err := OpenTask(id, sub, env)
	if err != nil {
		return nil, err
	}
	if err := t.Start(); err != nil {
		return nil, err
	}
	return t, nil
}

// OpenTask makes a task, opens its stores and makes its node instances,
// without initializing them: the runtime restores the stores first, then
// calls start.
func OpenTask(id TaskID, sub *Subtopology, env *TaskEnv) (*Task, error) {
	t := &Task{ID: id, Sub: sub, Env: env, StreamTime: -1, ByTopic: make(map[string]*RecordQueue)}
	if err := t.OpenStores(); err != nil {
		_ = t.CloseStores()
		return nil, err
	}
	t.ByNode = make(map[*Node]Instance, len(sub.Nodes))
	t.Nodes = make([]NodeStats, len(sub.Nodes))
	t.nodeIdx = make(map[*Node]int, len(sub.Nodes))
	t.sampleIn = 1 // time the first record
	for i, n := range sub.Nodes {
		t.nodeIdx[n] = i
		i := n.NewInstance()
		t.ByNode[n] = i
		t.Instances = append(t.Instances, i)
	}
	full := sub.SourceTopics(env.AppID)
	for i, tp := range sub.Topics {
		src, ok := t.ByNode[sub.Sources[tp]].(SourceInstance)
		if !ok {
			_ = t.CloseStores()
			return nil, fmt.Errorf("%w: node %q is not a source", ErrTopology, sub.Sources[tp].Name)
		}
		sn := sub.Sources[tp]
		q := &RecordQueue{Topic: full[i], Partition: id.Partition, source: src, internal: sub.Internal[tp], shed: sn.Shed, sourceName: sn.Name,
			next: -1, committed: -1, epoch: -1, end: -1, start: -1, srcStats: t.NodeStat(sn)}
		t.Queues = append(t.Queues, q)
		t.ByTopic[full[i]] = q
	}
	return t, nil
}

// start initializes the node instances, in the sub-topology's node order.
// On failure it closes the task and returns a *ProcessingError.
func (t *Task) Start() error {
	for _, n := range t.Sub.Nodes {
		children := make([]Instance, len(n.Children))
		for j, c := range n.Children {
			children[j] = t.ByNode[c]
		}
		t.CurNode = n.Name
		if err := t.Guard(func() error { return t.ByNode[n].Init(t, n, children) }); err != nil {
			t.Closed = true
			_ = t.CloseInstances()
			_ = t.CloseStores()
			return &ProcessingError{Task: t.ID, Node: n.Name, Err: fmt.Errorf("init: %w", err)}
		}
	}
	t.CurNode = ""
	t.Started = true
	return nil
}

// add buffers a fetched record. It returns how many records of that
// partition are now buffered.
//
// A control record (a transaction marker; the worker's client keeps them)
// is buffered too, in order, with the lowest timestamp so that it leaves
// the queue as soon as it is at the head: it is never processed, it only
// moves the partition's offset to commit past it (see processOne), so that
// a partition whose last records are a transaction's is committed up to its
// end.
func (t *Task) Add(r *rawRecord) int {
	q := t.ByTopic[r.Topic]
	if q == nil {
		return 0
	}
	if r.Attrs.IsControl() {
		q.push(r, math.MinInt64)
		return q.Len()
	}
	ts, err := q.source.Timestamp(r)
	if err != nil {
		// Ordered by the log timestamp; the error surfaces when the record
		// is processed, where the deserialization handler decides.
		ts = Millis(r.Timestamp)
	}
	q.push(r, ts)
	return q.Len()
}

// buffered returns the number of records buffered for topic.
func (t *Task) Buffered(topic string) int {
	if q := t.ByTopic[topic]; q != nil {
		return q.Len()
	}
	return 0
}

// totalBuffered returns the number of records buffered for all partitions.
func (t *Task) TotalBuffered() int {
	n := 0
	for _, q := range t.Queues {
		n += q.Len()
	}
	return n
}

// Process processes up to max buffered records, in timestamp order across
// the task's partitions. Before each record it checks that the task is
// ready (Kafka Streams' PartitionGroup.readyToProcess, see idle.go): a task
// with several input partitions, some of them empty, waits while an empty
// partition's lag is unknown or positive (its records are on their way),
// and for up to Env.MaxTaskIdle for a caught-up one; once that wait is over
// it processes without it ("enforced processing", counted in
// Counters.EnforcedProcessing). Process is to be called also when nothing
// is buffered: that is when the wait for a partition that went quiet
// starts. A record its source's load-shedding policy drops is taken from
// the queue and committed without being processed (see ShedPolicy). It
// returns how many records it took (processed or shed), and an error only
// when an error handler decided to fail.
func (t *Task) Process(max int) (int, error) { return t.process(max, false) }

// Drain is Process without the wait for empty partitions: for buffered
// records that must be processed now (at-most-once processes those whose
// offsets it committed before a revoke or a shutdown).
func (t *Task) Drain(max int) (int, error) { return t.process(max, true) }

func (t *Task) process(max int, force bool) (n int, err error) {
	now := t.Env.Now()
	t.nowMs = Millis(now)
	if t.TotalBuffered() > 0 {
		// Processing time is wall time, whatever clock Env.Now is.
		start := time.Now()
		defer func() { t.Stats.ProcTime += time.Since(start) }()
	}
	for n < max {
		if !force {
			r := t.readiness(now)
			if !r.ready {
				break
			}
			if r.enforced {
				t.enforce(now)
			}
		}
		var q *RecordQueue
		for _, c := range t.Queues {
			if c.Len() == 0 {
				continue
			}
			if q == nil || c.ts[c.head] < q.ts[q.head] {
				q = c
			}
		}
		if q == nil {
			break
		}
		r, ts := q.pop()
		n++
		if q.shed != nil && !r.Attrs.IsControl() {
			if why := q.shed.reason(q, r); why != "" {
				t.shed(q, r, why)
				continue
			}
		}
		if err := t.processOne(q, r, ts); err != nil {
			return n, err
		}
	}
	return n, nil
}

func (t *Task) processOne(q *RecordQueue, r *rawRecord, ts int64) error {
	if r.Attrs.IsControl() {
		q.next = r.Offset + 1
		q.epoch = r.LeaderEpoch
		return nil
	}
	t.TxnDirty = true
	t.Cur = r
	t.CurTs = ts
	t.Failure = nil
	t.Stats.Processed++
	q.srcStats.In++
	if t.sampleIn--; t.sampleIn <= 0 {
		t.sampleIn, t.timing = SampleEvery, true
		t.Stats.Sampled++
	}
	if ts < 0 {
		t.Fail("", DeserializationErrorKind, fmt.Errorf("%w: %d", ErrInvalidTimestamp, ts))
	} else {
		if ts > t.StreamTime {
			t.StreamTime = ts
		}
		q.Latency.Observe(t.nowMs, ts)
		if t.timing {
			start := time.Now()
			t.GuardRecord(func() { q.source.ReceiveRaw(r, ts) })
			q.srcStats.Time += time.Since(start)
		} else {
			t.GuardRecord(func() { q.source.ReceiveRaw(r, ts) })
		}
	}
	t.timing = false
	q.next = r.Offset + 1
	q.epoch = r.LeaderEpoch
	t.Processed++
	if !q.internal {
		t.Env.Counters.Processed.Add(1)
	}
	var err error
	if t.Failure != nil {
		err = t.HandleFailure(r)
	}
	t.Cur = nil
	if err != nil {
		return err
	}
	if t.StreamTime >= 0 {
		return t.streamPunct.mayPunctuate(t, t.StreamTime, StreamTime)
	}
	return nil
}

// Shared returns the value node instances of the task share under name,
// made by mk the first time.
func (t *Task) Shared(name string, mk func() any) any {
	if t.shared == nil {
		t.shared = make(map[string]any)
	}
	v, ok := t.shared[name]
	if !ok {
		v = mk()
		t.shared[name] = v
	}
	return v
}

// SetView offers v to interactive queries of store (see Task.Views).
func (t *Task) SetView(store string, v any) {
	if t.Views == nil {
		t.Views = make(map[string]any)
	}
	t.Views[store] = v
}

// fail records that the current record failed at node.
func (t *Task) Fail(node string, kind ErrorKind, err error) {
	if t.Failure != nil {
		return
	}
	t.Failure, t.FailNode, t.FailKind = err, node, kind
}

// guardRecord runs fn, turning a panic into a failure of the current node.
func (t *Task) GuardRecord(fn func()) {
	defer func() {
		if p := recover(); p != nil {
			t.Fail(t.CurNode, ProcessingErrorKind, fmt.Errorf("%w: %v\n%s", ErrPanic, p, debug.Stack()))
		}
	}()
	fn()
}

// guard runs fn, turning a panic into an error.
func (t *Task) Guard(fn func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: %v\n%s", ErrPanic, p, debug.Stack())
		}
	}()
	return fn()
}

// handleFailure asks the error handler what to do with the failed record r
// (nil inside a punctuator).
func (t *Task) HandleFailure(r *rawRecord) error {
	kind, node, cause := t.FailKind, t.FailNode, t.Failure
	t.Failure = nil
	ec := &ErrorContext{Kind: kind, Task: t.ID, Node: node, Offset: -1, Err: cause}
	if r != nil {
		ec.Topic, ec.Partition, ec.Offset, ec.Timestamp = r.Topic, r.Partition, r.Offset, r.Timestamp
		ec.Key, ec.Value = r.Key, r.Value
		ec.Headers = FromKgoHeaders(r.Headers)
	}
	perr := &ProcessingError{Task: t.ID, Node: node, Topic: ec.Topic, Partition: ec.Partition, Offset: ec.Offset, Err: cause}
	h := t.Env.OnProcess
	switch kind {
	case DeserializationErrorKind:
		h = t.Env.OnDeser
	case ProductionErrorKind:
		h = t.Env.OnProduce
	}
	d := Fail
	if h != nil {
		d = h(ec)
	}
	switch d.Action {
	case ActionSkip:
		t.Env.Counters.Skipped(kind)
		t.Env.Logger.Warn("kstream: skipping failed record", "kind", kind.String(), "err", perr)
		return nil
	case ActionDeadLetter:
		if r == nil {
			t.Env.Counters.Skipped(kind)
			t.Env.Logger.Warn("kstream: failure in punctuator has no record to dead-letter; skipping", "kind", kind.String(), "err", perr)
			return nil
		}
		t.Env.Counters.DeadLettered(kind)
		t.Env.Logger.Warn("kstream: sending failed record to dead-letter topic", "kind", kind.String(), "topic", d.DeadLetter, "err", perr)
		t.Env.Collector.Send(t, DeadLetterRecord(d.DeadLetter, t.ID, ec))
		return nil
	default:
		t.Env.Logger.Error("kstream: record failed; stopping", "kind", kind.String(), "err", perr)
		return perr
	}
}

func DeadLetterRecord(topic string, id TaskID, ec *ErrorContext) *kgo.Record {
	hs := make([]kgo.RecordHeader, 0, len(ec.Headers)+7)
	for _, h := range ec.Headers {
		hs = append(hs, kgo.RecordHeader{Key: h.Key, Value: h.Value})
	}
	hs = append(hs,
		kgo.RecordHeader{Key: HeaderError, Value: []byte(ec.Err.Error())},
		kgo.RecordHeader{Key: HeaderErrorKind, Value: []byte(ec.Kind.String())},
		kgo.RecordHeader{Key: HeaderErrorNode, Value: []byte(ec.Node)},
		kgo.RecordHeader{Key: HeaderSourceTopic, Value: []byte(ec.Topic)},
		kgo.RecordHeader{Key: HeaderSourcePart, Value: []byte(strconv.FormatInt(int64(ec.Partition), 10))},
		kgo.RecordHeader{Key: HeaderSourceOffset, Value: []byte(strconv.FormatInt(ec.Offset, 10))},
		kgo.RecordHeader{Key: HeaderSourceTask, Value: []byte(id.String())},
	)
	return &kgo.Record{Topic: topic, Partition: -1, Key: ec.Key, Value: ec.Value, Headers: hs, Timestamp: ec.Timestamp}
}

// punctuateWallClock fires the wall-clock punctuators that are due.
func (t *Task) PunctuateWallClock() error {
	return t.wallPunct.mayPunctuate(t, Millis(t.Env.Now()), WallClockTime)
}

// offsetsToCommit returns, per source topic of this task's partition, the
// offset to commit (one past the last processed record), for the partitions
// that progressed since the last call.
func (t *Task) OffsetsToCommit() map[string]int64 {
	var out map[string]int64
	for _, q := range t.Queues {
		if q.next >= 0 && q.next != q.committed {
			if out == nil {
				out = make(map[string]int64, len(t.Queues))
			}
			out[q.Topic] = q.next
		}
	}
	return out
}

// nextOffset returns the offset of the next record of topic's partition to
// process: the first buffered record's, else one past the last processed
// one, else -1 (unknown).
func (t *Task) NextOffset(topic string) int64 {
	q := t.ByTopic[topic]
	switch {
	case q == nil:
		return -1
	case q.Len() > 0:
		return q.recs[q.head].Offset
	default:
		return q.next
	}
}

// leaderEpoch returns the leader epoch of the last record of topic's
// partition that was processed, or -1: the epoch to commit with the offset
// from offsetsToCommit.
func (t *Task) LeaderEpoch(topic string) int32 {
	if q := t.ByTopic[topic]; q != nil {
		return q.epoch
	}
	return -1
}

// nextWallClockPunctuation returns when (ms since the epoch) the earliest
// wall-clock punctuator is due, and false when none is scheduled.
func (t *Task) NextWallClockPunctuation() (int64, bool) {
	if len(t.wallPunct.items) == 0 {
		return 0, false
	}
	return t.wallPunct.items[0].next, true
}

// markCommitted records that the offsets returned by offsetsToCommit are
// committed.
func (t *Task) MarkCommitted(offsets map[string]int64) {
	for tp, o := range offsets {
		if q := t.ByTopic[tp]; q != nil {
			q.committed = o
		}
	}
}

// resetInput drops the buffered records and forgets the offsets processed
// since the last commit: after an aborted transaction the worker rewinds
// the task's partitions to their committed offsets, and a task whose state
// the transaction did not touch (not txnDirty) goes on from there. A
// partition's committed offset, when the task knows it, is where fetching
// it starts again.
func (t *Task) ResetInput() {
	for _, q := range t.Queues {
		clear(q.recs)
		q.recs, q.ts, q.head = q.recs[:0], q.ts[:0], 0
		q.start = q.committed
		q.next, q.committed, q.epoch = -1, -1, -1
		q.idleDeadline, q.enforced = time.Time{}, false
	}
}

// close closes every node instance. Buffered records are dropped (they were
// not committed, so they are fetched again by whoever gets the task next).
func (t *Task) Close() error {
	if t.Closed {
		return nil
	}
	t.Closed = true
	var err error
	if t.Started {
		err = t.CloseInstances()
	}
	return JoinErrors([]error{err, t.CloseStores()})
}

func (t *Task) CloseInstances() error {
	var errs []error
	for _, i := range t.Instances {
		if err := t.Guard(i.Close); err != nil {
			errs = append(errs, err)
		}
	}
	return JoinErrors(errs)
}

func FromKgoHeaders(hs []kgo.RecordHeader) []Header {
	if len(hs) == 0 {
		return nil
	}
	out := make([]Header, len(hs))
	for i, h := range hs {
		out[i] = Header{Key: h.Key, Value: h.Value}
	}
	return out
}

func ToKgoHeaders(hs []Header) []kgo.RecordHeader {
	if len(hs) == 0 {
		return nil
	}
	out := make([]kgo.RecordHeader, len(hs))
	for i, h := range hs {
		out[i] = kgo.RecordHeader{Key: h.Key, Value: h.Value}
	}
	return out
}
