package kstream

import (
	"fmt"
	"log/slog"
	"math"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamwork-go/streamwork/state"
)

// rawRecord is a record as fetched from Kafka (or piped in by the test
// driver): bytes plus coordinates.
type rawRecord = kgo.Record

// partitionRoundRobin, as a record's Partition, asks the collector to spread
// records over the topic's partitions in turn.
const partitionRoundRobin = -2

// collector takes the records a task writes. send is asynchronous: the
// runtime reports failures to the production handler. A record with
// Partition < 0 is partitioned by its key (Kafka's murmur2 hash, as the Java
// client does); Partition >= 0 is written to that partition.
type collector interface {
	send(t *task, r *kgo.Record)
}

// taskEnv is what every task of one worker shares.
type taskEnv struct {
	appID     string
	logger    *slog.Logger
	collector collector
	metrics   *metrics
	now       func() time.Time
	onDeser   ErrorHandler
	onProcess ErrorHandler
	onProduce ErrorHandler
	// globals are the instance's global table stores, read-only for tasks.
	globals map[string]state.Store

	// State. topo has the store specs; state opens engine stores (nil:
	// every store in memory, as in the test driver); cache is the record
	// cache budget (nil or max 0: no caches).
	topo  *Topology
	state *stateEnv
	cache *cacheBudget
}

// task runs one sub-topology for one partition number. All of its methods
// are called from the goroutine of the worker that owns it.
type task struct {
	id  TaskID
	sub *subtopology
	env *taskEnv

	byStore     map[string]*taskStore
	stateStores []*taskStore   // in the topology's store order
	instances   []nodeInstance // in the sub-topology's node order
	byNode      map[*node]nodeInstance
	queues      []*recordQueue // one per source topic, in sorted topic order
	byTopic     map[string]*recordQueue

	streamTime  int64 // -1 before the first record
	streamPunct punctuationQueue
	wallPunct   punctuationQueue

	// The record being processed, and failure state for it. curTs is its
	// timestamp (ms), or the time a punctuator fired for.
	cur      *rawRecord
	curTs    int64
	curNode  string
	failure  error
	failNode string
	failKind ErrorKind

	// started: the node instances are initialized (after restore); the
	// task may process. closed: close ran.
	started bool
	closed  bool
	// txnDirty (exactly-once): the task processed a record or fired a
	// punctuator since its last commit, so the open transaction holds its
	// effects (outputs, store and changelog writes). When the transaction
	// aborts, a dirty task is closed dirty and made again.
	txnDirty bool
}

// recordQueue buffers the fetched records of one input partition.
type recordQueue struct {
	topic     string
	partition int32
	source    sourceInstance
	recs      []*rawRecord
	ts        []int64
	head      int
	next      int64 // offset to commit: one past the last record processed
	committed int64 // the offset last handed out by offsetsToCommit
	epoch     int32 // leader epoch of the last record processed, -1 if unknown
}

func (q *recordQueue) len() int { return len(q.recs) - q.head }

