package pebble

import (
	"errors"

	pdb "github.com/cockroachdb/pebble/v2"
)

// Transactions. A store opened with Transactional holds every write (data,
// range deletes and metadata records) in an open transaction: a Pebble
// indexed batch that the store's reads see merged over the committed data
// (Get reads the batch, then the database; an iterator merges both,
// the batch's deletes and range deletes included). Commit applies the
// transaction to the database in one atomic, synced write, and begins the
// next; Abort drops it. So the database only ever holds committed
// transactions, whole and in order, and a metadata record written in a
// transaction (the changelog offset the runtime keeps) commits with its
// data.
//
// Durability: a transactional store keeps Pebble's write-ahead log, and
// Commit syncs it, so after a crash the store reopens at its last
// committed transaction (Pebble replays the log). Only commits go to the
// log: the open transaction is in memory.
//
// Concurrency: a batch is not safe for concurrent use, so the store's
// batch (tx.b), and every iterator that reads one, is used under tx.mu: the
// writer's writes, Get, opening an iterator and each step of an iterator
// over a batch. An iterator sees the batch as it was when the iterator was
// opened (Pebble's batch snapshot); when the batch commits or aborts, the
// store begins a new one and the old one stays readable until its last
// iterator closes (txnBatch.iters), then it is closed. Lock order: Store.mu,
// Store.iters, an iterator's mu, then tx.mu.

// StoreOpt configures one store at Env.Open.
type StoreOpt interface{ applyStore(*storeCfg) }

type storeOptFunc func(*storeCfg)

func (f storeOptFunc) applyStore(c *storeCfg) { f(c) }

type storeCfg struct {
	transactional bool
	layout        string
}

// Layout names what the store holds, in the caller's terms (the runtime
// names the kind of store and how its values are encoded: "key-value
// timestamped", "window"). A new store records it; a store that records
// another layout, or none while it holds data, fails Open with
// state.ErrIncompatible, so that data written for another purpose under
// the same directory is never read as this one's (the runtime then wipes
// the store and restores it from its changelog). Without Layout nothing is
// checked or recorded.
func Layout(desc string) StoreOpt {
	return storeOptFunc(func(c *storeCfg) { c.layout = desc })
}

// Transactional opens the store in transactional mode: its writes stay in
// an open transaction, which its reads see, until Commit applies them to
// the database together, durably, or Abort drops them. The runtime opens
// the stores of tasks this way under exactly-once, so a store on disk only
// ever holds the state of committed Kafka transactions with the changelog
// offset they reach.
//
// Kafka Streams: the transaction buffer of KIP-892 (transactional state
// stores).
func Transactional() StoreOpt {
	return storeOptFunc(func(c *storeCfg) { c.transactional = true })
}

// txnBatch is one transaction: an indexed batch and the iterators still
// reading it.
type txnBatch struct {
	b *pdb.Batch
	// iters counts the open iterators over b; retired is set when b is no
	// longer the store's open transaction (committed or aborted). A retired
	// batch is closed when its last iterator closes. Both under tx.mu.
	iters   int
	retired bool
	// delta counts puts minus deletes in b, and metaDelta the metadata
	// records it adds less those it deletes, for ApproximateCount.
	delta, metaDelta int64
}

// Transactional reports whether the store was opened with Transactional.
func (s *Store) Transactional() bool { return s.tx.on }

// Uncommitted returns the number of writes in the open transaction (0 when
// the store is not transactional).
func (s *Store) Uncommitted() int {
	if !s.tx.on {
		return 0
	}
	s.rlock()
	defer s.mu.RUnlock()
	s.tx.mu.Lock()
	defer s.tx.mu.Unlock()
	return int(s.tx.b.b.Count())
}

