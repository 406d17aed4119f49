package storetest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/streamwork-go/streamwork/serde"
	"github.com/streamwork-go/streamwork/state"
)

// RunVersioned runs the versioned store suite over stores from open: each
// subtest opens a state.VersionedStore on a new store. It covers in-order
// and out-of-order puts, tombstones and Delete, as-of queries at the
// boundaries of validity, Versions in both directions, history retention
// (dropped puts, the latest version never expiring, segments dropped with
// one DeleteRange), recovery of stream time on reopen, refusal of other
// layouts' keys, configuration, the typed view, use after Close, and a
// randomized comparison with a reference model.
func RunVersioned(t *testing.T, open Opener) {
	tests := []struct {
		name string
		fn   func(*testing.T, state.Store)
	}{
		{"PutGet", testVersionedPutGet},
		{"Keys", testVersionedKeys},
		{"OutOfOrder", testVersionedOutOfOrder},
		{"Tombstones", testVersionedTombstones},
		{"Retention", testVersionedRetention},
		{"TombstoneAtHorizon", testVersionedTombstoneAtHorizon},
		{"Reopen", testVersionedReopen},
		{"ForeignKeys", testVersionedForeignKeys},
		{"Config", testVersionedConfig},
		{"ConcurrentReaders", testVersionedConcurrentReaders},
		{"Typed", testVersionedTyped},
		{"UseAfterClose", testVersionedUseAfterClose},
		{"Model", func(t *testing.T, s state.Store) { versionedModel(t, s, 11, false) }},
		{"ModelReopen", func(t *testing.T, s state.Store) { versionedModel(t, s, 12, true) }},
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

// Versioned test configuration, in milliseconds: history retention 100,
// segments of 50 validTo timestamps.
var testVersionedCfg = state.VersionedStoreConfig{
	HistoryRetention: ms(tRetention),
	SegmentInterval:  ms(tInterval),
}

// rec is a version copied out of a store.
type rec struct {
	v        string
	from, to int64
}

func (r rec) String() string { return fmt.Sprintf("%q[%d,%d)", r.v, r.from, r.to) }

// none is the result of a lookup that finds nothing.
var none = rec{v: "<none>"}

func openVersioned(t testing.TB, s state.Store, cfg state.VersionedStoreConfig) state.VersionedStore {
	t.Helper()
	vs, err := state.NewVersionedStore(s, cfg)
	if err != nil {
		t.Fatalf("NewVersionedStore: %v", err)
	}
	return vs
}

// vput puts v ("<nil>" for a tombstone) and checks the validTo returned.
func vput(t testing.TB, vs state.VersionedStore, k, v string, ts, wantTo int64) {
	t.Helper()
	var vb []byte
	if v != "<nil>" {
		vb = []byte(v)
	}
	to, dropped, err := vs.Put([]byte(k), vb, ts)
	if err != nil || dropped || to != wantTo {
		t.Fatalf("Put(%q, %q, %d) = validTo %d, dropped %v, err %v; want validTo %d", k, v, ts, to, dropped, err, wantTo)
	}
}

func vdropped(t testing.TB, vs state.VersionedStore, k string, ts int64) {
	t.Helper()
	if _, dropped, err := vs.Put([]byte(k), []byte("late"), ts); !dropped || err != nil {
		t.Fatalf("Put(%q, %d): dropped %v, err %v; want dropped", k, ts, dropped, err)
	}
}

func asOf(t testing.TB, vs state.VersionedStore, k string, ts int64) rec {
	t.Helper()
	v, from, to, ok, err := vs.GetAsOf([]byte(k), ts)
	if err != nil {
		t.Fatalf("GetAsOf(%q, %d): %v", k, ts, err)
	}
	if !ok {
		if v != nil {
			t.Fatalf("GetAsOf(%q, %d) = %q, not ok", k, ts, v)
		}
		return none
	}
	if v == nil {
		t.Fatalf("GetAsOf(%q, %d): ok with a nil value", k, ts)
	}
	return rec{string(v), from, to}
}

func latest(t testing.TB, vs state.VersionedStore, k string) rec {
	t.Helper()
	v, ts, ok, err := vs.Get([]byte(k))
	if err != nil {
		t.Fatalf("Get(%q): %v", k, err)
	}
	if !ok {
		return none
	}
	return rec{string(v), ts, maxT}
}

func expectAsOf(t testing.TB, vs state.VersionedStore, k string, ts int64, want rec) {
	t.Helper()
	if got := asOf(t, vs, k, ts); got != want {
		t.Fatalf("GetAsOf(%q, %d) = %v, want %v", k, ts, got, want)
	}
}

func collectVersions(t testing.TB, it state.VersionedIterator) []rec {
	t.Helper()
	var out []rec
	for it.Next() {
		out = append(out, rec{string(it.Value()), it.ValidFrom(), it.ValidTo()})
	}
	if err := it.Close(); err != nil {
		t.Fatalf("versions iterator: %v", err)
	}
	return out
}

// expectVersions checks Versions and BackwardVersions of k in [from, to].
func expectVersions(t testing.TB, vs state.VersionedStore, k string, from, to int64, want ...rec) {
	t.Helper()
	if got := collectVersions(t, vs.Versions([]byte(k), from, to)); !slices.Equal(got, want) {
		t.Fatalf("Versions(%q, %d, %d) = %v, want %v", k, from, to, got, want)
	}
	if got := collectVersions(t, vs.BackwardVersions([]byte(k), from, to)); !slices.Equal(got, reversed(want)) {
		t.Fatalf("BackwardVersions(%q, %d, %d) = %v, want %v", k, from, to, got, reversed(want))
	}
}

func testVersionedPutGet(t *testing.T, s state.Store) {
	vs := openVersioned(t, s, testVersionedCfg)
	if vs.Name() != s.Name() || vs.Store() != s || vs.StreamTime() != minT || vs.Config() != testVersionedCfg {
		t.Fatalf("new store: name %q, stream time %d, config %+v", vs.Name(), vs.StreamTime(), vs.Config())
	}
	if got := latest(t, vs, "a"); got != none {
		t.Fatalf("Get on an empty store = %v", got)
	}
	expectAsOf(t, vs, "a", 0, none)
	expectVersions(t, vs, "a", minT, maxT)

	vput(t, vs, "a", "v1", 10, maxT)
	vput(t, vs, "a", "v2", 20, maxT)
	if got := latest(t, vs, "a"); got != (rec{"v2", 20, maxT}) {
		t.Fatalf("Get(a) = %v", got)
	}
	expectAsOf(t, vs, "a", 9, none)
	expectAsOf(t, vs, "a", 10, rec{"v1", 10, 20})
	expectAsOf(t, vs, "a", 19, rec{"v1", 10, 20})
	expectAsOf(t, vs, "a", 20, rec{"v2", 20, maxT})
	expectAsOf(t, vs, "a", maxT, rec{"v2", 20, maxT})
	expectAsOf(t, vs, "a", minT, none)
	expectAsOf(t, vs, "b", 20, none)
	expectVersions(t, vs, "a", minT, maxT, rec{"v1", 10, 20}, rec{"v2", 20, maxT})
	expectVersions(t, vs, "a", 19, 19, rec{"v1", 10, 20})
	expectVersions(t, vs, "a", 20, 20, rec{"v2", 20, maxT})
	expectVersions(t, vs, "a", 0, 9)
	expectVersions(t, vs, "a", 20, 10)

	// Empty values are values; the store copies what it is given, and the
	// caller owns what it gets.
	vput(t, vs, "e", "", 20, maxT)
	if v, _, ok, err := vs.Get([]byte("e")); !ok || err != nil || v == nil || len(v) != 0 {
		t.Fatalf("Get of an empty value = %#v, %v, %v", v, ok, err)
	}
	if v, _, _, ok, err := vs.GetAsOf([]byte("e"), 20); !ok || err != nil || v == nil || len(v) != 0 {
		t.Fatalf("GetAsOf of an empty value = %#v, %v, %v", v, ok, err)
	}
	k, v := []byte("own"), []byte("value")
	if _, _, err := vs.Put(k, v, 15); err != nil {
		t.Fatal(err)
	}
	k[0], v[0] = 'X', 'X'
	got, _, _, _ := vs.Get([]byte("own"))
	if string(got) != "value" {
		t.Fatalf("store kept the caller's buffers: %q", got)
	}
	got[0] = 'Y'
	if got := asOf(t, vs, "own", 15); got.v != "value" {
		t.Fatalf("Get returned the store's buffer: %v", got)
	}
	if st := vs.StreamTime(); st != 20 {
		t.Fatalf("StreamTime = %d, want 20", st)
	}
}

// Keys that are prefixes of each other or hold the escape bytes keep their
// versions apart.
func testVersionedKeys(t *testing.T, s state.Store) {
	vs := openVersioned(t, s, testVersionedCfg)
	for i, k := range adversarialKeys {
		vput(t, vs, k, fmt.Sprint(i), 30, maxT)
		vput(t, vs, k, fmt.Sprint(i, "old"), 25, 30)
		vput(t, vs, k, fmt.Sprint(i, "new"), 40+int64(i), maxT)
	}
	for i, k := range adversarialKeys {
		expectVersions(t, vs, k, minT, maxT, rec{fmt.Sprint(i, "old"), 25, 30}, rec{fmt.Sprint(i), 30, 40 + int64(i)},
			rec{fmt.Sprint(i, "new"), 40 + int64(i), maxT})
		expectAsOf(t, vs, k, 39, rec{fmt.Sprint(i), 30, 40 + int64(i)})
	}
}

func testVersionedOutOfOrder(t *testing.T, s state.Store) {
	vs := openVersioned(t, s, testVersionedCfg)
	vput(t, vs, "a", "v30", 30, maxT)
	vput(t, vs, "a", "v10", 10, 30)  // before the latest
	vput(t, vs, "a", "v20", 20, 30)  // splits [10, 30)
	vput(t, vs, "a", "v5", 5, 10)    // before the first
	vput(t, vs, "a", "v20b", 20, 30) // replaces the version at 20
	vput(t, vs, "a", "v10b", 10, 20) // replaces the version at 10
	expectAsOf(t, vs, "a", 4, none)
	expectAsOf(t, vs, "a", 5, rec{"v5", 5, 10})
	expectAsOf(t, vs, "a", 9, rec{"v5", 5, 10})
	expectAsOf(t, vs, "a", 10, rec{"v10b", 10, 20})
	expectAsOf(t, vs, "a", 25, rec{"v20b", 20, 30})
	expectAsOf(t, vs, "a", 29, rec{"v20b", 20, 30})
	expectAsOf(t, vs, "a", 30, rec{"v30", 30, maxT})
	all := []rec{{"v5", 5, 10}, {"v10b", 10, 20}, {"v20b", 20, 30}, {"v30", 30, maxT}}
	expectVersions(t, vs, "a", minT, maxT, all...)
	expectVersions(t, vs, "a", 5, 30, all...)
	expectVersions(t, vs, "a", 12, 22, all[1:3]...)
	expectVersions(t, vs, "a", 10, 19, all[1])
	expectVersions(t, vs, "a", 9, 10, all[:2]...)
	expectVersions(t, vs, "a", 31, 40, all[3])
	expectVersions(t, vs, "a", 0, 4)
	vput(t, vs, "a", "v30b", 30, maxT) // replaces the latest
	if got := latest(t, vs, "a"); got != (rec{"v30b", 30, maxT}) {
		t.Fatalf("Get(a) = %v", got)
	}
	if st := vs.StreamTime(); st != 30 {
		t.Fatalf("StreamTime = %d, want 30", st)
	}
	// Versions spread over three segments (validTo 10, 20, 30 and 60,
	// 70, 110), with the latest.
	vput(t, vs, "a", "v60", 60, maxT)
	vput(t, vs, "a", "v110", 110, maxT)
	vput(t, vs, "a", "v70", 70, 110)
	expectVersions(t, vs, "a", 25, 65, rec{"v20b", 20, 30}, rec{"v30b", 30, 60}, rec{"v60", 60, 70})
	expectVersions(t, vs, "a", 25, maxT, rec{"v20b", 20, 30}, rec{"v30b", 30, 60}, rec{"v60", 60, 70},
		rec{"v70", 70, 110}, rec{"v110", 110, maxT})
}

func testVersionedTombstones(t *testing.T, s state.Store) {
	vs := openVersioned(t, s, testVersionedCfg)
	del := func(k string, ts int64, want rec) {
		t.Helper()
		prev, from, dropped, err := vs.Delete([]byte(k), ts)
		got := none
		if prev != nil {
			got = rec{string(prev), from, 0}
		}
		if err != nil || dropped || got != want {
			t.Fatalf("Delete(%q, %d) = %v, dropped %v, err %v; want %v", k, ts, got, dropped, err, want)
		}
	}
	vput(t, vs, "k", "A", 10, maxT)
	del("k", 20, rec{"A", 10, 0})
	if got := latest(t, vs, "k"); got != none {
		t.Fatalf("Get after Delete = %v", got)
	}
	expectAsOf(t, vs, "k", 15, rec{"A", 10, 20})
	expectAsOf(t, vs, "k", 20, none)
	expectAsOf(t, vs, "k", maxT, none)
	del("k", 20, none) // deleting again
	del("k", 25, none)
	vput(t, vs, "k", "B", 30, maxT)
	expectAsOf(t, vs, "k", 29, none)
	expectAsOf(t, vs, "k", 30, rec{"B", 30, maxT})
	expectAsOf(t, vs, "k", 19, rec{"A", 10, 20})
	vput(t, vs, "k", "C", 22, 25) // between the two tombstones
	expectAsOf(t, vs, "k", 21, none)
	expectAsOf(t, vs, "k", 22, rec{"C", 22, 25})
	expectAsOf(t, vs, "k", 25, none)
	del("k", 12, rec{"A", 10, 0}) // a late tombstone cuts A short
	expectAsOf(t, vs, "k", 11, rec{"A", 10, 12})
	expectAsOf(t, vs, "k", 12, none)
	expectVersions(t, vs, "k", minT, maxT, rec{"A", 10, 12}, rec{"C", 22, 25}, rec{"B", 30, maxT})
	expectVersions(t, vs, "k", 12, 21)
	expectVersions(t, vs, "k", 12, 22, rec{"C", 22, 25})

	// A tombstone for a key never put still bounds later puts before it.
	del("n", 40, none)
	vput(t, vs, "n", "X", 35, 40)
	expectAsOf(t, vs, "n", 35, rec{"X", 35, 40})
	expectAsOf(t, vs, "n", 40, none)
	vput(t, vs, "n", "Y", 50, maxT)
	expectAsOf(t, vs, "n", 45, none)
	vput(t, vs, "n", "Z", 45, 50) // into the tombstone's validity
	expectVersions(t, vs, "n", minT, maxT, rec{"X", 35, 40}, rec{"Z", 45, 50}, rec{"Y", 50, maxT})
	vput(t, vs, "n", "<nil>", 45, 50) // a tombstone replaces Z
	expectVersions(t, vs, "n", minT, maxT, rec{"X", 35, 40}, rec{"Y", 50, maxT})

	// A value replaces a tombstone at the same time and the other way
	// round.
	del("m", 60, none)
	vput(t, vs, "m", "V", 60, maxT)
	if got := latest(t, vs, "m"); got != (rec{"V", 60, maxT}) {
		t.Fatalf("Get(m) = %v", got)
	}
	vput(t, vs, "m", "<nil>", 60, maxT)
	if got := latest(t, vs, "m"); got != none {
		t.Fatalf("Get(m) after a tombstone at the same time = %v", got)
	}
	vput(t, vs, "m", "W", 55, 60)
	expectVersions(t, vs, "m", minT, maxT, rec{"W", 55, 60})
	if st := vs.StreamTime(); st != 60 {
		t.Fatalf("StreamTime = %d, want 60", st)
	}
}

func testVersionedRetention(t *testing.T, s state.Store) {
	cs := &countingStore{Store: s}
	vs := openVersioned(t, cs, testVersionedCfg)
	vput(t, vs, "a", "1", 0, maxT)
	vput(t, vs, "a", "2", 100, maxT)
	// Stream time 100: as-of 0 is still answered, puts at 0 accepted.
	expectAsOf(t, vs, "a", 0, rec{"1", 0, 100})
	vdropped(t, vs, "a", -1)
	vdropped(t, vs, "a", minT)
	vput(t, vs, "b", "b0", 0, maxT)
	if _, _, dropped, err := vs.Delete([]byte("a"), -1); !dropped || err != nil {
		t.Fatalf("Delete before the history retention: dropped %v, err %v", dropped, err)
	}
	vput(t, vs, "c", "x", 101, maxT)
	// Stream time 101: as-of 0 is before the history retention. Only
	// latest versions valid then are returned: they never expire.
	expectAsOf(t, vs, "a", 0, none)
	expectAsOf(t, vs, "a", 1, rec{"1", 0, 100})
	expectAsOf(t, vs, "b", 0, rec{"b0", 0, maxT})
	expectAsOf(t, vs, "b", minT, none)
	vdropped(t, vs, "a", 0)
	expectVersions(t, vs, "a", minT, 0)
	expectVersions(t, vs, "a", minT, 1, rec{"1", 0, 100})
	expectVersions(t, vs, "a", minT, maxT, rec{"1", 0, 100}, rec{"2", 100, maxT})
	expectVersions(t, vs, "b", minT, 0, rec{"b0", 0, maxT})

	// a's old version ([0, 100), segment 2 of validTo) is needed while
	// stream time is at most 199; its segment goes when the horizon passes
	// the segment's last validTo, 149: at stream time 250, with one
	// DeleteRange, never a delete per key.
	history := func() int {
		return len(collect(t, s.Range([]byte{0x04}, []byte{0x05})))
	}
	if n := history(); n != 1 {
		t.Fatalf("%d history keys, want 1", n)
	}
	vput(t, vs, "c", "y", 200, maxT) // c's [101, 200) in segment 4
	expectAsOf(t, vs, "a", 99, none)
	expectAsOf(t, vs, "a", 100, rec{"2", 100, maxT})
	vput(t, vs, "d", "z", 249, maxT)
	if n := history(); n != 2 || cs.deleteRanges != 0 {
		t.Fatalf("%d history keys, %d DeleteRanges; want 2, 0 (segment 2 is not expired yet)", n, cs.deleteRanges)
	}
	deletes := cs.deletes
	vput(t, vs, "e", "w", 250, maxT)
	if cs.deleteRanges != 1 || cs.deletes != deletes {
		t.Fatalf("expiry: %d DeleteRanges, %d deletes; want 1 DeleteRange, no deletes", cs.deleteRanges, cs.deletes-deletes)
	}
	if n := history(); n != 1 {
		t.Fatalf("%d history keys after expiry, want 1", n)
	}
	expectAsOf(t, vs, "c", 150, rec{"x", 101, 200})
	for k, want := range map[string]rec{"a": {"2", 100, maxT}, "b": {"b0", 0, maxT}, "c": {"y", 200, maxT}, "d": {"z", 249, maxT}, "e": {"w", 250, maxT}} {
		if got := latest(t, vs, k); got != want {
			t.Fatalf("Get(%q) = %v, want %v", k, got, want)
		}
	}
}

// A tombstone exactly at the horizon (stream time - history retention) is
// still its key's latest version, and a put at the horizon is accepted: a
// new latest version must close it, and a put at its time replace it,
// even when the horizon and the time after it are in different segments.
// The randomized model found a store that looked no lower than the time
// after the horizon.
func testVersionedTombstoneAtHorizon(t *testing.T, s state.Store) {
	vs := openVersioned(t, s, testVersionedCfg)
	vput(t, vs, "k", "<nil>", 49, maxT)
	vput(t, vs, "other", "x", 149, maxT) // the horizon is 49, in segment 0
	vput(t, vs, "k", "new", 60, maxT)
	vput(t, vs, "k", "late", 49, 60) // replaces the tombstone [49, 60)
	if got := latest(t, vs, "k"); got != (rec{"new", 60, maxT}) {
		t.Fatalf("Get(k) = %v", got)
	}
	expectVersions(t, vs, "k", minT, maxT, rec{"late", 49, 60}, rec{"new", 60, maxT})
	vdropped(t, vs, "k", 48)
}

func testVersionedReopen(t *testing.T, s state.Store) {
	vs := openVersioned(t, s, testVersionedCfg)
	vput(t, vs, "a", "1", 10, maxT)
	vput(t, vs, "a", "2", 20, maxT)
	vput(t, vs, "b", "3", 30, maxT) // a new key: its time is in the meta key
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	reopen := func(wantST int64) {
		t.Helper()
		vs = openVersioned(t, s, testVersionedCfg)
		if st := vs.StreamTime(); st != wantST {
			t.Fatalf("reopened: StreamTime = %d, want %d", st, wantST)
		}
	}
	reopen(30)
	vdropped(t, vs, "a", -71)
	expectVersions(t, vs, "a", minT, maxT, rec{"1", 10, 20}, rec{"2", 20, maxT})
	vput(t, vs, "a", "<nil>", 40, maxT) // the newest time is a tombstone's
	reopen(40)
	vput(t, vs, "c", "4", 50, maxT)
	vput(t, vs, "c", "<nil>", 60, maxT)
	vput(t, vs, "c", "5", 60, maxT) // replaces the tombstone at 60
	reopen(60)
	vput(t, vs, "b", "6", 70, maxT) // b's [30, 70) tells stream time
	reopen(70)
	expectVersions(t, vs, "b", minT, maxT, rec{"3", 30, 70}, rec{"6", 70, maxT})
	expectVersions(t, vs, "c", minT, maxT, rec{"4", 50, 60}, rec{"5", 60, maxT})
	vput(t, vs, "d", "<nil>", 80, maxT) // a new key's tombstone at stream time
	vput(t, vs, "d", "7", 80, maxT)     // replaced: no history key holds 80
	reopen(80)

	// Another segment interval, or another layout over the same data, is
	// refused.
	for name, open := range map[string]func() error{
		"other interval": func() error {
			_, err := state.NewVersionedStore(s, state.VersionedStoreConfig{HistoryRetention: ms(tRetention), SegmentInterval: ms(30)})
			return err
		},
		"window store": func() error {
			_, err := state.NewWindowStore(s, testWindowCfg)
			return err
		},
		"session store": func() error {
			_, err := state.NewSessionStore(s, testSessionCfg)
			return err
		},
	} {
		if err := open(); !errors.Is(err, state.ErrCorruptWindowKey) {
			t.Errorf("%s: err = %v, want ErrCorruptWindowKey", name, err)
		}
	}
}

func testVersionedForeignKeys(t *testing.T, s state.Store) {
	for _, k := range []string{"\x00", "\x03x", "\x06", "\x7fforeign", "\x80", "\x85", "\xff"} {
		mustPut(t, s, k, "v")
		if _, err := state.NewVersionedStore(s, testVersionedCfg); !errors.Is(err, state.ErrCorruptWindowKey) {
			t.Errorf("over key %x: err = %v, want ErrCorruptWindowKey", k, err)
		}
		if err := s.Delete([]byte(k)); err != nil {
			t.Fatal(err)
		}
	}
	// A window store's data is refused, and a versioned store's data by
	// window stores.
	ws := openWindows(t, s, testWindowCfg)
	mustPutWindow(t, ws, "a", 10, "1")
	if _, err := state.NewVersionedStore(s, testVersionedCfg); !errors.Is(err, state.ErrCorruptWindowKey) {
		t.Errorf("over window keys: err = %v", err)
	}
	if err := s.DeleteRange(nil, nil); err != nil {
		t.Fatal(err)
	}
	vs := openVersioned(t, s, testVersionedCfg)
	vput(t, vs, "a", "1", 10, maxT)
	if _, err := state.NewWindowStore(s, testWindowCfg); !errors.Is(err, state.ErrCorruptWindowKey) {
		t.Errorf("window store over latest keys: err = %v", err)
	}
	vput(t, vs, "a", "2", 20, maxT)
	// A damaged history key or value is reported, not misread.
	mustPut(t, s, "\x04short", "v")
	if _, _, _, _, err := vs.GetAsOf([]byte("a"), 15); err != nil {
		t.Fatalf("GetAsOf of an intact key: %v", err)
	}
	if _, err := state.NewVersionedStore(s, testVersionedCfg); !errors.Is(err, state.ErrCorruptWindowKey) {
		t.Errorf("over a short history key: err = %v", err)
	}
	if err := s.Delete([]byte("\x04short")); err != nil {
		t.Fatal(err)
	}
	mustPut(t, s, "\x05a", "short") // a latest value without its timestamp
	if _, _, _, err := vs.Get([]byte("a")); !errors.Is(err, state.ErrCorruptWindowKey) {
		t.Errorf("Get of a short latest value: err = %v", err)
	}
	// Raw keys decode with VersionedKeyOf.
	var got []string
	for k := range state.Seq(s.All()) {
		key, from, to, isLatest, ok := state.VersionedKeyOf(k)
		got = append(got, fmt.Sprintf("%q %d %d %v %v", key, from, to, isLatest, ok))
	}
	// The history entry, the latest value, and the meta key.
	if want := []string{`"a" 10 20 false true`, `"a" 0 0 true true`, `"" 0 0 false false`}; !slices.Equal(got, want) {
		t.Errorf("VersionedKeyOf of the store's keys = %q, want %q", got, want)
	}
}

func testVersionedConfig(t *testing.T, s state.Store) {
	for _, cfg := range []state.VersionedStoreConfig{
		{},
		{HistoryRetention: -time.Second},
		{HistoryRetention: time.Second, SegmentInterval: -time.Millisecond},
		{HistoryRetention: 1500 * time.Microsecond},
		{HistoryRetention: time.Second, SegmentInterval: 1500 * time.Microsecond},
		{HistoryRetention: 100 * time.Second, SegmentInterval: time.Millisecond},
	} {
		if err := cfg.Validate(); !errors.Is(err, state.ErrWindowConfig) {
			t.Errorf("Validate(%+v) = %v, want ErrWindowConfig", cfg, err)
		}
		if _, err := state.NewVersionedStore(s, cfg); !errors.Is(err, state.ErrWindowConfig) {
			t.Errorf("NewVersionedStore(%+v) = %v, want ErrWindowConfig", cfg, err)
		}
	}
	for ret, want := range map[time.Duration]time.Duration{
		time.Second:      2 * time.Second,
		30 * time.Second: 10 * time.Second,
		time.Minute:      20 * time.Second,
		2 * time.Minute:  24 * time.Second,
		10 * time.Minute: time.Minute,
		time.Hour:        5 * time.Minute,
		48 * time.Hour:   2 * time.Hour,
	} {
		cfg := state.VersionedStoreConfig{HistoryRetention: ret}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("Validate(%+v): %v", cfg, err)
		}
		vs := openVersioned(t, s, cfg)
		if got := vs.Config(); got.SegmentInterval != want || got.HistoryRetention != ret {
			t.Errorf("HistoryRetention %v: Config = %+v, want SegmentInterval %v", ret, got, want)
		}
	}
}

// Readers run while the writer adds versions in order and out of order:
// every version a reader finds holds its own validFrom as its value and
// covers the time asked for. Run it with -race.
func testVersionedConcurrentReaders(t *testing.T, s state.Store) {
	vs := openVersioned(t, s, state.VersionedStoreConfig{HistoryRetention: time.Second, SegmentInterval: ms(100)})
	const n = 2000
	done := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := newRand(uint64(g))
			for {
				select {
				case <-done:
					return
				default:
				}
				st := vs.StreamTime()
				if st < 0 {
					continue
				}
				at := st - int64(r.n(900))
				v, from, to, ok, err := vs.GetAsOf([]byte("k"), at)
				if err == nil && ok && (string(v) != fmt.Sprint(from) || from > at || to <= at) {
					err = fmt.Errorf("GetAsOf(%d) = %q [%d, %d)", at, v, from, to)
				}
				if err == nil {
					it := vs.Versions([]byte("k"), at-50, at)
					for it.Next() {
						if string(it.Value()) != fmt.Sprint(it.ValidFrom()) || it.ValidFrom() >= it.ValidTo() {
							err = fmt.Errorf("Versions: %q [%d, %d)", it.Value(), it.ValidFrom(), it.ValidTo())
						}
					}
					if cerr := it.Close(); err == nil {
						err = cerr
					}
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for i := range int64(n) {
		ts := 2 * i
		if i%3 == 2 {
			ts -= 3 // out of order: between two earlier versions
		}
		if _, _, err := vs.Put([]byte("k"), []byte(fmt.Sprint(ts)), ts); err != nil {
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

func testVersionedTyped(t *testing.T, s state.Store) {
	vs := openVersioned(t, s, testVersionedCfg)
	tv := state.TypedVersioned(vs, serde.String, serde.Int64)
	if tv.Store() != vs || tv.Name() != s.Name() {
		t.Fatal("accessors")
	}
	for i, ts := range []int64{30, 10, 20} {
		if _, dropped, err := tv.Put("k", int64(i), ts); dropped || err != nil {
			t.Fatal(dropped, err)
		}
	}
	type R = state.VersionedRecord[int64]
	vr := func(v, from, to int64) R { return R{Value: v, ValidFrom: from, ValidTo: to} }
	if r, ok, err := tv.Get("k"); r != vr(0, 30, maxT) || !ok || err != nil {
		t.Fatalf("Get = %v, %v, %v", r, ok, err)
	}
	if r, ok, err := tv.GetAsOf("k", 15); r != vr(1, 10, 20) || !ok || err != nil {
		t.Fatalf("GetAsOf(15) = %v, %v, %v", r, ok, err)
	}
	if _, ok, err := tv.GetAsOf("k", 5); ok || err != nil {
		t.Fatalf("GetAsOf(5) = %v, %v", ok, err)
	}
	if got := slices.Collect(tv.Versions("k", minT, maxT)); !slices.Equal(got, []R{vr(1, 10, 20), vr(2, 20, 30), vr(0, 30, maxT)}) {
		t.Fatalf("Versions = %v", got)
	}
	if got := slices.Collect(tv.BackwardVersions("k", 15, 25)); !slices.Equal(got, []R{vr(2, 20, 30), vr(1, 10, 20)}) {
		t.Fatalf("BackwardVersions = %v", got)
	}
	if prev, found, dropped, err := tv.Delete("k", 25); prev != vr(2, 20, 0) || !found || dropped || err != nil {
		t.Fatalf("Delete = %v, %v, %v, %v", prev, found, dropped, err)
	}
	if _, found, dropped, err := tv.Delete("other", 25); found || dropped || err != nil {
		t.Fatalf("Delete of nothing = %v, %v, %v", found, dropped, err)
	}
	// A value that fails to decode is reported by the Err form and panics
	// the plain one.
	if _, _, err := vs.Put([]byte("bad"), []byte("xyz"), 30); err != nil {
		t.Fatal(err)
	}
	seq, errf := tv.VersionsErr("bad", minT, maxT)
	for range seq {
		t.Fatal("decoded a bad value")
	}
	if errf() == nil {
		t.Fatal("VersionsErr: no decode error")
	}
	if _, _, err := tv.Get("bad"); err == nil {
		t.Fatal("Get: no decode error")
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("Versions of a bad value did not panic")
			}
		}()
		for range tv.Versions("bad", minT, maxT) {
		}
	}()
}

func testVersionedUseAfterClose(t *testing.T, s state.Store) {
	vs := openVersioned(t, s, testVersionedCfg)
	for ts := range int64(10) {
		vput(t, vs, "a", "v", ts*10, maxT)
	}
	it := vs.Versions([]byte("a"), minT, maxT)
	back := vs.BackwardVersions([]byte("a"), minT, maxT)
	if !it.Next() || !back.Next() {
		t.Fatal("no versions")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for it.Next() {
	}
	if err := it.Close(); !errors.Is(err, state.ErrClosed) {
		t.Errorf("forward iterator across Close: %v", err)
	}
	for back.Next() {
	}
	_ = back.Close() // its snapshot may hold every version: no error required
	k := []byte("a")
	expectClosedPanic(t, "Put", func() { _, _, _ = vs.Put(k, k, 200) })
	expectClosedPanic(t, "Put dropped", func() { _, _, _ = vs.Put(k, k, minT) })
	expectClosedPanic(t, "Delete", func() { _, _, _, _ = vs.Delete(k, 200) })
	expectClosedPanic(t, "Delete dropped", func() { _, _, _, _ = vs.Delete(k, minT) })
	expectClosedPanic(t, "Get", func() { _, _, _, _ = vs.Get(k) })
	expectClosedPanic(t, "GetAsOf", func() { _, _, _, _, _ = vs.GetAsOf(k, 50) })
	expectClosedPanic(t, "GetAsOf expired", func() { _, _, _, _, _ = vs.GetAsOf(k, minT) })
	expectClosedPanic(t, "Versions", func() { _ = vs.Versions(k, minT, maxT) })
	expectClosedPanic(t, "Versions empty", func() { _ = vs.Versions(k, 10, 0) })
	expectClosedPanic(t, "BackwardVersions", func() { _ = vs.BackwardVersions(k, minT, maxT) })
	expectClosedPanic(t, "NewVersionedStore", func() { _, _ = state.NewVersionedStore(s, testVersionedCfg) })
}
