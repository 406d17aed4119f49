package kstream

import (
	"github.com/streamwork-go/streamwork/serde"
)

// GroupedStream is a stream grouped by key, ready to aggregate. Make one
// with GroupByKey or GroupBy.
type GroupedStream[K, V any] struct {
	s           Stream[K, V]
	ks          serde.Serde[K]
	vs          serde.Serde[V]
	name        string
	repartition bool
}

// GroupByKey groups s by its key. If an operator upstream may have changed
// the key (Map, FlatMap, SelectKey, Process), the records are first
// repartitioned by key through "<application id>-<name>-repartition", where
// name is the Named option or else the aggregation's store name. The serdes
// are those of the repartition topic.
func GroupByKey[K, V any](s Stream[K, V], ks serde.Serde[K], vs serde.Serde[V], opts ...NodeOpt) GroupedStream[K, V] {
	s.valid("GroupByKey")
	cfg := s.b.nodeCfg(opts)
	return GroupedStream[K, V]{s: s, ks: ks, vs: vs, name: cfg.name, repartition: s.keyChanged}
}

// GroupBy groups s by the key fn computes for each record, repartitioning by
// that key (see GroupByKey for the topic's name).
func GroupBy[K, V, K2 any](s Stream[K, V], fn func(K, V) K2, ks serde.Serde[K2], vs serde.Serde[V], opts ...NodeOpt) GroupedStream[K2, V] {
	s.valid("GroupBy")
	cfg := s.b.nodeCfg(opts)
	return GroupedStream[K2, V]{s: SelectKey(s, fn), ks: ks, vs: vs, name: cfg.name, repartition: true}
}

// input returns the stream to aggregate: s itself, or s repartitioned.
func (g GroupedStream[K, V]) input(storeName string) Stream[K, V] {
	if g.s.b == nil {
		panic("kstream: aggregation of a zero GroupedStream")
	}
	if !g.repartition {
		return g.s
	}
	name := g.name
	if name == "" {
		name = storeName
	}
	return repartition(g.s, name, g.ks, g.vs, 0, false)
}

// Count counts the records of each key. Tombstones are dropped (counted in
// Metrics.Dropped). Options: Named, StoreName, InMemory.
func Count[K, V any](g GroupedStream[K, V], opts ...NodeOpt) Table[K, int64] {
	cfg := g.s.b.nodeCfg(opts)
	store := g.s.b.storeFor(cfg, "COUNT", true)
	in := g.input(store)
	return newAggregation(in, "COUNT", cfg, store, g.ks, serde.Int64,
		func(_ K, r Record[K, V], old int64, _ bool) (int64, bool) {
			return old + 1, true
		})
}

// Reduce combines the values of each key: the first value is the aggregate,
// each later one is combined with it by fn(aggregate, value). Tombstones are
// dropped. Options: Named, StoreName, InMemory.
func Reduce[K, V any](g GroupedStream[K, V], fn func(agg, v V) V, opts ...NodeOpt) Table[K, V] {
	cfg := g.s.b.nodeCfg(opts)
	store := g.s.b.storeFor(cfg, "REDUCE", true)
	in := g.input(store)
	return newAggregation(in, "REDUCE", cfg, store, g.ks, g.vs,
		func(_ K, r Record[K, V], old V, hasOld bool) (V, bool) {
			if !hasOld {
				return r.Value, true
			}
			return fn(old, r.Value), true
		})
}

// Aggregate folds the values of each key into an aggregate of type A:
// init makes the starting aggregate of a key, agg adds one value to it. as
// is the aggregate's serde (for its store and changelog). Tombstones are
// dropped. Options: Named, StoreName, InMemory.
func Aggregate[K, V, A any](g GroupedStream[K, V], init func() A, agg func(k K, v V, a A) A, as serde.Serde[A], opts ...NodeOpt) Table[K, A] {
	cfg := g.s.b.nodeCfg(opts)
	store := g.s.b.storeFor(cfg, "AGGREGATE", true)
	in := g.input(store)
	return newAggregation(in, "AGGREGATE", cfg, store, g.ks, as,
		func(k K, r Record[K, V], old A, hasOld bool) (A, bool) {
			if !hasOld {
				old = init()
			}
			return agg(k, r.Value, old), true
		})
}
