package kstream

import (
	"reflect"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamwork-go/streamwork/serde"
)

type sliceCollector struct{ recs []*kgo.Record }

func (c *sliceCollector) send(_ *task, r *kgo.Record) { c.recs = append(c.recs, r) }

func testEnv(c collector) *taskEnv {
	return &taskEnv{appID: "t", logger: defaultConfig().logger, collector: c, metrics: new(metrics),
		now: time.Now, onDeser: LogAndFail, onProcess: LogAndFail, onProduce: LogAndFail}
}

// Records of the partitions of a task are processed in timestamp order
// across partitions, whatever order they were buffered in.
func TestTaskProcessesInTimestampOrderAcrossPartitions(t *testing.T) {
	b := NewBuilder()
	FromTopics(b, []string{"a", "b"}, serde.String, serde.String).To("out", serde.String, serde.String)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	c := &sliceCollector{}
	tk, err := newTask(TaskID{0, 3}, topo.subs[0], testEnv(c))
	if err != nil {
		t.Fatal(err)
	}
	add := func(topic string, off int64, ms int64) {
		tk.add(&kgo.Record{Topic: topic, Partition: 3, Offset: off, Value: []byte(topic), Key: []byte{byte('0' + off)}, Timestamp: time.UnixMilli(ms)})
	}
	add("a", 0, 10)
	add("a", 1, 30)
	add("a", 2, 50)
	add("b", 0, 20)
	add("b", 1, 40)
	add("b", 2, 45)
	if n, err := tk.process(100); n != 6 || err != nil {
		t.Fatalf("process = %d, %v", n, err)
	}
	var got []string
	for _, r := range c.recs {
		got = append(got, string(r.Value)+string(r.Key))
	}
	if want := []string{"a0", "b0", "a1", "b1", "b2", "a2"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("order = %v, want %v", got, want)
	}
	if off := tk.offsetsToCommit(); !reflect.DeepEqual(off, map[string]int64{"a": 3, "b": 3}) {
		t.Fatalf("offsets = %v", off)
	}
	tk.markCommitted(tk.offsetsToCommit())
	if off := tk.offsetsToCommit(); off != nil {
		t.Fatalf("offsets after commit = %v, want none", off)
	}
	if tk.streamTime != 50 {
		t.Fatalf("stream time = %d, want 50", tk.streamTime)
	}
}

func TestRecordQueueCompacts(t *testing.T) {
	q := &recordQueue{}
	for i := 0; i < 5000; i++ {
		q.push(&kgo.Record{Offset: int64(i)}, int64(i))
		if i%3 == 0 {
			r, ts := q.pop()
			if r.Offset != ts {
				t.Fatalf("pop mismatch %d %d", r.Offset, ts)
			}
		}
	}
	want := int64(1667)
	for q.len() > 0 {
		r, _ := q.pop()
		if r.Offset != want {
			t.Fatalf("got offset %d, want %d", r.Offset, want)
		}
		want++
	}
	if want != 5000 {
		t.Fatalf("drained up to %d, want 5000", want)
	}
}

type nopCollector struct{}

func (nopCollector) send(*task, *kgo.Record) {}

// BenchmarkStatelessPath measures one record through source decode, Filter,
// MapValues, SelectKey and sink encode.
func BenchmarkStatelessPath(b *testing.B) {
	bl := NewBuilder()
	s := From(bl, "in", serde.String, serde.Int64)
	s = s.Filter(func(_ string, v int64) bool { return v >= 0 })
	s = MapValues(s, func(v int64) int64 { return v * 2 })
	SelectKey(s, func(k string, _ int64) string { return k }).To("out", serde.String, serde.Int64)
	topo, err := bl.Build()
	if err != nil {
		b.Fatal(err)
	}
	tk, err := newTask(TaskID{}, topo.subs[0], testEnv(nopCollector{}))
	if err != nil {
		b.Fatal(err)
	}
	val, _ := serde.Int64.Serialize("in", 21)
	recs := make([]kgo.Record, 1024)
	for i := range recs {
		recs[i] = kgo.Record{Topic: "in", Key: []byte("user-42"), Value: val, Timestamp: time.UnixMilli(int64(i))}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := &recs[i%len(recs)]
		r.Offset = int64(i)
		tk.add(r)
		if _, err := tk.process(1); err != nil {
			b.Fatal(err)
		}
	}
}
