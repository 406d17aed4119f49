package kstream

import (
	"fmt"

	"github.com/streamwork-go/streamwork/kstream/internal/engine"
	"github.com/streamwork-go/streamwork/serde"
)

// Partitions sets the partition count of the internal topic of Repartition.
// Default: as many as the largest source topic of the writing sub-topology.
func Partitions(n int32) NodeOpt {
	return nodeOptFunc(func(c *nodeCfg) { c.partitions = n })
}

// RoundRobin makes Repartition spread records over the partitions in turn,
// whatever their keys (the book's shuffle grouping), instead of by key
// (fields grouping).
func RoundRobin() NodeOpt {
	return nodeOptFunc(func(c *nodeCfg) { c.roundRobin = true })
}

// Repartition writes the stream through an internal topic,
// "<application id>-<name>-repartition", and reads it back: by key, so that
// records with the same key meet in the same task downstream, or round robin
// with RoundRobin. Options: Named (the topic's name part; generated if
// absent), Partitions, RoundRobin.
//
// Grouping a stream whose key may have changed (after Map, FlatMap,
// SelectKey or Process) repartitions it by key automatically.
func Repartition[K, V any](s Stream[K, V], ks serde.Serde[K], vs serde.Serde[V], opts ...NodeOpt) Stream[K, V] {
	s.valid("Repartition")
	cfg := s.b.nodeCfg(opts)
	if cfg.partitions < 0 {
		s.b.errorf("%w: Partitions(%d) must be positive", ErrConfig, cfg.partitions)
	}
	name := cfg.name
	if name == "" {
		name = s.b.generatedName("REPARTITION")
	}
	return repartition(s, name, ks, vs, cfg.partitions, cfg.roundRobin)
}

// repartition inserts sink -> <name>-repartition -> source. The source starts
// a new sub-topology.
func repartition[K, V any](s Stream[K, V], name string, ks serde.Serde[K], vs serde.Serde[V], partitions int32, roundRobin bool) Stream[K, V] {
	if ks == nil || vs == nil {
		s.b.errorf("%w: repartition %q needs a key and a value serde", ErrTopology, name)
	}
	topic := name + "-repartition"
	s.b.addInternalTopic(topic, partitions)
	sink := s.b.addNode("SINK", topic+"-sink", engine.KindSink, []*node{s.n}, func() nodeInstance {
		return &engine.SinkNode[K, V]{Topic: topic, Internal: true, RoundRobin: roundRobin, Ks: ks, Vs: vs}
	})
	sink.Topics, sink.Internal = []string{topic}, true
	src := s.b.addNode("SOURCE", topic+"-source", engine.KindSource, nil, func() nodeInstance {
		return &engine.SourceNode[K, V]{Ks: ks, Vs: vs}
	})
	src.Topics, src.Internal = []string{topic}, true
	return Stream[K, V]{b: s.b, n: src}
}

// generatedName returns a name of the form KSTREAM-<OP>-<10 digits> and
// counts it, for RequireExplicitNames.
func (b *Builder) generatedName(op string) string {
	idx := b.counter
	b.counter++
	b.g.GeneratedNames = append(b.g.GeneratedNames, fmt.Sprintf("KSTREAM-%s-%010d", op, idx))
	return b.g.GeneratedNames[len(b.g.GeneratedNames)-1]
}
