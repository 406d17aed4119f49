package kstream

import (
	"errors"
	"fmt"
	"iter"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamwork-go/streamwork/serde"
	"github.com/streamwork-go/streamwork/state"
)

// QueryStore returns a read-only typed view of the instances of store name
// that this App instance holds: its local state, for interactive queries.
// ks and vs must encode keys and values as the operator that writes the
// store does (for DSL stores: the serdes given to the aggregation or
// table).
//
// Get finds the task that owns the key the way Kafka partitions it — murmur2
// of the serialized key modulo the partition count, Kafka's (and kgo's)
// default key partitioner — and looks the key up there; a key of a task
// this instance does not hold (not assigned here, or still restoring) is
// absent. Range and All scan every local task's instance in task order, one
// after the other: keys are ordered within each task's part, not across
// parts. A global table's store is whole on every instance.
//
// The view is safe for concurrent use, with itself and with processing,
// and follows rebalances: each call sees the tasks that run here at that
// moment. A scan interrupted by a rebalance that closes a task ends with
// an error wrapping ErrStoreNotAvailable (RangeErr, AllErr; Range and All
// panic with it). Reads see the store's record cache, so they may be ahead
// of what was forwarded downstream. An unknown name is an error wrapping
// ErrUnknownStore.
func QueryStore[K, V any](a *App, name string, ks serde.Serde[K], vs serde.Serde[V]) (state.ReadOnlyKeyValue[K, V], error) {
	if a == nil {
		return nil, fmt.Errorf("%w: QueryStore needs an App", ErrConfig)
	}
	if ks == nil || vs == nil {
		return nil, fmt.Errorf("%w: QueryStore of %q needs a key and a value serde", ErrConfig, name)
	}
	global := false
	if _, ok := a.topo.stores[name]; !ok || a.topo.storeSub[name] == nil {
		for _, g := range a.topo.globals {
			if g.store == name {
				global = true
			}
		}
		if !global {
			return nil, fmt.Errorf("%w: %q", ErrUnknownStore, name)
		}
	}
	return &storeView[K, V]{q: &a.queries, name: name, global: global, ks: ks, vs: vs}, nil
}

// queryRegistry holds the local store instances that interactive queries
// read. Workers register a task's stores when it starts processing (after
// restore) and deregister them before closing it; they hold their own mu
// meanwhile, so the lock order is worker.mu, then queryRegistry.mu.
// Readers hold mu (read) while they call Get or open an iterator, so a
// store is never closed under a Get: closing waits for deregister.
type queryRegistry struct {
	mu         sync.RWMutex
	partitions map[string]int32                 // store => its sub-topology's task count
	local      map[string]map[int32]state.Store // store => partition => instance
	globals    map[string]state.Store
}

// setPartitions records the partition count of each store's tasks.
func (q *queryRegistry) setPartitions(t *Topology, subPartitions map[int]int32) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.partitions = make(map[string]int32, len(t.storeSub))
	for name, st := range t.storeSub {
		q.partitions[name] = subPartitions[st.id]
	}
}

// setGlobals makes the global tables' stores queryable (nil: no longer).
func (q *queryRegistry) setGlobals(stores map[string]state.Store) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.globals = stores
}

