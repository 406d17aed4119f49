package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/streamwork-go/streamwork/serde"
	"github.com/streamwork-go/streamwork/state"
)

// Opener returns a new, empty store for one test. The suite closes it; the
// opener may register cleanups on tb (Close is idempotent).
type Opener func(tb testing.TB) state.Store

// Run runs the conformance suite, one subtest per behavior, each on a new
// store from open.
func Run(t *testing.T, open Opener) {
	tests := []struct {
		name string
		fn   func(*testing.T, state.Store)
	}{
		{"GetPutDelete", testGetPutDelete},
		{"NilAndEmptyValues", testNilAndEmptyValues},
		{"Ownership", testOwnership},
		{"RangeBounds", testRangeBounds},
		{"Prefix", testPrefix},
		{"DeleteRange", testDeleteRange},
		{"AllOrder", testAllOrder},
		{"IteratorLifetime", testIteratorLifetime},
		{"Seq", testSeq},
		{"IterateWhileWriting", testIterateWhileWriting},
		{"ConcurrentReaders", testConcurrentReaders},
		{"ApproximateCount", testApproximateCount},
		{"DeleteRangeAndWriteAgain", testDeleteRangeAndWriteAgain},
		{"Meta", testMeta},
		{"Typed", testTyped},
		{"UseAfterClose", testUseAfterClose},
		{"CloseStopsIterators", testCloseStopsIterators},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			defer func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			}()
			tc.fn(t, s)
		})
	}
}

// kv is a key-value pair, copied out of an iterator.
type kv struct{ k, v string }

// collect drains it, closes it and fails t on an error.
func collect(t testing.TB, it state.Iterator) []kv {
	t.Helper()
	var out []kv
	for it.Next() {
		out = append(out, kv{string(it.Key()), string(it.Value())})
	}
	if err := it.Close(); err != nil {
		t.Fatalf("iterator: %v", err)
	}
	return out
}

func keys(pairs []kv) []string {
	out := make([]string, len(pairs))
	for i, p := range pairs {
		out[i] = p.k
	}
	return out
}

func mustPut(t testing.TB, s state.Store, k, v string) {
	t.Helper()
	if err := s.Put([]byte(k), []byte(v)); err != nil {
		t.Fatalf("Put(%q): %v", k, err)
	}
}

func mustGet(t testing.TB, s state.Store, k string) []byte {
	t.Helper()
	v, err := s.Get([]byte(k))
	if err != nil {
		t.Fatalf("Get(%q): %v", k, err)
	}
	return v
}

func testGetPutDelete(t *testing.T, s state.Store) {
	if v := mustGet(t, s, "a"); v != nil {
		t.Fatalf("Get of absent key = %q, want nil", v)
	}
	mustPut(t, s, "a", "1")
	if v := mustGet(t, s, "a"); string(v) != "1" {
		t.Fatalf("Get = %q, want 1", v)
	}
	mustPut(t, s, "a", "2")
	if v := mustGet(t, s, "a"); string(v) != "2" {
		t.Fatalf("Get after overwrite = %q, want 2", v)
	}
	if err := s.Delete([]byte("a")); err != nil {
		t.Fatal(err)
	}
	if v := mustGet(t, s, "a"); v != nil {
		t.Fatalf("Get after Delete = %q, want nil", v)
	}
	if err := s.Delete([]byte("never")); err != nil {
		t.Fatalf("Delete of absent key: %v", err)
	}
	mustPut(t, s, "", "empty key")
	if v := mustGet(t, s, ""); string(v) != "empty key" {
		t.Fatalf("Get of empty key = %q", v)
	}
	if s.Name() == "" {
		t.Error("Name is empty")
	}
	if err := s.Flush(); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	if v := mustGet(t, s, ""); string(v) != "empty key" {
		t.Fatalf("Get after Flush = %q", v)
	}
}

