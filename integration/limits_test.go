package integration

import (
	"context"
	"crypto/rand"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamwork-go/streamwork/integration/kafkatest"
	"github.com/streamwork-go/streamwork/kstream"
	"github.com/streamwork-go/streamwork/serde"
)

// copyTopology copies in to out byte for byte.
func copyTopology(t *testing.T, in, out string) *kstream.Topology {
	t.Helper()
	bld := kstream.NewBuilder()
	kstream.From(bld, in, serde.String, serde.Bytes, kstream.Named("source")).
		To(out, serde.String, serde.Bytes, kstream.Named("sink"))
	topo, err := bld.Build()
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	return topo
}

// limitRecord is a record of the limits tests: key k, a value of size
// bytes, timestamped an hour ago, on partition 0.
func limitRecord(topic, k string, size int) *kgo.Record {
	return &kgo.Record{Topic: topic, Key: []byte(k), Value: []byte(strings.Repeat("v", size)), Timestamp: time.Now().Add(-time.Hour)}
}

// TestInputTopicMissingAtStart runs an App whose input topic does not
// exist: Run returns ErrMissingTopic naming it, once the few seconds it
// gives a topic just created to appear in the metadata have passed.
func TestInputTopicMissingAtStart(t *testing.T) {
	b := kafkatest.Require(t)
	missing := kafkatest.UniqueName(t, "absent")
	start := time.Now()
	app := startApp(t, b, "missing", copyTopology(t, missing, kafkatest.UniqueName(t, "out")),
		kstream.ApplicationID(kafkatest.UniqueName(t, "app")))
	err := app.wait(t)
	if !errors.Is(err, kstream.ErrMissingTopic) || !strings.Contains(err.Error(), strconv.Quote(missing)) {
		t.Fatalf("Run returned %v, want ErrMissingTopic naming %q", err, missing)
	}
	t.Logf("Run returned after %v: %v", time.Since(start).Round(time.Millisecond), err)
}

// TestInputTopicDeletedWhileRunning deletes the input topic of a running
// App: Run returns an error wrapping ErrMissingTopic that names the topic,
// within a bounded time, after committing what it processed.
func TestInputTopicDeletedWhileRunning(t *testing.T) {
	b := kafkatest.Require(t)
	ctx := testContext(t)
	in := newTopic(t, b, "in", 2)
	out := newTopic(t, b, "out", 1)
	appID := kafkatest.UniqueName(t, "app")
	app := startApp(t, b, "deleted", copyTopology(t, in, out),
		kstream.ApplicationID(appID), kstream.CommitInterval(100*time.Millisecond))
	var recs []*kgo.Record
	for i := range 10 {
		r := limitRecord(in, "k"+strconv.Itoa(i), 10)
		r.Partition = int32(i % 2)
		recs = append(recs, r)
	}
	produce(ctx, t, producer(t, b), recs)
	rd := newReader(t, b, out)
	rd.readCounts(ctx, map[string]int{out: 10}, app)
	adm := b.Admin(t)
	waitFor(ctx, t, "the input to be committed", func() bool {
		c := committedOffsets(ctx, t, adm, appID, in)
		return c[0] == 5 && c[1] == 5
	}, app)

	deleted := time.Now()
	resp, err := adm.DeleteTopics(ctx, in)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatalf("delete %s: %v", in, err)
	}
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	select {
	case <-app.done:
	case <-wctx.Done():
		t.Fatalf("Run did not return within a minute of the deletion of its input topic %q", in)
	}
	err = app.wait(t)
	if !errors.Is(err, kstream.ErrMissingTopic) || !strings.Contains(err.Error(), strconv.Quote(in)) {
		t.Fatalf("Run returned %v, want ErrMissingTopic naming %q", err, in)
	}
	t.Logf("Run returned %v after the deletion: %v", time.Since(deleted).Round(time.Millisecond), err)
}

// oversizeLimit is the max.message.bytes of the oversize tests' output
// topic; oversizeValue the size of the value the broker refuses there.
const (
	oversizeLimit = 4096
	oversizeValue = 16 << 10
)

// oversizeRig is an App copying in to out, whose topic refuses batches
// larger than oversizeLimit bytes; dlq is a dead-letter topic.
type oversizeRig struct {
	in, out, dlq string
	appID        string
	app          *runningApp
	cl           *kgo.Client
	rd           *reader
}

