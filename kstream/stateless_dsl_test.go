package kstream_test

import (
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/streamwork-go/streamwork/kstream"
	"github.com/streamwork-go/streamwork/kstream/kstreamtest"
	"github.com/streamwork-go/streamwork/serde"
)

type kv = kstream.KeyValue[string, string]

func ts(ms int64) time.Time { return time.UnixMilli(ms) }

func mustDriver(t *testing.T, b *kstream.Builder, opts ...kstream.Opt) *kstreamtest.Driver {
	t.Helper()
	topo, err := b.Build()
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	d, err := kstreamtest.New(topo, opts...)
	if err != nil {
		t.Fatalf("kstreamtest.New: %v", err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return d
}

func pipeAll(t *testing.T, in *kstreamtest.InputTopic[string, string], pairs ...string) {
	t.Helper()
	for i := 0; i+1 < len(pairs); i += 2 {
		if err := in.Pipe(pairs[i], pairs[i+1], ts(int64(1000+i))); err != nil {
			t.Fatalf("Pipe(%q, %q): %v", pairs[i], pairs[i+1], err)
		}
	}
}

func equal[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got %v\nwant %v", what, got, want)
	}
}

func TestFilterAndFilterNot(t *testing.T) {
	b := kstream.NewBuilder()
	s := kstream.From(b, "in", serde.String, serde.String)
	s.Filter(func(_, v string) bool { return strings.HasPrefix(v, "a") }).To("kept", serde.String, serde.String)
	s.FilterNot(func(_, v string) bool { return strings.HasPrefix(v, "a") }).To("dropped", serde.String, serde.String)
	d := mustDriver(t, b)
	pipeAll(t, kstreamtest.Input(d, "in", serde.String, serde.String), "1", "apple", "2", "banana", "3", "avocado", "4", "")
	equal(t, "kept", kstreamtest.Output(d, "kept", serde.String, serde.String).KeyValues(),
		[]kv{{Key: "1", Value: "apple"}, {Key: "3", Value: "avocado"}})
	equal(t, "dropped", kstreamtest.Output(d, "dropped", serde.String, serde.String).KeyValues(),
		[]kv{{Key: "2", Value: "banana"}, {Key: "4", Value: ""}})
}

func TestMapFamilyChangesTypesAndKeepsTimestamps(t *testing.T) {
	b := kstream.NewBuilder()
	s := kstream.From(b, "in", serde.String, serde.String)
	kstream.Map(s, func(k, v string) (int64, int64) {
		n, _ := strconv.ParseInt(k, 10, 64)
		return n * 10, int64(len(v))
	}).To("map", serde.Int64, serde.Int64)
	kstream.MapValues(s, strings.ToUpper).To("mapvalues", serde.String, serde.String)
	kstream.MapValuesWithKey(s, func(k, v string) string { return k + ":" + v }).To("mapvalueswithkey", serde.String, serde.String)
	kstream.SelectKey(s, func(_, v string) string { return v[:1] }).To("selectkey", serde.String, serde.String)
	kstream.FlatMap(s, func(k, v string) []kstream.KeyValue[string, int32] {
		var out []kstream.KeyValue[string, int32]
		for i, w := range strings.Fields(v) {
			out = append(out, kstream.KeyValue[string, int32]{Key: w, Value: int32(i)})
		}
		return out
	}).To("flatmap", serde.String, serde.Int32)
	kstream.FlatMapValues(s, strings.Fields).To("flatmapvalues", serde.String, serde.String)
	d := mustDriver(t, b)
	in := kstreamtest.Input(d, "in", serde.String, serde.String)
	if err := in.Pipe("1", "hello big world", ts(5000)); err != nil {
		t.Fatal(err)
	}
	if err := in.Pipe("2", "yo", ts(7000)); err != nil {
		t.Fatal(err)
	}
	maps, err := kstreamtest.Output(d, "map", serde.Int64, serde.Int64).Records()
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "map", maps, []kstream.Record[int64, int64]{
		{Key: 10, Value: 15, Timestamp: ts(5000)}, {Key: 20, Value: 2, Timestamp: ts(7000)},
	})
	equal(t, "mapvalues", kstreamtest.Output(d, "mapvalues", serde.String, serde.String).KeyValues(),
		[]kv{{Key: "1", Value: "HELLO BIG WORLD"}, {Key: "2", Value: "YO"}})
	equal(t, "mapvalueswithkey", kstreamtest.Output(d, "mapvalueswithkey", serde.String, serde.String).KeyValues(),
		[]kv{{Key: "1", Value: "1:hello big world"}, {Key: "2", Value: "2:yo"}})
	equal(t, "selectkey", kstreamtest.Output(d, "selectkey", serde.String, serde.String).KeyValues(),
		[]kv{{Key: "h", Value: "hello big world"}, {Key: "y", Value: "yo"}})
	equal(t, "flatmap", kstreamtest.Output(d, "flatmap", serde.String, serde.Int32).KeyValues(),
		[]kstream.KeyValue[string, int32]{{Key: "hello", Value: 0}, {Key: "big", Value: 1}, {Key: "world", Value: 2}, {Key: "yo", Value: 0}})
	fmv, err := kstreamtest.Output(d, "flatmapvalues", serde.String, serde.String).Records()
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "flatmapvalues", fmv, []kstream.Record[string, string]{
		{Key: "1", Value: "hello", Timestamp: ts(5000)}, {Key: "1", Value: "big", Timestamp: ts(5000)},
		{Key: "1", Value: "world", Timestamp: ts(5000)}, {Key: "2", Value: "yo", Timestamp: ts(7000)},
	})
}

