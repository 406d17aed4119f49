package kstream

import (
	"bytes"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamwork-go/streamwork/state"
	"github.com/streamwork-go/streamwork/state/memory"
)

// State stores: the contract between the DSL (and the processor API) and
// the stateful runtime.
//
// Building. A stateful operator registers a store with b.addStore(spec)
// and connects each node that uses it with b.connectStore(n, name). Nodes
// sharing a store end up in one sub-topology. Build checks that every used
// store exists.
//
// Running. Each task of that sub-topology has its own instance of the
// store, which a node instance gets in its init with t.store(name). The
// instance is a stack:
//
//	record cache (spec.cached and CacheMaxBytes > 0; see cache.go)
//	  -> changelogging store (spec.changelog)
//	    -> engine store (Pebble under StateDir, or memory; see statedir.go)
//
// A write goes to the engine store and, with spec.changelog, to the
// changelog topic "<application id>-<store>-changelog": the key, the value
// (nil for Delete: a tombstone), partition = the task's partition,
// timestamp = t.curTs (the current record's, or the punctuation's, or the
// cached update's when a cache flushes). Reads see the task's own writes,
// cache included. Before the task processes anything the runtime restores
// the engine store from its changelog (restore.go), and after each commit
// it writes the task's checkpoint (checkpoint.go).
//
// A cached store's owner node registers a flushListener with
// t.onFlush(name, fn) in its init and then forwards only what the cache
// flushes; when onFlush returns false there is no cache and the node
// forwards every update itself. Caches flush before every commit, when
// they are full, and before a clean close; the test driver flushes them
// after every record.
//
// Global tables (globalSpec, global.go) are not storeSpecs: the App's
// global updater keeps one store per instance; tasks read it through
// t.env.globals (or t.store, read-only).
//
// Internal topics. Repartition topics are registered with
// b.addInternalTopic(name, partitions) under their short name, which their
// internal source and sink nodes (internal = true) carry in node.topics;
// at run time the full name is "<application id>-<name>" (resolveTopic,
// subtopology.sourceTopics). Run (prepareTopics, internaltopics.go)
// creates the internal topics that do not exist: a repartition topic with
// its registered partition count, or for 0 the count of the user topics it
// is co-partitioned with, else the largest source topic count of the
// sub-topology that writes it (cleanup.policy=delete, retention.ms=-1;
// records are purged up to the committed offsets after each commit); a
// changelog topic with as many partitions as its sub-topology has tasks
// (cleanup.policy=compact). An existing internal topic with another
// partition count fails Run with ErrInternalTopic.

// storeSpec describes one state store of a topology. Each task of the
// sub-topology that uses the store has its own instance of it (a global
// store is whole on every instance instead).
type storeSpec struct {
	name string
	// changelog: every change is also written to the store's changelog
	// topic, <application id>-<name>-changelog, from which the store is
	// restored.
	changelog bool
	// cached: a record cache sits in front of the store; see task.onFlush.
	cached bool
	// inMemory: the memory engine, whatever the App's default engine.
	inMemory bool
}

// changelogTopic returns the name of the store's changelog topic.
func (s *storeSpec) changelogTopic(appID string) string {
	return appID + "-" + s.name + "-changelog"
}

// addStore registers a store; a second store of the same name is an error.
func (b *Builder) addStore(spec *storeSpec) {
	if b.stores == nil {
		b.stores = make(map[string]*storeSpec)
	}
	if _, dup := b.stores[spec.name]; dup {
		b.errorf("%w: store %q", ErrDuplicateName, spec.name)
		return
	}
	if spec.name == "" || !legalName.MatchString(spec.name) {
		b.errorf("%w: store name %q may only hold letters, digits, '.', '_' and '-'", ErrTopology, spec.name)
		return
	}
	b.stores[spec.name] = spec
	b.storeOrder = append(b.storeOrder, spec.name)
}

// connectStore records that node n reads and writes the store named name.
// Nodes sharing a store end up in one sub-topology.
func (b *Builder) connectStore(n *node, name string) {
	n.stores = append(n.stores, name)
}

// internalTopicSpec describes an internal topic the DSL needs (a
// repartition topic). Its full name is "<application id>-<name>".
type internalTopicSpec struct {
	name string
	// partitions: 0 means as many as the largest source topic of the
	// sub-topology that writes it.
	partitions int32
}

// addInternalTopic registers an internal topic; nodes that read or write it
// carry its short name in node.topics and internal: true.
func (b *Builder) addInternalTopic(name string, partitions int32) {
	for _, it := range b.internalTopics {
		if it.name == name {
			b.errorf("%w: internal topic %q", ErrDuplicateName, name)
			return
		}
	}
	b.internalTopics = append(b.internalTopics, &internalTopicSpec{name: name, partitions: partitions})
}

// resolveTopic returns the full name of a node's topic.
func resolveTopic(appID string, internal bool, topic string) string {
	if internal {
		return appID + "-" + topic
	}
	return topic
}

// taskStore is one task's instance of one store: the engine store and the
// layers over it.
type taskStore struct {
	spec       *storeSpec
	engine     state.Store
	persistent bool   // on disk: restored from its checkpoint
	dir        string // its directory, when persistent
	logged     *changelogStore
	cache      *cachingStore
	top        state.Store // what t.store returns
	changelog  state.TopicPartition
	// restoredTo is the changelog offset the engine store holds every
	// record before, as far as restore knows (-1: unknown); checkpointed
	// is the offset in the last checkpoint written.
	restoredTo   int64
	checkpointed int64
}

