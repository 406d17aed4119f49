package kstream

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/streamwork-go/streamwork/kstream/internal/engine"
	"github.com/streamwork-go/streamwork/serde"
	"github.com/streamwork-go/streamwork/state"
)

// StoreName names the state store an operator materializes (an
// aggregation, a table). The store's changelog topic is
// "<application id>-<name>-changelog". Unnamed stores get generated names
// (KSTREAM-AGGREGATE-STATE-STORE-<10 digits>, numbered in call order).
func StoreName(name string) NodeOpt {
	return nodeOptFunc(func(c *nodeCfg) { c.storeName = name })
}

// change is what table nodes forward: the new value of a key and the value
// it replaced. hasNew false is a delete; hasOld false an insert.
type change[V any] struct {
	newV, oldV     V
	hasNew, hasOld bool
}

// storeFor registers the store of a stateful operator and returns its name.
// timestamped: an aggregation's store, whose values carry the aggregate's
// timestamp (see stampedSerde).
func (b *Builder) storeFor(cfg nodeCfg, op string, timestamped bool) string {
	name := cfg.storeName
	if name == "" {
		name = b.generatedName(op + "-STATE-STORE")
	}
	b.addStore(&storeSpec{Name: name, Changelog: true, Cached: true, InMemory: cfg.inMemory, Timestamped: timestamped})
	return name
}

// stampedAgg is an aggregate with its timestamp: the largest timestamp of
// the records aggregated into it (Kafka Streams' ValueAndTimestamp), the
// timestamp of the aggregation's results.
type stampedAgg[A any] struct {
	agg A
	ts  int64
}

// stampedSerde stores a stampedAgg as the 8-byte big-endian timestamp, then
// the aggregate's bytes (engine.StoreSpec.Timestamped).
type stampedSerde[A any] struct{ inner serde.Serde[A] }

func (s stampedSerde[A]) Serialize(topic string, v stampedAgg[A]) ([]byte, error) {
	b, err := s.inner.Serialize(topic, v.agg)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 8, 8+len(b))
	binary.BigEndian.PutUint64(out, uint64(v.ts))
	return append(out, b...), nil
}

func (s stampedSerde[A]) Deserialize(topic string, b []byte) (stampedAgg[A], error) {
	if len(b) < 8 {
		return stampedAgg[A]{}, fmt.Errorf("timestamped value of %d bytes, want at least 8", len(b))
	}
	a, err := s.inner.Deserialize(topic, b[8:])
	if err != nil {
		return stampedAgg[A]{}, err
	}
	return stampedAgg[A]{agg: a, ts: int64(binary.BigEndian.Uint64(b))}, nil
}

// aggNode keeps one aggregate per key in a store and forwards every change
// of it (or, with a record cache, the merged changes at each flush).
type aggNode[K, V, A any] struct {
	name, storeName string
	t               *task
	ks              serde.Serde[K]
	as              serde.Serde[A]
	kv              *state.KeyValue[K, stampedAgg[A]]
	// apply returns the new aggregate of k after r, given the old one.
	apply  func(k K, r Record[K, V], old A, hasOld bool) (A, bool)
	cached bool
	down   downstream[K, change[A]]
}

func (a *aggNode[K, V, A]) Init(t *task, n *node, children []nodeInstance) error {
	a.t, a.name = t, n.Name
	st := t.Store(a.storeName)
	if st == nil {
		return fmt.Errorf("%w: store %q is not open in task %s", ErrTopology, a.storeName, t.ID)
	}
	a.kv = state.Typed(st, a.ks, serde.Serde[stampedAgg[A]](stampedSerde[A]{a.as}))
	a.cached = t.OnFlush(a.storeName, needsOldValues(children), a.flushed)
	return a.down.Wire(t, n, children)
}

func (a *aggNode[K, V, A]) Close() error { return nil }

