package kstream

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/streamwork-go/streamwork/kstream/internal/engine"
	"github.com/streamwork-go/streamwork/serde"
	"github.com/streamwork-go/streamwork/state"
)

// TableJoin joins two tables by key (Kafka Streams' KTable.join): the
// result has a row for each key present in both, joiner(key, left, right).
// An update on either side updates the result; a delete on either side of
// a key in the result deletes it (a tombstone downstream); a key never in
// the result gets no tombstone. Both tables must be materialized and
// co-partitioned. The result is not materialized. A result's timestamp is
// the timestamp of the update that caused it. Options: Named.
func TableJoin[K, VL, VR, V any](l Table[K, VL], r Table[K, VR], joiner func(k K, lv VL, rv VR) V, opts ...NodeOpt) Table[K, V] {
	return tableJoin(l, r, opts, "TABLE-JOIN", false, false, func(k K, lv *VL, rv *VR) V { return joiner(k, *lv, *rv) })
}

// TableLeftJoin keeps every row of l: joiner(key, left, right) with right
// nil when r has no row for the key; a delete of the right row updates the
// result to joiner(key, left, nil).
func TableLeftJoin[K, VL, VR, V any](l Table[K, VL], r Table[K, VR], joiner func(k K, lv VL, rv *VR) V, opts ...NodeOpt) Table[K, V] {
	return tableJoin(l, r, opts, "TABLE-LEFTJOIN", true, false, func(k K, lv *VL, rv *VR) V { return joiner(k, *lv, rv) })
}

// TableOuterJoin keeps every row of both: joiner(key, left, right) with
// the missing side nil; the result row goes when both sides are deleted.
func TableOuterJoin[K, VL, VR, V any](l Table[K, VL], r Table[K, VR], joiner func(k K, lv *VL, rv *VR) V, opts ...NodeOpt) Table[K, V] {
	return tableJoin(l, r, opts, "TABLE-OUTERJOIN", true, true, joiner)
}

func tableJoin[K, VL, VR, V any](l Table[K, VL], r Table[K, VR], opts []NodeOpt, op string, keepLeft, keepRight bool,
	joiner func(k K, lv *VL, rv *VR) V) Table[K, V] {
	l.valid(op)
	r.valid(op)
	b := l.b
	if r.b != b {
		b.errorf("%w: %s of tables from different Builders", ErrTopology, op)
		return Table[K, V]{b: b, n: l.n}
	}
	if l.versioned.HistoryRetention != 0 || r.versioned.HistoryRetention != 0 {
		b.errorf("%w: %s of a versioned table: versioned tables join streams only (JoinTable, LeftJoinTable)", ErrTopology, op)
		return Table[K, V]{b: b, n: l.n}
	}
	if l.store == "" || r.store == "" || l.win != nil || r.win != nil {
		b.errorf("%w: %s needs two materialized tables (TableFrom or aggregations)", ErrTopology, op)
		return Table[K, V]{b: b, n: l.n}
	}
	cfg := b.nodeCfg(opts)
	name := cfg.name
	if name == "" {
		name = b.generatedName(op)
	}
	stamped := func(store string) bool {
		spec := b.g.Stores[store]
		return spec != nil && spec.Timestamped
	}
	lStore, rStore, ks := l.store, r.store, l.ks
	lvs, rvs := l.vs, r.vs
	ln := b.addNode(op+"-LEFT", name+"-left", engine.KindProcessor, []*node{l.n}, func() nodeInstance {
		return &tableJoinSide[K, VL, VR, V]{otherStore: rStore, ks: ks, otherVs: rvs, stamped: stamped(rStore),
			keepThis: keepLeft, keepOther: keepRight, join: joiner}
	})
	rn := b.addNode(op+"-RIGHT", name+"-right", engine.KindProcessor, []*node{r.n}, func() nodeInstance {
		return &tableJoinSide[K, VR, VL, V]{otherStore: lStore, ks: ks, otherVs: lvs, stamped: stamped(lStore),
			keepThis: keepRight, keepOther: keepLeft, join: func(k K, this *VR, other *VL) V { return joiner(k, other, this) }}
	})
	b.connectStore(ln, rStore)
	b.connectStore(rn, lStore)
	merge := b.addNode("MERGE", name+"-merge", engine.KindProcessor, []*node{ln, rn}, func() nodeInstance {
		return &statelessNode[K, change[V], K, change[V]]{fn: func(r Record[K, change[V]], d *downstream[K, change[V]]) { d.Forward(r) }}
	})
	var vs serde.Serde[V]
	return Table[K, V]{b: b, n: merge, ks: ks, vs: vs}
}

