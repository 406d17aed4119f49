package kstream_test

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/streamwork-go/streamwork/kstream"
	"github.com/streamwork-go/streamwork/kstream/kstreamtest"
	"github.com/streamwork-go/streamwork/serde"
)

const sec = time.Second

// winOut is one windowed result as a test compares it: key, window,
// value ("<nil>" for a tombstone) and timestamp.
type winOut struct {
	Key        string
	Start, End int64
	Value      string
	TS         int64
}

func (w winOut) String() string {
	return fmt.Sprintf("%s[%d,%d]=%s@%d", w.Key, w.Start, w.End, w.Value, w.TS)
}

// windowedTopology pipes "in" (string keys, int64 values) through
// WindowedBy(w) and build, and writes the results to "out" as
// "key@start/end" → value.
func windowedTopology[A any](t *testing.T, w kstream.Windows, as serde.Serde[A],
	build func(kstream.WindowedStream[string, int64]) kstream.Table[kstream.Windowed[string], A], opts ...kstream.Opt) (*kstreamtest.Driver, *kstreamtest.InputTopic[string, int64]) {
	t.Helper()
	b := kstream.NewBuilder()
	in := kstream.From(b, "in", serde.String, serde.Int64)
	table := build(kstream.WindowedBy(kstream.GroupByKey(in, serde.String, serde.Int64), w))
	kstream.SelectKey(table.ToStream(), func(k kstream.Windowed[string], _ A) string {
		return fmt.Sprintf("%s@%d/%d", k.Key, k.Start, k.End)
	}).To("out", serde.String, as)
	d := mustDriver(t, b, opts...)
	return d, kstreamtest.Input(d, "in", serde.String, serde.Int64)
}

// results decodes what windowedTopology wrote.
func results[A any](t *testing.T, d *kstreamtest.Driver, as serde.Serde[A]) []winOut {
	t.Helper()
	recs, err := kstreamtest.Output(d, "out", serde.String, as).Records()
	if err != nil {
		t.Fatal(err)
	}
	out := make([]winOut, len(recs))
	for i, r := range recs {
		key, rest, _ := strings.Cut(r.Key, "@")
		s, e, _ := strings.Cut(rest, "/")
		start, _ := strconv.ParseInt(s, 10, 64)
		end, _ := strconv.ParseInt(e, 10, 64)
		v := "<nil>"
		if !r.Tombstone {
			v = fmt.Sprint(r.Value)
		}
		out[i] = winOut{Key: key, Start: start, End: end, Value: v, TS: r.Timestamp.UnixMilli()}
	}
	return out
}

func pipe(t *testing.T, in *kstreamtest.InputTopic[string, int64], key string, v, at int64) {
	t.Helper()
	if err := in.Pipe(key, v, ts(at)); err != nil {
		t.Fatal(err)
	}
}

func count(w kstream.WindowedStream[string, int64]) kstream.Table[kstream.Windowed[string], int64] {
	return kstream.WindowedCount(w)
}

// listAgg collects the values of a window, comma-separated, in the order
// they were added.
func listAgg(w kstream.WindowedStream[string, int64], opts ...kstream.NodeOpt) kstream.Table[kstream.Windowed[string], string] {
	return kstream.WindowedAggregate(w, func() string { return "" }, func(_ string, v int64, agg string) string {
		if agg != "" {
			agg += ","
		}
		return agg + strconv.FormatInt(v, 10)
	}, serde.String, opts...)
}

// A record exactly at a window's end belongs to the next window.
func TestTumblingWindowBoundary(t *testing.T) {
	d, in := windowedTopology(t, kstream.Tumbling(5*sec, kstream.NoGrace), serde.Int64, count)
	pipe(t, in, "a", 1, 0)
	pipe(t, in, "a", 1, 4999)
	pipe(t, in, "a", 1, 5000)
	equal(t, "results", results(t, d, serde.Int64), []winOut{
		{"a", 0, 5000, "1", 0}, {"a", 0, 5000, "2", 4999}, {"a", 5000, 10000, "1", 5000},
	})
}

