package pebble

import (
	"fmt"
	"sync"

	pdb "github.com/cockroachdb/pebble/v2"
)

// iterator wraps a Pebble iterator. Its mutex is uncontended except when
// the store closes under it: Store.Close then closes the Pebble iterator
// from its own goroutine. Key and Value are copies in the iterator's own
// buffers, so a Close from the store never invalidates the slices a reader
// still holds.
type iterator struct {
	s        *Store
	key, val []byte
	// tb is the transaction the iterator reads over the database (a
	// transactional store's), nil otherwise: each step then holds the
	// store's tx.mu, since the writer may be adding to the batch.
	tb *txnBatch

	mu struct {
		sync.Mutex
		// pi is nil once the iterator is closed, by its owner or the store.
		pi      *pdb.Iterator
		started bool
		err     error
		shut    bool // the owner called Close
	}
}

func wrapIterator(s *Store, pi *pdb.Iterator) *iterator {
	it := &iterator{s: s}
	it.mu.pi = pi
	return it
}

// Next advances to the next pair.
func (it *iterator) Next() bool {
	it.mu.Lock()
	defer it.mu.Unlock()
	pi := it.mu.pi
	if pi == nil {
		return false
	}
	if it.tb != nil {
		it.s.tx.mu.Lock()
	}
	ok, err := it.stepLocked(pi)
	if it.tb != nil {
		it.s.tx.mu.Unlock()
	}
	if err != nil {
		it.mu.err = it.s.wrap("iterate", err)
		if ok {
			it.closeLocked(it.mu.err)
		}
		return false
	}
	return ok
}

// stepLocked moves pi to its next pair and copies it out. On an error, ok
// tells whether pi stopped on a pair whose value failed (the iterator is
// then closed).
func (it *iterator) stepLocked(pi *pdb.Iterator) (ok bool, err error) {
	if it.mu.started {
		ok = pi.Next()
	} else {
		it.mu.started = true
		ok = pi.First()
	}
	if !ok {
		it.key, it.val = it.key[:0], it.val[:0]
		return false, pi.Error()
	}
	v, err := pi.ValueAndErr()
	if err != nil {
		return true, err
	}
	it.key = append(it.key[:0], pi.Key()[1:]...) // drop dataPrefix
	it.val = append(it.val[:0], v...)
	return true, nil
}

// Key returns the current key.
func (it *iterator) Key() []byte { return it.key }

// Value returns the current value.
func (it *iterator) Value() []byte { return it.val }

// Err returns the error that stopped the iteration.
func (it *iterator) Err() error {
	it.mu.Lock()
	defer it.mu.Unlock()
	return it.mu.err
}

// Close closes the Pebble iterator, unregisters from the store and returns
// Err.
func (it *iterator) Close() error {
	it.mu.Lock()
	first := !it.mu.shut
	it.mu.shut = true
	it.closeLocked(nil)
	err := it.mu.err
	it.mu.Unlock()
	if first {
		it.s.iters.Lock()
		delete(it.s.iters.m, it) // a no-op on the nil map of a closed store
		it.s.iters.Unlock()
	}
	return err
}

// closeLocked closes the Pebble iterator if still open and records err if
// there is no earlier error. it.mu must be held.
func (it *iterator) closeLocked(err error) {
	if it.mu.pi == nil {
		return
	}
	var cerr error
	if it.tb != nil {
		it.s.tx.mu.Lock()
		cerr = it.mu.pi.Close()
		it.s.tx.mu.Unlock()
		it.s.releaseIter(it.tb)
	} else {
		cerr = it.mu.pi.Close()
	}
	it.mu.pi = nil
	if it.mu.err == nil {
		if err == nil && cerr != nil {
			err = fmt.Errorf("state/pebble: store %q: close iterator: %w", it.s.name, cerr)
		}
		it.mu.err = err
	}
}
