package kstream

import (
	"bytes"
	"math"

	"github.com/google/btree"

	"github.com/streamwork-go/streamwork/state"
)

// Final emission (EmitFinal) keeps an index in memory of the windows not
// yet emitted, ordered by end, then key, then start: a record that moves
// close time emits the windows at the front of the index that are due,
// without scanning the store, and in the order they closed (Kafka Streams'
// emit-final store is time-ordered too). The index is rebuilt from the
// store when the task starts: a window is pending when it was not due at
// the last emission's close time.

// pendingWin is a window not yet emitted.
type pendingWin struct {
	end, start int64
	key        []byte
}

func pendingLess(a, b pendingWin) bool {
	if a.end != b.end {
		return a.end < b.end
	}
	if c := bytes.Compare(a.key, b.key); c != 0 {
		return c < 0
	}
	return a.start < b.start
}

// pendingIndex is a winBase's index of pending windows; due says whether a
// window with end is due at a close time.
type pendingIndex struct {
	tree *btree.BTreeG[pendingWin]
	due  func(end, closeTime int64) bool
}

func newPendingIndex(due func(end, closeTime int64) bool) *pendingIndex {
	return &pendingIndex{tree: btree.NewG(32, pendingLess), due: due}
}

// track records a new window (the key is copied).
func (p *pendingIndex) track(key []byte, start, end int64) {
	p.tree.ReplaceOrInsert(pendingWin{end: end, start: start, key: bytes.Clone(key)})
}

// untrack forgets a window (a session merged away).
func (p *pendingIndex) untrack(key []byte, start, end int64) {
	p.tree.Delete(pendingWin{end: end, start: start, key: key})
}

// rebuild indexes the windows of it that were not due at lastEmit, and
// closes it.
func (p *pendingIndex) rebuild(it state.WindowIterator, lastEmit int64) error {
	defer it.Close()
	for it.Next() {
		if lastEmit == math.MinInt64 || !p.due(it.End(), lastEmit) {
			p.track(it.Key(), it.Start(), it.End())
		}
	}
	return it.Err()
}

// popDue calls emit with each window due at closeTime, in order, removing
// it, until emit returns false. It returns how many it emitted.
func (p *pendingIndex) popDue(closeTime int64, emit func(w pendingWin) bool) int {
	n := 0
	for {
		w, ok := p.tree.Min()
		if !ok || !p.due(w.end, closeTime) {
			return n
		}
		p.tree.DeleteMin()
		n++
		if !emit(w) {
			return n
		}
	}
}