// Hopping windows of 5000 advancing by 3000 put a record at 4000 in
// [0,5000) and [3000,8000).
func TestHoppingWindows(t *testing.T) {
	d, in := windowedTopology(t, kstream.Hopping(5*sec, 3*sec, kstream.NoGrace), serde.Int64, count)
	pipe(t, in, "a", 1, 4000)
	pipe(t, in, "a", 1, 6500)
	equal(t, "results", results(t, d, serde.Int64), []winOut{
		{"a", 0, 5000, "1", 4000}, {"a", 3000, 8000, "1", 4000},
		{"a", 3000, 8000, "2", 6500}, {"a", 6000, 11000, "1", 6500},
	})
}

// The result timestamp of a window is the largest timestamp of its
// records, not the latest record's.
func TestWindowResultTimestampIsMax(t *testing.T) {
	d, in := windowedTopology(t, kstream.Tumbling(10*sec, 10*sec), serde.Int64, count)
	pipe(t, in, "a", 1, 7000)
	pipe(t, in, "a", 1, 2000)
	equal(t, "results", results(t, d, serde.Int64), []winOut{
		{"a", 0, 10000, "1", 7000}, {"a", 0, 10000, "2", 7000},
	})
}

// KIP-450's example: sliding windows of difference 5000 over records at
// 8000, 9200 and 12400.
func TestSlidingWindowsKIP450(t *testing.T) {
	d, in := windowedTopology(t, kstream.Sliding(5*sec, 30*sec), serde.String,
		func(w kstream.WindowedStream[string, int64]) kstream.Table[kstream.Windowed[string], string] {
			return listAgg(w)
		})
	pipe(t, in, "a", 1, 8000)
	pipe(t, in, "a", 2, 9200)
	pipe(t, in, "a", 3, 12400)
	got := results(t, d, serde.String)
	equal(t, "results", got, []winOut{
		{"a", 3000, 8000, "1", 8000},
		{"a", 8001, 13001, "2", 9200},
		{"a", 4200, 9200, "1,2", 9200},
		{"a", 8001, 13001, "2,3", 12400},
		{"a", 9201, 14201, "3", 12400},
		{"a", 7400, 12400, "1,2,3", 12400},
	})
	equal(t, "final windows", finalWindows(got), []string{
		"a[3000,8000]=1", "a[4200,9200]=1,2", "a[7400,12400]=1,2,3", "a[8001,13001]=2,3", "a[9201,14201]=3",
	})
}

// finalWindows returns the last value of each window that is not deleted,
// sorted by window start.
func finalWindows(outs []winOut) []string {
	type id struct {
		key        string
		start, end int64
	}
	last := map[id]winOut{}
	for _, o := range outs {
		if o.Value == "<nil>" {
			delete(last, id{o.Key, o.Start, o.End})
			continue
		}
		last[id{o.Key, o.Start, o.End}] = o
	}
	var res []winOut
	for _, o := range last {
		res = append(res, o)
	}
	slices.SortFunc(res, func(a, b winOut) int {
		if a.Key != b.Key {
			return strings.Compare(a.Key, b.Key)
		}
		if a.Start != b.Start {
			return int(a.Start - b.Start)
		}
		return int(a.End - b.End)
	})
	s := make([]string, len(res))
	for i, o := range res {
		s[i] = fmt.Sprintf("%s[%d,%d]=%s", o.Key, o.Start, o.End, o.Value)
	}
	return s
}

