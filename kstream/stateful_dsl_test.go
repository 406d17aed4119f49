package kstream_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/streamwork-go/streamwork/kstream"
	"github.com/streamwork-go/streamwork/kstream/kstreamtest"
	"github.com/streamwork-go/streamwork/serde"
)

type kvi = kstream.KeyValue[string, int64]

// Word count: FlatMapValues, GroupBy (repartition), Count, ToStream.
func TestWordCount(t *testing.T) {
	b := kstream.NewBuilder()
	lines := kstream.From(b, "lines", serde.String, serde.String)
	words := kstream.FlatMapValues(lines, func(l string) []string { return strings.Fields(strings.ToLower(l)) })
	counts := kstream.Count(kstream.GroupBy(words, func(_, w string) string { return w }, serde.String, serde.String),
		kstream.StoreName("word-counts"))
	counts.ToStream().To("counts", serde.String, serde.Int64)
	d := mustDriver(t, b)
	in := kstreamtest.Input(d, "lines", serde.String, serde.String)
	pipeAll(t, in, "1", "the cat", "2", "The dog", "3", "a cat")
	equal(t, "counts", kstreamtest.Output(d, "counts", serde.String, serde.Int64).KeyValues(), []kvi{
		{Key: "the", Value: 1}, {Key: "cat", Value: 1}, {Key: "the", Value: 2}, {Key: "dog", Value: 1},
		{Key: "a", Value: 1}, {Key: "cat", Value: 2},
	})
	if counts.StoreName() != "word-counts" {
		t.Fatalf("store name = %q", counts.StoreName())
	}
	// Three lines in; the six words that come back through the
	// repartition topic are not input records again.
	equal(t, "processed", d.Metrics().RecordsProcessed, int64(3))
}

