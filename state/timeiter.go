package state

import (
	"bytes"
	"container/heap"
	"errors"
	"fmt"
)

// WindowIterator walks the windows of a WindowStore or the sessions of a
// SessionStore, pull style like Iterator:
//
//	it := ws.FetchRange(key, from, to)
//	for it.Next() {
//		use(it.Key(), it.Start(), it.Value())
//	}
//	if err := it.Close(); err != nil { ... }
//
// Key and Value are valid until the next call to Next or Close and must not
// be modified. Err reports the error that ended the iteration (such as
// ErrCorruptWindowKey, or ErrClosed when the store closed under it) and
// stays readable after Close; Close releases the iterator, returns Err and
// is idempotent. An iterator is not safe for concurrent use.
//
// Snapshots: a forward iterator opens its store iterators (one per segment
// it spans, or one for a scan over all keys) when it is created, each a
// snapshot of the store at that moment. A backward iterator re-reads the
// store in chunks as it goes, because Store iterators only go forward: it
// may see writes made after it was created, but never returns a window
// twice or out of order.
type WindowIterator interface {
	// Next advances to the next window and reports whether there is one.
	Next() bool
	// Key returns the user key of the current window.
	Key() []byte
	// Start returns the start of the current window (or session), in
	// milliseconds.
	Start() int64
	// End returns the end of the current window: Start plus the window
	// size for window stores (saturating at math.MaxInt64), the session end
	// for session stores. Window ends are exclusive, session ends
	// inclusive, as in Kafka Streams.
	End() int64
	// Value returns the value of the current window.
	Value() []byte
	// Err returns the error that stopped the iteration early, or nil.
	Err() error
	// Close releases the iterator and returns Err.
	Close() error
}

// source is one ordered stream of store pairs: a forward store iterator or
// a backward scan.
type source interface {
	next() bool
	key() []byte
	value() []byte
	err() error
	close() error
}

// fwdSource is a forward store iterator.
type fwdSource struct{ it Iterator }

func (f fwdSource) next() bool    { return f.it.Next() }
func (f fwdSource) key() []byte   { return f.it.Key() }
func (f fwdSource) value() []byte { return f.it.Value() }
func (f fwdSource) err() error    { return f.it.Err() }
func (f fwdSource) close() error  { return f.it.Close() }

// Batch sizes of a backward scan: each pass keeps the last batch pairs
// before its upper bound, growing from minRevBatch to maxRevBatch pairs so
// that short scans stay cheap and long ones take few passes. Memory is
// bounded by maxRevBatch pairs; a range of n pairs costs about
// n*n/(2*maxRevBatch) pairs read when n is much larger than maxRevBatch.
const (
	minRevBatch = 64
	maxRevBatch = 4096
)

type pair struct{ k, v []byte }

// revSource yields the pairs of [lo, hi) in descending key order by
// scanning forward in passes: each pass reads [lo, hi) and keeps its last
// batch pairs in a ring, returns them backward, then moves hi down to the
// first of them. The first pass runs when the source is created.
type revSource struct {
	s      Store
	lo, hi []byte // hi nil: no upper bound
	batch  int
	ring   []pair
	start  int // ring index of the first (smallest) pair kept
	n      int // pairs kept
	pos    int // position of the current pair, from n-1 down to 0; n before
	final  bool
	e      error
}

func newRevSource(s Store, lo, hi []byte) *revSource {
	r := &revSource{s: s, lo: lo, hi: hi, batch: minRevBatch}
	r.fill() // panics with ErrClosed if s is closed
	return r
}

func (r *revSource) at(i int) *pair { return &r.ring[(r.start+i)%len(r.ring)] }

func (r *revSource) next() bool {
	for r.e == nil {
		if r.pos > 0 {
			r.pos--
			return true
		}
		if r.final {
			return false
		}
		// This pass is used up: the next one continues below its first
		// pair. A store closed since is an error, as for any iterator.
		r.hi = append(r.hi[:0:0], r.at(0).k...)
		r.batch = min(2*r.batch, maxRevBatch)
		func() {
			defer func() {
				if p := recover(); p != nil {
					err, _ := p.(error)
					if !errors.Is(err, ErrClosed) {
						panic(p)
					}
					r.e = fmt.Errorf("%w: %s: iterator stopped", ErrClosed, r.s.Name())
				}
			}()
			r.fill()
		}()
	}
	return false
}

// fill runs one pass.
func (r *revSource) fill() {
	if len(r.ring) < r.batch {
		r.ring = append(r.ring, make([]pair, r.batch-len(r.ring))...)
	}
	size := r.batch
	it := r.s.Range(r.lo, r.hi)
	count := 0
	for it.Next() {
		p := &r.ring[count%size]
		p.k = append(p.k[:0], it.Key()...)
		p.v = append(p.v[:0], it.Value()...)
		count++
	}
	if err := it.Close(); err != nil {
		r.e, r.n, r.pos = err, 0, 0
		return
	}
	r.n, r.start, r.final = min(count, size), 0, count <= size
	if count > size {
		r.start = count % size
	}
	r.pos = r.n
}

func (r *revSource) key() []byte   { return r.at(r.pos).k }
func (r *revSource) value() []byte { return r.at(r.pos).v }
func (r *revSource) err() error    { return r.e }
func (r *revSource) close() error {
	r.ring, r.n, r.pos, r.final = nil, 0, 0, true
	return r.e
}

