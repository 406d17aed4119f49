package integration

import (
	"fmt"
	"maps"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamwork-go/streamwork/integration/kafkatest"
	"github.com/streamwork-go/streamwork/kstream"
	"github.com/streamwork-go/streamwork/serde"
)

// A tumbling windowed count with grace and EmitFinal under exactly-once, on
// the real broker: every window of every key is emitted exactly once with
// its exact count, across a stop, the loss of the state directory and a
// restore from the changelogs (the window store's and the record of what
// was emitted); records for closed windows are counted and written to the
// late topic; the window changelog is compact,delete with the store's
// retention plus one day.
func TestWindowedEmitFinalAcrossRestart(t *testing.T) {
	b := kafkatest.Require(t)
	ctx := testContext(t)
	in := newTopic(t, b, "win-in", 2)
	out := newTopic(t, b, "win-out", 2)
	late := newTopic(t, b, "win-late", 1)
	appID := kafkatest.UniqueName(t, "win")
	const store = "win-counts"
	changelog := appID + "-" + store + "-changelog"
	deleteTopicsAtEnd(t, b, changelog, appID+"-"+store+"-emit-changelog")

	const size, grace = 10 * time.Second, 2 * time.Second
	bld := kstream.NewBuilder()
	src := kstream.From(bld, in, serde.String, serde.Int64)
	w := kstream.WindowedBy(kstream.GroupByKey(src, serde.String, serde.Int64), kstream.Tumbling(size, grace))
	kstream.WindowedCount(w, kstream.EmitFinal(), kstream.StoreName(store), kstream.LateRecordsTo(late)).
		ToStream().To(out, kstream.TimeWindowedSerde(serde.String, size), serde.Int64)
	topo, err := bld.Build()
	if err != nil {
		t.Fatal(err)
	}

	// Ten keys, a record every 100ms of event time per key; phase one
	// covers [0s, 30s) after base, phase two [30s, 45s). The windows
	// [0,10), [10,20), [20,30) and [30,40) close; [40,50) stays open. base
	// is an hour ago on a window boundary: brokers delete by record
	// timestamps, so event times are recent.
	base := time.Now().Add(-time.Hour).Truncate(time.Minute).UnixMilli()
	want := map[string]int64{}
	records := func(from, to int64) []*kgo.Record {
		var recs []*kgo.Record
		for ts := base + from; ts < base+to; ts += 100 {
			for k := range 10 {
				key := "k" + strconv.Itoa(k)
				start := ts / size.Milliseconds() * size.Milliseconds()
				if start+size.Milliseconds() <= base+40000 {
					want[fmt.Sprintf("%s@%d", key, start)]++
				}
				v, _ := serde.Int64.Serialize(in, ts)
				recs = append(recs, &kgo.Record{Topic: in, Key: []byte(key), Value: v, Timestamp: time.UnixMilli(ts)})
			}
		}
		return recs
	}
	dir := t.TempDir()
	opts := []kstream.Opt{kstream.ApplicationID(appID), kstream.InstanceID("win"), kstream.StateDir(dir),
		kstream.CommitInterval(200 * time.Millisecond), kstream.Guarantee(kstream.ExactlyOnce)}
	prod := producer(t, b)
	rd := newReader(t, b, out, late)

	first := startApp(t, b, "first", topo, opts...)
	waitAssigned(ctx, t, 2, first)
	produce(ctx, t, prod, records(0, 30000))
	// [0,10) and [10,20) of every key.
	rd.readUntil(ctx, "20 final results", func() bool { return rd.count(out) >= 20 }, first)
	if err := first.stop(t); err != nil {
		t.Fatalf("first: Run returned %v", err)
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}

	second := startApp(t, b, "second", topo, opts...)
	waitAssigned(ctx, t, 2, second)
	produce(ctx, t, prod, records(30000, 45000))
	lateRecs := make([]*kgo.Record, 0, 10)
	for k := range 10 {
		v, _ := serde.Int64.Serialize(in, base+5000)
		lateRecs = append(lateRecs, &kgo.Record{Topic: in, Key: []byte("k" + strconv.Itoa(k)), Value: v, Timestamp: time.UnixMilli(base + 5000)})
	}
	produce(ctx, t, prod, lateRecs)
	rd.readUntil(ctx, "40 final results and 10 late records", func() bool { return rd.count(out) >= 40 && rd.count(late) >= 10 }, second)
	waitFor(ctx, t, "10 late records counted", func() bool { return second.Metrics().LateRecords >= 10 }, second)
	if err := second.stop(t); err != nil {
		t.Fatalf("second: Run returned %v", err)
	}
	rd.readToEnd(ctx)

	got := map[string]int64{}
	ks := kstream.TimeWindowedSerde(serde.String, size)
	for _, r := range rd.records(out) {
		wk, err := ks.Deserialize(out, r.Key)
		if err != nil {
			t.Fatal(err)
		}
		n, _ := serde.Int64.Deserialize(out, r.Value)
		id := fmt.Sprintf("%s@%d", wk.Key, wk.Start)
		if _, dup := got[id]; dup {
			t.Fatalf("window %s emitted twice", id)
		}
		if wk.End != wk.Start+size.Milliseconds() {
			t.Fatalf("window %s ends at %d", id, wk.End)
		}
		got[id] = n
	}
	if !maps.Equal(got, want) {
		t.Fatalf("final results:\n got %v\nwant %v", got, want)
	}
	if n := rd.count(late); n != 10 {
		t.Fatalf("late topic holds %d records, want 10", n)
	}
	if m := second.Metrics(); m.LateRecords != 10 || m.LateRecordsWritten != 10 {
		t.Fatalf("late records counted %d, written %d; want 10 and 10", m.LateRecords, m.LateRecordsWritten)
	}
	adm := b.Admin(t)
	policy := topicConfig(ctx, t, adm, changelog, "cleanup.policy")
	retention := topicConfig(ctx, t, adm, changelog, "retention.ms")
	if policy != "compact,delete" || retention != strconv.FormatInt((size+grace+24*time.Hour).Milliseconds(), 10) {
		t.Fatalf("window changelog cleanup.policy=%q retention.ms=%q, want compact,delete and %d", policy, retention,
			(size + grace + 24*time.Hour).Milliseconds())
	}
}

