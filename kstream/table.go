package kstream

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/streamwork-go/streamwork/kstream/internal/engine"
	"github.com/streamwork-go/streamwork/kstream/internal/wire"
	"github.com/streamwork-go/streamwork/serde"
	"github.com/streamwork-go/streamwork/state"
)

// Table is a changelog stream seen as a table: the latest value of each key.
// Its records are updates: each says the key's new value (or that the key
// was deleted) and, inside the runtime, the value it replaced, so that
// downstream aggregations can subtract it.
//
// A Table from TableFrom or an aggregation is materialized in a state store
// (StoreName), which App queries can read; Filter and MapValues results are
// not materialized.
type Table[K, V any] struct {
	b     *Builder
	n     *node // forwards Record[K, change[V]]
	store string
	ks    serde.Serde[K]
	vs    serde.Serde[V]
	// win: the table is a windowed aggregation's result, whose windows
	// close at end + grace (SuppressUntilWindowCloses).
	win *windowedInfo
	// versioned: the table's store is versioned (Versioned), with this
	// configuration; 0 HistoryRetention: not versioned.
	versioned state.VersionedStoreConfig
}

// windowedInfo is what a windowed aggregation's table says of its windows.
type windowedInfo struct {
	grace int64 // ms
	gap   int64 // ms, session windows
	kind  windowKind
}

// StoreName returns the name of the table's store, or "" when the table is
// not materialized.
func (t Table[K, V]) StoreName() string { return t.store }

func (t Table[K, V]) valid(op string) {
	if t.b == nil || t.n == nil {
		panic(fmt.Sprintf("kstream: %s on a zero Table", op))
	}
}

// TableFrom reads topic as a table: each record upserts its key, a record
// with a null value (a tombstone) deletes it. The table is materialized in a
// store. Options: Named (the source), StoreName, InMemory, WithTimestamps
// (the source's event times), Versioned (keep each key's history, for
// stream-table joins as of the stream record's time).
func TableFrom[K, V any](b *Builder, topic string, ks serde.Serde[K], vs serde.Serde[V], opts ...NodeOpt) Table[K, V] {
	cfg := b.nodeCfg(opts)
	srcCfg := []NodeOpt{}
	if cfg.name != "" {
		srcCfg = append(srcCfg, Named(cfg.name))
	}
	if cfg.tsExtract != nil {
		extract := cfg.tsExtract
		srcCfg = append(srcCfg, nodeOptFunc(func(c *nodeCfg) { c.tsExtract = extract }))
	}
	src := From(b, topic, ks, vs, srcCfg...)
	return materialize(src, "TABLE-SOURCE", cfg, ks, vs)
}

// materialize adds a table source node under s: the records of s upsert
// (tombstones delete) the rows of a new store.
func materialize[K, V any](s Stream[K, V], op string, cfg nodeCfg, ks serde.Serde[K], vs serde.Serde[V]) Table[K, V] {
	b := s.b
	if cfg.versionSet {
		return materializeVersioned(s, op, cfg, ks, vs)
	}
	store := b.storeFor(nodeCfg{storeName: cfg.storeName, inMemory: cfg.inMemory}, op, true)
	n := b.addNode(op, "", engine.KindProcessor, []*node{s.n}, func() nodeInstance {
		return &tableSourceNode[K, V]{storeName: store, ks: ks, vs: vs}
	})
	b.connectStore(n, store)
	return Table[K, V]{b: b, n: n, store: store, ks: ks, vs: vs}
}