// timeIter is the WindowIterator of both stores. Its sources are either
// concatenated (each after the previous, for ranges already in order) or
// merged by the key bytes after tag|segment, so that pairs from different
// segments come in user key and timestamp order.
type timeIter struct {
	tag      byte
	srcs     []source
	merge    bool
	backward bool
	keep     func(*timeKey) bool // nil: keep every window
	winSize  int64               // window stores: End is Start plus it
	session  bool

	started bool
	cur     source // the source of the current pair; in no heap
	i       int    // concatenation: index of the current source
	heap    srcHeap
	k       timeKey
	ukey    []byte
	err     error
	closed  bool
}

// srcHeap orders merged sources by their current key without the segment.
type srcHeap struct {
	s        []source
	backward bool
}

// Len implements heap.Interface.
func (h *srcHeap) Len() int { return len(h.s) }

// Less implements heap.Interface.
func (h *srcHeap) Less(i, j int) bool {
	c := bytes.Compare(h.s[i].key()[segPrefixLen:], h.s[j].key()[segPrefixLen:])
	if h.backward {
		return c > 0
	}
	return c < 0
}

// Swap implements heap.Interface.
func (h *srcHeap) Swap(i, j int) { h.s[i], h.s[j] = h.s[j], h.s[i] }

// Push implements heap.Interface.
func (h *srcHeap) Push(x any) { h.s = append(h.s, x.(source)) }

// Pop implements heap.Interface.
func (h *srcHeap) Pop() any {
	x := h.s[len(h.s)-1]
	h.s = h.s[:len(h.s)-1]
	return x
}

// Next advances to the next window that keep accepts.
func (it *timeIter) Next() bool {
	if it.closed || it.err != nil {
		return false
	}
	for {
		src := it.advance()
		if src == nil {
			return false
		}
		k, err := decodeTimeKey(src.key(), it.tag)
		if err != nil {
			it.err = err
			return false
		}
		if it.keep != nil && !it.keep(&k) {
			continue
		}
		it.k = k
		it.ukey = appendUnescaped(it.ukey[:0], k.esc)
		return true
	}
}

// advance moves to the next pair of the sources and returns its source, or
// nil at the end or on an error (in it.err).
func (it *timeIter) advance() source {
	if !it.merge {
		if !it.started {
			it.started = true
			it.i = 0
		}
		for it.i < len(it.srcs) {
			s := it.srcs[it.i]
			if s.next() {
				return s
			}
			if it.err = s.err(); it.err != nil {
				return nil
			}
			it.i++
		}
		return nil
	}
	if !it.started {
		it.started = true
		it.heap.backward = it.backward
		for _, s := range it.srcs {
			if s.next() {
				it.heap.s = append(it.heap.s, s)
			} else if it.err = s.err(); it.err != nil {
				return nil
			}
		}
		heap.Init(&it.heap)
	} else if it.cur != nil {
		if it.cur.next() {
			heap.Push(&it.heap, it.cur)
		} else if it.err = it.cur.err(); it.err != nil {
			return nil
		}
		it.cur = nil
	}
	if it.heap.Len() == 0 {
		return nil
	}
	it.cur = heap.Pop(&it.heap).(source)
	return it.cur
}

func (it *timeIter) current() source {
	if it.merge {
		return it.cur
	}
	if it.i < len(it.srcs) {
		return it.srcs[it.i]
	}
	return nil
}

// Key returns the current user key.
func (it *timeIter) Key() []byte { return it.ukey }

// Start returns the current window or session start.
func (it *timeIter) Start() int64 { return it.k.a }

// End returns the current window or session end.
func (it *timeIter) End() int64 {
	if it.session {
		return it.k.b
	}
	if it.k.a > maxInt64-it.winSize {
		return maxInt64
	}
	return it.k.a + it.winSize
}

// Value returns the current value.
func (it *timeIter) Value() []byte {
	if s := it.current(); s != nil && it.started && !it.closed {
		return s.value()
	}
	return nil
}

// Err returns the error that stopped the iteration.
func (it *timeIter) Err() error { return it.err }

// Close closes the sources and returns Err.
func (it *timeIter) Close() error {
	if it.closed {
		return it.err
	}
	it.closed = true
	for _, s := range it.srcs {
		if err := s.close(); err != nil && it.err == nil {
			it.err = err
		}
	}
	it.srcs, it.heap.s, it.cur = nil, nil, nil
	return it.err
}

const maxInt64 = 1<<63 - 1

// checkOpen panics with ErrClosed if s is closed, as the stores' methods
// must, also when they return without reading s.
func checkOpen(s Store) { _ = s.Range(nil, []byte{}).Close() }

// emptyWindows is an exhausted WindowIterator.
type emptyWindows struct{}

func (emptyWindows) Next() bool    { return false }
func (emptyWindows) Key() []byte   { return nil }
func (emptyWindows) Start() int64  { return 0 }
func (emptyWindows) End() int64    { return 0 }
func (emptyWindows) Value() []byte { return nil }
func (emptyWindows) Err() error    { return nil }
func (emptyWindows) Close() error  { return nil }
