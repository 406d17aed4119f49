package engine

import (
	"bytes"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamwork-go/streamwork/kstream/internal/cache"
	"github.com/streamwork-go/streamwork/kstream/internal/wire"
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
// A cached store's owner node registers a FlushListener with
// t.onFlush(name, fn) in its init and then forwards only what the cache
// flushes; when onFlush returns false there is no cache and the node
// forwards every update itself. Caches flush before every commit, when
// they are full, and before a clean close; the test driver flushes them
// after every record.
//
// Global tables (GlobalSpec, global.go) are not storeSpecs: the App's
// global updater keeps one store per instance; tasks read it through
// t.env.globals (or t.store, read-only).
//
// Internal topics. Repartition topics are registered with
// b.addInternalTopic(name, partitions) under their short name, which their
// internal source and sink nodes (internal = true) carry in node.topics;
// at run time the full name is "<application id>-<name>" (ResolveTopic,
// Subtopology.sourceTopics). Run (prepareTopics, internaltopics.go)
// creates the internal topics that do not exist: a repartition topic with
// its registered partition count, or for 0 the count of the user topics it
// is co-partitioned with, else the largest source topic count of the
// sub-topology that writes it (cleanup.policy=delete, retention.ms=-1;
// records are purged up to the committed offsets after each commit); a
// changelog topic with as many partitions as its sub-topology has tasks
// (cleanup.policy=compact). An existing internal topic with another
// partition count fails Run with ErrInternalTopic.

// StoreSpec describes one state store of a topology. Each task of the
// sub-topology that uses the store has its own instance of it (a global
// store is whole on every instance instead).
type StoreSpec struct {
	Name string
	// changelog: every change is also written to the store's changelog
	// topic, <application id>-<name>-changelog, from which the store is
	// restored.
	Changelog bool
	// cached: a record cache sits in front of the store; see task.onFlush.
	Cached bool
	// inMemory: the memory engine, whatever the App's default engine.
	InMemory bool
	// Retention, when positive, is how long the store keeps data (window
	// and session stores): its changelog is compact,delete with
	// retention.ms = Retention + WindowChangelogExtraRetention, as Kafka
	// Streams sets it. 0: the changelog is compacted only.
	Retention time.Duration
	// Timestamped: each value is the 8-byte big-endian timestamp of the
	// value's record (for an aggregate, the largest of its records'), then
	// the value's bytes: Kafka Streams' timestamped key-value store
	// (ValueAndTimestamp). Queries strip the timestamp.
	Timestamped bool
	// Versioned: the store holds a versioned store's layout (a versioned
	// table's); key-value queries do not apply.
	Versioned bool
}

// WindowChangelogExtraRetention is added to a window or session store's
// retention for its changelog topic's retention.ms (Kafka Streams'
// windowstore.changelog.additional.retention.ms default), so that a
// restore finds every live window.
const WindowChangelogExtraRetention = 24 * time.Hour

// changelogTopic returns the name of the store's changelog topic.
func (s *StoreSpec) ChangelogTopic(appID string) string {
	return appID + "-" + s.Name + "-changelog"
}

// InternalTopicSpec describes an internal topic the DSL needs (a
// repartition topic). Its full name is "<application id>-<name>".
type InternalTopicSpec struct {
	Name string
	// partitions: 0 means as many as the largest source topic of the
	// sub-topology that writes it.
	Partitions int32
}

// ResolveTopic returns the full name of a node's topic.
func ResolveTopic(appID string, internal bool, topic string) string {
	if internal {
		return appID + "-" + topic
	}
	return topic
}

// TaskStore is one task's instance of one store: the engine store and the
// layers over it.
type TaskStore struct {
	Spec       *StoreSpec
	Engine     state.Store
	Persistent bool   // on disk: restored from its checkpoint
	Dir        string // its directory, when persistent
	Logged     *ChangelogStore
	Cache      *cache.Store
	Top        state.Store // what t.store returns
	Changelog  wire.TopicPartition
	// restoredTo is the changelog offset the engine store holds every
	// record before, as far as restore knows (-1: unknown); checkpointed
	// is the offset in the last checkpoint written.
	RestoredTo   int64
	Checkpointed int64
}

// offset returns the changelog offset the engine store holds every record
// before: the offset after the last acknowledged changelog write, else
// where restore ended; -1 when unknown.
func (ts *TaskStore) Offset() int64 {
	if ts.Logged == nil {
		return -1
	}
	return max(ts.Logged.Acked.Load(), ts.RestoredTo)
}

// openStores opens the stores the task's sub-topology uses, in the
// topology's store order, and builds their layers.
func (t *Task) OpenStores() error {
	used := make(map[string]bool)
	for _, n := range t.Sub.Nodes {
		for _, name := range n.Stores {
			used[name] = true
		}
	}
	if len(used) == 0 || t.Env.Topo == nil {
		return nil
	}
	for _, name := range t.Env.Topo.StoreOrder {
		spec := t.Env.Topo.Stores[name]
		if !used[name] || spec == nil {
			continue
		}
		ts := &TaskStore{Spec: spec, RestoredTo: -1, Checkpointed: -1}
		var err error
		if t.Env.State != nil && t.Env.State.Persistent(spec) {
			ts.Persistent = true
			ts.Engine, ts.Dir, err = t.Env.State.Open(t.ID, spec)
			if err != nil {
				return err
			}
		} else {
			ts.Engine = memory.New(name)
		}
		ts.Top = ts.Engine
		if spec.Changelog {
			ts.Changelog = wire.TopicPartition{Topic: spec.ChangelogTopic(t.Env.AppID), Partition: t.ID.Partition}
			ts.Logged = &ChangelogStore{Store: ts.Engine, t: t, Topic: ts.Changelog.Topic}
			ts.Logged.Acked.Store(-1)
			ts.Top = ts.Logged
		}
		if spec.Cached && t.Env.Cache != nil && t.Env.Cache.Max > 0 {
			ts.Cache = cache.New(name, ts.Top, t, t.Env.Cache)
			ts.Top = ts.Cache
		}
		if t.ByStore == nil {
			t.ByStore = make(map[string]*TaskStore)
		}
		t.ByStore[name] = ts
		t.StateStores = append(t.StateStores, ts)
	}
	return nil
}

// store returns the task's instance of the named store (the top of its
// stack), a read-only view of a global table's store, or nil.
func (t *Task) Store(name string) state.Store {
	if ts := t.ByStore[name]; ts != nil {
		return ts.Top
	}
	if g := t.Env.Globals[name]; g != nil {
		return ReadOnlyStore{g}
	}
	return nil
}

// FlushListener receives what a record cache flushes for one key: the new
// value (nil: deleted), the value the store held before the cached updates
// (nil: absent), and the timestamp of the last update. It is called on the
// task's goroutine with t.curNode set to the node that registered it and
// t.curTs to ts; it is not called when both values are nil (a key added
// and deleted between two flushes).
type FlushListener = cache.Listener

// onFlush registers fn as the flush listener of a cached store and reports
// whether a cache is in front of it. When it returns false, the node writes
// through and must forward its own changes. oldValues: fn is given each
// key's value before the flushed updates (else nil, and the flush reads
// the store only for deletes). Call it from the init of the node that
// owns the store (t.curNode is then that node).
func (t *Task) OnFlush(name string, oldValues bool, fn FlushListener) bool {
	ts := t.ByStore[name]
	if ts == nil || ts.Cache == nil {
		return false
	}
	ts.Cache.SetListener(t.CurNode, fn)
	ts.Cache.OldValues(oldValues)
	return true
}

// closeStores closes every store of the task and gives its cache's memory
// back to the worker's budget. Cached updates not flushed are dropped.
func (t *Task) CloseStores() error {
	var errs []error
	for _, ts := range t.StateStores {
		if ts.Cache != nil {
			ts.Cache.Drop()
		}
		if err := ts.Engine.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close store %q: %w", ts.Spec.Name, err))
		}
	}
	return JoinErrors(errs)
}

