package cache

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/streamwork-go/streamwork/state"
)

// EntryOverhead is what one cache entry costs besides its key and
// value bytes (entry struct, map slot, list links), counted against
// CacheMaxBytes.
const EntryOverhead = 96

// Budget is the record-cache memory of one worker (CacheMaxBytes
// divided by the number of workers), shared by the caches of all its
// tasks, as Kafka Streams' ThreadCache is. It is used only by the goroutine
// that holds the worker's mu (the test driver's goroutine in tests).
type Budget struct {
	// Max is the budget in bytes; 0 disables caching.
	Max int64
	// Used is what the caches of the budget hold now.
	Used int64
}

// Host is the task a cache belongs to: the cache reads and sets the
// timestamp of the record being processed (a flushed entry is written to
// the store below, and so to its changelog, with its own timestamp), and
// hands flushed entries to the task, which calls the listener as the node
// that registered it.
type Host interface {
	// Timestamp returns the timestamp (ms) of the current record.
	Timestamp() int64
	// SetTimestamp sets the timestamp of the current record.
	SetTimestamp(ts int64)
	// Failed reports whether the current record failed downstream.
	Failed() bool
	// Emit calls fn as node owner at time ts.
	Emit(owner string, fn Listener, key, newValue, oldValue []byte, ts int64)
}

// Listener receives what a cache flushes: the key, its new value (nil:
// deleted), the store's value before the flush, and the timestamp of the
// key's last update.
type Listener func(key, newValue, oldValue []byte, ts int64)

// cacheEntry is one cached key: its latest value (nil: deleted) and the
// timestamp of its latest update. A dirty entry is not in the store yet; a
// clean one holds what the store holds (it was flushed). Values are never
// modified in place: an update replaces the slice, so readers may keep one.
type cacheEntry struct {
	key   string
	value []byte
	ts    int64
	dirty bool
	// prev, next link every entry, least recently written first (the
	// eviction order); dprev, dnext link the dirty ones, in the same
	// order (the flush order).
	prev, next   *cacheEntry
	dprev, dnext *cacheEntry
}

func (e *cacheEntry) size() int64 {
	return int64(len(e.key)+len(e.value)) + EntryOverhead
}

// Store is a record cache in front of a store (the changelogging
// store, or the engine store): writes land in the cache and reach the
// store, the changelog and the flush listener only when the cache flushes
// them. A flushed key stays cached, clean, so its next read and update
// find it without reading the store (as Kafka Streams' NamedCache keeps
// flushed entries); a clean entry leaves when it is evicted. Entries are
// kept in least-recently-written order (a write moves its key to the
// back); flushing (dirty entries) and eviction (all) go front to back.
//
// Whatever changes the store below other than through the cache (a wipe
// and restore: SetInner) must drop the clean entries with it.
//
// Goroutines and locks: the task's goroutine writes and flushes;
// interactive queries read concurrently. mu guards the entries and their
// list, and is a leaf: it is never held while calling the store below or a
// listener. A flush writes a key to the store before it removes the key
// from the cache, so a reader always finds the latest value in one of the
// two.
type Store struct {
	name     string
	inner    state.Store
	t        Host
	budget   *Budget
	owner    string // the node that registered listener
	listener Listener
	// oldValues: the listener is given the store's value before each
	// flushed update, read from the store (else only for deletes).
	oldValues bool
	bytes     int64 // this cache's part of budget.Used; task goroutine only

	mu struct {
		sync.Mutex
		entries      map[string]*cacheEntry
		head, tail   *cacheEntry // every entry
		dhead, dtail *cacheEntry // the dirty entries
		dirty        int
	}
}

var _ state.Store = (*Store)(nil)

// New returns a cache named name in front of inner, for task t, counted
// against budget.
func New(name string, inner state.Store, t Host, budget *Budget) *Store {
	c := &Store{name: name, inner: inner, t: t, budget: budget}
	c.mu.entries = make(map[string]*cacheEntry)
	return c
}

