package kstream

import (
	"fmt"

	"github.com/streamwork-go/streamwork/serde"
)

// GlobalTable is a table that every App instance holds whole: all
// partitions of its topic, in one store per instance, kept up to date by the
// instance's global updater. Any task can look records up in it, so a
// lookup needs no co-partitioning (JoinGlobal, LeftJoinGlobal). An App does
// not process records until its global tables have caught up with their
// topics.
type GlobalTable[K, V any] struct {
	b    *Builder
	spec *globalSpec
	ks   serde.Serde[K]
	vs   serde.Serde[V]
}

// StoreName returns the name of the table's store.
func (g GlobalTable[K, V]) StoreName() string { return g.spec.Store }

// GlobalTableFrom reads topic as a global table: each record upserts its
// key, a tombstone deletes it. Options: StoreName (default
// "<topic>-global-store"), InMemory.
func GlobalTableFrom[K, V any](b *Builder, topic string, ks serde.Serde[K], vs serde.Serde[V], opts ...NodeOpt) GlobalTable[K, V] {
	cfg := b.nodeCfg(opts)
	if topic == "" {
		b.errorf("%w: empty global table topic name", ErrTopology)
	}
	if ks == nil || vs == nil {
		b.errorf("%w: global table of %q needs a key and a value serde", ErrTopology, topic)
	}
	name := cfg.storeName
	if name == "" {
		name = topic + "-global-store"
		b.g.GeneratedNames = append(b.g.GeneratedNames, name)
	}
	for _, g := range b.g.Globals {
		if g.Store == name || g.Topic == topic {
			b.errorf("%w: global table store %q / topic %q", ErrDuplicateName, name, topic)
		}
	}
	if _, dup := b.g.Stores[name]; dup {
		b.errorf("%w: store %q", ErrDuplicateName, name)
	}
	spec := &globalSpec{Store: name, Topic: topic, InMemory: cfg.inMemory}
	b.g.Globals = append(b.g.Globals, spec)
	return GlobalTable[K, V]{b: b, spec: spec, ks: ks, vs: vs}
}

// JoinGlobal looks each record of s up in gt by the key keyFn computes and,
// when the table has that key, forwards joiner(value, table value) with the
// record's key (an inner join; records without a match are dropped).
// Tombstones are dropped.
func JoinGlobal[K, V, GK, GV, VR any](s Stream[K, V], gt GlobalTable[GK, GV], keyFn func(K, V) GK, joiner func(V, GV) VR, opts ...NodeOpt) Stream[K, VR] {
	return lookupGlobal(s, gt, "JOIN-GLOBAL", keyFn, func(v V, gv GV, found bool) (VR, bool) {
		var zero VR
		if !found {
			return zero, false
		}
		return joiner(v, gv), true
	}, opts)
}

// LeftJoinGlobal is JoinGlobal that also forwards records without a match:
// joiner gets found == false and the zero table value.
func LeftJoinGlobal[K, V, GK, GV, VR any](s Stream[K, V], gt GlobalTable[GK, GV], keyFn func(K, V) GK, joiner func(v V, gv GV, found bool) VR, opts ...NodeOpt) Stream[K, VR] {
	return lookupGlobal(s, gt, "LEFTJOIN-GLOBAL", keyFn, func(v V, gv GV, found bool) (VR, bool) {
		return joiner(v, gv, found), true
	}, opts)
}

func lookupGlobal[K, V, GK, GV, VR any](s Stream[K, V], gt GlobalTable[GK, GV], op string, keyFn func(K, V) GK,
	join func(V, GV, bool) (VR, bool), opts []NodeOpt) Stream[K, VR] {
	s.valid(op)
	if gt.b != s.b || gt.spec == nil {
		s.b.errorf("%w: %s with a global table of another Builder", ErrTopology, op)
		return Stream[K, VR]{b: s.b, n: s.n}
	}
	spec, gks, gvs := gt.spec, gt.ks, gt.vs
	return stateless(s, op, opts, func(r Record[K, V], d *downstream[K, VR]) {
		if r.Tombstone {
			return
		}
		t := d.Task()
		st := t.Env.Globals[spec.Store]
		if st == nil {
			t.Fail(t.CurNode, ProcessingErrorKind, fmt.Errorf("%w: global store %q is not open", ErrTopology, spec.Store))
			return
		}
		kb, err := gks.Serialize(spec.Topic, keyFn(r.Key, r.Value))
		if err != nil {
			t.Fail(t.CurNode, ProcessingErrorKind, fmt.Errorf("global table %q: serialize key: %w", spec.Store, err))
			return
		}
		vb, err := st.Get(kb)
		if err != nil {
			t.Fail(t.CurNode, ProcessingErrorKind, fmt.Errorf("global table %q: get: %w", spec.Store, err))
			return
		}
		var gv GV
		if vb != nil {
			if gv, err = gvs.Deserialize(spec.Topic, vb); err != nil {
				t.Fail(t.CurNode, ProcessingErrorKind, fmt.Errorf("global table %q: decode value: %w", spec.Store, err))
				return
			}
		}
		if out, ok := join(r.Value, gv, vb != nil); ok {
			d.Forward(WithValue(r, out))
		}
	})
}
