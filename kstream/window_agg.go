package kstream

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamwork-go/streamwork/kstream/internal/engine"
	"github.com/streamwork-go/streamwork/kstream/internal/wire"
	"github.com/streamwork-go/streamwork/serde"
	"github.com/streamwork-go/streamwork/state"
)

// Headers of a record written to a late-records topic (LateRecordsTo), on
// top of the dead-letter source headers.
const (
	HeaderLateReason      = "streamwork.late.reason"
	HeaderLateWindowStart = "streamwork.late.window.start"
	HeaderLateWindowEnd   = "streamwork.late.window.end"
	HeaderLateStreamTime  = "streamwork.late.stream.time"
)

// WindowedCount counts the records of each key per window. Tombstones are
// dropped. The result is a table of (key, window) → count; see
// WindowedAggregate for the options and what it emits.
func WindowedCount[K, V any](w WindowedStream[K, V], opts ...NodeOpt) Table[Windowed[K], int64] {
	return windowedAgg(w, "COUNT", opts, func() int64 { return 0 },
		func(_ K, _ V, agg int64) int64 { return agg + 1 },
		func(_ K, a, b int64) int64 { return a + b }, serde.Int64)
}

// WindowedReduce combines the values of each key per window with fn, the
// first value of a window being its starting aggregate. See
// WindowedAggregate.
func WindowedReduce[K, V any](w WindowedStream[K, V], fn func(agg, v V) V, opts ...NodeOpt) Table[Windowed[K], V] {
	return windowedAgg(w, "REDUCE", opts, func() V { var z V; return z }, nil,
		func(_ K, a, b V) V { return fn(a, b) }, w.g.vs, reducerOpt[K, V]{fn: fn})
}

// WindowedAggregate folds the values of each key per window into an
// aggregate of type A: init makes the starting aggregate of a window, agg
// adds one value to it, as encodes it in the store. For session windows use
// SessionAggregate, which also needs a merger.
//
// The result is a table of (key, window) → aggregate. Its record
// timestamps are the largest timestamp of the records in the window (for
// session windows, the session end). By default every update of a window
// is emitted; with EmitFinal, one result per window once it closes.
// Records whose window has closed are late: dropped, counted in
// Metrics.LateRecords and, with LateRecordsTo, written to a topic.
// Tombstones are dropped (Metrics.Dropped).
//
// The windows are kept in a window store (StoreName, InMemory), changelogged
// to a compact,delete topic whose retention is the store's (window size plus
// grace; for sliding windows twice the difference plus grace; for session
// windows gap plus grace) plus one day. With the default emission, updates
// go through the record cache (CacheMaxBytes) as other aggregations' do, so
// downstream sees a window's latest value at each commit; count windows
// forward every update.
func WindowedAggregate[K, V, A any](w WindowedStream[K, V], init func() A, agg func(k K, v V, agg A) A, as serde.Serde[A], opts ...NodeOpt) Table[Windowed[K], A] {
	if w.w != nil && w.w.kind() == kindSession {
		w.g.s.b.errorf("%w: WindowedAggregate over %s needs a session merger: use SessionAggregate", ErrTopology, w.w)
	}
	return windowedAgg(w, "AGGREGATE", opts, init, agg, nil, as)
}

// SessionAggregate is WindowedAggregate for session windows: merge combines
// the aggregates of two sessions that a record bridges into one.
func SessionAggregate[K, V, A any](w WindowedStream[K, V], init func() A, agg func(k K, v V, agg A) A, merge func(k K, a, b A) A, as serde.Serde[A], opts ...NodeOpt) Table[Windowed[K], A] {
	if w.w != nil && w.w.kind() != kindSession {
		w.g.s.b.errorf("%w: SessionAggregate over %s: use WindowedAggregate", ErrTopology, w.w)
	}
	return windowedAgg(w, "AGGREGATE", opts, init, agg, merge, as)
}

