package state

import (
	"fmt"
	"iter"

	"github.com/streamwork-go/streamwork/serde"
)

// Windowed is a key together with its window or session: Kafka Streams'
// Windowed. Times are milliseconds; End is exclusive for windows (start
// plus the window size) and inclusive for sessions.
type Windowed[K any] struct {
	Key        K
	Start, End int64
}

// ReadOnlyWindows is the read side of a typed window store: what
// interactive queries get. *Windows implements it.
//
// Its scans come in the two forms of ReadOnlyKeyValue's: X returns a
// sequence that panics if the scan fails, XErr the sequence and a function
// that reports why the last pass ended early. Each pass is a new scan.
type ReadOnlyWindows[K, V any] interface {
	// Name returns the name of the underlying store.
	Name() string
	// Fetch returns the value of k's window starting at start, and whether
	// there is one.
	Fetch(k K, start int64) (V, bool, error)
	// FetchRange returns k's windows starting in [from, to], ascending.
	FetchRange(k K, from, to int64) iter.Seq2[Windowed[K], V]
	// FetchRangeErr is FetchRange that reports a failure through errf.
	FetchRangeErr(k K, from, to int64) (seq iter.Seq2[Windowed[K], V], errf func() error)
	// BackwardFetchRange is FetchRange, descending.
	BackwardFetchRange(k K, from, to int64) iter.Seq2[Windowed[K], V]
	// BackwardFetchRangeErr is BackwardFetchRange that reports a failure
	// through errf.
	BackwardFetchRangeErr(k K, from, to int64) (seq iter.Seq2[Windowed[K], V], errf func() error)
	// FetchAll returns the windows of all keys starting in [from, to], in
	// WindowStore.FetchAll's order.
	FetchAll(from, to int64) iter.Seq2[Windowed[K], V]
	// FetchAllErr is FetchAll that reports a failure through errf.
	FetchAllErr(from, to int64) (seq iter.Seq2[Windowed[K], V], errf func() error)
	// BackwardFetchAll is FetchAll in reverse order.
	BackwardFetchAll(from, to int64) iter.Seq2[Windowed[K], V]
	// BackwardFetchAllErr is BackwardFetchAll that reports a failure
	// through errf.
	BackwardFetchAllErr(from, to int64) (seq iter.Seq2[Windowed[K], V], errf func() error)
	// All returns every window, in FetchAll's order.
	All() iter.Seq2[Windowed[K], V]
	// AllErr is All that reports a failure through errf.
	AllErr() (seq iter.Seq2[Windowed[K], V], errf func() error)
	// BackwardAll is All in reverse order.
	BackwardAll() iter.Seq2[Windowed[K], V]
	// BackwardAllErr is BackwardAll that reports a failure through errf.
	BackwardAllErr() (seq iter.Seq2[Windowed[K], V], errf func() error)
}

// Windows is a typed view of a WindowStore: keys and values go through
// serdes, with the store's name as the topic. Like KeyValue it holds no
// state, and its concurrency and lifetime are the store's.
type Windows[K, V any] struct {
	ws WindowStore
	ks serde.Serde[K]
	vs serde.Serde[V]
}

var _ ReadOnlyWindows[string, int64] = (*Windows[string, int64])(nil)

// TypedWindows returns a typed view of ws that encodes keys with ks and
// values with vs.
func TypedWindows[K, V any](ws WindowStore, ks serde.Serde[K], vs serde.Serde[V]) *Windows[K, V] {
	return &Windows[K, V]{ws: ws, ks: ks, vs: vs}
}

// Store returns the underlying byte-level window store.
func (w *Windows[K, V]) Store() WindowStore { return w.ws }

// Name returns the name of the underlying store.
func (w *Windows[K, V]) Name() string { return w.ws.Name() }

// Put sets the value of k's window starting at start; a v that serializes
// to nil deletes it. dropped reports a window that is no longer live (see
// WindowStore.Put).
func (w *Windows[K, V]) Put(k K, start int64, v V) (dropped bool, err error) {
	kb, err := encodeKey(w.ws.Name(), w.ks, k)
	if err != nil {
		return false, err
	}
	vb, err := w.vs.Serialize(w.ws.Name(), v)
	if err != nil {
		return false, fmt.Errorf("state: store %q: encode value: %w", w.ws.Name(), err)
	}
	return w.ws.Put(kb, start, vb)
}