// ToTable turns a stream into a table (Kafka Streams' KStream.toTable): each
// record upserts its key, a tombstone deletes it; the table is materialized
// in a store, so it can be joined and queried. A stream whose key changed
// upstream is repartitioned by key first (as for GroupByKey). This is how
// one topic is read both as a stream and as a table: From it once, then
// ToTable. Options: Named (the repartition), StoreName, InMemory.
func ToTable[K, V any](s Stream[K, V], ks serde.Serde[K], vs serde.Serde[V], opts ...NodeOpt) Table[K, V] {
	s.valid("ToTable")
	cfg := s.b.nodeCfg(opts)
	if s.keyChanged {
		name := cfg.name
		if name == "" {
			name = s.b.generatedName("TOTABLE")
		}
		s = repartition(s, name, ks, vs, 0, false)
	}
	return materialize(s, "TOTABLE", cfg, ks, vs)
}

// tableSourceNode upserts each record into the store and forwards the
// change.
type tableSourceNode[K, V any] struct {
	name, storeName string
	t               *task
	ks              serde.Serde[K]
	vs              serde.Serde[V]
	// kv keeps each row with the timestamp of the record that set it
	// (Kafka Streams' timestamped key-value store), for the joins.
	kv     *state.KeyValue[K, stampedAgg[V]]
	cached bool
	down   downstream[K, change[V]]
}

func (s *tableSourceNode[K, V]) Init(t *task, n *node, children []nodeInstance) error {
	s.t, s.name = t, n.Name
	st := t.Store(s.storeName)
	if st == nil {
		return fmt.Errorf("%w: store %q is not open in task %s", ErrTopology, s.storeName, t.ID)
	}
	stamped := serde.Serde[stampedAgg[V]](stampedSerde[V]{s.vs})
	s.kv = state.Typed(st, s.ks, stamped)
	s.cached = t.OnFlush(s.storeName, needsOldValues(children), func(key, newB, oldB []byte, ts int64) {
		rec, err := decodeChange(s.storeName, s.ks, stamped, key, newB, oldB, ts)
		if err != nil {
			s.t.Fail(s.name, ProcessingErrorKind, err)
			return
		}
		out := Record[K, change[V]]{Key: rec.Key, Timestamp: rec.Timestamp, Headers: rec.Headers,
			Value: change[V]{newV: rec.Value.newV.agg, oldV: rec.Value.oldV.agg, hasNew: rec.Value.hasNew, hasOld: rec.Value.hasOld}}
		prev := s.t.CurNode
		s.t.CurNode = s.name
		s.down.Forward(out)
		s.t.CurNode = prev
	})
	return s.down.Wire(t, n, children)
}

func (s *tableSourceNode[K, V]) Close() error { return nil }

func (s *tableSourceNode[K, V]) Receive(r Record[K, V]) {
	prev := s.t.CurNode
	s.t.CurNode = s.name
	defer func() { s.t.CurNode = prev }()
	old, hasOld, err := s.kv.Get(r.Key)
	if err != nil {
		s.t.Fail(s.name, ProcessingErrorKind, fmt.Errorf("store %q get: %w", s.storeName, err))
		return
	}
	if r.Tombstone {
		if err := s.kv.Delete(r.Key); err != nil {
			s.t.Fail(s.name, ProcessingErrorKind, fmt.Errorf("store %q delete: %w", s.storeName, err))
			return
		}
		if !s.cached && hasOld {
			s.down.Forward(Record[K, change[V]]{Key: r.Key, Value: change[V]{oldV: old.agg, hasOld: true}, Timestamp: r.Timestamp, Headers: r.Headers})
		}
		return
	}
	if err := s.kv.Put(r.Key, stampedAgg[V]{agg: r.Value, ts: r.Timestamp.UnixMilli()}); err != nil {
		s.t.Fail(s.name, ProcessingErrorKind, fmt.Errorf("store %q put: %w", s.storeName, err))
		return
	}
	if !s.cached {
		s.down.Forward(Record[K, change[V]]{Key: r.Key, Value: change[V]{newV: r.Value, oldV: old.agg, hasNew: true, hasOld: hasOld},
			Timestamp: r.Timestamp, Headers: r.Headers})
	}
}

