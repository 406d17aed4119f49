package integration

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamwork-go/streamwork/integration/internal/ledger"
	"github.com/streamwork-go/streamwork/kstream"
	"github.com/streamwork-go/streamwork/serde"
)

// windowVerdict is what the ledger's windowed counts show against the
// inputs. Under exactly-once each closed window and session of a group is
// emitted once, with the count of its records that were not late; which
// records were late (the tasks' stream times depend on how the processes
// interleave) is read from the late topic, where each late record is
// committed together with the window state that dropped it.
type windowVerdict struct {
	windows, sessions int // results read
	late              int // late records read (windows node)
	problems_         []string
}

func (v windowVerdict) problems() []string { return v.problems_ }

func (v windowVerdict) summary() string {
	return fmt.Sprintf("%d window results, %d session results, %d records late for their window", v.windows, v.sessions, v.late)
}

// windowID names a window or session of a group.
type windowID struct {
	group      string
	start, end int64
}

func (w windowID) String() string { return fmt.Sprintf("%s[%d,%d]", w.group, w.start, w.end) }

// judgeWindows compares the windowed outputs with exp and the late records.
func judgeWindows(exp ledgerExpected, windows, sessions, late []*kgo.Record) windowVerdict {
	v := windowVerdict{windows: len(windows), sessions: len(sessions)}
	bad := func(format string, args ...any) { v.problems_ = append(v.problems_, fmt.Sprintf(format, args...)) }

	known := make(map[string]ledgerInput, len(exp.events))
	for _, e := range exp.events {
		known[e.value] = e
	}
	lateFor := map[string]map[string]bool{ledger.WindowNode: {}, ledger.SessionNode: {}}
	for _, r := range late {
		node := ""
		for _, h := range r.Headers {
			if h.Key == kstream.HeaderErrorNode {
				node = string(h.Value)
			}
		}
		e, ok := known[string(r.Value)]
		switch {
		case !ok:
			bad("late record %q matches no input", r.Value)
		case lateFor[node] == nil:
			bad("late record %q from node %q", r.Value, node)
		case lateFor[node][e.value]:
			bad("late record %q written twice by %s", r.Value, node)
		case e.flush:
			bad("flush record %q was late", r.Value)
		default:
			lateFor[node][e.value] = true
		}
	}
	v.late = len(lateFor[ledger.WindowNode])
	if n := len(lateFor[ledger.SessionNode]); n > 0 {
		bad("%d records late for their session, want none (grace %v)", n, ledger.SessionGrace)
	}

	// Expected windows: every record not late for its window, counted in
	// the tumbling window of its timestamp; the flush records' windows stay
	// open.
	size := ledger.WindowSize.Milliseconds()
	wantWindows := map[windowID]int64{}
	byGroup := map[string][]int64{}
	for _, e := range exp.events {
		if e.flush {
			continue
		}
		if !lateFor[ledger.WindowNode][e.value] {
			start := e.ts / size * size
			wantWindows[windowID{e.group, start, start + size}]++
		}
		if !lateFor[ledger.SessionNode][e.value] {
			byGroup[e.group] = append(byGroup[e.group], e.ts)
		}
	}
	// Expected sessions: a group's records in time order, split where two
	// are more than the gap apart.
	gap := ledger.SessionGap.Milliseconds()
	wantSessions := map[windowID]int64{}
	for g, tss := range byGroup {
		slices.Sort(tss)
		start, n := tss[0], int64(1)
		for i := 1; i < len(tss); i++ {
			if tss[i]-tss[i-1] > gap {
				wantSessions[windowID{g, start, tss[i-1]}] = n
				start, n = tss[i], 0
			}
			n++
		}
		wantSessions[windowID{g, start, tss[len(tss)-1]}] = n
	}

	check := func(what string, recs []*kgo.Record, ks serde.Serde[kstream.Windowed[string]], want map[windowID]int64) {
		got := map[windowID]int64{}
		for _, r := range recs {
			w, err := ks.Deserialize(r.Topic, r.Key)
			if err != nil {
				bad("%s: undecodable key %x: %v", what, r.Key, err)
				continue
			}
			id := windowID{w.Key, w.Start, w.End}
			if r.Value == nil {
				bad("%s: tombstone for %v", what, id)
				continue
			}
			n, err := serde.Int64.Deserialize(r.Topic, r.Value)
			if err != nil {
				bad("%s: undecodable value for %v: %v", what, id, err)
				continue
			}
			if prev, dup := got[id]; dup {
				bad("%s: %v emitted twice (%d, then %d)", what, id, prev, n)
			}
			got[id] = n
		}
		for _, id := range slices.SortedFunc(maps.Keys(want), cmpWindowID) {
			if g, ok := got[id]; !ok || g != want[id] {
				bad("%s: %v = %d (emitted %v), want %d", what, id, g, ok, want[id])
			}
		}
		for _, id := range slices.SortedFunc(maps.Keys(got), cmpWindowID) {
			if _, ok := want[id]; !ok {
				bad("%s: unexpected %v = %d", what, id, got[id])
			}
		}
	}
	check("windows", windows, kstream.TimeWindowedSerde(serde.String, ledger.WindowSize), wantWindows)
	check("sessions", sessions, kstream.SessionWindowedSerde(serde.String), wantSessions)
	return v
}