func testNilAndEmptyValues(t *testing.T, s state.Store) {
	if err := s.Put([]byte("e"), []byte{}); err != nil {
		t.Fatal(err)
	}
	v := mustGet(t, s, "e")
	if v == nil || len(v) != 0 {
		t.Fatalf("Get of empty value = %#v, want empty non-nil", v)
	}
	got := collect(t, s.All())
	if !slices.Equal(got, []kv{{"e", ""}}) {
		t.Fatalf("All = %q", got)
	}
	mustPut(t, s, "n", "x")
	if err := s.Put([]byte("n"), nil); err != nil {
		t.Fatal(err)
	}
	if v := mustGet(t, s, "n"); v != nil {
		t.Fatalf("Put(k, nil) did not delete: Get = %q", v)
	}
}

func testOwnership(t *testing.T, s state.Store) {
	k, v := []byte("key"), []byte("value")
	if err := s.Put(k, v); err != nil {
		t.Fatal(err)
	}
	k[0], v[0] = 'X', 'X' // the store must have copied them
	got := mustGet(t, s, "key")
	if string(got) != "value" {
		t.Fatalf("store kept the caller's value buffer: %q", got)
	}
	got[0] = 'Y' // the caller owns what Get returns
	if got := mustGet(t, s, "key"); string(got) != "value" {
		t.Fatalf("Get returned the store's own buffer: %q", got)
	}
	if got := collect(t, s.All()); !slices.Equal(got, []kv{{"key", "value"}}) {
		t.Fatalf("All = %q", got)
	}
}

func testRangeBounds(t *testing.T, s state.Store) {
	for _, k := range []string{"", "a", "b", "b\x00", "ba", "c", "d"} {
		mustPut(t, s, k, "v"+k)
	}
	b := func(s string) []byte { return []byte(s) }
	tests := []struct {
		from, to []byte
		want     []string
	}{
		{nil, nil, []string{"", "a", "b", "b\x00", "ba", "c", "d"}},
		{b("b"), nil, []string{"b", "b\x00", "ba", "c", "d"}},
		{nil, b("b"), []string{"", "a"}},
		{b("b"), b("c"), []string{"b", "b\x00", "ba"}},
		{b("aa"), b("bb"), []string{"b", "b\x00", "ba"}},
		{b("b\x00"), b("ba"), []string{"b\x00"}},
		{b(""), b("a"), []string{""}},
		{b(""), nil, []string{"", "a", "b", "b\x00", "ba", "c", "d"}},
		{b("c"), b("c"), nil},
		{b("d"), b("a"), nil},
		{nil, b(""), nil},
		{b("e"), nil, nil},
		{b("c"), b("zzz"), []string{"c", "d"}},
	}
	for _, tc := range tests {
		got := keys(collect(t, s.Range(tc.from, tc.to)))
		if !slices.Equal(got, tc.want) {
			t.Errorf("Range(%q, %q) = %q, want %q", tc.from, tc.to, got, tc.want)
		}
	}
	// Values come with their keys.
	for _, p := range collect(t, s.Range(b("a"), b("c"))) {
		if p.v != "v"+p.k {
			t.Errorf("Range: key %q has value %q", p.k, p.v)
		}
	}
	// The store must not keep the bounds.
	from, to := b("a"), b("c")
	it := s.Range(from, to)
	from[0], to[0] = 'z', 'z'
	if got := keys(collect(t, it)); !slices.Equal(got, []string{"a", "b", "b\x00", "ba"}) {
		t.Errorf("Range after the caller changed its bounds = %q", got)
	}
}

func testPrefix(t *testing.T, s state.Store) {
	all := []string{"", "\x00", "a", "a\x00", "ab", "a\xff", "a\xff\x00", "a\xff\xff", "b", "\xfe\xff", "\xff", "\xff\x00", "\xff\xff", "\xff\xff\xff"}
	for _, k := range all {
		mustPut(t, s, k, "v")
	}
	tests := []struct {
		prefix string
		want   []string
	}{
		{"", all},
		{"a", []string{"a", "a\x00", "ab", "a\xff", "a\xff\x00", "a\xff\xff"}},
		{"a\xff", []string{"a\xff", "a\xff\x00", "a\xff\xff"}},
		{"a\xff\xff", []string{"a\xff\xff"}},
		{"\xfe", []string{"\xfe\xff"}},
		{"\xff", []string{"\xff", "\xff\x00", "\xff\xff", "\xff\xff\xff"}},
		{"\xff\xff", []string{"\xff\xff", "\xff\xff\xff"}},
		{"\xff\xff\xff\xff", nil},
		{"\x00", []string{"\x00"}},
		{"c", nil},
	}
	for _, tc := range tests {
		got := keys(collect(t, s.Prefix([]byte(tc.prefix))))
		if !slices.Equal(got, tc.want) {
			t.Errorf("Prefix(%q) = %q, want %q", tc.prefix, got, tc.want)
		}
	}
}