// GroupByKey without a key change does not repartition; Reduce and
// Aggregate keep per-key state; tombstones are dropped and counted.
func TestReduceAndAggregateByKey(t *testing.T) {
	b := kstream.NewBuilder()
	nums := kstream.From(b, "nums", serde.String, serde.Int64)
	g := kstream.GroupByKey(nums, serde.String, serde.Int64)
	kstream.Reduce(g, func(a, v int64) int64 { return max(a, v) }, kstream.StoreName("max")).
		ToStream().To("max", serde.String, serde.Int64)
	kstream.Aggregate(g, func() string { return "" }, func(_ string, v int64, a string) string {
		if a != "" {
			a += ","
		}
		return a + string(rune('0'+v))
	}, serde.String, kstream.StoreName("list")).ToStream().To("list", serde.String, serde.String)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	if n := len(topo.Describe().Subtopologies); n != 1 {
		t.Fatalf("GroupByKey without key change made %d sub-topologies, want 1:\n%s", n, topo.Describe())
	}
	d, err := kstreamtest.New(topo)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	in := kstreamtest.Input(d, "nums", serde.String, serde.Int64)
	for i, kv := range []kvi{{Key: "a", Value: 3}, {Key: "b", Value: 1}, {Key: "a", Value: 1}, {Key: "a", Value: 7}} {
		if err := in.Pipe(kv.Key, kv.Value, ts(int64(i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := in.PipeTombstone("a", ts(9)); err != nil {
		t.Fatal(err)
	}
	equal(t, "max", kstreamtest.Output(d, "max", serde.String, serde.Int64).KeyValues(),
		[]kvi{{Key: "a", Value: 3}, {Key: "b", Value: 1}, {Key: "a", Value: 3}, {Key: "a", Value: 7}})
	equal(t, "list", kstreamtest.Output(d, "list", serde.String, serde.String).KeyValues(),
		[]kv{{Key: "a", Value: "3"}, {Key: "b", Value: "1"}, {Key: "a", Value: "3,1"}, {Key: "a", Value: "3,1,7"}})
	equal(t, "dropped tombstones", d.Metrics().Dropped, int64(2)) // one per aggregation
}

// A key-changing operator before GroupByKey repartitions.
func TestGroupByKeyAfterKeyChangeRepartitions(t *testing.T) {
	b := kstream.NewBuilder()
	s := kstream.SelectKey(kstream.From(b, "in", serde.String, serde.String), func(_, v string) string { return v })
	kstream.Count(kstream.GroupByKey(s, serde.String, serde.String, kstream.Named("by-value"))).
		ToStream().To("out", serde.String, serde.Int64)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	desc := topo.Describe().String()
	for _, want := range []string{"Sink: by-value-repartition-sink (topic: by-value-repartition)", "Source: by-value-repartition-source (topics: [by-value-repartition])"} {
		if !strings.Contains(desc, want) {
			t.Errorf("Describe lacks %q:\n%s", want, desc)
		}
	}
	d, err := kstreamtest.New(topo, kstream.ApplicationID("app"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	pipeAll(t, kstreamtest.Input(d, "in", serde.String, serde.String), "1", "x", "2", "y", "3", "x")
	equal(t, "out", kstreamtest.Output(d, "out", serde.String, serde.Int64).KeyValues(),
		[]kvi{{Key: "x", Value: 1}, {Key: "y", Value: 1}, {Key: "x", Value: 2}})
	if got := len(d.TakeRaw("app-by-value-repartition")); got != 3 {
		t.Errorf("repartition topic got %d records, want 3", got)
	}
}

type user struct {
	Name   string `json:"name"`
	Region string `json:"region"`
}

// A table from a topic: upserts and tombstones; its GroupBy with adder and
// subtractor moves a row between groups.
func TestTableGroupByMovesRowsBetweenGroups(t *testing.T) {
	b := kstream.NewBuilder()
	users := kstream.TableFrom(b, "users", serde.String, serde.JSON[user](), kstream.StoreName("users"))
	perRegion := kstream.TableCount(kstream.TableGroupBy(users, func(id string, u user) (string, string) { return u.Region, id },
		serde.String, serde.String, kstream.Named("users-by-region")), kstream.StoreName("region-counts"))
	perRegion.ToStream().To("region-counts", serde.String, serde.Int64)
	d := mustDriver(t, b)
	in := kstreamtest.Input(d, "users", serde.String, serde.JSON[user]())
	steps := []func() error{
		func() error { return in.Pipe("u1", user{"ann", "eu"}, ts(1)) },
		func() error { return in.Pipe("u2", user{"bo", "eu"}, ts(2)) },
		func() error { return in.Pipe("u3", user{"cy", "us"}, ts(3)) },
		func() error { return in.Pipe("u1", user{"ann", "us"}, ts(4)) }, // moves eu -> us
		func() error { return in.Pipe("u3", user{"cyd", "us"}, ts(5)) }, // stays in us: one result
		func() error { return in.PipeTombstone("u2", ts(5)) },           // leaves eu
		func() error { return in.PipeTombstone("u9", ts(6)) },           // unknown: no change
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	equal(t, "region counts", kstreamtest.Output(d, "region-counts", serde.String, serde.Int64).KeyValues(), []kvi{
		{Key: "eu", Value: 1}, {Key: "eu", Value: 2}, {Key: "us", Value: 1},
		{Key: "eu", Value: 1}, {Key: "us", Value: 2}, // u1 moved
		{Key: "us", Value: 2}, // u3 renamed within us: once, never a transient 1 (KIP-904)
		{Key: "eu", Value: 0}, // u2 deleted
	})
}

func TestTableFilterMapValuesToStream(t *testing.T) {
	b := kstream.NewBuilder()
	prices := kstream.TableFrom(b, "prices", serde.String, serde.Int64)
	cheap := prices.Filter(func(_ string, p int64) bool { return p < 100 })
	kstream.TableMapValues(cheap, func(k string, p int64) string { return k + "@" + string(rune('0'+p%10)) }).
		ToStream().To("cheap", serde.String, serde.String)
	d := mustDriver(t, b)
	in := kstreamtest.Input(d, "prices", serde.String, serde.Int64)
	for i, step := range []func() error{
		func() error { return in.Pipe("a", 50, ts(1)) },  // cheap
		func() error { return in.Pipe("b", 500, ts(2)) }, // not cheap: nothing
		func() error { return in.Pipe("a", 200, ts(3)) }, // no longer cheap: delete
		func() error { return in.Pipe("b", 42, ts(4)) },  // becomes cheap
		func() error { return in.PipeTombstone("b", ts(5)) },
	} {
		if err := step(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	recs, err := kstreamtest.Output(d, "cheap", serde.String, serde.String).Records()
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		k, v string
		del  bool
	}
	var got []row
	for _, r := range recs {
		got = append(got, row{r.Key, r.Value, r.Tombstone})
	}
	equal(t, "cheap", got, []row{{"a", "a@0", false}, {"a", "", true}, {"b", "b@2", false}, {"b", "", true}})
}

func TestStatefulBuildErrors(t *testing.T) {
	b := kstream.NewBuilder()
	s := kstream.From(b, "in", serde.String, serde.String)
	g := kstream.GroupByKey(s, serde.String, serde.String)
	kstream.Count(g, kstream.StoreName("dup"))
	kstream.Count(g, kstream.StoreName("dup"))
	if _, err := b.Build(); !errors.Is(err, kstream.ErrDuplicateName) {
		t.Fatalf("Build error = %v, want ErrDuplicateName", err)
	}
}

func TestRequireExplicitNames(t *testing.T) {
	build := func(named bool) error {
		b := kstream.NewBuilder(kstream.RequireExplicitNames())
		s := kstream.SelectKey(kstream.From(b, "in", serde.String, serde.String), func(_, v string) string { return v })
		var opts []kstream.NodeOpt
		if named {
			opts = append(opts, kstream.StoreName("counts"))
		}
		kstream.Count(kstream.GroupByKey(s, serde.String, serde.String), opts...).ToStream().To("out", serde.String, serde.Int64)
		_, err := b.Build()
		return err
	}
	err := build(false)
	if !errors.Is(err, kstream.ErrUnnamed) || !strings.Contains(err.Error(), "KSTREAM-COUNT-STATE-STORE-") {
		t.Fatalf("unnamed store: Build error = %v, want ErrUnnamed naming the store", err)
	}
	// The store's name also names its repartition topic.
	if err := build(true); err != nil {
		t.Fatalf("named store: Build error = %v", err)
	}
}
