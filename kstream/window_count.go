package kstream

import (
	"fmt"

	"github.com/streamwork-go/streamwork/kstream/internal/wire"
	"github.com/streamwork-go/streamwork/state"
)

// countWindowNode aggregates over count windows: per key it keeps how many
// records it has seen and the aggregates of its open windows, in one
// key-value entry. Record i of a key (from 0) belongs to every window
// starting at a multiple of advance in (i-size, i]; a window closes, and
// leaves the state, with its size-th record.
type countWindowNode[K, V, A any] struct {
	winBase[K, A]
	w    CountWindows
	fns  *windowAggFns[K, V, A]
	st   state.Store
	wins []wire.CountWindow
	out  []byte
}

func (n *countWindowNode[K, V, A]) Init(t *task, nd *node, children []nodeInstance) error {
	st, err := n.init(t, nd, children)
	n.st = st
	return err
}

func (n *countWindowNode[K, V, A]) Close() error { return nil }

func (n *countWindowNode[K, V, A]) Receive(r Record[K, V]) {
	defer n.enter()()
	if dropTombstone(n.t, r) {
		return
	}
	ts := r.Timestamp.UnixMilli()
	kb, ok := n.keyBytes(r.Key)
	if !ok {
		return
	}
	old, err := n.st.Get(kb)
	if err != nil {
		n.fail("get", err)
		return
	}
	var seen int64
	n.wins = n.wins[:0]
	if old != nil {
		if seen, n.wins, err = wire.DecodeCountWindows(old, n.wins); err != nil {
			n.fail("get", err)
			return
		}
	}
	if seen%n.w.advance == 0 {
		n.wins = append(n.wins, wire.CountWindow{Start: seen, TS: ts})
	}
	// Each window's new aggregate; the closed ones are emitted and dropped.
	type result struct {
		key     Windowed[K]
		now     stamped[A]
		prev    A
		hasPrev bool
		closed  bool
	}
	results := make([]result, 0, len(n.wins))
	keep := n.wins[:0]
	for _, w := range n.wins {
		fresh := w.Agg == nil
		cur := stamped[A]{agg: n.fns.init(), ts: max(w.TS, ts), headers: r.Headers}
		if !fresh {
			if cur.agg, err = n.as.Deserialize(n.storeName, w.Agg); err != nil {
				n.fail("get", fmt.Errorf("decode aggregate: %w", err))
				return
			}
		}
		prev := cur.agg
		cur.agg = n.fns.apply(r.Key, r.Value, cur.agg, fresh)
		closed := seen+1 == w.Start+n.w.size
		results = append(results, result{key: Windowed[K]{Key: r.Key, Start: w.Start, End: w.Start + n.w.size},
			now: cur, prev: prev, hasPrev: !fresh, closed: closed})
		if !closed {
			ab, err := n.as.Serialize(n.storeName, cur.agg)
			if err != nil {
				n.fail("put", fmt.Errorf("encode aggregate: %w", err))
				return
			}
			if ab == nil {
				ab = []byte{}
			}
			keep = append(keep, wire.CountWindow{Start: w.Start, TS: cur.ts, Agg: ab})
		}
	}
	n.out = wire.AppendCountWindows(n.out[:0], seen+1, keep)
	if err := n.st.Put(kb, n.out); err != nil {
		n.fail("put", err)
		return
	}
	for _, res := range results {
		if n.emitFinal && !res.closed {
			continue
		}
		if n.emitFinal {
			n.forward(res.key, res.now, res.now.agg, false)
		} else {
			n.forward(res.key, res.now, res.prev, res.hasPrev)
		}
		if n.t.Failure != nil {
			return
		}
	}
}
