package state

import (
	"fmt"
	"math"
	"time"
)

// WindowStore keeps one value per key and window start (or, with
// RetainDuplicates, several), over a byte-level Store: the state of
// windowed aggregations and, with duplicates, of stream-stream joins. Kafka
// Streams' WindowStore, with Put and the fetches of its ReadOnlyWindowStore.
//
// Keys and values are bytes, as in Store; a nil value is Kafka's null.
// Times are milliseconds. Windows are kept by start: stream time is the
// greatest window start Put has seen, and a window is live while its start
// is greater than stream time minus the retention period. A Put for a window
// that is no longer live is dropped and reported; fetches never return a
// window that is no longer live; segments of expired windows are dropped
// with one Store.DeleteRange (see "Window and session stores" in the
// package doc for the layout and the segment rule).
//
// The store is a layer: it keeps its data in the Store it was opened on,
// whatever its engine and whatever wrappers (changelog, cache) sit in
// between, and only stream time, the segment it last expired and, with
// duplicates, the next sequence number in memory. Open it with
// NewWindowStore over a store that holds only its keys, after the store is
// restored; open a new one whenever the store's contents are replaced.
//
// Concurrency and lifetime are the Store's: one goroutine calls Put, any
// number read concurrently, and using it after the store is closed panics
// with ErrClosed.
type WindowStore interface {
	// Name returns the name of the underlying store.
	Name() string

	// Put sets the value of key's window starting at windowStart. A nil
	// value deletes it; with RetainDuplicates, a nil value is ignored (as in
	// Kafka Streams) and every other Put adds a value after those already
	// there. Put first advances stream time to windowStart if it is later,
	// dropping the segments that expire. It reports dropped, and writes
	// nothing, when the window is no longer live: windowStart <= stream
	// time - retention. The store copies key and value.
	Put(key []byte, windowStart int64, value []byte) (dropped bool, err error)

	// Fetch returns a copy of the value of key's window starting at
	// windowStart, or nil, nil if there is none or it is no longer live.
	// With RetainDuplicates it returns the first value put.
	Fetch(key []byte, windowStart int64) ([]byte, error)

	// FetchRange returns key's live windows with a start in [fromStart,
	// toStart], ascending by start (and by insertion with
	// RetainDuplicates).
	FetchRange(key []byte, fromStart, toStart int64) WindowIterator

	// BackwardFetchRange is FetchRange in descending order.
	BackwardFetchRange(key []byte, fromStart, toStart int64) WindowIterator

	// FetchAll returns the live windows of every key with a start in
	// [fromStart, toStart], ordered as Kafka Streams orders them: by
	// segment (the window start divided by the segment interval, rounded
	// down), then by key bytes, then by start (then by insertion, with
	// RetainDuplicates). Windows of one key come in start order; windows
	// of different keys are in start order only across segments.
	FetchAll(fromStart, toStart int64) WindowIterator

	// BackwardFetchAll is FetchAll in exactly the reverse order.
	BackwardFetchAll(fromStart, toStart int64) WindowIterator

	// All returns every live window, in FetchAll's order.
	All() WindowIterator

	// BackwardAll returns every live window in the reverse order.
	BackwardAll() WindowIterator

	// StreamTime returns the greatest window start Put has seen (or that
	// the store held when it was opened), math.MinInt64 before any.
	StreamTime() int64

	// Config returns the store's configuration, with the segment interval
	// resolved.
	Config() WindowStoreConfig

	// Store returns the underlying byte-level store.
	Store() Store
}

// WindowStoreConfig configures a WindowStore. Durations are whole numbers
// of milliseconds.
type WindowStoreConfig struct {
	// Retention is how long windows are kept: a window is dropped once
	// stream time passes its start by Retention. Required; at least
	// WindowSize + Grace, so a window is kept until it can no longer
	// change.
	Retention time.Duration

	// WindowSize is the size of the windows: iterators report End as start
	// plus WindowSize. Required.
	WindowSize time.Duration

	// Grace is how long after a window ends records may still update it.
	// Only Validate uses it.
	Grace time.Duration

	// SegmentInterval is the span of window starts filed under one segment,
	// the unit in which expired windows are dropped. 0 means the greater
	// of Retention/2 and DefaultMinSegmentInterval, Kafka Streams' default,
	// so that at most three segments are live. It is part of the stored
	// layout: reopening a store with another interval fails with
	// ErrCorruptWindowKey. Retention/SegmentInterval may be at most
	// MaxLiveSegments.
	SegmentInterval time.Duration

	// RetainDuplicates keeps every value put for a key and window start, in
	// insertion order, instead of the last: the window store of a
	// stream-stream join. It is part of the stored layout too.
	RetainDuplicates bool
}