func cmpWindowID(a, b windowID) int {
	if c := strings.Compare(a.group, b.group); c != 0 {
		return c
	}
	if a.start != b.start {
		return int(a.start - b.start)
	}
	return int(a.end - b.end)
}

// TestJudgeWindowsFindsEveryFault feeds the windowed judge correct outputs
// and outputs with one fault of each kind. It needs no broker.
func TestJudgeWindowsFindsEveryFault(t *testing.T) {
	p := ledgerPlan{partitions: 2, records: 6000, users: 7, groups: 3, seed: 9}
	_, exp := ledgerInputs(p, "in")
	wks := kstream.TimeWindowedSerde(serde.String, ledger.WindowSize)
	sks := kstream.SessionWindowedSerde(serde.String)
	rec := func(topic string, ks serde.Serde[kstream.Windowed[string]], id windowID, n int64) *kgo.Record {
		k, _ := ks.Serialize(topic, kstream.Windowed[string]{Key: id.group, Start: id.start, End: id.end})
		v, _ := serde.Int64.Serialize(topic, n)
		return &kgo.Record{Topic: topic, Key: k, Value: v}
	}
	lateRec := func(value, node string) *kgo.Record {
		return &kgo.Record{Topic: "late", Value: []byte(value), Headers: []kgo.RecordHeader{{Key: kstream.HeaderErrorNode, Value: []byte(node)}}}
	}
	// The correct outputs, computed independently: one late record (the
	// first event) for its window.
	lateValue := exp.events[0].value
	var windows, sessions []*kgo.Record
	wc := map[windowID]int64{}
	sess := map[string][]int64{}
	for _, e := range exp.events {
		if e.flush {
			continue
		}
		if e.value != lateValue {
			s := e.ts / 5000 * 5000
			wc[windowID{e.group, s, s + 5000}]++
		}
		if ledger.Base.UnixMilli()%5000 != 0 {
			t.Fatalf("ledger.Base %v is not on a window boundary", ledger.Base)
		}
		sess[e.group] = append(sess[e.group], e.ts)
	}
	for id, n := range wc {
		windows = append(windows, rec("w", wks, id, n))
	}
	nSessions := 0
	for g, tss := range sess {
		// Event time pauses 10s after every 2000 events: one session per
		// group per 2000 events.
		for b := 0; b < p.records/2000; b++ {
			var n int64
			var first, last int64
			for _, ts := range tss {
				if ts >= ledger.Timestamp(b*2000).UnixMilli() && ts <= ledger.Timestamp(b*2000+1999).UnixMilli() {
					if n == 0 {
						first = ts
					}
					last, n = ts, n+1
				}
			}
			if n > 0 {
				sessions = append(sessions, rec("s", sks, windowID{g, first, last}, n))
				nSessions++
			}
		}
	}
	late := []*kgo.Record{lateRec(lateValue, ledger.WindowNode)}
	if nSessions != 3*3 {
		t.Fatalf("test data has %d sessions, want 9", nSessions)
	}

	if probs := judgeWindows(exp, windows, sessions, late).problems(); len(probs) > 0 {
		t.Fatalf("correct outputs judged wrong: %v", firstN(probs, 5))
	}
	faults := map[string]struct {
		windows, sessions, late []*kgo.Record
		want                    string
	}{
		"window emitted twice": {append(slices.Clone(windows), windows[0]), sessions, late, "emitted twice"},
		"window missing":       {windows[1:], sessions, late, "(emitted false)"},
		"window count off":     {append(slices.Clone(windows[1:]), rec("w", wks, mustID(t, wks, windows[0]), 999)), sessions, late, "want"},
		"late not counted out": {windows, sessions, nil, "want"},
		"late twice":           {windows, sessions, append(slices.Clone(late), late[0]), "written twice"},
		"session split":        {windows, append(slices.Clone(sessions[1:]), rec("s", sks, windowID{"g000", 1, 2}, 1)), late, "unexpected"},
		"session late":         {windows, sessions, append(slices.Clone(late), lateRec(exp.events[1].value, ledger.SessionNode)), "late for their session"},
		"tombstone":            {append(slices.Clone(windows), &kgo.Record{Topic: "w", Key: windows[0].Key}), sessions, late, "tombstone"},
	}
	for name, f := range faults {
		probs := judgeWindows(exp, f.windows, f.sessions, f.late).problems()
		found := false
		for _, p := range probs {
			found = found || strings.Contains(p, f.want)
		}
		if !found {
			t.Errorf("%s: judge found %v, want a problem containing %q", name, firstN(probs, 3), f.want)
		}
	}
}

func mustID(t *testing.T, ks serde.Serde[kstream.Windowed[string]], r *kgo.Record) windowID {
	t.Helper()
	w, err := ks.Deserialize(r.Topic, r.Key)
	if err != nil {
		t.Fatal(err)
	}
	return windowID{w.Key, w.Start, w.End}
}

