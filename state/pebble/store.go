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
// changelog, from the offset in the checkpoint it wrote after the last
// Flush.
type Store struct {
	name     string
	dir      string // cleaned; the key in env.mu.stores
	env      *Env
	reserved uint64 // memtable bytes reserved in env
	opts     *pdb.Options
	db       *pdb.DB

	// unflushed counts puts minus deletes not yet in a flushed table;
	// flushing is its value when the running flush began. Together with
	// table properties they make ApproximateCount.
	unflushed, flushing atomic.Int64

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
}

var _ state.Store = (*Store)(nil)

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
	v, closer, err := s.db.Get(key)
	if errors.Is(err, pdb.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("state/pebble: store %q: get: %w", s.name, err)
	}
	out := append(make([]byte, 0, len(v)), v...)
	if err := closer.Close(); err != nil {
		return nil, fmt.Errorf("state/pebble: store %q: get: %w", s.name, err)
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
	if err := s.db.Set(key, value, pdb.NoSync); err != nil {
		return fmt.Errorf("state/pebble: store %q: put: %w", s.name, err)
	}
	s.unflushed.Add(1)
	return nil
}

// Delete removes key.
func (s *Store) Delete(key []byte) error {
	s.rlock()
	defer s.mu.RUnlock()
	if err := s.db.Delete(key, pdb.NoSync); err != nil {
		return fmt.Errorf("state/pebble: store %q: delete: %w", s.name, err)
	}
	s.unflushed.Add(-1)
	return nil
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

// ApproximateCount estimates the number of keys as RocksDB's
// estimate-num-keys does: the entries of the flushed tables less twice
// their deletions (a deletion hides an older entry), plus puts less deletes
// not yet flushed. Overwrites count twice until compaction merges them, and
// so on: it is an estimate. It reads table properties, which are usually
// cached; call it for metrics and queries, not per record.
func (s *Store) ApproximateCount() int64 {
	s.rlock()
	defer s.mu.RUnlock()
	n := s.unflushed.Load()
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
		return fmt.Errorf("state/pebble: store %q: flush: %w", s.name, err)
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
	// Pebble keeps the bounds for the iterator's life: copy them, in one
	// allocation.
	bounds := make([]byte, len(from)+len(to))
	n := copy(bounds, from)
	copy(bounds[n:], to)
	o := &pdb.IterOptions{}
	if len(from) > 0 {
		o.LowerBound = bounds[:n:n]
	}
	if to != nil {
		o.UpperBound = bounds[n:]
	}
	pi, err := s.db.NewIter(o)
	if err != nil {
		return state.Empty(fmt.Errorf("state/pebble: store %q: new iterator: %w", s.name, err))
	}
	it := wrapIterator(s, pi)
	s.iters.Lock()
	s.iters.m[it] = struct{}{}
	s.iters.Unlock()
	return it
}