// tableJoinSide is one side of a table-table join: an update of this side
// looks the key up in the other side's store. keepThis: this side's rows
// are in the result without the other's (a left join's left side, both
// sides of an outer join); keepOther likewise for the other side.
type tableJoinSide[K, VT, VO, V any] struct {
	name, otherStore    string
	t                   *task
	ks                  serde.Serde[K]
	otherVs             serde.Serde[VO]
	stamped             bool
	keepThis, keepOther bool
	join                func(k K, this *VT, other *VO) V
	st                  state.Store
	down                downstream[K, change[V]]
}

func (j *tableJoinSide[K, VT, VO, V]) Init(t *task, n *node, children []nodeInstance) error {
	j.t, j.name = t, n.Name
	if j.st = t.Store(j.otherStore); j.st == nil {
		return fmt.Errorf("%w: store %q is not open in task %s", ErrTopology, j.otherStore, t.ID)
	}
	return j.down.Wire(t, n, children)
}

func (j *tableJoinSide[K, VT, VO, V]) Close() error { return nil }

func (j *tableJoinSide[K, VT, VO, V]) Receive(r Record[K, change[VT]]) {
	prev := j.t.CurNode
	j.t.CurNode = j.name
	defer func() { j.t.CurNode = prev }()
	kb, err := j.ks.Serialize(j.otherStore, r.Key)
	if err != nil {
		j.t.Fail(j.name, ProcessingErrorKind, fmt.Errorf("join: encode key: %w", err))
		return
	}
	vb, err := j.st.Get(kb)
	if err != nil {
		j.t.Fail(j.name, ProcessingErrorKind, fmt.Errorf("join: store %q: %w", j.otherStore, err))
		return
	}
	var other *VO
	ts := r.Timestamp
	if vb != nil {
		if j.stamped {
			if len(vb) < 8 {
				j.t.Fail(j.name, ProcessingErrorKind, fmt.Errorf("join: store %q: timestamped value of %d bytes", j.otherStore, len(vb)))
				return
			}
			// The result's timestamp is the later of the update's and the
			// other row's (Kafka Streams' KTableKTableJoin).
			if ots := time.UnixMilli(int64(binary.BigEndian.Uint64(vb))); ots.After(ts) {
				ts = ots
			}
			vb = vb[8:]
		}
		v, err := j.otherVs.Deserialize(j.otherStore, vb)
		if err != nil {
			j.t.Fail(j.name, ProcessingErrorKind, fmt.Errorf("join: store %q: decode value: %w", j.otherStore, err))
			return
		}
		other = &v
	}
	c := r.Value
	if other == nil && (!j.keepThis || !c.hasNew && !c.hasOld) {
		return
	}
	var out change[V]
	switch {
	case c.hasNew:
		v := c.newV
		out.newV, out.hasNew = j.join(r.Key, &v, other), true
	case j.keepOther && other != nil:
		out.newV, out.hasNew = j.join(r.Key, nil, other), true
	}
	switch {
	case c.hasOld:
		v := c.oldV
		out.oldV, out.hasOld = j.join(r.Key, &v, other), true
	case j.keepOther && other != nil:
		out.oldV, out.hasOld = j.join(r.Key, nil, other), true
	}
	if !out.hasNew && !out.hasOld {
		return
	}
	j.down.Forward(Record[K, change[V]]{Key: r.Key, Value: out, Timestamp: ts, Headers: r.Headers})
}