func newOversizeRig(t *testing.T, b *kafkatest.Broker, g kstream.DeliveryGuarantee, handler func(dlq string) kstream.ErrorHandler) *oversizeRig {
	t.Helper()
	r := &oversizeRig{in: newTopic(t, b, "in", 1), out: kafkatest.UniqueName(t, "out"), dlq: newTopic(t, b, "dlq", 1)}
	limit := strconv.Itoa(oversizeLimit)
	b.CreateTopic(t, r.out, 1, map[string]*string{"max.message.bytes": &limit})
	deleteTopicsAtEnd(t, b, r.out)
	r.appID = kafkatest.UniqueName(t, "app")
	r.app = startApp(t, b, "oversize", copyTopology(t, r.in, r.out),
		kstream.ApplicationID(r.appID), kstream.Guarantee(g),
		kstream.CommitInterval(100*time.Millisecond),
		kstream.ProductionErrorHandler(handler(r.dlq)))
	r.cl = producer(t, b)
	r.rd = newReader(t, b, r.out, r.dlq)
	return r
}

// oversizeRecord is a record of the input whose value, random bytes that
// no compression shrinks, is larger than the output topic takes: a
// repeated byte would be compressed below the limit and accepted.
func oversizeRecord(t *testing.T, topic string) *kgo.Record {
	t.Helper()
	r := limitRecord(topic, "big", oversizeValue)
	if _, err := rand.Read(r.Value); err != nil {
		t.Fatal(err)
	}
	return r
}

// start writes the small records a and b and waits until they are in the
// output and their input offsets committed.
func (r *oversizeRig) start(ctx context.Context, t *testing.T, b *kafkatest.Broker) {
	t.Helper()
	produce(ctx, t, r.cl, []*kgo.Record{limitRecord(r.in, "a", 10), limitRecord(r.in, "b", 10)})
	r.rd.readCounts(ctx, map[string]int{r.out: 2}, r.app)
	r.waitCommitted(ctx, t, b, 2)
}

func (r *oversizeRig) waitCommitted(ctx context.Context, t *testing.T, b *kafkatest.Broker, want int64) {
	t.Helper()
	adm := b.Admin(t)
	waitFor(ctx, t, "the input committed to offset "+strconv.FormatInt(want, 10), func() bool {
		return committedOffsets(ctx, t, adm, r.appID, r.in)[0] == want
	}, r.app)
}

// requireOutputKeys checks that the output holds exactly records with keys
// want, in order, each with its 10-byte value.
func (r *oversizeRig) requireOutputKeys(t *testing.T, want ...string) {
	t.Helper()
	var got []string
	for _, rec := range r.rd.records(r.out) {
		got = append(got, string(rec.Key))
		if len(rec.Value) != 10 {
			t.Errorf("output record %q has a %d-byte value, want 10", rec.Key, len(rec.Value))
		}
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("output keys %v, want exactly %v", got, want)
	}
}

