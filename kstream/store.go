package kstream

import (
	"fmt"

	"github.com/streamwork-go/streamwork/state"
	"github.com/streamwork-go/streamwork/state/memory"
)

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

// addStore registers a store; a second store of the same name is an error.
func (b *Builder) addStore(spec *storeSpec) {
	if b.stores == nil {
		b.stores = make(map[string]*storeSpec)
	}
	if _, dup := b.stores[spec.name]; dup {
		b.errorf("%w: store %q", ErrDuplicateName, spec.name)
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

// openStores opens the stores the task's sub-topology uses.
//
// The engine is in memory, without changelog, restore or cache, until the
// stateful runtime replaces it.
func (t *task) openStores() error {
	for _, n := range t.sub.nodes {
		for _, name := range n.stores {
			if _, ok := t.stores[name]; ok {
				continue
			}
			if t.stores == nil {
				t.stores = make(map[string]state.Store)
			}
			t.stores[name] = memory.New(name)
		}
	}
	return nil
}

// store returns the task's instance of the named store, or nil.
func (t *task) store(name string) state.Store { return t.stores[name] }

// flushListener receives what a record cache flushes for one key: the new
// value (nil: deleted), the value the store held before the cached updates
// (nil: absent), and the timestamp of the last update.
type flushListener func(key, newValue, oldValue []byte, ts int64)

// onFlush registers fn as the flush listener of a cached store and reports
// whether a cache is in front of it. When it returns false, the node writes
// through and must forward its own changes.
func (t *task) onFlush(name string, fn flushListener) bool { return false }

// closeStores closes every store of the task.
func (t *task) closeStores() error {
	var errs []error
	for name, s := range t.stores {
		if err := s.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close store %q: %w", name, err))
		}
	}
	return joinErrors(errs)
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
