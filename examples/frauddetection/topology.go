package main

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/streamwork-go/streamwork/kstream"
	"github.com/streamwork-go/streamwork/serde"
)

// The rules' names, windows and thresholds.
const (
	RuleHighSpend     = "high-spend"
	RuleImpossible    = "impossible-travel"
	RuleManyMerchants = "many-merchants"

	// SpendLimitCents: a card spending more than this in one minute is
	// flagged.
	SpendLimitCents = 100_000
	// MaxSpeedKmh: two consecutive transactions of a card, at least
	// MinTravelKm apart, further apart than this speed allows are flagged.
	MaxSpeedKmh = 900
	// MinTravelKm: legs shorter than this are never flagged; the positions
	// of merchants in one city are too rough for speeds over a few
	// kilometres.
	MinTravelKm = 100
	// ManyMerchants: a session of a card at this many distinct merchants
	// or more is flagged.
	ManyMerchants = 4
)

// The windows of the three analyzers.
var (
	SpendWindows   = kstream.Tumbling(time.Minute, 10*time.Second)
	TravelWindows  = kstream.Sliding(5*time.Minute, 30*time.Second)
	SessionWindows = kstream.Session(2*time.Minute, 30*time.Second)
)

// Alert is one finding, the output's value (its key is Card). Windows of
// high-spend are [start, end); of the others, [start, end].
type Alert struct {
	Card        string    `json:"card"`
	Rule        string    `json:"rule"`
	WindowStart time.Time `json:"window_start"`
	WindowEnd   time.Time `json:"window_end"`
	Detail      string    `json:"detail"`
}

// Spend is a card's spending in one tumbling window.
type Spend struct {
	Cents int64 `json:"cents"`
	Count int   `json:"count"`
}

// Point is where and when a card was used.
type Point struct {
	// ID: the transaction's (the DAG's travel analyzer finds it by it).
	ID       string    `json:"id,omitempty"`
	TS       time.Time `json:"ts"`
	Merchant string    `json:"merchant"`
	Lat      float64   `json:"lat"`
	Lon      float64   `json:"lon"`
}

// Track is a card's transactions in one sliding window, sorted by time
// whatever order they arrived in.
type Track struct {
	Points []Point `json:"points"`
}

// Activity is a card's session: how many transactions, at which merchants
// (sorted, distinct).
type Activity struct {
	Count     int      `json:"count"`
	Merchants []string `json:"merchants"`
}

// Topology reads transactions from input, runs the three analyzers and
// writes their alerts to alerts; transactions too late for the spend
// windows go to late.
func Topology(input, alerts, late string) (*kstream.Topology, error) {
	if input == "" || alerts == "" || late == "" {
		return nil, errors.New("frauddetection: empty topic name")
	}
	b := kstream.NewBuilder()
	txns := kstream.From(b, input, serde.String, serde.JSON[Txn](), kstream.Named("transactions"),
		kstream.WithTimestamps(func(r kstream.Record[string, Txn]) (time.Time, error) {
			if r.Value.TS.IsZero() {
				return time.Time{}, fmt.Errorf("transaction of card %q has no ts", r.Key)
			}
			return r.Value.TS, nil
		}))
	byCard := kstream.GroupByKey(txns, serde.String, serde.JSON[Txn]())

	highSpend := spendAnalyzer(byCard, late)
	travel := travelAnalyzer(byCard)
	sessions := sessionAnalyzer(byCard)
	highSpend.Merge(travel, sessions).To(alerts, serde.String, serde.JSON[Alert](), kstream.Named("alerts"))
	return b.Build()
}

// spendAnalyzer sums each card's spending per minute and flags the minutes
// over SpendLimitCents. Late transactions are written to late.
func spendAnalyzer(byCard kstream.GroupedStream[string, Txn], late string) kstream.Stream[string, Alert] {
	spend := kstream.WindowedAggregate(kstream.WindowedBy(byCard, SpendWindows),
		func() Spend { return Spend{} },
		func(_ string, t Txn, s Spend) Spend { return Spend{Cents: s.Cents + t.AmountCents, Count: s.Count + 1} },
		serde.JSON[Spend](),
		kstream.EmitFinal(), kstream.LateRecordsTo(late),
		kstream.Named("spend-per-minute"), kstream.StoreName("spend-per-minute"))
	return kstream.FlatMap(spend.ToStream(), func(w kstream.Windowed[string], s Spend) []kstream.KeyValue[string, Alert] {
		if s.Cents <= SpendLimitCents {
			return nil
		}
		return []kstream.KeyValue[string, Alert]{{Key: w.Key, Value: Alert{
			Card: w.Key, Rule: RuleHighSpend, WindowStart: utc(w.Start), WindowEnd: utc(w.End),
			Detail: fmt.Sprintf("%s in %d transactions (limit %s)", dollars(s.Cents), s.Count, dollars(SpendLimitCents)),
		}}}
	}, kstream.Named("high-spend"))
}

