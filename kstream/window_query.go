package kstream

import (
	"fmt"
	"time"

	"github.com/streamwork-go/streamwork/kstream/internal/wire"
	"github.com/streamwork-go/streamwork/serde"
	"github.com/streamwork-go/streamwork/state"
)

// ReadOnlyWindowStore is a read-only view of a windowed aggregation's
// store on this App instance: its windows (or sessions) per key, for
// interactive queries. QueryWindowStore makes one.
type ReadOnlyWindowStore[K, V any] interface {
	// Name returns the store's name.
	Name() string
	// Fetch returns the aggregate of k's window (for sessions: the session)
	// starting at start, and whether this instance holds it.
	Fetch(k K, start time.Time) (V, bool, error)
	// FetchRange returns k's windows (sessions) that start in [from, to],
	// ascending by start.
	FetchRange(k K, from, to time.Time) ([]KeyValue[Windowed[K], V], error)
	// All returns every window (session) this instance holds, task by
	// task, each task's in its store's order.
	All() ([]KeyValue[Windowed[K], V], error)
}

// QueryWindowStore returns a read-only typed view of the windowed
// aggregation store name (its StoreName) on this App instance. ks and vs
// are the aggregation's key and aggregate serdes. Like QueryStore, a key
// is looked up in the local task that owns it (by the key's partition);
// keys of tasks this instance does not run (or that are still restoring)
// are absent. Reads are safe concurrently with processing. An unknown
// name, or one that is not a windowed aggregation's, is an error wrapping
// ErrUnknownStore.
func QueryWindowStore[K, V any](a *App, name string, ks serde.Serde[K], vs serde.Serde[V]) (ReadOnlyWindowStore[K, V], error) {
	if a == nil {
		return nil, fmt.Errorf("%w: QueryWindowStore needs an App", ErrConfig)
	}
	if ks == nil || vs == nil {
		return nil, fmt.Errorf("%w: QueryWindowStore of %q needs a key and a value serde", ErrConfig, name)
	}
	spec, ok := a.topo.t.Stores[name]
	if !ok || spec.Retention <= 0 || a.topo.t.StoreSub[name] == nil {
		return nil, fmt.Errorf("%w: %q is not the store of a windowed aggregation", ErrUnknownStore, name)
	}
	return &windowView[K, V]{a: a, name: name, ks: ks, vs: vs}, nil
}

// windowView is what QueryWindowStore returns. The task's view of a
// windowed store is its state.WindowStore or state.SessionStore.
type windowView[K, V any] struct {
	a    *App
	name string
	ks   serde.Serde[K]
	vs   serde.Serde[V]
}

func (v *windowView[K, V]) Name() string { return v.name }

func (v *windowView[K, V]) Fetch(k K, start time.Time) (V, bool, error) {
	var zero V
	res, err := v.FetchRange(k, start, start)
	if err != nil || len(res) == 0 {
		return zero, false, err
	}
	return res[0].Value, true, nil
}

func (v *windowView[K, V]) FetchRange(k K, from, to time.Time) ([]KeyValue[Windowed[K], V], error) {
	kb, err := v.ks.Serialize(v.name, k)
	if err != nil {
		return nil, fmt.Errorf("kstream: query window store %q: encode key: %w", v.name, err)
	}
	if kb == nil {
		kb = []byte{}
	}
	var out []KeyValue[Windowed[K], V]
	err = v.a.rt.Queries().WithView(v.name, kb, func(view any) error {
		var it state.WindowIterator
		switch s := view.(type) {
		case state.WindowStore:
			it = s.FetchRange(kb, from.UnixMilli(), to.UnixMilli())
		case state.SessionStore:
			it = s.FindSessions(kb, from.UnixMilli(), to.UnixMilli())
		default:
			return nil
		}
		return v.collect(it, func(w Windowed[K]) bool {
			// Sessions found by end and start: keep those starting in range.
			return w.Start >= from.UnixMilli() && w.Start <= to.UnixMilli()
		}, &out)
	})
	return out, err
}

func (v *windowView[K, V]) All() ([]KeyValue[Windowed[K], V], error) {
	var out []KeyValue[Windowed[K], V]
	err := v.a.rt.Queries().WithViews(v.name, func(view any) error {
		switch s := view.(type) {
		case state.WindowStore:
			return v.collect(s.All(), nil, &out)
		case state.SessionStore:
			return v.collect(s.All(), nil, &out)
		}
		return nil
	})
	return out, err
}

// collect decodes the windows of it (stamped values) into out, keeping
// those keep accepts (nil: all), and closes it.
func (v *windowView[K, V]) collect(it state.WindowIterator, keep func(Windowed[K]) bool, out *[]KeyValue[Windowed[K], V]) error {
	defer it.Close()
	for it.Next() {
		k, err := v.ks.Deserialize(v.name, it.Key())
		if err != nil {
			return fmt.Errorf("kstream: query window store %q: decode key: %w", v.name, err)
		}
		w := Windowed[K]{Key: k, Start: it.Start(), End: it.End()}
		if keep != nil && !keep(w) {
			continue
		}
		_, _, ab, err := wire.DecodeStamped(it.Value())
		if err != nil {
			return fmt.Errorf("kstream: query window store %q: %w", v.name, err)
		}
		val, err := v.vs.Deserialize(v.name, ab)
		if err != nil {
			return fmt.Errorf("kstream: query window store %q: decode value: %w", v.name, err)
		}
		*out = append(*out, KeyValue[Windowed[K], V]{Key: w, Value: val})
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("kstream: query window store %q: %w", v.name, err)
	}
	return nil
}
