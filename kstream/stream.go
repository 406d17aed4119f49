package kstream

import (
	"fmt"
	"time"

	"github.com/streamwork-go/streamwork/kstream/internal/engine"
	"github.com/streamwork-go/streamwork/serde"
)

// Stream is an unbounded sequence of records of type Record[K, V]: the output
// of a source or an operator. A Stream is a handle into its Builder's graph;
// using it more than once fans the records out to every consumer. The zero
// Stream is invalid.
type Stream[K, V any] struct {
	b *Builder
	n *node
	// keyChanged: an operator upstream may have changed the keys, so the
	// stream is no longer partitioned by its key; grouping it repartitions.
	keyChanged bool
}

// KeyValue is one output pair of FlatMap.
type KeyValue[K, V any] struct {
	Key   K
	Value V
}

// From reads topic with the given key and value serdes. Options: Named,
// WithTimestamps, ShedLoad.
func From[K, V any](b *Builder, topic string, ks serde.Serde[K], vs serde.Serde[V], opts ...NodeOpt) Stream[K, V] {
	return FromTopics(b, []string{topic}, ks, vs, opts...)
}

// FromTopics reads several topics into one stream. The topics are
// co-partitioned: partition p of each is processed by the same task.
func FromTopics[K, V any](b *Builder, topics []string, ks serde.Serde[K], vs serde.Serde[V], opts ...NodeOpt) Stream[K, V] {
	cfg := b.nodeCfg(opts)
	if len(topics) == 0 {
		b.errorf("%w: a source needs at least one topic", ErrTopology)
	}
	for _, tp := range topics {
		if tp == "" {
			b.errorf("%w: empty source topic name", ErrTopology)
		}
	}
	if ks == nil || vs == nil {
		b.errorf("%w: source of %v needs a key and a value serde", ErrTopology, topics)
	}
	var tsFn func(Record[K, V]) (time.Time, error)
	if cfg.tsExtract != nil {
		f, ok := cfg.tsExtract.(func(Record[K, V]) (time.Time, error))
		if !ok {
			b.errorf("%w: timestamp extractor of type %T does not match the source's record type", ErrTopology, cfg.tsExtract)
		}
		tsFn = f
	}
	n := b.addNode("SOURCE", cfg.name, engine.KindSource, nil, func() nodeInstance {
		return &engine.SourceNode[K, V]{Ks: ks, Vs: vs, TS: tsFn}
	})
	n.Topics = append([]string(nil), topics...)
	n.Shed = b.shedPolicy(&cfg)
	return Stream[K, V]{b: b, n: n}
}

// WithTimestamps sets a source's timestamp extractor: the event time of each
// record is what fn returns, not the Kafka record timestamp. An error or a
// negative time goes to the deserialization error handler. K and V must be
// the source's types.
func WithTimestamps[K, V any](fn func(Record[K, V]) (time.Time, error)) NodeOpt {
	return nodeOptFunc(func(c *nodeCfg) { c.tsExtract = fn })
}

func (s Stream[K, V]) valid(op string) bool {
	if s.b == nil || s.n == nil {
		panic(fmt.Sprintf("kstream: %s on a zero Stream", op))
	}
	return true
}

// stateless adds a stateless operator node under parent.
func stateless[KIn, VIn, KOut, VOut any](s Stream[KIn, VIn], op string, opts []NodeOpt,
	fn func(r Record[KIn, VIn], d *downstream[KOut, VOut])) Stream[KOut, VOut] {
	s.valid(op)
	cfg := s.b.nodeCfg(opts)
	if cfg.tsExtract != nil {
		s.b.errorf("%w: WithTimestamps applies to sources only (on %s)", ErrOptionNotApplicable, op)
	}
	n := s.b.addNode(op, cfg.name, engine.KindProcessor, []*node{s.n}, func() nodeInstance {
		return &statelessNode[KIn, VIn, KOut, VOut]{fn: fn}
	})
	return Stream[KOut, VOut]{b: s.b, n: n, keyChanged: s.keyChanged}
}

// Filter keeps the records for which pred returns true.
func (s Stream[K, V]) Filter(pred func(K, V) bool, opts ...NodeOpt) Stream[K, V] {
	return stateless(s, "FILTER", opts, func(r Record[K, V], d *downstream[K, V]) {
		if pred(r.Key, r.Value) {
			d.Forward(r)
		}
	})
}