// Sessions with gap 5000: a record that bridges two sessions merges them;
// each replaced session gets a tombstone before the merged result. With
// grace 0 the first session has closed when the bridging record arrives.
func TestSessionMerge(t *testing.T) {
	sessionCount := func(w kstream.WindowedStream[string, int64]) kstream.Table[kstream.Windowed[string], int64] {
		return kstream.WindowedCount(w)
	}
	d, in := windowedTopology(t, kstream.Session(5*sec, 10*sec), serde.Int64, sessionCount)
	pipe(t, in, "a", 1, 0)
	pipe(t, in, "a", 1, 10000)
	pipe(t, in, "a", 1, 5000)
	equal(t, "grace 10000", results(t, d, serde.Int64), []winOut{
		{"a", 0, 0, "1", 0}, {"a", 10000, 10000, "1", 10000},
		{"a", 0, 0, "<nil>", 0}, {"a", 10000, 10000, "<nil>", 10000},
		{"a", 0, 10000, "3", 10000},
	})

	d, in = windowedTopology(t, kstream.Session(5*sec, kstream.NoGrace), serde.Int64, sessionCount)
	pipe(t, in, "a", 1, 0)
	pipe(t, in, "a", 1, 10000)
	pipe(t, in, "a", 1, 5000)
	equal(t, "grace 0", results(t, d, serde.Int64), []winOut{
		{"a", 0, 0, "1", 0}, {"a", 10000, 10000, "1", 10000},
		{"a", 10000, 10000, "<nil>", 10000},
		{"a", 5000, 10000, "2", 10000},
	})
}

// A record is dropped exactly when its window's end plus grace is at or
// before stream time; late records are counted and go to the late topic
// with headers saying why.
func TestLateRecordBoundary(t *testing.T) {
	b := kstream.NewBuilder()
	in := kstream.From(b, "in", serde.String, serde.Int64)
	w := kstream.WindowedBy(kstream.GroupByKey(in, serde.String, serde.Int64), kstream.Tumbling(5*sec, 1*sec))
	kstream.Map(kstream.WindowedCount(w, kstream.LateRecordsTo("late")).ToStream(),
		func(k kstream.Windowed[string], v int64) (string, int64) {
			return fmt.Sprintf("%s@%d", k.Key, k.Start), v
		}).
		To("out", serde.String, serde.Int64)
	d := mustDriver(t, b)
	pin := kstreamtest.Input(d, "in", serde.String, serde.Int64)
	pipe(t, pin, "a", 1, 5999) // stream time 5999: [0,5000) closes at 6000
	pipe(t, pin, "a", 1, 4999) // accepted
	pipe(t, pin, "a", 1, 6000) // stream time 6000
	pipe(t, pin, "a", 7, 4999) // late: 5000 + 1000 <= 6000
	equal(t, "results", kstreamtest.Output(d, "out", serde.String, serde.Int64).KeyValues(), []kvi{
		{Key: "a@5000", Value: 1}, {Key: "a@0", Value: 1}, {Key: "a@5000", Value: 2},
	})
	m := d.Metrics()
	equal(t, "late", [2]int64{m.LateRecords, m.LateRecordsWritten}, [2]int64{1, 1})
	late := d.TakeRaw("late")
	if len(late) != 1 {
		t.Fatalf("late topic holds %d records, want 1", len(late))
	}
	v, _ := serde.Int64.Deserialize("late", late[0].Value)
	hs := map[string]string{}
	for _, h := range late[0].Headers {
		hs[h.Key] = string(h.Value)
	}
	equal(t, "late record", [6]string{string(late[0].Key), strconv.FormatInt(v, 10), hs[kstream.HeaderLateReason],
		hs[kstream.HeaderLateWindowStart], hs[kstream.HeaderLateWindowEnd], hs[kstream.HeaderLateStreamTime]},
		[6]string{"a", "7", "window closed", "0", "5000", "6000"})
	if late[0].Timestamp.UnixMilli() != 4999 {
		t.Fatalf("late record timestamp %v, want 4999", late[0].Timestamp.UnixMilli())
	}
}

