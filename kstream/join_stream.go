package kstream

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"time"

	"github.com/streamwork-go/streamwork/kstream/internal/engine"
	"github.com/streamwork-go/streamwork/serde"
	"github.com/streamwork-go/streamwork/state"
)

// JoinWindows says which records of two streams join: a left record at t
// joins the right records of its key in [t-before, t+after] (so a right
// record at t joins the left ones in [t-after, t+before]). Grace is how long
// after a window ends records may still arrive, and how long a left or
// outer join waits before it emits a record that found no match.
type JoinWindows struct {
	before, after, grace int64 // ms
}

// JoinTimeDifference returns join windows of the same difference each way:
// records join when their timestamps are at most difference apart. Grace is
// explicit, as for the other windows (NoGrace for none).
func JoinTimeDifference(difference, grace time.Duration) JoinWindows {
	d := millis(difference)
	return JoinWindows{before: d, after: d, grace: millis(grace)}
}

// Before returns w with the time a right record may be earlier than the
// left one it joins.
func (w JoinWindows) Before(d time.Duration) JoinWindows { w.before = millis(d); return w }

// After returns w with the time a right record may be later than the left
// one it joins.
func (w JoinWindows) After(d time.Duration) JoinWindows { w.after = millis(d); return w }

// String describes the windows.
func (w JoinWindows) String() string {
	return fmt.Sprintf("join windows before %v, after %v, grace %v", ms(w.before), ms(w.after), ms(w.grace))
}

func (w JoinWindows) validate() error {
	switch {
	case w.before < 0 || w.after < 0 || w.before+w.after <= 0:
		return fmt.Errorf("JoinTimeDifference/Before/After: join window before %v and after %v must be non-negative, and not both 0", ms(w.before), ms(w.after))
	case w.grace < 0:
		return fmt.Errorf("JoinTimeDifference: grace %v is negative", ms(w.grace))
	}
	return nil
}

// StreamJoined are the serdes of a stream-stream join: the key's and each
// side's values', which its window stores (and, when a side's key changed
// upstream, its repartition topic) use.
type StreamJoined[K, VL, VR any] struct {
	Key   serde.Serde[K]
	Left  serde.Serde[VL]
	Right serde.Serde[VR]
}

// Join joins two streams by key over join windows (Kafka Streams'
// KStream.join): each pair of records of one key within the windows gives
// joiner(key, left, right), timestamped with the later of the two. Each
// side's records wait in a changelogged window store (retention before +
// after + grace) for the other side's. Records with a null value
// (tombstones) are dropped. A stream whose key changed upstream is first
// repartitioned, as for GroupByKey. Options: Named (the join's name, which
// its stores are named after: "<name>-left-store", "<name>-right-store"),
// InMemory.
func Join[K, VL, VR, V any](left Stream[K, VL], right Stream[K, VR], joiner func(k K, l VL, r VR) V, w JoinWindows,
	serdes StreamJoined[K, VL, VR], opts ...NodeOpt) Stream[K, V] {
	return streamJoin(left, right, w, serdes, opts, "JOIN", false, false,
		func(k K, l *VL, r *VR) V { return joiner(k, *l, *r) })
}

// LeftJoin is Join that also emits each left record that finds no right
// record, as joiner(key, left, nil) — once stream time passes its timestamp
// + after + grace, so never before a match could still arrive (Kafka
// Streams' KStream.leftJoin, without its spurious results). Unmatched
// records wait in a third changelogged store ("<name>-outer-store").
func LeftJoin[K, VL, VR, V any](left Stream[K, VL], right Stream[K, VR], joiner func(k K, l VL, r *VR) V, w JoinWindows,
	serdes StreamJoined[K, VL, VR], opts ...NodeOpt) Stream[K, V] {
	return streamJoin(left, right, w, serdes, opts, "LEFTJOIN", true, false,
		func(k K, l *VL, r *VR) V { return joiner(k, *l, r) })
}

// OuterJoin is LeftJoin both ways: unmatched records of either side are
// emitted once their window has closed, as joiner(key, left, nil) or
// joiner(key, nil, right).
func OuterJoin[K, VL, VR, V any](left Stream[K, VL], right Stream[K, VR], joiner func(k K, l *VL, r *VR) V, w JoinWindows,
	serdes StreamJoined[K, VL, VR], opts ...NodeOpt) Stream[K, V] {
	return streamJoin(left, right, w, serdes, opts, "OUTERJOIN", true, true, joiner)
}

// joinShared is what the two sides of one join share in a task: stream
// time over both inputs, and the smallest timestamp in the outer store.
type joinShared struct {
	streamTime, minTime int64
	init                bool
}

