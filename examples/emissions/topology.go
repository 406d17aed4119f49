package main

import (
	"errors"
	"math"
	"time"

	"github.com/streamwork-go/streamwork/kstream"
	"github.com/streamwork-go/streamwork/serde"
)

// The estimate's constants and the joins' windows.
const (
	// CO2MgPerMl: burning a millilitre of petrol gives about 2.31 g of CO2.
	CO2MgPerMl = 2310
	// WarmCelsius: an engine at this temperature or above runs at its
	// nominal emissions; a colder one runs rich, up to ColdPenalty more
	// at 0 °C, linearly in between (and more below 0 °C).
	WarmCelsius = 90.0
	ColdPenalty = 0.5
	// DefaultCelsius is the temperature assumed for an event of a vehicle
	// with no reading yet: a cold engine.
	DefaultCelsius = 10.0
)

// The windows of the stream-stream join and of the per-minute
// aggregation.
var (
	ReadingWindows = kstream.JoinTimeDifference(30*time.Second, 10*time.Second)
	MinuteWindows  = kstream.Tumbling(time.Minute, 10*time.Second)
)

// Emission is an event's estimated CO2 emission rate, corrected by the
// engine temperature.
type Emission struct {
	Vehicle        string    `json:"vehicle"`
	Kind           string    `json:"kind"`
	TS             time.Time `json:"ts"` // the event's
	FuelRateMlPerS float64   `json:"fuel_rate_ml_per_s"`
	Celsius        float64   `json:"celsius"`
	// ReadingTS is the time of the reading used; zero when there was none
	// and Celsius is DefaultCelsius.
	ReadingTS time.Time `json:"reading_ts,omitzero"`
	CO2MgPerS int64     `json:"co2_mg_per_s"`
}

// Minute is the aggregate of the window join's emissions of one vehicle in
// one minute: how many (event, reading) pairs, and the sums of their CO2
// rates and temperatures (in tenths of a degree), integers so that the sums
// do not depend on the order the pairs arrive in.
type Minute struct {
	Pairs        int   `json:"pairs"`
	SumCO2MgPerS int64 `json:"sum_co2_mg_per_s"`
	SumDeciC     int64 `json:"sum_deci_celsius"`
}

// MinuteEmission is a closed minute of a vehicle, the value of the window
// join's output topic (its key is Vehicle). The window is [start, end).
type MinuteEmission struct {
	Vehicle     string    `json:"vehicle"`
	WindowStart time.Time `json:"window_start"`
	WindowEnd   time.Time `json:"window_end"`
	Minute
}

// CO2MgPerS estimates the CO2 emission rate, in mg/s, of an engine burning
// fuelMlPerS at celsius.
func CO2MgPerS(fuelMlPerS, celsius float64) int64 {
	factor := 1.0
	if celsius < WarmCelsius {
		factor += ColdPenalty * (WarmCelsius - celsius) / WarmCelsius
	}
	return int64(math.Round(fuelMlPerS * CO2MgPerMl * factor))
}

// estimate is the joiners' common part: the event's emission at the
// reading's temperature, or at DefaultCelsius when r is nil.
func estimate(ev Event, r *Reading) Emission {
	e := Emission{Vehicle: ev.Vehicle, Kind: ev.Kind, TS: ev.TS, FuelRateMlPerS: ev.FuelRateMlPerS, Celsius: DefaultCelsius}
	if r != nil {
		e.Celsius, e.ReadingTS = r.Celsius, r.TS
	}
	e.CO2MgPerS = CO2MgPerS(ev.FuelRateMlPerS, e.Celsius)
	return e
}

// The serdes of the inputs.
var (
	evSerde = serde.JSON[Event]()
	rdSerde = serde.JSON[Reading]()
)

// TableJoinTopology is the stream-table way: the readings topic read as a
// table (each vehicle's latest reading), each event joined with it
// (LeftJoinTable: an event of a vehicle with no reading yet gets the
// default temperature), the emissions written to out.
func TableJoinTopology(events, readings, out string) (*kstream.Topology, error) {
	if events == "" || readings == "" || out == "" {
		return nil, errors.New("emissions: empty topic name")
	}
	b := kstream.NewBuilder()
	evs := kstream.From(b, events, serde.String, evSerde, kstream.Named("events"))
	temps := kstream.TableFrom(b, readings, serde.String, rdSerde, kstream.Named("temperatures"), kstream.StoreName("temperatures"))
	emissions := kstream.LeftJoinTable(evs, temps,
		func(_ string, ev Event, t *Reading) Emission { return estimate(ev, t) },
		kstream.StreamJoined[string, Event, Reading]{Key: serde.String, Left: evSerde, Right: rdSerde},
		kstream.Named("latest-temperature"))
	emissions.To(out, serde.String, serde.JSON[Emission](), kstream.Named("emissions"))
	return b.Build()
}

// WindowJoinTopology is the stream-stream way: each event joined with
// every reading of its vehicle at most 30s before or after it (Join, 10s
// of grace), one emission per pair, timestamped with the later of the two;
// then each vehicle's pairs per minute (tumbling windows, 10s of grace,
// EmitFinal), written to out when the minute closes.
func WindowJoinTopology(events, readings, out string) (*kstream.Topology, error) {
	if events == "" || readings == "" || out == "" {
		return nil, errors.New("emissions: empty topic name")
	}
	b := kstream.NewBuilder()
	evs := kstream.From(b, events, serde.String, evSerde, kstream.Named("events"))
	rds := kstream.From(b, readings, serde.String, rdSerde, kstream.Named("readings"))
	pairs := kstream.Join(evs, rds,
		func(_ string, ev Event, r Reading) Emission { return estimate(ev, &r) },
		ReadingWindows,
		kstream.StreamJoined[string, Event, Reading]{Key: serde.String, Left: evSerde, Right: rdSerde},
		kstream.Named("readings-within-30s"))
	perMinute := kstream.WindowedAggregate(
		kstream.WindowedBy(kstream.GroupByKey(pairs, serde.String, serde.JSON[Emission]()), MinuteWindows),
		func() Minute { return Minute{} },
		func(_ string, e Emission, m Minute) Minute {
			return Minute{Pairs: m.Pairs + 1, SumCO2MgPerS: m.SumCO2MgPerS + e.CO2MgPerS,
				SumDeciC: m.SumDeciC + int64(math.Round(e.Celsius*10))}
		},
		serde.JSON[Minute](),
		kstream.EmitFinal(), kstream.Named("per-minute"), kstream.StoreName("per-minute"))
	kstream.Map(perMinute.ToStream(), func(w kstream.Windowed[string], m Minute) (string, MinuteEmission) {
		return w.Key, MinuteEmission{Vehicle: w.Key, WindowStart: utc(w.Start), WindowEnd: utc(w.End), Minute: m}
	}, kstream.Named("unwindow")).
		To(out, serde.String, serde.JSON[MinuteEmission](), kstream.Named("minutes"))
	return b.Build()
}

func utc(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

// clock formats an event time as hh:mm:ss (UTC).
func clock(t time.Time) string { return t.UTC().Format("15:04:05") }

// clockTenths formats a time as hh:mm:ss.s (UTC): readings fall half a
// second after a whole second.
func clockTenths(t time.Time) string { return t.UTC().Format("15:04:05.0") }