// judgeJoins compares the ledger's join outputs with what the inputs give:
// every pair of a user's even and odd events at most ledger.JoinWindow
// apart, once; every grouped event once, ranked, and each group's ranks
// exactly 1..n.
func judgeJoins(exp ledgerExpected, pairs, ranked []*kgo.Record) []string {
	var probs []string
	bad := func(format string, args ...any) { probs = append(probs, fmt.Sprintf(format, args...)) }
	byKey := map[string][]ledgerInput{}
	for _, e := range exp.events {
		k := exp.keyOf[e.value]
		byKey[k] = append(byKey[k], e)
	}
	want := map[string]int{}
	win := ledger.JoinWindow.Milliseconds()
	for k, evs := range byKey {
		for _, a := range evs {
			ia, _, _ := ledger.ParseValue(a.value)
			if ia%2 != 0 {
				continue
			}
			for _, b := range evs {
				ib, _, _ := ledger.ParseValue(b.value)
				if ib%2 == 1 && max(a.ts-b.ts, b.ts-a.ts) <= win {
					want[k+":"+a.value+"+"+b.value]++
				}
			}
		}
	}
	got := map[string]int{}
	for _, r := range pairs {
		got[string(r.Key)+":"+string(r.Value)]++
	}
	for p, n := range got {
		if want[p] != n {
			bad("pairs: %s emitted %d times, want %d", p, n, want[p])
		}
	}
	for p, n := range want {
		if got[p] == 0 {
			bad("pairs: %s missing (want %d)", p, n)
		}
	}
	ranks := map[string][]int64{}
	seen := map[string]bool{}
	for _, r := range ranked {
		v, rank, ok := strings.Cut(string(r.Value), "#")
		n, err := strconv.ParseInt(rank, 10, 64)
		if !ok || err != nil {
			bad("ranked: malformed %q", r.Value)
			continue
		}
		if seen[v] {
			bad("ranked: %s twice", v)
		}
		seen[v] = true
		ranks[string(r.Key)] = append(ranks[string(r.Key)], n)
	}
	if len(seen) != len(exp.events) {
		bad("ranked: %d events, want %d", len(seen), len(exp.events))
	}
	for g, n := range exp.counts {
		rs := ranks[g]
		slices.Sort(rs)
		if int64(len(rs)) != n {
			bad("ranked: group %s has %d ranks, want %d", g, len(rs), n)
			continue
		}
		for i, r := range rs {
			if r != int64(i+1) {
				bad("ranked: group %s ranks %v, want 1..%d", g, firstN(rs, 10), n)
				break
			}
		}
	}
	return probs
}

// TestJudgeJoinsFindsFaults feeds the join judge correct outputs, then
// outputs with a pair missing, a pair twice and a rank repeated.
func TestJudgeJoinsFindsFaults(t *testing.T) {
	p := ledgerPlan{partitions: 2, records: 3000, users: 5, groups: 3, seed: 5}
	_, exp := ledgerInputs(p, "in")
	var pairs, ranked []*kgo.Record
	rank := map[string]int64{}
	win := ledger.JoinWindow.Milliseconds()
	for _, a := range exp.events {
		ia, _, _ := ledger.ParseValue(a.value)
		g := a.group
		rank[g]++
		ranked = append(ranked, &kgo.Record{Key: []byte(g), Value: []byte(a.value + "#" + strconv.FormatInt(rank[g], 10))})
		if ia%2 != 0 {
			continue
		}
		for _, b := range exp.events {
			ib, _, _ := ledger.ParseValue(b.value)
			if ib%2 == 1 && exp.keyOf[a.value] == exp.keyOf[b.value] && max(a.ts-b.ts, b.ts-a.ts) <= win {
				pairs = append(pairs, &kgo.Record{Key: []byte(exp.keyOf[a.value]), Value: []byte(a.value + "+" + b.value)})
			}
		}
	}
	if len(pairs) == 0 {
		t.Fatal("the test data has no pairs")
	}
	if probs := judgeJoins(exp, pairs, ranked); len(probs) > 0 {
		t.Fatalf("correct outputs judged wrong: %v", firstN(probs, 5))
	}
	dupRank := slices.Clone(ranked)
	for i, r := range ranked {
		if v, rank, _ := strings.Cut(string(r.Value), "#"); rank != "1" {
			dupRank[i] = &kgo.Record{Key: r.Key, Value: []byte(v + "#1")}
			break
		}
	}
	for name, f := range map[string]struct {
		pairs, ranked []*kgo.Record
		want          string
	}{
		"pair missing":  {pairs[1:], ranked, "missing"},
		"pair twice":    {append(slices.Clone(pairs), pairs[0]), ranked, "emitted 2 times"},
		"rank repeated": {pairs, dupRank, "want 1.."},
		"event missing": {pairs, ranked[1:], "events, want"},
	} {
		probs := judgeJoins(exp, f.pairs, f.ranked)
		found := false
		for _, p := range probs {
			found = found || strings.Contains(p, f.want)
		}
		if !found {
			t.Errorf("%s: judge found %v, want a problem containing %q", name, firstN(probs, 3), f.want)
		}
	}
}