// tableOp adds a stateless node under a table's node.
func tableOp[K, V, K2, V2 any](t Table[K, V], op string, opts []NodeOpt, fn func(r Record[K, change[V]], d *downstream[K2, V2])) *node {
	t.valid(op)
	cfg := t.b.nodeCfg(opts)
	return t.b.addNode(op, cfg.name, engine.KindProcessor, []*node{t.n}, func() nodeInstance {
		return &statelessNode[K, change[V], K2, V2]{fn: fn}
	})
}

// Filter returns the table of the rows for which pred is true. A row that
// stops passing is deleted downstream.
func (t Table[K, V]) Filter(pred func(K, V) bool, opts ...NodeOpt) Table[K, V] {
	n := tableOp(t, "TABLE-FILTER", opts, func(r Record[K, change[V]], d *downstream[K, change[V]]) {
		c := r.Value
		newPass := c.hasNew && pred(r.Key, c.newV)
		oldPass := c.hasOld && pred(r.Key, c.oldV)
		if !newPass && !oldPass {
			return
		}
		out := change[V]{hasNew: newPass, hasOld: oldPass}
		if newPass {
			out.newV = c.newV
		}
		if oldPass {
			out.oldV = c.oldV
		}
		d.Forward(Record[K, change[V]]{Key: r.Key, Value: out, Timestamp: r.Timestamp, Headers: r.Headers})
	})
	return Table[K, V]{b: t.b, n: n, ks: t.ks, vs: t.vs}
}

// TableMapValues returns the table with every value turned into fn(value).
func TableMapValues[K, V, V2 any](t Table[K, V], fn func(K, V) V2, opts ...NodeOpt) Table[K, V2] {
	n := tableOp(t, "TABLE-MAPVALUES", opts, func(r Record[K, change[V]], d *downstream[K, change[V2]]) {
		c := r.Value
		out := change[V2]{hasNew: c.hasNew, hasOld: c.hasOld}
		if c.hasNew {
			out.newV = fn(r.Key, c.newV)
		}
		if c.hasOld {
			out.oldV = fn(r.Key, c.oldV)
		}
		d.Forward(Record[K, change[V2]]{Key: r.Key, Value: out, Timestamp: r.Timestamp, Headers: r.Headers})
	})
	return Table[K, V2]{b: t.b, n: n, ks: t.ks}
}

// ToStream returns the table's updates as a stream: one record per update
// with the key's new value, or a tombstone when the key was deleted.
func (t Table[K, V]) ToStream(opts ...NodeOpt) Stream[K, V] {
	t.valid("TOSTREAM")
	cfg := t.b.nodeCfg(opts)
	n := t.b.addNode("TOSTREAM", cfg.name, engine.KindProcessor, []*node{t.n}, func() nodeInstance {
		return &toStreamNode[K, V]{statelessNode[K, change[V], K, V]{fn: func(r Record[K, change[V]], d *downstream[K, V]) {
			out := Record[K, V]{Key: r.Key, Timestamp: r.Timestamp, Headers: r.Headers}
			if r.Value.hasNew {
				out.Value = r.Value.newV
			} else {
				out.Tombstone = true
			}
			d.Forward(out)
		}}}
	})
	return Stream[K, V]{b: t.b, n: n}
}

// toStreamNode is ToStream's node: it forwards new values only, so the
// table above it need not read old ones.
type toStreamNode[K, V any] struct {
	statelessNode[K, change[V], K, V]
}

func (*toStreamNode[K, V]) ignoresOldValues() {}

// oldValuesIgnorer is a node under a table that never reads the old values
// of the changes it receives.
type oldValuesIgnorer interface{ ignoresOldValues() }

// needsOldValues reports whether some child of a table node reads old
// values (Kafka Streams' sendOldValues): then the record cache reads each
// flushed key's value before the update from the store. Nodes not known
// to ignore them are taken to read them.
func needsOldValues(children []nodeInstance) bool {
	for _, c := range children {
		if _, ok := c.(oldValuesIgnorer); !ok {
			return true
		}
	}
	return false
}