// reducerOpt carries WindowedReduce's function to windowedAgg.
type reducerOpt[K, V any] struct{ fn func(agg, v V) V }

// windowAggFns are the functions of one windowed aggregation.
type windowAggFns[K, V, A any] struct {
	init  func() A
	agg   func(K, V, A) A
	merge func(K, A, A) A
	// reduce (WindowedReduce): the first value of a window is its
	// aggregate; later ones are combined with reduce. A is then V.
	reduce func(agg, v V) V
}

// apply returns the aggregate of a window after v, given its aggregate
// before (fresh: the window had none).
func (f *windowAggFns[K, V, A]) apply(k K, v V, old A, fresh bool) A {
	if f.reduce != nil {
		if fresh {
			return any(v).(A)
		}
		return any(f.reduce(any(old).(V), v)).(A)
	}
	return f.agg(k, v, old)
}

// mergeInto returns acc merged with other, a session's aggregate; fresh:
// acc is the starting aggregate (for a reduction, there is none yet).
func (f *windowAggFns[K, V, A]) mergeInto(k K, acc A, fresh bool, other A) A {
	if f.reduce != nil && fresh {
		return other
	}
	return f.merge(k, acc, other)
}

func windowedAgg[K, V, A any](w WindowedStream[K, V], op string, opts []NodeOpt, init func() A, agg func(K, V, A) A,
	merge func(K, A, A) A, as serde.Serde[A], extra ...reducerOpt[K, V]) Table[Windowed[K], A] {
	g := w.g
	b := g.s.b
	if b == nil {
		panic("kstream: windowed aggregation of a zero WindowedStream")
	}
	cfg := b.nodeCfg(opts)
	fns := &windowAggFns[K, V, A]{init: init, agg: agg, merge: merge}
	if len(extra) > 0 {
		fns.reduce = extra[0].fn
	}
	if w.w == nil {
		return Table[Windowed[K], A]{b: b, n: g.s.n}
	}
	type validator interface{ validate() error }
	if err := w.w.(validator).validate(); err != nil {
		b.errorf("%w: %s: %v", ErrTopology, op, err)
	}
	store := cfg.storeName
	if store == "" {
		store = b.generatedName(op + "-STATE-STORE")
	}
	// Updates go through the record cache, as for other aggregations;
	// with EmitFinal nothing forwards updates, so no cache.
	spec := &storeSpec{Name: store, Changelog: true, InMemory: cfg.inMemory, Cached: !cfg.emitFinal}
	var ks serde.Serde[Windowed[K]]
	base := winBase[K, A]{storeName: store, ks: g.ks, as: as, emitFinal: cfg.emitFinal, lateTopic: cfg.lateTopic,
		idle: cfg.idleClose.Milliseconds()}
	if cfg.idleClose < 0 || (cfg.idleClose > 0 && w.w.kind() == kindCount) {
		b.errorf("%w: %s over %s: CloseWindowsWhenIdle(%v) needs time, sliding or session windows and a positive duration",
			ErrTopology, op, w.w, cfg.idleClose)
	}
	var inst func() nodeInstance
	switch wk := w.w.(type) {
	case TimeWindows:
		spec.Retention = ms(wk.size + wk.grace)
		ks = TimeWindowedSerde(g.ks, ms(wk.size))
		base.grace = wk.grace
		inst = func() nodeInstance {
			return &timeWindowNode[K, V, A]{winBase: base, w: wk, fns: fns}
		}
	case SlidingWindows:
		spec.Retention = ms(2*wk.diff + wk.grace)
		ks = TimeWindowedSerde(g.ks, ms(wk.diff))
		base.grace = wk.grace
		inst = func() nodeInstance {
			return &slidingWindowNode[K, V, A]{winBase: base, w: wk, fns: fns}
		}
	case SessionWindows:
		spec.Retention = ms(wk.retention(cfg.emitFinal))
		ks = SessionWindowedSerde(g.ks)
		base.grace = wk.grace
		if fns.merge == nil {
			return Table[Windowed[K], A]{b: b, n: g.s.n}
		}
		inst = func() nodeInstance {
			return &sessionWindowNode[K, V, A]{winBase: base, w: wk, fns: fns}
		}
	case CountWindows:
		spec.Cached = false // one entry per key holds all its windows
		ks = TimeWindowedSerde(g.ks, ms(wk.size))
		if cfg.lateTopic != "" {
			b.errorf("%w: %s over %s: count windows have no late records (LateRecordsTo)", ErrTopology, op, wk)
		}
		inst = func() nodeInstance {
			return &countWindowNode[K, V, A]{winBase: base, w: wk, fns: fns}
		}
	default:
		panic(fmt.Sprintf("kstream: unknown windows %T", w.w))
	}
	b.addStore(spec)
	if cfg.emitFinal && w.w.kind() != kindCount {
		b.addStore(&storeSpec{Name: store + "-emit", Changelog: true, InMemory: cfg.inMemory})
	}
	in := g.input(store)
	n := b.addNode(op, cfg.name, engine.KindProcessor, []*node{in.n}, inst)
	b.connectStore(n, store)
	if cfg.emitFinal && w.w.kind() != kindCount {
		b.connectStore(n, store+"-emit")
	}
	// A windowed table is not a key-value store: it has no store name for
	// table joins and key-value queries.
	info := &windowedInfo{grace: base.grace, kind: w.w.kind()}
	if sw, ok := w.w.(SessionWindows); ok {
		info.gap = sw.gap
	}
	return Table[Windowed[K], A]{b: b, n: n, ks: ks, vs: as, win: info}
}