func (a *aggNode[K, V, A]) Receive(r Record[K, V]) {
	prev := a.t.CurNode
	a.t.CurNode = a.name
	defer func() { a.t.CurNode = prev }()
	if dropTombstone(a.t, r) {
		return
	}
	old, hasOld, err := a.kv.Get(r.Key)
	if err != nil {
		a.t.Fail(a.name, ProcessingErrorKind, fmt.Errorf("store %q get: %w", a.storeName, err))
		return
	}
	v, keep := a.apply(r.Key, r, old.agg, hasOld)
	if !keep {
		return
	}
	// The result's timestamp is the largest of the aggregate's records'
	// (Kafka Streams' KStreamAggregate, KTableAggregate).
	ts := r.Timestamp.UnixMilli()
	if hasOld {
		ts = max(ts, old.ts)
	}
	if err := a.kv.Put(r.Key, stampedAgg[A]{agg: v, ts: ts}); err != nil {
		a.t.Fail(a.name, ProcessingErrorKind, fmt.Errorf("store %q put: %w", a.storeName, err))
		return
	}
	if !a.cached {
		a.down.Forward(Record[K, change[A]]{Key: r.Key, Value: change[A]{newV: v, oldV: old.agg, hasNew: true, hasOld: hasOld},
			Timestamp: time.UnixMilli(ts), Headers: r.Headers})
	}
}

// flushed forwards what the record cache flushed for one key.
func (a *aggNode[K, V, A]) flushed(key, newB, oldB []byte, ts int64) {
	prev := a.t.CurNode
	a.t.CurNode = a.name
	defer func() { a.t.CurNode = prev }()
	rec, err := decodeChange(a.storeName, a.ks, serde.Serde[stampedAgg[A]](stampedSerde[A]{a.as}), key, newB, oldB, ts)
	if err != nil {
		a.t.Fail(a.name, ProcessingErrorKind, err)
		return
	}
	out := Record[K, change[A]]{Key: rec.Key, Timestamp: rec.Timestamp, Headers: rec.Headers,
		Value: change[A]{newV: rec.Value.newV.agg, oldV: rec.Value.oldV.agg, hasNew: rec.Value.hasNew, hasOld: rec.Value.hasOld}}
	if rec.Value.hasNew {
		out.Timestamp = time.UnixMilli(rec.Value.newV.ts)
	}
	a.down.Forward(out)
}

func decodeChange[K, V any](store string, ks serde.Serde[K], vs serde.Serde[V], key, newB, oldB []byte, ts int64) (Record[K, change[V]], error) {
	var rec Record[K, change[V]]
	k, err := ks.Deserialize(store, key)
	if err != nil {
		return rec, fmt.Errorf("store %q: decode key: %w", store, err)
	}
	rec.Key, rec.Timestamp = k, time.UnixMilli(ts)
	if newB != nil {
		if rec.Value.newV, err = vs.Deserialize(store, newB); err != nil {
			return rec, fmt.Errorf("store %q: decode value: %w", store, err)
		}
		rec.Value.hasNew = true
	}
	if oldB != nil {
		if rec.Value.oldV, err = vs.Deserialize(store, oldB); err != nil {
			return rec, fmt.Errorf("store %q: decode old value: %w", store, err)
		}
		rec.Value.hasOld = true
	}
	return rec, nil
}

// newAggregation adds an aggregation node under in, with its store, and
// returns its table.
func newAggregation[K, V, A any](in Stream[K, V], op string, cfg nodeCfg, storeName string, ks serde.Serde[K], as serde.Serde[A],
	apply func(k K, r Record[K, V], old A, hasOld bool) (A, bool)) Table[K, A] {
	b := in.b
	n := b.addNode(op, cfg.name, engine.KindProcessor, []*node{in.n}, func() nodeInstance {
		return &aggNode[K, V, A]{storeName: storeName, ks: ks, as: as, apply: apply}
	})
	b.connectStore(n, storeName)
	return Table[K, A]{b: b, n: n, store: storeName, ks: ks, vs: as}
}

// dropTombstone counts and skips a tombstone reaching an aggregation.
func dropTombstone[K, V any](t *task, r Record[K, V]) bool {
	if !r.Tombstone {
		return false
	}
	t.Env.Counters.Dropped.Add(1)
	t.Env.Logger.Debug("kstream: aggregation dropped a record with a null value", "node", t.CurNode, "task", t.ID.String())
	return true
}
