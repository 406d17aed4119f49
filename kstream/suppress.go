package kstream

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/google/btree"

	"github.com/streamwork-go/streamwork/kstream/internal/engine"
	"github.com/streamwork-go/streamwork/kstream/internal/wire"
	"github.com/streamwork-go/streamwork/serde"
	"github.com/streamwork-go/streamwork/state"
)

// ErrBufferFull is wrapped by the processing error of a suppression whose
// buffer is full under FailWhenFull.
var ErrBufferFull = errors.New("kstream: suppression buffer full")

// WhenFull says what a suppression does when its buffer is full.
type WhenFull int

const (
	// EmitEarlyWhenFull emits the buffered records that are due soonest,
	// before their time, until the buffer is within its limits again.
	EmitEarlyWhenFull WhenFull = iota
	// FailWhenFull fails the record that would overflow the buffer, with an
	// error wrapping ErrBufferFull, for the processing error handler.
	FailWhenFull
)

// BufferLimit bounds a suppression's buffer. The zero value is unbounded.
type BufferLimit struct {
	// MaxRecords bounds the records (keys) buffered; 0: no bound.
	MaxRecords int
	// MaxBytes bounds the bytes buffered (serialized keys and entries);
	// 0: no bound.
	MaxBytes int64
	// WhenFull is what happens when a record would exceed a bound.
	WhenFull WhenFull
}

// SuppressUntilWindowCloses holds back the results of a windowed
// aggregation until each window closes (stream time reaches its end plus
// the aggregation's grace; for sessions, passes end + gap + grace, when no
// record can change them any more, where Kafka Streams waits for end +
// grace only), then emits the window's last result, once: Kafka Streams'
// suppress(untilWindowCloses). Deletes (sessions merged
// away) are not emitted. The buffer is a changelogged store
// ("<name>-buffer", where name is the Named option or a generated one), so
// it survives restarts and moves with its task. With EmitEarlyWhenFull a
// full buffer emits results before their windows close, so they may not be
// final; FailWhenFull keeps the guarantee. EmitFinal on the aggregation
// gives the same results without a buffer. Options: Named, InMemory.
func SuppressUntilWindowCloses[K, A any](t Table[Windowed[K], A], limit BufferLimit, opts ...NodeOpt) Table[Windowed[K], A] {
	t.valid("SuppressUntilWindowCloses")
	if t.win == nil {
		t.b.errorf("%w: SuppressUntilWindowCloses needs the table of a windowed aggregation", ErrTopology)
		return t
	}
	// A window is final at end + grace; a session once stream time passes
	// end + gap + grace (see EmitFinal).
	wait := t.win.grace
	if t.win.kind == kindSession {
		wait += t.win.gap + 1
	}
	return suppress(t, "SUPPRESS", limit, opts, true, func(k Windowed[K], _ int64, _ bool, _ int64) int64 {
		if k.End > math.MaxInt64-wait {
			return math.MaxInt64
		}
		return k.End + wait
	})
}

// SuppressUntilTimeLimit rate-limits a table's updates: the first update of
// a key is held for interval of stream time, later updates of the key
// replace it, and when the interval has passed the latest is emitted — at
// most one result per key per interval: Kafka Streams'
// suppress(untilTimeLimit). Deletes are emitted as tombstones. The buffer
// is changelogged, as for SuppressUntilWindowCloses. Options: Named,
// InMemory.
func SuppressUntilTimeLimit[K, V any](t Table[K, V], interval time.Duration, limit BufferLimit, opts ...NodeOpt) Table[K, V] {
	t.valid("SuppressUntilTimeLimit")
	if interval < 0 {
		t.b.errorf("%w: SuppressUntilTimeLimit interval %v is negative", ErrTopology, interval)
	}
	iv := interval.Milliseconds()
	return suppress(t, "SUPPRESS", limit, opts, false, func(_ K, ts int64, buffered bool, prev int64) int64 {
		if buffered {
			return prev
		}
		return ts + iv
	})
}