// winBase is what every windowed aggregation node shares: its store names
// and serdes, stream time as the node observed it, late records, emission
// and the record of the last final emission.
type winBase[K, A any] struct {
	name, storeName string
	t               *task
	ks              serde.Serde[K]
	as              serde.Serde[A]
	grace           int64
	emitFinal       bool
	lateTopic       string
	down            downstream[Windowed[K], change[A]]

	// observed is the largest timestamp the node has seen (Kafka Streams'
	// observedStreamTime), math.MinInt64 before the first.
	observed int64
	// emitStore holds lastEmit, the close time up to which final results
	// were emitted (EmitFinal), math.MinInt64 before the first emission.
	emitStore state.Store
	lastEmit  int64
	// pending indexes the windows not yet emitted (EmitFinal).
	pending *pendingIndex
	// cached: a record cache sits in front of the store; updates go
	// downstream when it flushes them (flushed), not when written.
	cached bool
	// oldValues: a child reads the old values of updates (needsOldValues),
	// so a cache flush reads them.
	oldValues bool
	// lateSent is the record last written to the late-records topic, so a
	// record late for several windows is written once.
	lateSent *kgo.Record
	buf      []byte

	// idle (CloseWindowsWhenIdle, ms): after idle of wall-clock time with
	// no record, stream time advances with the wall clock from
	// lastWall, the wall-clock time of the last record, when stream time
	// was lastObserved.
	idle         int64
	lastWall     int64
	lastObserved int64
}

// watchIdle starts the idle check (CloseWindowsWhenIdle): emitClosed emits
// the windows closed at a close time.
func (b *winBase[K, A]) watchIdle(emitClosed func(closeTime int64)) {
	if b.idle <= 0 {
		return
	}
	b.lastWall, b.lastObserved = b.t.Env.Now().UnixMilli(), math.MinInt64
	every := min(max(time.Duration(b.idle)*time.Millisecond/4, 10*time.Millisecond), time.Second)
	b.t.SchedulePunctuator(b.name, every, engine.WallClockTime, func(now time.Time) {
		wall := now.UnixMilli()
		if b.observed == math.MinInt64 || wall-b.lastWall < b.idle {
			return
		}
		st := b.lastObserved + (wall - b.lastWall)
		if st <= b.observed {
			return
		}
		b.observed = st
		b.t.Env.Counters.IdleAdvances.Add(1)
		b.t.Env.Logger.Debug("kstream: windowed stream time advanced by the wall clock on a quiet input", "node", b.name,
			"task", b.t.ID.String(), "stream_time", st, "idle_ms", wall-b.lastWall)
		if b.emitFinal {
			emitClosed(st - b.grace)
		}
	})
}

