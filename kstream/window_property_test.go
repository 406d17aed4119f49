package kstream_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/streamwork-go/streamwork/kstream"
	"github.com/streamwork-go/streamwork/serde"
)

// Property tests: random out-of-order input through every window kind,
// compared with a reference model that computes the windows from the
// records directly.

type propRec struct {
	key string
	v   int64
	ts  int64
}

func randRecs(r *rand.Rand, n int, span int64) []propRec {
	recs := make([]propRec, n)
	base := int64(0)
	for i := range recs {
		base += r.Int64N(span/int64(n) + 1)
		ts := max(0, base-r.Int64N(span/4+1)) // out of order by up to span/4
		recs[i] = propRec{key: string(rune('a' + r.IntN(3))), v: int64(i + 1), ts: ts}
	}
	return recs
}

// sortedAgg keeps a window's values sorted, so the aggregate does not
// depend on the order records arrive in.
func sortedAgg(w kstream.WindowedStream[string, int64], opts ...kstream.NodeOpt) kstream.Table[kstream.Windowed[string], string] {
	return kstream.WindowedAggregate(w, func() string { return "" }, addSorted, serde.String, opts...)
}

func addSorted(_ string, v int64, agg string) string {
	var vs []int64
	if agg != "" {
		for _, s := range strings.Split(agg, ",") {
			n, _ := strconv.ParseInt(s, 10, 64)
			vs = append(vs, n)
		}
	}
	vs = append(vs, v)
	slices.Sort(vs)
	return joinInts(vs)
}

func joinInts(vs []int64) string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = strconv.FormatInt(v, 10)
	}
	return strings.Join(s, ",")
}

// modelWindows formats the model's windows as finalWindows does.
func modelWindows(m map[string]map[[2]int64][]int64) []string {
	var out []string
	for k, ws := range m {
		for w, vs := range ws {
			vs = slices.Clone(vs)
			slices.Sort(vs)
			out = append(out, fmt.Sprintf("%s[%d,%d]=%s", k, w[0], w[1], joinInts(vs)))
		}
	}
	return out
}

func sortedStrings(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

func TestTimeWindowsProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for iter := range 150 {
		size := 1 + r.Int64N(50)
		advance := 1 + r.Int64N(size)
		grace := r.Int64N(30)
		recs := randRecs(r, 40, 400)
		final := iter%2 == 1
		w := kstream.Hopping(time.Duration(size)*time.Millisecond, time.Duration(advance)*time.Millisecond, time.Duration(grace)*time.Millisecond)
		d, in := windowedTopology(t, w, serde.String, func(ws kstream.WindowedStream[string, int64]) kstream.Table[kstream.Windowed[string], string] {
			if final {
				return sortedAgg(ws, kstream.EmitFinal())
			}
			return sortedAgg(ws)
		})
		model := map[string]map[[2]int64][]int64{}
		emitted := map[string]bool{}
		var wantEmits []string
		st, late := int64(-1), int64(0)
		for _, rec := range recs {
			pipe(t, in, rec.key, rec.v, rec.ts)
			st = max(st, rec.ts)
			closeTime := st - grace
			for s := max(0, rec.ts-size+advance) / advance * advance; s <= rec.ts; s += advance {
				if s+size <= closeTime {
					late++
					continue
				}
				if model[rec.key] == nil {
					model[rec.key] = map[[2]int64][]int64{}
				}
				model[rec.key][[2]int64{s, s + size}] = append(model[rec.key][[2]int64{s, s + size}], rec.v)
			}
			if final {
				for _, line := range modelWindows(model) {
					k, rest, _ := strings.Cut(line, "[")
					var s, e int64
					fmt.Sscanf(rest, "%d,%d]", &s, &e)
					id := fmt.Sprintf("%s[%d,%d]", k, s, e)
					if e <= closeTime && !emitted[id] {
						emitted[id] = true
						wantEmits = append(wantEmits, line)
					}
				}
			}
		}
		got := results(t, d, serde.String)
		desc := fmt.Sprintf("iteration %d: %v final=%v", iter, w, final)
		if final {
			var gotEmits []string
			for _, o := range got {
				gotEmits = append(gotEmits, fmt.Sprintf("%s[%d,%d]=%s", o.Key, o.Start, o.End, o.Value))
			}
			equal(t, desc+" emitted", sortedStrings(gotEmits), sortedStrings(wantEmits))
		} else {
			equal(t, desc, sortedStrings(finalWindows(got)), sortedStrings(modelWindows(model)))
		}
		equal(t, desc+" late", d.Metrics().LateRecords, late)
		d.Close()
	}
}

func TestSlidingWindowsProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for iter := range 150 {
		diff := 1 + r.Int64N(40)
		recs := randRecs(r, 30, 300)
		w := kstream.Sliding(time.Duration(diff)*time.Millisecond, time.Hour)
		final := iter%2 == 1
		d, in := windowedTopology(t, w, serde.String, func(ws kstream.WindowedStream[string, int64]) kstream.Table[kstream.Windowed[string], string] {
			if final {
				return sortedAgg(ws, kstream.EmitFinal())
			}
			return sortedAgg(ws)
		})
		for _, rec := range recs {
			pipe(t, in, rec.key, rec.v, rec.ts)
		}
		if final {
			// A record of another key far later closes every window.
			pipe(t, in, "z", 0, 10*time.Hour.Milliseconds())
		}
		// Model: every record t has the window ending at t (records before
		// the difference share [0, difference]) and, when a later record is
		// within reach, the window starting at t+1.
		model := map[string]map[[2]int64][]int64{}
		byKey := map[string][]propRec{}
		for _, rec := range recs {
			byKey[rec.key] = append(byKey[rec.key], rec)
		}
		for k, rs := range byKey {
			wins := map[[2]int64]bool{}
			for _, a := range rs {
				if a.ts < diff {
					wins[[2]int64{0, diff}] = true
				} else {
					wins[[2]int64{a.ts - diff, a.ts}] = true
				}
				for _, b := range rs {
					if b.ts > a.ts && b.ts <= a.ts+1+diff {
						wins[[2]int64{a.ts + 1, a.ts + 1 + diff}] = true
					}
				}
			}
			model[k] = map[[2]int64][]int64{}
			for win := range wins {
				var vs []int64
				for _, b := range rs {
					if b.ts >= win[0] && b.ts <= win[1] {
						vs = append(vs, b.v)
					}
				}
				model[k][win] = vs
			}
		}
		got := results(t, d, serde.String)
		desc := fmt.Sprintf("iteration %d: %v final=%v records %v", iter, w, final, recs)
		equal(t, desc, sortedStrings(finalWindows(got)), sortedStrings(modelWindows(model)))
		if final {
			equal(t, desc+" one result per window", len(got), len(finalWindows(got)))
		}
		d.Close()
	}
}

func TestSessionWindowsProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for iter := range 150 {
		gap := 1 + r.Int64N(40)
		recs := randRecs(r, 30, 600)
		w := kstream.Session(time.Duration(gap)*time.Millisecond, time.Hour)
		final := iter%2 == 1
		var opts []kstream.NodeOpt
		if final {
			opts = append(opts, kstream.EmitFinal())
		}
		d, in := windowedTopology(t, w, serde.String, func(ws kstream.WindowedStream[string, int64]) kstream.Table[kstream.Windowed[string], string] {
			return kstream.SessionAggregate(ws, func() string { return "" }, addSorted, func(_ string, a, b string) string {
				switch {
				case a == "":
					return b
				case b == "":
					return a
				}
				var vs []int64
				for _, s := range strings.Split(a+","+b, ",") {
					n, _ := strconv.ParseInt(s, 10, 64)
					vs = append(vs, n)
				}
				slices.Sort(vs)
				return joinInts(vs)
			}, serde.String, opts...)
		})
		for _, rec := range recs {
			pipe(t, in, rec.key, rec.v, rec.ts)
		}
		if final {
			pipe(t, in, "z", 0, 10*time.Hour.Milliseconds())
		}
		// Model: a key's records sorted by time, split where consecutive
		// ones are more than gap apart.
		model := map[string]map[[2]int64][]int64{}
		byKey := map[string][]propRec{}
		for _, rec := range recs {
			byKey[rec.key] = append(byKey[rec.key], rec)
		}
		for k, rs := range byKey {
			slices.SortStableFunc(rs, func(a, b propRec) int { return int(a.ts - b.ts) })
			model[k] = map[[2]int64][]int64{}
			start, end, vs := rs[0].ts, rs[0].ts, []int64{rs[0].v}
			for _, rec := range rs[1:] {
				if rec.ts-end > gap {
					model[k][[2]int64{start, end}] = vs
					start, vs = rec.ts, nil
				}
				end = rec.ts
				vs = append(vs, rec.v)
			}
			model[k][[2]int64{start, end}] = vs
		}
		got := results(t, d, serde.String)
		desc := fmt.Sprintf("iteration %d: %v final=%v", iter, w, final)
		equal(t, desc, sortedStrings(finalWindows(got)), sortedStrings(modelWindows(model)))
		if final {
			equal(t, desc+" one result per session", len(got), len(finalWindows(got)))
		}
		d.Close()
	}
}

func TestCountWindowsProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for iter := range 100 {
		size := 1 + r.IntN(6)
		advance := 1 + r.IntN(size)
		recs := randRecs(r, 40, 400)
		final := iter%2 == 1
		w := kstream.HoppingCount(size, advance)
		d, in := windowedTopology(t, w, serde.String, func(ws kstream.WindowedStream[string, int64]) kstream.Table[kstream.Windowed[string], string] {
			if final {
				return sortedAgg(ws, kstream.EmitFinal())
			}
			return sortedAgg(ws)
		})
		model := map[string]map[[2]int64][]int64{}
		seen := map[string]int64{}
		for _, rec := range recs {
			pipe(t, in, rec.key, rec.v, rec.ts)
			i := seen[rec.key]
			seen[rec.key]++
			if model[rec.key] == nil {
				model[rec.key] = map[[2]int64][]int64{}
			}
			for s := int64(0); s <= i; s += int64(advance) {
				if i < s+int64(size) {
					model[rec.key][[2]int64{s, s + int64(size)}] = append(model[rec.key][[2]int64{s, s + int64(size)}], rec.v)
				}
			}
		}
		if final {
			for _, ws := range model {
				for win, vs := range ws {
					if int64(len(vs)) < win[1]-win[0] {
						delete(ws, win)
					}
				}
			}
		}
		got := results(t, d, serde.String)
		desc := fmt.Sprintf("iteration %d: %v final=%v", iter, w, final)
		equal(t, desc, sortedStrings(finalWindows(got)), sortedStrings(modelWindows(model)))
		if final {
			equal(t, desc+" one result per window", len(got), len(finalWindows(got)))
		}
		d.Close()
	}
}
