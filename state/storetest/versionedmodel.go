package storetest

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/streamwork-go/streamwork/state"
)

// vmodel is the reference model of a versioned store: every event (value
// or tombstone) ever accepted per key and timestamp, and stream time. It
// never forgets: what the store may drop must not change any answer, and
// answers before the history retention are restricted by the rules of
// VersionedStore alone.
type vmodel struct {
	events map[string]map[int64]*string // nil: a tombstone
	st     int64
}

func (m *vmodel) horizon() int64 {
	if m.st < math.MinInt64+tRetention {
		return math.MinInt64
	}
	return m.st - tRetention
}

// times returns k's event timestamps, ascending.
func (m *vmodel) times(k string) []int64 { return slices.Sorted(maps.Keys(m.events[k])) }

// put applies a Put and returns what the store should: validTo, dropped.
func (m *vmodel) put(k string, v *string, ts int64) (int64, bool) {
	if ts < m.horizon() {
		return 0, true
	}
	m.st = max(m.st, ts)
	if m.events[k] == nil {
		m.events[k] = map[int64]*string{}
	}
	m.events[k][ts] = v
	ts2 := m.times(k)
	i := slices.Index(ts2, ts)
	if i == len(ts2)-1 {
		return math.MaxInt64, false
	}
	return ts2[i+1], false
}

// record returns k's version starting at its i-th event.
func (m *vmodel) record(k string, ts []int64, i int) (rec, bool) {
	v := m.events[k][ts[i]]
	if v == nil {
		return none, false
	}
	to := int64(math.MaxInt64)
	if i+1 < len(ts) {
		to = ts[i+1]
	}
	return rec{*v, ts[i], to}, true
}

func (m *vmodel) latest(k string) rec {
	ts := m.times(k)
	if len(ts) == 0 {
		return none
	}
	r, _ := m.record(k, ts, len(ts)-1)
	return r
}

func (m *vmodel) asOf(k string, t int64) rec {
	ts := m.times(k)
	// i: the last event at or before t.
	i := -1
	for j, x := range ts {
		if x <= t {
			i = j
		}
	}
	if i < 0 {
		return none
	}
	if i < len(ts)-1 && t < m.horizon() {
		return none // only latest versions are answered before the horizon
	}
	r, _ := m.record(k, ts, i)
	return r
}

// versions returns what Versions(k, from, to) should: the distinct records
// asOf returns for the times in [from, to].
func (m *vmodel) versions(k string, from, to int64) []rec {
	if from > to {
		return nil
	}
	ts := m.times(k)
	var out []rec
	lo := max(from, m.horizon())
	for i := range ts {
		r, ok := m.record(k, ts, i)
		if !ok || r.from > to {
			continue
		}
		latest := i == len(ts)-1
		if latest || (lo <= to && r.to > lo) {
			out = append(out, r)
		}
	}
	return out
}

