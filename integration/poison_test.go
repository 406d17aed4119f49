package integration

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamwork-go/streamwork/integration/kafkatest"
	"github.com/streamwork-go/streamwork/kstream"
	"github.com/streamwork-go/streamwork/serde"
)

// The poison-at-scale input: poisonScaleRecords records on
// poisonScalePartitions partitions, of which 1 % are not JSON and 1 % are
// marked for the check node to fail on (half by an error, half by a panic).
const (
	poisonScaleRecords    = 100_000
	poisonScalePartitions = 4
	poisonScaleUsers      = 200
)

// click is the value of a poison-at-scale record.
type click struct {
	User string `json:"u"`
	Mark string `json:"m,omitempty"` // "error" or "panic": the check node fails
}

var errMarked = errors.New("marked record")

// checker forwards each click, and fails on the marked ones.
type checker struct {
	ctx kstream.ProcessorContext[string, click]
}

func (p *checker) Init(ctx kstream.ProcessorContext[string, click]) error { p.ctx = ctx; return nil }

func (p *checker) Process(r kstream.Record[string, click]) error {
	switch r.Value.Mark {
	case "error":
		return errMarked
	case "panic":
		panic("marked record " + r.Key)
	}
	p.ctx.Forward(r)
	return nil
}

func (p *checker) Close() error { return nil }

// poisonScale is the written input and what each record is.
type poisonScale struct {
	topic   string
	records []*kgo.Record // in the order made; each knows its offset once written
	kind    map[*kgo.Record]string
	byPos   map[[2]int64]*kgo.Record // (partition, offset) → record
	counts  map[string]int64         // clicks per user over the good records
	bad     int                      // records that fail, of each kind
}

// newPoisonScale makes the input: record i has key "k<i>", a random user,
// timestamp now-2h + i ms, and header seq=i; a seeded 1 % has a value that
// is not JSON, another 1 % a mark.
func newPoisonScale(t *testing.T, b *kafkatest.Broker) *poisonScale {
	in := &poisonScale{
		topic: newTopic(t, b, "clicks", poisonScalePartitions),
		kind:  make(map[*kgo.Record]string), byPos: make(map[[2]int64]*kgo.Record),
		counts: make(map[string]int64), bad: poisonScaleRecords / 100,
	}
	rng := rand.New(rand.NewPCG(7, 11))
	fate := make([]string, poisonScaleRecords)
	for i := 0; i < in.bad; i++ {
		fate[i] = "deserialization"
		fate[in.bad+i] = "error"
		if i%2 == 1 {
			fate[in.bad+i] = "panic"
		}
	}
	rng.Shuffle(len(fate), func(i, j int) { fate[i], fate[j] = fate[j], fate[i] })
	base := time.Now().Add(-2 * time.Hour)
	for i := range poisonScaleRecords {
		user := "u" + strconv.Itoa(rng.IntN(poisonScaleUsers))
		var value []byte
		switch fate[i] {
		case "deserialization":
			value = []byte(`{"u":"` + user + `",`) // cut short
		case "":
			value = fmt.Appendf(nil, `{"u":%q}`, user)
			in.counts[user]++
		default:
			value = fmt.Appendf(nil, `{"u":%q,"m":%q}`, user, fate[i])
		}
		r := &kgo.Record{
			Topic: in.topic, Partition: int32(i % poisonScalePartitions), Key: []byte("k" + strconv.Itoa(i)), Value: value,
			Timestamp: base.Add(time.Duration(i) * time.Millisecond),
			Headers:   []kgo.RecordHeader{{Key: "seq", Value: []byte(strconv.Itoa(i))}},
		}
		in.records = append(in.records, r)
		switch fate[i] {
		case "deserialization":
			in.kind[r] = "deserialization"
		case "error", "panic":
			in.kind[r] = "processing"
		}
	}
	return in
}

// write writes the records keep selects, and indexes them by position.
func (in *poisonScale) write(t *testing.T, cl *kgo.Client, keep func(i int) bool) {
	t.Helper()
	var recs []*kgo.Record
	for i, r := range in.records {
		if keep(i) {
			recs = append(recs, r)
		}
	}
	produce(testContext(t), t, cl, recs)
	for _, r := range recs {
		in.byPos[[2]int64{int64(r.Partition), r.Offset}] = r
	}
}

