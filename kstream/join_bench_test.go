package kstream

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamwork-go/streamwork/kstream/internal/engine"
	"github.com/streamwork-go/streamwork/serde"
	"github.com/streamwork-go/streamwork/state/pebble"
)

// benchTask builds topo's first sub-topology as a task on the memory or
// Pebble engine.
func benchTask(b *testing.B, topo *Topology, engineName string) *task {
	b.Helper()
	env := testEnv(nopCollector{})
	env.Topo = topo.t
	if engineName == "pebble" {
		penv, err := pebble.NewEnv()
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = penv.Close() })
		env.State = pebbleOpener{env: penv, root: b.TempDir()}
	}
	tk, err := engine.NewTask(TaskID{}, topo.t.Subs[0], env)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = tk.Close() })
	return tk
}

func benchProcess(b *testing.B, tk *task, r *kgo.Record) {
	tk.Add(r)
	if _, err := tk.Process(1); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkStreamTableJoin measures stream records joined with a table of
// 100,000 keys (loaded first), on the memory and Pebble engines.
func BenchmarkStreamTableJoin(b *testing.B) {
	const keys = 100_000
	for _, engineName := range []string{"memory", "pebble"} {
		b.Run(engineName, func(b *testing.B) {
			bl := NewBuilder()
			tbl := TableFrom(bl, "table", serde.String, serde.Int64)
			LeftJoinTable(From(bl, "stream", serde.String, serde.Int64), tbl, func(_ string, v int64, t *int64) int64 {
				if t == nil {
					return v
				}
				return v + *t
			}, StreamJoined[string, int64, int64]{Key: serde.String, Left: serde.Int64, Right: serde.Int64}).
				To("out", serde.String, serde.Int64)
			topo, err := bl.Build()
			if err != nil {
				b.Fatal(err)
			}
			tk := benchTask(b, topo, engineName)
			val, _ := serde.Int64.Serialize("t", 7)
			names := make([][]byte, keys)
			for i := range names {
				names[i] = []byte(fmt.Sprintf("key-%06d", i))
				benchProcess(b, tk, &kgo.Record{Topic: "table", Key: names[i], Value: val, Offset: int64(i)})
			}
			if err := tk.FlushCaches(); err != nil {
				b.Fatal(err)
			}
			r := &kgo.Record{Topic: "stream", Value: val}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				r.Key, r.Offset, r.Timestamp = names[i*7919%keys], int64(i), time.UnixMilli(int64(i))
				benchProcess(b, tk, r)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

// BenchmarkStreamStreamJoin measures a windowed inner join with a
// one-minute window at 10,000 keys: records alternate between the two
// sides, 1ms apart, so each meets the other side's records of its key in
// the last minute (about six), on the memory and Pebble engines.
func BenchmarkStreamStreamJoin(b *testing.B) {
	const keys = 10_000
	for _, engineName := range []string{"memory", "pebble"} {
		b.Run(engineName, func(b *testing.B) {
			bl := NewBuilder()
			Join(From(bl, "left", serde.String, serde.Int64), From(bl, "right", serde.String, serde.Int64),
				func(_ string, l, r int64) int64 { return l + r }, JoinTimeDifference(time.Minute, NoGrace),
				StreamJoined[string, int64, int64]{Key: serde.String, Left: serde.Int64, Right: serde.Int64}).
				To("out", serde.String, serde.Int64)
			topo, err := bl.Build()
			if err != nil {
				b.Fatal(err)
			}
			tk := benchTask(b, topo, engineName)
			val, _ := serde.Int64.Serialize("t", 7)
			names := make([][]byte, keys)
			for i := range names {
				names[i] = []byte(fmt.Sprintf("key-%06d", i))
			}
			recs := [2]kgo.Record{{Topic: "left", Value: val}, {Topic: "right", Value: val}}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				r := &recs[i%2]
				r.Key, r.Offset, r.Timestamp = names[(i/2)*7919%keys], int64(i/2), time.UnixMilli(int64(i))
				benchProcess(b, tk, r)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}