// flagged is a value travelling through a table GroupBy's repartition topic:
// to be added to (add) or subtracted from its group's aggregate.
type flagged[V any] struct {
	v   V
	add bool
	// both: an update that stays in its group: old is subtracted and v
	// added in one step, so the group's aggregate changes once (KIP-904).
	both bool
	old  V
}

// flaggedSerde encodes a flagged value in the table-grouping format of
// package wire.
type flaggedSerde[V any] struct{ vs serde.Serde[V] }

func (f flaggedSerde[V]) Serialize(topic string, v flagged[V]) ([]byte, error) {
	b, err := f.vs.Serialize(topic, v.v)
	if err != nil {
		return nil, err
	}
	if !v.both {
		return wire.AppendGroupChange(make([]byte, 0, 1+len(b)), v.add, b), nil
	}
	ob, err := f.vs.Serialize(topic, v.old)
	if err != nil {
		return nil, err
	}
	return wire.AppendGroupBoth(make([]byte, 0, 1+binary.MaxVarintLen64+len(ob)+len(b)), ob, b), nil
}

func (f flaggedSerde[V]) Deserialize(topic string, b []byte) (flagged[V], error) {
	kind, ob, vb, err := wire.DecodeGroupValue(b)
	if err != nil {
		return flagged[V]{}, fmt.Errorf("%w: %w", ErrTopology, err)
	}
	out := flagged[V]{add: kind != wire.GroupSubtract, both: kind == wire.GroupBoth}
	if out.v, err = f.vs.Deserialize(topic, vb); err != nil {
		return out, err
	}
	if out.both {
		out.old, err = f.vs.Deserialize(topic, ob)
	}
	return out, err
}

// sameKey reports whether a and b serialize to the same bytes: the same
// group, as the repartition topic sees it.
func sameKey[K any](ks serde.Serde[K], topic string, a, b K) bool {
	ab, err1 := ks.Serialize(topic, a)
	bb, err2 := ks.Serialize(topic, b)
	return err1 == nil && err2 == nil && bytes.Equal(ab, bb)
}

// GroupedTable is a table regrouped by a new key, ready to aggregate with an
// adder and a subtractor. Make one with TableGroupBy.
type GroupedTable[K, V any] struct {
	s  Stream[K, flagged[V]] // after the repartition
	ks serde.Serde[K]
	vs serde.Serde[V]
}

// TableGroupBy regroups t: fn maps each row to the key of its group and the
// value that counts for it. Every update of a row subtracts the old row's
// value from its old group and adds the new one to its new group, so a row
// that moves between groups leaves the first and joins the second. The
// records go through "<application id>-<name>-repartition" (name: the Named
// option, else a generated one).
func TableGroupBy[K, V, K2, V2 any](t Table[K, V], fn func(K, V) (K2, V2), ks serde.Serde[K2], vs serde.Serde[V2], opts ...NodeOpt) GroupedTable[K2, V2] {
	t.valid("TableGroupBy")
	cfg := t.b.nodeCfg(opts)
	name := cfg.name
	if name == "" {
		name = t.b.generatedName("TABLE-GROUPBY")
	}
	n := t.b.addNode("TABLE-GROUPBY", name, engine.KindProcessor, []*node{t.n}, func() nodeInstance {
		return &statelessNode[K, change[V], K2, flagged[V2]]{fn: func(r Record[K, change[V]], d *downstream[K2, flagged[V2]]) {
			var oldK, newK K2
			var oldV, newV V2
			if r.Value.hasOld {
				oldK, oldV = fn(r.Key, r.Value.oldV)
			}
			if r.Value.hasNew {
				newK, newV = fn(r.Key, r.Value.newV)
			}
			if r.Value.hasOld && r.Value.hasNew && sameKey(ks, name, oldK, newK) {
				// Stays in its group: one record, one result downstream
				// (Kafka Streams' KIP-904), never a transient total.
				d.Forward(Record[K2, flagged[V2]]{Key: newK, Value: flagged[V2]{v: newV, add: true, both: true, old: oldV}, Timestamp: r.Timestamp, Headers: r.Headers})
				return
			}
			if r.Value.hasOld {
				d.Forward(Record[K2, flagged[V2]]{Key: oldK, Value: flagged[V2]{v: oldV}, Timestamp: r.Timestamp, Headers: r.Headers})
			}
			if r.Value.hasNew {
				d.Forward(Record[K2, flagged[V2]]{Key: newK, Value: flagged[V2]{v: newV, add: true}, Timestamp: r.Timestamp, Headers: r.Headers})
			}
		}}
	})
	s := repartition(Stream[K2, flagged[V2]]{b: t.b, n: n}, name, ks, serde.Serde[flagged[V2]](flaggedSerde[V2]{vs}), 0, false)
	return GroupedTable[K2, V2]{s: s, ks: ks, vs: vs}
}

