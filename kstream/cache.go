package kstream

import (
	"bytes"
	"fmt"
	"slices"
	"sync"

	"github.com/streamwork-go/streamwork/state"
)

// cacheEntryOverhead is what one cache entry costs besides its key and
// value bytes (entry struct, map slot, list links), counted against
// CacheMaxBytes.
const cacheEntryOverhead = 96

// cacheBudget is the record-cache memory of one worker (CacheMaxBytes
// divided by the number of workers), shared by the caches of all its
// tasks, as Kafka Streams' ThreadCache is. It is used only by the goroutine
// that holds the worker's mu (the test driver's goroutine in tests).
type cacheBudget struct {
	max  int64
	used int64
}

// cacheEntry is one dirty key: its latest value (nil: deleted) and the
// timestamp of its latest update. Values are never modified in place: an
// update replaces the slice, so readers may keep one.
type cacheEntry struct {
	key        string
	value      []byte
	ts         int64
	prev, next *cacheEntry
}

func (e *cacheEntry) size() int64 {
	return int64(len(e.key)+len(e.value)) + cacheEntryOverhead
}

// cachingStore is a record cache in front of a store (the changelogging
// store, or the engine store): writes land in the cache and reach the
// store, the changelog and the flush listener only when the cache flushes
// them. It keeps dirty keys only, in least-recently-written order (a write
// moves its key to the back); flushing and eviction go front to back.
//
// Goroutines and locks: the task's goroutine writes and flushes;
// interactive queries read concurrently. mu guards the entries and their
// list, and is a leaf: it is never held while calling the store below or a
// listener. A flush writes a key to the store before it removes the key
// from the cache, so a reader always finds the latest value in one of the
// two.
type cachingStore struct {
	name     string
	inner    state.Store
	t        *task
	budget   *cacheBudget
	owner    string // the node that registered listener
	listener flushListener
	bytes    int64 // this cache's part of budget.used; task goroutine only

	mu struct {
		sync.Mutex
		entries    map[string]*cacheEntry
		head, tail *cacheEntry
	}
}

var _ state.Store = (*cachingStore)(nil)

func newCachingStore(name string, inner state.Store, t *task, budget *cacheBudget) *cachingStore {
	c := &cachingStore{name: name, inner: inner, t: t, budget: budget}
	c.mu.entries = make(map[string]*cacheEntry)
	return c
}

// Name returns the store's name.
func (c *cachingStore) Name() string { return c.name }

// Get returns the cached value of key if it is dirty, else the store's.
func (c *cachingStore) Get(key []byte) ([]byte, error) {
	c.mu.Lock()
	if e, ok := c.mu.entries[string(key)]; ok {
		v := bytes.Clone(e.value)
		c.mu.Unlock()
		return v, nil
	}
	c.mu.Unlock()
	return c.inner.Get(key)
}

// Put caches key = value (nil value: deleted), then evicts while the
// worker's caches are over budget.
func (c *cachingStore) Put(key, value []byte) error {
	v := bytes.Clone(value)
	ts := c.t.curTs
	c.mu.Lock()
	e, ok := c.mu.entries[string(key)]
	var delta int64
	if ok {
		delta = int64(len(v) - len(e.value))
		e.value, e.ts = v, ts
		c.unlinkLocked(e)
	} else {
		e = &cacheEntry{key: string(key), value: v, ts: ts}
		c.mu.entries[e.key] = e
		delta = e.size()
	}
	c.appendLocked(e)
	c.mu.Unlock()
	c.bytes += delta
	c.budget.used += delta
	return c.evict()
}

// Delete caches the deletion of key.
func (c *cachingStore) Delete(key []byte) error { return c.Put(key, nil) }

// Range returns the pairs in [from, to) of the cache and the store merged,
// the cache's winning.
func (c *cachingStore) Range(from, to []byte) state.Iterator {
	if to != nil && bytes.Compare(from, to) >= 0 {
		return state.Empty(nil)
	}
	return c.merged(from, to, func() state.Iterator { return c.inner.Range(from, to) })
}

