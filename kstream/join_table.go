package kstream

import (
	"fmt"

	"github.com/streamwork-go/streamwork/kstream/internal/engine"
	"github.com/streamwork-go/streamwork/serde"
	"github.com/streamwork-go/streamwork/state"
)

// JoinTable joins each record of s with the value of its key in table t
// (Kafka Streams' KStream.join(KTable)): only stream records trigger
// output, joiner(key, value, table value), with the stream record's
// timestamp; a record whose key is not in the table gives nothing; table
// updates change the table only. The stream and the table must be
// co-partitioned (checked when the App starts); a task processes both
// inputs in timestamp order, so a record meets the table as of its time
// when both inputs hold data (see MaxTaskIdle). t must be materialized (a
// table from TableFrom or an aggregation). Tombstones on the stream are
// dropped. With a versioned table (Versioned), a record meets its key's
// value as of the record's timestamp. A stream whose key changed upstream is
// repartitioned first, with
// serdes.Key and serdes.Left (serdes.Right is the table's value serde).
// Options: Named.
func JoinTable[K, V, VT, VR any](s Stream[K, V], t Table[K, VT], joiner func(k K, v V, tv VT) VR,
	serdes StreamJoined[K, V, VT], opts ...NodeOpt) Stream[K, VR] {
	return streamTableJoin(s, t, serdes, opts, "JOIN-TABLE", false, func(k K, v V, tv *VT) (VR, bool) {
		if tv == nil {
			var zero VR
			return zero, false
		}
		return joiner(k, v, *tv), true
	})
}

// LeftJoinTable is JoinTable that also emits the records whose key is not
// in the table, as joiner(key, value, nil).
func LeftJoinTable[K, V, VT, VR any](s Stream[K, V], t Table[K, VT], joiner func(k K, v V, tv *VT) VR,
	serdes StreamJoined[K, V, VT], opts ...NodeOpt) Stream[K, VR] {
	return streamTableJoin(s, t, serdes, opts, "LEFTJOIN-TABLE", true, func(k K, v V, tv *VT) (VR, bool) {
		return joiner(k, v, tv), true
	})
}

func streamTableJoin[K, V, VT, VR any](s Stream[K, V], t Table[K, VT], serdes StreamJoined[K, V, VT], opts []NodeOpt, op string,
	left bool, join func(k K, v V, tv *VT) (VR, bool)) Stream[K, VR] {
	s.valid(op)
	t.valid(op)
	b := s.b
	if t.b != b {
		b.errorf("%w: %s of a stream and a table from different Builders", ErrTopology, op)
		return Stream[K, VR]{b: b, n: s.n}
	}
	if t.store == "" || t.win != nil {
		b.errorf("%w: %s needs a materialized table (TableFrom or an aggregation)", ErrTopology, op)
		return Stream[K, VR]{b: b, n: s.n}
	}
	cfg := b.nodeCfg(opts)
	name := cfg.name
	if name == "" {
		name = b.generatedName(op)
	}
	if s.keyChanged {
		if serdes.Key == nil || serdes.Left == nil {
			b.errorf("%w: %s after a key change needs the stream's key and value serdes (StreamJoined) to repartition", ErrTopology, op)
			return Stream[K, VR]{b: b, n: s.n}
		}
		s = repartition(s, name, serdes.Key, serdes.Left, 0, false)
	}
	store, ks, vs, vcfg := t.store, t.ks, t.vs, t.versioned
	stamped := false
	if spec := b.g.Stores[store]; spec != nil {
		stamped = spec.Timestamped
	}
	n := b.addNode(op, name, engine.KindProcessor, []*node{s.n}, func() nodeInstance {
		return &tableJoinNode[K, V, VT, VR]{storeName: store, ks: ks, vs: vs, stamped: stamped, join: join, versioned: vcfg}
	})
	b.connectStore(n, store)
	return Stream[K, VR]{b: b, n: n}
}

// tableJoinNode looks each stream record's key up in the table's store.
type tableJoinNode[K, V, VT, VR any] struct {
	name, storeName string
	t               *task
	ks              serde.Serde[K]
	vs              serde.Serde[VT]
	stamped         bool
	join            func(k K, v V, tv *VT) (VR, bool)
	st              state.Store
	// versioned (HistoryRetention set): the table is versioned, looked up
	// as of each stream record's timestamp.
	versioned state.VersionedStoreConfig
	vst       state.VersionedStore
	down      downstream[K, VR]
}

func (j *tableJoinNode[K, V, VT, VR]) Init(t *task, n *node, children []nodeInstance) error {
	j.t, j.name = t, n.Name
	if j.versioned.HistoryRetention != 0 {
		var err error
		if j.vst, err = openVersioned(t, j.storeName, j.versioned); err != nil {
			return err
		}
	} else if j.st = t.Store(j.storeName); j.st == nil {
		return fmt.Errorf("%w: store %q is not open in task %s", ErrTopology, j.storeName, t.ID)
	}
	return j.down.Wire(t, n, children)
}

func (j *tableJoinNode[K, V, VT, VR]) Close() error { return nil }

func (j *tableJoinNode[K, V, VT, VR]) Receive(r Record[K, V]) {
	prev := j.t.CurNode
	j.t.CurNode = j.name
	defer func() { j.t.CurNode = prev }()
	if r.Tombstone {
		j.t.Env.Counters.Dropped.Add(1)
		j.t.Env.Logger.Debug("kstream: join dropped a record with a null value", "node", j.name, "task", j.t.ID.String())
		return
	}
	kb, err := j.ks.Serialize(j.storeName, r.Key)
	if err != nil {
		j.t.Fail(j.name, ProcessingErrorKind, fmt.Errorf("join: encode key: %w", err))
		return
	}
	var vb []byte
	if j.vst != nil {
		// The table as of the stream record's time.
		vb, _, _, _, err = j.vst.GetAsOf(kb, r.Timestamp.UnixMilli())
	} else {
		vb, err = j.st.Get(kb)
	}
	if err != nil {
		j.t.Fail(j.name, ProcessingErrorKind, fmt.Errorf("join: store %q: %w", j.storeName, err))
		return
	}
	var tv *VT
	if vb != nil {
		if j.stamped {
			if len(vb) < 8 {
				j.t.Fail(j.name, ProcessingErrorKind, fmt.Errorf("join: store %q: timestamped value of %d bytes", j.storeName, len(vb)))
				return
			}
			vb = vb[8:]
		}
		v, err := j.vs.Deserialize(j.storeName, vb)
		if err != nil {
			j.t.Fail(j.name, ProcessingErrorKind, fmt.Errorf("join: store %q: decode value: %w", j.storeName, err))
			return
		}
		tv = &v
	}
	out, ok := j.join(r.Key, r.Value, tv)
	if !ok {
		return
	}
	j.down.Forward(Record[K, VR]{Key: r.Key, Value: out, Timestamp: r.Timestamp, Headers: r.Headers})
}