// Validate reports a configuration that NewWindowStore would refuse, with
// an error wrapping ErrWindowConfig.
func (c WindowStoreConfig) Validate() error {
	_, _, err := c.resolve()
	return err
}

func (c WindowStoreConfig) resolve() (ret, ival int64, err error) {
	switch {
	case c.WindowSize <= 0:
		return 0, 0, fmt.Errorf("%w: WindowSize %v must be positive", ErrWindowConfig, c.WindowSize)
	case c.Grace < 0:
		return 0, 0, fmt.Errorf("%w: Grace %v is negative", ErrWindowConfig, c.Grace)
	case c.WindowSize > math.MaxInt64-c.Grace:
		return 0, 0, fmt.Errorf("%w: WindowSize %v plus Grace %v overflows", ErrWindowConfig, c.WindowSize, c.Grace)
	}
	if _, err := toMillis("WindowSize", c.WindowSize); err != nil {
		return 0, 0, err
	}
	if _, err := toMillis("Grace", c.Grace); err != nil {
		return 0, 0, err
	}
	return segmentConfig(c.Retention, c.SegmentInterval, c.WindowSize+c.Grace, "WindowSize + Grace")
}

// windowStore is the WindowStore over a Store.
type windowStore struct {
	segmented
	cfg  WindowStoreConfig
	size int64
	dups bool
}

// NewWindowStore opens a window store over s, which must hold nothing but
// the keys of a window store with the same configuration (or nothing). It
// validates cfg (errors wrap ErrWindowConfig), checks the store's keys
// (ErrCorruptWindowKey), recovers stream time from the stored windows and
// drops expired segments. Recovery reads the newest segment in full; with
// RetainDuplicates and no record of the next sequence number (see the
// package doc), every key.
func NewWindowStore(s Store, cfg WindowStoreConfig) (WindowStore, error) {
	ret, ival, err := cfg.resolve()
	if err != nil {
		return nil, err
	}
	cfg.SegmentInterval = time.Duration(ival) * time.Millisecond
	w := &windowStore{cfg: cfg, size: cfg.WindowSize.Milliseconds(), dups: cfg.RetainDuplicates}
	w.s, w.retention, w.interval, w.tag = s, ret, ival, tagWindow
	if w.dups {
		w.tag = tagWindowDups
	}
	if err := w.open(); err != nil {
		return nil, fmt.Errorf("state: window store %q: %w", s.Name(), err)
	}
	return w, nil
}

// Name implements WindowStore.Name.
func (w *windowStore) Name() string { return w.s.Name() }

// Store implements WindowStore.Store.
func (w *windowStore) Store() Store { return w.s }

// Config implements WindowStore.Config.
func (w *windowStore) Config() WindowStoreConfig { return w.cfg }

// StreamTime implements WindowStore.StreamTime.
func (w *windowStore) StreamTime() int64 { return w.streamTime.Load() }

// Put implements WindowStore.Put.
func (w *windowStore) Put(key []byte, start int64, value []byte) (bool, error) {
	if value == nil && w.dups {
		checkOpen(w.s)
		return false, nil
	}
	prev, st := w.observe(start)
	if start < w.minLive(st) {
		checkOpen(w.s)
		return true, nil
	}
	if err := w.expire(st); err != nil {
		return false, err
	}
	if value == nil && start >= prev && st > w.metaSt {
		// Deleting the newest window: record stream time, which the
		// remaining windows may no longer tell.
		if err := w.writeMeta(st); err != nil {
			return false, err
		}
	}
	var seq int64
	if w.dups {
		if w.seq >= w.seqReserved {
			w.seqReserved = w.seq + seqBlock
			if err := w.writeMeta(st); err != nil {
				return false, err
			}
		}
		seq = w.seq
		w.seq++
	}
	w.buf = appendTimeKey(w.buf[:0], w.tag, w.segment(start), key, start, seq)
	return false, w.s.Put(w.buf, value)
}