func TestPeekForeachHeadersPassThrough(t *testing.T) {
	b := kstream.NewBuilder()
	var peeked, each []string
	s := kstream.From(b, "in", serde.String, serde.String).
		Peek(func(k, v string) { peeked = append(peeked, k+"="+v) })
	s.Foreach(func(k, v string) { each = append(each, k+"="+v) })
	s.To("out", serde.String, serde.String)
	d := mustDriver(t, b)
	in := kstreamtest.Input(d, "in", serde.String, serde.String)
	h := []kstream.Header{{Key: "trace", Value: []byte("abc")}}
	if err := in.PipeRecord(kstream.Record[string, string]{Key: "a", Value: "1", Timestamp: ts(10), Headers: h}); err != nil {
		t.Fatal(err)
	}
	pipeAll(t, in, "b", "2")
	equal(t, "peeked", peeked, []string{"a=1", "b=2"})
	equal(t, "foreach", each, []string{"a=1", "b=2"})
	recs, err := kstreamtest.Output(d, "out", serde.String, serde.String).Records()
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "out", recs, []kstream.Record[string, string]{
		{Key: "a", Value: "1", Timestamp: ts(10), Headers: h},
		{Key: "b", Value: "2", Timestamp: ts(1000)},
	})
}

func TestSplitMergeDAG(t *testing.T) {
	b := kstream.NewBuilder()
	s := kstream.From(b, "in", serde.String, serde.String)
	br := s.Split("route-",
		kstream.Branch[string, string]{Name: "short", Pred: func(_, v string) bool { return len(v) <= 3 }},
		kstream.Branch[string, string]{Name: "mid", Pred: func(_, v string) bool { return len(v) <= 6 }},
		kstream.DefaultBranch[string, string]("long"),
	)
	if len(br) != 3 {
		t.Fatalf("got %d branches, want 3", len(br))
	}
	short := kstream.MapValues(br["short"], func(v string) string { return "S:" + v })
	long := kstream.MapValues(br["long"], func(v string) string { return "L:" + v })
	short.Merge(long).To("merged", serde.String, serde.String)
	br["mid"].To("mid", serde.String, serde.String)
	// Without a default branch, unmatched records are dropped.
	s.Split("only-", kstream.Branch[string, string]{Name: "x", Pred: func(k, _ string) bool { return k == "x" }})["x"].
		To("onlyx", serde.String, serde.String)

	d := mustDriver(t, b)
	pipeAll(t, kstreamtest.Input(d, "in", serde.String, serde.String),
		"a", "abc", "b", "abcdef", "x", "abcdefghij", "c", "ab", "d", "abcde")
	equal(t, "merged", kstreamtest.Output(d, "merged", serde.String, serde.String).KeyValues(),
		[]kv{{Key: "a", Value: "S:abc"}, {Key: "x", Value: "L:abcdefghij"}, {Key: "c", Value: "S:ab"}})
	equal(t, "mid", kstreamtest.Output(d, "mid", serde.String, serde.String).KeyValues(),
		[]kv{{Key: "b", Value: "abcdef"}, {Key: "d", Value: "abcde"}})
	equal(t, "onlyx", kstreamtest.Output(d, "onlyx", serde.String, serde.String).KeyValues(),
		[]kv{{Key: "x", Value: "abcdefghij"}})
}

func TestToDynamic(t *testing.T) {
	b := kstream.NewBuilder()
	kstream.From(b, "in", serde.String, serde.String).
		ToDynamic(func(r kstream.Record[string, string]) string { return "topic-" + r.Key }, serde.String, serde.String)
	d := mustDriver(t, b)
	pipeAll(t, kstreamtest.Input(d, "in", serde.String, serde.String), "a", "1", "b", "2", "a", "3")
	equal(t, "topic-a", kstreamtest.Output(d, "topic-a", serde.String, serde.String).KeyValues(),
		[]kv{{Key: "a", Value: "1"}, {Key: "a", Value: "3"}})
	equal(t, "topic-b", kstreamtest.Output(d, "topic-b", serde.String, serde.String).KeyValues(),
		[]kv{{Key: "b", Value: "2"}})
}

