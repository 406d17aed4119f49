package storetest

import (
	"slices"
	"testing"

	"github.com/streamwork-go/streamwork/state"
)

// testDeleteRange checks DeleteRange's bounds (those of Range), that an
// iterator opened before it keeps its snapshot, that deleted keys can be
// written again, and that the store does not keep the bounds.
func testDeleteRange(t *testing.T, s state.Store) {
	all := []string{"", "a", "b", "b\x00", "ba", "c", "d", "\xff", "\xff\xff"}
	load := func() {
		t.Helper()
		for _, k := range all {
			mustPut(t, s, k, "v"+k)
		}
	}
	b := func(s string) []byte { return []byte(s) }
	tests := []struct {
		from, to []byte
		left     []string
	}{
		{b("b"), b("c"), []string{"", "a", "c", "d", "\xff", "\xff\xff"}},
		{nil, b("b"), []string{"b", "b\x00", "ba", "c", "d", "\xff", "\xff\xff"}},
		{b(""), b("a"), []string{"a", "b", "b\x00", "ba", "c", "d", "\xff", "\xff\xff"}},
		{b("c"), nil, []string{"", "a", "b", "b\x00", "ba"}},
		{b("b\x00"), b("ba"), []string{"", "a", "b", "ba", "c", "d", "\xff", "\xff\xff"}},
		{b("\xff"), nil, []string{"", "a", "b", "b\x00", "ba", "c", "d"}},
		{nil, nil, nil},
		{b(""), nil, nil},
		{b("c"), b("c"), all},
		{b("d"), b("a"), all},
		{nil, b(""), all},
		{b("zz"), b("zzz"), all},
	}
	for i, tc := range tests {
		load()
		if i%2 == 1 {
			if err := s.Flush(); err != nil { // delete over flushed tables too
				t.Fatal(err)
			}
		}
		if err := s.DeleteRange(tc.from, tc.to); err != nil {
			t.Fatalf("DeleteRange(%q, %q): %v", tc.from, tc.to, err)
		}
		if got := keys(collect(t, s.All())); !slices.Equal(got, tc.left) {
			t.Errorf("after DeleteRange(%q, %q): keys %q, want %q", tc.from, tc.to, got, tc.left)
		}
		for _, k := range all {
			v := mustGet(t, s, k)
			if slices.Contains(tc.left, k) != (v != nil) {
				t.Errorf("after DeleteRange(%q, %q): Get(%q) = %q", tc.from, tc.to, k, v)
			}
		}
	}

	// A snapshot taken before survives; keys written after are not hidden.
	load()
	it := s.All()
	from, to := b("a"), b("d")
	if err := s.DeleteRange(from, to); err != nil {
		t.Fatal(err)
	}
	from[0], to[0] = 'z', 'z' // the store must not keep the bounds
	mustPut(t, s, "b", "again")
	if got := keys(collect(t, it)); !slices.Equal(got, all) {
		t.Errorf("iterator opened before DeleteRange saw %q, want %q", got, all)
	}
	want := []kv{{"", "v"}, {"b", "again"}, {"d", "vd"}, {"\xff", "v\xff"}, {"\xff\xff", "v\xff\xff"}}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := collect(t, s.All()); !slices.Equal(got, want) {
		t.Errorf("after DeleteRange(a, d) and Put(b): %q, want %q", got, want)
	}
}
