package memory

import (
	"bytes"
	"fmt"

	"github.com/google/btree"

	"github.com/streamwork-go/streamwork/state"
)

// Batch sizes: an iterator copies items out of the tree in batches, which
// grow from minBatch to maxBatch so short scans stay cheap and long ones
// re-seek rarely.
const (
	minBatch = 8
	maxBatch = 256
)

// iterator pulls items from a snapshot in batches: the B-tree only offers
// callback iteration, and a batch re-seeks once per maxBatch items instead
// of needing a goroutine or a coroutine.
type iterator struct {
	s    *Store
	tree *btree.BTreeG[item]
	next []byte // seek key of the next batch
	skip bool   // skip an item equal to next (it was the last one returned)
	end  []byte // exclusive upper bound; nil for none
	buf  []item
	pos  int
	done bool // no more items after buf
	err  error
	shut bool // Close was called
}

func (s *Store) newIterator(from, to []byte) state.Iterator {
	tree := s.snapshot() // panics with ErrClosed if closed
	if to != nil && bytes.Compare(from, to) >= 0 {
		return state.Empty(nil)
	}
	return &iterator{
		s:    s,
		tree: tree,
		next: bytes.Clone(from),
		end:  bytes.Clone(to),
		pos:  -1,
	}
}

// Next advances to the next pair.
func (it *iterator) Next() bool {
	if it.shut || it.err != nil {
		return false
	}
	if it.s.closed.Load() {
		it.stop(fmt.Errorf("%w: %s: iterator stopped", state.ErrClosed, it.s.name))
		return false
	}
	it.pos++
	if it.pos < len(it.buf) {
		return true
	}
	if it.done {
		it.stop(nil)
		return false
	}
	it.fill()
	return it.pos < len(it.buf)
}

func (it *iterator) fill() {
	size := min(max(2*cap(it.buf), minBatch), maxBatch)
	if cap(it.buf) < size {
		it.buf = make([]item, 0, size)
	}
	it.buf, it.pos = it.buf[:0], 0
	full := false
	it.tree.AscendGreaterOrEqual(item{key: it.next}, func(x item) bool {
		if it.skip && bytes.Equal(x.key, it.next) {
			return true
		}
		if it.end != nil && bytes.Compare(x.key, it.end) >= 0 {
			return false
		}
		it.buf = append(it.buf, x)
		full = len(it.buf) == size
		return !full
	})
	it.done = !full
	if n := len(it.buf); n > 0 {
		it.next, it.skip = it.buf[n-1].key, true
	}
}

// stop ends the iteration with err and drops the snapshot.
func (it *iterator) stop(err error) {
	it.err, it.tree, it.buf, it.pos = err, nil, nil, 0
}

// Key returns the current key.
func (it *iterator) Key() []byte {
	if it.pos < 0 || it.pos >= len(it.buf) {
		return nil
	}
	return it.buf[it.pos].key
}

// Value returns the current value.
func (it *iterator) Value() []byte {
	if it.pos < 0 || it.pos >= len(it.buf) {
		return nil
	}
	return it.buf[it.pos].value
}

// Err returns the error that stopped the iteration.
func (it *iterator) Err() error { return it.err }

// Close releases the snapshot and returns Err.
func (it *iterator) Close() error {
	if !it.shut {
		it.shut = true
		it.tree, it.buf = nil, nil
	}
	return it.err
}
