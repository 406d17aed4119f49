package main

import (
	"cmp"
	"math"
	"math/rand/v2"
	"slices"
	"time"
)

// Event is one vehicle event, the value of the events topic (its key is
// Vehicle): a trip starts, goes on (a tick every few seconds while the
// engine runs) and stops; each event carries the engine's fuel rate at
// that moment.
type Event struct {
	Vehicle        string    `json:"vehicle"`
	Kind           string    `json:"kind"` // "start", "tick" or "stop"
	FuelRateMlPerS float64   `json:"fuel_rate_ml_per_s"`
	TS             time.Time `json:"ts"`
}

// Reading is one engine temperature reading, the value of the readings
// topic (its key is Vehicle).
type Reading struct {
	Vehicle string    `json:"vehicle"`
	Celsius float64   `json:"celsius"`
	TS      time.Time `json:"ts"`
}

// The event kinds.
const (
	KindStart = "start"
	KindTick  = "tick"
	KindStop  = "stop"
)

// dayStart is when the generated trips start: 08:00 UTC yesterday. Brokers
// delete records by their timestamps (retention.ms), so event times are
// recent; the output shows times of day only.
var dayStart = func() time.Time {
	y := time.Now().UTC().AddDate(0, 0, -1)
	return time.Date(y.Year(), y.Month(), y.Day(), 8, 0, 0, 0, time.UTC)
}()

// Generator settings. Events fall on whole seconds and readings half a
// second after one, so that no event and reading share a timestamp and the
// order in which a task interleaves the two topics (by timestamp) never
// depends on a tie.
const (
	vehicles        = 3
	tripLength      = 150 * time.Second // a trip stops at its first tick at least this long after its start
	readingInterval = 20 * time.Second
	readingOffset   = 4500 * time.Millisecond // the first reading, after the start event
	outOfOrder      = 3                       // readings written after the vehicle's next one
	// closingAfter: each vehicle starts again this long after the last
	// trip ended, with a reading just before: the closing records, which
	// move stream time past every earlier window's end plus grace, in
	// every task (see the package doc).
	closingAfter = 2 * time.Minute
)

// Generated is the input, each topic's records in the order written:
// events in event-time order, readings in event-time order but for
// OutOfOrder of them, each written just after the next reading of its
// vehicle (20s later in event time).
type Generated struct {
	Events   []Event
	Readings []Reading
}

// Generate returns the trips of seed: three vehicles each start cold (8
// to 20 °C), run for two and a half minutes with ticks 12 to 20 seconds
// apart, warm up towards 90 °C with a reading every 20 seconds, and stop;
// then each starts again, the closing records. The same seed gives the
// same records in the same order.
func Generate(seed uint64) Generated {
	rng := rand.New(rand.NewPCG(seed, 0xc02_e1551))
	between := func(lo, hi time.Duration) time.Duration { // whole seconds in [lo, hi]
		return lo + time.Duration(rng.Int64N(int64((hi-lo)/time.Second)+1))*time.Second
	}
	rate := func(lo, hi int) float64 { return float64(lo+rng.IntN(hi-lo+1)) / 100 } // ml/s, two decimals
	tenths := func(c float64) float64 { return math.Round(c*10) / 10 }

	var g Generated
	type written struct {
		r       Reading
		writeAt time.Time
	}
	var readings []written
	ambient := make([]float64, vehicles)
	var last time.Time
	for v := range vehicles {
		id := vehicleID(v)
		ambient[v] = float64(8 + rng.IntN(13))
		t0 := dayStart.Add(between(0, 60*time.Second))
		t := t0
		g.Events = append(g.Events, Event{Vehicle: id, Kind: KindStart, FuelRateMlPerS: rate(180, 260), TS: t})
		for {
			t = t.Add(between(12*time.Second, 20*time.Second))
			if t.Sub(t0) >= tripLength {
				g.Events = append(g.Events, Event{Vehicle: id, Kind: KindStop, TS: t})
				break
			}
			g.Events = append(g.Events, Event{Vehicle: id, Kind: KindTick, FuelRateMlPerS: rate(40, 220), TS: t})
		}
		last = maxTime(last, t)
		// The engine warms from ambient towards 90 °C, with noise.
		for rt := t0.Add(readingOffset); rt.Before(t); rt = rt.Add(readingInterval) {
			warm := 1 - math.Exp(-rt.Sub(t0).Seconds()/100)
			c := ambient[v] + (90-ambient[v])*warm + float64(rng.IntN(21)-10)/10
			readings = append(readings, written{r: Reading{Vehicle: id, Celsius: tenths(c), TS: rt}, writeAt: rt})
		}
	}
	// The closing records: each vehicle, cold again, reports its
	// temperature and starts.
	for v := range vehicles {
		at := last.Add(closingAfter + time.Duration(v)*time.Second)
		readings = append(readings, written{r: Reading{Vehicle: vehicleID(v), Celsius: ambient[v], TS: at.Add(-readingOffset)},
			writeAt: at.Add(-readingOffset)})
		g.Events = append(g.Events, Event{Vehicle: vehicleID(v), Kind: KindStart, FuelRateMlPerS: rate(180, 260), TS: at})
	}

	// Out of order: a few readings (not a vehicle's first, last or
	// closing one) are written just after the vehicle's next reading.
	byTime := func(a, b written) int {
		return cmp.Or(a.writeAt.Compare(b.writeAt), a.r.TS.Compare(b.r.TS), cmp.Compare(a.r.Vehicle, b.r.Vehicle))
	}
	slices.SortStableFunc(readings, byTime)
	slices.SortStableFunc(g.Events, func(a, b Event) int {
		return cmp.Or(a.TS.Compare(b.TS), cmp.Compare(a.Vehicle, b.Vehicle))
	})
	next := func(i int) int { // the vehicle's next reading after readings[i], -1 if none
		for j := i + 1; j < len(readings); j++ {
			if readings[j].r.Vehicle == readings[i].r.Vehicle {
				return j
			}
		}
		return -1
	}
	moved, picked := map[int]bool{}, 0
	for _, i := range rng.Perm(len(readings)) {
		if picked == outOfOrder {
			break
		}
		j := next(i)
		if j < 0 || next(j) < 0 || readings[j].r.TS.Sub(readings[i].r.TS) != readingInterval ||
			moved[i] || moved[j] || i == 0 || readings[i].r.TS.Sub(dayStart) < time.Minute {
			continue
		}
		moved[i], moved[j] = true, true // j stays in place, so the two do not chain
		readings[i].writeAt = readings[j].writeAt.Add(time.Millisecond)
		picked++
	}
	slices.SortStableFunc(readings, byTime)
	for _, w := range readings {
		g.Readings = append(g.Readings, w.r)
	}
	return g
}

// vehicleID names vehicle i (from 0).
func vehicleID(i int) string { return "van-" + string(rune('1'+i)) }

// OutOfOrder counts the readings written after a reading of their vehicle
// with a later time.
func (g Generated) OutOfOrder() int {
	n := 0
	newest := map[string]time.Time{}
	for _, r := range g.Readings {
		if r.TS.Before(newest[r.Vehicle]) {
			n++
		}
		if r.TS.After(newest[r.Vehicle]) {
			newest[r.Vehicle] = r.TS
		}
	}
	return n
}

// Vehicles counts the distinct vehicles.
func (g Generated) Vehicles() int {
	seen := map[string]bool{}
	for _, e := range g.Events {
		seen[e.Vehicle] = true
	}
	return len(seen)
}