// EmitFinal emits one result per window once stream time passes its end
// plus grace.
func TestEmitFinalTumbling(t *testing.T) {
	d, in := windowedTopology(t, kstream.Tumbling(5*sec, 2*sec), serde.Int64,
		func(w kstream.WindowedStream[string, int64]) kstream.Table[kstream.Windowed[string], int64] {
			return kstream.WindowedCount(w, kstream.EmitFinal())
		})
	pipe(t, in, "a", 1, 1000)
	pipe(t, in, "b", 1, 2000)
	pipe(t, in, "a", 1, 4000)
	pipe(t, in, "a", 1, 6999) // close time 4999: nothing closed
	equal(t, "before close", len(results(t, d, serde.Int64)), 0)
	pipe(t, in, "a", 1, 3000) // still in grace
	pipe(t, in, "b", 1, 7000) // close time 5000: [0,5000) closes
	equal(t, "closed", results(t, d, serde.Int64), []winOut{
		{"a", 0, 5000, "3", 4000}, {"b", 0, 5000, "1", 2000},
	})
	pipe(t, in, "a", 1, 100) // late
	pipe(t, in, "a", 1, 7001)
	equal(t, "after", len(results(t, d, serde.Int64)), 0)
	equal(t, "late", d.Metrics().LateRecords, int64(1))
}

// Tumbling count windows of 3 over 7 records of one key close two windows
// (records 1–3 and 4–6) and keep the 7th open.
func TestCountWindows(t *testing.T) {
	d, in := windowedTopology(t, kstream.TumblingCount(3), serde.String,
		func(w kstream.WindowedStream[string, int64]) kstream.Table[kstream.Windowed[string], string] {
			return listAgg(w, kstream.EmitFinal())
		})
	for i := int64(1); i <= 7; i++ {
		pipe(t, in, "a", i, 100*(8-i)) // timestamps go down: results carry the largest
	}
	equal(t, "final", results(t, d, serde.String), []winOut{
		{"a", 0, 3, "1,2,3", 700}, {"a", 3, 6, "4,5,6", 400},
	})

	d, in = windowedTopology(t, kstream.HoppingCount(3, 2), serde.String,
		func(w kstream.WindowedStream[string, int64]) kstream.Table[kstream.Windowed[string], string] {
			return listAgg(w)
		})
	for i := int64(1); i <= 4; i++ {
		pipe(t, in, "a", i, i)
	}
	equal(t, "hopping updates", results(t, d, serde.String), []winOut{
		{"a", 0, 3, "1", 1}, {"a", 0, 3, "1,2", 2}, {"a", 0, 3, "1,2,3", 3}, {"a", 2, 5, "3", 3}, {"a", 2, 5, "3,4", 4},
	})
}

// Windows are validated when the topology is built; session windows need
// SessionAggregate.
func TestWindowValidation(t *testing.T) {
	for name, w := range map[string]kstream.Windows{
		"zero size":        kstream.Tumbling(0, 0),
		"advance > size":   kstream.Hopping(time.Second, 2*time.Second, 0),
		"negative grace":   kstream.Sliding(time.Second, -time.Second),
		"zero gap":         kstream.Session(0, 0),
		"zero count":       kstream.TumblingCount(0),
		"count advance > ": kstream.HoppingCount(2, 3),
	} {
		b := kstream.NewBuilder()
		in := kstream.From(b, "in", serde.String, serde.Int64)
		kstream.WindowedCount(kstream.WindowedBy(kstream.GroupByKey(in, serde.String, serde.Int64), w))
		if _, err := b.Build(); err == nil {
			t.Errorf("%s: Build accepted %s", name, w)
		}
	}
	b := kstream.NewBuilder()
	in := kstream.From(b, "in", serde.String, serde.Int64)
	kstream.WindowedAggregate(kstream.WindowedBy(kstream.GroupByKey(in, serde.String, serde.Int64), kstream.Session(sec, 0)),
		func() int64 { return 0 }, func(_ string, v, a int64) int64 { return a + v }, serde.Int64)
	if _, err := b.Build(); err == nil || !strings.Contains(err.Error(), "SessionAggregate") {
		t.Errorf("WindowedAggregate over session windows: Build error %v", err)
	}
}