func testAllOrder(t *testing.T, s state.Store) {
	r := newRand(1)
	want := map[string]string{}
	for range 500 {
		k := r.key(8)
		v := fmt.Sprint(r.n(1000))
		want[k] = v
		mustPut(t, s, k, v)
	}
	got := collect(t, s.All())
	wantKeys := make([]string, 0, len(want))
	for k := range want {
		wantKeys = append(wantKeys, k)
	}
	slices.Sort(wantKeys) // Go compares strings bytewise
	if !slices.Equal(keys(got), wantKeys) {
		t.Fatalf("All returned %d keys not in bytewise order (or missing keys); want %d", len(got), len(wantKeys))
	}
	for _, p := range got {
		if want[p.k] != p.v {
			t.Fatalf("All: %q = %q, want %q", p.k, p.v, want[p.k])
		}
	}
}

func testIteratorLifetime(t *testing.T, s state.Store) {
	for i := range 100 {
		mustPut(t, s, fmt.Sprintf("k%03d", i), fmt.Sprintf("v%03d", i))
	}
	// Key and Value stay valid until the next Next.
	it := s.All()
	if !it.Next() {
		t.Fatal("Next = false on a non-empty store")
	}
	k, v := it.Key(), it.Value()
	if string(k) != "k000" || string(v) != "v000" {
		t.Fatalf("first pair = %q %q", k, v)
	}
	// Close early; Close again; Next after Close.
	if err := it.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := it.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if it.Next() {
		t.Fatal("Next after Close = true")
	}
	if err := it.Err(); err != nil {
		t.Fatalf("Err after Close = %v", err)
	}
	// Next after exhaustion stays false.
	it = s.Prefix([]byte("k09"))
	n := 0
	for it.Next() {
		n++
	}
	if n != 10 || it.Next() || it.Err() != nil {
		t.Fatalf("prefix scan: %d pairs, err %v", n, it.Err())
	}
	if err := it.Close(); err != nil {
		t.Fatal(err)
	}
	// Many iterators open at once, interleaved.
	its := make([]state.Iterator, 10)
	for i := range its {
		its[i] = s.Range([]byte(fmt.Sprintf("k%03d", i*10)), nil)
	}
	for i, it := range its {
		for j := range 5 {
			if !it.Next() || string(it.Key()) != fmt.Sprintf("k%03d", i*10+j) {
				t.Fatalf("iterator %d step %d at %q", i, j, it.Key())
			}
		}
	}
	for _, it := range its {
		if err := it.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func testSeq(t *testing.T, s state.Store) {
	for i := range 10 {
		mustPut(t, s, fmt.Sprint(i), "v")
	}
	var got []string
	for k := range state.Seq(s.All()) {
		got = append(got, string(k))
		if len(got) == 3 {
			break // Seq closes the iterator
		}
	}
	if !slices.Equal(got, []string{"0", "1", "2"}) {
		t.Fatalf("Seq with break = %q", got)
	}
	var err error
	n := 0
	for range state.SeqErr(s.Prefix([]byte("5")), &err) {
		n++
	}
	if n != 1 || err != nil {
		t.Fatalf("SeqErr: %d pairs, err %v", n, err)
	}
}

func testIterateWhileWriting(t *testing.T, s state.Store) {
	for i := range 200 {
		mustPut(t, s, fmt.Sprintf("k%03d", i), "old")
	}
	it := s.All()
	var got []kv
	for i := 0; it.Next(); i++ {
		got = append(got, kv{string(it.Key()), string(it.Value())})
		// Overwrite, delete and insert, ahead of and behind the iterator.
		mustPut(t, s, fmt.Sprintf("k%03d", (i+50)%200), "new")
		if err := s.Delete([]byte(fmt.Sprintf("k%03d", (i+100)%200))); err != nil {
			t.Fatal(err)
		}
		mustPut(t, s, fmt.Sprintf("k%03d+", i), "inserted")
	}
	if err := it.Close(); err != nil {
		t.Fatal(err)
	}
	if len(got) != 200 {
		t.Fatalf("iterator saw %d pairs, want the 200 of its snapshot", len(got))
	}
	for i, p := range got {
		if p.k != fmt.Sprintf("k%03d", i) || p.v != "old" {
			t.Fatalf("pair %d = %q, want the snapshot's k%03d=old", i, p, i)
		}
	}
}

func testConcurrentReaders(t *testing.T, s state.Store) {
	const n = 300
	value := func(i, version int) string { return fmt.Sprintf("%d:%d", i, version) }
	check := func(k, v []byte) error {
		var i, version int
		if _, err := fmt.Sscanf(string(v), "%d:%d", &i, &version); err != nil {
			return fmt.Errorf("key %q: torn value %q", k, v)
		}
		if want := fmt.Sprintf("k%04d", i); string(k) != want {
			return fmt.Errorf("key %q has value of %s", k, want)
		}
		return nil
	}
	for i := range n {
		mustPut(t, s, fmt.Sprintf("k%04d", i), value(i, 0))
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	report := func(err error) {
		select {
		case errs <- err:
		default: // enough errors already
		}
	}
	for r := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for round := 0; ; round++ {
				select {
				case <-done:
					return
				default:
				}
				if r%2 == 0 {
					k := fmt.Sprintf("k%04d", (round*7+r)%n)
					v, err := s.Get([]byte(k))
					if err == nil && v != nil {
						err = check([]byte(k), v)
					}
					if err != nil {
						report(err)
						return
					}
					continue
				}
				it := s.Range([]byte("k0100"), []byte("k0200"))
				var prev []byte
				for it.Next() {
					if prev != nil && bytes.Compare(prev, it.Key()) >= 0 {
						report(fmt.Errorf("scan out of order: %q then %q", prev, it.Key()))
					}
					if err := check(it.Key(), it.Value()); err != nil {
						report(err)
					}
					prev = append(prev[:0], it.Key()...)
				}
				if err := it.Close(); err != nil {
					report(err)
					return
				}
				_ = s.ApproximateCount()
			}
		}()
	}
	for version := 1; version <= 5; version++ {
		for i := range n {
			k := fmt.Sprintf("k%04d", i)
			if i%10 == version {
				if err := s.Delete([]byte(k)); err != nil {
					t.Fatal(err)
				}
				continue
			}
			mustPut(t, s, k, value(i, version))
		}
		if err := s.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	close(done)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func testApproximateCount(t *testing.T, s state.Store) {
	if n := s.ApproximateCount(); n != 0 {
		t.Fatalf("empty store: ApproximateCount = %d", n)
	}
	for i := range 100 {
		mustPut(t, s, fmt.Sprintf("k%03d", i), "v")
	}
	if n := s.ApproximateCount(); n != 100 {
		t.Fatalf("after 100 distinct puts: ApproximateCount = %d", n)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if n := s.ApproximateCount(); n != 100 {
		t.Fatalf("after Flush: ApproximateCount = %d", n)
	}
	for i := range 100 {
		if err := s.Delete([]byte(fmt.Sprintf("k%03d", i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if n := s.ApproximateCount(); n != 0 {
		t.Fatalf("after deleting all: ApproximateCount = %d", n)
	}
}

func testTyped(t *testing.T, s state.Store) {
	kv := state.Typed(s, serde.String, serde.Int64)
	if _, ok, err := kv.Get("x"); ok || err != nil {
		t.Fatalf("Get of absent = %v, %v", ok, err)
	}
	for i, w := range []string{"b", "a", "c", "d"} {
		if err := kv.Put(w, int64(i)); err != nil {
			t.Fatal(err)
		}
	}
	if v, ok, err := kv.Get("c"); v != 2 || !ok || err != nil {
		t.Fatalf("Get(c) = %d, %v, %v", v, ok, err)
	}
	if err := kv.Delete("d"); err != nil {
		t.Fatal(err)
	}
	var got []string
	for k, v := range kv.All() {
		got = append(got, fmt.Sprintf("%s=%d", k, v))
	}
	if !slices.Equal(got, []string{"a=1", "b=0", "c=2"}) {
		t.Fatalf("All = %q", got)
	}
	got = got[:0]
	seq, errf := kv.RangeErr("b", "c")
	for k := range seq {
		got = append(got, k)
	}
	if !slices.Equal(got, []string{"b"}) || errf() != nil {
		t.Fatalf("RangeErr(b, c) = %q, %v", got, errf())
	}
	// A value that is not 8 bytes fails to decode: the error is reported.
	if err := s.Put([]byte("bad"), []byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := kv.Get("bad"); !errors.Is(err, serde.ErrInvalidLength) {
		t.Fatalf("Get of undecodable value: err = %v", err)
	}
	seq, errf = kv.AllErr()
	n := 0
	for range seq {
		n++
	}
	if n != 2 || !errors.Is(errf(), serde.ErrInvalidLength) { // a, b, then "bad"
		t.Fatalf("AllErr over an undecodable value: %d pairs, err %v", n, errf())
	}
	func() {
		defer func() {
			if err, _ := recover().(error); !errors.Is(err, serde.ErrInvalidLength) {
				t.Fatalf("All over an undecodable value: panic %v", err)
			}
		}()
		for range kv.All() {
		}
	}()
	var ro state.ReadOnlyKeyValue[string, int64] = kv
	if ro.Name() != s.Name() || ro.ApproximateCount() == 0 {
		t.Fatalf("ReadOnlyKeyValue: name %q, count %d", ro.Name(), ro.ApproximateCount())
	}
}

// expectClosedPanic fails t unless fn panics with state.ErrClosed.
func expectClosedPanic(t *testing.T, what string, fn func()) {
	t.Helper()
	defer func() {
		t.Helper()
		r := recover()
		if err, _ := r.(error); !errors.Is(err, state.ErrClosed) {
			t.Errorf("%s after Close: panic %v, want state.ErrClosed", what, r)
		}
	}()
	fn()
}

func testUseAfterClose(t *testing.T, s state.Store) {
	mustPut(t, s, "a", "1")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	_ = s.Name() // allowed
	k := []byte("a")
	expectClosedPanic(t, "Get", func() { _, _ = s.Get(k) })
	expectClosedPanic(t, "Put", func() { _ = s.Put(k, k) })
	expectClosedPanic(t, "Put nil", func() { _ = s.Put(k, nil) })
	expectClosedPanic(t, "Delete", func() { _ = s.Delete(k) })
	expectClosedPanic(t, "DeleteRange", func() { _ = s.DeleteRange(nil, nil) })
	expectClosedPanic(t, "Range", func() { _ = s.Range(nil, nil) })
	expectClosedPanic(t, "Range empty", func() { _ = s.Range(k, k) })
	expectClosedPanic(t, "Prefix", func() { _ = s.Prefix(k) })
	expectClosedPanic(t, "All", func() { _ = s.All() })
	expectClosedPanic(t, "ApproximateCount", func() { _ = s.ApproximateCount() })
	expectClosedPanic(t, "Flush", func() { _ = s.Flush() })
	expectClosedPanic(t, "Typed Get", func() { _, _, _ = state.Typed(s, serde.String, serde.String).Get("a") })
}

func testCloseStopsIterators(t *testing.T, s state.Store) {
	for i := range 10 {
		mustPut(t, s, fmt.Sprint(i), "v")
	}
	it := s.All()
	if !it.Next() {
		t.Fatal("Next = false")
	}
	key := it.Key()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if string(key) != "0" {
		t.Fatalf("Key held across the store's Close = %q", key)
	}
	if it.Next() {
		t.Fatal("Next after the store closed = true")
	}
	if err := it.Err(); !errors.Is(err, state.ErrClosed) {
		t.Fatalf("Err after the store closed = %v, want state.ErrClosed", err)
	}
	if err := it.Close(); !errors.Is(err, state.ErrClosed) {
		t.Fatalf("Close after the store closed = %v, want state.ErrClosed", err)
	}
}

func testDeleteRangeAndWriteAgain(t *testing.T, s state.Store) {
	for _, k := range []string{"", "a", "ab", "b", "ba", "c", "d"} {
		mustPut(t, s, k, "v"+k)
	}
	del := func(from, to []byte) {
		t.Helper()
		if err := s.DeleteRange(from, to); err != nil {
			t.Fatalf("DeleteRange(%q, %q): %v", from, to, err)
		}
	}
	del([]byte("a"), []byte("b")) // a, ab
	if got := keys(collect(t, s.All())); !slices.Equal(got, []string{"", "b", "ba", "c", "d"}) {
		t.Fatalf("after DeleteRange(a, b): %q", got)
	}
	del([]byte("c"), []byte("c")) // empty
	del([]byte("d"), []byte("c")) // inverted: empty
	del(nil, []byte{})            // empty non-nil to: empty
	if got := keys(collect(t, s.All())); !slices.Equal(got, []string{"", "b", "ba", "c", "d"}) {
		t.Fatalf("after empty ranges: %q", got)
	}
	del([]byte("c"), nil) // c, d
	del(nil, []byte("b")) // ""
	if got := keys(collect(t, s.All())); !slices.Equal(got, []string{"b", "ba"}) {
		t.Fatalf("after open-ended ranges: %q", got)
	}
	if v := mustGet(t, s, "c"); v != nil {
		t.Fatalf("Get(c) after DeleteRange = %q", v)
	}
	mustPut(t, s, "c", "again")
	if v := mustGet(t, s, "c"); string(v) != "again" {
		t.Fatalf("Get(c) after a put over a range tombstone = %q", v)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	del(nil, nil)
	if got := collect(t, s.All()); len(got) != 0 {
		t.Fatalf("after DeleteRange(nil, nil): %v", got)
	}
}

func testMeta(t *testing.T, s state.Store) {
	if v, err := s.GetMeta("offset"); err != nil || v != nil {
		t.Fatalf("GetMeta of an absent record = %q, %v", v, err)
	}
	mustPut(t, s, "offset", "data")
	if err := s.PutMeta("offset", []byte("meta")); err != nil {
		t.Fatal(err)
	}
	if err := s.PutMeta("empty", []byte{}); err != nil {
		t.Fatal(err)
	}
	if v, err := s.GetMeta("offset"); err != nil || string(v) != "meta" {
		t.Fatalf("GetMeta(offset) = %q, %v", v, err)
	}
	if v, err := s.GetMeta("empty"); err != nil || v == nil || len(v) != 0 {
		t.Fatalf("GetMeta(empty) = %q (nil %v), %v; want a non-nil empty value", v, v == nil, err)
	}
	// Metadata is invisible to the data's reads.
	if v := mustGet(t, s, "offset"); string(v) != "data" {
		t.Fatalf("Get(offset) = %q, want the data's value", v)
	}
	if got := keys(collect(t, s.All())); !slices.Equal(got, []string{"offset"}) {
		t.Fatalf("All sees %q, want only the data key", got)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if n := s.ApproximateCount(); n != 1 {
		t.Fatalf("ApproximateCount = %d, want 1 (metadata left out)", n)
	}
	if err := s.DeleteRange(nil, nil); err != nil {
		t.Fatal(err)
	}
	if v, err := s.GetMeta("offset"); err != nil || string(v) != "meta" {
		t.Fatalf("GetMeta after DeleteRange(nil, nil) = %q, %v; metadata must stay", v, err)
	}
	// The caller's slice is copied.
	b := []byte("x")
	if err := s.PutMeta("copy", b); err != nil {
		t.Fatal(err)
	}
	b[0] = 'y'
	if v, _ := s.GetMeta("copy"); string(v) != "x" {
		t.Fatalf("GetMeta(copy) = %q: the store kept the caller's slice", v)
	}
	if err := s.PutMeta("offset", nil); err != nil {
		t.Fatal(err)
	}
	if v, err := s.GetMeta("offset"); err != nil || v != nil {
		t.Fatalf("GetMeta after PutMeta(nil) = %q, %v", v, err)
	}
}
