package integration

import (
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamwork-go/streamwork/integration/kafkatest"
	"github.com/streamwork-go/streamwork/kstream"
	"github.com/streamwork-go/streamwork/serde"
)

// A source with a lag bound, started on an input that is already written:
// each partition's end is known from the first fetch, so exactly the
// records more than maxLag behind it are shed (written to the shed topic
// with their headers, in the same transactions as the outputs) and the
// last maxLag of each partition are processed. Processed plus shed is the
// input, every offset is committed, and the metrics say the same.
func TestShedLoadOnRealBroker(t *testing.T) {
	b := kafkatest.Require(t)
	ctx := testContext(t)
	const maxLag = 50
	sizes := map[int32]int{0: 300, 1: 200}
	in := newTopic(t, b, "shed-in", 2)
	out := newTopic(t, b, "shed-out", 2)
	shed := newTopic(t, b, "shed-dropped", 2)
	appID := kafkatest.UniqueName(t, "shed")

	base := time.Now().Add(-3 * time.Hour).Truncate(time.Millisecond)
	var recs []*kgo.Record
	for p, n := range sizes {
		for i := range n {
			recs = append(recs, &kgo.Record{Topic: in, Partition: p,
				Key: fmt.Appendf(nil, "k%d-%d", p, i), Value: fmt.Appendf(nil, "v%d-%d", p, i),
				Timestamp: base.Add(time.Duration(i) * time.Second),
				Headers:   []kgo.RecordHeader{{Key: "origin", Value: []byte("test")}}})
		}
	}
	produce(ctx, t, producer(t, b), recs)

	bld := kstream.NewBuilder()
	kstream.From(bld, in, serde.String, serde.String, kstream.Named("input"),
		kstream.ShedLoad(kstream.ShedPolicy{MaxLag: maxLag, To: shed})).
		To(out, serde.String, serde.String)
	topo, err := bld.Build()
	if err != nil {
		t.Fatal(err)
	}
	app := startApp(t, b, "shed", topo, kstream.ApplicationID(appID), kstream.Guarantee(kstream.ExactlyOnce),
		kstream.InstanceID("shed"), kstream.StateDir(t.TempDir()))

	wantShed, wantOut := 0, 0
	for _, n := range sizes {
		wantShed += n - maxLag
		wantOut += maxLag
	}
	r := newReader(t, b, out, shed)
	r.readCounts(ctx, map[string]int{out: wantOut, shed: wantShed}, app)
	adm := b.Admin(t)
	waitFor(ctx, t, "offsets committed to the end of the input", func() bool {
		got := committedOffsets(ctx, t, adm, appID, in)
		return got[0] == int64(sizes[0]) && got[1] == int64(sizes[1])
	}, app)

	// Outputs: the last maxLag records of each input partition (the sink
	// partitions by key, so sorted by input offset here).
	gotOut := make(map[int32][]string)
	for _, rec := range r.records(out) {
		var p, i int
		if _, err := fmt.Sscanf(string(rec.Value), "v%d-%d", &p, &i); err != nil {
			t.Fatalf("output %q: %v", rec.Value, err)
		}
		gotOut[int32(p)] = append(gotOut[int32(p)], string(rec.Value))
	}
	for _, vs := range gotOut {
		slices.SortFunc(vs, func(a, b string) int {
			var p, i, j int
			_, _ = fmt.Sscanf(a, "v%d-%d", &p, &i)
			_, _ = fmt.Sscanf(b, "v%d-%d", &p, &j)
			return i - j
		})
	}
	// The shed topic: the first n-maxLag records of each partition, keyed
	// by key, with the original and the shed headers.
	shedBy := make(map[string]*kgo.Record)
	for _, rec := range r.records(shed) {
		shedBy[string(rec.Key)] = rec
	}
	processed := 0
	for p, n := range sizes {
		for i := range n {
			key := fmt.Sprintf("k%d-%d", p, i)
			rec := shedBy[key]
			if i < n-maxLag {
				if rec == nil {
					t.Fatalf("record %s (offset %d) was not shed", key, i)
				}
				want := map[string]string{"origin": "test", kstream.HeaderShedReason: "lag", kstream.HeaderShedTopic: in,
					kstream.HeaderShedPartition: strconv.Itoa(int(p)), kstream.HeaderShedOffset: strconv.Itoa(i)}
				got := make(map[string]string)
				for _, h := range rec.Headers {
					got[h.Key] = string(h.Value)
				}
				if fmt.Sprint(got) != fmt.Sprint(want) || string(rec.Value) != fmt.Sprintf("v%d-%d", p, i) ||
					!rec.Timestamp.Equal(base.Add(time.Duration(i)*time.Second)) {
					t.Errorf("shed record %s: value %q, timestamp %v, headers %v; want headers %v", key, rec.Value, rec.Timestamp, got, want)
				}
				continue
			}
			if rec != nil {
				t.Errorf("record %s (offset %d, lag %d) was shed", key, i, n-i)
			}
		}
		want := make([]string, 0, maxLag)
		for i := n - maxLag; i < n; i++ {
			want = append(want, fmt.Sprintf("v%d-%d", p, i))
		}
		if fmt.Sprint(gotOut[p]) != fmt.Sprint(want) {
			t.Errorf("partition %d outputs:\n got %v\nwant %v", p, gotOut[p], want)
		}
		processed += len(gotOut[p])
	}
	if processed+len(shedBy) != len(recs) {
		t.Errorf("processed %d + shed %d != input %d", processed, len(shedBy), len(recs))
	}

	m := app.Metrics()
	if m.Shed != int64(wantShed) || m.RecordsProcessed != int64(wantOut) || m.TransactionsAborted != 0 {
		t.Errorf("metrics: Shed %d, RecordsProcessed %d, TransactionsAborted %d; want %d, %d, 0",
			m.Shed, m.RecordsProcessed, m.TransactionsAborted, wantShed, wantOut)
	}
	perPartition := make(map[int32]int64)
	for _, pm := range m.Partitions {
		if pm.Topic == in {
			perPartition[pm.Partition] = pm.Shed
		}
	}
	if perPartition[0] != int64(sizes[0]-maxLag) || perPartition[1] != int64(sizes[1]-maxLag) {
		t.Errorf("per-partition Shed %v, want 0:%d 1:%d", perPartition, sizes[0]-maxLag, sizes[1]-maxLag)
	}
	if err := app.stop(t); err != nil {
		t.Fatal(err)
	}
}
