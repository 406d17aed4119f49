package runtime

import (
	"slices"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamwork-go/streamwork/kstream/internal/engine"
	"github.com/streamwork-go/streamwork/state"
)

// queryRegistry holds the local store instances that interactive queries
// read. Workers register a task's stores when it starts processing (after
// restore) and deregister them before closing it; they hold their own mu
// meanwhile, so the lock order is worker.mu, then queryRegistry.mu.
// Readers hold mu (read) while they call Get or open an iterator, so a
// store is never closed under a Get: closing waits for deregister.
type queryRegistry struct {
	mu         sync.RWMutex
	Partitions map[string]int32                 // store => its sub-topology's task count
	local      map[string]map[int32]state.Store // store => partition => instance
	views      map[string]map[int32]any         // store => partition => the task's view (engine.Task.Views)
	Globals    map[string]state.Store
}

// SetPartitions records the partition count of each store's tasks.
func (q *queryRegistry) SetPartitions(t *engine.Topology, subPartitions map[int]int32) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.Partitions = make(map[string]int32, len(t.StoreSub))
	for name, st := range t.StoreSub {
		q.Partitions[name] = subPartitions[st.ID]
	}
}

// SetGlobals makes the global tables' stores queryable (nil: no longer).
func (q *queryRegistry) SetGlobals(stores map[string]state.Store) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.Globals = stores
}

// Register makes t's stores queryable.
func (q *queryRegistry) Register(t *task) {
	if len(t.StateStores) == 0 {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.local == nil {
		q.local = make(map[string]map[int32]state.Store)
	}
	for _, ts := range t.StateStores {
		m := q.local[ts.Spec.Name]
		if m == nil {
			m = make(map[int32]state.Store)
			q.local[ts.Spec.Name] = m
		}
		m[t.ID.Partition] = ts.Top
	}
	if q.views == nil {
		q.views = make(map[string]map[int32]any)
	}
	for name, v := range t.Views {
		m := q.views[name]
		if m == nil {
			m = make(map[int32]any)
			q.views[name] = m
		}
		m[t.ID.Partition] = v
	}
}

// Deregister makes t's stores unqueryable; it waits for reads in progress.
func (q *queryRegistry) Deregister(t *task) {
	if len(t.StateStores) == 0 {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, ts := range t.StateStores {
		if m := q.local[ts.Spec.Name]; m != nil && m[t.ID.Partition] == ts.Top {
			delete(m, t.ID.Partition)
		}
	}
	for name, v := range t.Views {
		if m := q.views[name]; m != nil && m[t.ID.Partition] == v {
			delete(m, t.ID.Partition)
		}
	}
}

// WithView calls fn with the view of store name in the local task that
// owns key (by its partition), holding the registry's read lock so that
// the task is not closed meanwhile; nil when no local task owns it.
func (q *queryRegistry) WithView(name string, key []byte, fn func(v any) error) error {
	q.mu.RLock()
	defer q.mu.RUnlock()
	var v any
	if n := q.Partitions[name]; n > 0 {
		v = q.views[name][PartitionOf(key, n)]
	}
	return fn(v)
}

// WithViews calls fn with every local view of store name, in partition
// order, holding the read lock.
func (q *queryRegistry) WithViews(name string, fn func(v any) error) error {
	q.mu.RLock()
	defer q.mu.RUnlock()
	m := q.views[name]
	parts := make([]int32, 0, len(m))
	for p := range m {
		parts = append(parts, p)
	}
	slices.Sort(parts)
	for _, p := range parts {
		if err := fn(m[p]); err != nil {
			return err
		}
	}
	return nil
}

// keyPartitioner is kgo's default partitioner for keyed records: murmur2,
// as Kafka's Java producer.
var keyPartitioner = kgo.StickyKeyPartitioner(nil)

// PartitionOf returns the partition of a serialized key among n.
func PartitionOf(key []byte, n int32) int32 {
	if key == nil {
		key = []byte{}
	}
	return int32(keyPartitioner.ForTopic("").Partition(&kgo.Record{Key: key}, int(n)))
}

// Queries returns the registry of the App's local stores.
func (a *App) Queries() *Queries { return &a.queries }

// Queries is the read side of the registry, for interactive queries.
type Queries = queryRegistry

// Get reads key from the local instance of store name that owns it (by the
// key's partition), or from the global table store when global. It returns
// nil, nil when the key is absent or no local instance owns it.
func (q *queryRegistry) Get(name string, global bool, key []byte) ([]byte, error) {
	q.mu.RLock()
	defer q.mu.RUnlock()
	var st state.Store
	if global {
		st = q.Globals[name]
	} else if n := q.Partitions[name]; n > 0 {
		st = q.local[name][PartitionOf(key, n)]
	}
	if st == nil {
		return nil, nil
	}
	return st.Get(key)
}

// Iterators calls open on every local instance of store name (the global
// store when global), in partition order, and returns the iterators.
func (q *queryRegistry) Iterators(name string, global bool, open func(state.Store) state.Iterator) []state.Iterator {
	q.mu.RLock()
	defer q.mu.RUnlock()
	if global {
		if st := q.Globals[name]; st != nil {
			return []state.Iterator{open(st)}
		}
		return nil
	}
	m := q.local[name]
	parts := make([]int32, 0, len(m))
	for p := range m {
		parts = append(parts, p)
	}
	slices.Sort(parts)
	its := make([]state.Iterator, 0, len(parts))
	for _, p := range parts {
		its = append(its, open(m[p]))
	}
	return its
}

// Count sums ApproximateCount over the local instances of store name.
func (q *queryRegistry) Count(name string, global bool) int64 {
	q.mu.RLock()
	defer q.mu.RUnlock()
	if global {
		if st := q.Globals[name]; st != nil {
			return st.ApproximateCount()
		}
		return 0
	}
	var n int64
	for _, st := range q.local[name] {
		n += st.ApproximateCount()
	}
	return n
}
