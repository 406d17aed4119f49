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
	"github.com/twmb/franz-go/pkg/kgo"
)

// The example end to end on an in-process broker: its whole output, against
// what a model of the two joins computes from the generated input, for the
// default seed and another.
func TestEmissionsOnEmbeddedBroker(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, seed := range []uint64{DefaultSeed, 1, 13} {
		t.Run(fmt.Sprint("seed-", seed), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			var out bytes.Buffer
			if err := run(ctx, c.ListenAddrs(), seed, fmt.Sprint("test-", seed), t.TempDir(), slog.New(slog.DiscardHandler), &out); err != nil {
				t.Fatal(err)
			}
			m := modelRun(t, Generate(seed))
			if got, want := out.String(), m.output(); got != want {
				t.Fatalf("output:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

// The default seed, the run the README shows, has what the package doc
// describes: an event of the stream-table join that meets an older reading
// than one already written before it (an out-of-order reading), and a pair
// of the window join that comes too late for its minute.
func TestDefaultSeedShowsEverything(t *testing.T) {
	m := modelRun(t, Generate(DefaultSeed))
	if m.stale == 0 || m.late == 0 {
		t.Errorf("default seed: %d stale table lookups, %d late pairs; want some of each", m.stale, m.late)
	}
}

// Every seed's input is what the generator promises and meets the
// conditions under which the model holds (see modelRun).
func TestGeneratedInputs(t *testing.T) {
	for seed := uint64(1); seed <= 200; seed++ {
		g := Generate(seed)
		h := Generate(seed)
		if !slices.Equal(g.Events, h.Events) || !slices.Equal(g.Readings, h.Readings) {
			t.Fatalf("seed %d: two generations differ", seed)
		}
		if g.OutOfOrder() != 3 || g.Vehicles() != 3 {
			t.Errorf("seed %d: %d readings out of order, %d vehicles; want 3 and 3", seed, g.OutOfOrder(), g.Vehicles())
		}
		m := modelRun(t, g)
		if len(m.emissions) != len(g.Events) {
			t.Errorf("seed %d: %d emissions of %d events", seed, len(m.emissions), len(g.Events))
		}
		if len(m.minutes) == 0 {
			t.Errorf("seed %d: no minute closed", seed)
		}
	}
}

func TestCO2(t *testing.T) {
	for _, tc := range []struct {
		rate, celsius float64
		want          int64
	}{
		{1, 90, 2310}, {1, 120, 2310}, {1, 0, 3465}, {2, 45, 5775}, {0, 10, 0},
	} {
		if got := CO2MgPerS(tc.rate, tc.celsius); got != tc.want {
			t.Errorf("CO2MgPerS(%v, %v) = %d, want %d", tc.rate, tc.celsius, got, tc.want)
		}
	}
}

// The model's copy of the constants (not the example's, so that a change
// there shows here).
const (
	mPartitions = 2
	mDefaultC   = 10.0
	mMgPerMl    = 2310
	mWarm       = 90.0
	mPenalty    = 0.5
	mJoinDiff   = 30 * time.Second
	mJoinGrace  = 10 * time.Second
	mMinute     = time.Minute
	mGrace      = 10 * time.Second
)

func mCO2(rate, celsius float64) int64 {
	f := 1.0
	if celsius < mWarm {
		f += mPenalty * (mWarm - celsius) / mWarm
	}
	return int64(math.Round(rate * mMgPerMl * f))
}

type mEmission struct {
	ev      Event
	celsius float64
	reading *Reading
	co2     int64
}

type mWindow struct {
	vehicle string
	start   time.Time
}

type mMinuteAgg struct {
	pairs   int
	sumCO2  int64
	sumDeci int64
}

type modelResult struct {
	g         Generated
	emissions []mEmission
	minutes   map[mWindow]mMinuteAgg
	late      int // pairs refused by the per-minute windows
	stale     int // events that met an older reading than the newest written before them
}

// modelRun computes, from the generated records in write order, what the
// example must print. Both input topics are partitioned by the producer's
// default partitioner (murmur2 of the key, as Kafka's); the task of
// partition p processes the two topics' partition p in timestamp order,
// each in the order written (all records are written before the Apps
// start, so a task never goes on without one of them while it has
// records). It checks the conditions the model relies on: no event and
// reading share a timestamp (so the interleaving has no ties), and every
// record reaches its join less than the join window behind the join's
// stream time (so the join's stores still hold all its partners and it
// drops nothing).
func modelRun(t *testing.T, g Generated) modelResult {
	t.Helper()
	m := modelResult{g: g, minutes: map[mWindow]mMinuteAgg{}}
	part := kgo.StickyKeyPartitioner(nil).ForTopic("any")
	partOf := func(vehicle string) int {
		return part.Partition(&kgo.Record{Key: []byte(vehicle)}, mPartitions)
	}
	type item struct {
		ev *Event
		rd *Reading
	}
	queues := make([][2][]item, mPartitions)
	for i := range g.Events {
		p := partOf(g.Events[i].Vehicle)
		queues[p][0] = append(queues[p][0], item{ev: &g.Events[i]})
	}
	for i := range g.Readings {
		p := partOf(g.Readings[i].Vehicle)
		queues[p][1] = append(queues[p][1], item{rd: &g.Readings[i]})
	}
	tsOf := func(it item) time.Time {
		if it.ev != nil {
			return it.ev.TS
		}
		return it.rd.TS
	}
	for p := range mPartitions {
		evs, rds := queues[p][0], queues[p][1]
		table := map[string]*Reading{}
		newestWritten := map[string]time.Time{} // the newest reading of each vehicle processed so far
		joinedEvs, joinedRds := map[string][]Event{}, map[string][]Reading{}
		var joinTime, aggTime time.Time
		aggregate := func(vehicle string, e mEmission, ts time.Time) {
			aggTime = maxTime(aggTime, ts)
			start := ts.Truncate(mMinute)
			if !start.Add(mMinute).After(aggTime.Add(-mGrace)) {
				m.late++
				return
			}
			w := m.minutes[mWindow{vehicle, start}]
			w.pairs++
			w.sumCO2 += e.co2
			w.sumDeci += int64(math.Round(e.celsius * 10))
			m.minutes[mWindow{vehicle, start}] = w
		}
		pair := func(ev Event, r Reading) {
			e := mEmission{ev: ev, celsius: r.Celsius, reading: &r, co2: mCO2(ev.FuelRateMlPerS, r.Celsius)}
			aggregate(ev.Vehicle, e, maxTime(ev.TS, r.TS))
		}
		for len(evs) > 0 || len(rds) > 0 {
			var it item
			switch {
			case len(rds) == 0 || (len(evs) > 0 && tsOf(evs[0]).Before(tsOf(rds[0]))):
				it, evs = evs[0], evs[1:]
			default:
				if len(evs) > 0 && tsOf(evs[0]).Equal(tsOf(rds[0])) {
					t.Fatalf("an event and a reading at %s: the interleaving would depend on a tie", tsOf(rds[0]))
				}
				it, rds = rds[0], rds[1:]
			}
			ts := tsOf(it)
			if behind := joinTime.Sub(ts); behind >= mJoinDiff {
				t.Fatalf("a record at %s reaches the join %v behind its stream time", clock(ts), behind)
			}
			joinTime = maxTime(joinTime, ts)
			if ev := it.ev; ev != nil {
				// Stream-table: the vehicle's row as it is now.
				e := mEmission{ev: *ev, celsius: mDefaultC}
				if r := table[ev.Vehicle]; r != nil {
					e.celsius, e.reading = r.Celsius, r
					if r.TS.Before(newestWritten[ev.Vehicle]) {
						m.stale++
					}
				}
				e.co2 = mCO2(ev.FuelRateMlPerS, e.celsius)
				m.emissions = append(m.emissions, e)
				// Stream-stream: the stored readings within the window, in
				// time order.
				rs := slices.Clone(joinedRds[ev.Vehicle])
				slices.SortFunc(rs, func(a, b Reading) int { return a.TS.Compare(b.TS) })
				for _, r := range rs {
					if r.TS.Sub(ev.TS).Abs() <= mJoinDiff {
						pair(*ev, r)
					}
				}
				joinedEvs[ev.Vehicle] = append(joinedEvs[ev.Vehicle], *ev)
			} else {
				r := it.rd
				table[r.Vehicle] = r
				newestWritten[r.Vehicle] = maxTime(newestWritten[r.Vehicle], r.TS)
				es := slices.Clone(joinedEvs[r.Vehicle])
				slices.SortFunc(es, func(a, b Event) int { return a.TS.Compare(b.TS) })
				for _, ev := range es {
					if ev.TS.Sub(r.TS).Abs() <= mJoinDiff {
						pair(ev, *r)
					}
				}
				joinedRds[r.Vehicle] = append(joinedRds[r.Vehicle], *r)
			}
		}
		// The minutes that closed: end + grace at or before the
		// aggregation's final stream time.
		for w := range m.minutes {
			if partOf(w.vehicle) == p && w.start.Add(mMinute).After(aggTime.Add(-mGrace)) {
				delete(m.minutes, w)
			}
		}
	}
	return m
}

// output is what the example prints for the model's results.
func (m modelResult) output() string {
	var b strings.Builder
	first, last := m.g.Events[0].TS, m.g.Events[0].TS
	for _, e := range m.g.Events {
		first, last = minTime(first, e.TS), maxTime(last, e.TS)
	}
	for _, r := range m.g.Readings {
		first, last = minTime(first, r.TS), maxTime(last, r.TS)
	}
	vehicles := map[string]bool{}
	for _, e := range m.g.Events {
		vehicles[e.Vehicle] = true
	}
	outOfOrder, newest := 0, map[string]time.Time{}
	for _, r := range m.g.Readings {
		if r.TS.Before(newest[r.Vehicle]) {
			outOfOrder++
		}
		newest[r.Vehicle] = maxTime(newest[r.Vehicle], r.TS)
	}
	fmt.Fprintf(&b, "wrote %d events and %d temperature readings of %d vehicles (%d partitions each), event time %s to %s, %d readings out of order\n",
		len(m.g.Events), len(m.g.Readings), len(vehicles), mPartitions, clock(first), clock(last), outOfOrder)
	fmt.Fprintf(&b, "stream-table join (each event with its vehicle's latest reading; %.1f °C before the first): %d emissions\n",
		mDefaultC, len(m.emissions))
	es := slices.Clone(m.emissions)
	slices.SortFunc(es, func(a, b mEmission) int {
		return cmp.Or(cmp.Compare(a.ev.Vehicle, b.ev.Vehicle), a.ev.TS.Compare(b.ev.TS))
	})
	for _, e := range es {
		src := "(no reading yet)"
		if e.reading != nil {
			src = "(read at " + e.reading.TS.UTC().Format("15:04:05.0") + ")"
		}
		fmt.Fprintf(&b, "  %s %s %-5s %4.2f ml/s at %5.1f °C %-20s %5d mg CO2/s\n",
			e.ev.Vehicle, clock(e.ev.TS), e.ev.Kind, e.ev.FuelRateMlPerS, e.celsius, src, e.co2)
	}
	fmt.Fprintf(&b, "windowed join (each event with its vehicle's readings within 30s), per minute: %d closed minutes\n", len(m.minutes))
	ws := make([]mWindow, 0, len(m.minutes))
	for w := range m.minutes {
		ws = append(ws, w)
	}
	slices.SortFunc(ws, func(a, b mWindow) int { return cmp.Or(cmp.Compare(a.vehicle, b.vehicle), a.start.Compare(b.start)) })
	for _, w := range ws {
		a := m.minutes[w]
		count := fmt.Sprint(a.pairs, " pairs,")
		if a.pairs == 1 {
			count = "1 pair,"
		}
		fmt.Fprintf(&b, "  %s [%s, %s) %9s mean %5.0f mg CO2/s at %4.1f °C\n", w.vehicle, clock(w.start), clock(w.start.Add(mMinute)),
			count, float64(a.sumCO2)/float64(a.pairs), float64(a.sumDeci)/10/float64(a.pairs))
	}
	n := len(m.g.Events) + len(m.g.Readings)
	fmt.Fprintf(&b, "processed %d and %d records; the per-minute windows refused %d late pairs\n", n, n, m.late)
	return b.String()
}
