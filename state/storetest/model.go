package storetest

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/streamwork-go/streamwork/state"
)

// modelOps is the number of random operations of each model test.
const modelOps = 3000

// windowModel runs random Puts (live, late and deleting), Fetches, range
// fetches in both directions, reopens and flushes on a window store and on
// a map-based model of it, and fails at the first difference. The model
// also tracks which windows are still stored, expired or not, to check that
// segments are dropped exactly when they expire.
func windowModel(t *testing.T, s state.Store, dups bool) {
	cfg := testWindowCfg
	cfg.RetainDuplicates = dups
	ws := openWindows(t, s, cfg)
	r := newRand(7)
	type wkey struct {
		k     string
		start int64
	}
	// stored holds what the store holds: live windows and expired ones not
	// yet dropped; values in insertion order.
	stored := map[wkey][]string{}
	st := int64(math.MinInt64)
	minLive := func() int64 {
		if st < math.MinInt64+tRetention-1 {
			return math.MinInt64
		}
		return st - tRetention + 1
	}
	var log []string
	fail := func(format string, args ...any) {
		t.Helper()
		tail := log[max(0, len(log)-15):]
		t.Fatalf("op %d: %s\nlast operations:\n  %s", len(log)-1, fmt.Sprintf(format, args...), strings.Join(tail, "\n  "))
	}
	expect := func(what string, got, want []win) {
		t.Helper()
		if !slices.Equal(got, want) {
			fail("%s = %v\nwant %v", what, got, want)
		}
	}
	// windows returns the live windows accepted by keep, ordered by
	// segment, key, start and insertion.
	windows := func(keep func(wkey) bool) []win {
		var out []win
		keys := slices.SortedFunc(maps.Keys(stored), func(a, b wkey) int {
			return cmp.Or(cmp.Compare(floorDiv(a.start, tInterval), floorDiv(b.start, tInterval)),
				strings.Compare(a.k, b.k), cmp.Compare(a.start, b.start))
		})
		for _, k := range keys {
			if k.start < minLive() || !keep(k) {
				continue
			}
			for _, v := range stored[k] {
				out = append(out, win{k.k, k.start, k.start + tSize, v})
			}
		}
		return out
	}
	randTime := func() int64 {
		switch n := r.n(20); {
		case n == 0:
			// Extremes; a write at math.MaxInt64 would expire everything
			// for the rest of the test, so writes get st+1 instead.
			return []int64{math.MinInt64, math.MaxInt64, 0}[r.n(3)]
		case st == math.MinInt64:
			return int64(r.n(200))
		case n < 16: // around the live range, now and then a little ahead
			t := st - int64(r.n(tRetention+tRetention/4))
			if r.n(8) == 0 {
				t = st + int64(r.n(tInterval/4))
			}
			return t
		default:
			return st - int64(r.n(3*tRetention)) + int64(r.n(tRetention/2))
		}
	}
	for range modelOps {
		switch n := r.n(100); {
		case n < 45: // Put
			k, start := r.key(2), randTime()
			if start == math.MaxInt64 {
				start = st + 1
			}
			if r.n(100) == 0 {
				start = st + int64(r.n(3*tRetention)) // jump ahead
			}
			v := fmt.Sprint(r.n(1000))
			if r.n(6) == 0 {
				v = "<nil>"
			}
			log = append(log, fmt.Sprintf("Put(%q, %d, %s)", k, start, v))
			var vb []byte
			if v != "<nil>" {
				vb = []byte(v)
			}
			dropped, err := ws.Put([]byte(k), start, vb)
			if err != nil {
				fail("Put: %v", err)
			}
			if v == "<nil>" && dups {
				if dropped {
					fail("Put(nil) with duplicates dropped")
				}
				continue
			}
			st = max(st, start)
			if want := start < minLive(); dropped != want {
				fail("Put dropped = %v, want %v (stream time %d)", dropped, want, st)
			}
			for k := range stored { // expired segments go
				if floorDiv(k.start, tInterval) < floorDiv(minLive(), tInterval) {
					delete(stored, k)
				}
			}
			switch wk := (wkey{k, start}); {
			case dropped:
			case v == "<nil>":
				delete(stored, wk)
			case dups:
				stored[wk] = append(stored[wk], v)
			default:
				stored[wk] = []string{v}
			}
		case n < 55: // Fetch
			k, start := r.key(2), randTime()
			log = append(log, fmt.Sprintf("Fetch(%q, %d)", k, start))
			got, err := ws.Fetch([]byte(k), start)
			if err != nil {
				fail("Fetch: %v", err)
			}
			var want []byte
			if vs := stored[wkey{k, start}]; len(vs) > 0 && start >= minLive() {
				want = []byte(vs[0])
			}
			if (got == nil) != (want == nil) || string(got) != string(want) {
				fail("Fetch = %q, want %q", got, want)
			}
		case n < 70: // FetchRange
			k, from, to := r.key(2), randTime(), randTime()
			if r.n(3) == 0 {
				from, to = min(from, to), max(from, to)
			}
			log = append(log, fmt.Sprintf("FetchRange(%q, %d, %d)", k, from, to))
			want := windows(func(w wkey) bool { return w.k == k && w.start >= from && w.start <= to })
			slices.SortStableFunc(want, func(a, b win) int { return cmp.Compare(a.start, b.start) })
			expect("FetchRange", collectWindows(t, ws.FetchRange([]byte(k), from, to)), want)
			expect("BackwardFetchRange", collectWindows(t, ws.BackwardFetchRange([]byte(k), from, to)), reversed(want))
		case n < 82: // FetchAll
			from, to := randTime(), randTime()
			if r.n(3) != 0 {
				from, to = min(from, to), max(from, to)
			}
			log = append(log, fmt.Sprintf("FetchAll(%d, %d)", from, to))
			want := windows(func(w wkey) bool { return w.start >= from && w.start <= to })
			expect("FetchAll", collectWindows(t, ws.FetchAll(from, to)), want)
			expect("BackwardFetchAll", collectWindows(t, ws.BackwardFetchAll(from, to)), reversed(want))
		case n < 90: // All, and what the store holds
			log = append(log, "All()")
			want := windows(func(wkey) bool { return true })
			expect("All", collectWindows(t, ws.All()), want)
			expect("BackwardAll", collectWindows(t, ws.BackwardAll()), reversed(want))
			n := 0
			for _, vs := range stored {
				n += len(vs)
			}
			if got := dataKeys(t, s); got != n {
				fail("store holds %d windows, want %d (live and not yet dropped)", got, n)
			}
			if got := ws.StreamTime(); got != st {
				fail("StreamTime = %d, want %d", got, st)
			}
		case n < 95:
			log = append(log, "reopen")
			ws = openWindows(t, s, cfg)
			if got := ws.StreamTime(); got != st {
				fail("StreamTime after reopen = %d, want %d", got, st)
			}
		default:
			log = append(log, "Flush()")
			if err := s.Flush(); err != nil {
				fail("Flush: %v", err)
			}
		}
	}
}

