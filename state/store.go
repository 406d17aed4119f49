package state

// Store is a byte-level, ordered key-value store: the local state of one
// stateful operator in one task. Its engines are state/pebble (the default,
// on disk) and state/memory.
//
// Ordering: keys are ordered bytewise (bytes.Compare), shorter before longer
// on a common prefix; the empty key is the smallest. Range, Prefix and All
// return keys in ascending order. Typed views order by the serialized key
// bytes, so pick key serdes whose bytes sort as the keys should.
//
// Values: a nil value is Kafka's null. Put(k, nil) deletes k, exactly as a
// tombstone in the store's changelog does when it is restored, so a store
// and its changelog never disagree; an empty non-nil value is a value. Get
// returns nil, nil for an absent key and a non-nil (possibly empty) slice for
// a present one.
//
// Concurrency: one goroutine, the task that owns the store, writes (Put,
// Delete, DeleteRange, Flush, Close). Any number of other goroutines, such
// as interactive queries, may read (Get, Range, Prefix, All,
// ApproximateCount) at the same time. Reads see each write whole; an
// Iterator is a consistent snapshot taken when it was created and is not
// disturbed by later writes. A single Iterator must not be shared between
// goroutines.
//
// Lifetime: after Close, calling any method except Name and Close panics with
// ErrClosed. Close is idempotent. Iterators still open when the store closes
// stop: their Next returns false and their Err reports ErrClosed.
//
// Durability: engines do not keep a write-ahead log: the store's Kafka
// changelog is the log. Flush makes every write so far, data and metadata,
// durable on local disk (a no-op in memory). After a crash without Flush, an
// on-disk store holds a prefix of its writes (those of the memtables that
// were flushed, in order), data and metadata alike.
type Store interface {
	// Name returns the store's name, as given when it was opened. It is
	// also the topic passed to serdes by typed views.
	Name() string

	// Get returns a copy of the value of key, owned by the caller, or nil,
	// nil when key is absent.
	Get(key []byte) ([]byte, error)

	// Put sets key to value. The store copies both, so the caller may reuse
	// them. A nil value deletes key (see the type's doc).
	Put(key, value []byte) error

	// Delete removes key. Deleting an absent key is not an error.
	Delete(key []byte) error

	// DeleteRange removes every key in [from, to), with the bounds of
	// Range: a nil from starts at the first key, a nil to runs to the last,
	// and an empty range deletes nothing. Engines drop the range in one
	// operation where they can (Pebble writes a single range tombstone), so
	// it is the way to drop many adjacent keys, such as an expired segment
	// of a window store. Iterators created before it still see the keys.
	// The store does not keep from or to.
	DeleteRange(from, to []byte) error

	// PutMeta sets the metadata record name to value (nil deletes it).
	// Metadata lives beside the data, invisible to Get, the iterators,
	// DeleteRange and ApproximateCount, and is written in order with the
	// data: after Flush, the data and the metadata written before it are
	// durable together, so a record of what the data holds (the runtime
	// keeps the changelog offset the store reflects) is never ahead of or
	// behind the data after a crash.
	PutMeta(name string, value []byte) error

	// GetMeta returns a copy of the metadata record name, or nil, nil.
	GetMeta(name string) ([]byte, error)

	// Range returns an iterator over the keys in [from, to), ascending. A
	// nil from starts at the first key; a nil to runs to the last. An empty
	// (non-nil) from is the same as nil; an empty non-nil to is an empty
	// range. The store does not keep from or to.
	Range(from, to []byte) Iterator

	// Prefix returns an iterator over the keys that start with prefix,
	// ascending. An empty prefix matches every key.
	Prefix(prefix []byte) Iterator

	// All returns an iterator over every key, ascending.
	All() Iterator

	// ApproximateCount returns an estimate of the number of keys, cheap to
	// compute. The memory engine's is exact; Pebble's, like RocksDB's
	// estimate-num-keys, can be off after overwrites and deletes.
	ApproximateCount() int64

	// Flush makes every write so far durable on local disk. It is a no-op
	// for stores that are not on disk.
	Flush() error

	// Close flushes and releases the store. It is idempotent. The store's
	// files stay on disk.
	Close() error
}

// Sizer is a Store that can estimate how many bytes it holds. Both engines
// implement it: the memory engine counts the bytes of its keys and values,
// Pebble reports its live tables and memtables. The runtime reads it for
// Metrics (StoreMetrics.ApproxBytes).
type Sizer interface {
	// ApproximateBytes returns an estimate of the store's size in bytes,
	// cheap enough to call every second, not per record.
	ApproximateBytes() int64
}

// Iterator walks key-value pairs in ascending key order. It is pull style,
// like Pebble's:
//
//	it := s.Range(from, to)
//	for it.Next() {
//		use(it.Key(), it.Value())
//	}
//	if err := it.Close(); err != nil { ... }
//
// Key and Value are valid until the next call to Next or Close, and must not
// be modified; copy them to keep them. Err reports the error that ended the
// iteration, if any, and stays readable after Close. Close releases the
// iterator, returns Err, and is idempotent; Next after Close returns false.
// An Iterator is not safe for concurrent use.
type Iterator interface {
	// Next advances to the next pair and reports whether there is one. The
	// first call moves to the first pair.
	Next() bool
	// Key returns the current key.
	Key() []byte
	// Value returns the current value.
	Value() []byte
	// Err returns the error that stopped the iteration early, or nil.
	Err() error
	// Close releases the iterator and returns Err.
	Close() error
}

// PrefixEnd returns the smallest key greater than every key that starts
// with prefix: prefix with its last byte that is not 0xff incremented and the
// 0xff bytes after it dropped. It returns nil (no upper bound) when prefix is
// empty or all 0xff, because then no finite key is greater. Engines use it
// as the exclusive upper bound of Prefix; the result is a new slice.
func PrefixEnd(prefix []byte) []byte {
	for i := len(prefix) - 1; i >= 0; i-- {
		if prefix[i] != 0xff {
			end := make([]byte, i+1)
			copy(end, prefix)
			end[i]++
			return end
		}
	}
	return nil
}
