package state

import (
	"fmt"
	"iter"

	"github.com/streamwork-go/streamwork/serde"
)

// VersionedRecord is one version of a key's value: Kafka Streams'
// VersionedRecord. It is valid in [ValidFrom, ValidTo), milliseconds;
// ValidTo is LatestValidTo for a key's latest version.
type VersionedRecord[V any] struct {
	Value     V
	ValidFrom int64
	ValidTo   int64
}

// ReadOnlyVersioned is the read side of a typed versioned store: what
// interactive queries get. *Versioned implements it. Its scans come in the
// two forms of ReadOnlyKeyValue's: X returns a sequence that panics if the
// scan fails, XErr the sequence and a function that reports why the last
// pass ended early.
type ReadOnlyVersioned[K, V any] interface {
	// Name returns the name of the underlying store.
	Name() string
	// Get returns k's latest version, and whether it has one.
	Get(k K) (VersionedRecord[V], bool, error)
	// GetAsOf returns k's version valid at asOf, and whether there is one.
	GetAsOf(k K, asOf int64) (VersionedRecord[V], bool, error)
	// Versions returns k's versions valid at some time in [from, to],
	// ascending (see VersionedStore.Versions).
	Versions(k K, from, to int64) iter.Seq[VersionedRecord[V]]
	// VersionsErr is Versions that reports a failure through errf.
	VersionsErr(k K, from, to int64) (seq iter.Seq[VersionedRecord[V]], errf func() error)
	// BackwardVersions is Versions, descending.
	BackwardVersions(k K, from, to int64) iter.Seq[VersionedRecord[V]]
	// BackwardVersionsErr is BackwardVersions that reports a failure
	// through errf.
	BackwardVersionsErr(k K, from, to int64) (seq iter.Seq[VersionedRecord[V]], errf func() error)
}

// Versioned is a typed view of a VersionedStore: keys and values go
// through serdes, with the store's name as the topic. Like KeyValue it
// holds no state, and its concurrency and lifetime are the store's.
type Versioned[K, V any] struct {
	vs   VersionedStore
	ks   serde.Serde[K]
	vser serde.Serde[V]
}

var _ ReadOnlyVersioned[string, int64] = (*Versioned[string, int64])(nil)

// TypedVersioned returns a typed view of vs that encodes keys with ks and
// values with vser.
func TypedVersioned[K, V any](vs VersionedStore, ks serde.Serde[K], vser serde.Serde[V]) *Versioned[K, V] {
	return &Versioned[K, V]{vs: vs, ks: ks, vser: vser}
}

// Store returns the underlying byte-level versioned store.
func (t *Versioned[K, V]) Store() VersionedStore { return t.vs }

// Name returns the name of the underlying store.
func (t *Versioned[K, V]) Name() string { return t.vs.Name() }

// Put adds a version of k valid from ts; a v that serializes to nil is a
// tombstone. See VersionedStore.Put for validTo and dropped.
func (t *Versioned[K, V]) Put(k K, v V, ts int64) (validTo int64, dropped bool, err error) {
	kb, err := encodeKey(t.vs.Name(), t.ks, k)
	if err != nil {
		return 0, false, err
	}
	vb, err := t.vser.Serialize(t.vs.Name(), v)
	if err != nil {
		return 0, false, fmt.Errorf("state: store %q: encode value: %w", t.vs.Name(), err)
	}
	return t.vs.Put(kb, vb, ts)
}

// Delete puts a tombstone for k at ts and returns the version valid at ts
// before it, with found false if there was none. ValidTo of the returned
// record is not set.
func (t *Versioned[K, V]) Delete(k K, ts int64) (prev VersionedRecord[V], found, dropped bool, err error) {
	kb, err := encodeKey(t.vs.Name(), t.ks, k)
	if err != nil {
		return prev, false, false, err
	}
	vb, from, dropped, err := t.vs.Delete(kb, ts)
	v, ok, err := decodeValue(t.vs.Name(), t.vser, vb, err)
	if !ok {
		return prev, false, dropped, err
	}
	return VersionedRecord[V]{Value: v, ValidFrom: from}, true, dropped, nil
}

