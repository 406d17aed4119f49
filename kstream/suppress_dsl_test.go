package kstream_test

import (
	"errors"
	"testing"
	"time"

	"github.com/streamwork-go/streamwork/kstream"
	"github.com/streamwork-go/streamwork/kstream/kstreamtest"
	"github.com/streamwork-go/streamwork/serde"
)

// SuppressUntilWindowCloses over an updating windowed count gives what
// EmitFinal gives: one result per window once it closes.
func TestSuppressUntilWindowCloses(t *testing.T) {
	d, in := windowedTopology(t, kstream.Tumbling(5*sec, 2*sec), serde.Int64,
		func(w kstream.WindowedStream[string, int64]) kstream.Table[kstream.Windowed[string], int64] {
			return kstream.SuppressUntilWindowCloses(kstream.WindowedCount(w), kstream.BufferLimit{WhenFull: kstream.FailWhenFull})
		})
	pipe(t, in, "a", 1, 1000)
	pipe(t, in, "b", 1, 2000)
	pipe(t, in, "a", 1, 4000)
	pipe(t, in, "a", 1, 6999)
	pipe(t, in, "a", 1, 3000)
	equal(t, "before close", len(results(t, d, serde.Int64)), 0)
	pipe(t, in, "b", 1, 7000)
	equal(t, "closed", results(t, d, serde.Int64), []winOut{
		{"a", 0, 5000, "3", 4000}, {"b", 0, 5000, "1", 2000},
	})
	pipe(t, in, "a", 1, 100) // late, dropped by the aggregation
	pipe(t, in, "a", 1, 7001)
	equal(t, "after", len(results(t, d, serde.Int64)), 0)

	// Sessions merged away are not emitted: only the merged session, once.
	d, in = windowedTopology(t, kstream.Session(5*sec, kstream.NoGrace), serde.Int64,
		func(w kstream.WindowedStream[string, int64]) kstream.Table[kstream.Windowed[string], int64] {
			return kstream.SuppressUntilWindowCloses(kstream.WindowedCount(w), kstream.BufferLimit{})
		})
	pipe(t, in, "a", 1, 0)
	pipe(t, in, "a", 1, 4000)
	pipe(t, in, "a", 1, 20000)
	equal(t, "sessions", results(t, d, serde.Int64), []winOut{{"a", 0, 4000, "2", 4000}})
}

// SuppressUntilTimeLimit emits at most one result per key per interval:
// the latest.
func TestSuppressUntilTimeLimit(t *testing.T) {
	b := kstream.NewBuilder()
	tbl := kstream.TableFrom(b, "in", serde.String, serde.Int64)
	kstream.SuppressUntilTimeLimit(tbl, 10*time.Second, kstream.BufferLimit{}).ToStream().To("out", serde.String, serde.Int64)
	d := mustDriver(t, b)
	in := kstreamtest.Input(d, "in", serde.String, serde.Int64)
	pipe(t, in, "a", 1, 0)
	pipe(t, in, "a", 2, 3000)
	pipe(t, in, "b", 1, 4000)
	equal(t, "held", len(tsOutputs(t, d, "out")), 0)
	pipe(t, in, "a", 3, 10000) // a's interval is over: its latest goes
	equal(t, "a", tsOutputs(t, d, "out"), []tsOut{{"a", 3, 10000}})
	pipe(t, in, "a", 4, 12000)
	if err := in.PipeTombstone("b", ts(13000)); err != nil {
		t.Fatal(err)
	}
	pipe(t, in, "x", 1, 25000)
	recs, err := kstreamtest.Output(d, "out", serde.String, serde.Int64).Records()
	if err != nil {
		t.Fatal(err)
	}
	got := make([]string, len(recs))
	for i, r := range recs {
		got[i] = r.Key
		if r.Tombstone {
			got[i] += " deleted"
		}
	}
	equal(t, "b and a", got, []string{"b deleted", "a"})
}

// A full buffer emits early, or fails the record.
func TestSuppressBufferFull(t *testing.T) {
	build := func(when kstream.WhenFull) (*kstreamtest.Driver, *kstreamtest.InputTopic[string, int64]) {
		b := kstream.NewBuilder()
		tbl := kstream.TableFrom(b, "in", serde.String, serde.Int64)
		kstream.SuppressUntilTimeLimit(tbl, time.Hour, kstream.BufferLimit{MaxRecords: 2, WhenFull: when}).
			ToStream().To("out", serde.String, serde.Int64)
		d := mustDriver(t, b)
		return d, kstreamtest.Input(d, "in", serde.String, serde.Int64)
	}
	d, in := build(kstream.EmitEarlyWhenFull)
	pipe(t, in, "a", 1, 0)
	pipe(t, in, "b", 1, 1000)
	pipe(t, in, "a", 2, 1500) // replaces a: still two keys
	pipe(t, in, "c", 1, 2000) // three keys: a (due soonest) goes early
	equal(t, "early", tsOutputs(t, d, "out"), []tsOut{{"a", 2, 1500}})

	d, in = build(kstream.FailWhenFull)
	pipe(t, in, "a", 1, 0)
	pipe(t, in, "b", 1, 1000)
	err := in.Pipe("c", 1, ts(2000))
	if !errors.Is(err, kstream.ErrBufferFull) {
		t.Fatalf("third key: %v, want ErrBufferFull", err)
	}
}
