package kstream

import (
	"reflect"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamwork-go/streamwork/kstream/internal/engine"
	"github.com/streamwork-go/streamwork/serde"
)

// Records of the partitions of a task are processed in timestamp order
// across partitions, whatever order they were buffered in. Once one
// partition is drained, the other's last record goes without it: both are
// known to be caught up, and MaxTaskIdle is 0 (the default).
func TestTaskProcessesInTimestampOrderAcrossPartitions(t *testing.T) {
	b := NewBuilder()
	FromTopics(b, []string{"a", "b"}, serde.String, serde.String).To("out", serde.String, serde.String)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	c := &sliceCollector{}
	tk, err := engine.NewTask(TaskID{Subtopology: 0, Partition: 3}, topo.t.Subs[0], testEnv(c))
	if err != nil {
		t.Fatal(err)
	}
	add := func(topic string, off int64, ms int64) {
		tk.Add(&kgo.Record{Topic: topic, Partition: 3, Offset: off, Value: []byte(topic), Key: []byte{byte('0' + off)}, Timestamp: time.UnixMilli(ms)})
	}
	add("a", 0, 10)
	add("a", 1, 30)
	add("a", 2, 50)
	add("b", 0, 20)
	add("b", 1, 40)
	add("b", 2, 45)
	tk.SetEndOffset("a", 3)
	tk.SetEndOffset("b", 3)
	if n, err := tk.Process(100); n != 6 || err != nil {
		t.Fatalf("process = %d, %v", n, err)
	}
	if got := tk.Env.Counters.EnforcedProcessing.Load(); got != 1 {
		t.Fatalf("enforced processing = %d, want 1 (a2, with b empty)", got)
	}
	var got []string
	for _, r := range c.recs {
		got = append(got, string(r.Value)+string(r.Key))
	}
	if want := []string{"a0", "b0", "a1", "b1", "b2", "a2"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("order = %v, want %v", got, want)
	}
	if off := tk.OffsetsToCommit(); !reflect.DeepEqual(off, map[string]int64{"a": 3, "b": 3}) {
		t.Fatalf("offsets = %v", off)
	}
	tk.MarkCommitted(tk.OffsetsToCommit())
	if off := tk.OffsetsToCommit(); off != nil {
		t.Fatalf("offsets after commit = %v, want none", off)
	}
	if tk.StreamTime != 50 {
		t.Fatalf("stream time = %d, want 50", tk.StreamTime)
	}
}

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
	tk, err := engine.NewTask(TaskID{}, topo.t.Subs[0], testEnv(nopCollector{}))
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
		tk.Add(r)
		if _, err := tk.Process(1); err != nil {
			b.Fatal(err)
		}
	}
}