// travelAnalyzer keeps each card's transactions of the last five minutes
// in sliding windows and flags impossible travel: a leg of MinTravelKm
// or more at over MaxSpeedKmh.
//
// Every transaction has a window that ends with it, [t-5m, t], holding the
// card's transactions of the five minutes before; its last leg, from the
// card's previous transaction to this one, is the one checked. A leg lies
// in several windows, but ends only one, so each leg is checked once.
func travelAnalyzer(byCard kstream.GroupedStream[string, Txn]) kstream.Stream[string, Alert] {
	tracks := kstream.WindowedAggregate(kstream.WindowedBy(byCard, TravelWindows),
		func() Track { return Track{} },
		func(_ string, t Txn, tr Track) Track {
			p := Point{TS: t.TS, Merchant: t.Merchant, Lat: t.Lat, Lon: t.Lon}
			i, _ := slices.BinarySearchFunc(tr.Points, p, func(a, b Point) int { return a.TS.Compare(b.TS) })
			return Track{Points: slices.Insert(slices.Clone(tr.Points), i, p)}
		},
		serde.JSON[Track](),
		kstream.EmitFinal(),
		kstream.Named("travel-5m"), kstream.StoreName("travel-5m"))
	return kstream.FlatMap(tracks.ToStream(), func(w kstream.Windowed[string], tr Track) []kstream.KeyValue[string, Alert] {
		n := len(tr.Points)
		if n < 2 || tr.Points[n-1].TS.UnixMilli() != w.End {
			return nil // no leg, or not the window that ends with its last transaction
		}
		from, to := tr.Points[n-2], tr.Points[n-1]
		km, kmh := legSpeed(from, to)
		if km < MinTravelKm || kmh <= MaxSpeedKmh {
			return nil
		}
		return []kstream.KeyValue[string, Alert]{{Key: w.Key, Value: Alert{
			Card: w.Key, Rule: RuleImpossible, WindowStart: utc(w.Start), WindowEnd: utc(w.End),
			Detail: fmt.Sprintf("%.0f km in %v (%.0f km/h): %s at %s, then %s at %s", km, to.TS.Sub(from.TS), kmh,
				from.Merchant, clock(from.TS), to.Merchant, clock(to.TS)),
		}}}
	}, kstream.Named("impossible-travel"))
}

// sessionAnalyzer follows each card's sessions of activity (transactions
// at most two minutes apart) and flags those at ManyMerchants merchants or
// more, the mark of a stolen card being tested.
func sessionAnalyzer(byCard kstream.GroupedStream[string, Txn]) kstream.Stream[string, Alert] {
	sessions := kstream.SessionAggregate(kstream.WindowedBy(byCard, SessionWindows),
		func() Activity { return Activity{} },
		func(_ string, t Txn, a Activity) Activity {
			return Activity{Count: a.Count + 1, Merchants: addMerchants(a.Merchants, t.Merchant)}
		},
		func(_ string, a, b Activity) Activity {
			return Activity{Count: a.Count + b.Count, Merchants: addMerchants(a.Merchants, b.Merchants...)}
		},
		serde.JSON[Activity](),
		kstream.EmitFinal(),
		kstream.Named("sessions"), kstream.StoreName("sessions"))
	return kstream.FlatMap(sessions.ToStream(), func(w kstream.Windowed[string], a Activity) []kstream.KeyValue[string, Alert] {
		if len(a.Merchants) < ManyMerchants {
			return nil
		}
		return []kstream.KeyValue[string, Alert]{{Key: w.Key, Value: Alert{
			Card: w.Key, Rule: RuleManyMerchants, WindowStart: utc(w.Start), WindowEnd: utc(w.End),
			Detail: fmt.Sprintf("%d transactions at %d merchants in %v: %s", a.Count, len(a.Merchants),
				time.Duration(w.End-w.Start)*time.Millisecond, strings.Join(a.Merchants, ", ")),
		}}}
	}, kstream.Named("many-merchants"))
}

// addMerchants returns the sorted, distinct union of set and more, in a new
// slice.
func addMerchants(set []string, more ...string) []string {
	out := append(slices.Clone(set), more...)
	slices.Sort(out)
	return slices.Compact(out)
}

// legSpeed returns the great-circle distance between two points and the
// speed needed to cover it in the time between them (+Inf if none).
func legSpeed(from, to Point) (km, kmh float64) {
	km = haversineKm(from.Lat, from.Lon, to.Lat, to.Lon)
	h := to.TS.Sub(from.TS).Hours()
	if h <= 0 {
		return km, math.Inf(1)
	}
	return km, km / h
}

// haversineKm is the great-circle distance in kilometres between two
// points given in degrees, on a sphere of the Earth's mean radius.
func haversineKm(lat1, lon1, lat2, lon2 float64) float64 {
	const earthKm = 6371.0088
	rad := func(deg float64) float64 { return deg * math.Pi / 180 }
	dLat, dLon := rad(lat2-lat1), rad(lon2-lon1)
	a := math.Sin(dLat/2)*math.Sin(dLat/2) + math.Cos(rad(lat1))*math.Cos(rad(lat2))*math.Sin(dLon/2)*math.Sin(dLon/2)
	return 2 * earthKm * math.Asin(math.Min(1, math.Sqrt(a)))
}

func utc(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

// clock formats an event time as hh:mm:ss (UTC).
func clock(t time.Time) string { return t.UTC().Format("15:04:05") }
