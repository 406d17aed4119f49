package state

import (
	"fmt"
	"iter"

	"github.com/streamwork-go/streamwork/serde"
)

// ReadOnlyKeyValue is the read side of a typed key-value store: what
// interactive queries get. *KeyValue implements it.
//
// Methods are safe for concurrent use with each other and with the task
// that writes the store. Each sequence is a fresh scan every time it is
// ranged over, a consistent snapshot as of the start of that scan. Order is
// the bytewise order of the serialized keys (see Store).
//
// Scans come in two forms. RangeErr and AllErr return the sequence and a
// function that reports why the last scan ended early (a read or decode
// error), nil when it did not: call it after the loop. Range and All are the
// same scans for callers that treat a failure as a bug: they panic with the
// error instead of ending quietly, because a scan that stops early without a
// word would look complete.
type ReadOnlyKeyValue[K, V any] interface {
	// Name returns the name of the underlying store.
	Name() string
	// Get returns the value of k and whether it is present.
	Get(k K) (V, bool, error)
	// Range returns the pairs with keys in [from, to) by serialized bytes,
	// ascending. It panics if the scan fails; see RangeErr.
	Range(from, to K) iter.Seq2[K, V]
	// RangeErr is Range that reports a failure through errf instead of
	// panicking.
	RangeErr(from, to K) (seq iter.Seq2[K, V], errf func() error)
	// All returns every pair, ascending. It panics if the scan fails; see
	// AllErr.
	All() iter.Seq2[K, V]
	// AllErr is All that reports a failure through errf instead of
	// panicking.
	AllErr() (seq iter.Seq2[K, V], errf func() error)
	// ApproximateCount returns the store's estimate of its number of keys.
	ApproximateCount() int64
}

// KeyValue is a typed view of a Store: keys and values go through serdes,
// with the store's name as the topic. It holds no state of its own, so any
// number of views of one store may exist. Its concurrency and lifetime are
// the store's: one writer, concurrent readers, and use after the store's
// Close panics with ErrClosed.
//
// There is no typed Prefix: a prefix of a K is rarely a K, and what a byte
// prefix means depends on the key serde. Use Store.Prefix on the bytes.
type KeyValue[K, V any] struct {
	s  Store
	ks serde.Serde[K]
	vs serde.Serde[V]
}

var _ ReadOnlyKeyValue[string, int64] = (*KeyValue[string, int64])(nil)

// Typed returns a typed view of s that encodes keys with ks and values with
// vs.
func Typed[K, V any](s Store, ks serde.Serde[K], vs serde.Serde[V]) *KeyValue[K, V] {
	return &KeyValue[K, V]{s: s, ks: ks, vs: vs}
}

// Store returns the underlying byte-level store.
func (kv *KeyValue[K, V]) Store() Store { return kv.s }

// Name returns the name of the underlying store.
func (kv *KeyValue[K, V]) Name() string { return kv.s.Name() }

// Get returns the value of k and true, or the zero V and false when k is
// absent. A present key whose stored value is empty is decoded from an
// empty, non-nil slice.
func (kv *KeyValue[K, V]) Get(k K) (V, bool, error) {
	var zero V
	kb, err := kv.key(k)
	if err != nil {
		return zero, false, err
	}
	vb, err := kv.s.Get(kb)
	if err != nil || vb == nil {
		return zero, false, err
	}
	v, err := kv.vs.Deserialize(kv.s.Name(), vb)
	if err != nil {
		return zero, false, fmt.Errorf("state: store %q: decode value: %w", kv.s.Name(), err)
	}
	return v, true, nil
}

// Put sets k to v. A v that serializes to nil (Kafka null) deletes k.
func (kv *KeyValue[K, V]) Put(k K, v V) error {
	kb, err := kv.key(k)
	if err != nil {
		return err
	}
	vb, err := kv.vs.Serialize(kv.s.Name(), v)
	if err != nil {
		return fmt.Errorf("state: store %q: encode value: %w", kv.s.Name(), err)
	}
	return kv.s.Put(kb, vb)
}

// Delete removes k. Deleting an absent key is not an error.
func (kv *KeyValue[K, V]) Delete(k K) error {
	kb, err := kv.key(k)
	if err != nil {
		return err
	}
	return kv.s.Delete(kb)
}

// Range returns the pairs with serialized keys in [from, to), ascending. It
// panics with the error if the scan fails; use RangeErr to handle failures.
func (kv *KeyValue[K, V]) Range(from, to K) iter.Seq2[K, V] {
	return must(kv.RangeErr(from, to))
}

// RangeErr returns the pairs with serialized keys in [from, to), ascending,
// and a function that reports why the last pass over seq ended early, or
// nil. Each pass opens a new iterator. A seq and its errf belong to one
// goroutine: call RangeErr again for another.
func (kv *KeyValue[K, V]) RangeErr(from, to K) (seq iter.Seq2[K, V], errf func() error) {
	var scanErr error
	seq = func(yield func(K, V) bool) {
		scanErr = nil
		fb, err := kv.key(from)
		if err != nil {
			scanErr = err
			return
		}
		tb, err := kv.key(to)
		if err != nil {
			scanErr = err
			return
		}
		scanErr = kv.scan(kv.s.Range(fb, tb), yield)
	}
	return seq, func() error { return scanErr }
}

// All returns every pair, ascending by serialized key. It panics with the
// error if the scan fails; use AllErr to handle failures.
func (kv *KeyValue[K, V]) All() iter.Seq2[K, V] {
	return must(kv.AllErr())
}

// AllErr returns every pair, ascending by serialized key, and a function that
// reports why the last pass over seq ended early, or nil. A seq and its errf
// belong to one goroutine: call AllErr again for another.
//
//	seq, errf := kv.AllErr()
//	for k, v := range seq { ... }
//	if err := errf(); err != nil { ... }
func (kv *KeyValue[K, V]) AllErr() (seq iter.Seq2[K, V], errf func() error) {
	var scanErr error
	seq = func(yield func(K, V) bool) {
		scanErr = kv.scan(kv.s.All(), yield)
	}
	return seq, func() error { return scanErr }
}

// ApproximateCount returns the store's estimate of its number of keys.
func (kv *KeyValue[K, V]) ApproximateCount() int64 { return kv.s.ApproximateCount() }

// scan decodes the pairs of it into yield until it ends, yield stops or a
// pair fails to decode, closes it and returns the first error.
func (kv *KeyValue[K, V]) scan(it Iterator, yield func(K, V) bool) (err error) {
	defer func() {
		if cerr := it.Close(); err == nil {
			err = cerr
		}
	}()
	name := kv.s.Name()
	for it.Next() {
		k, err := kv.ks.Deserialize(name, it.Key())
		if err != nil {
			return fmt.Errorf("state: store %q: decode key: %w", name, err)
		}
		v, err := kv.vs.Deserialize(name, it.Value())
		if err != nil {
			return fmt.Errorf("state: store %q: decode value: %w", name, err)
		}
		if !yield(k, v) {
			return nil
		}
	}
	return it.Err()
}

func (kv *KeyValue[K, V]) key(k K) ([]byte, error) {
	b, err := kv.ks.Serialize(kv.s.Name(), k)
	if err != nil {
		return nil, fmt.Errorf("state: store %q: encode key: %w", kv.s.Name(), err)
	}
	return b, nil
}

// must turns an error-reporting sequence into one that panics with the
// error after the failed pass.
func must[K, V any](seq iter.Seq2[K, V], errf func() error) iter.Seq2[K, V] {
	return func(yield func(K, V) bool) {
		seq(yield)
		if err := errf(); err != nil {
			panic(err)
		}
	}
}