var emitKey = []byte("lastEmitCloseTime")

func (b *winBase[K, A]) init(t *task, n *node, children []nodeInstance) (state.Store, error) {
	b.t, b.name = t, n.Name
	b.observed, b.lastEmit = math.MinInt64, math.MinInt64
	st := t.Store(b.storeName)
	if st == nil {
		return nil, fmt.Errorf("%w: store %q is not open in task %s", ErrTopology, b.storeName, t.ID)
	}
	if b.emitFinal {
		if es := t.Store(b.storeName + "-emit"); es != nil {
			b.emitStore = es
			v, err := es.Get(emitKey)
			if err != nil {
				return nil, fmt.Errorf("store %q: %w", b.storeName+"-emit", err)
			}
			if len(v) == 8 {
				b.lastEmit = int64(binary.BigEndian.Uint64(v))
			}
		}
	}
	b.oldValues = needsOldValues(children)
	return st, b.down.Wire(t, n, children)
}

// resumeStreamTime sets the node's stream time when its task starts from
// what the stores say, so that a restart does not reopen closed windows:
// at least the close time of the last final emission plus grace
// (EmitFinal), and at least floor, the latest time the window store has
// seen (math.MinInt64: none).
func (b *winBase[K, A]) resumeStreamTime(floor int64) {
	if b.lastEmit != math.MinInt64 && b.lastEmit <= math.MaxInt64-b.grace {
		b.observed = max(b.observed, b.lastEmit+b.grace)
	}
	b.observed = max(b.observed, floor)
}

// started finishes a node's Init once its store is open: stream time
// resumed from floor (see resumeStreamTime), the pending-window index
// rebuilt from all (EmitFinal) with due as its rule, or the record cache's
// flushes listened to, with window decoding a cached key (the store's own
// layout) into the user key and window; the view offered to queries, the
// idle check started.
func (b *winBase[K, A]) started(floor int64, all func() state.WindowIterator, due func(end, closeTime int64) bool,
	window func(raw []byte) (key []byte, start, end int64, ok bool), view any, emitClosed func(closeTime int64)) error {
	b.resumeStreamTime(floor)
	if !b.emitFinal {
		b.cached = b.t.OnFlush(b.storeName, b.oldValues, func(raw, newB, oldB []byte, _ int64) {
			b.flushed(window, raw, newB, oldB)
		})
	}
	if b.emitFinal {
		b.pending = newPendingIndex(due)
		if err := b.pending.rebuild(all(), b.lastEmit); err != nil {
			return fmt.Errorf("store %q: %w", b.storeName, err)
		}
	}
	b.t.SetView(b.storeName, view)
	b.watchIdle(emitClosed)
	return nil
}

// begin starts processing a record at ts (ms) of key k: it drops a
// tombstone, advances stream time, emits the windows that close (EmitFinal;
// before the record's windows are written: a write advances the store's
// stream time, which may expire the windows that close now) and encodes
// the key. ok false: nothing more to do.
func (b *winBase[K, A]) begin(k K, ts int64, tombstone bool, emitClosed func(closeTime int64)) (closeTime int64, kb []byte, ok bool) {
	if tombstone {
		b.t.Env.Counters.Dropped.Add(1)
		b.t.Env.Logger.Debug("kstream: aggregation dropped a record with a null value", "node", b.name, "task", b.t.ID.String())
		return 0, nil, false
	}
	closeTime = b.observe(ts)
	if b.emitFinal {
		if emitClosed(closeTime); b.t.Failure != nil {
			return 0, nil, false
		}
	}
	kb, ok = b.keyBytes(k)
	return closeTime, kb, ok
}

