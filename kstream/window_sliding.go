package kstream

import (
	"math"

	"github.com/streamwork-go/streamwork/state"
)

// slidingWindowNode aggregates over sliding windows, Kafka Streams'
// KStreamSlidingWindowAggregate: every record has a left window
// [t-difference, t], created when it arrives, and a right window
// [t+1, t+1+difference], created once a record falls into it. Windows
// never start before 0: records earlier than the difference share the
// window [0, difference].
//
// The aggregates of new windows come from existing ones, so the node keeps
// no records: a record's left window takes the aggregate of the window that
// ends latest before it (which holds exactly the records within reach
// before it), and its right window the aggregate of the latest window that
// holds it and a later record, as it was before the record was added.
type slidingWindowNode[K, V, A any] struct {
	winBase[K, A]
	w   SlidingWindows
	fns *windowAggFns[K, V, A]
	ws  state.WindowStore

	wins []slideWin[A] // scratch
}

// slideWin is one stored window of the key being processed.
type slideWin[A any] struct {
	start int64
	s     stamped[A]
}

func (n *slidingWindowNode[K, V, A]) Init(t *task, nd *node, children []nodeInstance) error {
	st, err := n.init(t, nd, children)
	if err != nil {
		return err
	}
	n.ws, err = state.NewWindowStore(st, state.WindowStoreConfig{
		Retention: ms(2*n.w.diff + n.w.grace), WindowSize: ms(n.w.diff), Grace: ms(n.w.grace)})
	if err != nil {
		return err
	}
	// A right window starts at most 1ms after the latest record.
	floor := n.ws.StreamTime()
	if floor != math.MinInt64 {
		floor--
	}
	// A sliding window holds its end: due once close time passes it.
	diff := n.w.diff
	return n.started(floor, n.ws.All, func(end, closeTime int64) bool { return end < closeTime },
		func(raw []byte) ([]byte, int64, int64, bool) {
			k, start, ok := state.WindowKeyOf(raw)
			return k, start, start + diff, ok
		}, n.ws, n.emitClosed)
}

func (n *slidingWindowNode[K, V, A]) Close() error { return nil }

// fetch loads key's windows with a start in [from, to] into n.wins,
// ascending or descending by start.
func (n *slidingWindowNode[K, V, A]) fetch(kb []byte, from, to int64, backward bool) bool {
	n.wins = n.wins[:0]
	var it state.WindowIterator
	if backward {
		it = n.ws.BackwardFetchRange(kb, from, to)
	} else {
		it = n.ws.FetchRange(kb, from, to)
	}
	defer it.Close()
	for it.Next() {
		s, err := n.decode(it.Value())
		if err != nil {
			n.fail("fetch", err)
			return false
		}
		n.wins = append(n.wins, slideWin[A]{start: it.Start(), s: s})
	}
	if err := it.Err(); err != nil {
		n.fail("fetch", err)
		return false
	}
	return true
}

func (n *slidingWindowNode[K, V, A]) Receive(r Record[K, V]) {
	defer n.enter()()
	ts := r.Timestamp.UnixMilli()
	closeTime, kb, ok := n.begin(r.Key, ts, r.Tombstone, n.emitClosed)
	if !ok {
		return
	}
	if ts+1+n.w.diff <= closeTime {
		n.late("window closed", ts-n.w.diff, ts)
		return
	}
	if ts < n.w.diff {
		n.early(kb, r, ts, closeTime)
	} else {
		n.process(kb, r, ts, closeTime)
	}
}

