package kstream

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"time"

	"github.com/streamwork-go/streamwork/kstream/internal/engine"
	"github.com/streamwork-go/streamwork/kstream/internal/wire"
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
// Options: Named, JoinGrace.
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
	grace, bufName := cfg.joinGrace.Milliseconds(), ""
	if cfg.joinGrace != 0 {
		switch {
		case vcfg.HistoryRetention == 0:
			b.errorf("%w: %s: JoinGrace needs a versioned table (Versioned)", ErrTopology, op)
		case cfg.joinGrace < 0 || cfg.joinGrace > vcfg.HistoryRetention:
			b.errorf("%w: %s: JoinGrace(%v) must be positive and at most the table's history %v", ErrTopology, op, cfg.joinGrace, vcfg.HistoryRetention)
		case serdes.Key == nil || serdes.Left == nil:
			b.errorf("%w: %s: JoinGrace needs the stream's serdes (StreamJoined Key and Left) for its buffer", ErrTopology, op)
		}
		bufName = name + "-buffer"
		b.addStore(&storeSpec{Name: bufName, Changelog: true, InMemory: cfg.inMemory})
	}
	sks, svs := serdes.Key, serdes.Left
	n := b.addNode(op, name, engine.KindProcessor, []*node{s.n}, func() nodeInstance {
		return &tableJoinNode[K, V, VT, VR]{storeName: store, ks: ks, vs: vs, stamped: stamped, join: join, versioned: vcfg,
			grace: grace, bufName: bufName, sks: sks, svs: svs}
	})
	b.connectStore(n, store)
	if bufName != "" {
		b.connectStore(n, bufName)
	}
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
	// grace (JoinGrace): stream records wait in the buffer store bufName
	// until stream time passes their timestamp + grace, then join in
	// timestamp order (KIP-923).
	grace    int64
	bufName  string
	buf      state.Store
	sks      serde.Serde[K]
	svs      serde.Serde[V]
	observed int64
	seq      uint64
	down     downstream[K, VR]
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
	if j.bufName != "" {
		if j.buf = t.Store(j.bufName); j.buf == nil {
			return fmt.Errorf("%w: store %q is not open in task %s", ErrTopology, j.bufName, t.ID)
		}
		// Resume stream time and the sequence from what waits.
		j.observed = math.MinInt64
		it := j.buf.All()
		for it.Next() {
			if k := it.Key(); len(k) == 16 {
				j.seq = max(j.seq, binary.BigEndian.Uint64(k[8:])+1)
			}
		}
		if err := it.Close(); err != nil {
			return fmt.Errorf("store %q: %w", j.bufName, err)
		}
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
	if j.buf == nil {
		j.joinOne(r)
		return
	}
	j.buffer(r)
}

// joinOne joins one stream record with the table.
func (j *tableJoinNode[K, V, VT, VR]) joinOne(r Record[K, V]) {
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

// buffer holds r until stream time passes its timestamp + grace, then
// joins every record whose time has come, in timestamp order. A record
// already past that point joins at once.
func (j *tableJoinNode[K, V, VT, VR]) buffer(r Record[K, V]) {
	ts := r.Timestamp.UnixMilli()
	j.observed = max(j.observed, ts)
	fail := func(err error) {
		j.t.Fail(j.name, ProcessingErrorKind, fmt.Errorf("join buffer %q: %w", j.bufName, err))
	}
	if ts+j.grace >= j.observed {
		kb, err := j.sks.Serialize(j.bufName, r.Key)
		if err != nil {
			fail(fmt.Errorf("encode key: %w", err))
			return
		}
		vb, err := j.svs.Serialize(j.bufName, r.Value)
		if err != nil {
			fail(fmt.Errorf("encode value: %w", err))
			return
		}
		payload := binary.AppendUvarint(nil, uint64(len(kb)))
		payload = append(append(payload, kb...), vb...)
		var hs []wire.Header
		for _, h := range r.Headers {
			hs = append(hs, wire.Header{Key: h.Key, Value: h.Value})
		}
		key := binary.BigEndian.AppendUint64(nil, uint64(ts)^(1<<63))
		key = binary.BigEndian.AppendUint64(key, j.seq)
		j.seq++
		if err := j.buf.Put(key, wire.AppendStamped(nil, ts, hs, payload)); err != nil {
			fail(err)
			return
		}
	} else {
		j.joinOne(r)
		if j.t.Failure != nil {
			return
		}
	}
	// Release what is due, oldest first.
	type due struct {
		key []byte
		rec Record[K, V]
	}
	var ready []due
	it := j.buf.All()
	for it.Next() {
		k := it.Key()
		if len(k) != 16 || int64(binary.BigEndian.Uint64(k)^(1<<63))+j.grace >= j.observed {
			break
		}
		ets, hs, payload, err := wire.DecodeStamped(it.Value())
		if err == nil {
			n, u := binary.Uvarint(payload)
			if u <= 0 || n > uint64(len(payload)-u) {
				err = fmt.Errorf("malformed entry")
			} else {
				var rec Record[K, V]
				if rec.Key, err = j.sks.Deserialize(j.bufName, payload[u:u+int(n)]); err == nil {
					rec.Value, err = j.svs.Deserialize(j.bufName, payload[u+int(n):])
				}
				rec.Timestamp = time.UnixMilli(ets)
				for _, h := range hs {
					rec.Headers = append(rec.Headers, Header{Key: h.Key, Value: bytes.Clone(h.Value)})
				}
				ready = append(ready, due{key: bytes.Clone(k), rec: rec})
			}
		}
		if err != nil {
			it.Close()
			fail(err)
			return
		}
	}
	if err := it.Close(); err != nil {
		fail(err)
		return
	}
	for _, d := range ready {
		if err := j.buf.Delete(d.key); err != nil {
			fail(err)
			return
		}
		j.joinOne(d.rec)
		if j.t.Failure != nil {
			return
		}
	}
}
