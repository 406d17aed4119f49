package kstream

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamwork-go/streamwork/kstream/internal/engine"
	"github.com/streamwork-go/streamwork/serde"
)

// A sink encodes keys and values of Appender serdes into a buffer allocated
// with the record, sized by the previous record: every record holds its own
// key and value, whatever their sizes and order (each size class, growth
// past a class, empty values, tombstones), next to a serde that is not an
// Appender.
func TestSinkEncodesKeysAndValuesIntoTheRecordsBuffer(t *testing.T) {
	bl := NewBuilder()
	s := From(bl, "in", serde.String, serde.String)
	s.To("out", serde.String, serde.String)
	MapValues(s, func(v string) []byte { return []byte(v) }).To("raw", serde.String, serde.Bytes)
	topo, err := bl.Build()
	if err != nil {
		t.Fatal(err)
	}
	c := &sliceCollector{}
	tk, err := engine.NewTask(TaskID{}, topo.t.Subs[0], testEnv(c))
	if err != nil {
		t.Fatal(err)
	}
	type kv struct {
		k, v string
		tomb bool
	}
	var in []kv
	for _, n := range []int{0, 1, 30, 62, 64, 65, 100, 128, 129, 200, 256, 257, 1000, 3, 500, 10, 0} {
		in = append(in, kv{k: strings.Repeat("k", n%7+1), v: strings.Repeat(string(rune('a'+n%26)), n)})
	}
	in = append(in, kv{k: "gone", tomb: true}, kv{k: strings.Repeat("K", 300), v: "after a long key"})
	for i, r := range in {
		rec := &kgo.Record{Topic: "in", Key: []byte(r.k), Timestamp: time.UnixMilli(int64(i)), Offset: int64(i)}
		if !r.tomb {
			rec.Value = []byte(r.v)
		}
		tk.Add(rec)
		if _, err := tk.Process(1); err != nil {
			t.Fatal(err)
		}
	}
	var out, raw []*kgo.Record
	for _, r := range c.recs {
		switch r.Topic {
		case "out":
			out = append(out, r)
		case "raw":
			raw = append(raw, r)
		}
	}
	if len(out) != len(in) || len(raw) != len(in) {
		t.Fatalf("%d records to out and %d to raw, want %d each", len(out), len(raw), len(in))
	}
	for i, r := range in {
		for _, got := range []*kgo.Record{out[i], raw[i]} {
			if string(got.Key) != r.k {
				t.Fatalf("record %d to %s: key %q, want %q", i, got.Topic, got.Key, r.k)
			}
			switch {
			case r.tomb && got.Value != nil:
				t.Fatalf("record %d to %s: value %q, want a tombstone", i, got.Topic, got.Value)
			case !r.tomb && (got.Value == nil || !bytes.Equal(got.Value, []byte(r.v))):
				t.Fatalf("record %d to %s: value %q (nil %v), want %q", i, got.Topic, got.Value, got.Value == nil, r.v)
			}
		}
		// The key cannot run into the value: appending to it leaves the
		// value as it was.
		_ = append(out[i].Key, "XXXXXXXX"...)
		if !r.tomb && string(out[i].Value) != r.v {
			t.Fatalf("record %d: appending to its key changed its value to %q", i, out[i].Value)
		}
	}
}
