package integration

import (
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamwork-go/streamwork/integration/kafkatest"
	"github.com/streamwork-go/streamwork/kstream"
	"github.com/streamwork-go/streamwork/serde"
)

// A suppression's buffer survives a restart that lost the state directory:
// updates held when the App stopped come out after it restarts, restored
// from the buffer's changelog, once stream time passes their deadline, and
// nothing comes out twice (exactly-once, real broker).
func TestSuppressBufferSurvivesRestart(t *testing.T) {
	b := kafkatest.Require(t)
	ctx := testContext(t)
	in := newTopic(t, b, "sup-in", 1)
	out := newTopic(t, b, "sup-out", 1)
	appID := kafkatest.UniqueName(t, "sup")
	deleteTopicsAtEnd(t, b, appID+"-limit-buffer-changelog", appID+"-latest-changelog")

	bld := kstream.NewBuilder()
	tbl := kstream.TableFrom(bld, in, serde.String, serde.Int64, kstream.StoreName("latest"))
	kstream.SuppressUntilTimeLimit(tbl, 10*time.Second, kstream.BufferLimit{MaxRecords: 100, WhenFull: kstream.FailWhenFull},
		kstream.Named("limit")).ToStream().To(out, serde.String, serde.Int64)
	topo, err := bld.Build()
	if err != nil {
		t.Fatal(err)
	}
	base := time.Now().Add(-time.Hour).Truncate(time.Second).UnixMilli()
	rec := func(k string, v, at int64) *kgo.Record {
		vb, _ := serde.Int64.Serialize(in, v)
		return &kgo.Record{Topic: in, Key: []byte(k), Value: vb, Timestamp: time.UnixMilli(base + at)}
	}
	dir := t.TempDir()
	opts := []kstream.Opt{kstream.ApplicationID(appID), kstream.InstanceID("sup"), kstream.StateDir(dir),
		kstream.CommitInterval(100 * time.Millisecond), kstream.Guarantee(kstream.ExactlyOnce)}
	prod := producer(t, b)
	rd := newReader(t, b, out)

	first := startApp(t, b, "first", topo, opts...)
	waitAssigned(ctx, t, 1, first)
	produce(ctx, t, prod, []*kgo.Record{rec("a", 1, 0), rec("a", 2, 1000), rec("b", 1, 2000)})
	waitFor(ctx, t, "3 records processed", func() bool { return first.Metrics().RecordsProcessed >= 3 }, first)
	if err := first.stop(t); err != nil {
		t.Fatalf("first: Run returned %v", err)
	}
	rd.readToEnd(ctx)
	if n := rd.count(out); n != 0 {
		t.Fatalf("%d results before any deadline, want 0", n)
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}

	second := startApp(t, b, "second", topo, opts...)
	waitAssigned(ctx, t, 1, second)
	// Stream time 11000 passes a's deadline (10000); 13000 passes b's.
	produce(ctx, t, prod, []*kgo.Record{rec("c", 1, 11000)})
	rd.readUntil(ctx, "a's result", func() bool { return rd.count(out) >= 1 }, second)
	produce(ctx, t, prod, []*kgo.Record{rec("d", 1, 13000)})
	rd.readUntil(ctx, "b's result", func() bool { return rd.count(out) >= 2 }, second)
	if err := second.stop(t); err != nil {
		t.Fatalf("second: Run returned %v", err)
	}
	if got := second.Metrics().RestoredRecords; got == 0 {
		t.Fatalf("the second run restored nothing")
	}
	rd.readToEnd(ctx)
	var got []string
	for _, r := range rd.records(out) {
		v, _ := serde.Int64.Deserialize(out, r.Value)
		got = append(got, string(r.Key)+"="+strconv.FormatInt(v, 10)+"@"+strconv.FormatInt(r.Timestamp.UnixMilli()-base, 10))
	}
	want := []string{"a=2@1000", "b=1@2000"}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("results %v, want %v", got, want)
	}
}
