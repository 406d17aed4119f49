package integration

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamwork-go/streamwork/integration/kafkatest"
	"github.com/streamwork-go/streamwork/kstream"
	"github.com/streamwork-go/streamwork/serde"
)

// errUnlucky is what unluckyDoubler returns for the value 13.
var errUnlucky = errors.New("unlucky number")

// unluckyDoubler forwards each value doubled, and fails on 13.
type unluckyDoubler struct {
	ctx kstream.ProcessorContext[string, int64]
}

func (p *unluckyDoubler) Init(ctx kstream.ProcessorContext[string, int64]) error {
	p.ctx = ctx
	return nil
}

func (p *unluckyDoubler) Process(r kstream.Record[string, int64]) error {
	if r.Value == 13 {
		return errUnlucky
	}
	p.ctx.Forward(kstream.WithValue(r, r.Value*2))
	return nil
}

func (p *unluckyDoubler) Close() error { return nil }

// poisonInput is the input of the poison-pill tests, on two partitions.
type poisonInput struct {
	topic   string
	records []*kgo.Record // in the order written; each knows its offset
	pill    *kgo.Record   // a 3-byte value, which serde.Int64 cannot read
	unlucky *kgo.Record   // the value 13, on which the processor fails
}

// newPoisonInput makes (but does not write) partition 0: the values
// 1..5, the pill, 6, 7, 13, 8, 9, 10 (key "a"), and partition 1: the values
// 101..110 (key "b"). Record i has timestamp statelessBase + i ms and the
// header origin=poison-test.
func newPoisonInput(t *testing.T, b *kafkatest.Broker) poisonInput {
	t.Helper()
	in := poisonInput{topic: newTopic(t, b, "in", 2)}
	add := func(partition int32, key string, value []byte) *kgo.Record {
		r := &kgo.Record{
			Topic: in.topic, Partition: partition, Key: []byte(key), Value: value,
			Timestamp: statelessBase.Add(time.Duration(len(in.records)) * time.Millisecond),
			Headers:   []kgo.RecordHeader{{Key: "origin", Value: []byte("poison-test")}},
		}
		in.records = append(in.records, r)
		return r
	}
	for _, v := range []int64{1, 2, 3, 4, 5} {
		add(0, "a", mustSerialize(t, serde.Int64, v))
	}
	in.pill = add(0, "a", []byte{0xde, 0xad, 0x01})
	for _, v := range []int64{6, 7} {
		add(0, "a", mustSerialize(t, serde.Int64, v))
	}
	in.unlucky = add(0, "a", mustSerialize(t, serde.Int64, 13))
	for _, v := range []int64{8, 9, 10} {
		add(0, "a", mustSerialize(t, serde.Int64, v))
	}
	for v := int64(101); v <= 110; v++ {
		add(1, "b", mustSerialize(t, serde.Int64, v))
	}
	return in
}

// write writes the input records that match keep, in order.
func (in poisonInput) write(ctx context.Context, t *testing.T, cl *kgo.Client, keep func(*kgo.Record) bool) {
	t.Helper()
	var recs []*kgo.Record
	for _, r := range in.records {
		if keep(r) {
			recs = append(recs, r)
		}
	}
	produce(ctx, t, cl, recs)
}

// writePoisonInput makes the poison input and writes all of it.
func writePoisonInput(ctx context.Context, t *testing.T, b *kafkatest.Broker) poisonInput {
	t.Helper()
	in := newPoisonInput(t, b)
	in.write(ctx, t, producer(t, b), func(*kgo.Record) bool { return true })
	in.checkOffsets(t)
	return in
}

func (in poisonInput) checkOffsets(t *testing.T) {
	t.Helper()
	if in.pill.Offset != 5 || in.unlucky.Offset != 8 {
		t.Fatalf("the pill is at offset %d and 13 at %d, want 5 and 8", in.pill.Offset, in.unlucky.Offset)
	}
}

// expected returns the outputs of every good record: the value doubled,
// with the input's key, timestamp and headers.
func (in poisonInput) expected(t *testing.T) []outRec {
	var want []outRec
	for i, r := range in.records {
		if r == in.pill || r == in.unlucky {
			continue
		}
		v, err := serde.Int64.Deserialize("", r.Value)
		if err != nil {
			t.Fatalf("input %d: %v", i, err)
		}
		want = append(want, outRec{key: r.Key, value: mustSerialize(t, serde.Int64, 2*v), ts: r.Timestamp, headers: r.Headers, seq: int64(i)})
	}
	return want
}

// inputKey names the input partition of input record seq, for
// requireExactOutput's order check (partition 0 holds records 0..11).
func (in poisonInput) inputKey(seq int64) string {
	return "p" + strconv.FormatInt(int64(in.records[seq].Partition), 10)
}