// versionedModel runs random Puts (in order, late, dropped, tombstones),
// Deletes, Gets, as-of queries around the versions' boundaries and the
// history retention, Versions in both directions, flushes and (with
// reopen) reopens on a versioned store and on vmodel, and fails at the
// first difference.
func versionedModel(t *testing.T, s state.Store, seed uint64, reopen bool) {
	vs := openVersioned(t, s, testVersionedCfg)
	r := newRand(seed)
	m := &vmodel{events: map[string]map[int64]*string{}, st: math.MinInt64}
	var log []string
	fail := func(format string, args ...any) {
		t.Helper()
		tail := log[max(0, len(log)-20):]
		t.Fatalf("seed %d, op %d: %s\nlast operations:\n  %s", seed, len(log)-1, fmt.Sprintf(format, args...), strings.Join(tail, "\n  "))
	}
	// putTime is around the accepted range, now and then ahead of it.
	putTime := func() int64 {
		switch n := r.n(40); {
		case m.st == math.MinInt64:
			return int64(r.n(100))
		case n == 0:
			return math.MinInt64
		case n == 1:
			return m.st + int64(r.n(3*tRetention)) // jump ahead
		case n < 8:
			return m.st + int64(r.n(tInterval/2))
		default:
			return m.st - int64(r.n(tRetention+tRetention/5))
		}
	}
	// queryTime favors the boundaries: a key's event times and the
	// horizon, give or take one.
	queryTime := func(k string) int64 {
		ts := m.times(k)
		switch n := r.n(10); {
		case n == 0:
			return []int64{math.MinInt64, math.MaxInt64}[r.n(2)]
		case n < 3:
			return m.horizon() + int64(r.n(3)) - 1
		case n < 7 && len(ts) > 0:
			return ts[r.n(len(ts))] + int64(r.n(3)) - 1
		default:
			if m.st == math.MinInt64 {
				return int64(r.n(100))
			}
			return m.st - int64(r.n(2*tRetention)) + 5
		}
	}
	for range modelOps {
		k := r.key(1)
		switch n := r.n(100); {
		case n < 40: // Put
			ts := putTime()
			var v *string
			if r.n(5) != 0 {
				s := fmt.Sprint(r.n(1000))
				v = &s
			}
			var vb []byte
			show := "<nil>"
			if v != nil {
				vb, show = []byte(*v), *v
			}
			log = append(log, fmt.Sprintf("Put(%q, %s, %d)", k, show, ts))
			to, dropped, err := vs.Put([]byte(k), vb, ts)
			if err != nil {
				fail("Put: %v", err)
			}
			wantTo, wantDropped := m.put(k, v, ts)
			if dropped != wantDropped || (!dropped && to != wantTo) {
				fail("Put = validTo %d, dropped %v; want %d, %v", to, dropped, wantTo, wantDropped)
			}
		case n < 47: // Delete
			ts := putTime()
			log = append(log, fmt.Sprintf("Delete(%q, %d)", k, ts))
			want := none
			if ts >= m.horizon() {
				want = m.asOf(k, ts)
				want.to = 0
			}
			prev, from, dropped, err := vs.Delete([]byte(k), ts)
			if err != nil {
				fail("Delete: %v", err)
			}
			got := none
			if prev != nil {
				got = rec{string(prev), from, 0}
			}
			_, wantDropped := m.put(k, nil, ts)
			if got != want || dropped != wantDropped {
				fail("Delete = %v, dropped %v; want %v, %v", got, dropped, want, wantDropped)
			}
		case n < 55: // Get
			log = append(log, fmt.Sprintf("Get(%q)", k))
			if got, want := latest(t, vs, k), m.latest(k); got != want {
				fail("Get = %v, want %v", got, want)
			}
		case n < 80: // GetAsOf
			ts := queryTime(k)
			log = append(log, fmt.Sprintf("GetAsOf(%q, %d)", k, ts))
			if got, want := asOf(t, vs, k, ts), m.asOf(k, ts); got != want {
				fail("GetAsOf = %v, want %v", got, want)
			}
		case n < 93: // Versions
			from, to := queryTime(k), queryTime(k)
			if r.n(4) != 0 {
				from, to = min(from, to), max(from, to)
			}
			log = append(log, fmt.Sprintf("Versions(%q, %d, %d)", k, from, to))
			want := m.versions(k, from, to)
			if got := collectVersions(t, vs.Versions([]byte(k), from, to)); !slices.Equal(got, want) {
				fail("Versions = %v\nwant %v", got, want)
			}
			if got := collectVersions(t, vs.BackwardVersions([]byte(k), from, to)); !slices.Equal(got, reversed(want)) {
				fail("BackwardVersions = %v\nwant %v", got, reversed(want))
			}
		case n < 97 && reopen:
			log = append(log, "reopen")
			vs = openVersioned(t, s, testVersionedCfg)
		default:
			log = append(log, "Flush()")
			if err := s.Flush(); err != nil {
				fail("Flush: %v", err)
			}
		}
		if got := vs.StreamTime(); got != m.st {
			fail("StreamTime = %d, want %d", got, m.st)
		}
	}
}