// Fetch returns the value of k's window starting at start and true, or the
// zero V and false if there is none.
func (w *Windows[K, V]) Fetch(k K, start int64) (V, bool, error) {
	kb, err := encodeKey(w.ws.Name(), w.ks, k)
	if err != nil {
		var zero V
		return zero, false, err
	}
	vb, err := w.ws.Fetch(kb, start)
	return decodeValue(w.ws.Name(), w.vs, vb, err)
}

// FetchRange returns k's windows starting in [from, to], ascending. It
// panics if the scan fails; see FetchRangeErr.
func (w *Windows[K, V]) FetchRange(k K, from, to int64) iter.Seq2[Windowed[K], V] {
	return must(w.FetchRangeErr(k, from, to))
}

// FetchRangeErr returns k's windows starting in [from, to], ascending, and
// a function that reports why the last pass ended early, or nil.
func (w *Windows[K, V]) FetchRangeErr(k K, from, to int64) (iter.Seq2[Windowed[K], V], func() error) {
	return w.keyScan(k, func(kb []byte) WindowIterator { return w.ws.FetchRange(kb, from, to) })
}

// BackwardFetchRange is FetchRange, descending.
func (w *Windows[K, V]) BackwardFetchRange(k K, from, to int64) iter.Seq2[Windowed[K], V] {
	return must(w.BackwardFetchRangeErr(k, from, to))
}

// BackwardFetchRangeErr is FetchRangeErr, descending.
func (w *Windows[K, V]) BackwardFetchRangeErr(k K, from, to int64) (iter.Seq2[Windowed[K], V], func() error) {
	return w.keyScan(k, func(kb []byte) WindowIterator { return w.ws.BackwardFetchRange(kb, from, to) })
}

// FetchAll returns the windows of every key starting in [from, to], in
// WindowStore.FetchAll's order. It panics if the scan fails; see
// FetchAllErr.
func (w *Windows[K, V]) FetchAll(from, to int64) iter.Seq2[Windowed[K], V] {
	return must(w.FetchAllErr(from, to))
}

// FetchAllErr is FetchAll that reports a failure through errf.
func (w *Windows[K, V]) FetchAllErr(from, to int64) (iter.Seq2[Windowed[K], V], func() error) {
	return w.scan(func() WindowIterator { return w.ws.FetchAll(from, to) })
}

// BackwardFetchAll is FetchAll in reverse order.
func (w *Windows[K, V]) BackwardFetchAll(from, to int64) iter.Seq2[Windowed[K], V] {
	return must(w.BackwardFetchAllErr(from, to))
}

// BackwardFetchAllErr is FetchAllErr in reverse order.
func (w *Windows[K, V]) BackwardFetchAllErr(from, to int64) (iter.Seq2[Windowed[K], V], func() error) {
	return w.scan(func() WindowIterator { return w.ws.BackwardFetchAll(from, to) })
}

// All returns every window, in FetchAll's order. It panics if the scan
// fails; see AllErr.
func (w *Windows[K, V]) All() iter.Seq2[Windowed[K], V] { return must(w.AllErr()) }

// AllErr is All that reports a failure through errf.
func (w *Windows[K, V]) AllErr() (iter.Seq2[Windowed[K], V], func() error) {
	return w.scan(w.ws.All)
}

// BackwardAll is All in reverse order.
func (w *Windows[K, V]) BackwardAll() iter.Seq2[Windowed[K], V] { return must(w.BackwardAllErr()) }

// BackwardAllErr is AllErr in reverse order.
func (w *Windows[K, V]) BackwardAllErr() (iter.Seq2[Windowed[K], V], func() error) {
	return w.scan(w.ws.BackwardAll)
}

func (w *Windows[K, V]) keyScan(k K, open func([]byte) WindowIterator) (iter.Seq2[Windowed[K], V], func() error) {
	return windowScan(w.ws.Name(), w.ks, w.vs, func() (WindowIterator, error) {
		kb, err := encodeKey(w.ws.Name(), w.ks, k)
		if err != nil {
			return nil, err
		}
		return open(kb), nil
	})
}