// register makes t's stores queryable.
func (q *queryRegistry) register(t *task) {
	if len(t.stateStores) == 0 {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.local == nil {
		q.local = make(map[string]map[int32]state.Store)
	}
	for _, ts := range t.stateStores {
		m := q.local[ts.spec.name]
		if m == nil {
			m = make(map[int32]state.Store)
			q.local[ts.spec.name] = m
		}
		m[t.id.Partition] = ts.top
	}
}

// deregister makes t's stores unqueryable; it waits for reads in progress.
func (q *queryRegistry) deregister(t *task) {
	if len(t.stateStores) == 0 {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, ts := range t.stateStores {
		if m := q.local[ts.spec.name]; m != nil && m[t.id.Partition] == ts.top {
			delete(m, t.id.Partition)
		}
	}
}

// keyPartitioner is kgo's default partitioner for keyed records: murmur2,
// as Kafka's Java producer.
var keyPartitioner = kgo.StickyKeyPartitioner(nil)

// partitionOf returns the partition of a serialized key among n.
func partitionOf(key []byte, n int32) int32 {
	if key == nil {
		key = []byte{}
	}
	return int32(keyPartitioner.ForTopic("").Partition(&kgo.Record{Key: key}, int(n)))
}

// storeView is what QueryStore returns.
type storeView[K, V any] struct {
	q      *queryRegistry
	name   string
	global bool
	ks     serde.Serde[K]
	vs     serde.Serde[V]
}

func (v *storeView[K, V]) Name() string { return v.name }

func (v *storeView[K, V]) Get(k K) (V, bool, error) {
	var zero V
	kb, err := v.ks.Serialize(v.name, k)
	if err != nil {
		return zero, false, fmt.Errorf("kstream: query store %q: encode key: %w", v.name, err)
	}
	v.q.mu.RLock()
	var st state.Store
	if v.global {
		st = v.q.globals[v.name]
	} else if n := v.q.partitions[v.name]; n > 0 {
		st = v.q.local[v.name][partitionOf(kb, n)]
	}
	var vb []byte
	if st != nil {
		vb, err = st.Get(kb)
	}
	v.q.mu.RUnlock()
	if err != nil || vb == nil {
		return zero, false, err
	}
	val, err := v.vs.Deserialize(v.name, vb)
	if err != nil {
		return zero, false, fmt.Errorf("kstream: query store %q: decode value: %w", v.name, err)
	}
	return val, true, nil
}

// iterators opens open on every local instance, in partition order.
func (v *storeView[K, V]) iterators(open func(state.Store) state.Iterator) []state.Iterator {
	v.q.mu.RLock()
	defer v.q.mu.RUnlock()
	if v.global {
		if st := v.q.globals[v.name]; st != nil {
			return []state.Iterator{open(st)}
		}
		return nil
	}
	m := v.q.local[v.name]
	n := v.q.partitions[v.name]
	its := make([]state.Iterator, 0, len(m))
	for p := range n {
		if st := m[p]; st != nil {
			its = append(its, open(st))
		}
	}
	return its
}

func (v *storeView[K, V]) scan(open func(state.Store) state.Iterator) (iter.Seq2[K, V], func() error) {
	var scanErr error
	seq := func(yield func(K, V) bool) {
		scanErr = nil
		its := v.iterators(open)
		defer func() {
			for _, it := range its {
				_ = it.Close()
			}
		}()
		for _, it := range its {
			for it.Next() {
				k, err := v.ks.Deserialize(v.name, it.Key())
				if err != nil {
					scanErr = fmt.Errorf("kstream: query store %q: decode key: %w", v.name, err)
					return
				}
				val, err := v.vs.Deserialize(v.name, it.Value())
				if err != nil {
					scanErr = fmt.Errorf("kstream: query store %q: decode value: %w", v.name, err)
					return
				}
				if !yield(k, val) {
					return
				}
			}
			if err := it.Err(); err != nil {
				if errors.Is(err, state.ErrClosed) {
					err = fmt.Errorf("%w: store %q: %w", ErrStoreNotAvailable, v.name, err)
				}
				scanErr = err
				return
			}
		}
	}
	return seq, func() error { return scanErr }
}

func (v *storeView[K, V]) RangeErr(from, to K) (iter.Seq2[K, V], func() error) {
	fb, err := v.ks.Serialize(v.name, from)
	if err == nil {
		var tb []byte
		if tb, err = v.ks.Serialize(v.name, to); err == nil {
			return v.scan(func(st state.Store) state.Iterator { return st.Range(fb, tb) })
		}
	}
	err = fmt.Errorf("kstream: query store %q: encode key: %w", v.name, err)
	return func(func(K, V) bool) {}, func() error { return err }
}

func (v *storeView[K, V]) Range(from, to K) iter.Seq2[K, V] { return mustSeq(v.RangeErr(from, to)) }

func (v *storeView[K, V]) AllErr() (iter.Seq2[K, V], func() error) {
	return v.scan(func(st state.Store) state.Iterator { return st.All() })
}

func (v *storeView[K, V]) All() iter.Seq2[K, V] { return mustSeq(v.AllErr()) }

// ApproximateCount sums the local instances' estimates.
func (v *storeView[K, V]) ApproximateCount() int64 {
	v.q.mu.RLock()
	defer v.q.mu.RUnlock()
	if v.global {
		if st := v.q.globals[v.name]; st != nil {
			return st.ApproximateCount()
		}
		return 0
	}
	var n int64
	for _, st := range v.q.local[v.name] {
		n += st.ApproximateCount()
	}
	return n
}

// mustSeq panics with the scan's error after a failed pass, as
// state.KeyValue's Range and All do.
func mustSeq[K, V any](seq iter.Seq2[K, V], errf func() error) iter.Seq2[K, V] {
	return func(yield func(K, V) bool) {
		seq(yield)
		if err := errf(); err != nil {
			panic(err)
		}
	}
}