// Get returns k's latest version (ValidTo LatestValidTo) and true, or
// false if it has none.
func (t *Versioned[K, V]) Get(k K) (VersionedRecord[V], bool, error) {
	kb, err := encodeKey(t.vs.Name(), t.ks, k)
	if err != nil {
		return VersionedRecord[V]{}, false, err
	}
	vb, from, _, err := t.vs.Get(kb)
	v, ok, err := decodeValue(t.vs.Name(), t.vser, vb, err)
	if !ok {
		return VersionedRecord[V]{}, false, err
	}
	return VersionedRecord[V]{Value: v, ValidFrom: from, ValidTo: maxInt64}, true, nil
}

// GetAsOf returns k's version valid at asOf and true, or false if there is
// none (see VersionedStore.GetAsOf).
func (t *Versioned[K, V]) GetAsOf(k K, asOf int64) (VersionedRecord[V], bool, error) {
	kb, err := encodeKey(t.vs.Name(), t.ks, k)
	if err != nil {
		return VersionedRecord[V]{}, false, err
	}
	vb, from, to, _, err := t.vs.GetAsOf(kb, asOf)
	v, ok, err := decodeValue(t.vs.Name(), t.vser, vb, err)
	if !ok {
		return VersionedRecord[V]{}, false, err
	}
	return VersionedRecord[V]{Value: v, ValidFrom: from, ValidTo: to}, true, nil
}

// Versions returns k's versions valid at some time in [from, to],
// ascending. It panics if the scan fails; see VersionsErr.
func (t *Versioned[K, V]) Versions(k K, from, to int64) iter.Seq[VersionedRecord[V]] {
	return mustSeq(t.VersionsErr(k, from, to))
}

// VersionsErr is Versions that reports a failure through errf.
func (t *Versioned[K, V]) VersionsErr(k K, from, to int64) (iter.Seq[VersionedRecord[V]], func() error) {
	return t.scan(k, func(kb []byte) VersionedIterator { return t.vs.Versions(kb, from, to) })
}

// BackwardVersions is Versions, descending.
func (t *Versioned[K, V]) BackwardVersions(k K, from, to int64) iter.Seq[VersionedRecord[V]] {
	return mustSeq(t.BackwardVersionsErr(k, from, to))
}

// BackwardVersionsErr is VersionsErr, descending.
func (t *Versioned[K, V]) BackwardVersionsErr(k K, from, to int64) (iter.Seq[VersionedRecord[V]], func() error) {
	return t.scan(k, func(kb []byte) VersionedIterator { return t.vs.BackwardVersions(kb, from, to) })
}

// scan returns a sequence that opens an iterator with open on each pass
// and decodes its versions, and a function that reports why the last pass
// ended early. A seq and its errf belong to one goroutine.
func (t *Versioned[K, V]) scan(k K, open func([]byte) VersionedIterator) (iter.Seq[VersionedRecord[V]], func() error) {
	name := t.vs.Name()
	var scanErr error
	seq := func(yield func(VersionedRecord[V]) bool) {
		kb, err := encodeKey(name, t.ks, k)
		if err != nil {
			scanErr = err
			return
		}
		it := open(kb)
		scanErr = func() (err error) {
			defer func() {
				if cerr := it.Close(); err == nil {
					err = cerr
				}
			}()
			for it.Next() {
				v, err := t.vser.Deserialize(name, it.Value())
				if err != nil {
					return fmt.Errorf("state: store %q: decode value: %w", name, err)
				}
				if !yield(VersionedRecord[V]{Value: v, ValidFrom: it.ValidFrom(), ValidTo: it.ValidTo()}) {
					return nil
				}
			}
			return it.Err()
		}()
	}
	return seq, func() error { return scanErr }
}

// mustSeq turns an error-reporting sequence into one that panics with the
// error after the failed pass.
func mustSeq[T any](seq iter.Seq[T], errf func() error) iter.Seq[T] {
	return func(yield func(T) bool) {
		seq(yield)
		if err := errf(); err != nil {
			panic(err)
		}
	}
}
