package pebble

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	pdb "github.com/cockroachdb/pebble/v2"

	"github.com/streamwork-go/streamwork/state"
)

// Store is a state.Store on a Pebble database, opened by Env.Open. It is
// safe for one writer and any number of concurrent readers (see
// state.Store): Pebble is goroutine-safe, and each iterator reads a
// consistent snapshot.
//
// Durability: the store has no write-ahead log. Writes sit in memtables
// until Pebble flushes them when they fill, or until Flush or Close; after a
// crash the unflushed writes are gone and the runtime restores them from the
// changelog, from the offset in the checkpoint it wrote before the last
// Flush. A Transactional store is the exception: see txn.go and Commit.
type Store struct {
	name     string
	dir      string // cleaned; the key in env.mu.stores
	env      *Env
	reserved uint64 // memtable bytes reserved in env
	opts     *pdb.Options
	db       *pdb.DB
	// wbuf is the writer's scratch buffer for prefixed keys (one writer:
	// see state.Store).
	wbuf []byte

	// unflushed counts puts minus deletes not yet in a flushed table;
	// flushing is its value when the running flush began. Together with
	// table properties they make ApproximateCount.
	unflushed, flushing atomic.Int64
	// metaRecords counts the metadata records, which ApproximateCount
	// leaves out.
	metaRecords atomic.Int64

	mu struct {
		// RLock for every operation, Lock for Close: an operation never
		// runs on a closed DB.
		sync.RWMutex
		closed bool
	}

	// iters holds the open iterators, which Close stops. Lock order: mu,
	// then iters, then an iterator's mu; an iterator's Close never holds
	// two of them.
	iters struct {
		sync.Mutex
		m map[*iterator]struct{}
	}

	// tx is the open transaction of a Transactional store (see txn.go).
	// on is set by Open before it returns the store and never changes
	// after; b, under mu, is nil after Close.
	tx struct {
		on bool
		mu sync.Mutex
		b  *txnBatch
	}
}

var (
	_ state.Store = (*Store)(nil)
	_ state.Sizer = (*Store)(nil)
)

// Name returns the store's name.
func (s *Store) Name() string { return s.name }

// Dir returns the store's directory.
func (s *Store) Dir() string { return s.dir }

// rlock read-locks s.mu and panics with state.ErrClosed if s is closed.
func (s *Store) rlock() {
	s.mu.RLock()
	if s.mu.closed {
		s.mu.RUnlock()
		panic(state.ErrClosed)
	}
}

// Get returns a copy of the value of key, or nil, nil if key is absent.
func (s *Store) Get(key []byte) ([]byte, error) {
	s.rlock()
	defer s.mu.RUnlock()
	kb := getKeyBuf()
	defer putKeyBuf(kb)
	*kb = append(append((*kb)[:0], dataPrefix), key...)
	return s.readLocked(*kb, "get")
}

// readLocked reads the raw key k, through the open transaction of a
// transactional store; s.mu is read-locked.
func (s *Store) readLocked(k []byte, op string) ([]byte, error) {
	if s.tx.on {
		return s.txnGet(k, op)
	}
	return s.getLocked(k, op)
}

// getLocked reads the raw key k (prefix included); s.mu is read-locked.
func (s *Store) getLocked(k []byte, op string) ([]byte, error) {
	v, closer, err := s.db.Get(k)
	if errors.Is(err, pdb.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, s.wrap(op, err)
	}
	out := append(make([]byte, 0, len(v)), v...)
	if err := closer.Close(); err != nil {
		return nil, s.wrap(op, err)
	}
	return out, nil
}

// Put sets key to value; a nil value deletes key. It does not sync: see
// Flush.
func (s *Store) Put(key, value []byte) error {
	if value == nil {
		return s.Delete(key)
	}
	s.rlock()
	defer s.mu.RUnlock()
	s.wbuf = append(append(s.wbuf[:0], dataPrefix), key...)
	if s.tx.on {
		return s.txnWrite("put", 1, func(b *pdb.Batch) error { return b.Set(s.wbuf, value, nil) })
	}
	if err := s.db.Set(s.wbuf, value, pdb.NoSync); err != nil {
		return s.wrap("put", err)
	}
	s.unflushed.Add(1)
	return nil
}

