package memory

import (
	"bytes"
	"sync"
	"sync/atomic"

	"github.com/google/btree"

	"github.com/streamwork-go/streamwork/state"
)

// degree is the B-tree's minimum degree: nodes hold up to 2*degree-1 items.
const degree = 32

// item is one key-value pair; key and value share one allocation.
type item struct {
	key, value []byte
}

func less(a, b item) bool { return bytes.Compare(a.key, b.key) < 0 }

// Store is an in-memory state.Store. Create it with New. It is safe for one
// writer and any number of concurrent readers (see state.Store).
type Store struct {
	name   string
	closed atomic.Bool // set under mu; read without it by iterators

	mu struct {
		sync.RWMutex
		meta map[string][]byte
		tree *btree.BTreeG[item] // nil after Close
		// bytes is the length of every key and value in tree.
		bytes int64
		// snap is a read-only clone of tree shared by the iterators created
		// since the last write; nil when a write has made it stale.
		snap *btree.BTreeG[item]
	}
}

var (
	_ state.Store = (*Store)(nil)
	_ state.Sizer = (*Store)(nil)
)

// New returns an empty store named name.
func New(name string) *Store {
	s := &Store{name: name}
	s.mu.tree = btree.NewG(degree, less)
	return s
}

// Name returns the store's name.
func (s *Store) Name() string { return s.name }

// Get returns a copy of the value of key, or nil, nil if key is absent.
func (s *Store) Get(key []byte) ([]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	s.checkLocked()
	it, ok := s.mu.tree.Get(item{key: key})
	if !ok {
		return nil, nil
	}
	return append(make([]byte, 0, len(it.value)), it.value...), nil
}

// Put copies key and value into the store. A nil value deletes key.
func (s *Store) Put(key, value []byte) error {
	if value == nil {
		return s.Delete(key)
	}
	buf := make([]byte, len(key)+len(value))
	n := copy(buf, key)
	copy(buf[n:], value)
	it := item{key: buf[:n:n], value: buf[n:]}

	s.mu.Lock()
	defer s.mu.Unlock()
	s.checkLocked()
	if old, ok := s.mu.tree.ReplaceOrInsert(it); ok {
		s.mu.bytes -= int64(len(old.key) + len(old.value))
	}
	s.mu.bytes += int64(len(buf))
	s.mu.snap = nil
	return nil
}

// Delete removes key.
func (s *Store) Delete(key []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.checkLocked()
	if old, ok := s.mu.tree.Delete(item{key: key}); ok {
		s.mu.bytes -= int64(len(old.key) + len(old.value))
		s.mu.snap = nil
	}
	return nil
}

// DeleteRange removes the keys in [from, to).
func (s *Store) DeleteRange(from, to []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.checkLocked()
	if len(from) == 0 {
		from = nil
	}
	if to != nil && bytes.Compare(from, to) >= 0 {
		return nil
	}
	var doomed [][]byte
	visit := func(it item) bool {
		doomed = append(doomed, it.key)
		return true
	}
	switch {
	case from == nil && to == nil:
		s.mu.tree.Ascend(visit)
	case to == nil:
		s.mu.tree.AscendGreaterOrEqual(item{key: from}, visit)
	default:
		s.mu.tree.AscendRange(item{key: from}, item{key: to}, visit)
	}
	if len(doomed) == 0 {
		return nil
	}
	for _, k := range doomed {
		if old, ok := s.mu.tree.Delete(item{key: k}); ok {
			s.mu.bytes -= int64(len(old.key) + len(old.value))
		}
	}
	s.mu.snap = nil
	return nil
}

// PutMeta sets the metadata record name; nil deletes it.
func (s *Store) PutMeta(name string, value []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.checkLocked()
	if value == nil {
		delete(s.mu.meta, name)
		return nil
	}
	if s.mu.meta == nil {
		s.mu.meta = make(map[string][]byte)
	}
	s.mu.meta[name] = append([]byte{}, value...)
	return nil
}

// GetMeta returns a copy of the metadata record name, or nil, nil.
func (s *Store) GetMeta(name string) ([]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	s.checkLocked()
	v, ok := s.mu.meta[name]
	if !ok {
		return nil, nil
	}
	return append([]byte{}, v...), nil
}

// Range returns an iterator over [from, to); nil bounds are open.
func (s *Store) Range(from, to []byte) state.Iterator {
	return s.newIterator(from, to)
}

// Prefix returns an iterator over the keys starting with prefix.
func (s *Store) Prefix(prefix []byte) state.Iterator {
	return s.newIterator(prefix, state.PrefixEnd(prefix))
}

// All returns an iterator over every key.
func (s *Store) All() state.Iterator {
	return s.newIterator(nil, nil)
}

// ApproximateCount returns the number of keys, exactly.
func (s *Store) ApproximateCount() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	s.checkLocked()
	return int64(s.mu.tree.Len())
}

// ApproximateBytes returns the bytes of every key and value the store
// holds, exactly (the tree's own overhead is not counted).
func (s *Store) ApproximateBytes() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	s.checkLocked()
	return s.mu.bytes
}

// Flush does nothing: a memory store has no disk to make writes durable on.
func (s *Store) Flush() error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	s.checkLocked()
	return nil
}

// Close releases the store's memory and stops its open iterators. It is
// idempotent.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed.Store(true)
	s.mu.tree, s.mu.snap = nil, nil
	return nil
}

// checkLocked panics with state.ErrClosed if the store is closed. s.mu must
// be held.
func (s *Store) checkLocked() {
	if s.mu.tree == nil {
		panic(state.ErrClosed)
	}
}

// snapshot returns a read-only clone of the tree, shared with other
// iterators until the next write.
func (s *Store) snapshot() *btree.BTreeG[item] {
	s.mu.RLock()
	snap, closed := s.mu.snap, s.mu.tree == nil
	s.mu.RUnlock()
	if closed {
		panic(state.ErrClosed)
	}
	if snap != nil {
		return snap
	}
	// Clone changes the tree's copy-on-write context, so it needs the write
	// lock.
	s.mu.Lock()
	defer s.mu.Unlock()
	s.checkLocked()
	if s.mu.snap == nil {
		s.mu.snap = s.mu.tree.Clone()
	}
	return s.mu.snap
}