// With CloseWindowsWhenIdle, a quiet input still closes windows: after the
// idle time, stream time advances with the wall clock and EmitFinal emits.
func TestCloseWindowsWhenIdle(t *testing.T) {
	d, in := windowedTopology(t, kstream.Tumbling(10*sec, kstream.NoGrace), serde.Int64,
		func(w kstream.WindowedStream[string, int64]) kstream.Table[kstream.Windowed[string], int64] {
			return kstream.WindowedCount(w, kstream.EmitFinal(), kstream.CloseWindowsWhenIdle(30*sec))
		})
	pipe(t, in, "a", 1, 1000)
	pipe(t, in, "a", 1, 5000)
	if err := d.AdvanceWallClock(20 * sec); err != nil {
		t.Fatal(err)
	}
	equal(t, "after 20s idle", len(results(t, d, serde.Int64)), 0)
	if err := d.AdvanceWallClock(15 * sec); err != nil {
		t.Fatal(err)
	}
	// Idle 35s >= 30s: stream time 5000 + 35000 closes [0, 10000).
	equal(t, "after 35s idle", results(t, d, serde.Int64), []winOut{{"a", 0, 10000, "2", 5000}})
	equal(t, "advances", d.Metrics().IdleWindowAdvances, int64(1))
	pipe(t, in, "a", 1, 9000) // its window has closed
	equal(t, "late", d.Metrics().LateRecords, int64(1))
	equal(t, "after late", len(results(t, d, serde.Int64)), 0)

	// Without the option the window stays open however long the input is
	// quiet.
	d, in = windowedTopology(t, kstream.Tumbling(10*sec, kstream.NoGrace), serde.Int64,
		func(w kstream.WindowedStream[string, int64]) kstream.Table[kstream.Windowed[string], int64] {
			return kstream.WindowedCount(w, kstream.EmitFinal())
		})
	pipe(t, in, "a", 1, 5000)
	if err := d.AdvanceWallClock(time.Hour); err != nil {
		t.Fatal(err)
	}
	equal(t, "no idle option", len(results(t, d, serde.Int64)), 0)
}

// With EmitFinal a session is emitted once stream time passes its end +
// gap + grace: no record can change it after that.
func TestEmitFinalSessions(t *testing.T) {
	d, in := windowedTopology(t, kstream.Session(5*sec, kstream.NoGrace), serde.Int64,
		func(w kstream.WindowedStream[string, int64]) kstream.Table[kstream.Windowed[string], int64] {
			return kstream.WindowedCount(w, kstream.EmitFinal())
		})
	pipe(t, in, "a", 1, 0)
	pipe(t, in, "a", 1, 4000)
	pipe(t, in, "b", 1, 9000) // 9000 = 4000 + gap: a record at 9000 could still extend a's session
	equal(t, "not final yet", len(results(t, d, serde.Int64)), 0)
	pipe(t, in, "b", 1, 9001)
	equal(t, "final", results(t, d, serde.Int64), []winOut{{"a", 0, 4000, "2", 4000}})
	// Not late (its session ends at 9000, not before 9001 - gap), but [0,4000]
	// is final: a session of its own (Kafka Streams gives the same).
	pipe(t, in, "a", 1, 9000)
	pipe(t, in, "b", 1, 30000)
	equal(t, "later", results(t, d, serde.Int64), []winOut{{"a", 9000, 9000, "1", 9000}, {"b", 9000, 9001, "2", 9001}})
	equal(t, "late", d.Metrics().LateRecords, int64(0))
}

