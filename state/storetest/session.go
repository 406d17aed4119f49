package storetest

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/streamwork-go/streamwork/serde"
	"github.com/streamwork-go/streamwork/state"
)

// RunSession runs the session store suite over stores from open: each
// subtest opens a state.SessionStore on a new store. It covers Put, Fetch
// and Remove, FindSessions (its bounds and its start order across
// segments), FetchKey, FetchAll and All in both directions,
// variable-length keys, retention, recovery on reopen, configuration
// errors, typed views, use after Close, and a randomized comparison with a
// reference model.
func RunSession(t *testing.T, open Opener) {
	tests := []struct {
		name string
		fn   func(*testing.T, state.Store)
	}{
		{"PutFetchRemove", testSessionPutFetchRemove},
		{"FindSessions", testSessionFindSessions},
		{"FetchAll", testSessionFetchAll},
		{"VariableLengthKeys", testSessionVariableLengthKeys},
		{"Retention", testSessionRetention},
		{"Reopen", testSessionReopen},
		{"Config", testSessionConfig},
		{"Typed", testSessionTyped},
		{"UseAfterClose", testSessionUseAfterClose},
		{"Model", sessionModel},
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

func testSessionPutFetchRemove(t *testing.T, s state.Store) {
	ss := openSessions(t, s, testSessionCfg)
	if ss.Name() != s.Name() || ss.Store() != s || ss.StreamTime() != minT || ss.Config() != testSessionCfg {
		t.Fatalf("new store: %q, %d, %+v", ss.Name(), ss.StreamTime(), ss.Config())
	}
	fetch := func(k string, start, end int64) []byte {
		t.Helper()
		v, err := ss.Fetch([]byte(k), start, end)
		if err != nil {
			t.Fatalf("Fetch(%q, %d, %d): %v", k, start, end, err)
		}
		return v
	}
	mustPutSession(t, ss, "a", 0, 10, "1")
	mustPutSession(t, ss, "a", 5, 10, "2")
	mustPutSession(t, ss, "a", 20, 20, "3")
	if v := fetch("a", 0, 10); string(v) != "1" {
		t.Fatalf("Fetch = %q", v)
	}
	if v := fetch("a", 0, 9); v != nil {
		t.Fatalf("Fetch of another session = %q", v)
	}
	mustPutSession(t, ss, "a", 0, 10, "1b")
	if v := fetch("a", 0, 10); string(v) != "1b" {
		t.Fatalf("Fetch after overwrite = %q", v)
	}
	if err := ss.Remove([]byte("a"), 0, 10); err != nil {
		t.Fatal(err)
	}
	if v := fetch("a", 0, 10); v != nil {
		t.Fatalf("Fetch after Remove = %q", v)
	}
	if _, err := ss.Put([]byte("a"), 5, 10, nil); err != nil { // removes too
		t.Fatal(err)
	}
	if _, err := ss.Put([]byte("e"), 1, 2, []byte{}); err != nil {
		t.Fatal(err)
	}
	if v := fetch("e", 1, 2); v == nil || len(v) != 0 {
		t.Fatalf("empty value = %#v", v)
	}
	if _, err := ss.Put([]byte("a"), 11, 10, []byte("x")); !errors.Is(err, state.ErrInvalidSession) {
		t.Fatalf("Put of a session that starts after its end: %v", err)
	}
	if _, err := ss.Fetch([]byte("a"), 11, 10); !errors.Is(err, state.ErrInvalidSession) {
		t.Fatalf("Fetch of a session that starts after its end: %v", err)
	}
	if got := collectWindows(t, ss.All()); !slices.Equal(got, []win{{"a", 20, 20, "3"}, {"e", 1, 2, ""}}) {
		t.Fatalf("All = %v", got)
	}
	if st := ss.StreamTime(); st != 20 {
		t.Fatalf("StreamTime = %d", st)
	}
}

func testSessionFindSessions(t *testing.T, s state.Store) {
	ss := openSessions(t, s, testSessionCfg)
	// Segments go by end: [0,120] is in segment 2, [30,49] in segment 0,
	// yet [0,120] starts first. [10,20] is stored, but expired once
	// [0,120] is put.
	sessions := []win{
		{"k", 10, 20, "a"}, {"k", 30, 49, "b"}, {"k", 30, 50, "c"}, {"k2", 10, 20, "other"},
		{"k", 60, 60, "d"}, {"k", 90, 110, "e"}, {"k\x00", 30, 50, "other"}, {"k", 0, 120, "long"},
	}
	for _, x := range sessions {
		mustPutSession(t, ss, x.k, x.start, x.end, x.v)
	}
	// Stream time 120: sessions ending at 21 or later are live.
	find := func(earliestEnd, latestStart int64) []string {
		var out []string
		for _, w := range collectWindows(t, ss.FindSessions([]byte("k"), earliestEnd, latestStart)) {
			out = append(out, w.v)
		}
		return out
	}
	tests := []struct {
		earliestEnd, latestStart int64
		want                     []string
	}{
		{minT, maxT, []string{"long", "b", "c", "d", "e"}},
		{50, 60, []string{"long", "c", "d"}},
		{50, 59, []string{"long", "c"}},
		{51, 89, []string{"long", "d"}},
		{111, maxT, []string{"long"}},
		{121, maxT, nil},
		{minT, 29, []string{"long"}},
		{minT, -1, nil},
		{60, 60, []string{"long", "d"}},
	}
	for _, tc := range tests {
		if got := find(tc.earliestEnd, tc.latestStart); !slices.Equal(got, tc.want) {
			t.Errorf("FindSessions(k, %d, %d) = %q, want %q", tc.earliestEnd, tc.latestStart, got, tc.want)
		}
		var back []string
		for _, w := range collectWindows(t, ss.BackwardFindSessions([]byte("k"), tc.earliestEnd, tc.latestStart)) {
			back = append(back, w.v)
		}
		if !slices.Equal(back, reversed(tc.want)) {
			t.Errorf("BackwardFindSessions(k, %d, %d) = %q", tc.earliestEnd, tc.latestStart, back)
		}
	}
	want := []win{{"k", 0, 120, "long"}, {"k", 30, 49, "b"}, {"k", 30, 50, "c"}, {"k", 60, 60, "d"}, {"k", 90, 110, "e"}}
	if got := collectWindows(t, ss.FetchKey([]byte("k"))); !slices.Equal(got, want) {
		t.Errorf("FetchKey = %v", got)
	}
	if got := collectWindows(t, ss.BackwardFetchKey([]byte("k"))); !slices.Equal(got, reversed(want)) {
		t.Errorf("BackwardFetchKey = %v", got)
	}
}

func testSessionFetchAll(t *testing.T, s state.Store) {
	ss := openSessions(t, s, testSessionCfg)
	for _, x := range []win{{"b", 0, 120, "1"}, {"a", 10, 30, "2"}, {"b", 40, 60, "3"}, {"a", 60, 60, "4"}, {"c", 49, 49, "5"}, {"a", 100, 101, "6"}} {
		mustPutSession(t, ss, x.k, x.start, x.end, x.v)
	}
	// By segment of the end (0: ..49, 1: 50..99, 2: 100..), key, start, end.
	all := []win{{"a", 10, 30, "2"}, {"c", 49, 49, "5"}, {"a", 60, 60, "4"}, {"b", 40, 60, "3"}, {"a", 100, 101, "6"}, {"b", 0, 120, "1"}}
	if got := collectWindows(t, ss.All()); !slices.Equal(got, all) {
		t.Fatalf("All = %v\nwant %v", got, all)
	}
	if got := collectWindows(t, ss.BackwardAll()); !slices.Equal(got, reversed(all)) {
		t.Fatalf("BackwardAll = %v", got)
	}
	for _, r := range [][2]int64{{minT, maxT}, {30, 60}, {31, 59}, {50, 100}, {101, 101}, {60, 30}} {
		var want []win
		for _, x := range all {
			if x.end >= r[0] && x.end <= r[1] {
				want = append(want, x)
			}
		}
		if got := collectWindows(t, ss.FetchAll(r[0], r[1])); !slices.Equal(got, want) {
			t.Errorf("FetchAll(%d, %d) = %v, want %v", r[0], r[1], got, want)
		}
		if got := collectWindows(t, ss.BackwardFetchAll(r[0], r[1])); !slices.Equal(got, reversed(want)) {
			t.Errorf("BackwardFetchAll(%d, %d) = %v", r[0], r[1], got)
		}
	}
}

func testSessionVariableLengthKeys(t *testing.T, s state.Store) {
	ss := openSessions(t, s, testSessionCfg)
	spans := [][2]int64{{0, 10}, {5, 49}, {20, 50}, {60, 99}, {0, 99}}
	var all []win
	for _, sp := range spans {
		for _, k := range adversarialKeys {
			v := fmt.Sprintf("%s@%d-%d", k, sp[0], sp[1])
			mustPutSession(t, ss, k, sp[0], sp[1], v)
			all = append(all, win{k, sp[0], sp[1], v})
		}
	}
	for _, k := range adversarialKeys {
		var want []win
		for _, w := range all {
			if w.k == k {
				want = append(want, w)
			}
		}
		slices.SortFunc(want, func(a, b win) int { return cmp.Or(cmp.Compare(a.start, b.start), cmp.Compare(a.end, b.end)) })
		if got := collectWindows(t, ss.FetchKey([]byte(k))); !slices.Equal(got, want) {
			t.Errorf("FetchKey(%q) = %v\nwant %v", k, got, want)
		}
		if got := collectWindows(t, ss.BackwardFindSessions([]byte(k), minT, maxT)); !slices.Equal(got, reversed(want)) {
			t.Errorf("BackwardFindSessions(%q) = %v", k, got)
		}
		for _, w := range want {
			if v, err := ss.Fetch([]byte(k), w.start, w.end); string(v) != w.v || err != nil {
				t.Errorf("Fetch(%q, %d, %d) = %q, %v", k, w.start, w.end, v, err)
			}
		}
	}
	slices.SortFunc(all, func(a, b win) int {
		return cmp.Or(cmp.Compare(floorDiv(a.end, tInterval), floorDiv(b.end, tInterval)),
			cmp.Compare(a.k, b.k), cmp.Compare(a.start, b.start), cmp.Compare(a.end, b.end))
	})
	if got := collectWindows(t, ss.All()); !slices.Equal(got, all) {
		t.Errorf("All = %v\nwant %v", got, all)
	}
}

func testSessionRetention(t *testing.T, s state.Store) {
	cs := &countingStore{Store: s}
	ss := openSessions(t, cs, testSessionCfg)
	mustPutSession(t, ss, "k", 0, 10, "a")
	mustPutSession(t, ss, "k", 0, 60, "b")
	mustPutSession(t, ss, "k", 100, 120, "c") // live from 21
	if v, err := ss.Fetch([]byte("k"), 0, 10); v != nil || err != nil {
		t.Fatalf("Fetch of an expired session in a live segment = %q, %v", v, err)
	}
	if got := collectWindows(t, ss.FetchKey([]byte("k"))); len(got) != 2 {
		t.Fatalf("FetchKey = %v", got)
	}
	if dropped, err := ss.Put([]byte("k"), 0, 20, []byte("late")); !dropped || err != nil {
		t.Fatalf("Put of an expired session: %v, %v", dropped, err)
	}
	if err := ss.Remove([]byte("k"), 0, 10); err != nil {
		t.Fatal(err)
	}
	if n := dataKeys(t, s); n != 3 || cs.deleteRanges != 0 || cs.deletes != 0 {
		t.Fatalf("%d data keys, %d DeleteRange, %d deletes", n, cs.deleteRanges, cs.deletes)
	}
	mustPutSession(t, ss, "k", 140, 150, "d") // live from 51: segment 0 goes
	if n := dataKeys(t, s); n != 3 || cs.deleteRanges != 1 || cs.deletes != 0 {
		t.Fatalf("after expiring segment 0: %d data keys, %d DeleteRange, %d deletes", n, cs.deleteRanges, cs.deletes)
	}
	mustPutSession(t, ss, "k", 140, 400, "e") // live from 301: segments 1 to 3 go
	if n := dataKeys(t, s); n != 1 || cs.deleteRanges != 2 || cs.deletes != 0 {
		t.Fatalf("after expiring segments 1-3: %d data keys, %d DeleteRange, %d deletes", n, cs.deleteRanges, cs.deletes)
	}
	if got := collectWindows(t, ss.All()); !slices.Equal(got, []win{{"k", 140, 400, "e"}}) {
		t.Fatalf("All = %v", got)
	}
}

func testSessionReopen(t *testing.T, s state.Store) {
	ss := openSessions(t, s, testSessionCfg)
	mustPutSession(t, ss, "a", 0, 100, "x")
	mustPutSession(t, ss, "b", 150, 170, "y")
	mustPutSession(t, ss, "c", 180, 199, "z")
	if err := ss.Remove([]byte("c"), 180, 199); err != nil { // the newest session
		t.Fatal(err)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	ss = openSessions(t, s, testSessionCfg)
	if st := ss.StreamTime(); st != 199 {
		t.Fatalf("reopened: StreamTime = %d, want 199", st)
	}
	if got := collectWindows(t, ss.All()); !slices.Equal(got, []win{{"a", 0, 100, "x"}, {"b", 150, 170, "y"}}) {
		t.Fatalf("reopened: All = %v", got)
	}
	cfg := testSessionCfg
	cfg.SegmentInterval = ms(40)
	if _, err := state.NewSessionStore(s, cfg); !errors.Is(err, state.ErrCorruptWindowKey) {
		t.Fatalf("other segment interval: %v", err)
	}
	if _, err := state.NewWindowStore(s, testWindowCfg); !errors.Is(err, state.ErrCorruptWindowKey) {
		t.Fatalf("window store over sessions: %v", err)
	}
}

func testSessionConfig(t *testing.T, s state.Store) {
	for _, cfg := range []state.SessionStoreConfig{
		{},
		{Retention: -1},
		{Retention: ms(100), InactivityGap: ms(60), Grace: ms(41)},
		{Retention: ms(100), InactivityGap: -1},
		{Retention: ms(100), Grace: -1},
		{Retention: ms(100) + 1},
		{Retention: ms(100), SegmentInterval: 1},
		{Retention: ms(100), SegmentInterval: -ms(1)},
		{Retention: ms(1 << 20), SegmentInterval: ms(1)},
		{Retention: ms(100), InactivityGap: 1 << 62, Grace: 1 << 62},
	} {
		if err := cfg.Validate(); !errors.Is(err, state.ErrWindowConfig) {
			t.Errorf("Validate(%+v) = %v, want ErrWindowConfig", cfg, err)
		}
		if _, err := state.NewSessionStore(s, cfg); !errors.Is(err, state.ErrWindowConfig) {
			t.Errorf("NewSessionStore(%+v) = %v, want ErrWindowConfig", cfg, err)
		}
	}
	ss := openSessions(t, s, state.SessionStoreConfig{Retention: ms(300_000), InactivityGap: ms(60_000)})
	if got := ss.Config().SegmentInterval; got != ms(150_000) {
		t.Fatalf("default segment interval = %v", got)
	}
}

func testSessionTyped(t *testing.T, s state.Store) {
	ss := openSessions(t, s, testSessionCfg)
	ts := state.TypedSessions(ss, serde.String, serde.Int64)
	if ts.Store() != ss || ts.Name() != s.Name() {
		t.Fatal("accessors")
	}
	for i, x := range []win{{"b", 0, 10, ""}, {"a", 5, 50, ""}, {"a", 60, 70, ""}, {"b", 20, 90, ""}} {
		if dropped, err := ts.Put(x.k, x.start, x.end, int64(i)); dropped || err != nil {
			t.Fatal(dropped, err)
		}
	}
	if v, ok, err := ts.Fetch("a", 5, 50); v != 1 || !ok || err != nil {
		t.Fatalf("Fetch = %d, %v, %v", v, ok, err)
	}
	type kv struct {
		w state.Windowed[string]
		v int64
	}
	gather := func(seq func(func(state.Windowed[string], int64) bool)) []kv {
		var out []kv
		for w, v := range seq {
			out = append(out, kv{w, v})
		}
		return out
	}
	w := func(k string, start, end, v int64) kv {
		return kv{state.Windowed[string]{Key: k, Start: start, End: end}, v}
	}
	if got := gather(ts.FindSessions("a", 40, 65)); !slices.Equal(got, []kv{w("a", 5, 50, 1), w("a", 60, 70, 2)}) {
		t.Fatalf("FindSessions = %v", got)
	}
	if got := gather(ts.BackwardFindSessions("a", 40, 65)); !slices.Equal(got, []kv{w("a", 60, 70, 2), w("a", 5, 50, 1)}) {
		t.Fatalf("BackwardFindSessions = %v", got)
	}
	if got := gather(ts.FetchKey("b")); !slices.Equal(got, []kv{w("b", 0, 10, 0), w("b", 20, 90, 3)}) {
		t.Fatalf("FetchKey = %v", got)
	}
	if got := gather(ts.BackwardFetchKey("b")); !slices.Equal(got, []kv{w("b", 20, 90, 3), w("b", 0, 10, 0)}) {
		t.Fatalf("BackwardFetchKey = %v", got)
	}
	all := []kv{w("b", 0, 10, 0), w("a", 5, 50, 1), w("a", 60, 70, 2), w("b", 20, 90, 3)}
	if got := gather(ts.All()); !slices.Equal(got, all) {
		t.Fatalf("All = %v", got)
	}
	if got := gather(ts.BackwardAll()); !slices.Equal(got, reversed(all)) {
		t.Fatalf("BackwardAll = %v", got)
	}
	if got := gather(ts.FetchAll(50, 89)); !slices.Equal(got, all[1:3]) {
		t.Fatalf("FetchAll = %v", got)
	}
	if got := gather(ts.BackwardFetchAll(50, 89)); !slices.Equal(got, reversed(all[1:3])) {
		t.Fatalf("BackwardFetchAll = %v", got)
	}
	if err := ts.Remove("a", 5, 50); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := ts.Fetch("a", 5, 50); ok || err != nil {
		t.Fatalf("Fetch after Remove: %v, %v", ok, err)
	}
	if _, err := ss.Put([]byte("c"), 1, 2, []byte("x")); err != nil {
		t.Fatal(err)
	}
	seq, errf := ts.FetchKeyErr("c")
	for range seq {
		t.Fatal("decoded an undecodable value")
	}
	if !errors.Is(errf(), serde.ErrInvalidLength) {
		t.Fatalf("FetchKeyErr: %v", errf())
	}
	var ro state.ReadOnlySessions[string, int64] = ts
	if ro.Name() != s.Name() {
		t.Fatal("ReadOnlySessions name")
	}
}

func testSessionUseAfterClose(t *testing.T, s state.Store) {
	ss := openSessions(t, s, testSessionCfg)
	mustPutSession(t, ss, "a", 0, 100, "1")
	it := ss.FindSessions([]byte("a"), minT, maxT)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for it.Next() {
	}
	if err := it.Close(); !errors.Is(err, state.ErrClosed) {
		t.Errorf("iterator across Close: %v", err)
	}
	k := []byte("a")
	expectClosedPanic(t, "Put", func() { _, _ = ss.Put(k, 0, 200, k) })
	expectClosedPanic(t, "Put expired", func() { _, _ = ss.Put(k, 0, 0, k) })
	expectClosedPanic(t, "Remove", func() { _ = ss.Remove(k, 0, 200) })
	expectClosedPanic(t, "Fetch", func() { _, _ = ss.Fetch(k, 0, 100) })
	expectClosedPanic(t, "Fetch expired", func() { _, _ = ss.Fetch(k, 0, 0) })
	expectClosedPanic(t, "FindSessions", func() { _ = ss.FindSessions(k, minT, maxT) })
	expectClosedPanic(t, "BackwardFindSessions", func() { _ = ss.BackwardFindSessions(k, minT, maxT) })
	expectClosedPanic(t, "FetchKey", func() { _ = ss.FetchKey(k) })
	expectClosedPanic(t, "FetchAll", func() { _ = ss.FetchAll(minT, maxT) })
	expectClosedPanic(t, "FetchAll empty", func() { _ = ss.FetchAll(10, 0) })
	expectClosedPanic(t, "BackwardAll", func() { _ = ss.BackwardAll() })
	expectClosedPanic(t, "NewSessionStore", func() { _, _ = state.NewSessionStore(s, testSessionCfg) })
}
