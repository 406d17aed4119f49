package kstream

import (
	"errors"
	"fmt"
	"iter"

	"github.com/streamwork-go/streamwork/kstream/internal/runtime"
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
	if _, ok := a.topo.t.Stores[name]; !ok || a.topo.t.StoreSub[name] == nil {
		for _, g := range a.topo.t.Globals {
			if g.Store == name {
				global = true
			}
		}
		if !global {
			return nil, fmt.Errorf("%w: %q", ErrUnknownStore, name)
		}
	}
	stamped := false
	if spec := a.topo.t.Stores[name]; spec != nil {
		stamped = spec.Timestamped
		if spec.Versioned {
			return nil, fmt.Errorf("%w: %q is a versioned table's store, which key-value queries do not read", ErrUnknownStore, name)
		}
	}
	return &storeView[K, V]{q: a.rt.Queries(), name: name, global: global, stamped: stamped, ks: ks, vs: vs}, nil
}

// storeView is what QueryStore returns.
type storeView[K, V any] struct {
	q      *runtime.Queries
	name   string
	global bool
	// stamped: the store's values start with their timestamp
	// (engine.StoreSpec.Timestamped), which the view strips.
	stamped bool
	ks      serde.Serde[K]
	vs      serde.Serde[V]
}

func (v *storeView[K, V]) Name() string { return v.name }

// value decodes a stored value.
func (v *storeView[K, V]) value(b []byte) (V, error) {
	if v.stamped {
		if len(b) < 8 {
			var zero V
			return zero, fmt.Errorf("timestamped value of %d bytes, want at least 8", len(b))
		}
		b = b[8:]
	}
	return v.vs.Deserialize(v.name, b)
}

func (v *storeView[K, V]) Get(k K) (V, bool, error) {
	var zero V
	kb, err := v.ks.Serialize(v.name, k)
	if err != nil {
		return zero, false, fmt.Errorf("kstream: query store %q: encode key: %w", v.name, err)
	}
	vb, err := v.q.Get(v.name, v.global, kb)
	if err != nil || vb == nil {
		return zero, false, err
	}
	val, err := v.value(vb)
	if err != nil {
		return zero, false, fmt.Errorf("kstream: query store %q: decode value: %w", v.name, err)
	}
	return val, true, nil
}

// iterators opens open on every local instance, in partition order.
func (v *storeView[K, V]) iterators(open func(state.Store) state.Iterator) []state.Iterator {
	return v.q.Iterators(v.name, v.global, open)
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
				val, err := v.value(it.Value())
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
func (v *storeView[K, V]) ApproximateCount() int64 { return v.q.Count(v.name, v.global) }

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
