package state_test

import (
	"bytes"
	"errors"
	"slices"
	"testing"

	"github.com/streamwork-go/streamwork/state"
)

// sliceIter is an Iterator over fixed pairs that fails after failAt pairs
// (if failAt >= 0) and counts Close calls.
type sliceIter struct {
	keys   []string
	pos    int
	failAt int
	err    error
	closes int
}

var errBoom = errors.New("boom")

func (it *sliceIter) Next() bool {
	if it.err != nil || it.pos >= len(it.keys) {
		return false
	}
	if it.pos == it.failAt {
		it.err = errBoom
		return false
	}
	it.pos++
	return true
}
func (it *sliceIter) Key() []byte   { return []byte(it.keys[it.pos-1]) }
func (it *sliceIter) Value() []byte { return []byte("v" + it.keys[it.pos-1]) }
func (it *sliceIter) Err() error    { return it.err }
func (it *sliceIter) Close() error  { it.closes++; return nil } // reports nothing: SeqErr must ask Err

func TestSeqClosesOnBreakAndEnd(t *testing.T) {
	it := &sliceIter{keys: []string{"a", "b", "c"}, failAt: -1}
	var got []string
	for k, v := range state.Seq(it) {
		got = append(got, string(k)+"="+string(v))
		if len(got) == 2 {
			break
		}
	}
	if !slices.Equal(got, []string{"a=va", "b=vb"}) || it.closes != 1 {
		t.Fatalf("break: got %q, %d closes", got, it.closes)
	}
	it = &sliceIter{keys: []string{"a"}, failAt: -1}
	for range state.Seq(it) {
	}
	if it.closes != 1 {
		t.Fatalf("end: %d closes", it.closes)
	}
}

func TestSeqErr(t *testing.T) {
	it := &sliceIter{keys: []string{"a", "b", "c"}, failAt: 1}
	var err error
	n := 0
	for range state.SeqErr(it, &err) {
		n++
	}
	if n != 1 || !errors.Is(err, errBoom) || it.closes != 1 {
		t.Fatalf("SeqErr: %d pairs, err %v, %d closes", n, err, it.closes)
	}
	// Seq itself does not panic; Err tells.
	it = &sliceIter{keys: []string{"a", "b"}, failAt: 0}
	for range state.Seq(it) {
	}
	if !errors.Is(it.Err(), errBoom) {
		t.Fatal("Err after Seq")
	}
	// No error leaves *errp alone.
	err = nil
	for range state.SeqErr(&sliceIter{keys: []string{"a"}, failAt: -1}, &err) {
	}
	if err != nil {
		t.Fatal(err)
	}
}

func TestEmpty(t *testing.T) {
	it := state.Empty(errBoom)
	if it.Next() || it.Key() != nil || it.Value() != nil || it.Err() != errBoom || it.Close() != errBoom {
		t.Fatal("Empty(err)")
	}
	if it := state.Empty(nil); it.Next() || it.Close() != nil {
		t.Fatal("Empty(nil)")
	}
}

func TestPrefixEnd(t *testing.T) {
	for _, tc := range []struct{ in, want []byte }{
		{nil, nil},
		{[]byte{}, nil},
		{[]byte("a"), []byte("b")},
		{[]byte("ab"), []byte("ac")},
		{[]byte{'a', 0xff}, []byte("b")},
		{[]byte{'a', 0xff, 0xff}, []byte("b")},
		{[]byte{0xfe, 0xff}, []byte{0xff}},
		{[]byte{0xff}, nil},
		{[]byte{0xff, 0xff}, nil},
		{[]byte{0x00}, []byte{0x01}},
		{[]byte{'a', 0x00}, []byte{'a', 0x01}},
	} {
		in := bytes.Clone(tc.in)
		got := state.PrefixEnd(tc.in)
		if !bytes.Equal(got, tc.want) || (got == nil) != (tc.want == nil) {
			t.Errorf("PrefixEnd(%x) = %x, want %x", tc.in, got, tc.want)
		}
		if !bytes.Equal(in, tc.in) {
			t.Errorf("PrefixEnd modified its argument")
		}
	}
}