func suppress[K, V any](t Table[K, V], op string, limit BufferLimit, opts []NodeOpt, dropDeletes bool,
	deadline func(k K, ts int64, buffered bool, prev int64) int64) Table[K, V] {
	b := t.b
	cfg := b.nodeCfg(opts)
	if limit.MaxRecords < 0 || limit.MaxBytes < 0 {
		b.errorf("%w: %s: negative buffer limit %+v", ErrTopology, op, limit)
	}
	if t.ks == nil || t.vs == nil {
		b.errorf("%w: %s needs a table with serdes (a table from TableFrom or an aggregation)", ErrTopology, op)
		return t
	}
	name := cfg.name
	if name == "" {
		name = b.generatedName(op)
	}
	store := name + "-buffer"
	b.addStore(&storeSpec{Name: store, Changelog: true, InMemory: cfg.inMemory})
	n := b.addNode(op, name, engine.KindProcessor, []*node{t.n}, func() nodeInstance {
		return &suppressNode[K, V]{storeName: store, ks: t.ks, vs: t.vs, limit: limit, dropDeletes: dropDeletes, deadline: deadline}
	})
	b.connectStore(n, store)
	return Table[K, V]{b: b, n: n, ks: t.ks, vs: t.vs, win: t.win}
}

// suppressNode buffers table updates by key in a store and emits each when
// stream time reaches its deadline. The store is the buffer's durable copy
// (changelogged); an index in memory, rebuilt from it at Init, orders the
// entries by deadline.
type suppressNode[K, V any] struct {
	name, storeName string
	t               *task
	ks              serde.Serde[K]
	vs              serde.Serde[V]
	limit           BufferLimit
	dropDeletes     bool
	deadline        func(k K, ts int64, buffered bool, prev int64) int64
	down            downstream[K, change[V]]

	st       state.Store
	observed int64
	byKey    map[string]*bufEntry
	order    *btree.BTreeG[*bufEntry]
	bytes    int64
	buf      []byte
}

// bufEntry is one buffered key.
type bufEntry struct {
	deadline int64
	key      []byte
	size     int64 // key and entry bytes
}

func bufLess(a, b *bufEntry) bool {
	if a.deadline != b.deadline {
		return a.deadline < b.deadline
	}
	return bytes.Compare(a.key, b.key) < 0
}

func (s *suppressNode[K, V]) Init(t *task, n *node, children []nodeInstance) error {
	s.t, s.name = t, n.Name
	s.observed = math.MinInt64
	s.st = t.Store(s.storeName)
	if s.st == nil {
		return fmt.Errorf("%w: store %q is not open in task %s", ErrTopology, s.storeName, t.ID)
	}
	s.byKey = make(map[string]*bufEntry)
	s.order = btree.NewG(16, bufLess)
	it := s.st.Range(nil, nil)
	for it.Next() {
		d, _, _, _, _, err := wire.DecodeSuppressed(it.Value())
		if err != nil {
			_ = it.Close()
			return fmt.Errorf("store %q: key %x: %w", s.storeName, it.Key(), err)
		}
		e := &bufEntry{deadline: d, key: bytes.Clone(it.Key()), size: int64(len(it.Key()) + len(it.Value()))}
		s.byKey[string(e.key)] = e
		s.order.ReplaceOrInsert(e)
		s.bytes += e.size
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("store %q: %w", s.storeName, err)
	}
	return s.down.Wire(t, n, children)
}

func (s *suppressNode[K, V]) Close() error { return nil }

func (s *suppressNode[K, V]) fail(err error) {
	s.t.Fail(s.name, ProcessingErrorKind, fmt.Errorf("suppression buffer %q: %w", s.storeName, err))
}

