package kstream

import (
	"bytes"
	"fmt"

	"github.com/streamwork-go/streamwork/kstream/internal/engine"
	"github.com/streamwork-go/streamwork/kstream/internal/wire"
	"github.com/streamwork-go/streamwork/serde"
	"github.com/streamwork-go/streamwork/state"
)

// ForeignKeyJoin joins each row of table l with the row of table r whose
// key fk picks from the left row's key and value (Kafka Streams'
// KTable.join(other, foreignKeyExtractor, joiner), KIP-213 and KIP-1104):
// the result is keyed by l's key, joiner(key, left, right), for left rows
// whose foreign key is in r. The tables need not be co-partitioned: each
// left row subscribes to its foreign key through the internal topic
// "<application id>-<name>-subscription-repartition" (partitioned like r),
// and r's side answers, for the subscription and again on every change of
// the right row, through "<name>-response-repartition" (partitioned like l).
// A response to an older left value (the row changed meanwhile) is dropped.
// A left row that moves to another foreign key, or a right row deleted,
// deletes the result row (a tombstone); a deleted left row too. Both tables
// must be materialized, and their topics partitioned by key with Kafka's
// default partitioner (murmur2 of the key, as the Java and kgo producers
// do), as the internal topics are. The subscriptions live in a
// changelogged store ("<name>-subscription-store"). Options: Named.
func ForeignKeyJoin[K, VL, KO, VR, V any](l Table[K, VL], r Table[KO, VR], fk func(k K, lv VL) KO,
	joiner func(k K, lv VL, rv VR) V, opts ...NodeOpt) Table[K, V] {
	return fkJoin(l, r, fk, opts, "FK-JOIN", false, func(k K, lv VL, rv *VR) (V, bool) {
		if rv == nil {
			var zero V
			return zero, false
		}
		return joiner(k, lv, *rv), true
	})
}

// ForeignKeyLeftJoin is ForeignKeyJoin that keeps every left row:
// joiner(key, left, nil) while its foreign key has no right row.
func ForeignKeyLeftJoin[K, VL, KO, VR, V any](l Table[K, VL], r Table[KO, VR], fk func(k K, lv VL) KO,
	joiner func(k K, lv VL, rv *VR) V, opts ...NodeOpt) Table[K, V] {
	return fkJoin(l, r, fk, opts, "FK-LEFTJOIN", true, func(k K, lv VL, rv *VR) (V, bool) { return joiner(k, lv, rv), true })
}

