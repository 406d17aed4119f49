package kstream

import (
	"fmt"
	"time"

	"github.com/streamwork-go/streamwork/kstream/internal/engine"
	"github.com/streamwork-go/streamwork/serde"
	"github.com/streamwork-go/streamwork/state"
)

// Versioned makes a table (TableFrom, ToTable) keep each key's history for
// history of stream time, in a versioned store (Kafka Streams' versioned
// key-value stores, KIPs 889/914): a stream joined with it (JoinTable,
// LeftJoinTable) meets each key's value as of the stream record's
// timestamp, not the latest. An update older than the key's latest value
// (out of order) changes the history only and is not forwarded; one older
// than stream time minus history is dropped (counted in
// Metrics.LateRecords). A versioned table can be joined by streams only.
// history must be positive (at least 1ms): Build fails otherwise.
func Versioned(history time.Duration) NodeOpt {
	return nodeOptFunc(func(c *nodeCfg) { c.versioned, c.versionSet = history, true })
}

func materializeVersioned[K, V any](s Stream[K, V], op string, cfg nodeCfg, ks serde.Serde[K], vs serde.Serde[V]) Table[K, V] {
	b := s.b
	vcfg := state.VersionedStoreConfig{HistoryRetention: cfg.versioned}
	if err := vcfg.Validate(); err != nil {
		b.errorf("%w: %s: Versioned(%v): %v", ErrTopology, op, cfg.versioned, err)
	}
	store := cfg.storeName
	if store == "" {
		store = b.generatedName(op + "-STATE-STORE")
	}
	// No record cache: a versioned store writes several keys per update,
	// and the node forwards its changes itself.
	b.addStore(&storeSpec{Name: store, Changelog: true, InMemory: cfg.inMemory, Versioned: true})
	n := b.addNode(op, "", engine.KindProcessor, []*node{s.n}, func() nodeInstance {
		return &versionedSourceNode[K, V]{storeName: store, ks: ks, vs: vs, cfg: vcfg}
	})
	b.connectStore(n, store)
	return Table[K, V]{b: b, n: n, store: store, ks: ks, vs: vs, versioned: vcfg}
}

// openVersioned returns the task's versioned store over the store name, one
// instance per task (the layer keeps stream time in memory).
func openVersioned(t *task, name string, cfg state.VersionedStoreConfig) (state.VersionedStore, error) {
	var err error
	v := t.Shared("versioned-store:"+name, func() any {
		st := t.Store(name)
		if st == nil {
			err = fmt.Errorf("%w: store %q is not open in task %s", ErrTopology, name, t.ID)
			return nil
		}
		var vs state.VersionedStore
		vs, err = state.NewVersionedStore(st, cfg)
		return vs
	})
	if err != nil {
		return nil, err
	}
	return v.(state.VersionedStore), nil
}

// versionedSourceNode writes each record into the versioned store as of
// its timestamp and forwards the change of the key's latest value.
type versionedSourceNode[K, V any] struct {
	name, storeName string
	t               *task
	ks              serde.Serde[K]
	vs              serde.Serde[V]
	cfg             state.VersionedStoreConfig
	st              state.VersionedStore
	down            downstream[K, change[V]]
}

func (s *versionedSourceNode[K, V]) Init(t *task, n *node, children []nodeInstance) error {
	s.t, s.name = t, n.Name
	var err error
	if s.st, err = openVersioned(t, s.storeName, s.cfg); err != nil {
		return err
	}
	t.SetView(s.storeName, s.st)
	return s.down.Wire(t, n, children)
}

func (s *versionedSourceNode[K, V]) Close() error { return nil }

func (s *versionedSourceNode[K, V]) Receive(r Record[K, V]) {
	prev := s.t.CurNode
	s.t.CurNode = s.name
	defer func() { s.t.CurNode = prev }()
	fail := func(err error) { s.t.Fail(s.name, ProcessingErrorKind, fmt.Errorf("store %q: %w", s.storeName, err)) }
	kb, err := s.ks.Serialize(s.storeName, r.Key)
	if err != nil {
		fail(fmt.Errorf("encode key: %w", err))
		return
	}
	if kb == nil {
		kb = []byte{}
	}
	oldB, _, hadOld, err := s.st.Get(kb)
	if err != nil {
		fail(err)
		return
	}
	var vb []byte
	if !r.Tombstone {
		if vb, err = s.vs.Serialize(s.storeName, r.Value); err != nil {
			fail(fmt.Errorf("encode value: %w", err))
			return
		}
		if vb == nil {
			vb = []byte{}
		}
	}
	validTo, dropped, err := s.st.Put(kb, vb, r.Timestamp.UnixMilli())
	if err != nil {
		fail(err)
		return
	}
	if dropped {
		s.t.Env.Counters.Late.Add(1)
		s.t.Env.Logger.Debug("kstream: versioned table dropped an update older than its history", "node", s.name,
			"task", s.t.ID.String(), "timestamp", r.Timestamp.UnixMilli())
		return
	}
	if validTo != state.LatestValidTo {
		return // out of order: the history changed, the latest value did not
	}
	out := Record[K, change[V]]{Key: r.Key, Timestamp: r.Timestamp, Headers: r.Headers}
	if hadOld && oldB != nil {
		if out.Value.oldV, err = s.vs.Deserialize(s.storeName, oldB); err != nil {
			fail(fmt.Errorf("decode value: %w", err))
			return
		}
		out.Value.hasOld = true
	}
	if !r.Tombstone {
		out.Value.newV, out.Value.hasNew = r.Value, true
	} else if !out.Value.hasOld {
		return // a delete of a key that was not there
	}
	s.down.Forward(out)
}