func (s *suppressNode[K, V]) Receive(r Record[K, change[V]]) {
	prev := s.t.CurNode
	s.t.CurNode = s.name
	defer func() { s.t.CurNode = prev }()
	ts := r.Timestamp.UnixMilli()
	s.observed = max(s.observed, ts)
	kb, err := s.ks.Serialize(s.storeName, r.Key)
	if err != nil {
		s.fail(fmt.Errorf("encode key: %w", err))
		return
	}
	if kb == nil {
		kb = []byte{}
	}
	old := s.byKey[string(kb)]
	var prevDeadline int64
	if old != nil {
		prevDeadline = old.deadline
	}
	d := s.deadline(r.Key, ts, old != nil, prevDeadline)
	if d <= s.observed && old == nil {
		// Due already: no need to buffer it.
		s.emit(r)
		s.evict()
		return
	}
	var vb []byte
	if r.Value.hasNew {
		if vb, err = s.vs.Serialize(s.storeName, r.Value.newV); err != nil {
			s.fail(fmt.Errorf("encode value: %w", err))
			return
		}
	}
	var hs []wire.Header
	for _, h := range r.Headers {
		hs = append(hs, wire.Header{Key: h.Key, Value: h.Value})
	}
	s.buf = wire.AppendSuppressed(s.buf[:0], d, !r.Value.hasNew, ts, hs, vb)
	size := int64(len(kb) + len(s.buf))
	grow := size
	if old != nil {
		grow -= old.size
	}
	if old == nil && s.limit.MaxRecords > 0 && len(s.byKey)+1 > s.limit.MaxRecords ||
		s.limit.MaxBytes > 0 && s.bytes+grow > s.limit.MaxBytes {
		if s.limit.WhenFull == FailWhenFull {
			s.fail(fmt.Errorf("%w: %d records, %d bytes buffered (limit %d records, %d bytes)", ErrBufferFull,
				len(s.byKey), s.bytes, s.limit.MaxRecords, s.limit.MaxBytes))
			return
		}
	}
	if err := s.st.Put(kb, s.buf); err != nil {
		s.fail(err)
		return
	}
	if old != nil {
		s.order.Delete(old)
		s.bytes -= old.size
	}
	e := &bufEntry{deadline: d, key: bytes.Clone(kb), size: size}
	s.byKey[string(e.key)] = e
	s.order.ReplaceOrInsert(e)
	s.bytes += size
	s.evict()
}

// evict emits the entries that are due, then, under EmitEarlyWhenFull, the
// soonest due until the buffer is within its limits.
func (s *suppressNode[K, V]) evict() {
	for s.t.Failure == nil {
		e, ok := s.order.Min()
		if !ok {
			return
		}
		over := s.limit.MaxRecords > 0 && len(s.byKey) > s.limit.MaxRecords || s.limit.MaxBytes > 0 && s.bytes > s.limit.MaxBytes
		if e.deadline > s.observed && !over {
			return
		}
		if e.deadline > s.observed {
			s.t.Env.Logger.Debug("kstream: suppression buffer full; emitting early", "node", s.name, "task", s.t.ID.String(),
				"records", len(s.byKey), "bytes", s.bytes)
		}
		s.emitEntry(e)
	}
}

// emitEntry forwards a buffered entry and removes it from the buffer.
func (s *suppressNode[K, V]) emitEntry(e *bufEntry) {
	v, err := s.st.Get(e.key)
	if err != nil {
		s.fail(err)
		return
	}
	s.order.Delete(e)
	delete(s.byKey, string(e.key))
	s.bytes -= e.size
	if err := s.st.Delete(e.key); err != nil {
		s.fail(err)
		return
	}
	_, tomb, ts, hs, vb, err := wire.DecodeSuppressed(v)
	if err != nil {
		s.fail(err)
		return
	}
	k, err := s.ks.Deserialize(s.storeName, e.key)
	if err != nil {
		s.fail(fmt.Errorf("decode key: %w", err))
		return
	}
	r := Record[K, change[V]]{Key: k, Timestamp: time.UnixMilli(ts)}
	for _, h := range hs {
		r.Headers = append(r.Headers, Header{Key: h.Key, Value: h.Value})
	}
	if !tomb {
		if r.Value.newV, err = s.vs.Deserialize(s.storeName, vb); err != nil {
			s.fail(fmt.Errorf("decode value: %w", err))
			return
		}
		r.Value.hasNew = true
	}
	s.emit(r)
}

func (s *suppressNode[K, V]) emit(r Record[K, change[V]]) {
	if !r.Value.hasNew && s.dropDeletes {
		return
	}
	s.down.Forward(Record[K, change[V]]{Key: r.Key, Timestamp: r.Timestamp, Headers: r.Headers,
		Value: change[V]{newV: r.Value.newV, hasNew: r.Value.hasNew}})
}