// Delete removes key.
func (s *Store) Delete(key []byte) error {
	s.rlock()
	defer s.mu.RUnlock()
	s.wbuf = append(append(s.wbuf[:0], dataPrefix), key...)
	if s.tx.on {
		return s.txnWrite("delete", -1, func(b *pdb.Batch) error { return b.Delete(s.wbuf, nil) })
	}
	if err := s.db.Delete(s.wbuf, pdb.NoSync); err != nil {
		return s.wrap("delete", err)
	}
	s.unflushed.Add(-1)
	return nil
}

// DeleteRange removes the keys in [from, to) with one range tombstone.
func (s *Store) DeleteRange(from, to []byte) error {
	s.rlock()
	defer s.mu.RUnlock()
	if to != nil && bytes.Compare(from, to) >= 0 {
		return nil
	}
	lo, hi := dataBounds(from, to)
	if s.tx.on {
		return s.txnWrite("delete range", 0, func(b *pdb.Batch) error { return b.DeleteRange(lo, hi, nil) })
	}
	if err := s.db.DeleteRange(lo, hi, pdb.NoSync); err != nil {
		return s.wrap("delete range", err)
	}
	return nil
}

// PutMeta sets the metadata record name (nil deletes it), in the same
// write stream as the data: a Flush makes both durable together.
func (s *Store) PutMeta(name string, value []byte) error {
	s.rlock()
	defer s.mu.RUnlock()
	return s.putMetaLocked(name, value)
}

func (s *Store) putMetaLocked(name string, value []byte) error {
	k := metaKey(name)
	if s.tx.on {
		return s.txnPutMeta(k, value)
	}
	old, err := s.getLocked(k, "put meta")
	if err != nil {
		return err
	}
	switch {
	case old == nil && value != nil:
		s.metaRecords.Add(1)
	case old != nil && value == nil:
		s.metaRecords.Add(-1)
	}
	if value == nil {
		err = s.db.Delete(k, pdb.NoSync)
		s.unflushed.Add(-1)
	} else {
		err = s.db.Set(k, value, pdb.NoSync)
		s.unflushed.Add(1)
	}
	if err != nil {
		return s.wrap("put meta", err)
	}
	return nil
}

// GetMeta returns a copy of the metadata record name, or nil, nil.
func (s *Store) GetMeta(name string) ([]byte, error) {
	s.rlock()
	defer s.mu.RUnlock()
	return s.readLocked(metaKey(name), "get meta")
}

// wrap adds the store and the operation to err, and state.ErrCorrupt when
// Pebble found corruption.
func (s *Store) wrap(op string, err error) error {
	if pdb.IsCorruptionError(err) {
		return fmt.Errorf("state/pebble: store %q: %s: %w: %w", s.name, op, state.ErrCorrupt, err)
	}
	return fmt.Errorf("state/pebble: store %q: %s: %w", s.name, op, err)
}

// Range returns an iterator over [from, to); nil bounds are open.
func (s *Store) Range(from, to []byte) state.Iterator {
	return s.newIterator(from, to)
}

// Prefix returns an iterator over the keys starting with prefix. Its upper
// bound is state.PrefixEnd(prefix).
func (s *Store) Prefix(prefix []byte) state.Iterator {
	return s.newIterator(prefix, state.PrefixEnd(prefix))
}

// All returns an iterator over every key.
func (s *Store) All() state.Iterator {
	return s.newIterator(nil, nil)
}

// ApproximateBytes returns Pebble's own measure of the store's size: the
// bytes of its live tables (and blob files) on disk plus the memory of its
// memtables, which hold the writes not flushed yet.
func (s *Store) ApproximateBytes() int64 {
	s.rlock()
	defer s.mu.RUnlock()
	m := s.db.Metrics()
	return int64(m.Table.Local.LiveSize + m.BlobFiles.Local.LiveSize + m.MemTable.Size)
}

// ApproximateCount estimates the number of keys as RocksDB's
// estimate-num-keys does: the entries of the flushed tables less twice
// their deletions (a deletion hides an older entry), plus puts less deletes
// not yet flushed. Overwrites count twice until compaction merges them, and
// so on: it is an estimate. A transactional store counts its open
// transaction's puts less deletes too. It reads table properties, which are usually
// cached; call it for metrics and queries, not per record.
func (s *Store) ApproximateCount() int64 {
	s.rlock()
	defer s.mu.RUnlock()
	n := s.unflushed.Load() - s.metaRecords.Load()
	if s.tx.on {
		s.tx.mu.Lock()
		n += s.tx.b.delta - s.tx.b.metaDelta
		s.tx.mu.Unlock()
	}
	levels, err := s.db.SSTables(pdb.WithProperties())
	if err == nil {
		for _, tables := range levels {
			for _, t := range tables {
				if t.Properties != nil {
					n += int64(t.Properties.NumEntries) - 2*int64(t.Properties.NumDeletions)
				}
			}
		}
	}
	return max(n, 0)
}