// TestRecordTooLarge runs an App whose output topic refuses a record
// (larger than its max.message.bytes) under each production handler and
// both guarantees. Skip and dead-letter: the refused record is counted
// once, and only it; the small records written with it around it reach
// the output, in order. Fail: Run returns a *ProductionError naming the
// output topic and partition, wrapping MESSAGE_TOO_LARGE, and the input is
// committed up to the refused record.
func TestRecordTooLarge(t *testing.T) {
	b := kafkatest.Require(t)
	for _, g := range []kstream.DeliveryGuarantee{kstream.AtLeastOnce, kstream.ExactlyOnce} {
		t.Run("LogAndSkip/"+g.String(), func(t *testing.T) {
			ctx := testContext(t)
			r := newOversizeRig(t, b, g, func(string) kstream.ErrorHandler { return kstream.LogAndSkip })
			r.start(ctx, t, b)
			produce(ctx, t, r.cl, []*kgo.Record{limitRecord(r.in, "c", 10), oversizeRecord(t, r.in), limitRecord(r.in, "d", 10), limitRecord(r.in, "e", 10)})
			r.rd.readCounts(ctx, map[string]int{r.out: 5}, r.app)
			r.waitCommitted(ctx, t, b, 6)
			if err := r.app.stop(t); err != nil {
				t.Fatalf("Run returned %v after a clean shutdown, want nil", err)
			}
			r.rd.readToEnd(ctx)
			r.requireOutputKeys(t, "a", "b", "c", "d", "e")
			if n := r.rd.count(r.dlq); n != 0 {
				t.Errorf("the dead-letter topic holds %d records, want 0", n)
			}
			m := r.app.Metrics()
			requireKindCounts(t, "Skipped", m.Skipped, 0, 0, 1)
			requireKindCounts(t, "DeadLettered", m.DeadLettered, 0, 0, 0)
		})

		t.Run("LogAndDeadLetter/"+g.String(), func(t *testing.T) {
			ctx := testContext(t)
			r := newOversizeRig(t, b, g, kstream.LogAndDeadLetter)
			r.start(ctx, t, b)
			big := oversizeRecord(t, r.in)
			produce(ctx, t, r.cl, []*kgo.Record{limitRecord(r.in, "c", 10), big, limitRecord(r.in, "d", 10), limitRecord(r.in, "e", 10)})
			r.rd.readCounts(ctx, map[string]int{r.out: 5, r.dlq: 1}, r.app)
			r.waitCommitted(ctx, t, b, 6)
			if err := r.app.stop(t); err != nil {
				t.Fatalf("Run returned %v after a clean shutdown, want nil", err)
			}
			r.rd.readToEnd(ctx)
			r.requireOutputKeys(t, "a", "b", "c", "d", "e")
			dead := r.rd.records(r.dlq)
			if len(dead) != 1 {
				t.Fatalf("the dead-letter topic holds %d records, want 1", len(dead))
			}
			d := dead[0]
			if string(d.Key) != "big" || string(d.Value) != string(big.Value) || !d.Timestamp.Equal(big.Timestamp) {
				t.Errorf("dead letter: key %q, %d-byte value, timestamp %v; want the refused record's key, value and timestamp", d.Key, len(d.Value), d.Timestamp)
			}
			want := map[string]string{
				kstream.HeaderErrorKind:    "production",
				kstream.HeaderSourceTopic:  r.out,
				kstream.HeaderSourcePart:   "0",
				kstream.HeaderSourceOffset: "-1",
				kstream.HeaderSourceTask:   "0_0",
			}
			for k, v := range want {
				if got := header(d, k); got != v {
					t.Errorf("dead letter: header %s = %q, want %q", k, got, v)
				}
			}
			if cause := header(d, kstream.HeaderError); !strings.Contains(cause, kerr.MessageTooLarge.Message) {
				t.Errorf("dead letter: %s = %q, want it to name %s", kstream.HeaderError, cause, kerr.MessageTooLarge.Message)
			}
			m := r.app.Metrics()
			requireKindCounts(t, "DeadLettered", m.DeadLettered, 0, 0, 1)
			requireKindCounts(t, "Skipped", m.Skipped, 0, 0, 0)
		})

		t.Run("LogAndFail/"+g.String(), func(t *testing.T) {
			ctx := testContext(t)
			r := newOversizeRig(t, b, g, func(string) kstream.ErrorHandler { return kstream.LogAndFail })
			r.start(ctx, t, b)
			sent := time.Now()
			produce(ctx, t, r.cl, []*kgo.Record{oversizeRecord(t, r.in)})
			err := r.app.wait(t)
			t.Logf("Run returned %v after the oversized record was written to the input: %v", time.Since(sent).Round(time.Millisecond), err)
			var perr *kstream.ProductionError
			if !errors.As(err, &perr) || perr.Topic != r.out || perr.Partition != 0 || !errors.Is(err, kerr.MessageTooLarge) {
				t.Fatalf("Run returned %v, want a *ProductionError for topic %q partition 0 wrapping %s", err, r.out, kerr.MessageTooLarge.Message)
			}
			if !strings.Contains(err.Error(), strconv.Quote(r.out)) {
				t.Errorf("Run's error %q does not name the topic %q", err, r.out)
			}
			if c := committedOffsets(ctx, t, b.Admin(t), r.appID, r.in)[0]; c != 2 {
				t.Errorf("committed offset of the input = %d, want 2 (the refused record's)", c)
			}
			r.rd.readToEnd(ctx)
			r.requireOutputKeys(t, "a", "b")
			m := r.app.Metrics()
			requireKindCounts(t, "Skipped", m.Skipped, 0, 0, 0)
			requireKindCounts(t, "DeadLettered", m.DeadLettered, 0, 0, 0)
		})
	}
}