// flushed forwards what the record cache flushed for one window.
func (b *winBase[K, A]) flushed(window func(raw []byte) ([]byte, int64, int64, bool), raw, newB, oldB []byte) {
	kb, start, end, ok := window(raw)
	if !ok {
		return // the store's meta key
	}
	k, err := b.ks.Deserialize(b.storeName, kb)
	if err != nil {
		b.fail("flush", fmt.Errorf("decode key: %w", err))
		return
	}
	var prev stamped[A]
	if oldB != nil {
		if prev, err = b.decode(oldB); err != nil {
			b.fail("flush", err)
			return
		}
	}
	w := Windowed[K]{Key: k, Start: start, End: end}
	if newB == nil {
		b.forwardDelete(w, prev.agg, end)
		return
	}
	now, err := b.decode(newB)
	if err != nil {
		b.fail("flush", err)
		return
	}
	b.forward(w, now, prev.agg, oldB != nil)
}

// enter marks the node as the one processing; the returned function undoes
// it.
func (b *winBase[K, A]) enter() func() {
	prev := b.t.CurNode
	b.t.CurNode = b.name
	return func() { b.t.CurNode = prev }
}

// observe advances the node's stream time to ts and returns the close time:
// stream time minus grace.
func (b *winBase[K, A]) observe(ts int64) int64 {
	if ts > b.observed {
		b.observed = ts
	}
	if b.idle > 0 {
		b.lastWall, b.lastObserved = b.t.Env.Now().UnixMilli(), b.observed
	}
	return b.observed - b.grace
}

func (b *winBase[K, A]) fail(op string, err error) {
	b.t.Fail(b.name, ProcessingErrorKind, fmt.Errorf("store %q %s: %w", b.storeName, op, err))
}

func (b *winBase[K, A]) keyBytes(k K) ([]byte, bool) {
	kb, err := b.ks.Serialize(b.storeName, k)
	if err != nil {
		b.t.Fail(b.name, ProcessingErrorKind, fmt.Errorf("store %q: encode key: %w", b.storeName, err))
		return nil, false
	}
	if kb == nil {
		kb = []byte{}
	}
	return kb, true
}

// late counts, logs and, if asked, writes to the late-records topic the
// record being processed, refused by the window [start, end].
func (b *winBase[K, A]) late(reason string, start, end int64) {
	t := b.t
	t.Env.Counters.Late.Add(1)
	t.Env.Logger.Debug("kstream: skipping record for closed window", "node", b.name, "task", t.ID.String(),
		"reason", reason, "window_start", start, "window_end", end, "stream_time", b.observed, "grace_ms", b.grace)
	if b.lateTopic == "" || t.Cur == nil || t.Cur == b.lateSent {
		return
	}
	r := t.Cur
	b.lateSent = r
	ec := &ErrorContext{Kind: ProcessingErrorKind, Task: t.ID, Node: b.name, Topic: r.Topic, Partition: r.Partition,
		Offset: r.Offset, Timestamp: r.Timestamp, Key: r.Key, Value: r.Value, Headers: engine.FromKgoHeaders(r.Headers),
		Err: fmt.Errorf("late record: %s", reason)}
	out := engine.DeadLetterRecord(b.lateTopic, t.ID, ec)
	out.Headers = append(out.Headers,
		kgo.RecordHeader{Key: HeaderLateReason, Value: []byte(reason)},
		kgo.RecordHeader{Key: HeaderLateWindowStart, Value: []byte(strconv.FormatInt(start, 10))},
		kgo.RecordHeader{Key: HeaderLateWindowEnd, Value: []byte(strconv.FormatInt(end, 10))},
		kgo.RecordHeader{Key: HeaderLateStreamTime, Value: []byte(strconv.FormatInt(b.observed, 10))},
	)
	t.Env.Counters.LateWritten.Add(1)
	t.Env.Collector.Send(t, out)
}