// Name returns the store's name.
func (c *Store) Name() string { return c.name }

// Get returns the cached value of key if it is cached, else the store's.
func (c *Store) Get(key []byte) ([]byte, error) {
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
func (c *Store) Put(key, value []byte) error {
	v := bytes.Clone(value)
	ts := c.t.Timestamp()
	c.mu.Lock()
	e, ok := c.mu.entries[string(key)]
	var delta int64
	if ok {
		delta = int64(len(v) - len(e.value))
		e.value, e.ts = v, ts
		c.unlinkLocked(e)
		if e.dirty {
			c.unlinkDirtyLocked(e)
		}
	} else {
		e = &cacheEntry{key: string(key), value: v, ts: ts}
		c.mu.entries[e.key] = e
		delta = e.size()
	}
	c.appendLocked(e)
	c.appendDirtyLocked(e)
	c.mu.Unlock()
	c.bytes += delta
	c.budget.Used += delta
	return c.evict()
}

// Delete caches the deletion of key.
func (c *Store) Delete(key []byte) error { return c.Put(key, nil) }

// Range returns the pairs in [from, to) of the cache and the store merged,
// the cache's winning.
func (c *Store) Range(from, to []byte) state.Iterator {
	if to != nil && bytes.Compare(from, to) >= 0 {
		return state.Empty(nil)
	}
	return c.merged(from, to, func() state.Iterator { return c.inner.Range(from, to) })
}

// Prefix returns the pairs whose keys start with prefix.
func (c *Store) Prefix(prefix []byte) state.Iterator {
	return c.merged(prefix, state.PrefixEnd(prefix), func() state.Iterator { return c.inner.Prefix(prefix) })
}

// All returns every pair.
func (c *Store) All() state.Iterator {
	return c.merged(nil, nil, c.inner.All)
}

// merged snapshots the dirty entries in [from, to) and opens the store's
// iterator while holding mu, so no flush writes an entry in between. Clean
// entries are in the store already.
func (c *Store) merged(from, to []byte, open func() state.Iterator) state.Iterator {
	c.mu.Lock()
	var snap []cacheEntry
	for e := c.mu.dhead; e != nil; e = e.dnext {
		k := e.key
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
func (c *Store) ApproximateCount() int64 {
	c.mu.Lock()
	n := int64(c.mu.dirty)
	c.mu.Unlock()
	return c.inner.ApproximateCount() + n
}

// Flush makes the store's writes durable. It does not flush the cache: the
// runtime does that (FlushAll) before every commit.
func (c *Store) Flush() error { return c.inner.Flush() }

// Close closes the store below. Cached entries, dirty or not, are dropped.
func (c *Store) Close() error {
	c.Drop()
	return c.inner.Close()
}

// Drop forgets every entry, dirty or not, and returns their memory to the
// budget.
func (c *Store) Drop() {
	c.mu.Lock()
	clear(c.mu.entries)
	c.mu.head, c.mu.tail = nil, nil
	c.mu.dhead, c.mu.dtail, c.mu.dirty = nil, nil, 0
	c.mu.Unlock()
	c.budget.Used -= c.bytes
	c.bytes = 0
}

func (c *Store) appendLocked(e *cacheEntry) {
	e.prev, e.next = c.mu.tail, nil
	if c.mu.tail != nil {
		c.mu.tail.next = e
	} else {
		c.mu.head = e
	}
	c.mu.tail = e
}

func (c *Store) appendDirtyLocked(e *cacheEntry) {
	e.dirty = true
	c.mu.dirty++
	e.dprev, e.dnext = c.mu.dtail, nil
	if c.mu.dtail != nil {
		c.mu.dtail.dnext = e
	} else {
		c.mu.dhead = e
	}
	c.mu.dtail = e
}

func (c *Store) unlinkDirtyLocked(e *cacheEntry) {
	if e.dprev != nil {
		e.dprev.dnext = e.dnext
	} else {
		c.mu.dhead = e.dnext
	}
	if e.dnext != nil {
		e.dnext.dprev = e.dprev
	} else {
		c.mu.dtail = e.dprev
	}
	e.dprev, e.dnext = nil, nil
	e.dirty = false
	c.mu.dirty--
}

// removeLocked takes e out of the cache; the caller returns its size to
// the budget.
func (c *Store) removeLocked(e *cacheEntry) {
	delete(c.mu.entries, e.key)
	c.unlinkLocked(e)
	if e.dirty {
		c.unlinkDirtyLocked(e)
	}
}

func (c *Store) unlinkLocked(e *cacheEntry) {
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

// evict removes this cache's least recently written entries, flushing
// the dirty ones first, while the worker's caches use more than their
// budget (as Kafka Streams evicts from the cache being written). It runs
// inside the processing of a record: a failure downstream stays in
// t.failure for that record's error handling.
func (c *Store) evict() error {
	for c.budget.Used > c.budget.Max {
		c.mu.Lock()
		e := c.mu.head
		c.mu.Unlock()
		if e == nil {
			return nil
		}
		if e.dirty {
			if err := c.flushEntry(e); err != nil {
				return err
			}
		}
		c.mu.Lock()
		live := c.mu.entries[e.key] == e
		if live {
			c.removeLocked(e)
		}
		c.mu.Unlock()
		if live {
			c.release(e)
		}
		if c.t.Failed() {
			return nil
		}
	}
	return nil
}

// release returns the memory of a removed entry to the budget.
func (c *Store) release(e *cacheEntry) {
	size := e.size()
	c.bytes -= size
	c.budget.Used -= size
}

// FlushAll flushes every dirty entry, front to back, calling after(), when
// not nil, after each; it stops at the first error. Entries dirtied by the
// listeners meanwhile wait for the next flush.
func (c *Store) FlushAll(after func() error) error {
	c.mu.Lock()
	todo := make([]*cacheEntry, 0, c.mu.dirty)
	for e := c.mu.dhead; e != nil; e = e.dnext {
		todo = append(todo, e)
	}
	c.mu.Unlock()
	for _, e := range todo {
		c.mu.Lock()
		live := c.mu.entries[e.key] == e && e.dirty
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

// flushEntry writes the dirty entry e through to the store (and so the
// changelog, with e's timestamp), marks it clean (a deleted key leaves the
// cache), then tells the listener. The store's value before is read only
// for a listener that wants old values, or for a delete (a key deleted
// that the store never had is not forwarded), as Kafka Streams' caching
// store reads it only with sendOldValues or for a delete.
func (c *Store) flushEntry(e *cacheEntry) error { return c.flushEntryTo(e, false) }

// ExpiryLogger is implemented by a store below a cache that records a
// change without applying it (the changelog store: it writes the changelog
// record only). DeleteRange uses it for the entries it flushes from the
// range it is about to delete: writing them to the store would only be
// undone by the range delete.
type ExpiryLogger interface {
	LogExpiring(key, value []byte)
}

// flushEntryTo writes e to the store below and tells the listener. With
// expiring (e's key is in a range about to be deleted) the store is not
// written: its changelog gets the record (ExpiryLogger), the listener hears
// of it as usual.
func (c *Store) flushEntryTo(e *cacheEntry, expiring bool) error {
	key := []byte(e.key)
	value, ts := e.value, e.ts
	var old []byte
	if c.listener != nil && (c.oldValues || value == nil) {
		var err error
		if old, err = c.inner.Get(key); err != nil {
			return fmt.Errorf("kstream: flush cache of store %q: %w", c.name, err)
		}
	}
	t := c.t
	prevTs := t.Timestamp()
	t.SetTimestamp(ts)
	var err error
	if !expiring {
		err = c.inner.Put(key, value)
	} else if l, ok := c.inner.(ExpiryLogger); ok {
		l.LogExpiring(key, value)
	}
	t.SetTimestamp(prevTs)
	if err != nil {
		return fmt.Errorf("kstream: flush cache of store %q: %w", c.name, err)
	}
	c.mu.Lock()
	if value == nil {
		c.removeLocked(e)
	} else {
		c.unlinkDirtyLocked(e)
	}
	c.mu.Unlock()
	if value == nil {
		c.release(e)
	}
	if c.listener != nil && (value != nil || old != nil) {
		if !c.oldValues {
			old = nil
		}
		t.Emit(c.owner, c.listener, key, value, old, ts)
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

// SetListener registers fn, of node owner, as the receiver of what the cache
// flushes, with the store's value before each update (see OldValues).
func (c *Store) SetListener(owner string, fn Listener) {
	c.owner, c.listener, c.oldValues = owner, fn, true
}

// OldValues sets whether the listener is given the store's value before
// each flushed update (true by default once a listener is set). Without,
// a flush reads the store only for deletes and the listener's oldValue is
// nil: what a node whose downstream never reads old values asks for
// (Kafka Streams' sendOldValues off).
func (c *Store) OldValues(on bool) { c.oldValues = on }

// SetInner replaces the store below the cache (after it was wiped and
// opened again). The dirty entries stay; the clean ones, copies of the
// old store's values, go.
func (c *Store) SetInner(st state.Store) {
	c.mu.Lock()
	var gone []*cacheEntry
	for e := c.mu.head; e != nil; e = e.next {
		if !e.dirty {
			gone = append(gone, e)
		}
	}
	for _, e := range gone {
		c.removeLocked(e)
	}
	c.mu.Unlock()
	for _, e := range gone {
		c.release(e)
	}
	c.inner = st
}

// Budget returns the budget the cache counts against.
func (c *Store) Budget() *Budget { return c.budget }

// Bytes returns what this cache's entries count against its budget.
func (c *Store) Bytes() int64 { return c.bytes }

// DeleteRange deletes the range [from, to) in the store below. The cached
// entries in it are flushed first, in key order, when the store has a
// listener (a window store expiring a segment: the last updates of its
// windows still go downstream, as Kafka Streams' caching window store
// forwards them, and to the changelog), and dropped otherwise. Those
// flushed entries are not written to the store below, which would delete
// them at once (on the W3 benchmark that write was 11 % of the CPU).
func (c *Store) DeleteRange(from, to []byte) error {
	if len(from) == 0 {
		from = nil
	}
	c.mu.Lock()
	var doomed, dirty []*cacheEntry
	for k, e := range c.mu.entries {
		if (from == nil || k >= string(from)) && (to == nil || k < string(to)) {
			doomed = append(doomed, e)
			if e.dirty {
				dirty = append(dirty, e)
			}
		}
	}
	c.mu.Unlock()
	if c.listener != nil && len(dirty) > 0 {
		slices.SortFunc(dirty, func(a, b *cacheEntry) int { return strings.Compare(a.key, b.key) })
		for _, e := range dirty {
			if err := c.flushEntryTo(e, true); err != nil {
				return err
			}
		}
	}
	c.mu.Lock()
	var gone []*cacheEntry
	for _, e := range doomed {
		if c.mu.entries[e.key] == e {
			c.removeLocked(e)
			gone = append(gone, e)
		}
	}
	c.mu.Unlock()
	for _, e := range gone {
		c.release(e)
	}
	return c.inner.DeleteRange(from, to)
}

// PutMeta writes a metadata record to the store below: metadata is not
// cached.
func (c *Store) PutMeta(name string, value []byte) error { return c.inner.PutMeta(name, value) }

// GetMeta reads a metadata record of the store below.
func (c *Store) GetMeta(name string) ([]byte, error) { return c.inner.GetMeta(name) }
