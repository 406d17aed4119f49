package pebble_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/streamwork-go/streamwork/state"
	"github.com/streamwork-go/streamwork/state/pebble"
)

// A store records the Layout it was made with: the same layout opens it,
// another one or none recorded while it holds data is ErrIncompatible, and
// an Open without Layout checks nothing.
func TestLayoutRecordedAndChecked(t *testing.T) {
	env, err := pebble.NewEnv(pebble.FS(vfs.NewMem()))
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	open := func(dir string, opts ...pebble.StoreOpt) error {
		t.Helper()
		s, err := env.Open(dir, "s", opts...)
		if err != nil {
			return err
		}
		if err := s.Put([]byte("k"), []byte("v")); err != nil {
			t.Fatal(err)
		}
		if err := s.Flush(); err != nil {
			t.Fatal(err)
		}
		return s.Close()
	}
	steps := []struct {
		dir    string
		opts   []pebble.StoreOpt
		wantOK bool
	}{
		{"/a", []pebble.StoreOpt{pebble.Layout("key-value")}, true}, // new: recorded
		{"/a", []pebble.StoreOpt{pebble.Layout("key-value")}, true}, // same layout
		{"/a", nil, true}, // not checked
		{"/a", []pebble.StoreOpt{pebble.Layout("windowed")}, false}, // another layout
		{"/b", nil, true}, // data, no layout
		{"/b", []pebble.StoreOpt{pebble.Layout("key-value")}, false}, // data of no recorded layout
		{"/c", []pebble.StoreOpt{pebble.Layout("windowed"), pebble.Transactional()}, true},
		{"/c", []pebble.StoreOpt{pebble.Layout("windowed")}, true},
	}
	for i, st := range steps {
		err := open(st.dir, st.opts...)
		if st.wantOK && err != nil {
			t.Fatalf("step %d (%s): %v", i, st.dir, err)
		}
		if !st.wantOK && !errors.Is(err, state.ErrIncompatible) {
			t.Fatalf("step %d (%s): err = %v, want state.ErrIncompatible", i, st.dir, err)
		}
	}
	// An empty store made without a layout takes one.
	s, err := env.Open("/d", "s")
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := open("/d", pebble.Layout("key-value")); err != nil {
		t.Fatalf("empty store without a layout: %v", err)
	}
	if err := open("/d", pebble.Layout("windowed")); !errors.Is(err, state.ErrIncompatible) {
		t.Fatalf("empty store given a layout, then another: err = %v, want state.ErrIncompatible", err)
	}
}

// A store made for one layout is not opened as another.
func ExampleLayout() {
	env, err := pebble.NewEnv(pebble.FS(vfs.NewMem()))
	if err != nil {
		panic(err)
	}
	defer env.Close()
	s, err := env.Open("/stores/0_0/counts", "counts", pebble.Layout("key-value"))
	if err != nil {
		panic(err)
	}
	_ = s.Put([]byte("a"), []byte("1"))
	_ = s.Close()

	_, err = env.Open("/stores/0_0/counts", "counts", pebble.Layout("windowed"))
	fmt.Println(errors.Is(err, state.ErrIncompatible))
	// Output:
	// true
}