// Commit applies the open transaction to the database in one atomic write,
// synced to the write-ahead log, and begins the next one. An empty
// transaction writes nothing. On a store that is not transactional it is
// Flush.
func (s *Store) Commit() error {
	if !s.tx.on {
		return s.Flush()
	}
	s.rlock()
	defer s.mu.RUnlock()
	s.tx.mu.Lock()
	defer s.tx.mu.Unlock()
	tb := s.tx.b
	if tb.b.Empty() {
		return nil
	}
	apply := tb.b
	if tb.iters > 0 {
		// Iterators still read the batch: apply a copy, since Pebble may
		// keep a large batch's contents as a memtable and clear them.
		apply = s.db.NewBatch()
		if err := apply.Apply(tb.b, nil); err != nil {
			_ = apply.Close()
			return s.wrap("commit", err)
		}
	}
	err := s.db.Apply(apply, pdb.Sync)
	if apply != tb.b {
		_ = apply.Close()
	}
	if err != nil {
		// The database may hold the transaction or not: the store must
		// not be used any more (the runtime closes it and restores).
		return s.wrap("commit", err)
	}
	s.unflushed.Add(tb.delta)
	s.retireLocked()
	if err := s.countMeta(); err != nil {
		return err
	}
	return nil
}

// Abort drops the open transaction's writes and begins the next one: the
// store's reads see the committed data again. On a store that is not
// transactional it does nothing (its writes are in the database already).
func (s *Store) Abort() error {
	if !s.tx.on {
		return nil
	}
	s.rlock()
	defer s.mu.RUnlock()
	s.tx.mu.Lock()
	defer s.tx.mu.Unlock()
	if s.tx.b.b.Empty() {
		return nil
	}
	s.retireLocked()
	return nil
}

// retireLocked replaces the open batch by a new, empty one, closing the old
// one unless iterators still read it. tx.mu is held.
func (s *Store) retireLocked() {
	old := s.tx.b
	old.retired = true
	if old.iters == 0 {
		_ = old.b.Close()
	}
	s.tx.b = &txnBatch{b: s.db.NewIndexedBatch()}
}

// releaseIter is called when an iterator over tb closes: the last iterator
// of a retired batch closes it.
func (s *Store) releaseIter(tb *txnBatch) {
	s.tx.mu.Lock()
	defer s.tx.mu.Unlock()
	tb.iters--
	if tb.retired && tb.iters == 0 {
		_ = tb.b.Close()
	}
}

// txnWrite runs fn on the open batch under tx.mu, adding delta to the
// count of its puts minus deletes.
func (s *Store) txnWrite(op string, delta int64, fn func(b *pdb.Batch) error) error {
	s.tx.mu.Lock()
	defer s.tx.mu.Unlock()
	if err := fn(s.tx.b.b); err != nil {
		return s.wrap(op, err)
	}
	s.tx.b.delta += delta
	return nil
}

// txnPutMeta writes the metadata record of raw key k (nil deletes it) in
// the open batch.
func (s *Store) txnPutMeta(k, value []byte) error {
	old, err := s.txnGet(k, "put meta")
	if err != nil {
		return err
	}
	var d int64
	switch {
	case old == nil && value != nil:
		d = 1
	case old != nil && value == nil:
		d = -1
	}
	return s.txnWrite("put meta", d, func(b *pdb.Batch) error {
		s.tx.b.metaDelta += d
		if value == nil {
			return b.Delete(k, nil)
		}
		return b.Set(k, value, nil)
	})
}

// txnGet reads the raw key k through the open batch.
func (s *Store) txnGet(k []byte, op string) ([]byte, error) {
	s.tx.mu.Lock()
	defer s.tx.mu.Unlock()
	v, closer, err := s.tx.b.b.Get(k)
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

// txnIter opens a Pebble iterator over the open batch merged with the
// database, and counts it on the batch.
func (s *Store) txnIter(o *pdb.IterOptions) (*pdb.Iterator, *txnBatch, error) {
	s.tx.mu.Lock()
	defer s.tx.mu.Unlock()
	tb := s.tx.b
	pi, err := tb.b.NewIter(o)
	if err != nil {
		return nil, nil, err
	}
	tb.iters++
	return pi, tb, nil
}

// closeTxnLocked drops the open transaction when the store closes (every
// iterator is closed by then). Store.mu is write-locked.
func (s *Store) closeTxnLocked() {
	if !s.tx.on {
		return
	}
	s.tx.mu.Lock()
	defer s.tx.mu.Unlock()
	s.tx.b.retired = true
	if s.tx.b.iters == 0 {
		_ = s.tx.b.b.Close()
	}
	s.tx.b = nil
}