func streamJoin[K, VL, VR, V any](left Stream[K, VL], right Stream[K, VR], w JoinWindows, serdes StreamJoined[K, VL, VR],
	opts []NodeOpt, op string, leftOuter, rightOuter bool, joiner func(k K, l *VL, r *VR) V) Stream[K, V] {
	left.valid(op)
	right.valid(op)
	b := left.b
	if right.b != b {
		b.errorf("%w: %s of streams from different Builders", ErrTopology, op)
		return Stream[K, V]{b: b, n: left.n}
	}
	if serdes.Key == nil || serdes.Left == nil || serdes.Right == nil {
		b.errorf("%w: %s needs the key and both value serdes (StreamJoined)", ErrTopology, op)
		return Stream[K, V]{b: b, n: left.n}
	}
	if err := w.validate(); err != nil {
		b.errorf("%w: %s: %v", ErrTopology, op, err)
	}
	cfg := b.nodeCfg(opts)
	name := cfg.name
	if name == "" {
		name = b.generatedName(op)
	}
	if left.keyChanged {
		left = repartition(left, name+"-left", serdes.Key, serdes.Left, 0, false)
	}
	if right.keyChanged {
		right = repartition(right, name+"-right", serdes.Key, serdes.Right, 0, false)
	}
	size, ret := w.before+w.after, w.before+w.after+w.grace
	leftStore, rightStore, outerStore := name+"-left-store", name+"-right-store", ""
	for _, st := range []string{leftStore, rightStore} {
		b.addStore(&storeSpec{Name: st, Changelog: true, InMemory: cfg.inMemory, Retention: ms(ret)})
	}
	if leftOuter || rightOuter {
		outerStore = name + "-outer-store"
		b.addStore(&storeSpec{Name: outerStore, Changelog: true, InMemory: cfg.inMemory})
	}
	wcfg := state.WindowStoreConfig{Retention: ms(ret), WindowSize: ms(size), Grace: ms(w.grace), RetainDuplicates: true}
	common := joinCommon{name: name, w: w, wcfg: wcfg, thisStore: leftStore, otherStore: rightStore, outerStore: outerStore}
	ln := b.addNode(op+"-LEFT", name+"-left", engine.KindProcessor, []*node{left.n}, func() nodeInstance {
		c := common
		c.before, c.after, c.outer, c.leftSide = w.before, w.after, leftOuter, true
		return &joinSide[K, VL, VR, V]{joinCommon: c, ks: serdes.Key, thisVs: serdes.Left, otherVs: serdes.Right,
			join: func(k K, this *VL, other *VR) V { return joiner(k, this, other) }}
	})
	rn := b.addNode(op+"-RIGHT", name+"-right", engine.KindProcessor, []*node{right.n}, func() nodeInstance {
		c := common
		c.thisStore, c.otherStore = rightStore, leftStore
		c.before, c.after, c.outer, c.leftSide = w.after, w.before, rightOuter, false
		return &joinSide[K, VR, VL, V]{joinCommon: c, ks: serdes.Key, thisVs: serdes.Right, otherVs: serdes.Left,
			join: func(k K, this *VR, other *VL) V { return joiner(k, other, this) }}
	})
	for _, n := range []*node{ln, rn} {
		b.connectStore(n, leftStore)
		b.connectStore(n, rightStore)
		if outerStore != "" {
			b.connectStore(n, outerStore)
		}
	}
	merge := b.addNode("MERGE", name+"-merge", engine.KindProcessor, []*node{ln, rn}, func() nodeInstance {
		return &statelessNode[K, V, K, V]{fn: func(r Record[K, V], d *downstream[K, V]) { d.Forward(r) }}
	})
	return Stream[K, V]{b: b, n: merge}
}

// joinCommon is the configuration of one side of a join, seen from that
// side: before and after are from its point of view.
type joinCommon struct {
	name                              string
	w                                 JoinWindows
	wcfg                              state.WindowStoreConfig
	thisStore, otherStore, outerStore string
	before, after                     int64
	outer, leftSide                   bool
}

// joinSide is one side of a stream-stream join (Kafka Streams'
// KStreamKStreamJoin processor and KStreamJoinWindow in one): a record
// joins the other side's window store, waits in the outer store if it is
// an outer side and found no match, then goes into its own window store.
type joinSide[K, VT, VO, V any] struct {
	joinCommon
	nodeName string
	t        *task
	ks       serde.Serde[K]
	thisVs   serde.Serde[VT]
	otherVs  serde.Serde[VO]
	join     func(k K, this *VT, other *VO) V
	down     downstream[K, V]

	this, other state.WindowStore
	outerSt     state.Store
	shared      *joinShared
}

