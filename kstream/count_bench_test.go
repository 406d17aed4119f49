package kstream

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamwork-go/streamwork/kstream/internal/cache"
	"github.com/streamwork-go/streamwork/kstream/internal/engine"
	"github.com/streamwork-go/streamwork/serde"
	"github.com/streamwork-go/streamwork/state/pebble"
)

// BenchmarkCachedCount measures records through Count().ToStream() in one
// task on Pebble with a 10 MiB record cache, flushing the cache every
// 1,000 records (a commit): decode, cache get and put, the flush through
// the changelogging store (to a collector that drops it) and the sink
// encode. Keys repeat (10,000 of them), so most updates find their key in
// the cache or, after a flush, in the store.
func BenchmarkCachedCount(b *testing.B) {
	const keys, flushEvery = 10_000, 1_000
	bl := NewBuilder()
	in := From(bl, "in", serde.String, serde.String)
	Count(GroupByKey(in, serde.String, serde.String), StoreName("counts")).ToStream().To("out", serde.String, serde.Int64)
	topo, err := bl.Build()
	if err != nil {
		b.Fatal(err)
	}
	env := testEnv(nopCollector{})
	env.Topo = topo.t
	env.Cache = &cache.Budget{Max: 10 << 20}
	penv, err := pebble.NewEnv()
	if err != nil {
		b.Fatal(err)
	}
	defer penv.Close()
	env.State = pebbleOpener{env: penv, root: b.TempDir()}
	tk, err := engine.NewTask(TaskID{}, topo.t.Subs[0], env)
	if err != nil {
		b.Fatal(err)
	}
	defer tk.Close()
	recs := make([]kgo.Record, keys)
	for i := range recs {
		recs[i] = kgo.Record{Topic: "in", Key: fmt.Appendf(nil, "key-%06d", i*7919%keys), Value: []byte("v")}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := &recs[i%len(recs)]
		r.Offset, r.Timestamp = int64(i), time.UnixMilli(int64(i))
		tk.Add(r)
		if _, err := tk.Process(1); err != nil {
			b.Fatal(err)
		}
		if i%flushEvery == flushEvery-1 {
			if err := tk.FlushCaches(); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}