// Fetch implements WindowStore.Fetch.
func (w *windowStore) Fetch(key []byte, start int64) ([]byte, error) {
	if lo, _ := w.live(start, start); lo != start {
		checkOpen(w.s)
		return nil, nil
	}
	if !w.dups {
		return w.s.Get(appendTimeKey(nil, w.tag, w.segment(start), key, start, 0))
	}
	p := appendInt64(appendKeyPrefix(nil, w.tag, w.segment(start), key), start)
	it := w.s.Prefix(p)
	defer it.Close()
	if !it.Next() {
		return nil, it.Close()
	}
	v := append([]byte{}, it.Value()...)
	return v, it.Close()
}

// FetchRange implements WindowStore.FetchRange.
func (w *windowStore) FetchRange(key []byte, from, to int64) WindowIterator {
	return w.fetchKey(key, from, to, false)
}

// BackwardFetchRange implements WindowStore.BackwardFetchRange.
func (w *windowStore) BackwardFetchRange(key []byte, from, to int64) WindowIterator {
	return w.fetchKey(key, from, to, true)
}

// fetchKey scans key's range in each live segment between from and to:
// exact bounds, so nothing is filtered. The segments are in start order, so
// their ranges are concatenated.
func (w *windowStore) fetchKey(key []byte, from, to int64, backward bool) WindowIterator {
	lo, hi := w.live(from, to)
	if lo > hi {
		checkOpen(w.s)
		return emptyWindows{}
	}
	var srcs []source
	for seg, last := w.segment(lo), w.segment(hi); ; seg++ {
		p := appendKeyPrefix(nil, w.tag, seg, key)
		start := appendInt64(p, lo)
		end := PrefixEnd(appendInt64(p[:len(p):len(p)], hi))
		if backward {
			srcs = append(srcs, newRevSource(w.s, start, end))
		} else {
			srcs = append(srcs, fwdSource{w.s.Range(start, end)})
		}
		if seg == last {
			break
		}
	}
	if backward {
		for i, j := 0, len(srcs)-1; i < j; i, j = i+1, j-1 {
			srcs[i], srcs[j] = srcs[j], srcs[i]
		}
	}
	return &timeIter{tag: w.tag, srcs: srcs, backward: backward, winSize: w.size}
}

// FetchAll implements WindowStore.FetchAll.
func (w *windowStore) FetchAll(from, to int64) WindowIterator { return w.fetchAll(from, to, false) }

// BackwardFetchAll implements WindowStore.BackwardFetchAll.
func (w *windowStore) BackwardFetchAll(from, to int64) WindowIterator {
	return w.fetchAll(from, to, true)
}

// All implements WindowStore.All.
func (w *windowStore) All() WindowIterator {
	return w.fetchAll(math.MinInt64, math.MaxInt64, false)
}

// BackwardAll implements WindowStore.BackwardAll.
func (w *windowStore) BackwardAll() WindowIterator {
	return w.fetchAll(math.MinInt64, math.MaxInt64, true)
}

// fetchAll scans the segments between from and to in one range, keeping
// the windows that start in [lo, hi].
func (w *windowStore) fetchAll(from, to int64, backward bool) WindowIterator {
	lo, hi := w.live(from, to)
	if lo > hi {
		checkOpen(w.s)
		return emptyWindows{}
	}
	start, end := w.segStart(w.segment(lo)), w.segEnd(w.segment(hi))
	var src source
	if backward {
		src = newRevSource(w.s, start, end)
	} else {
		src = fwdSource{w.s.Range(start, end)}
	}
	keep := func(k *timeKey) bool { return k.a >= lo && k.a <= hi }
	return &timeIter{tag: w.tag, srcs: []source{src}, backward: backward, keep: keep, winSize: w.size}
}
