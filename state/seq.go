package state

import "iter"

// Seq adapts it to a range-over-func sequence. The loop gets the iterator's
// Key and Value, valid only for that iteration of the loop body. Seq closes
// it when the loop ends, whether it ran out or broke early; the sequence can
// be ranged over once.
//
// Seq never panics on a failed iteration: the loop just ends early. Read
// the failure afterwards from it.Err (which stays valid after Close), or use
// SeqErr:
//
//	it := s.Prefix(p)
//	for k, v := range state.Seq(it) { ... }
//	if err := it.Err(); err != nil { ... }
func Seq(it Iterator) iter.Seq2[[]byte, []byte] {
	return func(yield func([]byte, []byte) bool) {
		defer it.Close()
		for it.Next() {
			if !yield(it.Key(), it.Value()) {
				return
			}
		}
	}
}

// SeqErr is Seq that also stores the iteration's error in *errp when the loop
// ends: the error that stopped the iterator, else the one Close returned. It
// leaves *errp unchanged when there was none, so a caller can pass the
// address of its named result:
//
//	var err error
//	for k, v := range state.SeqErr(s.All(), &err) { ... }
//	if err != nil { ... }
func SeqErr(it Iterator, errp *error) iter.Seq2[[]byte, []byte] {
	return func(yield func([]byte, []byte) bool) {
		defer func() {
			err := it.Err()
			if cerr := it.Close(); err == nil {
				err = cerr
			}
			if err != nil && errp != nil {
				*errp = err
			}
		}()
		for it.Next() {
			if !yield(it.Key(), it.Value()) {
				return
			}
		}
	}
}

// emptyIterator is an exhausted Iterator.
type emptyIterator struct{ err error }

func (emptyIterator) Next() bool     { return false }
func (emptyIterator) Key() []byte    { return nil }
func (emptyIterator) Value() []byte  { return nil }
func (e emptyIterator) Err() error   { return e.err }
func (e emptyIterator) Close() error { return e.err }

// Empty returns an Iterator with no pairs whose Err and Close return err
// (nil for a plain empty iterator). Engines return it for empty ranges, and
// wrappers for iterators that could not be created.
func Empty(err error) Iterator { return emptyIterator{err: err} }