// FilterNot drops the records for which pred returns true.
func (s Stream[K, V]) FilterNot(pred func(K, V) bool, opts ...NodeOpt) Stream[K, V] {
	return stateless(s, "FILTER", opts, func(r Record[K, V], d *downstream[K, V]) {
		if !pred(r.Key, r.Value) {
			d.Forward(r)
		}
	})
}

// Peek calls fn for each record and passes the record on unchanged.
func (s Stream[K, V]) Peek(fn func(K, V), opts ...NodeOpt) Stream[K, V] {
	return stateless(s, "PEEK", opts, func(r Record[K, V], d *downstream[K, V]) {
		fn(r.Key, r.Value)
		d.Forward(r)
	})
}

// Foreach calls fn for each record; the stream ends there.
func (s Stream[K, V]) Foreach(fn func(K, V), opts ...NodeOpt) {
	stateless(s, "FOREACH", opts, func(r Record[K, V], _ *downstream[K, V]) {
		fn(r.Key, r.Value)
	})
}

// Merge returns a stream with the records of s and of every other stream, in
// the order they are processed.
func (s Stream[K, V]) Merge(others ...Stream[K, V]) Stream[K, V] {
	return s.MergeNamed("", others...)
}

// MergeNamed is Merge with a node name.
func (s Stream[K, V]) MergeNamed(name string, others ...Stream[K, V]) Stream[K, V] {
	s.valid("Merge")
	parents := []*node{s.n}
	changed := s.keyChanged
	for _, o := range others {
		changed = changed || o.keyChanged
		o.valid("Merge")
		if o.b != s.b {
			s.b.errorf("%w: Merge of streams from different Builders", ErrTopology)
			continue
		}
		parents = append(parents, o.n)
	}
	n := s.b.addNode("MERGE", name, engine.KindProcessor, parents, func() nodeInstance {
		return &statelessNode[K, V, K, V]{fn: func(r Record[K, V], d *downstream[K, V]) { d.Forward(r) }}
	})
	return Stream[K, V]{b: s.b, n: n, keyChanged: changed}
}

// Map turns each record into a record with a new key and value. A changed
// key means a stream that is no longer partitioned by its key.
func Map[K, V, K2, V2 any](s Stream[K, V], fn func(K, V) (K2, V2), opts ...NodeOpt) Stream[K2, V2] {
	out := stateless(s, "MAP", opts, func(r Record[K, V], d *downstream[K2, V2]) {
		k, v := fn(r.Key, r.Value)
		d.Forward(WithKeyValue(r, k, v))
	})
	out.keyChanged = true
	return out
}

// MapValues turns each record's value into a new value; the key stays.
// Tombstones pass through without calling fn.
func MapValues[K, V, V2 any](s Stream[K, V], fn func(V) V2, opts ...NodeOpt) Stream[K, V2] {
	return stateless(s, "MAPVALUES", opts, func(r Record[K, V], d *downstream[K, V2]) {
		if r.Tombstone {
			d.Forward(tombstoneOf[K, V, V2](r))
			return
		}
		d.Forward(WithValue(r, fn(r.Value)))
	})
}

func tombstoneOf[K, V, V2 any](r Record[K, V]) Record[K, V2] {
	return Record[K, V2]{Key: r.Key, Timestamp: r.Timestamp, Headers: r.Headers, Tombstone: true}
}

// MapValuesWithKey is MapValues with the key passed to fn (read-only).
// Tombstones pass through without calling fn.
func MapValuesWithKey[K, V, V2 any](s Stream[K, V], fn func(K, V) V2, opts ...NodeOpt) Stream[K, V2] {
	return stateless(s, "MAPVALUES", opts, func(r Record[K, V], d *downstream[K, V2]) {
		if r.Tombstone {
			d.Forward(tombstoneOf[K, V, V2](r))
			return
		}
		d.Forward(WithValue(r, fn(r.Key, r.Value)))
	})
}

// FlatMap turns each record into zero or more records.
func FlatMap[K, V, K2, V2 any](s Stream[K, V], fn func(K, V) []KeyValue[K2, V2], opts ...NodeOpt) Stream[K2, V2] {
	out := stateless(s, "FLATMAP", opts, func(r Record[K, V], d *downstream[K2, V2]) {
		for _, kv := range fn(r.Key, r.Value) {
			d.Forward(WithKeyValue(r, kv.Key, kv.Value))
		}
	})
	out.keyChanged = true
	return out
}