// Prefix returns the pairs whose keys start with prefix.
func (c *cachingStore) Prefix(prefix []byte) state.Iterator {
	return c.merged(prefix, state.PrefixEnd(prefix), func() state.Iterator { return c.inner.Prefix(prefix) })
}

// All returns every pair.
func (c *cachingStore) All() state.Iterator {
	return c.merged(nil, nil, c.inner.All)
}

// merged snapshots the dirty entries in [from, to) and opens the store's
// iterator while holding mu, so no flush removes an entry in between.
func (c *cachingStore) merged(from, to []byte, open func() state.Iterator) state.Iterator {
	c.mu.Lock()
	var snap []cacheEntry
	for k, e := range c.mu.entries {
		kb := []byte(k)
		if (len(from) > 0 && bytes.Compare(kb, from) < 0) || (to != nil && bytes.Compare(kb, to) >= 0) {
			continue
		}
		snap = append(snap, cacheEntry{key: k, value: e.value})
	}
	it := open()
	c.mu.Unlock()
	slices.SortFunc(snap, func(a, b cacheEntry) int { return compareStrings(a.key, b.key) })
	return &mergeIterator{cache: snap, store: it, storeOK: it.Next()}
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// ApproximateCount returns the store's estimate plus the dirty keys.
func (c *cachingStore) ApproximateCount() int64 {
	c.mu.Lock()
	n := int64(len(c.mu.entries))
	c.mu.Unlock()
	return c.inner.ApproximateCount() + n
}

// Flush makes the store's writes durable. It does not flush the cache: the
// runtime does that (flushAll) before every commit.
func (c *cachingStore) Flush() error { return c.inner.Flush() }

// Close closes the store below. Dirty entries are dropped.
func (c *cachingStore) Close() error {
	c.drop()
	return c.inner.Close()
}

// drop forgets every dirty entry and returns their memory to the budget.
func (c *cachingStore) drop() {
	c.mu.Lock()
	clear(c.mu.entries)
	c.mu.head, c.mu.tail = nil, nil
	c.mu.Unlock()
	c.budget.used -= c.bytes
	c.bytes = 0
}

func (c *cachingStore) appendLocked(e *cacheEntry) {
	e.prev, e.next = c.mu.tail, nil
	if c.mu.tail != nil {
		c.mu.tail.next = e
	} else {
		c.mu.head = e
	}
	c.mu.tail = e
}

func (c *cachingStore) unlinkLocked(e *cacheEntry) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		c.mu.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		c.mu.tail = e.prev
	}
	e.prev, e.next = nil, nil
}

// evict flushes this cache's least recently written entries while the
// worker's caches use more than their budget (as Kafka Streams evicts from
// the cache being written). It runs inside the processing of a record: a
// failure downstream stays in t.failure for that record's error handling.
func (c *cachingStore) evict() error {
	for c.budget.used > c.budget.max {
		c.mu.Lock()
		e := c.mu.head
		c.mu.Unlock()
		if e == nil {
			return nil
		}
		if err := c.flushEntry(e); err != nil {
			return err
		}
		if c.t.failure != nil {
			return nil
		}
	}
	return nil
}

// flushAll flushes every dirty entry, front to back, calling after(), when
// not nil, after each; it stops at the first error. Entries dirtied by the
// listeners meanwhile wait for the next flush.
func (c *cachingStore) flushAll(after func() error) error {
	c.mu.Lock()
	todo := make([]*cacheEntry, 0, len(c.mu.entries))
	for e := c.mu.head; e != nil; e = e.next {
		todo = append(todo, e)
	}
	c.mu.Unlock()
	for _, e := range todo {
		c.mu.Lock()
		live := c.mu.entries[e.key] == e
		c.mu.Unlock()
		if !live {
			continue
		}
		if err := c.flushEntry(e); err != nil {
			return err
		}
		if after != nil {
			if err := after(); err != nil {
				return err
			}
		}
	}
	return nil
}

