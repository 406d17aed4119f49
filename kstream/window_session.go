package kstream

import (
	"math"

	"github.com/streamwork-go/streamwork/state"
)

// sessionWindowNode aggregates over session windows, Kafka Streams'
// KStreamSessionWindowAggregate: a record at t joins every session of its
// key within the gap of it ([end >= t-gap, start <= t+gap]); they are
// merged into one session, the replaced ones are deleted (a tombstone
// each, timestamped with their end) and the merged session is emitted with
// its end as timestamp. A record whose merged session ends before stream
// time minus grace minus gap is late. With EmitFinal, a session is emitted when
// stream time passes its end + gap + grace: a later record within its gap
// would be late on its own; one that bridges it and a later, open session
// merges into the open one only, so an emitted session never changes.
type sessionWindowNode[K, V, A any] struct {
	winBase[K, A]
	w   SessionWindows
	fns *windowAggFns[K, V, A]
	ss  state.SessionStore

	merged []slideWin[A] // scratch: sessions found, start and stamped
	ends   []int64
}

func (n *sessionWindowNode[K, V, A]) Init(t *task, nd *node, children []nodeInstance) error {
	st, err := n.init(t, nd, children)
	if err != nil {
		return err
	}
	n.ss, err = state.NewSessionStore(st, state.SessionStoreConfig{
		Retention: ms(n.w.retention(n.emitFinal)), InactivityGap: ms(n.w.gap), Grace: ms(n.w.grace)})
	if err != nil {
		return err
	}
	// The latest session end is the latest record's time; a session is
	// final once stream time passes end + gap + grace.
	gap := n.w.gap
	return n.started(n.ss.StreamTime(), n.ss.All, func(end, closeTime int64) bool { return end < closeTime-gap },
		state.SessionKeyOf, n.ss, n.emitClosed)
}

func (n *sessionWindowNode[K, V, A]) Close() error { return nil }

func (n *sessionWindowNode[K, V, A]) Receive(r Record[K, V]) {
	defer n.enter()()
	ts := r.Timestamp.UnixMilli()
	closeTime, kb, ok := n.begin(r.Key, ts, r.Tombstone, n.emitClosed)
	if !ok {
		return
	}
	earliestEnd := ts - n.w.gap
	if n.emitFinal && n.lastEmit != math.MinInt64 && n.lastEmit-n.w.gap > earliestEnd {
		// Emitted sessions (end < lastEmit - gap) are final: a record that
		// bridges one of them and a later session merges the later one
		// only.
		earliestEnd = n.lastEmit - n.w.gap
	}
	n.merged, n.ends = n.merged[:0], n.ends[:0]
	it := n.ss.FindSessions(kb, earliestEnd, ts+n.w.gap)
	for it.Next() {
		s, err := n.decode(it.Value())
		if err != nil {
			it.Close()
			n.fail("fetch", err)
			return
		}
		n.merged = append(n.merged, slideWin[A]{start: it.Start(), s: s})
		n.ends = append(n.ends, it.End())
	}
	err := it.Err()
	it.Close()
	if err != nil {
		n.fail("fetch", err)
		return
	}
	start, end := ts, ts
	agg, fresh := n.fns.init(), true
	for i, m := range n.merged {
		agg = n.fns.mergeInto(r.Key, agg, fresh, m.s.agg)
		fresh = false
		start, end = min(start, m.start), max(end, n.ends[i])
	}
	if end < closeTime-n.w.gap {
		// Kafka Streams' rule (4.x): a session is closed once stream time
		// passes its end + gap + grace.
		n.late("session closed", start, end)
		return
	}
	if start != ts || end != ts {
		for i, m := range n.merged {
			if err := n.ss.Remove(kb, m.start, n.ends[i]); err != nil {
				n.fail("remove", err)
				return
			}
			if n.emitFinal {
				n.pending.untrack(kb, m.start, n.ends[i])
			}
			if !n.emitFinal && !n.cached {
				n.forwardDelete(Windowed[K]{Key: r.Key, Start: m.start, End: n.ends[i]}, m.s.agg, n.ends[i])
				if n.t.Failure != nil {
					return
				}
			}
		}
	}
	prev := agg
	cur := stamped[A]{agg: n.fns.apply(r.Key, r.Value, agg, fresh), ts: end, headers: r.Headers}
	enc, err := n.encode(cur)
	if err != nil {
		n.fail("put", err)
		return
	}
	dropped, err := n.ss.Put(kb, start, end, enc)
	if err != nil {
		n.fail("put", err)
		return
	}
	if dropped {
		n.late("session expired from the store", start, end)
		return
	}
	if !n.emitFinal && !n.cached {
		// A session that replaces others is new: it has no old value.
		n.forward(Windowed[K]{Key: r.Key, Start: start, End: end}, cur, prev, false)
	} else if n.emitFinal {
		n.pending.track(kb, start, end)
	}
}

// emitClosed emits the sessions that became final: end < closeTime - gap.
func (n *sessionWindowNode[K, V, A]) emitClosed(closeTime int64) {
	n.emitDue(closeTime, func(key []byte, start, end int64) ([]byte, error) { return n.ss.Fetch(key, start, end) })
}