// FlatMapValues turns each record's value into zero or more values, each
// forwarded with the record's key. Tombstones pass through without calling
// fn.
func FlatMapValues[K, V, V2 any](s Stream[K, V], fn func(V) []V2, opts ...NodeOpt) Stream[K, V2] {
	return stateless(s, "FLATMAPVALUES", opts, func(r Record[K, V], d *downstream[K, V2]) {
		if r.Tombstone {
			d.Forward(tombstoneOf[K, V, V2](r))
			return
		}
		for _, v := range fn(r.Value) {
			d.Forward(WithValue(r, v))
		}
	})
}

// SelectKey gives each record a new key computed from it.
func SelectKey[K, V, K2 any](s Stream[K, V], fn func(K, V) K2, opts ...NodeOpt) Stream[K2, V] {
	out := stateless(s, "KEY-SELECT", opts, func(r Record[K, V], d *downstream[K2, V]) {
		out := WithKeyValue(r, fn(r.Key, r.Value), r.Value)
		out.Tombstone = r.Tombstone
		d.Forward(out)
	})
	out.keyChanged = true
	return out
}

// Process runs a user Processor for each record. supplier is called once per
// task for a fresh Processor. Options: Named, UseStores (the stores, added
// with AddStore, its Processor gets with GetStore or StoreOf).
func Process[K, V, K2, V2 any](s Stream[K, V], supplier func() Processor[K, V, K2, V2], opts ...NodeOpt) Stream[K2, V2] {
	s.valid("Process")
	cfg := s.b.nodeCfg(opts)
	if cfg.tsExtract != nil {
		s.b.errorf("%w: WithTimestamps applies to sources only (on Process)", ErrOptionNotApplicable)
	}
	if supplier == nil {
		s.b.errorf("%w: Process needs a processor supplier", ErrTopology)
	}
	n := s.b.addNode("PROCESSOR", cfg.name, engine.KindProcessor, []*node{s.n}, func() nodeInstance {
		return &processorNode[K, V, K2, V2]{proc: supplier()}
	})
	s.b.useStores(n, cfg)
	// A processor may forward any key: the result counts as re-keyed.
	return Stream[K2, V2]{b: s.b, n: n, keyChanged: true}
}

// To writes every record to topic with the given serdes. Records are
// partitioned by their serialized key with Kafka's default (murmur2)
// partitioner, as Java producers do.
func (s Stream[K, V]) To(topic string, ks serde.Serde[K], vs serde.Serde[V], opts ...NodeOpt) {
	s.valid("To")
	if topic == "" {
		s.b.errorf("%w: empty sink topic name", ErrTopology)
	}
	s.sink(opts, topic, nil, ks, vs)
}

// ToDynamic writes every record to the topic topicFn returns for it. The
// topics must exist.
func (s Stream[K, V]) ToDynamic(topicFn func(Record[K, V]) string, ks serde.Serde[K], vs serde.Serde[V], opts ...NodeOpt) {
	s.valid("ToDynamic")
	if topicFn == nil {
		s.b.errorf("%w: ToDynamic needs a topic function", ErrTopology)
	}
	s.sink(opts, "", topicFn, ks, vs)
}

func (s Stream[K, V]) sink(opts []NodeOpt, topic string, topicFn func(Record[K, V]) string, ks serde.Serde[K], vs serde.Serde[V]) {
	cfg := s.b.nodeCfg(opts)
	if cfg.tsExtract != nil {
		s.b.errorf("%w: WithTimestamps applies to sources only (on a sink)", ErrOptionNotApplicable)
	}
	if ks == nil || vs == nil {
		s.b.errorf("%w: sink needs a key and a value serde", ErrTopology)
	}
	n := s.b.addNode("SINK", cfg.name, engine.KindSink, []*node{s.n}, func() nodeInstance {
		return &engine.SinkNode[K, V]{Topic: topic, TopicFn: topicFn, Ks: ks, Vs: vs}
	})
	if topicFn != nil {
		n.Dynamic = true
	} else {
		n.Topics = []string{topic}
	}
}
