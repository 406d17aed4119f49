package state_test

import (
	"fmt"

	"github.com/streamwork-go/streamwork/serde"
	"github.com/streamwork-go/streamwork/state"
	"github.com/streamwork-go/streamwork/state/memory"
)

// A word count keeps its counts in a typed view of a store. Reads come back
// in bytewise key order.
func Example() {
	s := memory.New("word-counts")
	defer s.Close()
	counts := state.Typed(s, serde.String, serde.Int64)

	for _, w := range []string{"to", "be", "or", "not", "to", "be"} {
		n, _, err := counts.Get(w)
		if err != nil {
			panic(err)
		}
		if err := counts.Put(w, n+1); err != nil {
			panic(err)
		}
	}

	seq, errf := counts.AllErr()
	for w, n := range seq {
		fmt.Println(w, n)
	}
	if err := errf(); err != nil {
		panic(err)
	}
	// Output:
	// be 2
	// not 1
	// or 1
	// to 2
}

// The byte-level store iterates pull style; Seq adapts an iterator to a
// range loop and closes it.
func ExampleSeq() {
	s := memory.New("users")
	defer s.Close()
	for _, k := range []string{"user:ann", "user:bob", "group:admins", "user:cy"} {
		if err := s.Put([]byte(k), []byte("x")); err != nil {
			panic(err)
		}
	}

	it := s.Prefix([]byte("user:"))
	for k := range state.Seq(it) {
		fmt.Println(string(k))
	}
	if err := it.Err(); err != nil {
		panic(err)
	}
	// Output:
	// user:ann
	// user:bob
	// user:cy
}