// JoinGrace makes a stream-table join with a versioned table hold each
// stream record until stream time (the largest stream record timestamp the
// join has seen) passes its timestamp + grace, then join it, in timestamp
// order, as of its timestamp (Kafka Streams' KIP-923): table updates that
// arrive after an out-of-order stream record, but are older than it, still
// count. The records wait in a changelogged store ("<name>-buffer"); a
// record later than the grace joins at once. grace may be at most the
// table's history. Only JoinTable and LeftJoinTable read this option.
func JoinGrace(grace time.Duration) NodeOpt {
	return nodeOptFunc(func(c *nodeCfg) { c.joinGrace = grace })
}

// ReadOnlyVersionedTable is a read-only view of a versioned table's store
// on this App instance, for interactive queries as of a time.
type ReadOnlyVersionedTable[K, V any] interface {
	// Name returns the store's name.
	Name() string
	// Get returns k's latest value, its timestamp, and whether it exists.
	Get(k K) (V, time.Time, bool, error)
	// GetAsOf returns the value k had at asOf, the time it took it, and
	// whether it had one (none once asOf is older than the history).
	GetAsOf(k K, asOf time.Time) (V, time.Time, bool, error)
}

// QueryVersionedTable returns a read-only view of the versioned table
// store name (its StoreName) on this App instance. As with QueryStore, a
// key is read in the local task that owns it; a key of a task this
// instance does not run is absent. An unknown name, or one that is not a
// versioned table's, is an error wrapping ErrUnknownStore.
func QueryVersionedTable[K, V any](a *App, name string, ks serde.Serde[K], vs serde.Serde[V]) (ReadOnlyVersionedTable[K, V], error) {
	if a == nil {
		return nil, fmt.Errorf("%w: QueryVersionedTable needs an App", ErrConfig)
	}
	if spec := a.topo.t.Stores[name]; spec == nil || !spec.Versioned {
		return nil, fmt.Errorf("%w: %q is not a versioned table's store", ErrUnknownStore, name)
	}
	return &versionedView[K, V]{a: a, name: name, ks: ks, vs: vs}, nil
}

type versionedView[K, V any] struct {
	a    *App
	name string
	ks   serde.Serde[K]
	vs   serde.Serde[V]
}

func (v *versionedView[K, V]) Name() string { return v.name }

func (v *versionedView[K, V]) Get(k K) (V, time.Time, bool, error) {
	return v.read(k, func(st state.VersionedStore, kb []byte) ([]byte, int64, bool, error) { return st.Get(kb) })
}

func (v *versionedView[K, V]) GetAsOf(k K, asOf time.Time) (V, time.Time, bool, error) {
	return v.read(k, func(st state.VersionedStore, kb []byte) ([]byte, int64, bool, error) {
		val, from, _, ok, err := st.GetAsOf(kb, asOf.UnixMilli())
		return val, from, ok, err
	})
}

func (v *versionedView[K, V]) read(k K, get func(state.VersionedStore, []byte) ([]byte, int64, bool, error)) (V, time.Time, bool, error) {
	var zero V
	kb, err := v.ks.Serialize(v.name, k)
	if err != nil {
		return zero, time.Time{}, false, fmt.Errorf("kstream: query versioned table %q: encode key: %w", v.name, err)
	}
	if kb == nil {
		kb = []byte{}
	}
	var (
		val  []byte
		from int64
		ok   bool
	)
	err = v.a.rt.Queries().WithView(v.name, kb, func(view any) error {
		st, is := view.(state.VersionedStore)
		if !is {
			return nil
		}
		var err error
		val, from, ok, err = get(st, kb)
		return err
	})
	if err != nil || !ok || val == nil {
		return zero, time.Time{}, false, err
	}
	out, err := v.vs.Deserialize(v.name, val)
	if err != nil {
		return zero, time.Time{}, false, fmt.Errorf("kstream: query versioned table %q: decode value: %w", v.name, err)
	}
	return out, time.UnixMilli(from), true, nil
}
