package pebble_test

import (
	"fmt"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/streamwork-go/streamwork/state/pebble"
)

// A transactional store's reads see its open transaction; Commit makes it
// durable with the metadata written in it, Abort drops it.
func ExampleTransactional() {
	env, err := pebble.NewEnv(pebble.FS(vfs.NewMem()))
	if err != nil {
		panic(err)
	}
	defer env.Close()
	s, err := env.Open("/stores/0_0/counts", "counts", pebble.Transactional())
	if err != nil {
		panic(err)
	}
	defer s.Close()

	_ = s.Put([]byte("a"), []byte("1"))
	_ = s.PutMeta("offset", []byte("1"))
	if err := s.Commit(); err != nil { // data and offset, atomically
		panic(err)
	}
	_ = s.Put([]byte("a"), []byte("2"))
	v, _ := s.Get([]byte("a"))
	fmt.Printf("in the transaction: a=%s (%d uncommitted)\n", v, s.Uncommitted())
	_ = s.Abort()
	v, _ = s.Get([]byte("a"))
	off, _ := s.GetMeta("offset")
	fmt.Printf("after Abort: a=%s, offset %s\n", v, off)
	// Output:
	// in the transaction: a=2 (1 uncommitted)
	// after Abort: a=1, offset 1
}
