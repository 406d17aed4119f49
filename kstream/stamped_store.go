package kstream

import (
	"encoding/binary"
	"fmt"

	"github.com/streamwork-go/streamwork/state"
)

// stampedStore is the processor API's view of a DSL store whose values are
// stamped (engine.StoreSpec.Timestamped: an 8-byte timestamp, then the
// value): reads return the values without their timestamp, writes stamp
// them with the current record's timestamp.
type stampedStore struct {
	state.Store
	t *task
}

func (s stampedStore) Get(key []byte) ([]byte, error) {
	v, err := s.Store.Get(key)
	if err != nil || v == nil {
		return v, err
	}
	return unstamp(s.Name(), v)
}

func (s stampedStore) Put(key, value []byte) error {
	if value == nil {
		return s.Store.Delete(key)
	}
	b := binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(value)), uint64(s.t.CurTs))
	return s.Store.Put(key, append(b, value...))
}

func (s stampedStore) Range(from, to []byte) state.Iterator {
	return &unstampIter{Iterator: s.Store.Range(from, to), name: s.Name()}
}

func (s stampedStore) Prefix(prefix []byte) state.Iterator {
	return &unstampIter{Iterator: s.Store.Prefix(prefix), name: s.Name()}
}

func unstamp(name string, v []byte) ([]byte, error) {
	if len(v) < 8 {
		return nil, fmt.Errorf("kstream: store %q: timestamped value of %d bytes", name, len(v))
	}
	return v[8:], nil
}

// unstampIter strips the timestamps of an iterator's values; a value too
// short to hold one ends the iteration with an error.
type unstampIter struct {
	state.Iterator
	name string
	err  error
}

func (it *unstampIter) Next() bool {
	if it.err != nil || !it.Iterator.Next() {
		return false
	}
	if len(it.Iterator.Value()) < 8 {
		_, it.err = unstamp(it.name, it.Iterator.Value())
		return false
	}
	return true
}

func (it *unstampIter) Value() []byte { return it.Iterator.Value()[8:] }

func (it *unstampIter) Err() error {
	if it.err != nil {
		return it.err
	}
	return it.Iterator.Err()
}

func (it *unstampIter) Close() error {
	err := it.Iterator.Close()
	if it.err != nil {
		return it.err
	}
	return err
}

func (s stampedStore) All() state.Iterator {
	return &unstampIter{Iterator: s.Store.All(), name: s.Name()}
}
