package main

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// The example end to end on an in-process broker: its whole output, against
// what a model of the windows computes from the generated transactions, for
// the default seed and another.
func TestFraudDetectionOnEmbeddedBroker(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, seed := range []uint64{DefaultSeed, 1} {
		t.Run(fmt.Sprint("seed-", seed), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			var out bytes.Buffer
			if err := run(ctx, c.ListenAddrs(), seed, fmt.Sprint("test-", seed), t.TempDir(), slog.New(slog.DiscardHandler), &out); err != nil {
				t.Fatal(err)
			}
			m := modelRun(t, Generate(seed).Txns)
			if got, want := out.String(), m.output(); got != want {
				t.Fatalf("output:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

// The default seed, the run the README shows, shows every rule, a
// transaction late for the spend windows only, and two late for all.
func TestDefaultSeedShowsEverything(t *testing.T) {
	m := modelRun(t, Generate(DefaultSeed).Txns)
	for _, rule := range []string{RuleHighSpend, RuleImpossible, RuleManyMerchants} {
		if !slices.ContainsFunc(m.alerts, func(a modelAlert) bool { return a.rule == rule }) {
			t.Errorf("no %s alert", rule)
		}
	}
	if len(m.late) != 3 || m.refused != 7 {
		t.Errorf("%d late for the spend windows, %d refused in all; want 3 and 7 (two late for every analyzer, one for the spend windows only)",
			len(m.late), m.refused)
	}
}

// Every seed's input meets the conditions under which the model holds (see
// modelRun) and raises alerts of each rule.
func TestGeneratedInputs(t *testing.T) {
	for seed := uint64(1); seed <= 200; seed++ {
		g := Generate(seed)
		if !slices.Equal(g.Txns, Generate(seed).Txns) {
			t.Fatalf("seed %d: two generations differ", seed)
		}
		m := modelRun(t, g.Txns)
		rules := map[string]bool{}
		for _, a := range m.alerts {
			rules[a.rule] = true
		}
		if !rules[RuleHighSpend] || !rules[RuleImpossible] || !rules[RuleManyMerchants] || len(m.late) < 2 {
			t.Errorf("seed %d: rules %v, %d late; want all three rules and at least the two late transactions", seed, rules, len(m.late))
		}
	}
}

func TestHaversine(t *testing.T) {
	for _, tc := range []struct {
		name                   string
		lat1, lon1, lat2, lon2 float64
		km                     float64
	}{
		{"paris-new-york", 48.8566, 2.3522, 40.7128, -74.0060, 5837},
		{"london-paris", 51.5074, -0.1278, 48.8566, 2.3522, 344},
		{"same place", 45.4642, 9.1900, 45.4642, 9.1900, 0},
		{"antipodes", 0, 0, 0, 180, 20015},
	} {
		if got := haversineKm(tc.lat1, tc.lon1, tc.lat2, tc.lon2); math.Abs(got-tc.km) > 2 {
			t.Errorf("%s: %.1f km, want about %.0f", tc.name, got, tc.km)
		}
	}
}

// modelAlert is an alert as the model finds it.
type modelAlert struct {
	start, end time.Time
	card, rule string
	detail     string
	endOpen    bool // [start, end)
}

type modelResult struct {
	txns       []Txn
	alerts     []modelAlert
	late       []string // lines of the late-records topic, in write order
	refused    int      // late records, summed over the analyzers
	outOfOrder int
}

// The model's copy of the rules (not the example's constants, so that a
// change there shows here).
const (
	mMinute      = time.Minute
	mSpendGrace  = 10 * time.Second
	mLimit       = 100_000
	mDiff        = 5 * time.Minute
	mTravelGrace = 30 * time.Second
	mSpeed       = 900.0
	mMinKm       = 100.0
	mGap         = 2 * time.Minute
	mSessGrace   = 30 * time.Second
	mMerchants   = 4
)

// modelRun computes, from the transactions in write order, what the
// example must print. One task sees them all in that order; its stream
// time after a record is the largest ts so far. It checks the conditions
// the model relies on:
//
//   - no card has two transactions at the same ts;
//   - the sliding and session analyzers either take a transaction whole or
//     refuse it whole: it is within their grace of stream time when
//     written, or so far behind that it is past every window it would be
//     in, and for sessions more than the gap away from its card's other
//     transactions;
//   - a card's transactions less than the gap apart are written in order,
//     each within the session grace of the previous one's time, so the
//     sessions are the model's (transactions at most the gap apart)
//     whenever stream time closes them (end + gap + grace);
//   - sessions end well before the final stream time, so all are emitted.
func modelRun(t *testing.T, txns []Txn) modelResult {
	t.Helper()
	r := modelResult{txns: txns}
	type win struct {
		card  string
		start time.Time
	}
	spend := map[win]struct {
		cents int64
		n     int
	}{}
	var st, finalSt time.Time
	for _, x := range txns {
		finalSt = maxTime(finalSt, x.TS)
	}
	accepted := map[string][]Txn{} // by card, for sliding and session windows
	byCard := map[string][]Txn{}
	for _, x := range txns {
		byCard[x.Card] = append(byCard[x.Card], x)
	}
	written := map[string][]Txn{} // by card, written so far
	for _, x := range txns {
		if x.TS.Before(st) {
			r.outOfOrder++
		}
		st = maxTime(st, x.TS)

		// Tumbling minutes: a window is closed once its end is at or before
		// stream time minus grace.
		start := time.UnixMilli(x.TS.UnixMilli() / mMinute.Milliseconds() * mMinute.Milliseconds()).UTC()
		end := start.Add(mMinute)
		if !end.After(st.Add(-mSpendGrace)) {
			r.refused++
			r.late = append(r.late, fmt.Sprintf("%s %s at %s: window closed [%s, %s) at stream time %s",
				x.Card, dollars(x.AmountCents), clock(x.TS), clock(start), clock(end), clock(st)))
		} else {
			w := spend[win{x.Card, start}]
			w.cents += x.AmountCents
			w.n++
			spend[win{x.Card, start}] = w
		}

		// Sliding and session windows: whole or not at all.
		behind := st.Sub(x.TS)
		var near bool // another transaction of the card within the gap
		for _, y := range byCard[x.Card] {
			d := y.TS.Sub(x.TS).Abs()
			if y != x && d == 0 {
				t.Fatalf("%s has two transactions at %s", x.Card, x.TS)
			}
			near = near || (y != x && d <= mGap)
		}
		switch {
		case behind < mTravelGrace && behind < mSessGrace:
			accepted[x.Card] = append(accepted[x.Card], x)
		case behind > mDiff+mTravelGrace && behind > mGap+mSessGrace && !near:
			r.refused += 2
		default:
			t.Fatalf("%s at %s, written %v behind stream time: neither within grace nor past every window", x.Card, clock(x.TS), behind)
		}
		var prev *Txn // the card's latest transaction written so far, before x
		for i, y := range written[x.Card] {
			if y.TS.After(x.TS) && y.TS.Sub(x.TS) <= mGap {
				t.Fatalf("%s at %s written after its transaction at %s: sessions would depend on the close rule",
					x.Card, clock(x.TS), clock(y.TS))
			}
			if y.TS.Before(x.TS) && (prev == nil || y.TS.After(prev.TS)) {
				prev = &written[x.Card][i]
			}
		}
		if prev != nil && x.TS.Sub(prev.TS) <= mGap && prev.TS.Before(st.Add(-mSessGrace)) {
			t.Fatalf("%s at %s, written at stream time %s, %v after its transaction at %s: sessions would depend on the close rule",
				x.Card, clock(x.TS), clock(st), x.TS.Sub(prev.TS), clock(prev.TS))
		}
		written[x.Card] = append(written[x.Card], x)
	}

	// Final results: the windows closed at the final stream time.
	for w, s := range spend {
		if !w.start.Add(mMinute).After(finalSt.Add(-mSpendGrace)) && s.cents > mLimit {
			r.alerts = append(r.alerts, modelAlert{start: w.start, end: w.start.Add(mMinute), card: w.card, rule: "high-spend",
				detail: fmt.Sprintf("%s in %d transactions (limit $1,000.00)", dollars(s.cents), s.n), endOpen: true})
		}
	}
	for card, xs := range accepted {
		slices.SortFunc(xs, func(a, b Txn) int { return a.TS.Compare(b.TS) })
		// Each transaction's own sliding window, [ts-5m, ts], once closed.
		for i := 1; i < len(xs); i++ {
			p, q := xs[i-1], xs[i]
			if q.TS.After(finalSt.Add(-mTravelGrace)) || q.TS.Sub(p.TS) > mDiff {
				continue
			}
			km := haversineKm(p.Lat, p.Lon, q.Lat, q.Lon)
			kmh := km / q.TS.Sub(p.TS).Hours()
			if km >= mMinKm && kmh > mSpeed {
				r.alerts = append(r.alerts, modelAlert{start: q.TS.Add(-mDiff), end: q.TS, card: card, rule: "impossible-travel",
					detail: fmt.Sprintf("%.0f km in %v (%.0f km/h): %s at %s, then %s at %s", km, q.TS.Sub(p.TS), kmh,
						p.Merchant, clock(p.TS), q.Merchant, clock(q.TS))})
			}
		}
		// Sessions: runs of transactions at most the gap apart.
		for i := 0; i < len(xs); {
			j := i + 1
			for j < len(xs) && xs[j].TS.Sub(xs[j-1].TS) <= mGap {
				j++
			}
			s := xs[i:j]
			first, last := s[0].TS, s[len(s)-1].TS
			i = j
			if !last.Before(finalSt.Add(-mSessGrace - mGap)) {
				if last.Before(finalSt.Add(-mSessGrace)) {
					t.Fatalf("%s's session ending %s: closed at the end by one rule and not the other", card, clock(last))
				}
				continue
			}
			merchants := map[string]bool{}
			for _, x := range s {
				merchants[x.Merchant] = true
			}
			if len(merchants) >= mMerchants {
				names := make([]string, 0, len(merchants))
				for m := range merchants {
					names = append(names, m)
				}
				slices.Sort(names)
				r.alerts = append(r.alerts, modelAlert{start: first, end: last, card: card, rule: "many-merchants",
					detail: fmt.Sprintf("%d transactions at %d merchants in %v: %s", len(s), len(names), last.Sub(first),
						strings.Join(names, ", "))})
			}
		}
	}
	return r
}

// output is what the example prints for r.
func (r modelResult) output() string {
	var b strings.Builder
	first, last := r.txns[0].TS, r.txns[0].TS
	cards := map[string]bool{}
	for _, x := range r.txns {
		first, last = minTime(first, x.TS), maxTime(last, x.TS)
		cards[x.Card] = true
	}
	fmt.Fprintf(&b, "wrote %d transactions of %d cards, event time %s to %s, %d of them out of order\n",
		len(r.txns), len(cards), clock(first), clock(last), r.outOfOrder)
	alerts := slices.Clone(r.alerts)
	slices.SortFunc(alerts, func(a, b modelAlert) int {
		return cmp.Or(a.start.Compare(b.start), a.end.Compare(b.end), cmp.Compare(a.card, b.card), cmp.Compare(a.rule, b.rule))
	})
	fmt.Fprintf(&b, "%d alerts:\n", len(alerts))
	for _, a := range alerts {
		closing := "]"
		if a.endOpen {
			closing = ")"
		}
		fmt.Fprintf(&b, "  [%s, %s%s %s %-17s %s\n", clock(a.start), clock(a.end), closing, a.card, a.rule, a.detail)
	}
	fmt.Fprintf(&b, "%d late transactions (the spend windows' side output):\n", len(r.late))
	for _, l := range r.late {
		fmt.Fprintf(&b, "  %s\n", l)
	}
	fmt.Fprintf(&b, "processed %d transactions; the windows refused %d late records (each analyzer counts its own)\n",
		len(r.txns), r.refused)
	return b.String()
}