func (w *Windows[K, V]) scan(open func() WindowIterator) (iter.Seq2[Windowed[K], V], func() error) {
	return windowScan(w.ws.Name(), w.ks, w.vs, func() (WindowIterator, error) { return open(), nil })
}

// ReadOnlySessions is the read side of a typed session store: what
// interactive queries get. *Sessions implements it. Its scans come in the
// two forms of ReadOnlyWindows'.
type ReadOnlySessions[K, V any] interface {
	// Name returns the name of the underlying store.
	Name() string
	// Fetch returns the value of k's session [start, end], and whether
	// there is one.
	Fetch(k K, start, end int64) (V, bool, error)
	// FindSessions returns k's sessions that end at or after earliestEnd
	// and start at or before latestStart, ascending by start, then end.
	FindSessions(k K, earliestEnd, latestStart int64) iter.Seq2[Windowed[K], V]
	// FindSessionsErr is FindSessions that reports a failure through errf.
	FindSessionsErr(k K, earliestEnd, latestStart int64) (seq iter.Seq2[Windowed[K], V], errf func() error)
	// BackwardFindSessions is FindSessions, descending.
	BackwardFindSessions(k K, earliestEnd, latestStart int64) iter.Seq2[Windowed[K], V]
	// BackwardFindSessionsErr is BackwardFindSessions that reports a
	// failure through errf.
	BackwardFindSessionsErr(k K, earliestEnd, latestStart int64) (seq iter.Seq2[Windowed[K], V], errf func() error)
	// FetchKey returns all of k's sessions, ascending.
	FetchKey(k K) iter.Seq2[Windowed[K], V]
	// FetchKeyErr is FetchKey that reports a failure through errf.
	FetchKeyErr(k K) (seq iter.Seq2[Windowed[K], V], errf func() error)
	// BackwardFetchKey is FetchKey, descending.
	BackwardFetchKey(k K) iter.Seq2[Windowed[K], V]
	// BackwardFetchKeyErr is BackwardFetchKey that reports a failure
	// through errf.
	BackwardFetchKeyErr(k K) (seq iter.Seq2[Windowed[K], V], errf func() error)
	// FetchAll returns the sessions of every key that end in [earliestEnd,
	// latestEnd], in SessionStore.FetchAll's order.
	FetchAll(earliestEnd, latestEnd int64) iter.Seq2[Windowed[K], V]
	// FetchAllErr is FetchAll that reports a failure through errf.
	FetchAllErr(earliestEnd, latestEnd int64) (seq iter.Seq2[Windowed[K], V], errf func() error)
	// BackwardFetchAll is FetchAll in reverse order.
	BackwardFetchAll(earliestEnd, latestEnd int64) iter.Seq2[Windowed[K], V]
	// BackwardFetchAllErr is BackwardFetchAll that reports a failure
	// through errf.
	BackwardFetchAllErr(earliestEnd, latestEnd int64) (seq iter.Seq2[Windowed[K], V], errf func() error)
	// All returns every session, in FetchAll's order.
	All() iter.Seq2[Windowed[K], V]
	// AllErr is All that reports a failure through errf.
	AllErr() (seq iter.Seq2[Windowed[K], V], errf func() error)
	// BackwardAll is All in reverse order.
	BackwardAll() iter.Seq2[Windowed[K], V]
	// BackwardAllErr is BackwardAll that reports a failure through errf.
	BackwardAllErr() (seq iter.Seq2[Windowed[K], V], errf func() error)
}

// Sessions is a typed view of a SessionStore, as Windows is of a
// WindowStore.
type Sessions[K, V any] struct {
	ss SessionStore
	ks serde.Serde[K]
	vs serde.Serde[V]
}

var _ ReadOnlySessions[string, int64] = (*Sessions[string, int64])(nil)

// TypedSessions returns a typed view of ss that encodes keys with ks and
// values with vs.
func TypedSessions[K, V any](ss SessionStore, ks serde.Serde[K], vs serde.Serde[V]) *Sessions[K, V] {
	return &Sessions[K, V]{ss: ss, ks: ks, vs: vs}
}

// Store returns the underlying byte-level session store.
func (s *Sessions[K, V]) Store() SessionStore { return s.ss }

// Name returns the name of the underlying store.
func (s *Sessions[K, V]) Name() string { return s.ss.Name() }