func poisonTopology(t *testing.T, in, out string) *kstream.Topology {
	t.Helper()
	bld := kstream.NewBuilder()
	src := kstream.From(bld, in, serde.String, serde.Int64, kstream.Named("source"))
	kstream.Process(src, func() kstream.Processor[string, int64, string, int64] { return &unluckyDoubler{} },
		kstream.Named("doubler")).
		To(out, serde.String, serde.Int64, kstream.Named("sink"))
	topo, err := bld.Build()
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	return topo
}

// TestPoisonPillOnRealBroker runs, on a real broker, an input with good
// records, a value serde.Int64 cannot decode (the pill) and a value the
// processor fails on, under each error handler outcome.
func TestPoisonPillOnRealBroker(t *testing.T) {
	b := kafkatest.Require(t)

	// LogAndFail (the default): Run stops at the pill, the first failure
	// of partition 0, with its exact coordinates. The records before the
	// pill are written and committed first; the failure commits nothing
	// past them.
	t.Run("LogAndFail", func(t *testing.T) {
		ctx := testContext(t)
		in := newPoisonInput(t, b)
		cl := producer(t, b)
		beforePill := func(r *kgo.Record) bool { return r.Partition == 1 || r.Timestamp.Before(in.pill.Timestamp) }
		in.write(ctx, t, cl, beforePill)
		out := newTopic(t, b, "out", 2)
		appID := kafkatest.UniqueName(t, "app")
		adm := b.Admin(t)
		app := startApp(t, b, "fail", poisonTopology(t, in.topic, out),
			kstream.ApplicationID(appID), kstream.CommitInterval(100*time.Millisecond))
		waitFor(ctx, t, "the records before the pill to be committed", func() bool {
			c := committedOffsets(ctx, t, adm, appID, in.topic)
			return c[0] == 5 && c[1] == 10
		}, app)
		in.write(ctx, t, cl, func(r *kgo.Record) bool { return !beforePill(r) })
		in.checkOffsets(t)

		err := app.wait(t)
		var perr *kstream.ProcessingError
		if !errors.As(err, &perr) {
			t.Fatalf("Run returned %v, want an error wrapping *kstream.ProcessingError", err)
		}
		if perr.Topic != in.topic || perr.Partition != 0 || perr.Offset != in.pill.Offset {
			t.Errorf("ProcessingError at %s/%d offset %d, want %s/0 offset %d (the pill)",
				perr.Topic, perr.Partition, perr.Offset, in.topic, in.pill.Offset)
		}
		var derr *serde.DecodeError
		if !errors.As(err, &derr) || derr.Key || derr.Offset != in.pill.Offset || !errors.Is(err, serde.ErrInvalidLength) {
			t.Errorf("Run returned %v, want it to wrap the pill's *serde.DecodeError of the value and serde.ErrInvalidLength", err)
		}
		committed := committedOffsets(ctx, t, adm, appID, in.topic)
		if c := committed[0]; c != in.pill.Offset {
			t.Errorf("the group committed %s/0 at %d, want %d: the pill's offset, not past it", in.topic, c, in.pill.Offset)
		}
		t.Logf("Run returned: %v; committed offsets: %v", err, committed)
	})

	// LogAndSkip: exactly the good records' outputs, and each failure
	// counted once as skipped, by kind.
	t.Run("LogAndSkip", func(t *testing.T) {
		ctx := testContext(t)
		in := writePoisonInput(ctx, t, b)
		out := newTopic(t, b, "out", 2)
		app := startApp(t, b, "skip", poisonTopology(t, in.topic, out),
			kstream.ApplicationID(kafkatest.UniqueName(t, "app")),
			kstream.CommitInterval(100*time.Millisecond),
			kstream.DeserializationErrorHandler(kstream.LogAndSkip),
			kstream.ProcessingErrorHandler(kstream.LogAndSkip),
		)
		want := in.expected(t)
		rd := newReader(t, b, out)
		rd.readCounts(ctx, map[string]int{out: len(want)}, app)
		if err := app.stop(t); err != nil {
			t.Fatalf("Run returned %v after a clean shutdown, want nil", err)
		}
		rd.readToEnd(ctx)
		requireExactOutput(t, out, rd.records(out), want, in.inputKey)

		m := app.Metrics()
		requireKindCounts(t, "Skipped", m.Skipped, 1, 1, 0)
		requireKindCounts(t, "DeadLettered", m.DeadLettered, 0, 0, 0)
		if m.RecordsProcessed != int64(len(in.records)) {
			t.Errorf("RecordsProcessed = %d, want %d (the failed records included)", m.RecordsProcessed, len(in.records))
		}
	})

	// DeadLetter: exactly the good records' outputs; the two failed
	// records in the dead-letter topic with their original key, value,
	// timestamp and headers plus the headers that say where they came
	// from and how they failed; each counted once as dead-lettered.
	t.Run("DeadLetter", func(t *testing.T) {
		ctx := testContext(t)
		in := writePoisonInput(ctx, t, b)
		out := newTopic(t, b, "out", 2)
		dlq := newTopic(t, b, "dlq", 1)
		app := startApp(t, b, "dlq", poisonTopology(t, in.topic, out),
			kstream.ApplicationID(kafkatest.UniqueName(t, "app")),
			kstream.CommitInterval(100*time.Millisecond),
			kstream.DeserializationErrorHandler(kstream.LogAndDeadLetter(dlq)),
			kstream.ProcessingErrorHandler(kstream.LogAndDeadLetter(dlq)),
		)
		want := in.expected(t)
		rd := newReader(t, b, out, dlq)
		rd.readCounts(ctx, map[string]int{out: len(want), dlq: 2}, app)
		if err := app.stop(t); err != nil {
			t.Fatalf("Run returned %v after a clean shutdown, want nil", err)
		}
		rd.readToEnd(ctx)
		requireExactOutput(t, out, rd.records(out), want, in.inputKey)

		dead := rd.records(dlq)
		if len(dead) != 2 {
			t.Fatalf("the dead-letter topic holds %d records, want 2: %v", len(dead), dead)
		}
		requireDeadLetter(t, dead[0], in.pill, "deserialization", "")
		requireDeadLetter(t, dead[1], in.unlucky, "processing", "doubler")
		if cause := header(dead[1], kstream.HeaderError); !strings.Contains(cause, errUnlucky.Error()) {
			t.Errorf("dead letter of 13: %s = %q, want it to contain %q", kstream.HeaderError, cause, errUnlucky)
		}
		t.Logf("dead letter of the pill: %s = %q, %s = %q", kstream.HeaderError, header(dead[0], kstream.HeaderError),
			kstream.HeaderErrorNode, header(dead[0], kstream.HeaderErrorNode))

		m := app.Metrics()
		requireKindCounts(t, "DeadLettered", m.DeadLettered, 1, 1, 0)
		requireKindCounts(t, "Skipped", m.Skipped, 0, 0, 0)
	})
}