// With CloseWindowsWhenIdle a window closes on a quiet input: two records,
// then nothing; once the input has been idle for a second, stream time
// follows the wall clock and the window's final result comes out (real
// broker, real clock).
func TestWindowsCloseOnIdleInput(t *testing.T) {
	b := kafkatest.Require(t)
	ctx := testContext(t)
	in := newTopic(t, b, "idlewin-in", 1)
	out := newTopic(t, b, "idlewin-out", 1)
	appID := kafkatest.UniqueName(t, "idlewin")
	deleteTopicsAtEnd(t, b, appID+"-idle-counts-changelog", appID+"-idle-counts-emit-changelog")
	const size = 4 * time.Second
	bld := kstream.NewBuilder()
	w := kstream.WindowedBy(kstream.GroupByKey(kstream.From(bld, in, serde.String, serde.Int64), serde.String, serde.Int64),
		kstream.Tumbling(size, kstream.NoGrace))
	kstream.WindowedCount(w, kstream.EmitFinal(), kstream.StoreName("idle-counts"), kstream.CloseWindowsWhenIdle(time.Second)).
		ToStream().To(out, kstream.TimeWindowedSerde(serde.String, size), serde.Int64)
	topo, err := bld.Build()
	if err != nil {
		t.Fatal(err)
	}
	base := time.Now().Add(-time.Hour).Truncate(time.Minute).UnixMilli()
	app := startApp(t, b, "app", topo, kstream.ApplicationID(appID), kstream.StateDir(t.TempDir()),
		kstream.CommitInterval(100*time.Millisecond))
	waitAssigned(ctx, t, 1, app)
	var recs []*kgo.Record
	for _, at := range []int64{500, 1500} {
		v, _ := serde.Int64.Serialize(in, at)
		recs = append(recs, &kgo.Record{Topic: in, Key: []byte("k"), Value: v, Timestamp: time.UnixMilli(base + at)})
	}
	produce(ctx, t, producer(t, b), recs)
	rd := newReader(t, b, out)
	rd.readUntil(ctx, "the window's final result on an idle input", func() bool { return rd.count(out) >= 1 }, app)
	r := rd.records(out)[0]
	wk, err := kstream.TimeWindowedSerde(serde.String, size).Deserialize(out, r.Key)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := serde.Int64.Deserialize(out, r.Value)
	if wk.Key != "k" || wk.Start != base || n != 2 {
		t.Fatalf("result %s[%d]=%d, want k[%d]=2", wk.Key, wk.Start-base, n, 0)
	}
	if m := app.Metrics(); m.IdleWindowAdvances == 0 {
		t.Fatalf("IdleWindowAdvances = 0 after a window closed on an idle input")
	}
	if err := app.stop(t); err != nil {
		t.Fatal(err)
	}
}