func fkJoin[K, VL, KO, VR, V any](l Table[K, VL], r Table[KO, VR], fk func(K, VL) KO, opts []NodeOpt, op string,
	leftJoin bool, join func(k K, lv VL, rv *VR) (V, bool)) Table[K, V] {
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
	if l.store == "" || r.store == "" || l.win != nil || r.win != nil || l.ks == nil || l.vs == nil || r.ks == nil || r.vs == nil {
		b.errorf("%w: %s needs two materialized tables with serdes (TableFrom or aggregations)", ErrTopology, op)
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
	lks, lvs, rks, rvs := l.ks, l.vs, r.ks, r.vs
	lStore, rStore, subStore := l.store, r.store, name+"-subscription-store"
	b.addStore(&storeSpec{Name: subStore, Changelog: true, InMemory: cfg.inMemory})

	// Left side: each change of a left row (un)subscribes by foreign key.
	subs := b.addNode(op+"-SUBSCRIBE", name+"-subscribe", engine.KindProcessor, []*node{l.n}, func() nodeInstance {
		return &fkSubscribeNode[K, VL, KO]{fk: fk, lks: lks, lvs: lvs, rks: rks, leftJoin: leftJoin}
	})
	subStream := repartition(Stream[KO, []byte]{b: b, n: subs, keyChanged: true}, name+"-subscription", rks, serde.Bytes, 0, false)

	// Right side: the subscriptions, and every change of a right row, answer.
	answer := b.addNode(op+"-SUBSCRIPTIONS", name+"-subscriptions", engine.KindProcessor, []*node{subStream.n}, func() nodeInstance {
		return &fkSubscriptionNode[K, KO, VR]{subStore: subStore, rStore: rStore, stamped: stamped(rStore), lks: lks, rks: rks}
	})
	b.connectStore(answer, subStore)
	b.connectStore(answer, rStore)
	changes := b.addNode(op+"-RIGHT-CHANGES", name+"-right-changes", engine.KindProcessor, []*node{r.n}, func() nodeInstance {
		return &fkRightChangeNode[K, KO, VR]{subStore: subStore, lks: lks, rks: rks, rvs: rvs}
	})
	b.connectStore(changes, subStore)
	responses := b.addNode("MERGE", name+"-responses", engine.KindProcessor, []*node{answer, changes}, func() nodeInstance {
		return &statelessNode[K, []byte, K, []byte]{fn: func(rec Record[K, []byte], d *downstream[K, []byte]) { d.Forward(rec) }}
	})
	respStream := repartition(Stream[K, []byte]{b: b, n: responses, keyChanged: true}, name+"-response", lks, serde.Bytes, 0, false)

	// Left side again: keep the responses to the current left values.
	resolve := b.addNode(op+"-RESOLVE", name+"-resolve", engine.KindProcessor, []*node{respStream.n}, func() nodeInstance {
		return &fkResolveNode[K, VL, VR, V]{lStore: lStore, stamped: stamped(lStore), lks: lks, lvs: lvs, rvs: rvs, join: join}
	})
	b.connectStore(resolve, lStore)
	return Table[K, V]{b: b, n: resolve, ks: lks}
}

// fkSubscribeNode turns a left row's change into subscription messages,
// keyed by foreign key.
type fkSubscribeNode[K, VL, KO any] struct {
	name string
	t    *task
	fk   func(K, VL) KO
	lks  serde.Serde[K]
	lvs  serde.Serde[VL]
	rks  serde.Serde[KO]
	// leftJoin: every subscription asks for a response; else a new left
	// row asks only if its right row exists.
	leftJoin bool
	down     downstream[KO, []byte]
}

func (s *fkSubscribeNode[K, VL, KO]) Init(t *task, n *node, children []nodeInstance) error {
	s.t, s.name = t, n.Name
	return s.down.Wire(t, n, children)
}

func (s *fkSubscribeNode[K, VL, KO]) Close() error { return nil }

func (s *fkSubscribeNode[K, VL, KO]) fail(err error) {
	s.t.Fail(s.name, ProcessingErrorKind, fmt.Errorf("foreign-key join: %w", err))
}

func (s *fkSubscribeNode[K, VL, KO]) Receive(r Record[K, change[VL]]) {
	prev := s.t.CurNode
	s.t.CurNode = s.name
	defer func() { s.t.CurNode = prev }()
	kb, err := s.lks.Serialize(s.name, r.Key)
	if err != nil {
		s.fail(fmt.Errorf("encode key: %w", err))
		return
	}
	c := r.Value
	var oldFK, newFK KO
	var oldFKB, newFKB []byte
	if c.hasOld {
		oldFK = s.fk(r.Key, c.oldV)
		if oldFKB, err = s.rks.Serialize(s.name, oldFK); err != nil {
			s.fail(fmt.Errorf("encode foreign key: %w", err))
			return
		}
	}
	send := func(key KO, instr byte, hash uint64) {
		s.down.Forward(Record[KO, []byte]{Key: key, Value: wire.AppendSubscription(nil, instr, hash, kb),
			Timestamp: r.Timestamp, Headers: r.Headers})
	}
	if !c.hasNew {
		if c.hasOld {
			send(oldFK, wire.UnsubscribeAndRespond, 0)
		}
		return
	}
	newFK = s.fk(r.Key, c.newV)
	if newFKB, err = s.rks.Serialize(s.name, newFK); err != nil {
		s.fail(fmt.Errorf("encode foreign key: %w", err))
		return
	}
	vb, err := s.lvs.Serialize(s.name, c.newV)
	if err != nil {
		s.fail(fmt.Errorf("encode value: %w", err))
		return
	}
	if c.hasOld && !bytes.Equal(oldFKB, newFKB) {
		send(oldFK, wire.Unsubscribe, 0)
		if s.t.Failure != nil {
			return
		}
	}
	instr := wire.SubscribeAndRespond
	if !s.leftJoin && !c.hasOld {
		instr = wire.SubscribeRespondIfFound
	}
	send(newFK, instr, wire.ValueHash(vb))
}

// fkSubscriptionNode keeps the subscriptions by foreign key and answers
// those that ask, with the right row's value.
type fkSubscriptionNode[K, KO, VR any] struct {
	name, subStore, rStore string
	stamped                bool
	t                      *task
	lks                    serde.Serde[K]
	rks                    serde.Serde[KO]
	subs, right            state.Store
	down                   downstream[K, []byte]
}

func (s *fkSubscriptionNode[K, KO, VR]) Init(t *task, n *node, children []nodeInstance) error {
	s.t, s.name = t, n.Name
	if s.subs = t.Store(s.subStore); s.subs == nil {
		return fmt.Errorf("%w: store %q is not open in task %s", ErrTopology, s.subStore, t.ID)
	}
	if s.right = t.Store(s.rStore); s.right == nil {
		return fmt.Errorf("%w: store %q is not open in task %s", ErrTopology, s.rStore, t.ID)
	}
	return s.down.Wire(t, n, children)
}

func (s *fkSubscriptionNode[K, KO, VR]) Close() error { return nil }

func (s *fkSubscriptionNode[K, KO, VR]) fail(err error) {
	s.t.Fail(s.name, ProcessingErrorKind, fmt.Errorf("foreign-key join: %w", err))
}

func (s *fkSubscriptionNode[K, KO, VR]) Receive(r Record[KO, []byte]) {
	prev := s.t.CurNode
	s.t.CurNode = s.name
	defer func() { s.t.CurNode = prev }()
	instr, hash, lkb, err := wire.DecodeSubscription(r.Value)
	if err != nil {
		s.fail(err)
		return
	}
	fkb, err := s.rks.Serialize(s.name, r.Key)
	if err != nil {
		s.fail(fmt.Errorf("encode foreign key: %w", err))
		return
	}
	if fkb == nil {
		fkb = []byte{}
	}
	key := wire.SubscriptionKey(fkb, lkb)
	var resp []byte
	switch instr {
	case wire.SubscribeAndRespond, wire.SubscribeRespondIfFound:
		if err := s.subs.Put(key, binaryHash(hash)); err != nil {
			s.fail(err)
			return
		}
		rv, err := s.right.Get(fkb)
		if err != nil {
			s.fail(err)
			return
		}
		if rv != nil && s.stamped {
			if len(rv) < 8 {
				s.fail(fmt.Errorf("store %q: timestamped value of %d bytes", s.rStore, len(rv)))
				return
			}
			rv = rv[8:]
		}
		if rv == nil && instr == wire.SubscribeRespondIfFound {
			return
		}
		resp = wire.AppendResponse(nil, hash, rv != nil, rv)
	case wire.Unsubscribe, wire.UnsubscribeAndRespond:
		if err := s.subs.Delete(key); err != nil {
			s.fail(err)
			return
		}
		if instr == wire.Unsubscribe {
			return
		}
		resp = wire.AppendResponse(nil, 0, false, nil)
	}
	lk, err := s.lks.Deserialize(s.name, lkb)
	if err != nil {
		s.fail(fmt.Errorf("decode left key: %w", err))
		return
	}
	s.down.Forward(Record[K, []byte]{Key: lk, Value: resp, Timestamp: r.Timestamp, Headers: r.Headers})
}

func binaryHash(h uint64) []byte {
	return []byte{byte(h >> 56), byte(h >> 48), byte(h >> 40), byte(h >> 32), byte(h >> 24), byte(h >> 16), byte(h >> 8), byte(h)}
}

func hashOf(b []byte) uint64 {
	var h uint64
	for _, c := range b {
		h = h<<8 | uint64(c)
	}
	return h
}

// fkRightChangeNode answers every subscription of a right row that
// changed, with its new value (or "not found" when deleted).
type fkRightChangeNode[K, KO, VR any] struct {
	name, subStore string
	t              *task
	lks            serde.Serde[K]
	rks            serde.Serde[KO]
	rvs            serde.Serde[VR]
	subs           state.Store
	down           downstream[K, []byte]
}

func (s *fkRightChangeNode[K, KO, VR]) Init(t *task, n *node, children []nodeInstance) error {
	s.t, s.name = t, n.Name
	if s.subs = t.Store(s.subStore); s.subs == nil {
		return fmt.Errorf("%w: store %q is not open in task %s", ErrTopology, s.subStore, t.ID)
	}
	return s.down.Wire(t, n, children)
}

func (s *fkRightChangeNode[K, KO, VR]) Close() error { return nil }

func (s *fkRightChangeNode[K, KO, VR]) Receive(r Record[KO, change[VR]]) {
	prev := s.t.CurNode
	s.t.CurNode = s.name
	defer func() { s.t.CurNode = prev }()
	fail := func(err error) { s.t.Fail(s.name, ProcessingErrorKind, fmt.Errorf("foreign-key join: %w", err)) }
	fkb, err := s.rks.Serialize(s.name, r.Key)
	if err != nil {
		fail(fmt.Errorf("encode foreign key: %w", err))
		return
	}
	if fkb == nil {
		fkb = []byte{}
	}
	var vb []byte
	if r.Value.hasNew {
		if vb, err = s.rvs.Serialize(s.name, r.Value.newV); err != nil {
			fail(fmt.Errorf("encode value: %w", err))
			return
		}
	}
	type sub struct {
		lk   []byte
		hash uint64
	}
	var found []sub
	it := s.subs.Prefix(wire.SubscriptionPrefix(fkb))
	for it.Next() {
		lk, err := wire.LeftKeyOf(it.Key())
		if err != nil {
			it.Close()
			fail(err)
			return
		}
		found = append(found, sub{lk: bytes.Clone(lk), hash: hashOf(it.Value())})
	}
	if err := it.Close(); err != nil {
		fail(err)
		return
	}
	for _, f := range found {
		lk, err := s.lks.Deserialize(s.name, f.lk)
		if err != nil {
			fail(fmt.Errorf("decode left key: %w", err))
			return
		}
		s.down.Forward(Record[K, []byte]{Key: lk, Value: wire.AppendResponse(nil, f.hash, r.Value.hasNew, vb),
			Timestamp: r.Timestamp, Headers: r.Headers})
		if s.t.Failure != nil {
			return
		}
	}
}

// fkResolveNode keeps the responses to the left rows' current values and
// forwards the joined rows.
type fkResolveNode[K, VL, VR, V any] struct {
	name, lStore string
	stamped      bool
	t            *task
	lks          serde.Serde[K]
	lvs          serde.Serde[VL]
	rvs          serde.Serde[VR]
	join         func(k K, lv VL, rv *VR) (V, bool)
	left         state.Store
	down         downstream[K, change[V]]
}

func (s *fkResolveNode[K, VL, VR, V]) Init(t *task, n *node, children []nodeInstance) error {
	s.t, s.name = t, n.Name
	if s.left = t.Store(s.lStore); s.left == nil {
		return fmt.Errorf("%w: store %q is not open in task %s", ErrTopology, s.lStore, t.ID)
	}
	return s.down.Wire(t, n, children)
}

func (s *fkResolveNode[K, VL, VR, V]) Close() error { return nil }

func (s *fkResolveNode[K, VL, VR, V]) Receive(r Record[K, []byte]) {
	prev := s.t.CurNode
	s.t.CurNode = s.name
	defer func() { s.t.CurNode = prev }()
	fail := func(err error) { s.t.Fail(s.name, ProcessingErrorKind, fmt.Errorf("foreign-key join: %w", err)) }
	hash, found, rvb, err := wire.DecodeResponse(r.Value)
	if err != nil {
		fail(err)
		return
	}
	kb, err := s.lks.Serialize(s.name, r.Key)
	if err != nil {
		fail(fmt.Errorf("encode key: %w", err))
		return
	}
	lvb, err := s.left.Get(kb)
	if err != nil {
		fail(err)
		return
	}
	if lvb != nil && s.stamped {
		if len(lvb) < 8 {
			fail(fmt.Errorf("store %q: timestamped value of %d bytes", s.lStore, len(lvb)))
			return
		}
		lvb = lvb[8:]
	}
	if wire.ValueHash(lvb) != hash {
		// An answer to an older value of the left row: a newer one is on
		// its way.
		return
	}
	out := Record[K, change[V]]{Key: r.Key, Timestamp: r.Timestamp, Headers: r.Headers}
	if lvb != nil {
		lv, err := s.lvs.Deserialize(s.lStore, lvb)
		if err != nil {
			fail(fmt.Errorf("decode left value: %w", err))
			return
		}
		var rv *VR
		if found {
			v, err := s.rvs.Deserialize(s.name, rvb)
			if err != nil {
				fail(fmt.Errorf("decode right value: %w", err))
				return
			}
			rv = &v
		}
		out.Value.newV, out.Value.hasNew = s.join(r.Key, lv, rv)
	}
	s.down.Forward(out)
}