// ChangelogCollector is implemented by collectors that report when a
// changelog record is acknowledged: acked is set to its offset + 1. The
// worker's does; a Collector without it (the test driver's) gets the
// records through send.
type ChangelogCollector interface {
	SendChangelog(t *Task, r *kgo.Record, acked *atomic.Int64)
}

// ChangelogStore writes every change of its engine store to the changelog.
// Reads go to the engine store. It is used by the task's goroutine only;
// acked is written by produce promises. DeleteRange and the metadata records
// are not logged: range deletes drop expired data (window segments), whose
// changelog records age out by the topic's retention, and the metadata is
// the store's own record of where it stands in its changelog.
type ChangelogStore struct {
	state.Store // the engine store
	t           *Task
	Topic       string
	// acked is the offset after the last changelog record Kafka
	// acknowledged, -1 before the first.
	Acked atomic.Int64
}

// Put writes key and value to the engine store, then to the changelog. A
// nil value deletes.
func (s *ChangelogStore) Put(key, value []byte) error {
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
func (s *ChangelogStore) Delete(key []byte) error {
	if err := s.Store.Delete(key); err != nil {
		return err
	}
	s.log(key, nil)
	return nil
}

// LogExpiring writes key and value (nil: a tombstone) to the changelog
// only, not to the engine store: the record cache sends this way the last
// updates of a range it is about to delete (cache.ExpiryLogger).
func (s *ChangelogStore) LogExpiring(key, value []byte) {
	s.log(key, bytes.Clone(value))
}

func (s *ChangelogStore) log(key, value []byte) {
	k := bytes.Clone(key)
	if k == nil {
		k = []byte{}
	}
	r := &kgo.Record{Topic: s.Topic, Partition: s.t.ID.Partition, Key: k, Value: value, Timestamp: time.UnixMilli(s.t.CurTs)}
	if cc, ok := s.t.Env.Collector.(ChangelogCollector); ok {
		cc.SendChangelog(s.t, r, &s.Acked)
		return
	}
	s.t.Env.Collector.Send(s.t, r)
}

// ReadOnlyStore is a state.Store whose writes fail with ErrReadOnlyStore.
type ReadOnlyStore struct{ state.Store }

func (s ReadOnlyStore) Put([]byte, []byte) error {
	return fmt.Errorf("%w: %q", ErrReadOnlyStore, s.Name())
}

func (s ReadOnlyStore) Delete([]byte) error {
	return fmt.Errorf("%w: %q", ErrReadOnlyStore, s.Name())
}

// Flush and Close belong to the store's owner.
func (s ReadOnlyStore) Flush() error { return nil }

// DeleteRange refuses: the store is read-only here.
func (s ReadOnlyStore) DeleteRange([]byte, []byte) error {
	return fmt.Errorf("%w: %q", ErrReadOnlyStore, s.Name())
}

// PutMeta refuses: the store is read-only here.
func (s ReadOnlyStore) PutMeta(string, []byte) error {
	return fmt.Errorf("%w: %q", ErrReadOnlyStore, s.Name())
}
func (s ReadOnlyStore) Close() error { return nil }

// Emit calls a flush listener as the node owner, at time ts.
func (t *Task) Emit(owner string, fn FlushListener, key, newValue, oldValue []byte, ts int64) {
	prevNode, prevTs := t.CurNode, t.CurTs
	t.CurNode, t.CurTs = owner, ts
	t.GuardRecord(func() { fn(key, newValue, oldValue, ts) })
	t.CurNode, t.CurTs = prevNode, prevTs
}

// flushCaches flushes the record caches of the task's stores, in the
// topology's store order: each dirty key goes to its store and changelog,
// and its listener forwards it Downstream. A failure Downstream goes to the
// processing error handler as a failure without a record (like one in a
// punctuator); the error it returns when it says Fail, or a store's error,
// stops the flush.
func (t *Task) FlushCaches() error {
	if !t.Started {
		return nil
	}
	t.Failure = nil
	after := func() error {
		if t.Failure != nil {
			return t.HandleFailure(nil)
		}
		return nil
	}
	for _, ts := range t.StateStores {
		if ts.Cache == nil {
			continue
		}
		if err := ts.Cache.FlushAll(after); err != nil {
			return err
		}
	}
	return nil
}

// Timestamp returns the timestamp (ms) of the record being processed, or
// the time a punctuator fires for.
func (t *Task) Timestamp() int64 { return t.CurTs }

// SetTimestamp sets the timestamp of the record being processed.
func (t *Task) SetTimestamp(ts int64) { t.CurTs = ts }

// Failed reports whether the record being processed failed at some node.
func (t *Task) Failed() bool { return t.Failure != nil }
