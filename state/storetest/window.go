package storetest

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/streamwork-go/streamwork/serde"
	"github.com/streamwork-go/streamwork/state"
)

// RunWindow runs the window store suite over stores from open: each
// subtest opens a state.WindowStore on a new store. It covers Put, Fetch,
// the range fetches in both directions and their order, variable-length
// keys, retention (drops, hidden expired windows, segments dropped with one
// DeleteRange), duplicates, recovery on reopen, configuration errors, long
// backward scans, concurrent readers, typed views, use after Close, and a
// randomized comparison with a reference model.
func RunWindow(t *testing.T, open Opener) {
	tests := []struct {
		name string
		fn   func(*testing.T, state.Store)
	}{
		{"PutFetch", testWindowPutFetch},
		{"FetchRange", testWindowFetchRange},
		{"VariableLengthKeys", testWindowVariableLengthKeys},
		{"FetchAllOrder", testWindowFetchAllOrder},
		{"Retention", testWindowRetention},
		{"Duplicates", testWindowDuplicates},
		{"Reopen", testWindowReopen},
		{"Config", testWindowConfig},
		{"LongBackward", testWindowLongBackward},
		{"ConcurrentReaders", testWindowConcurrentReaders},
		{"Typed", testWindowTyped},
		{"UseAfterClose", testWindowUseAfterClose},
		{"Model", func(t *testing.T, s state.Store) { windowModel(t, s, false) }},
		{"ModelDuplicates", func(t *testing.T, s state.Store) { windowModel(t, s, true) }},
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

func testWindowPutFetch(t *testing.T, s state.Store) {
	ws := openWindows(t, s, testWindowCfg)
	if ws.Name() != s.Name() || ws.Store() != s || ws.StreamTime() != minT {
		t.Fatalf("new store: name %q, stream time %d", ws.Name(), ws.StreamTime())
	}
	if cfg := ws.Config(); cfg != testWindowCfg {
		t.Fatalf("Config = %+v", cfg)
	}
	fetch := func(k string, start int64) []byte {
		t.Helper()
		v, err := ws.Fetch([]byte(k), start)
		if err != nil {
			t.Fatalf("Fetch(%q, %d): %v", k, start, err)
		}
		return v
	}
	if v := fetch("a", 0); v != nil {
		t.Fatalf("Fetch on an empty store = %q", v)
	}
	mustPutWindow(t, ws, "a", 0, "1")
	mustPutWindow(t, ws, "a", 10, "2")
	mustPutWindow(t, ws, "b", 0, "3")
	if v := fetch("a", 0); string(v) != "1" {
		t.Fatalf("Fetch(a, 0) = %q", v)
	}
	if v := fetch("a", 5); v != nil {
		t.Fatalf("Fetch(a, 5) of no window = %q", v)
	}
	mustPutWindow(t, ws, "a", 0, "1b")
	if v := fetch("a", 0); string(v) != "1b" {
		t.Fatalf("Fetch after overwrite = %q", v)
	}
	mustPutWindow(t, ws, "a", 0, "<nil>") // deletes
	if v := fetch("a", 0); v != nil {
		t.Fatalf("Fetch after Put(nil) = %q", v)
	}
	if _, err := ws.Put([]byte("e"), 10, []byte{}); err != nil {
		t.Fatal(err)
	}
	if v := fetch("e", 10); v == nil || len(v) != 0 {
		t.Fatalf("Fetch of an empty value = %#v, want empty non-nil", v)
	}
	// The store copies keys and values; the caller owns what Fetch returns.
	k, v := []byte("own"), []byte("value")
	if _, err := ws.Put(k, 20, v); err != nil {
		t.Fatal(err)
	}
	k[0], v[0] = 'X', 'X'
	got := fetch("own", 20)
	if string(got) != "value" {
		t.Fatalf("store kept the caller's buffers: %q", got)
	}
	got[0] = 'Y'
	if got := fetch("own", 20); string(got) != "value" {
		t.Fatalf("Fetch returned the store's buffer: %q", got)
	}
	if st := ws.StreamTime(); st != 20 {
		t.Fatalf("StreamTime = %d, want 20", st)
	}
	if got := collectWindows(t, ws.All()); !slices.Equal(got, []win{
		{"a", 10, 20, "2"}, {"b", 0, 10, "3"}, {"e", 10, 20, ""}, {"own", 20, 30, "value"},
	}) {
		t.Fatalf("All = %v", got)
	}
}

func testWindowFetchRange(t *testing.T, s state.Store) {
	ws := openWindows(t, s, testWindowCfg)
	// Windows of a, b and ab across segments 0, 1 and 2.
	for _, start := range []int64{0, 10, 40, 50, 60, 90, 100, 110} {
		for _, k := range []string{"a", "b", "ab"} {
			mustPutWindow(t, ws, k, start, fmt.Sprint(k, start))
		}
	}
	// Stream time 110: windows from 11 on are live.
	tests := []struct {
		key      string
		from, to int64
		want     []int64
	}{
		{"a", minT, maxT, []int64{40, 50, 60, 90, 100, 110}},
		{"a", 40, 40, []int64{40}},
		{"a", 41, 49, nil},
		{"a", 45, 100, []int64{50, 60, 90, 100}},
		{"a", 0, 50, []int64{40, 50}},
		{"b", 60, maxT, []int64{60, 90, 100, 110}},
		{"ab", minT, 59, []int64{40, 50}},
		{"a", 100, 50, nil},
		{"c", minT, maxT, nil},
		{"", minT, maxT, nil},
	}
	for _, tc := range tests {
		var want []win
		for _, start := range tc.want {
			want = append(want, win{tc.key, start, start + tSize, fmt.Sprint(tc.key, start)})
		}
		if got := collectWindows(t, ws.FetchRange([]byte(tc.key), tc.from, tc.to)); !slices.Equal(got, want) {
			t.Errorf("FetchRange(%q, %d, %d) = %v, want %v", tc.key, tc.from, tc.to, got, want)
		}
		if got := collectWindows(t, ws.BackwardFetchRange([]byte(tc.key), tc.from, tc.to)); !slices.Equal(got, reversed(want)) {
			t.Errorf("BackwardFetchRange(%q, %d, %d) = %v, want %v", tc.key, tc.from, tc.to, got, reversed(want))
		}
	}
	// Breaking out early and closing twice are fine.
	it := ws.FetchRange([]byte("a"), minT, maxT)
	if !it.Next() || it.Start() != 40 || string(it.Key()) != "a" || string(it.Value()) != "a40" {
		t.Fatalf("first window: %q %d %q", it.Key(), it.Start(), it.Value())
	}
	if err := it.Close(); err != nil {
		t.Fatal(err)
	}
	if err := it.Close(); err != nil || it.Next() {
		t.Fatalf("after Close: Next true or err %v", err)
	}
}

// testWindowVariableLengthKeys proves on the store that no user key is
// confused with another key plus timestamp bytes: each key's fetches
// return exactly its own windows, and All orders them by segment, key
// bytes, start.
func testWindowVariableLengthKeys(t *testing.T, s state.Store) {
	ws := openWindows(t, s, testWindowCfg)
	starts := []int64{0, 20, 49, 50, 99}
	var all []win
	for _, start := range starts {
		for _, k := range adversarialKeys {
			mustPutWindow(t, ws, k, start, k+"@"+fmt.Sprint(start))
			all = append(all, win{k, start, start + tSize, k + "@" + fmt.Sprint(start)})
		}
	}
	for _, k := range adversarialKeys {
		var want []win
		for _, w := range all {
			if w.k == k {
				want = append(want, w)
			}
		}
		if got := collectWindows(t, ws.FetchRange([]byte(k), minT, maxT)); !slices.Equal(got, want) {
			t.Errorf("FetchRange(%q) = %v\nwant %v", k, got, want)
		}
		if got := collectWindows(t, ws.BackwardFetchRange([]byte(k), minT, maxT)); !slices.Equal(got, reversed(want)) {
			t.Errorf("BackwardFetchRange(%q) = %v", k, got)
		}
		for _, w := range want {
			if v, err := ws.Fetch([]byte(k), w.start); string(v) != w.v || err != nil {
				t.Errorf("Fetch(%q, %d) = %q, %v", k, w.start, v, err)
			}
		}
	}
	slices.SortFunc(all, func(a, b win) int {
		return cmp.Or(cmp.Compare(floorDiv(a.start, tInterval), floorDiv(b.start, tInterval)),
			cmp.Compare(a.k, b.k), cmp.Compare(a.start, b.start))
	})
	if got := collectWindows(t, ws.All()); !slices.Equal(got, all) {
		t.Errorf("All = %v\nwant %v", got, all)
	}
}

func testWindowFetchAllOrder(t *testing.T, s state.Store) {
	ws := openWindows(t, s, testWindowCfg)
	// Puts out of order, over segments 1 to 3.
	puts := []struct {
		k     string
		start int64
	}{{"b", 120}, {"a", 149}, {"c", 60}, {"a", 60}, {"b", 99}, {"a", 100}, {"c", 101}, {"b", 50}, {"a", 75}}
	for _, p := range puts {
		mustPutWindow(t, ws, p.k, p.start, fmt.Sprint(p.start))
	}
	w := func(k string, start int64) win { return win{k, start, start + tSize, fmt.Sprint(start)} }
	// Stream time 149: windows from 50 on are live. Segment 1 (50-99),
	// then 2 (100-149); within a segment by key, then start.
	all := []win{w("a", 60), w("a", 75), w("b", 50), w("b", 99), w("c", 60), w("a", 100), w("a", 149), w("b", 120), w("c", 101)}
	if got := collectWindows(t, ws.All()); !slices.Equal(got, all) {
		t.Fatalf("All = %v\nwant %v", got, all)
	}
	if got := collectWindows(t, ws.BackwardAll()); !slices.Equal(got, reversed(all)) {
		t.Fatalf("BackwardAll = %v", got)
	}
	if got := collectWindows(t, ws.FetchAll(minT, maxT)); !slices.Equal(got, all) {
		t.Fatalf("FetchAll(min, max) = %v", got)
	}
	for _, r := range [][2]int64{{60, 100}, {61, 119}, {99, 99}, {0, 49}, {100, 10}, {150, maxT}, {75, 149}} {
		var want []win
		for _, x := range all {
			if x.start >= r[0] && x.start <= r[1] {
				want = append(want, x)
			}
		}
		if got := collectWindows(t, ws.FetchAll(r[0], r[1])); !slices.Equal(got, want) {
			t.Errorf("FetchAll(%d, %d) = %v, want %v", r[0], r[1], got, want)
		}
		if got := collectWindows(t, ws.BackwardFetchAll(r[0], r[1])); !slices.Equal(got, reversed(want)) {
			t.Errorf("BackwardFetchAll(%d, %d) = %v", r[0], r[1], got)
		}
	}
}

func testWindowRetention(t *testing.T, s state.Store) {
	cs := &countingStore{Store: s}
	ws := openWindows(t, cs, testWindowCfg)
	put := func(k string, start int64) {
		t.Helper()
		mustPutWindow(t, ws, k, start, fmt.Sprint(start))
	}
	starts := func(k string) []int64 {
		t.Helper()
		var out []int64
		for _, w := range collectWindows(t, ws.FetchRange([]byte(k), minT, maxT)) {
			out = append(out, w.start)
		}
		return out
	}
	put("k", 0)
	put("k", 10)
	put("k", 60)
	put("k", 120) // stream time 120: live from 21; segment 0 stays, partly expired
	if st := ws.StreamTime(); st != 120 {
		t.Fatalf("StreamTime = %d", st)
	}
	if v, err := ws.Fetch([]byte("k"), 10); v != nil || err != nil {
		t.Fatalf("Fetch of an expired window in a live segment = %q, %v", v, err)
	}
	if got := starts("k"); !slices.Equal(got, []int64{60, 120}) {
		t.Fatalf("FetchRange = %v, want the live 60, 120", got)
	}
	if got := collectWindows(t, ws.BackwardFetchAll(minT, maxT)); len(got) != 2 {
		t.Fatalf("BackwardFetchAll = %v", got)
	}
	if n := dataKeys(t, s); n != 4 || cs.deleteRanges != 0 {
		t.Fatalf("%d data keys, %d DeleteRange calls; want 4 (segment 0 kept), 0", n, cs.deleteRanges)
	}
	// Too old: dropped, and reported.
	for _, start := range []int64{20, 0, -1000, minT} {
		dropped, err := ws.Put([]byte("k"), start, []byte("late"))
		if !dropped || err != nil {
			t.Fatalf("Put of expired window %d: dropped %v, err %v", start, dropped, err)
		}
	}
	if n := dataKeys(t, s); n != 4 {
		t.Fatalf("a dropped Put wrote: %d data keys", n)
	}
	put("k", 21)  // the oldest live window
	put("k", 150) // stream time 150: live from 51, segment 0 expires
	if cs.deleteRanges != 1 || cs.deletes != 0 {
		t.Fatalf("expiring segment 0: %d DeleteRange, %d deletes; want 1, 0", cs.deleteRanges, cs.deletes)
	}
	if n := dataKeys(t, s); n != 3 {
		t.Fatalf("after expiring segment 0: %d data keys, want 3", n)
	}
	put("k", 160) // no segment expires
	if cs.deleteRanges != 1 {
		t.Fatalf("DeleteRange calls = %d without a segment expiring", cs.deleteRanges)
	}
	put("j", 199) // live from 100: segment 1 goes
	if cs.deleteRanges != 2 || dataKeys(t, s) != 4 {
		t.Fatalf("expiring segment 1: %d DeleteRange, %d data keys; want 2, 4", cs.deleteRanges, dataKeys(t, s))
	}
	put("k", 300) // live from 201: segments 2 and 3 go in one DeleteRange
	if cs.deleteRanges != 3 || cs.deletes != 0 {
		t.Fatalf("expiring segments 2-3: %d DeleteRange, %d deletes; want 3, 0", cs.deleteRanges, cs.deletes)
	}
	if n := dataKeys(t, s); n != 1 {
		t.Fatalf("after expiring segments 2-3: %d data keys, want 1", n)
	}
	if got := starts("k"); !slices.Equal(got, []int64{300}) {
		t.Fatalf("FetchRange = %v", got)
	}
	put("k", 5000)
	put("k", 10_000)
	if cs.deleteRanges != 5 || dataKeys(t, s) != 1 {
		t.Fatalf("DeleteRange calls = %d, data keys %d; want 5, 1", cs.deleteRanges, dataKeys(t, s))
	}
	// Stream time moves on with nothing left to drop: no DeleteRange.
	mustPutWindow(t, ws, "k", 10_000, "<nil>")
	mustPutWindow(t, ws, "x", 30_000, "<nil>")
	put("k", 40_000)
	if cs.deleteRanges != 5 || dataKeys(t, s) != 1 || ws.StreamTime() != 40_000 {
		t.Fatalf("DeleteRange calls = %d, data keys %d, stream time %d", cs.deleteRanges, dataKeys(t, s), ws.StreamTime())
	}
}

func testWindowDuplicates(t *testing.T, s state.Store) {
	cfg := testWindowCfg
	cfg.RetainDuplicates = true
	ws := openWindows(t, s, cfg)
	for _, p := range []struct {
		k     string
		start int64
		v     string
	}{{"a", 10, "1"}, {"b", 10, "2"}, {"a", 10, "3"}, {"a", 0, "4"}, {"a", 10, "3"}, {"a", 60, "5"}, {"a", 10, "6"}} {
		mustPutWindow(t, ws, p.k, p.start, p.v)
	}
	// A nil value is ignored, as in Kafka Streams.
	if dropped, err := ws.Put([]byte("a"), 10, nil); dropped || err != nil {
		t.Fatalf("Put(nil) with duplicates: %v, %v", dropped, err)
	}
	want := []win{{"a", 0, 10, "4"}, {"a", 10, 20, "1"}, {"a", 10, 20, "3"}, {"a", 10, 20, "3"}, {"a", 10, 20, "6"}, {"a", 60, 70, "5"}}
	if got := collectWindows(t, ws.FetchRange([]byte("a"), minT, maxT)); !slices.Equal(got, want) {
		t.Fatalf("FetchRange = %v\nwant %v", got, want)
	}
	if got := collectWindows(t, ws.BackwardFetchRange([]byte("a"), minT, maxT)); !slices.Equal(got, reversed(want)) {
		t.Fatalf("BackwardFetchRange = %v", got)
	}
	if got := collectWindows(t, ws.FetchRange([]byte("a"), 10, 10)); !slices.Equal(got, want[1:5]) {
		t.Fatalf("FetchRange(a, 10, 10) = %v", got)
	}
	if v, err := ws.Fetch([]byte("a"), 10); string(v) != "1" || err != nil {
		t.Fatalf("Fetch with duplicates = %q, %v; want the first value", v, err)
	}
	all := []win{{"a", 0, 10, "4"}, {"a", 10, 20, "1"}, {"a", 10, 20, "3"}, {"a", 10, 20, "3"}, {"a", 10, 20, "6"}, {"b", 10, 20, "2"}, {"a", 60, 70, "5"}}
	if got := collectWindows(t, ws.All()); !slices.Equal(got, all) {
		t.Fatalf("All = %v\nwant %v", got, all)
	}
	if got := collectWindows(t, ws.BackwardFetchAll(minT, maxT)); !slices.Equal(got, reversed(all)) {
		t.Fatalf("BackwardFetchAll = %v", got)
	}
}

func testWindowReopen(t *testing.T, s state.Store) {
	ws := openWindows(t, s, testWindowCfg)
	mustPutWindow(t, ws, "a", 100, "x")
	mustPutWindow(t, ws, "c", 150, "y")
	mustPutWindow(t, ws, "b", 199, "z")
	mustPutWindow(t, ws, "b", 199, "<nil>") // the newest window
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	ws = openWindows(t, s, testWindowCfg)
	if st := ws.StreamTime(); st != 199 {
		t.Fatalf("reopened: StreamTime = %d, want 199 (its window was deleted)", st)
	}
	if got := collectWindows(t, ws.All()); !slices.Equal(got, []win{{"a", 100, 110, "x"}, {"c", 150, 160, "y"}}) {
		t.Fatalf("reopened: All = %v", got)
	}
	if dropped, err := ws.Put([]byte("a"), 99, []byte("late")); !dropped || err != nil {
		t.Fatalf("reopened: Put of an expired window: %v, %v", dropped, err)
	}

	// Another layout or segment interval over the same data is refused.
	for name, open := range map[string]func() error{
		"other interval": func() error {
			cfg := testWindowCfg
			cfg.SegmentInterval = ms(30)
			_, err := state.NewWindowStore(s, cfg)
			return err
		},
		"duplicates": func() error {
			cfg := testWindowCfg
			cfg.RetainDuplicates = true
			_, err := state.NewWindowStore(s, cfg)
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
	mustPut(t, s, "\x7fforeign", "v")
	if _, err := state.NewWindowStore(s, testWindowCfg); !errors.Is(err, state.ErrCorruptWindowKey) {
		t.Errorf("over a foreign key: err = %v", err)
	}
	if err := s.Delete([]byte("\x7fforeign")); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteRange(nil, nil); err != nil {
		t.Fatal(err)
	}

	// Duplicates keep their order across reopens, with or without the
	// meta key that reserves sequence numbers.
	cfg := testWindowCfg
	cfg.RetainDuplicates = true
	ws = openWindows(t, s, cfg)
	mustPutWindow(t, ws, "k", 10, "1")
	mustPutWindow(t, ws, "k", 10, "2")
	ws = openWindows(t, s, cfg)
	mustPutWindow(t, ws, "k", 10, "3")
	if err := s.Delete([]byte{0x82}); err != nil { // the meta key of duplicates
		t.Fatal(err)
	}
	ws = openWindows(t, s, cfg)
	mustPutWindow(t, ws, "k", 10, "4")
	ws = openWindows(t, s, cfg)
	mustPutWindow(t, ws, "k", 10, "5")
	var got []string
	for _, w := range collectWindows(t, ws.FetchRange([]byte("k"), minT, maxT)) {
		got = append(got, w.v)
	}
	if !slices.Equal(got, []string{"1", "2", "3", "4", "5"}) {
		t.Fatalf("duplicates across reopens: %q", got)
	}
}

func testWindowConfig(t *testing.T, s state.Store) {
	for _, cfg := range []state.WindowStoreConfig{
		{},
		{Retention: ms(100)},
		{Retention: ms(100), WindowSize: -1},
		{Retention: ms(100), WindowSize: ms(50), Grace: ms(51)},
		{Retention: ms(100), WindowSize: ms(10), Grace: -1},
		{Retention: -ms(100), WindowSize: ms(10)},
		{Retention: ms(100), WindowSize: ms(10), SegmentInterval: -1},
		{Retention: ms(100), WindowSize: 1500},
		{Retention: ms(100)*1000 + 1, WindowSize: ms(10)},
		{Retention: ms(100_000), WindowSize: ms(10), SegmentInterval: ms(10)},
		{Retention: ms(100), WindowSize: 1 << 62, Grace: 1 << 62},
	} {
		if err := cfg.Validate(); !errors.Is(err, state.ErrWindowConfig) {
			t.Errorf("Validate(%+v) = %v, want ErrWindowConfig", cfg, err)
		}
		if _, err := state.NewWindowStore(s, cfg); !errors.Is(err, state.ErrWindowConfig) {
			t.Errorf("NewWindowStore(%+v) = %v, want ErrWindowConfig", cfg, err)
		}
	}
	for _, tc := range []struct {
		cfg      state.WindowStoreConfig
		interval int64 // ms
	}{
		{state.WindowStoreConfig{Retention: ms(100), WindowSize: ms(50), Grace: ms(50)}, 60_000},
		{state.WindowStoreConfig{Retention: ms(600_000), WindowSize: ms(60_000)}, 300_000},
		{state.WindowStoreConfig{Retention: ms(86_400_000), WindowSize: ms(3_600_000), SegmentInterval: ms(3_600_000)}, 3_600_000},
	} {
		ws, err := state.NewWindowStore(s, tc.cfg)
		if err != nil {
			t.Fatalf("NewWindowStore(%+v): %v", tc.cfg, err)
		}
		if got := ws.Config().SegmentInterval; got != ms(tc.interval) {
			t.Errorf("%+v: segment interval %v, want %v", tc.cfg, got, ms(tc.interval))
		}
	}
}

// testWindowLongBackward scans more windows than a backward pass holds,
// within one segment and across segments.
func testWindowLongBackward(t *testing.T, s state.Store) {
	cfg := testWindowCfg
	cfg.Retention, cfg.SegmentInterval = ms(20_000), ms(10_000)
	ws := openWindows(t, s, cfg)
	const n = 12_000
	for i := range n {
		mustPutWindow(t, ws, fmt.Sprintf("k%d", i%7), int64(i), fmt.Sprint(i))
	}
	fwd := collectWindows(t, ws.All())
	if len(fwd) != n {
		t.Fatalf("All: %d windows, want %d", len(fwd), n)
	}
	if got := collectWindows(t, ws.BackwardAll()); !slices.Equal(got, reversed(fwd)) {
		t.Fatalf("BackwardAll (%d windows) is not All reversed", len(got))
	}
	fwd = collectWindows(t, ws.FetchRange([]byte("k3"), minT, maxT))
	if got := collectWindows(t, ws.BackwardFetchRange([]byte("k3"), minT, maxT)); len(fwd) != n/7 || !slices.Equal(got, reversed(fwd)) {
		t.Fatalf("BackwardFetchRange: %d windows, forward %d", len(got), len(fwd))
	}
}

func testWindowConcurrentReaders(t *testing.T, s state.Store) {
	ws := openWindows(t, s, testWindowCfg)
	const keys, puts = 8, 3000
	done := make(chan struct{})
	errs := make(chan error, 8)
	report := func(err error) {
		select {
		case errs <- err:
		default:
		}
	}
	check := func(it state.WindowIterator, minLive int64, before func(a, b win) bool) {
		var prev *win
		for it.Next() {
			w := win{string(it.Key()), it.Start(), it.End(), string(it.Value())}
			if w.v != fmt.Sprintf("%s@%d", w.k, w.start) {
				report(fmt.Errorf("window %v has a foreign value", w))
			}
			if w.start < minLive {
				report(fmt.Errorf("window %v expired (live from %d)", w, minLive))
			}
			if prev != nil && !before(*prev, w) {
				report(fmt.Errorf("%v before %v", *prev, w))
			}
			prev = &w
		}
		if err := it.Close(); err != nil {
			report(err)
		}
	}
	byStart := func(a, b win) bool { return a.start < b.start }
	bySegKeyStart := func(a, b win) bool {
		return cmp.Or(cmp.Compare(floorDiv(a.start, tInterval), floorDiv(b.start, tInterval)),
			cmp.Compare(a.k, b.k), cmp.Compare(a.start, b.start)) < 0
	}
	var wg sync.WaitGroup
	for r := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-done:
					return
				default:
				}
				minLive := int64(minT)
				if st := ws.StreamTime(); st != minT {
					minLive = st - tRetention + 1
				}
				k := []byte(fmt.Sprint("k", (i+r)%keys))
				switch r {
				case 0:
					check(ws.FetchRange(k, minT, maxT), minLive, byStart)
				case 1:
					check(ws.BackwardFetchRange(k, minT, maxT), minLive, func(a, b win) bool { return byStart(b, a) })
				case 2:
					check(ws.FetchAll(minT, maxT), minLive, bySegKeyStart)
				default:
					check(ws.BackwardAll(), minLive, func(a, b win) bool { return bySegKeyStart(b, a) })
				}
			}
		}()
	}
	for i := range puts {
		k := fmt.Sprint("k", i%keys)
		start := int64(i / 2)
		mustPutWindow(t, ws, k, start, fmt.Sprintf("%s@%d", k, start))
	}
	close(done)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func testWindowTyped(t *testing.T, s state.Store) {
	ws := openWindows(t, s, testWindowCfg)
	tw := state.TypedWindows(ws, serde.String, serde.Int64)
	if tw.Store() != ws || tw.Name() != s.Name() {
		t.Fatal("accessors")
	}
	for i, k := range []string{"b", "a", "b", "a"} {
		if dropped, err := tw.Put(k, int64(10*i), int64(i)); dropped || err != nil {
			t.Fatal(dropped, err)
		}
	}
	if v, ok, err := tw.Fetch("a", 10); v != 1 || !ok || err != nil {
		t.Fatalf("Fetch(a, 10) = %d, %v, %v", v, ok, err)
	}
	if _, ok, err := tw.Fetch("a", 0); ok || err != nil {
		t.Fatalf("Fetch of no window = %v, %v", ok, err)
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
	w := func(k string, start, v int64) kv {
		return kv{state.Windowed[string]{Key: k, Start: start, End: start + tSize}, v}
	}
	if got := gather(tw.FetchRange("a", 0, 100)); !slices.Equal(got, []kv{w("a", 10, 1), w("a", 30, 3)}) {
		t.Fatalf("FetchRange = %v", got)
	}
	if got := gather(tw.BackwardFetchRange("b", 0, 100)); !slices.Equal(got, []kv{w("b", 20, 2), w("b", 0, 0)}) {
		t.Fatalf("BackwardFetchRange = %v", got)
	}
	all := []kv{w("a", 10, 1), w("a", 30, 3), w("b", 0, 0), w("b", 20, 2)}
	if got := gather(tw.All()); !slices.Equal(got, all) {
		t.Fatalf("All = %v", got)
	}
	if got := gather(tw.BackwardAll()); !slices.Equal(got, reversed(all)) {
		t.Fatalf("BackwardAll = %v", got)
	}
	if got := gather(tw.FetchAll(10, 20)); !slices.Equal(got, []kv{w("a", 10, 1), w("b", 20, 2)}) {
		t.Fatalf("FetchAll = %v", got)
	}
	if got := gather(tw.BackwardFetchAll(10, 20)); !slices.Equal(got, []kv{w("b", 20, 2), w("a", 10, 1)}) {
		t.Fatalf("BackwardFetchAll = %v", got)
	}
	// Breaking out of a loop closes the scan.
	for range tw.All() {
		break
	}
	// An undecodable value is reported, or panics.
	if _, err := ws.Put([]byte("c"), 30, []byte("x")); err != nil {
		t.Fatal(err)
	}
	seq, errf := tw.FetchAllErr(minT, maxT)
	n := 0
	for range seq {
		n++
	}
	if n != 4 || !errors.Is(errf(), serde.ErrInvalidLength) {
		t.Fatalf("FetchAllErr over an undecodable value: %d windows, err %v", n, errf())
	}
	func() {
		defer func() {
			if err, _ := recover().(error); !errors.Is(err, serde.ErrInvalidLength) {
				t.Fatalf("FetchRange over an undecodable value: panic %v", err)
			}
		}()
		for range tw.FetchRange("c", minT, maxT) {
		}
	}()
	if _, _, err := tw.Fetch("c", 30); !errors.Is(err, serde.ErrInvalidLength) {
		t.Fatalf("Fetch of an undecodable value: %v", err)
	}
	var ro state.ReadOnlyWindows[string, int64] = tw
	if ro.Name() != s.Name() {
		t.Fatal("ReadOnlyWindows name")
	}
}

func testWindowUseAfterClose(t *testing.T, s state.Store) {
	ws := openWindows(t, s, testWindowCfg)
	mustPutWindow(t, ws, "a", 100, "1")
	for range 10 {
		mustPutWindow(t, ws, "b", 100, "1")
	}
	it := ws.FetchAll(minT, maxT)
	back := ws.BackwardAll()
	if !it.Next() || !back.Next() {
		t.Fatal("no windows")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Iterators open when the store closed stop with ErrClosed.
	for it.Next() {
	}
	if err := it.Close(); !errors.Is(err, state.ErrClosed) {
		t.Errorf("forward iterator across Close: %v", err)
	}
	for back.Next() {
	}
	_ = back.Close() // its snapshot may hold every window: no error required
	k := []byte("a")
	expectClosedPanic(t, "Put", func() { _, _ = ws.Put(k, 200, k) })
	expectClosedPanic(t, "Put expired", func() { _, _ = ws.Put(k, 0, k) })
	expectClosedPanic(t, "Fetch", func() { _, _ = ws.Fetch(k, 100) })
	expectClosedPanic(t, "Fetch expired", func() { _, _ = ws.Fetch(k, 0) })
	expectClosedPanic(t, "FetchRange", func() { _ = ws.FetchRange(k, minT, maxT) })
	expectClosedPanic(t, "FetchRange empty", func() { _ = ws.FetchRange(k, 10, 0) })
	expectClosedPanic(t, "BackwardFetchRange", func() { _ = ws.BackwardFetchRange(k, minT, maxT) })
	expectClosedPanic(t, "FetchAll", func() { _ = ws.FetchAll(minT, maxT) })
	expectClosedPanic(t, "BackwardFetchAll", func() { _ = ws.BackwardFetchAll(minT, maxT) })
	expectClosedPanic(t, "All", func() { _ = ws.All() })
	expectClosedPanic(t, "BackwardAll", func() { _ = ws.BackwardAll() })
	expectClosedPanic(t, "NewWindowStore", func() { _, _ = state.NewWindowStore(s, testWindowCfg) })
}