func (j *joinSide[K, VT, VO, V]) Init(t *task, n *node, children []nodeInstance) error {
	j.t, j.nodeName = t, n.Name
	var err error
	if j.this, err = openJoinWindows(t, j.thisStore, j.wcfg); err != nil {
		return err
	}
	if j.other, err = openJoinWindows(t, j.otherStore, j.wcfg); err != nil {
		return err
	}
	if j.outerStore != "" {
		if j.outerSt = t.Store(j.outerStore); j.outerSt == nil {
			return fmt.Errorf("%w: store %q is not open in task %s", ErrTopology, j.outerStore, t.ID)
		}
	}
	j.shared = t.Shared(j.name, func() any { return &joinShared{} }).(*joinShared)
	if !j.shared.init {
		// Stream time resumes from what the stores saw; the outer store's
		// first entry is its smallest timestamp.
		j.shared.init = true
		j.shared.streamTime = max(j.this.StreamTime(), j.other.StreamTime(), -1)
		j.shared.minTime = math.MaxInt64
		if j.outerSt != nil {
			it := j.outerSt.Range(nil, nil)
			if it.Next() {
				j.shared.minTime = int64(binary.BigEndian.Uint64(it.Key()) ^ (1 << 63))
			}
			if err := it.Close(); err != nil {
				return fmt.Errorf("store %q: %w", j.outerStore, err)
			}
		}
	}
	return j.down.Wire(t, n, children)
}

// openJoinWindows returns the task's window store of a join side, one
// instance shared by both sides (a window store layer keeps stream time in
// memory, so there must be one per store).
func openJoinWindows(t *task, name string, cfg state.WindowStoreConfig) (state.WindowStore, error) {
	var err error
	ws := t.Shared("window-store:"+name, func() any {
		st := t.Store(name)
		if st == nil {
			err = fmt.Errorf("%w: store %q is not open in task %s", ErrTopology, name, t.ID)
			return nil
		}
		var w state.WindowStore
		w, err = state.NewWindowStore(st, cfg)
		return w
	})
	if err != nil {
		return nil, err
	}
	return ws.(state.WindowStore), nil
}

func (j *joinSide[K, VT, VO, V]) Close() error { return nil }

func (j *joinSide[K, VT, VO, V]) fail(err error) {
	j.t.Fail(j.nodeName, ProcessingErrorKind, fmt.Errorf("join %q: %w", j.name, err))
}

func (j *joinSide[K, VT, VO, V]) Receive(r Record[K, VT]) {
	prev := j.t.CurNode
	j.t.CurNode = j.nodeName
	defer func() { j.t.CurNode = prev }()
	ts := r.Timestamp.UnixMilli()
	sh := j.shared
	sh.streamTime = max(sh.streamTime, ts)
	if r.Tombstone {
		j.t.Env.Counters.Dropped.Add(1)
		j.t.Env.Logger.Debug("kstream: join dropped a record with a null value", "node", j.nodeName, "task", j.t.ID.String())
		return
	}
	kb, err := j.ks.Serialize(j.name, r.Key)
	if err != nil {
		j.fail(fmt.Errorf("encode key: %w", err))
		return
	}
	if kb == nil {
		kb = []byte{}
	}
	if j.outerSt != nil && ts == sh.streamTime {
		if j.emitUnmatched(); j.t.Failure != nil {
			return
		}
	}
	from, to := max(0, ts-j.before), max(0, ts+j.after)
	it := j.other.FetchRange(kb, from, to)
	matched := false
	for it.Next() {
		matched = true
		ov, err := j.otherVs.Deserialize(j.name, it.Value())
		if err != nil {
			it.Close()
			j.fail(fmt.Errorf("decode value: %w", err))
			return
		}
		if j.outerSt != nil {
			// The other record has a match now: it never goes unmatched.
			if err := j.outerSt.Delete(outerKey(it.Start(), !j.leftSide, kb)); err != nil {
				it.Close()
				j.fail(err)
				return
			}
		}
		v := r.Value
		j.down.Forward(Record[K, V]{Key: r.Key, Value: j.join(r.Key, &v, &ov), Timestamp: time.UnixMilli(max(ts, it.Start())),
			Headers: r.Headers})
		if j.t.Failure != nil {
			it.Close()
			return
		}
	}
	err = it.Err()
	it.Close()
	if err != nil {
		j.fail(err)
		return
	}
	vb, err := j.thisVs.Serialize(j.name, r.Value)
	if err != nil {
		j.fail(fmt.Errorf("encode value: %w", err))
		return
	}
	if j.outer && !matched {
		if to+j.w.grace < sh.streamTime {
			// Its window and grace have passed already: no match can come.
			// (Kafka Streams emits it as soon as its window has passed,
			// before the grace, so a match within the grace would follow
			// a spurious unmatched result.)
			v := r.Value
			j.down.Forward(Record[K, V]{Key: r.Key, Value: j.join(r.Key, &v, nil), Timestamp: r.Timestamp, Headers: r.Headers})
		} else {
			sh.minTime = min(sh.minTime, ts)
			ok := j.appendOuter(outerKey(ts, j.leftSide, kb), vb)
			if !ok {
				return
			}
		}
	}
	if j.t.Failure != nil {
		return
	}
	if vb == nil {
		vb = []byte{}
	}
	if _, err := j.this.Put(kb, ts, vb); err != nil {
		j.fail(err)
	}
}