// sessionModel is windowModel for a session store: random Puts (live,
// late, removing; overlapping and spanning segments), Fetches,
// FindSessions, FetchKey, FetchAll, reopens and flushes.
func sessionModel(t *testing.T, s state.Store) {
	ss := openSessions(t, s, testSessionCfg)
	r := newRand(11)
	type skey struct {
		k          string
		start, end int64
	}
	stored := map[skey]string{}
	st := int64(math.MinInt64)
	minLive := func() int64 {
		if st < math.MinInt64+tRetention-1 {
			return math.MinInt64
		}
		return st - tRetention + 1
	}
	var log []string
	fail := func(format string, args ...any) {
		t.Helper()
		tail := log[max(0, len(log)-15):]
		t.Fatalf("op %d: %s\nlast operations:\n  %s", len(log)-1, fmt.Sprintf(format, args...), strings.Join(tail, "\n  "))
	}
	expect := func(what string, got, want []win) {
		t.Helper()
		if !slices.Equal(got, want) {
			fail("%s = %v\nwant %v", what, got, want)
		}
	}
	// sessions returns the live sessions accepted by keep, ordered by
	// segment of the end, key, start, end.
	sessions := func(keep func(skey) bool) []win {
		var out []win
		keys := slices.SortedFunc(maps.Keys(stored), func(a, b skey) int {
			return cmp.Or(cmp.Compare(floorDiv(a.end, tInterval), floorDiv(b.end, tInterval)),
				strings.Compare(a.k, b.k), cmp.Compare(a.start, b.start), cmp.Compare(a.end, b.end))
		})
		for _, k := range keys {
			if k.end >= minLive() && keep(k) {
				out = append(out, win{k.k, k.start, k.end, stored[k]})
			}
		}
		return out
	}
	byStart := func(a, b win) int { return cmp.Or(cmp.Compare(a.start, b.start), cmp.Compare(a.end, b.end)) }
	randTime := func() int64 {
		switch n := r.n(20); {
		case n == 0:
			// Extremes; a write at math.MaxInt64 would expire everything
			// for the rest of the test, so writes get st+1 instead.
			return []int64{math.MinInt64, math.MaxInt64, 0}[r.n(3)]
		case st == math.MinInt64:
			return int64(r.n(200))
		case n < 16: // around the live range, now and then a little ahead
			t := st - int64(r.n(tRetention+tRetention/4))
			if r.n(8) == 0 {
				t = st + int64(r.n(tInterval/4))
			}
			return t
		default:
			return st - int64(r.n(3*tRetention)) + int64(r.n(tRetention/2))
		}
	}
	// existing returns a stored session, or a new one.
	pick := func() skey {
		if len(stored) > 0 && r.n(3) == 0 {
			keys := slices.SortedFunc(maps.Keys(stored), func(a, b skey) int {
				return cmp.Or(strings.Compare(a.k, b.k), cmp.Compare(a.start, b.start), cmp.Compare(a.end, b.end))
			})
			return keys[r.n(len(keys))]
		}
		end := randTime()
		if end == math.MaxInt64 {
			end = st + 1
		}
		if end == math.MinInt64 {
			return skey{r.key(2), end, end}
		}
		return skey{r.key(2), end - int64(r.n(3*tInterval)), end}
	}
	for range modelOps {
		switch n := r.n(100); {
		case n < 45: // Put or Remove
			sk := pick()
			if r.n(100) == 0 && st != math.MinInt64 {
				sk.end = st + int64(r.n(3*tRetention))
				sk.start = sk.end - int64(r.n(tInterval))
			}
			v := fmt.Sprint(r.n(1000))
			remove := r.n(5) == 0
			dropped, err := false, error(nil)
			if remove {
				log = append(log, fmt.Sprintf("Remove(%q, %d, %d)", sk.k, sk.start, sk.end))
				err = ss.Remove([]byte(sk.k), sk.start, sk.end)
			} else {
				log = append(log, fmt.Sprintf("Put(%q, %d, %d, %s)", sk.k, sk.start, sk.end, v))
				dropped, err = ss.Put([]byte(sk.k), sk.start, sk.end, []byte(v))
			}
			if err != nil {
				fail("Put: %v", err)
			}
			st = max(st, sk.end)
			if want := sk.end < minLive(); dropped != want && !remove {
				fail("Put dropped = %v, want %v (stream time %d)", dropped, want, st)
			}
			for k := range stored {
				if floorDiv(k.end, tInterval) < floorDiv(minLive(), tInterval) {
					delete(stored, k)
				}
			}
			switch {
			case sk.end < minLive():
			case remove:
				delete(stored, sk)
			default:
				stored[sk] = v
			}
		case n < 55: // Fetch
			sk := pick()
			log = append(log, fmt.Sprintf("Fetch(%q, %d, %d)", sk.k, sk.start, sk.end))
			got, err := ss.Fetch([]byte(sk.k), sk.start, sk.end)
			if err != nil {
				fail("Fetch: %v", err)
			}
			want, ok := stored[sk]
			ok = ok && sk.end >= minLive()
			if (got != nil) != ok || string(got) != want && ok {
				fail("Fetch = %q, want %q (%v)", got, want, ok)
			}
		case n < 72: // FindSessions
			k, earliestEnd, latestStart := r.key(2), randTime(), randTime()
			log = append(log, fmt.Sprintf("FindSessions(%q, %d, %d)", k, earliestEnd, latestStart))
			want := sessions(func(s skey) bool { return s.k == k && s.end >= earliestEnd && s.start <= latestStart })
			slices.SortFunc(want, byStart)
			expect("FindSessions", collectWindows(t, ss.FindSessions([]byte(k), earliestEnd, latestStart)), want)
			expect("BackwardFindSessions", collectWindows(t, ss.BackwardFindSessions([]byte(k), earliestEnd, latestStart)), reversed(want))
			want = sessions(func(s skey) bool { return s.k == k })
			slices.SortFunc(want, byStart)
			expect("FetchKey", collectWindows(t, ss.FetchKey([]byte(k))), want)
			expect("BackwardFetchKey", collectWindows(t, ss.BackwardFetchKey([]byte(k))), reversed(want))
		case n < 82: // FetchAll
			from, to := randTime(), randTime()
			if r.n(3) != 0 {
				from, to = min(from, to), max(from, to)
			}
			log = append(log, fmt.Sprintf("FetchAll(%d, %d)", from, to))
			want := sessions(func(s skey) bool { return s.end >= from && s.end <= to })
			expect("FetchAll", collectWindows(t, ss.FetchAll(from, to)), want)
			expect("BackwardFetchAll", collectWindows(t, ss.BackwardFetchAll(from, to)), reversed(want))
		case n < 90:
			log = append(log, "All()")
			want := sessions(func(skey) bool { return true })
			expect("All", collectWindows(t, ss.All()), want)
			expect("BackwardAll", collectWindows(t, ss.BackwardAll()), reversed(want))
			if got := dataKeys(t, s); got != len(stored) {
				fail("store holds %d sessions, want %d (live and not yet dropped)", got, len(stored))
			}
			if got := ss.StreamTime(); got != st {
				fail("StreamTime = %d, want %d", got, st)
			}
		case n < 95:
			log = append(log, "reopen")
			ss = openSessions(t, s, testSessionCfg)
			if got := ss.StreamTime(); got != st {
				fail("StreamTime after reopen = %d, want %d", got, st)
			}
		default:
			log = append(log, "Flush()")
			if err := s.Flush(); err != nil {
				fail("Flush: %v", err)
			}
		}
	}
}