// firstBad returns the index of the first failing record of each partition.
func (in *poisonScale) firstBad() map[int32]int {
	first := make(map[int32]int)
	for i, r := range in.records {
		if _, bad := in.kind[r]; bad {
			if _, ok := first[r.Partition]; !ok {
				first[r.Partition] = i
			}
		}
	}
	return first
}

// poisonScaleTopology re-keys the clicks by user after the check node and
// counts them in a changelogged store, written to out.
func poisonScaleTopology(t *testing.T, in, out string) *kstream.Topology {
	t.Helper()
	bld := kstream.NewBuilder()
	src := kstream.From(bld, in, serde.String, serde.JSON[click](), kstream.Named("source"))
	checked := kstream.Process(src, func() kstream.Processor[string, click, string, click] { return &checker{} }, kstream.Named("check"))
	byUser := kstream.GroupBy(checked, func(_ string, c click) string { return c.User }, serde.String, serde.JSON[click](), kstream.Named("by-user"))
	kstream.Count(byUser, kstream.StoreName("clicks-per-user")).ToStream().To(out, serde.String, serde.Int64, kstream.Named("sink"))
	topo, err := bld.Build()
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	return topo
}

// TestPoisonPillsAtScale runs 100,000 records with 1 % undecodable and 1 %
// failing in a node through a re-keying count, under each error handler
// and both at-least-once and exactly-once, and checks every count, every
// dead letter and the metrics exactly.
func TestPoisonPillsAtScale(t *testing.T) {
	b := kafkatest.Require(t)
	in := newPoisonScale(t, b)
	cl := producer(t, b)
	in.write(t, cl, func(int) bool { return true })
	goodTotal := int64(0)
	for _, n := range in.counts {
		goodTotal += n
	}
	if goodTotal != poisonScaleRecords-2*int64(in.bad) {
		t.Fatalf("model: %d good records, want %d", goodTotal, poisonScaleRecords-2*in.bad)
	}

	for _, g := range []kstream.DeliveryGuarantee{kstream.AtLeastOnce, kstream.ExactlyOnce} {
		t.Run("LogAndSkip/"+g.String(), func(t *testing.T) {
			ctx := testContext(t)
			out := newTopic(t, b, "counts", poisonScalePartitions)
			app := startApp(t, b, "skip", poisonScaleTopology(t, in.topic, out),
				kstream.ApplicationID(kafkatest.UniqueName(t, "app")), kstream.Guarantee(g),
				kstream.CommitInterval(200*time.Millisecond), kstream.StateDir(t.TempDir()),
				kstream.DeserializationErrorHandler(kstream.LogAndSkip),
				kstream.ProcessingErrorHandler(kstream.LogAndSkip))
			rd := newReader(t, b, out)
			newLastCounts(rd, out).waitCounts(ctx, t, in.counts, app)
			waitFor(ctx, t, "the input to be committed", func() bool {
				return app.Metrics().InputRecords == poisonScaleRecords
			}, app)
			if err := app.stop(t); err != nil {
				t.Fatalf("Run returned %v after a clean shutdown, want nil", err)
			}
			m := app.Metrics()
			requireKindCounts(t, "Skipped", m.Skipped, int64(in.bad), int64(in.bad), 0)
			requireKindCounts(t, "DeadLettered", m.DeadLettered, 0, 0, 0)
			if m.InputRecords != poisonScaleRecords {
				t.Errorf("InputRecords = %d, want %d", m.InputRecords, poisonScaleRecords)
			}
			t.Logf("%s: %d counted + %d skipped = %d input records", g, goodTotal, m.Skipped[kstream.DeserializationErrorKind]+m.Skipped[kstream.ProcessingErrorKind], m.InputRecords)
		})

		t.Run("LogAndDeadLetter/"+g.String(), func(t *testing.T) {
			ctx := testContext(t)
			out := newTopic(t, b, "counts", poisonScalePartitions)
			dlq := newTopic(t, b, "dlq", 2)
			app := startApp(t, b, "dlq", poisonScaleTopology(t, in.topic, out),
				kstream.ApplicationID(kafkatest.UniqueName(t, "app")), kstream.Guarantee(g),
				kstream.CommitInterval(200*time.Millisecond), kstream.StateDir(t.TempDir()),
				kstream.DeserializationErrorHandler(kstream.LogAndDeadLetter(dlq)),
				kstream.ProcessingErrorHandler(kstream.LogAndDeadLetter(dlq)))
			rd := newReader(t, b, out, dlq)
			newLastCounts(rd, out).waitCounts(ctx, t, in.counts, app)
			rd.readCounts(ctx, map[string]int{dlq: 2 * in.bad}, app)
			if err := app.stop(t); err != nil {
				t.Fatalf("Run returned %v after a clean shutdown, want nil", err)
			}
			rd.readToEnd(ctx)

			dead := rd.records(dlq)
			if len(dead) != 2*in.bad {
				t.Fatalf("the dead-letter topic holds %d records, want %d", len(dead), 2*in.bad)
			}
			seen := make(map[*kgo.Record]bool)
			for _, d := range dead {
				part, _ := strconv.ParseInt(header(d, kstream.HeaderSourcePart), 10, 32)
				off, _ := strconv.ParseInt(header(d, kstream.HeaderSourceOffset), 10, 64)
				orig := in.byPos[[2]int64{part, off}]
				kind, bad := in.kind[orig]
				if orig == nil || !bad || seen[orig] {
					t.Fatalf("dead letter %s names input %d/%d, which is not a failing record, or was seen before", recString(d), part, off)
				}
				seen[orig] = true
				node := "check"
				if kind == "deserialization" {
					node = "source"
				}
				requireDeadLetter(t, d, orig, kind, node)
			}
			m := app.Metrics()
			requireKindCounts(t, "DeadLettered", m.DeadLettered, int64(in.bad), int64(in.bad), 0)
			requireKindCounts(t, "Skipped", m.Skipped, 0, 0, 0)
			if m.InputRecords != poisonScaleRecords {
				t.Errorf("InputRecords = %d, want %d", m.InputRecords, poisonScaleRecords)
			}
			t.Logf("%s: %d counted + %d dead letters = %d input records", g, goodTotal, len(dead), m.InputRecords)
		})
	}

	// LogAndFail: a fresh input whose records before the first failing one
	// of each partition are written and committed first; then the rest.
	// Run stops at the first failing record of one partition, naming it,
	// and commits nothing past it.
	for _, g := range []kstream.DeliveryGuarantee{kstream.AtLeastOnce, kstream.ExactlyOnce} {
		t.Run("LogAndFail/"+g.String(), func(t *testing.T) {
			ctx := testContext(t)
			in := newPoisonScale(t, b)
			first := in.firstBad()
			before := func(i int) bool { return i < first[in.records[i].Partition] }
			in.write(t, cl, before)
			out := newTopic(t, b, "counts", poisonScalePartitions)
			appID := kafkatest.UniqueName(t, "app")
			adm := b.Admin(t)
			app := startApp(t, b, "fail", poisonScaleTopology(t, in.topic, out),
				kstream.ApplicationID(appID), kstream.Guarantee(g),
				kstream.CommitInterval(100*time.Millisecond), kstream.StateDir(t.TempDir()))
			waitFor(ctx, t, "the records before the first failing ones to be committed", func() bool {
				c := committedOffsets(ctx, t, adm, appID, in.topic)
				for p, i := range first {
					if c[p] != int64(i/poisonScalePartitions) {
						return false
					}
				}
				return true
			}, app)
			in.write(t, cl, func(i int) bool { return !before(i) })

			err := app.wait(t)
			var perr *kstream.ProcessingError
			if !errors.As(err, &perr) {
				t.Fatalf("Run returned %v, want an error wrapping *kstream.ProcessingError", err)
			}
			want := in.records[first[perr.Partition]]
			if perr.Topic != in.topic || perr.Offset != want.Offset {
				t.Fatalf("Run failed at %s/%d offset %d, want %s/%d offset %d (the partition's first failing record)",
					perr.Topic, perr.Partition, perr.Offset, in.topic, perr.Partition, want.Offset)
			}
			for _, s := range []string{in.topic, "partition " + strconv.Itoa(int(perr.Partition)), "offset " + strconv.FormatInt(want.Offset, 10)} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("Run's error %q does not name %q", err, s)
				}
			}
			committed := committedOffsets(ctx, t, adm, appID, in.topic)
			if c := committed[perr.Partition]; c != want.Offset {
				t.Errorf("committed %s/%d at %d, want %d: the failing record's offset", in.topic, perr.Partition, c, want.Offset)
			}
			for p, i := range first {
				if c := committed[p]; c > in.records[i].Offset {
					t.Errorf("committed %s/%d at %d, past its first failing record at %d", in.topic, p, c, in.records[i].Offset)
				}
			}
			t.Logf("%s: Run returned %v; committed %v", g, err, committed)
		})
	}
}