// Put sets the value of k's session [start, end]; a v that serializes to
// nil removes it. dropped reports a session that is no longer live (see
// SessionStore.Put).
func (s *Sessions[K, V]) Put(k K, start, end int64, v V) (dropped bool, err error) {
	kb, err := encodeKey(s.ss.Name(), s.ks, k)
	if err != nil {
		return false, err
	}
	vb, err := s.vs.Serialize(s.ss.Name(), v)
	if err != nil {
		return false, fmt.Errorf("state: store %q: encode value: %w", s.ss.Name(), err)
	}
	return s.ss.Put(kb, start, end, vb)
}

// Remove removes k's session [start, end].
func (s *Sessions[K, V]) Remove(k K, start, end int64) error {
	kb, err := encodeKey(s.ss.Name(), s.ks, k)
	if err != nil {
		return err
	}
	return s.ss.Remove(kb, start, end)
}

// Fetch returns the value of k's session [start, end] and true, or the zero
// V and false if there is none.
func (s *Sessions[K, V]) Fetch(k K, start, end int64) (V, bool, error) {
	kb, err := encodeKey(s.ss.Name(), s.ks, k)
	if err != nil {
		var zero V
		return zero, false, err
	}
	vb, err := s.ss.Fetch(kb, start, end)
	return decodeValue(s.ss.Name(), s.vs, vb, err)
}

// FindSessions returns k's sessions that end at or after earliestEnd and
// start at or before latestStart, ascending. It panics if the scan fails;
// see FindSessionsErr.
func (s *Sessions[K, V]) FindSessions(k K, earliestEnd, latestStart int64) iter.Seq2[Windowed[K], V] {
	return must(s.FindSessionsErr(k, earliestEnd, latestStart))
}

// FindSessionsErr is FindSessions that reports a failure through errf.
func (s *Sessions[K, V]) FindSessionsErr(k K, earliestEnd, latestStart int64) (iter.Seq2[Windowed[K], V], func() error) {
	return s.keyScan(k, func(kb []byte) WindowIterator { return s.ss.FindSessions(kb, earliestEnd, latestStart) })
}

// BackwardFindSessions is FindSessions, descending.
func (s *Sessions[K, V]) BackwardFindSessions(k K, earliestEnd, latestStart int64) iter.Seq2[Windowed[K], V] {
	return must(s.BackwardFindSessionsErr(k, earliestEnd, latestStart))
}

// BackwardFindSessionsErr is FindSessionsErr, descending.
func (s *Sessions[K, V]) BackwardFindSessionsErr(k K, earliestEnd, latestStart int64) (iter.Seq2[Windowed[K], V], func() error) {
	return s.keyScan(k, func(kb []byte) WindowIterator { return s.ss.BackwardFindSessions(kb, earliestEnd, latestStart) })
}

// FetchKey returns all of k's sessions, ascending. It panics if the scan
// fails; see FetchKeyErr.
func (s *Sessions[K, V]) FetchKey(k K) iter.Seq2[Windowed[K], V] { return must(s.FetchKeyErr(k)) }

// FetchKeyErr is FetchKey that reports a failure through errf.
func (s *Sessions[K, V]) FetchKeyErr(k K) (iter.Seq2[Windowed[K], V], func() error) {
	return s.keyScan(k, s.ss.FetchKey)
}

// BackwardFetchKey is FetchKey, descending.
func (s *Sessions[K, V]) BackwardFetchKey(k K) iter.Seq2[Windowed[K], V] {
	return must(s.BackwardFetchKeyErr(k))
}

// BackwardFetchKeyErr is FetchKeyErr, descending.
func (s *Sessions[K, V]) BackwardFetchKeyErr(k K) (iter.Seq2[Windowed[K], V], func() error) {
	return s.keyScan(k, s.ss.BackwardFetchKey)
}

// FetchAll returns the sessions of every key that end in [earliestEnd,
// latestEnd]. It panics if the scan fails; see FetchAllErr.
func (s *Sessions[K, V]) FetchAll(earliestEnd, latestEnd int64) iter.Seq2[Windowed[K], V] {
	return must(s.FetchAllErr(earliestEnd, latestEnd))
}