// TableAggregate aggregates a regrouped table: init makes a group's starting
// aggregate, adder adds a row's value to it, subtractor takes a row's old
// value out. Options: Named, StoreName, InMemory.
func TableAggregate[K, V, A any](g GroupedTable[K, V], init func() A, adder, subtractor func(k K, v V, a A) A, as serde.Serde[A], opts ...NodeOpt) Table[K, A] {
	if g.s.b == nil {
		panic("kstream: TableAggregate of a zero GroupedTable")
	}
	cfg := g.s.b.nodeCfg(opts)
	store := g.s.b.storeFor(cfg, "TABLE-AGGREGATE", true)
	return newAggregation(g.s, "TABLE-AGGREGATE", cfg, store, g.ks, as,
		func(k K, r Record[K, flagged[V]], old A, hasOld bool) (A, bool) {
			if !hasOld {
				old = init()
			}
			switch {
			case r.Value.both:
				return adder(k, r.Value.v, subtractor(k, r.Value.old, old)), true
			case r.Value.add:
				return adder(k, r.Value.v, old), true
			}
			return subtractor(k, r.Value.v, old), true
		})
}

// TableCount counts the rows in each group of a regrouped table.
// Options: Named, StoreName, InMemory.
func TableCount[K, V any](g GroupedTable[K, V], opts ...NodeOpt) Table[K, int64] {
	return TableAggregate(g, func() int64 { return 0 },
		func(_ K, _ V, n int64) int64 { return n + 1 },
		func(_ K, _ V, n int64) int64 { return n - 1 },
		serde.Int64, opts...)
}

// TableReduce combines the values of each group of a regrouped table:
// adder(aggregate, value) adds a row's value, subtractor(aggregate, value)
// takes a row's old value out. The first value of a group is its aggregate.
// Options: Named, StoreName, InMemory.
func TableReduce[K, V any](g GroupedTable[K, V], adder, subtractor func(agg, v V) V, opts ...NodeOpt) Table[K, V] {
	if g.s.b == nil {
		panic("kstream: TableReduce of a zero GroupedTable")
	}
	cfg := g.s.b.nodeCfg(opts)
	store := g.s.b.storeFor(cfg, "TABLE-REDUCE", true)
	return newAggregation(g.s, "TABLE-REDUCE", cfg, store, g.ks, g.vs,
		func(_ K, r Record[K, flagged[V]], old V, hasOld bool) (V, bool) {
			switch {
			case r.Value.both && hasOld:
				return adder(subtractor(old, r.Value.old), r.Value.v), true
			case r.Value.add && !hasOld:
				return r.Value.v, true
			case r.Value.add:
				return adder(old, r.Value.v), true
			case !hasOld:
				return old, false // nothing to subtract from
			default:
				return subtractor(old, r.Value.v), true
			}
		})
}
