package runtime

import (
	"errors"
	"maps"
	"slices"
	"sync"
	"sync/atomic"

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
//
// Standby tasks' changelogged engine stores are registered apart
// (standby), as stale sources: ordinary reads never see them; only
// GetStandby reads them, with the standby's lag.
type queryRegistry struct {
	mu         sync.RWMutex
	Partitions map[string]int32                 // store => its sub-topology's task count
	local      map[string]map[int32]state.Store // store => partition => instance
	views      map[string]map[int32]any         // store => partition => the task's view (engine.Task.Views)
	standby    map[string]map[int32]standbyStore
	Globals    map[string]state.Store
}

// standbyStore is the engine store of a standby task, with the standby's
// lag as its worker last measured it.
type standbyStore struct {
	st  state.Store
	lag *atomic.Int64
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

// RegisterStandby makes standby t's changelogged engine stores readable
// by GetStandby; lag is the standby's lag in changelog records, which its
// worker keeps up to date. The worker registers a standby once it knows
// where each store reads its changelog from (after any wipe of the store)
// and deregisters it before closing it.
func (q *queryRegistry) RegisterStandby(t *task, lag *atomic.Int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, ts := range t.StateStores {
		if ts.Logged == nil {
			continue // not restored: a standby holds nothing of it
		}
		if q.standby == nil {
			q.standby = make(map[string]map[int32]standbyStore)
		}
		m := q.standby[ts.Spec.Name]
		if m == nil {
			m = make(map[int32]standbyStore)
			q.standby[ts.Spec.Name] = m
		}
		m[t.ID.Partition] = standbyStore{st: ts.Engine, lag: lag}
	}
}

// DeregisterStandby makes standby t's stores unreadable; it waits for
// reads in progress.
func (q *queryRegistry) DeregisterStandby(t *task) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, ts := range t.StateStores {
		if m := q.standby[ts.Spec.Name]; m != nil && m[t.ID.Partition].st == ts.Engine {
			delete(m, t.ID.Partition)
		}
	}
}

// GetStandby reads key from the engine store of a standby task of this
// instance that holds partition p of store name, and returns the
// standby's lag (changelog records behind the end of its changelogs as of
// its latest fetch) at the time of the read. held is false, and nothing
// read, when no standby of this instance holds p now. The read lock is
// held across the read, so the standby cannot close (nor become active)
// under it.
func (q *queryRegistry) GetStandby(name string, p int32, key []byte) (val []byte, lag int64, held bool, err error) {
	q.mu.RLock()
	defer q.mu.RUnlock()
	sb, ok := q.standby[name][p]
	if !ok {
		return nil, 0, false, nil
	}
	lag = sb.lag.Load()
	val, err = sb.st.Get(key)
	return val, lag, true, err
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

// StorePartitions returns the number of tasks (partitions) of store name,
// 0 for a store no task holds.
func (q *queryRegistry) StorePartitions(name string) int32 {
	q.mu.RLock()
	defer q.mu.RUnlock()
	return q.Partitions[name]
}

// GetOwned reads key from the local instance of store name that owns it
// (partition p). owned is false when no task of this instance holds p
// now: then the key was not read, which is not the same as absent. The
// read lock is held across the read, so the task cannot close under it.
func (q *queryRegistry) GetOwned(name string, p int32, key []byte) (val []byte, owned bool, err error) {
	q.mu.RLock()
	defer q.mu.RUnlock()
	st := q.local[name][p]
	if st == nil {
		return nil, false, nil
	}
	val, err = st.Get(key)
	return val, true, err
}

// ViewOwned calls fn with the local view of store name in partition p
// (engine.Task.Views) under the read lock; owned is false, and fn not
// called, when no task of this instance holds p now.
func (q *queryRegistry) ViewOwned(name string, p int32, fn func(v any) error) (owned bool, err error) {
	q.mu.RLock()
	defer q.mu.RUnlock()
	v := q.views[name][p]
	if v == nil {
		return false, nil
	}
	return true, fn(v)
}

// LocalPart is one partition of a store read by ScanOwned: its entries,
// in the store's order, copied.
type LocalPart struct {
	Partition int32
	Keys      [][]byte
	Values    [][]byte
}

// ScanOwned reads, with open, every local instance of store name, and
// returns the partitions whose scan completed while their task stayed
// here: an iterator is opened under the read lock, read without it (so a
// long scan does not hold up the worker), and the partition is kept only
// if its task still holds the same store instance afterwards and the scan
// did not end with state.ErrClosed. Other errors are returned.
func (q *queryRegistry) ScanOwned(name string, open func(state.Store) state.Iterator) ([]LocalPart, error) {
	type opened struct {
		p  int32
		st state.Store
		it state.Iterator
	}
	q.mu.RLock()
	m := q.local[name]
	its := make([]opened, 0, len(m))
	for _, p := range slices.Sorted(maps.Keys(m)) {
		its = append(its, opened{p: p, st: m[p], it: open(m[p])})
	}
	q.mu.RUnlock()
	parts := make([]LocalPart, 0, len(its))
	stores := make([]state.Store, 0, len(its))
	var firstErr error
	for _, o := range its {
		lp := LocalPart{Partition: o.p}
		for o.it.Next() {
			lp.Keys = append(lp.Keys, slices.Clone(o.it.Key()))
			lp.Values = append(lp.Values, slices.Clone(o.it.Value()))
		}
		err := o.it.Err()
		_ = o.it.Close()
		switch {
		case errors.Is(err, state.ErrClosed):
		case err != nil:
			if firstErr == nil {
				firstErr = err
			}
		default:
			parts = append(parts, lp)
			stores = append(stores, o.st)
		}
	}
	if firstErr != nil {
		return nil, firstErr
	}
	// The ownership check after the read: a task closed (and maybe
	// reopened empty) meanwhile does not count.
	q.mu.RLock()
	defer q.mu.RUnlock()
	kept := parts[:0]
	for i, lp := range parts {
		if q.local[name][lp.Partition] == stores[i] {
			kept = append(kept, lp)
		}
	}
	return kept, nil
}