// stamped is a window's aggregate with the largest timestamp of its records
// and the headers of the record that last updated it.
type stamped[A any] struct {
	agg     A
	ts      int64
	headers []Header
}

func (b *winBase[K, A]) decode(v []byte) (stamped[A], error) {
	ts, hs, ab, err := wire.DecodeStamped(v)
	if err != nil {
		return stamped[A]{}, err
	}
	a, err := b.as.Deserialize(b.storeName, ab)
	if err != nil {
		return stamped[A]{}, fmt.Errorf("decode aggregate: %w", err)
	}
	s := stamped[A]{agg: a, ts: ts}
	if len(hs) > 0 {
		s.headers = make([]Header, len(hs))
		for i, h := range hs {
			s.headers[i] = Header{Key: h.Key, Value: h.Value}
		}
	}
	return s, nil
}

// encode returns the stored bytes of s, in b.buf (valid until the next
// encode; stores copy).
func (b *winBase[K, A]) encode(s stamped[A]) ([]byte, error) {
	ab, err := b.as.Serialize(b.storeName, s.agg)
	if err != nil {
		return nil, fmt.Errorf("encode aggregate: %w", err)
	}
	var hs []wire.Header
	if len(s.headers) > 0 {
		hs = make([]wire.Header, len(s.headers))
		for i, h := range s.headers {
			hs[i] = wire.Header{Key: h.Key, Value: h.Value}
		}
	}
	b.buf = wire.AppendStamped(b.buf[:0], s.ts, hs, ab)
	return b.buf, nil
}

// forward emits a window's new aggregate (and its old one, when it had
// one).
func (b *winBase[K, A]) forward(key Windowed[K], now stamped[A], old A, hasOld bool) {
	b.down.Forward(Record[Windowed[K], change[A]]{Key: key, Value: change[A]{newV: now.agg, oldV: old, hasNew: true, hasOld: hasOld},
		Timestamp: time.UnixMilli(now.ts), Headers: now.headers})
}

// forwardDelete emits that a window is gone (a merged-away session).
func (b *winBase[K, A]) forwardDelete(key Windowed[K], old A, ts int64) {
	b.down.Forward(Record[Windowed[K], change[A]]{Key: key, Value: change[A]{oldV: old, hasOld: true}, Timestamp: time.UnixMilli(ts)})
}

// saveEmit records that final results were emitted up to closeTime.
func (b *winBase[K, A]) saveEmit(closeTime int64) bool {
	b.lastEmit = closeTime
	if b.emitStore == nil {
		return true
	}
	if err := b.emitStore.Put(emitKey, binary.BigEndian.AppendUint64(nil, uint64(closeTime))); err != nil {
		b.fail("emit", err)
		return false
	}
	return true
}

// emitDue emits, as final results, the pending windows due at closeTime;
// fetch returns a window's stored value (nil: gone). It records the close
// time when it emitted any.
func (b *winBase[K, A]) emitDue(closeTime int64, fetch func(key []byte, start, end int64) ([]byte, error)) {
	if closeTime <= b.lastEmit {
		return
	}
	n := b.pending.popDue(closeTime, func(w pendingWin) bool {
		v, err := fetch(w.key, w.start, w.end)
		if err != nil {
			b.fail("emit", err)
			return false
		}
		if v == nil {
			return true
		}
		k, err := b.ks.Deserialize(b.storeName, w.key)
		if err != nil {
			b.fail("emit", fmt.Errorf("decode key: %w", err))
			return false
		}
		s, err := b.decode(v)
		if err != nil {
			b.fail("emit", err)
			return false
		}
		b.forward(Windowed[K]{Key: k, Start: w.start, End: w.end}, s, s.agg, false)
		return b.t.Failure == nil
	})
	if n > 0 && b.t.Failure == nil {
		b.saveEmit(closeTime)
	}
}