// outerKey is the outer store's key of a record: its timestamp (8 bytes,
// big-endian with the sign bit flipped, so keys sort by time), its side (0
// right, 1 left) and its key, so the store iterates by time, then side,
// then key, as Kafka Streams' TimestampedKeyAndJoinSide does.
func outerKey(ts int64, left bool, kb []byte) []byte {
	out := make([]byte, 9, 9+len(kb))
	binary.BigEndian.PutUint64(out, uint64(ts)^(1<<63))
	if left {
		out[8] = 1
	}
	return append(out, kb...)
}

// appendOuter adds a value to the list under key in the outer store: each
// value length-prefixed (uvarint).
func (j *joinSide[K, VT, VO, V]) appendOuter(key, vb []byte) bool {
	old, err := j.outerSt.Get(key)
	if err != nil {
		j.fail(err)
		return false
	}
	nv := binary.AppendUvarint(append([]byte(nil), old...), uint64(len(vb)))
	nv = append(nv, vb...)
	if err := j.outerSt.Put(key, nv); err != nil {
		j.fail(err)
		return false
	}
	return true
}

// emitUnmatched emits the outer store's records whose window has closed:
// a left record once stream time passes its timestamp + after + grace, a
// right one its timestamp + before + grace; in time order, then right
// before left, then by key (the store's order, as Kafka Streams').
func (j *joinSide[K, VT, VO, V]) emitUnmatched() {
	sh := j.shared
	w := j.w
	if sh.minTime == math.MaxInt64 || sh.minTime+min(w.after, w.before)+w.grace >= sh.streamTime {
		return
	}
	type unmatched struct {
		raw, key []byte
		ts       int64
		left     bool
		vals     []byte
	}
	var emit []unmatched
	kept := int64(math.MaxInt64) // the smallest timestamp left in the store
	it := j.outerSt.Range(nil, nil)
	for it.Next() {
		k := it.Key()
		if len(k) < 9 {
			continue
		}
		ts := int64(binary.BigEndian.Uint64(k) ^ (1 << 63))
		if ts+w.after+w.grace >= sh.streamTime && ts+w.before+w.grace >= sh.streamTime {
			kept = min(kept, ts)
			break // later entries are open on both sides too
		}
		left := k[8] == 1
		lookBack := w.before
		if left {
			lookBack = w.after
		}
		if ts+lookBack+w.grace >= sh.streamTime {
			kept = min(kept, ts)
			continue
		}
		emit = append(emit, unmatched{raw: bytes.Clone(k), key: bytes.Clone(k[9:]), ts: ts, left: left, vals: bytes.Clone(it.Value())})
	}
	if err := it.Close(); err != nil {
		j.fail(err)
		return
	}
	sh.minTime = kept
	for _, u := range emit {
		k, err := j.ks.Deserialize(j.name, u.key)
		if err != nil {
			j.fail(fmt.Errorf("decode key: %w", err))
			return
		}
		for b := u.vals; len(b) > 0; {
			n, used := binary.Uvarint(b)
			if used <= 0 || n > uint64(len(b)-used) {
				j.fail(fmt.Errorf("outer store %q: malformed value list", j.outerStore))
				return
			}
			vb := b[used : used+int(n)]
			b = b[used+int(n):]
			var v V
			if u.left == j.leftSide {
				tv, err := j.thisVs.Deserialize(j.name, vb)
				if err != nil {
					j.fail(fmt.Errorf("decode value: %w", err))
					return
				}
				v = j.join(k, &tv, nil)
			} else {
				ov, err := j.otherVs.Deserialize(j.name, vb)
				if err != nil {
					j.fail(fmt.Errorf("decode value: %w", err))
					return
				}
				v = j.join(k, nil, &ov)
			}
			j.down.Forward(Record[K, V]{Key: k, Value: v, Timestamp: time.UnixMilli(u.ts)})
			if j.t.Failure != nil {
				return
			}
		}
		if err := j.outerSt.Delete(u.raw); err != nil {
			j.fail(err)
			return
		}
	}
}