// With EmitFinal, a record that bridges an emitted session and an open one
// merges into the open one only: the emitted session never changes.
func TestEmitFinalSessionNotReopenedByBridge(t *testing.T) {
	d, in := windowedTopology(t, kstream.Session(5*sec, kstream.NoGrace), serde.Int64,
		func(w kstream.WindowedStream[string, int64]) kstream.Table[kstream.Windowed[string], int64] {
			return kstream.WindowedCount(w, kstream.EmitFinal())
		})
	pipe(t, in, "a", 1, 0)
	pipe(t, in, "a", 1, 9000)
	pipe(t, in, "a", 1, 11000) // stream time 11000 > 0 + 5000 + 5000: [0,0] is final
	equal(t, "final", results(t, d, serde.Int64), []winOut{{"a", 0, 0, "1", 0}})
	pipe(t, in, "a", 1, 4500) // within the gap of both; [0,0] is final, so it joins [9000,11000] only
	pipe(t, in, "b", 1, 40000)
	equal(t, "later", results(t, d, serde.Int64), []winOut{{"a", 4500, 11000, "3", 11000}})
}

// Windowed updates go through the record cache: a session rewritten within
// one record (a record inside it) comes out once, where with the cache off
// its tombstone and new value both do (Kafka Streams alike).
func TestWindowedUpdatesThroughRecordCache(t *testing.T) {
	run := func(opts ...kstream.Opt) []winOut {
		d, in := windowedTopology(t, kstream.Session(5*sec, time.Hour), serde.Int64,
			func(w kstream.WindowedStream[string, int64]) kstream.Table[kstream.Windowed[string], int64] {
				return kstream.WindowedCount(w)
			}, opts...)
		pipe(t, in, "a", 1, 0)
		pipe(t, in, "a", 1, 3000)
		pipe(t, in, "a", 1, 2000) // inside [0,3000]
		return results(t, d, serde.Int64)
	}
	equal(t, "cached", run(), []winOut{
		{"a", 0, 0, "1", 0}, {"a", 0, 0, "<nil>", 0}, {"a", 0, 3000, "2", 3000}, {"a", 0, 3000, "3", 3000},
	})
	equal(t, "uncached", run(kstream.CacheMaxBytes(0)), []winOut{
		{"a", 0, 0, "1", 0}, {"a", 0, 0, "<nil>", 0}, {"a", 0, 3000, "2", 3000},
		{"a", 0, 3000, "<nil>", 3000}, {"a", 0, 3000, "3", 3000},
	})
}

// A window's results carry the headers of the record that last updated it,
// kept in the window store: through updates and through EmitFinal.
func TestWindowResultHeaders(t *testing.T) {
	for _, final := range []bool{false, true} {
		d, in := windowedTopology(t, kstream.Tumbling(5*sec, kstream.NoGrace), serde.Int64,
			func(w kstream.WindowedStream[string, int64]) kstream.Table[kstream.Windowed[string], int64] {
				if final {
					return kstream.WindowedCount(w, kstream.EmitFinal())
				}
				return kstream.WindowedCount(w)
			})
		for i, h := range []string{"first", "second"} {
			err := in.PipeRecord(kstream.Record[string, int64]{Key: "a", Value: 1, Timestamp: ts(int64(1000 * (i + 1))),
				Headers: []kstream.Header{{Key: "trace", Value: []byte(h)}}})
			if err != nil {
				t.Fatal(err)
			}
		}
		pipe(t, in, "b", 1, 9000) // closes [0,5000)
		recs, err := kstreamtest.Output(d, "out", serde.String, serde.Int64).Records()
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range recs {
			if !strings.HasPrefix(r.Key, "a@") {
				continue
			}
			var hs []string
			for _, h := range r.Headers {
				hs = append(hs, h.Key+"="+string(h.Value))
			}
			got = append(got, fmt.Sprintf("%d %v", r.Value, hs))
		}
		want := []string{"1 [trace=first]", "2 [trace=second]"}
		if final {
			want = []string{"2 [trace=second]"}
		}
		equal(t, fmt.Sprintf("final=%v", final), got, want)
	}
}
