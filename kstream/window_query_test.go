package kstream

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamwork-go/streamwork/serde"
)

// QueryWindowStore reads a windowed count's windows and a session count's
// sessions on an App over a 2-partition topic: FetchRange, Fetch and All,
// exactly.
func TestQueryWindowStore(t *testing.T) {
	brokers := rtCluster(t, map[string]int32{"in": 2, "out": 2, "sessions": 2})
	b := NewBuilder()
	in := From(b, "in", serde.String, serde.String)
	g := GroupByKey(in, serde.String, serde.String)
	WindowedCount(WindowedBy(g, Tumbling(10*time.Second, time.Hour)), StoreName("per-10s")).
		ToStream().To("out", TimeWindowedSerde(serde.String, 10*time.Second), serde.Int64)
	WindowedCount(WindowedBy(g, Session(5*time.Second, time.Hour)), StoreName("sessions")).
		ToStream().To("sessions", SessionWindowedSerde(serde.String), serde.Int64)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	// Key k<i> has i+1 records at 1s, 2s, ... and one at 25s.
	var recs []*kgo.Record
	n := int64(0)
	for i := range 6 {
		k := fmt.Sprintf("k%d", i)
		for j := range i + 1 {
			recs = append(recs, &kgo.Record{Topic: "in", Partition: -1, Key: []byte(k), Value: []byte("x"), Timestamp: time.UnixMilli(int64(1000 * (j + 1)))})
			n++
		}
		recs = append(recs, &kgo.Record{Topic: "in", Partition: -1, Key: []byte(k), Value: []byte("x"), Timestamp: time.UnixMilli(25000)})
		n++
	}
	rtProduce(t, brokers, recs)
	app, err := New(topo, stOpts(t, brokers, "wquery", t.TempDir())...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := QueryWindowStore(app, "nope", serde.String, serde.Int64); !errors.Is(err, ErrUnknownStore) {
		t.Fatalf("unknown store: %v", err)
	}
	ws, err := QueryWindowStore(app, "per-10s", serde.String, serde.Int64)
	if err != nil {
		t.Fatal(err)
	}
	ss, err := QueryWindowStore(app, "sessions", serde.String, serde.Int64)
	if err != nil {
		t.Fatal(err)
	}
	stop := rtRun(t, app)
	stWaitProcessed(t, app, n)
	if n := len(app.Metrics().Tasks); n != 2 {
		t.Fatalf("%d tasks, want 2", n)
	}
	for i := range 6 {
		k := fmt.Sprintf("k%d", i)
		got, err := ws.FetchRange(k, time.UnixMilli(0), time.UnixMilli(60000))
		if err != nil {
			t.Fatal(err)
		}
		want := []KeyValue[Windowed[string], int64]{
			{Key: Windowed[string]{Key: k, Start: 0, End: 10000}, Value: int64(i + 1)},
			{Key: Windowed[string]{Key: k, Start: 20000, End: 30000}, Value: 1},
		}
		if !slices.Equal(got, want) {
			t.Fatalf("FetchRange(%s) = %v, want %v", k, got, want)
		}
		if v, ok, err := ws.Fetch(k, time.UnixMilli(20000)); err != nil || !ok || v != 1 {
			t.Fatalf("Fetch(%s, 20000) = %d, %v, %v", k, v, ok, err)
		}
		if _, ok, err := ws.Fetch(k, time.UnixMilli(10000)); err != nil || ok {
			t.Fatalf("Fetch(%s, 10000) = %v, %v; want none", k, ok, err)
		}
		sess, err := ss.FetchRange(k, time.UnixMilli(0), time.UnixMilli(60000))
		if err != nil {
			t.Fatal(err)
		}
		wantSess := []KeyValue[Windowed[string], int64]{
			{Key: Windowed[string]{Key: k, Start: 1000, End: int64(1000 * (i + 1))}, Value: int64(i + 1)},
			{Key: Windowed[string]{Key: k, Start: 25000, End: 25000}, Value: 1},
		}
		if !slices.Equal(sess, wantSess) {
			t.Fatalf("sessions of %s = %v, want %v", k, sess, wantSess)
		}
	}
	all, err := ws.All()
	if err != nil || len(all) != 12 {
		t.Fatalf("All = %d windows, %v; want 12", len(all), err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}