func (q *recordQueue) push(r *rawRecord, ts int64) {
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

func (q *recordQueue) pop() (*rawRecord, int64) {
	r, ts := q.recs[q.head], q.ts[q.head]
	q.recs[q.head] = nil
	q.head++
	return r, ts
}

// sourceInstance is the per-task instance of a source node.
type sourceInstance interface {
	nodeInstance
	// timestamp returns the event time of r in milliseconds.
	timestamp(r *rawRecord) (int64, error)
	// receiveRaw decodes r and forwards it.
	receiveRaw(r *rawRecord, ts int64)
}

// newTask opens a task and starts it: for tasks that need nothing
// restored (the test driver's, and tests').
func newTask(id TaskID, sub *subtopology, env *taskEnv) (*task, error) {
	t, err := openTask(id, sub, env)
	if err != nil {
		return nil, err
	}
	if err := t.start(); err != nil {
		return nil, err
	}
	return t, nil
}

// openTask makes a task, opens its stores and makes its node instances,
// without initializing them: the runtime restores the stores first, then
// calls start.
func openTask(id TaskID, sub *subtopology, env *taskEnv) (*task, error) {
	t := &task{id: id, sub: sub, env: env, streamTime: -1, byTopic: make(map[string]*recordQueue)}
	if err := t.openStores(); err != nil {
		_ = t.closeStores()
		return nil, err
	}
	t.byNode = make(map[*node]nodeInstance, len(sub.nodes))
	for _, n := range sub.nodes {
		i := n.newInstance()
		t.byNode[n] = i
		t.instances = append(t.instances, i)
	}
	full := sub.sourceTopics(env.appID)
	for i, tp := range sub.topics {
		src, ok := t.byNode[sub.sources[tp]].(sourceInstance)
		if !ok {
			_ = t.closeStores()
			return nil, fmt.Errorf("%w: node %q is not a source", ErrTopology, sub.sources[tp].name)
		}
		q := &recordQueue{topic: full[i], partition: id.Partition, source: src, next: -1, committed: -1, epoch: -1}
		t.queues = append(t.queues, q)
		t.byTopic[full[i]] = q
	}
	return t, nil
}

// start initializes the node instances, in the sub-topology's node order.
// On failure it closes the task and returns a *ProcessingError.
func (t *task) start() error {
	for _, n := range t.sub.nodes {
		children := make([]nodeInstance, len(n.children))
		for j, c := range n.children {
			children[j] = t.byNode[c]
		}
		t.curNode = n.name
		if err := t.guard(func() error { return t.byNode[n].init(t, n, children) }); err != nil {
			t.closed = true
			_ = t.closeInstances()
			_ = t.closeStores()
			return &ProcessingError{Task: t.id, Node: n.name, Err: fmt.Errorf("init: %w", err)}
		}
	}
	t.curNode = ""
	t.started = true
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
func (t *task) add(r *rawRecord) int {
	q := t.byTopic[r.Topic]
	if q == nil {
		return 0
	}
	if r.Attrs.IsControl() {
		q.push(r, math.MinInt64)
		return q.len()
	}
	ts, err := q.source.timestamp(r)
	if err != nil {
		// Ordered by the log timestamp; the error surfaces when the record
		// is processed, where the deserialization handler decides.
		ts = millis(r.Timestamp)
	}
	q.push(r, ts)
	return q.len()
}

// buffered returns the number of records buffered for topic.
func (t *task) buffered(topic string) int {
	if q := t.byTopic[topic]; q != nil {
		return q.len()
	}
	return 0
}

// totalBuffered returns the number of records buffered for all partitions.
func (t *task) totalBuffered() int {
	n := 0
	for _, q := range t.queues {
		n += q.len()
	}
	return n
}

// process processes up to max buffered records, in timestamp order across
// the task's partitions. It returns how many it processed, and an error only
// when an error handler decided to fail.
func (t *task) process(max int) (int, error) {
	n := 0
	for n < max {
		var q *recordQueue
		for _, c := range t.queues {
			if c.len() == 0 {
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
		if err := t.processOne(q, r, ts); err != nil {
			return n, err
		}
	}
	return n, nil
}

func (t *task) processOne(q *recordQueue, r *rawRecord, ts int64) error {
	if r.Attrs.IsControl() {
		q.next = r.Offset + 1
		q.epoch = r.LeaderEpoch
		return nil
	}
	t.txnDirty = true
	t.cur = r
	t.curTs = ts
	t.failure = nil
	if ts < 0 {
		t.fail("", DeserializationErrorKind, fmt.Errorf("%w: %d", ErrInvalidTimestamp, ts))
	} else {
		if ts > t.streamTime {
			t.streamTime = ts
		}
		t.guardRecord(func() { q.source.receiveRaw(r, ts) })
	}
	q.next = r.Offset + 1
	q.epoch = r.LeaderEpoch
	t.env.metrics.processed.Add(1)
	var err error
	if t.failure != nil {
		err = t.handleFailure(r)
	}
	t.cur = nil
	if err != nil {
		return err
	}
	if t.streamTime >= 0 {
		return t.streamPunct.mayPunctuate(t, t.streamTime, StreamTime)
	}
	return nil
}

// fail records that the current record failed at node.
func (t *task) fail(node string, kind ErrorKind, err error) {
	if t.failure != nil {
		return
	}
	t.failure, t.failNode, t.failKind = err, node, kind
}

// guardRecord runs fn, turning a panic into a failure of the current node.
func (t *task) guardRecord(fn func()) {
	defer func() {
		if p := recover(); p != nil {
			t.fail(t.curNode, ProcessingErrorKind, fmt.Errorf("%w: %v\n%s", ErrPanic, p, debug.Stack()))
		}
	}()
	fn()
}

// guard runs fn, turning a panic into an error.
func (t *task) guard(fn func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: %v\n%s", ErrPanic, p, debug.Stack())
		}
	}()
	return fn()
}

// handleFailure asks the error handler what to do with the failed record r
// (nil inside a punctuator).
func (t *task) handleFailure(r *rawRecord) error {
	kind, node, cause := t.failKind, t.failNode, t.failure
	t.failure = nil
	ec := &ErrorContext{Kind: kind, Task: t.id, Node: node, Offset: -1, Err: cause}
	if r != nil {
		ec.Topic, ec.Partition, ec.Offset, ec.Timestamp = r.Topic, r.Partition, r.Offset, r.Timestamp
		ec.Key, ec.Value = r.Key, r.Value
		ec.Headers = fromKgoHeaders(r.Headers)
	}
	perr := &ProcessingError{Task: t.id, Node: node, Topic: ec.Topic, Partition: ec.Partition, Offset: ec.Offset, Err: cause}
	h := t.env.onProcess
	switch kind {
	case DeserializationErrorKind:
		h = t.env.onDeser
	case ProductionErrorKind:
		h = t.env.onProduce
	}
	d := Fail
	if h != nil {
		d = h(ec)
	}
	switch d.action {
	case actionSkip:
		t.env.metrics.skipped(kind)
		t.env.logger.Warn("kstream: skipping failed record", "kind", kind.String(), "err", perr)
		return nil
	case actionDeadLetter:
		if r == nil {
			t.env.metrics.skipped(kind)
			t.env.logger.Warn("kstream: failure in punctuator has no record to dead-letter; skipping", "kind", kind.String(), "err", perr)
			return nil
		}
		t.env.metrics.deadLettered(kind)
		t.env.logger.Warn("kstream: sending failed record to dead-letter topic", "kind", kind.String(), "topic", d.deadLetter, "err", perr)
		t.env.collector.send(t, deadLetterRecord(d.deadLetter, t.id, ec))
		return nil
	default:
		t.env.logger.Error("kstream: record failed; stopping", "kind", kind.String(), "err", perr)
		return perr
	}
}

func deadLetterRecord(topic string, id TaskID, ec *ErrorContext) *kgo.Record {
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
func (t *task) punctuateWallClock() error {
	return t.wallPunct.mayPunctuate(t, millis(t.env.now()), WallClockTime)
}

// offsetsToCommit returns, per source topic of this task's partition, the
// offset to commit (one past the last processed record), for the partitions
// that progressed since the last call.
func (t *task) offsetsToCommit() map[string]int64 {
	var out map[string]int64
	for _, q := range t.queues {
		if q.next >= 0 && q.next != q.committed {
			if out == nil {
				out = make(map[string]int64, len(t.queues))
			}
			out[q.topic] = q.next
		}
	}
	return out
}

// nextOffset returns the offset of the next record of topic's partition to
// process: the first buffered record's, else one past the last processed
// one, else -1 (unknown).
func (t *task) nextOffset(topic string) int64 {
	q := t.byTopic[topic]
	switch {
	case q == nil:
		return -1
	case q.len() > 0:
		return q.recs[q.head].Offset
	default:
		return q.next
	}
}

// leaderEpoch returns the leader epoch of the last record of topic's
// partition that was processed, or -1: the epoch to commit with the offset
// from offsetsToCommit.
func (t *task) leaderEpoch(topic string) int32 {
	if q := t.byTopic[topic]; q != nil {
		return q.epoch
	}
	return -1
}

// nextWallClockPunctuation returns when (ms since the epoch) the earliest
// wall-clock punctuator is due, and false when none is scheduled.
func (t *task) nextWallClockPunctuation() (int64, bool) {
	if len(t.wallPunct.items) == 0 {
		return 0, false
	}
	return t.wallPunct.items[0].next, true
}

// markCommitted records that the offsets returned by offsetsToCommit are
// committed.
func (t *task) markCommitted(offsets map[string]int64) {
	for tp, o := range offsets {
		if q := t.byTopic[tp]; q != nil {
			q.committed = o
		}
	}
}

// resetInput drops the buffered records and forgets the offsets processed
// since the last commit: after an aborted transaction the worker rewinds
// the task's partitions to their committed offsets, and a task whose state
// the transaction did not touch (not txnDirty) goes on from there.
func (t *task) resetInput() {
	for _, q := range t.queues {
		clear(q.recs)
		q.recs, q.ts, q.head = q.recs[:0], q.ts[:0], 0
		q.next, q.committed, q.epoch = -1, -1, -1
	}
}

// close closes every node instance. Buffered records are dropped (they were
// not committed, so they are fetched again by whoever gets the task next).
func (t *task) close() error {
	if t.closed {
		return nil
	}
	t.closed = true
	var err error
	if t.started {
		err = t.closeInstances()
	}
	return joinErrors([]error{err, t.closeStores()})
}

func (t *task) closeInstances() error {
	var errs []error
	for _, i := range t.instances {
		if err := t.guard(i.close); err != nil {
			errs = append(errs, err)
		}
	}
	return joinErrors(errs)
}

func fromKgoHeaders(hs []kgo.RecordHeader) []Header {
	if len(hs) == 0 {
		return nil
	}
	out := make([]Header, len(hs))
	for i, h := range hs {
		out[i] = Header{Key: h.Key, Value: h.Value}
	}
	return out
}

func toKgoHeaders(hs []Header) []kgo.RecordHeader {
	if len(hs) == 0 {
		return nil
	}
	out := make([]kgo.RecordHeader, len(hs))
	for i, h := range hs {
		out[i] = kgo.RecordHeader{Key: h.Key, Value: h.Value}
	}
	return out
}