// FetchAllErr is FetchAll that reports a failure through errf.
func (s *Sessions[K, V]) FetchAllErr(earliestEnd, latestEnd int64) (iter.Seq2[Windowed[K], V], func() error) {
	return s.scan(func() WindowIterator { return s.ss.FetchAll(earliestEnd, latestEnd) })
}

// BackwardFetchAll is FetchAll in reverse order.
func (s *Sessions[K, V]) BackwardFetchAll(earliestEnd, latestEnd int64) iter.Seq2[Windowed[K], V] {
	return must(s.BackwardFetchAllErr(earliestEnd, latestEnd))
}

// BackwardFetchAllErr is FetchAllErr in reverse order.
func (s *Sessions[K, V]) BackwardFetchAllErr(earliestEnd, latestEnd int64) (iter.Seq2[Windowed[K], V], func() error) {
	return s.scan(func() WindowIterator { return s.ss.BackwardFetchAll(earliestEnd, latestEnd) })
}

// All returns every session. It panics if the scan fails; see AllErr.
func (s *Sessions[K, V]) All() iter.Seq2[Windowed[K], V] { return must(s.AllErr()) }

// AllErr is All that reports a failure through errf.
func (s *Sessions[K, V]) AllErr() (iter.Seq2[Windowed[K], V], func() error) {
	return s.scan(s.ss.All)
}

// BackwardAll is All in reverse order.
func (s *Sessions[K, V]) BackwardAll() iter.Seq2[Windowed[K], V] { return must(s.BackwardAllErr()) }

// BackwardAllErr is AllErr in reverse order.
func (s *Sessions[K, V]) BackwardAllErr() (iter.Seq2[Windowed[K], V], func() error) {
	return s.scan(s.ss.BackwardAll)
}

func (s *Sessions[K, V]) keyScan(k K, open func([]byte) WindowIterator) (iter.Seq2[Windowed[K], V], func() error) {
	return windowScan(s.ss.Name(), s.ks, s.vs, func() (WindowIterator, error) {
		kb, err := encodeKey(s.ss.Name(), s.ks, k)
		if err != nil {
			return nil, err
		}
		return open(kb), nil
	})
}

func (s *Sessions[K, V]) scan(open func() WindowIterator) (iter.Seq2[Windowed[K], V], func() error) {
	return windowScan(s.ss.Name(), s.ks, s.vs, func() (WindowIterator, error) { return open(), nil })
}

// windowScan returns a sequence that opens an iterator with open on each
// pass and decodes its windows, and a function that reports why the last
// pass ended early. A seq and its errf belong to one goroutine.
func windowScan[K, V any](name string, ks serde.Serde[K], vs serde.Serde[V], open func() (WindowIterator, error)) (iter.Seq2[Windowed[K], V], func() error) {
	var scanErr error
	seq := func(yield func(Windowed[K], V) bool) {
		it, err := open()
		if err != nil {
			scanErr = err
			return
		}
		scanErr = func() (err error) {
			defer func() {
				if cerr := it.Close(); err == nil {
					err = cerr
				}
			}()
			for it.Next() {
				k, err := ks.Deserialize(name, it.Key())
				if err != nil {
					return fmt.Errorf("state: store %q: decode key: %w", name, err)
				}
				v, err := vs.Deserialize(name, it.Value())
				if err != nil {
					return fmt.Errorf("state: store %q: decode value: %w", name, err)
				}
				if !yield(Windowed[K]{Key: k, Start: it.Start(), End: it.End()}, v) {
					return nil
				}
			}
			return it.Err()
		}()
	}
	return seq, func() error { return scanErr }
}

func encodeKey[K any](name string, ks serde.Serde[K], k K) ([]byte, error) {
	b, err := ks.Serialize(name, k)
	if err != nil {
		return nil, fmt.Errorf("state: store %q: encode key: %w", name, err)
	}
	return b, nil
}

// decodeValue turns the result of a byte-level fetch into a typed one.
func decodeValue[V any](name string, vs serde.Serde[V], vb []byte, err error) (V, bool, error) {
	var zero V
	if err != nil || vb == nil {
		return zero, false, err
	}
	v, err := vs.Deserialize(name, vb)
	if err != nil {
		return zero, false, fmt.Errorf("state: store %q: decode value: %w", name, err)
	}
	return v, true, nil
}