// process handles a record at ts >= difference.
func (n *slidingWindowNode[K, V, A]) process(kb []byte, r Record[K, V], ts, closeTime int64) {
	d := n.w.diff
	if !n.fetch(kb, max(0, ts-2*d), ts+1, true) {
		return
	}
	var (
		leftAgg, rightAgg       *stamped[A]
		leftExists, rightExists bool
		prevTs                  = int64(math.MinInt64) // the latest record before ts, if known
		hasPrev                 bool
		starts                  = make(map[int64]bool, len(n.wins))
	)
	wins := n.wins
scan:
	for i := range wins {
		w := &wins[i]
		starts[w.start] = true
		end := w.start + d
		switch {
		case w.start == ts+1:
			rightExists = true
		case end > ts:
			if rightAgg == nil {
				c := w.s
				rightAgg = &c
			}
			if !n.update(kb, r, ts, w.start, w.s, false, closeTime) {
				return
			}
		case end == ts:
			leftExists = true
			if !n.update(kb, r, ts, w.start, w.s, false, closeTime) {
				return
			}
			if w.s.ts >= ts {
				// The record's windows all exist already.
				return
			}
			prevTs, hasPrev = w.s.ts, true
		default: // end < ts
			c := w.s
			leftAgg = &c
			prevTs, hasPrev = w.s.ts, true
			break scan
		}
	}
	// The right window of the previous record, if it is new and holds ts.
	if hasPrev {
		ps := prevTs + 1
		if !starts[ps] && ps+d >= ts {
			if !n.update(kb, r, ts, ps, stamped[A]{agg: n.fns.init(), ts: ts}, true, closeTime) {
				return
			}
		}
	}
	// The record's left window.
	if !leftExists {
		if hasPrev && prevTs >= ts-d && leftAgg != nil {
			if !n.update(kb, r, ts, ts-d, stamped[A]{agg: leftAgg.agg, ts: ts, headers: leftAgg.headers}, false, closeTime) {
				return
			}
		} else if !n.update(kb, r, ts, ts-d, stamped[A]{agg: n.fns.init(), ts: ts}, true, closeTime) {
			return
		}
	}
	// The record's right window, when a later record is in reach.
	if !rightExists && rightAgg != nil && rightAgg.ts > ts {
		n.put(kb, r.Key, ts+1, *rightAgg, closeTime)
	}
}

// early handles a record at 0 <= ts < difference: its left window is
// [0, difference], which holds every such record.
func (n *slidingWindowNode[K, V, A]) early(kb []byte, r Record[K, V], ts, closeTime int64) {
	if !n.fetch(kb, 0, ts+1, false) {
		return
	}
	var (
		combined    *slideWin[A]
		rightAgg    *stamped[A]
		rightExists bool
		prevTs      int64
		hasPrev     bool
		starts      = make(map[int64]bool, len(n.wins))
	)
	wins := n.wins
	for i := range wins {
		w := &wins[i]
		starts[w.start] = true
		switch {
		case w.start == 0:
			c := *w
			combined = &c
			if w.s.ts < ts {
				prevTs, hasPrev = w.s.ts, true
			}
		case w.start <= ts:
			c := w.s
			rightAgg = &c
			if !n.update(kb, r, ts, w.start, w.s, false, closeTime) {
				return
			}
		case w.start == ts+1:
			rightExists = true
		}
	}
	if rightAgg == nil && combined != nil && combined.s.ts > ts {
		c := combined.s
		rightAgg = &c
	}
	if !rightExists && rightAgg != nil && rightAgg.ts > ts {
		if !n.put(kb, r.Key, ts+1, *rightAgg, closeTime) {
			return
		}
	}
	if hasPrev && !starts[prevTs+1] {
		if !n.update(kb, r, ts, prevTs+1, stamped[A]{agg: n.fns.init(), ts: ts}, true, closeTime) {
			return
		}
	}
	if combined == nil {
		n.update(kb, r, ts, 0, stamped[A]{agg: n.fns.init(), ts: ts}, true, closeTime)
	} else {
		n.update(kb, r, ts, 0, combined.s, false, closeTime)
	}
}

// update adds r to the window at start whose aggregate was cur (fresh: a
// new window) and emits it, unless the window has closed.
func (n *slidingWindowNode[K, V, A]) update(kb []byte, r Record[K, V], ts, start int64, cur stamped[A], fresh bool, closeTime int64) bool {
	end := start + n.w.diff
	if end < closeTime {
		// Sliding windows hold their end: one ending at close time can
		// still take a record (Kafka Streams).
		n.late("window closed", start, end)
		return true
	}
	prev := cur.agg
	cur.agg = n.fns.apply(r.Key, r.Value, cur.agg, fresh)
	cur.ts = max(cur.ts, ts)
	cur.headers = r.Headers
	return n.writeWindow(n.ws, kb, r.Key, start, end, cur, prev, !fresh)
}

// put stores s as the new window at start (a record's right window, made
// from an existing aggregate) and emits it.
func (n *slidingWindowNode[K, V, A]) put(kb []byte, k K, start int64, s stamped[A], closeTime int64) bool {
	end := start + n.w.diff
	if end < closeTime {
		return true
	}
	return n.writeWindow(n.ws, kb, k, start, end, s, s.agg, false)
}

// emitClosed emits the windows that closed: start+difference < closeTime
// (a sliding window holds its end).
func (n *slidingWindowNode[K, V, A]) emitClosed(closeTime int64) {
	n.emitDue(closeTime, func(key []byte, start, _ int64) ([]byte, error) { return n.ws.Fetch(key, start) })
}