// flushEntry writes e through to the store (and so the changelog, with
// e's timestamp), removes it from the cache, then tells the listener.
func (c *cachingStore) flushEntry(e *cacheEntry) error {
	key := []byte(e.key)
	value, ts := e.value, e.ts
	var old []byte
	if c.listener != nil {
		var err error
		if old, err = c.inner.Get(key); err != nil {
			return fmt.Errorf("kstream: flush cache of store %q: %w", c.name, err)
		}
	}
	t := c.t
	prevTs := t.curTs
	t.curTs = ts
	err := c.inner.Put(key, value)
	t.curTs = prevTs
	if err != nil {
		return fmt.Errorf("kstream: flush cache of store %q: %w", c.name, err)
	}
	c.mu.Lock()
	delete(c.mu.entries, e.key)
	c.unlinkLocked(e)
	c.mu.Unlock()
	size := e.size()
	c.bytes -= size
	c.budget.used -= size
	if c.listener != nil && (value != nil || old != nil) {
		t.emitFlushed(c.owner, c.listener, key, value, old, ts)
	}
	return nil
}

// emitFlushed calls a flush listener as the node owner, at time ts.
func (t *task) emitFlushed(owner string, fn flushListener, key, newValue, oldValue []byte, ts int64) {
	prevNode, prevTs := t.curNode, t.curTs
	t.curNode, t.curTs = owner, ts
	t.guardRecord(func() { fn(key, newValue, oldValue, ts) })
	t.curNode, t.curTs = prevNode, prevTs
}

// flushCaches flushes the record caches of the task's stores, in the
// topology's store order: each dirty key goes to its store and changelog,
// and its listener forwards it downstream. A failure downstream goes to the
// processing error handler as a failure without a record (like one in a
// punctuator); the error it returns when it says Fail, or a store's error,
// stops the flush.
func (t *task) flushCaches() error {
	if !t.started {
		return nil
	}
	t.failure = nil
	after := func() error {
		if t.failure != nil {
			return t.handleFailure(nil)
		}
		return nil
	}
	for _, ts := range t.stateStores {
		if ts.cache == nil {
			continue
		}
		if err := ts.cache.flushAll(after); err != nil {
			return err
		}
	}
	return nil
}

// mergeIterator merges a sorted snapshot of cache entries with a store
// iterator; on equal keys the cache's entry wins, and cached deletions
// hide the store's pair.
type mergeIterator struct {
	cache    []cacheEntry
	next     int // the next cache entry to consider
	store    state.Iterator
	storeOK  bool // store is positioned on a pair not yet returned
	key, val []byte
	closed   bool
}

func (m *mergeIterator) Next() bool {
	if m.closed {
		return false
	}
	for {
		var ce *cacheEntry
		if m.next < len(m.cache) {
			ce = &m.cache[m.next]
		}
		switch {
		case ce == nil && !m.storeOK:
			m.key, m.val = nil, nil
			return false
		case ce == nil:
			// Key and Value of the store iterator stay valid only until
			// its next Next: copy.
			m.key, m.val = bytes.Clone(m.store.Key()), bytes.Clone(m.store.Value())
			m.storeOK = m.store.Next()
			return true
		}
		c := -1 // the store is done: the cache's entry comes first
		if m.storeOK {
			c = bytes.Compare([]byte(ce.key), m.store.Key())
		}
		if c > 0 {
			m.key, m.val = bytes.Clone(m.store.Key()), bytes.Clone(m.store.Value())
			m.storeOK = m.store.Next()
			return true
		}
		m.next++
		if c == 0 {
			m.storeOK = m.store.Next()
		}
		if ce.value == nil {
			continue // deleted in the cache
		}
		m.key, m.val = []byte(ce.key), ce.value
		return true
	}
}

func (m *mergeIterator) Key() []byte   { return m.key }
func (m *mergeIterator) Value() []byte { return m.val }
func (m *mergeIterator) Err() error    { return m.store.Err() }

func (m *mergeIterator) Close() error {
	m.closed = true
	return m.store.Close()
}