// Flush writes the memtables to table files and waits until they are
// durable, so that everything written so far survives a crash. The runtime
// calls it before writing the task's checkpoint.
func (s *Store) Flush() error {
	s.rlock()
	defer s.mu.RUnlock()
	if err := s.db.Flush(); err != nil {
		return s.wrap("flush", err)
	}
	return nil
}

// Close stops the store's open iterators, flushes, closes the database and
// returns its memtable reservation to the Env. The directory stays; see
// Env.Destroy. Close is idempotent.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.closed {
		return nil
	}
	s.mu.closed = true

	s.iters.Lock()
	iters := make([]*iterator, 0, len(s.iters.m))
	for it := range s.iters.m {
		iters = append(iters, it)
	}
	s.iters.m = nil
	s.iters.Unlock()
	stopped := fmt.Errorf("%w: %s: iterator stopped", state.ErrClosed, s.name)
	for _, it := range iters {
		it.mu.Lock()
		it.closeLocked(stopped)
		it.mu.Unlock()
	}
	s.closeTxnLocked()

	err := s.db.Flush()
	if cerr := s.db.Close(); err == nil {
		err = cerr
	}
	s.env.release(s)
	if err != nil {
		return fmt.Errorf("state/pebble: store %q: close: %w", s.name, err)
	}
	return nil
}

func (s *Store) flushBegin(pdb.FlushInfo) { s.flushing.Store(s.unflushed.Load()) }

func (s *Store) flushEnd(info pdb.FlushInfo) {
	if info.Err == nil {
		s.unflushed.Add(-s.flushing.Load())
	}
	s.flushing.Store(0)
}

func (s *Store) newIterator(from, to []byte) state.Iterator {
	s.rlock()
	defer s.mu.RUnlock()
	if to != nil && bytes.Compare(from, to) >= 0 {
		return state.Empty(nil)
	}
	// Pebble keeps the bounds for the iterator's life: dataBounds makes
	// them in one new allocation.
	lo, hi := dataBounds(from, to)
	o := &pdb.IterOptions{LowerBound: lo, UpperBound: hi}
	var (
		pi  *pdb.Iterator
		tb  *txnBatch
		err error
	)
	if s.tx.on {
		pi, tb, err = s.txnIter(o)
	} else {
		pi, err = s.db.NewIter(o)
	}
	if err != nil {
		return state.Empty(s.wrap("new iterator", err))
	}
	it := wrapIterator(s, pi)
	it.tb = tb
	s.iters.Lock()
	s.iters.m[it] = struct{}{}
	s.iters.Unlock()
	return it
}

// The key space. Every key in a store's Pebble database starts with a
// prefix byte: the user's keys with dataPrefix, so they keep their bytewise
// order and bounds, and the store's metadata records (state.Store.PutMeta)
// with metaPrefix. The format version is a metadata record (see Env.Open).
const (
	metaPrefix = 0x00
	dataPrefix = 0x01
)

// metaKey returns the key of metadata record name.
func metaKey(name string) []byte {
	return append([]byte{metaPrefix}, name...)
}

// dataBounds returns the Pebble bounds of the user key range [from, to)
// (Range's rules: nil or empty from is open, nil to is open), in one new
// allocation.
func dataBounds(from, to []byte) (lo, hi []byte) {
	b := make([]byte, 0, 2+len(from)+len(to))
	b = append(b, dataPrefix)
	b = append(b, from...)
	lo = b[:len(b):len(b)]
	if to == nil {
		return lo, append(b[len(b):], dataPrefix+1)
	}
	b = append(b, dataPrefix)
	b = append(b, to...)
	return lo, b[len(lo):]
}

// keyBufs are the readers' scratch buffers for prefixed keys.
var keyBufs = sync.Pool{New: func() any { b := make([]byte, 0, 64); return &b }}

func getKeyBuf() *[]byte  { return keyBufs.Get().(*[]byte) }
func putKeyBuf(b *[]byte) { keyBufs.Put(b) }
