package kstream

import (
	"fmt"
	"slices"

	"github.com/streamwork-go/streamwork/serde"
	"github.com/streamwork-go/streamwork/state"
)

// StoreOpt configures a store added with AddStore.
type StoreOpt interface{ applyStore(*storeSpec) }

type storeOptFunc func(*storeSpec)

func (f storeOptFunc) applyStore(s *storeSpec) { f(s) }

// InMemory keeps a store in memory whatever the App's StoreEngine. It is
// still changelogged (unless WithoutChangelog) and restored in full when
// its task starts. It is a NodeOpt for the store of a stateful operator
// (Count, Reduce, Aggregate, TableFrom, the table aggregations,
// GlobalTableFrom) and a StoreOpt for AddStore.
func InMemory() StoreNodeOpt { return inMemory{} }

// StoreNodeOpt configures a store, of a stateful operator (as a NodeOpt)
// or of AddStore (as a StoreOpt).
type StoreNodeOpt interface {
	NodeOpt
	StoreOpt
}

type inMemory struct{}

func (inMemory) applyNode(c *nodeCfg)    { c.inMemory = true }
func (inMemory) applyStore(s *storeSpec) { s.InMemory = true }

// WithoutChangelog turns the store's changelog off: nothing is written to
// Kafka and nothing is restored, so the store starts empty whenever its
// task moves or restarts (an on-disk store keeps what it had on this
// instance). For caches and scratch state that can be rebuilt.
// (Kafka Streams: withLoggingDisabled.)
func WithoutChangelog() StoreOpt { return storeOptFunc(func(s *storeSpec) { s.Changelog = false }) }

// WithCache puts a record cache in front of the store (see CacheMaxBytes):
// writes of a key between two commits are merged and reach the store and
// its changelog when the cache flushes (at each commit, or when the cache
// is full). Reads see the cached writes. A processor forwards what it
// wants itself; the cache only spares the store and the changelog.
// (Kafka Streams: withCachingEnabled.)
func WithCache() StoreOpt { return storeOptFunc(func(s *storeSpec) { s.Cached = true }) }

// AddStore adds a key-value store named name to the topology for the
// processor API: changelogged to "<application id>-<name>-changelog", on
// the App's StoreEngine, without cache, unless opts say otherwise. Connect
// it to the Process nodes that use it with UseStores; nodes sharing a
// store run in the same tasks. Each task has its own instance of the
// store. The name must be unique among the topology's stores and may hold
// letters, digits, '.', '_' and '-'. (Kafka Streams:
// Topology.addStateStore.)
func AddStore(b *Builder, name string, opts ...StoreOpt) {
	spec := &storeSpec{Name: name, Changelog: true}
	for _, o := range opts {
		if o != nil {
			o.applyStore(spec)
		}
	}
	b.addStore(spec)
}

// UseStores connects a Process node to stores added with AddStore, by
// name, so its Processor can get them with GetStore or StoreOf. It applies
// to Process only. Build fails when a store was never added.
func UseStores(names ...string) NodeOpt {
	return nodeOptFunc(func(c *nodeCfg) { c.stores = append(c.stores, names...) })
}

// useStores connects n to the stores of a UseStores option and marks the
// option as taken; see Builder.Build.
func (b *Builder) useStores(n *node, cfg nodeCfg) {
	if len(cfg.stores) == 0 {
		return
	}
	b.unclaimedUseStores--
	for _, s := range cfg.stores {
		if !slices.Contains(n.Stores, s) {
			b.connectStore(n, s)
		}
	}
}

// storeGetter is implemented by the ProcessorContext the runtime gives a
// Processor.
type storeGetter interface {
	getStore(name string) (state.Store, error)
}

// GetStore returns the task's instance of the store named name, for the
// Processor whose context pc is: call it in Init and keep the result. The
// store must be connected to the processor's node with UseStores (else an
// error wrapping ErrUnknownStore); a global table's store can be read
// from any processor and is read-only (writes fail with ErrReadOnlyStore).
// Like the context, the store may be used only on the task's goroutine,
// from Init until Close; writes go to the changelog with the current
// record's timestamp.
func GetStore[K, V any](pc ProcessorContext[K, V], name string) (state.Store, error) {
	g, ok := pc.(storeGetter)
	if !ok {
		return nil, fmt.Errorf("%w: %T is not a runtime ProcessorContext", ErrUnknownStore, pc)
	}
	return g.getStore(name)
}

// StoreOf is GetStore with a typed view: keys and values go through ks
// and vs, with the store's name as the serdes' topic.
//
//	func (p *counter) Init(ctx kstream.ProcessorContext[string, int64]) error {
//		var err error
//		p.counts, err = kstream.StoreOf(ctx, "counts", serde.String, serde.Int64)
//		return err
//	}
func StoreOf[K, V, KC, VC any](pc ProcessorContext[KC, VC], name string, ks serde.Serde[K], vs serde.Serde[V]) (*state.KeyValue[K, V], error) {
	st, err := GetStore(pc, name)
	if err != nil {
		return nil, err
	}
	return state.Typed(st, ks, vs), nil
}

// getStore implements storeGetter.
func (p *processorNode[KIn, VIn, KOut, VOut]) getStore(name string) (state.Store, error) {
	t := p.t
	if t == nil {
		return nil, fmt.Errorf("%w: %q: the processor is not initialized", ErrUnknownStore, name)
	}
	if _, ok := t.Env.Globals[name]; !ok {
		var n *node
		if t.Env.Topo != nil {
			n = t.Env.Topo.ByName[p.name]
		}
		if n == nil || !slices.Contains(n.Stores, name) {
			return nil, fmt.Errorf("%w: %q is not connected to node %q (UseStores)", ErrUnknownStore, name, p.name)
		}
	}
	st := t.Store(name)
	if st == nil {
		return nil, fmt.Errorf("%w: %q is not open in task %s", ErrUnknownStore, name, t.ID)
	}
	if t.Env.Topo == nil {
		return st, nil
	}
	if spec := t.Env.Topo.Stores[name]; spec != nil && spec.Timestamped {
		// A DSL store keeping a timestamp with each value: the processor
		// sees the values alone.
		return stampedStore{Store: st, t: t}, nil
	}
	return st, nil
}