// writeWindow stores cur as key's window [start, end] of ws and emits it
// (prev and hasPrev: the aggregate it replaces), or, with EmitFinal,
// tracks it as pending. A window the store no longer keeps is late. It
// returns false when the record failed.
func (b *winBase[K, A]) writeWindow(ws state.WindowStore, kb []byte, k K, start, end int64, cur stamped[A], prev A, hasPrev bool) bool {
	enc, err := b.encode(cur)
	if err != nil {
		b.fail("put", err)
		return false
	}
	dropped, err := ws.Put(kb, start, enc)
	if err != nil {
		b.fail("put", err)
		return false
	}
	if dropped {
		b.late("window expired from the store", start, end)
		return true
	}
	if b.emitFinal {
		// The index keeps one entry per window, however often tracked.
		b.pending.track(kb, start, end)
	} else if !b.cached {
		b.forward(Windowed[K]{Key: k, Start: start, End: end}, cur, prev, hasPrev)
	}
	return b.t.Failure == nil
}

// timeWindowNode aggregates over tumbling and hopping windows (Kafka
// Streams' KStreamWindowAggregate).
type timeWindowNode[K, V, A any] struct {
	winBase[K, A]
	w   TimeWindows
	fns *windowAggFns[K, V, A]
	ws  state.WindowStore
}

func (n *timeWindowNode[K, V, A]) Init(t *task, nd *node, children []nodeInstance) error {
	st, err := n.init(t, nd, children)
	if err != nil {
		return err
	}
	n.ws, err = state.NewWindowStore(st, state.WindowStoreConfig{
		Retention: ms(n.w.size + n.w.grace), WindowSize: ms(n.w.size), Grace: ms(n.w.grace)})
	if err != nil {
		return err
	}
	// The latest window start seen is at most the latest record's time.
	size := n.w.size
	return n.started(n.ws.StreamTime(), n.ws.All, func(end, closeTime int64) bool { return end <= closeTime },
		func(raw []byte) ([]byte, int64, int64, bool) {
			k, start, ok := state.WindowKeyOf(raw)
			return k, start, start + size, ok
		}, n.ws, n.emitClosed)
}

func (n *timeWindowNode[K, V, A]) Close() error { return nil }

func (n *timeWindowNode[K, V, A]) Receive(r Record[K, V]) {
	defer n.enter()()
	ts := r.Timestamp.UnixMilli()
	closeTime, kb, ok := n.begin(r.Key, ts, r.Tombstone, n.emitClosed)
	if !ok {
		return
	}
	n.w.starts(ts, func(start int64) {
		if !ok {
			return
		}
		end := start + n.w.size
		if end <= closeTime {
			n.late("window closed", start, end)
			return
		}
		ok = n.update(kb, r, ts, start, end)
	})
}

// update adds r to the window at start.
func (n *timeWindowNode[K, V, A]) update(kb []byte, r Record[K, V], ts, start, end int64) bool {
	old, err := n.ws.Fetch(kb, start)
	if err != nil {
		n.fail("fetch", err)
		return false
	}
	cur := stamped[A]{agg: n.fns.init(), ts: ts}
	fresh := old == nil
	if !fresh {
		if cur, err = n.decode(old); err != nil {
			n.fail("fetch", err)
			return false
		}
		cur.ts = max(cur.ts, ts)
	}
	prev := cur.agg
	cur.agg = n.fns.apply(r.Key, r.Value, cur.agg, fresh)
	cur.headers = r.Headers
	return n.writeWindow(n.ws, kb, r.Key, start, end, cur, prev, !fresh)
}

// emitClosed emits the windows that closed: end <= closeTime.
func (n *timeWindowNode[K, V, A]) emitClosed(closeTime int64) {
	n.emitDue(closeTime, func(key []byte, start, _ int64) ([]byte, error) { return n.ws.Fetch(key, start) })
}
