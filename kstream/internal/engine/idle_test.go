package engine

import (
	"bytes"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamwork-go/streamwork/serde"
)

// idleTask is a started task of partition 2 of a source reading topics and
// a sink writing "out", with MaxTaskIdle idle and a wall clock the test
// moves (clock). Debug logs go to logs.
type idleTask struct {
	t     *testing.T
	tk    *Task
	out   *sliceCollector
	clock time.Time
	logs  bytes.Buffer
}

var idleStart = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

func newIdleTask(t *testing.T, idle time.Duration, topics ...string) *idleTask {
	t.Helper()
	src := &Node{Name: "src", Kind: KindSource, Topics: topics,
		NewInstance: func() Instance { return &SourceNode[string, string]{Ks: serde.String, Vs: serde.String} }}
	sink := &Node{Name: "sink", Kind: KindSink, Topics: []string{"out"}, Order: 1,
		NewInstance: func() Instance { return &SinkNode[string, string]{Topic: "out", Ks: serde.String, Vs: serde.String} }}
	src.Children, sink.Parents = []*Node{sink}, []*Node{src}
	topo, err := Build(&Graph{Nodes: []*Node{src, sink}, ByName: map[string]*Node{"src": src, "sink": sink}})
	if err != nil {
		t.Fatal(err)
	}
	it := &idleTask{t: t, out: &sliceCollector{}, clock: idleStart}
	env := testEnv(it.out)
	env.Now = func() time.Time { return it.clock }
	env.MaxTaskIdle = idle
	env.Logger = slog.New(slog.NewTextHandler(&it.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	it.tk, err = NewTask(TaskID{Subtopology: 0, Partition: 2}, topo.Subs[0], env)
	if err != nil {
		t.Fatal(err)
	}
	return it
}

// add buffers the record topic@off with timestamp ms and value
// "<topic><off>", as a fetch that ends right after it.
func (it *idleTask) add(topic string, off, ms int64) {
	it.tk.Add(&kgo.Record{Topic: topic, Partition: 2, Offset: off, Key: []byte("k"),
		Value: []byte(topic + string(rune('0'+off))), Timestamp: time.UnixMilli(ms)})
	it.tk.SetEndOffset(topic, off+1)
}

// caughtUp tells the task that topic's partition is empty in Kafka from
// offset off on: fetching starts there and the partition ends there.
func (it *idleTask) caughtUp(topic string, off int64) {
	it.tk.SetStartOffset(topic, off)
	it.tk.SetEndOffset(topic, off)
}

// process runs Process and checks how many records it took.
func (it *idleTask) process(want int) {
	it.t.Helper()
	n, err := it.tk.Process(100)
	if err != nil || n != want {
		it.t.Fatalf("at +%v: Process = %d, %v; want %d", it.clock.Sub(idleStart), n, err, want)
	}
}

// taken returns the values written since the last call, in order.
func (it *idleTask) taken() []string {
	var got []string
	for _, r := range it.out.recs {
		got = append(got, string(r.Value))
	}
	it.out.recs = nil
	return got
}

func (it *idleTask) enforced() int64 { return it.tk.Env.Counters.EnforcedProcessing.Load() }

func (it *idleTask) wantTaken(want ...string) {
	it.t.Helper()
	if got := it.taken(); !reflect.DeepEqual(got, want) {
		it.t.Fatalf("at +%v: processed %q, want %q", it.clock.Sub(idleStart), got, want)
	}
}

func (it *idleTask) wantEnforced(want int64) {
	it.t.Helper()
	if got := it.enforced(); got != want {
		it.t.Fatalf("at +%v: enforced processing = %d, want %d", it.clock.Sub(idleStart), got, want)
	}
}

// With MaxTaskIdle > 0, a task with records of one partition and none of
// the other (caught up) processes nothing until MaxTaskIdle has passed
// since it found that partition empty; then it processes without it,
// counting each record and logging once.
func TestTaskWaitsMaxTaskIdleThenProcessesWithoutEmptyPartition(t *testing.T) {
	it := newIdleTask(t, time.Second, "a", "b")
	it.caughtUp("b", 0)
	it.add("a", 0, 10)
	it.add("a", 1, 20)

	it.process(0) // the wait for b starts now
	if ok, until := it.tk.Ready(); ok || !until.Equal(idleStart.Add(time.Second)) {
		t.Fatalf("Ready = %v, %v; want false until %v", ok, until, idleStart.Add(time.Second))
	}
	it.clock = idleStart.Add(999 * time.Millisecond)
	it.process(0)
	it.wantTaken()
	it.wantEnforced(0)

	it.clock = idleStart.Add(time.Second)
	it.process(2)
	it.wantTaken("a0", "a1")
	it.wantEnforced(2)
	if n := strings.Count(it.logs.String(), "idle time over"); n != 1 {
		t.Fatalf("logged the enforced processing %d times, want once:\n%s", n, it.logs.String())
	}
	if !strings.Contains(it.logs.String(), "task=0_2") || !strings.Contains(it.logs.String(), "empty=[b]") {
		t.Fatalf("log names neither the task nor the empty partition:\n%s", it.logs.String())
	}

	// b stays empty, so its wait stays over: more records of a go at once.
	it.clock = idleStart.Add(5 * time.Second)
	it.add("a", 2, 30)
	it.process(1)
	it.wantTaken("a2")
	it.wantEnforced(3)
	if n := strings.Count(it.logs.String(), "idle time over"); n != 1 {
		t.Fatalf("logged %d times, want once per wait", n)
	}
}

// Records of the empty partition that arrive before the end of the wait
// are processed with the others in timestamp order, with nothing enforced.
// The wait is symmetric and starts again whenever a partition drains: the
// last record here waits for the partition drained before it.
func TestTaskProcessesInTimestampOrderWhenDataArrivesWithinMaxTaskIdle(t *testing.T) {
	it := newIdleTask(t, time.Second, "a", "b")
	it.caughtUp("b", 0)
	it.add("a", 0, 10)
	it.add("a", 1, 30)
	it.process(0)

	it.clock = idleStart.Add(500 * time.Millisecond)
	it.add("b", 0, 20)
	it.add("b", 1, 40)
	it.process(3) // then a is empty, and b1 waits for it
	it.wantTaken("a0", "b0", "a1")
	it.wantEnforced(0)
	if ok, until := it.tk.Ready(); ok || !until.Equal(it.clock.Add(time.Second)) {
		t.Fatalf("Ready = %v, %v; want false until %v", ok, until, it.clock.Add(time.Second))
	}
	if it.tk.StreamTime != 30 {
		t.Fatalf("stream time %d, want 30", it.tk.StreamTime)
	}

	it.clock = idleStart.Add(1500 * time.Millisecond)
	it.process(1)
	it.wantTaken("b1")
	it.wantEnforced(1)
}

// Whatever MaxTaskIdle, a task waits without a bound for an empty
// partition whose lag it does not know, or knows to be positive; a
// caught-up partition with MaxTaskIdle 0 holds nothing back.
func TestTaskWaitsForPartitionsWithUnknownOrPositiveLag(t *testing.T) {
	it := newIdleTask(t, 0, "a", "b")
	it.add("a", 0, 10)
	it.process(0)
	if got := it.tk.AwaitingLag(); !reflect.DeepEqual(got, []string{"b"}) {
		t.Fatalf("AwaitingLag = %v, want [b]", got)
	}
	it.clock = idleStart.Add(time.Hour)
	it.process(0)
	if ok, until := it.tk.Ready(); ok || !until.IsZero() {
		t.Fatalf("Ready = %v, %v; want false with no end", ok, until)
	}

	// Kafka has records of b the task has not fetched: still waiting.
	it.tk.SetStartOffset("b", 5)
	it.tk.SetEndOffset("b", 7)
	it.process(0)
	if got := it.tk.AwaitingLag(); !reflect.DeepEqual(got, []string{"b"}) {
		t.Fatalf("AwaitingLag = %v, want [b]", got)
	}

	// They arrive; once they are processed b is caught up, and with
	// MaxTaskIdle 0 the rest of a goes at once, enforced.
	it.add("b", 5, 20)
	it.add("b", 6, 30)
	it.add("a", 1, 40)
	it.process(4)
	it.wantTaken("a0", "b5", "b6", "a1")
	it.wantEnforced(1)
	if got := it.tk.AwaitingLag(); got != nil {
		t.Fatalf("AwaitingLag = %v, want none", got)
	}
	if it.logs.Len() != 0 {
		t.Fatalf("logged with MaxTaskIdle 0:\n%s", it.logs.String())
	}
}

// The wait for a partition starts when the task first finds it empty and
// caught up, whether or not other partitions have records then (Kafka
// Streams' PartitionGroup): a partition quiet for longer than MaxTaskIdle
// holds nothing back.
func TestTaskWaitStartsWhenPartitionFoundEmpty(t *testing.T) {
	it := newIdleTask(t, time.Second, "a", "b")
	it.caughtUp("a", 0)
	it.caughtUp("b", 0)
	it.process(0) // nothing buffered; the waits start
	it.clock = idleStart.Add(time.Second)
	it.add("a", 0, 10)
	it.process(1)
	it.wantTaken("a0")
	it.wantEnforced(1)

	// a was drained at +1s: its wait starts again, and b0 waits for it.
	it.add("b", 0, 20)
	it.process(0)
	it.clock = idleStart.Add(2 * time.Second)
	it.process(1)
	it.wantTaken("b0")
	it.wantEnforced(2)
}

// With NoTaskIdle, or with one input partition, a task never waits and
// counts nothing, though it knows nothing of where its partitions end.
func TestTaskNeverWaitsWithNoTaskIdleOrOnePartition(t *testing.T) {
	it := newIdleTask(t, -1, "a", "b")
	it.add("a", 0, 10)
	it.process(1)
	it.wantTaken("a0")
	if got := it.tk.AwaitingLag(); got != nil {
		t.Fatalf("AwaitingLag = %v with NoTaskIdle", got)
	}

	one := newIdleTask(t, time.Minute, "a")
	one.add("a", 0, 10)
	one.process(1)
	one.wantTaken("a0")
	if got := one.tk.AwaitingLag(); got != nil {
		t.Fatalf("AwaitingLag = %v with one partition", got)
	}
	it.wantEnforced(0)
	one.wantEnforced(0)
}

// Drain processes what is buffered without waiting, and counts nothing.
func TestTaskDrainDoesNotWait(t *testing.T) {
	it := newIdleTask(t, time.Minute, "a", "b")
	it.caughtUp("b", 0)
	it.add("a", 0, 10)
	it.process(0)
	if n, err := it.tk.Drain(100); n != 1 || err != nil {
		t.Fatalf("Drain = %d, %v; want 1", n, err)
	}
	it.wantTaken("a0")
	it.wantEnforced(0)
}

// After ResetInput (an aborted transaction), a partition starts again at
// its committed offset: caught up if that is where it ends.
func TestTaskResetInputStartsAtCommittedOffset(t *testing.T) {
	it := newIdleTask(t, 0, "a", "b")
	it.add("a", 0, 10)
	it.add("b", 0, 20)
	it.process(2)
	it.tk.MarkCommitted(it.tk.OffsetsToCommit())
	it.add("b", 1, 30)
	it.tk.ResetInput()
	if got := it.tk.AwaitingLag(); !reflect.DeepEqual(got, []string{"b"}) {
		t.Fatalf("AwaitingLag after reset = %v, want [b]: b has a record past its committed offset", got)
	}
	it.add("a", 1, 40)
	it.process(0)
	it.add("b", 1, 30)
	it.process(2)
	it.wantTaken("a0", "b0", "b1", "a1")
}