// routeProcessor forwards even values to child "even", odd to "odd", and
// reports record metadata in the value.
type routeProcessor struct {
	ctx kstream.ProcessorContext[string, string]
}

func (p *routeProcessor) Init(ctx kstream.ProcessorContext[string, string]) error {
	p.ctx = ctx
	return nil
}

func (p *routeProcessor) Process(r kstream.Record[string, int64]) error {
	md, ok := p.ctx.RecordMetadata()
	if !ok {
		return errors.New("no metadata")
	}
	out := kstream.WithValue(r, fmt.Sprintf("%d@%s/%d/%d task=%s app=%s", r.Value, md.Topic, md.Partition, md.Offset, p.ctx.TaskID(), p.ctx.ApplicationID()))
	if r.Value%2 == 0 {
		p.ctx.ForwardTo("even", out)
	} else {
		p.ctx.ForwardTo("odd", out)
	}
	return nil
}

func (p *routeProcessor) Close() error { return nil }

func TestProcessForwardToNamedChildren(t *testing.T) {
	b := kstream.NewBuilder()
	s := kstream.Process(kstream.From(b, "nums", serde.String, serde.Int64),
		func() kstream.Processor[string, int64, string, string] { return &routeProcessor{} }, kstream.Named("router"))
	s.Peek(func(string, string) {}, kstream.Named("even")).To("even-out", serde.String, serde.String)
	s.Peek(func(string, string) {}, kstream.Named("odd")).To("odd-out", serde.String, serde.String)
	d := mustDriver(t, b, kstream.ApplicationID("procapp"))
	in := kstreamtest.Input(d, "nums", serde.String, serde.Int64)
	for i, v := range []int64{4, 7, 10} {
		if err := in.Pipe("k", v, ts(int64(i))); err != nil {
			t.Fatal(err)
		}
	}
	equal(t, "even", kstreamtest.Output(d, "even-out", serde.String, serde.String).KeyValues(),
		[]kv{{Key: "k", Value: "4@nums/0/0 task=0_0 app=procapp"}, {Key: "k", Value: "10@nums/0/2 task=0_0 app=procapp"}})
	equal(t, "odd", kstreamtest.Output(d, "odd-out", serde.String, serde.String).KeyValues(),
		[]kv{{Key: "k", Value: "7@nums/0/1 task=0_0 app=procapp"}})
}

func TestWithTimestampsExtractsEventTime(t *testing.T) {
	b := kstream.NewBuilder()
	kstream.From(b, "events", serde.String, serde.Int64,
		kstream.WithTimestamps(func(r kstream.Record[string, int64]) (time.Time, error) {
			return time.UnixMilli(r.Value), nil
		})).To("out", serde.String, serde.Int64)
	d := mustDriver(t, b)
	if err := kstreamtest.Input(d, "events", serde.String, serde.Int64).Pipe("a", 123456, ts(1)); err != nil {
		t.Fatal(err)
	}
	recs, err := kstreamtest.Output(d, "out", serde.String, serde.Int64).Records()
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "out", recs, []kstream.Record[string, int64]{{Key: "a", Value: 123456, Timestamp: ts(123456)}})
}

func TestBuildErrors(t *testing.T) {
	cases := []struct {
		name  string
		build func(b *kstream.Builder)
		want  error
	}{
		{"duplicate name", func(b *kstream.Builder) {
			s := kstream.From(b, "in", serde.String, serde.String, kstream.Named("x"))
			s.Filter(func(string, string) bool { return true }, kstream.Named("x")).To("o", serde.String, serde.String)
		}, kstream.ErrDuplicateName},
		{"timestamps on operator", func(b *kstream.Builder) {
			s := kstream.From(b, "in", serde.String, serde.String)
			s.Filter(func(string, string) bool { return true },
				kstream.WithTimestamps(func(kstream.Record[string, string]) (time.Time, error) { return time.Time{}, nil }))
		}, kstream.ErrOptionNotApplicable},
		{"extractor of other type", func(b *kstream.Builder) {
			kstream.From(b, "in", serde.String, serde.String,
				kstream.WithTimestamps(func(kstream.Record[string, int64]) (time.Time, error) { return time.Time{}, nil }))
		}, kstream.ErrTopology},
		{"topic read twice", func(b *kstream.Builder) {
			kstream.From(b, "in", serde.String, serde.String)
			kstream.From(b, "in", serde.String, serde.String)
		}, kstream.ErrTopology},
		{"empty", func(*kstream.Builder) {}, kstream.ErrTopology},
		{"empty sink topic", func(b *kstream.Builder) {
			kstream.From(b, "in", serde.String, serde.String).To("", serde.String, serde.String)
		}, kstream.ErrTopology},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := kstream.NewBuilder()
			c.build(b)
			_, err := b.Build()
			if !errors.Is(err, c.want) {
				t.Fatalf("Build error = %v, want %v", err, c.want)
			}
		})
	}
}