// requireDeadLetter checks that dead is the dead letter of input: its key,
// value and timestamp, its headers first, then the error headers with the
// given kind and source coordinates (and node, unless node is empty).
func requireDeadLetter(t *testing.T, dead, input *kgo.Record, kind, node string) {
	t.Helper()
	if string(dead.Key) != string(input.Key) || string(dead.Value) != string(input.Value) || !dead.Timestamp.Equal(input.Timestamp) {
		t.Errorf("dead letter %s, want the key, value and timestamp of input %s", recString(dead), recString(input))
	}
	if len(dead.Headers) < len(input.Headers) || headerString(dead.Headers[:len(input.Headers)]) != headerString(input.Headers) {
		t.Errorf("dead letter headers %s, want them to start with the input's %s", headerString(dead.Headers), headerString(input.Headers))
	}
	want := map[string]string{
		kstream.HeaderErrorKind:    kind,
		kstream.HeaderSourceTopic:  input.Topic,
		kstream.HeaderSourcePart:   strconv.Itoa(int(input.Partition)),
		kstream.HeaderSourceOffset: strconv.FormatInt(input.Offset, 10),
		kstream.HeaderSourceTask:   "0_" + strconv.Itoa(int(input.Partition)),
	}
	if node != "" {
		want[kstream.HeaderErrorNode] = node
	}
	for k, v := range want {
		if got := header(dead, k); got != v {
			t.Errorf("dead letter of offset %d: header %s = %q, want %q", input.Offset, k, got, v)
		}
	}
	if header(dead, kstream.HeaderError) == "" {
		t.Errorf("dead letter of offset %d: no %s header", input.Offset, kstream.HeaderError)
	}
}

// header returns the value of r's last header named key, or "".
func header(r *kgo.Record, key string) string {
	v := ""
	for _, h := range r.Headers {
		if h.Key == key {
			v = string(h.Value)
		}
	}
	return v
}

func requireKindCounts(t *testing.T, what string, got map[kstream.ErrorKind]int64, deser, proc, prod int64) {
	t.Helper()
	want := map[kstream.ErrorKind]int64{
		kstream.DeserializationErrorKind: deser,
		kstream.ProcessingErrorKind:      proc,
		kstream.ProductionErrorKind:      prod,
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("Metrics().%s[%s] = %d, want %d (all: %v)", what, k, got[k], w, got)
		}
	}
}