// offset returns the changelog offset the engine store holds every record
// before: the offset after the last acknowledged changelog write, else
// where restore ended; -1 when unknown.
func (ts *taskStore) offset() int64 {
	if ts.logged == nil {
		return -1
	}
	return max(ts.logged.acked.Load(), ts.restoredTo)
}

// openStores opens the stores the task's sub-topology uses, in the
// topology's store order, and builds their layers.
func (t *task) openStores() error {
	used := make(map[string]bool)
	for _, n := range t.sub.nodes {
		for _, name := range n.stores {
			used[name] = true
		}
	}
	if len(used) == 0 || t.env.topo == nil {
		return nil
	}
	for _, name := range t.env.topo.storeOrder {
		spec := t.env.topo.stores[name]
		if !used[name] || spec == nil {
			continue
		}
		ts := &taskStore{spec: spec, restoredTo: -1, checkpointed: -1}
		var err error
		if t.env.state != nil && t.env.state.persistent(spec) {
			ts.persistent = true
			ts.engine, ts.dir, err = t.env.state.open(t.id, spec)
			if err != nil {
				return err
			}
		} else {
			ts.engine = memory.New(name)
		}
		ts.top = ts.engine
		if spec.changelog {
			ts.changelog = state.TopicPartition{Topic: spec.changelogTopic(t.env.appID), Partition: t.id.Partition}
			ts.logged = &changelogStore{Store: ts.engine, t: t, topic: ts.changelog.Topic}
			ts.logged.acked.Store(-1)
			ts.top = ts.logged
		}
		if spec.cached && t.env.cache != nil && t.env.cache.max > 0 {
			ts.cache = newCachingStore(name, ts.top, t, t.env.cache)
			ts.top = ts.cache
		}
		if t.byStore == nil {
			t.byStore = make(map[string]*taskStore)
		}
		t.byStore[name] = ts
		t.stateStores = append(t.stateStores, ts)
	}
	return nil
}

// store returns the task's instance of the named store (the top of its
// stack), a read-only view of a global table's store, or nil.
func (t *task) store(name string) state.Store {
	if ts := t.byStore[name]; ts != nil {
		return ts.top
	}
	if g := t.env.globals[name]; g != nil {
		return readOnlyStore{g}
	}
	return nil
}

// flushListener receives what a record cache flushes for one key: the new
// value (nil: deleted), the value the store held before the cached updates
// (nil: absent), and the timestamp of the last update. It is called on the
// task's goroutine with t.curNode set to the node that registered it and
// t.curTs to ts; it is not called when both values are nil (a key added
// and deleted between two flushes).
type flushListener func(key, newValue, oldValue []byte, ts int64)

// onFlush registers fn as the flush listener of a cached store and reports
// whether a cache is in front of it. When it returns false, the node writes
// through and must forward its own changes. Call it from the init of the
// node that owns the store (t.curNode is then that node).
func (t *task) onFlush(name string, fn flushListener) bool {
	ts := t.byStore[name]
	if ts == nil || ts.cache == nil {
		return false
	}
	ts.cache.listener, ts.cache.owner = fn, t.curNode
	return true
}

// closeStores closes every store of the task and gives its cache's memory
// back to the worker's budget. Cached updates not flushed are dropped.
func (t *task) closeStores() error {
	var errs []error
	for _, ts := range t.stateStores {
		if ts.cache != nil {
			ts.cache.drop()
		}
		if err := ts.engine.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close store %q: %w", ts.spec.name, err))
		}
	}
	return joinErrors(errs)
}

// changelogCollector is implemented by collectors that report when a
// changelog record is acknowledged: acked is set to its offset + 1. The
// worker's does; a collector without it (the test driver's) gets the
// records through send.
type changelogCollector interface {
	sendChangelog(t *task, r *kgo.Record, acked *atomic.Int64)
}

// changelogStore writes every change of its engine store to the changelog.
// Reads go to the engine store. It is used by the task's goroutine only;
// acked is written by produce promises.
type changelogStore struct {
	state.Store // the engine store
	t           *task
	topic       string
	// acked is the offset after the last changelog record Kafka
	// acknowledged, -1 before the first.
	acked atomic.Int64
}

// Put writes key and value to the engine store, then to the changelog. A
// nil value deletes.
func (s *changelogStore) Put(key, value []byte) error {
	if value == nil {
		return s.Delete(key)
	}
	if err := s.Store.Put(key, value); err != nil {
		return err
	}
	s.log(key, bytes.Clone(value))
	return nil
}

// Delete deletes key from the engine store and writes a tombstone.
func (s *changelogStore) Delete(key []byte) error {
	if err := s.Store.Delete(key); err != nil {
		return err
	}
	s.log(key, nil)
	return nil
}

func (s *changelogStore) log(key, value []byte) {
	k := bytes.Clone(key)
	if k == nil {
		k = []byte{}
	}
	r := &kgo.Record{Topic: s.topic, Partition: s.t.id.Partition, Key: k, Value: value, Timestamp: time.UnixMilli(s.t.curTs)}
	if cc, ok := s.t.env.collector.(changelogCollector); ok {
		cc.sendChangelog(s.t, r, &s.acked)
		return
	}
	s.t.env.collector.send(s.t, r)
}

// readOnlyStore is a state.Store whose writes fail with ErrReadOnlyStore.
type readOnlyStore struct{ state.Store }

func (s readOnlyStore) Put([]byte, []byte) error {
	return fmt.Errorf("%w: %q", ErrReadOnlyStore, s.Name())
}

func (s readOnlyStore) Delete([]byte) error {
	return fmt.Errorf("%w: %q", ErrReadOnlyStore, s.Name())
}

// Flush and Close belong to the store's owner.
func (s readOnlyStore) Flush() error { return nil }
func (s readOnlyStore) Close() error { return nil }
