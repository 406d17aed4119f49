// Command emissions is the emissions job of stream processing books: an
// estimate of each vehicle's CO2 emissions from its events, corrected by
// its engine's temperature, computed two ways from the same two inputs.
//
// The inputs, both keyed by vehicle id and co-partitioned (the same
// number of partitions, the same key partitioner), are vehicle events
// (JSON {vehicle, kind: start/tick/stop, fuel_rate_ml_per_s, ts}) and
// engine temperature readings (JSON {vehicle, celsius, ts}). An event's
// emission rate is its fuel rate times 2.31 g of CO2 per ml, plus up to
// half again for a cold engine (CO2MgPerS).
//
//   - Stream-table join (TableJoinTopology): the readings topic read as a
//     table (TableFrom: each vehicle's latest reading), each event joined
//     with its vehicle's row as the event is processed (LeftJoinTable); an
//     event before the vehicle's first reading gets DefaultCelsius. One
//     emission per event.
//   - Windowed stream-stream join (WindowJoinTopology): each event joined
//     with every reading of its vehicle at most 30s before or after it
//     (Join with JoinTimeDifference(30s, 10s grace)), one emission per
//     pair, timestamped with the later of the two; then, per vehicle and
//     minute, the pairs' count, mean CO2 rate and mean temperature
//     (WindowedAggregate over Tumbling(1m, 10s grace) windows, EmitFinal:
//     one result per minute, when it closes).
//
// A topology reads a topic once, so the two ways are two topologies, run
// by two Apps (two application ids) in this one process, each reading both
// topics.
//
// The example generates its input itself, the same for the same -seed:
// three vans on a trip of two and a half minutes, their engines warming up
// from cold, events every 12 to 20 seconds and readings every 20 seconds
// (the first 4.5 seconds after the start event, so the start events of the
// stream-table join get the default temperature), a few readings written
// after their vehicle's next one (20 seconds out of order). Event time is
// the record timestamp, which the example sets to ts (TableFrom takes no
// timestamp extractor). Within a task, records of the two topics are
// processed in timestamp order, each topic's in the order written, so the
// stream-table join sees an out-of-order reading only after the newer one:
// until the vehicle's next reading its table row holds the older value, as
// in Kafka Streams. In the window join an out-of-order reading still meets
// its events, but its pairs can be too late for a minute that closed
// meanwhile: the per-minute windows refuse them (Metrics.LateRecords).
//
// Stream time moves only with records, per task: a minute's final result
// comes out once the aggregation has seen a pair 10s past its end. So the
// input ends, two minutes after the trips, with each van starting again
// (a reading, then a start event): every task sees a pair that late, which
// closes every earlier minute (the closing minutes stay open and are not
// printed).
//
// The example runs the two Apps until both have committed all their input,
// then reads the two output topics back and prints them per vehicle, in
// time order.
//
// With no flags it starts an embedded in-process Kafka broker:
//
//	go run ./examples/emissions
//
// With -brokers (or KAFKA_BROKERS) it uses that cluster instead. Topic and
// application names end with a run id, so that runs do not see each
// other's records.
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamwork-go/streamwork/examples/service"
	"github.com/streamwork-go/streamwork/kstream"
	"github.com/streamwork-go/streamwork/serde"
)

// DefaultSeed is -seed's default, the run the README shows: chosen because
// its out-of-order readings change a stream-table result and make the
// window join's minutes refuse a pair.
const DefaultSeed = 4

// Partitions of each input topic: the same for both, as the joins need.
const Partitions = 2

func main() {
	var f service.Flags
	f.Register(flag.CommandLine, service.WithEmbeddedBroker())
	seed := flag.Uint64("seed", DefaultSeed, "seed of the generated events and readings")
	service.Main("emissions", &f, func(ctx context.Context, env service.Env) error {
		return run(ctx, env.Addrs, *seed, env.RunID, env.StateDir, env.Logger, env.Out)
	})
}

// run writes the generated events and readings, runs both topologies until
// they have committed all of them, and prints their outputs.
func run(ctx context.Context, addrs []string, seed uint64, runID, stateDir string, logger *slog.Logger, w io.Writer) error {
	events, readings := "vehicle-events-"+runID, "engine-temperatures-"+runID
	tableOut, windowOut := "emissions-by-latest-temperature-"+runID, "emissions-per-minute-"+runID
	tableApp, windowApp := "emissions-table-join-"+runID, "emissions-window-join-"+runID
	logger.Info("emissions topics", "events", events, "readings", readings, "table_join_output", tableOut,
		"window_join_output", windowOut, "application_ids", []string{tableApp, windowApp})
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	for _, tp := range []string{events, readings} {
		if _, err := adm.CreateTopic(ctx, Partitions, 1, nil, tp); err != nil {
			return fmt.Errorf("create %s: %w", tp, err)
		}
	}
	for _, tp := range []string{tableOut, windowOut} {
		if _, err := adm.CreateTopic(ctx, 1, 1, nil, tp); err != nil {
			return fmt.Errorf("create %s: %w", tp, err)
		}
	}

	// Both topics with the producer's default partitioner (Kafka's murmur2
	// of the key) and the same partition count: co-partitioned. Each
	// record's timestamp is its ts, its event time.
	gen := Generate(seed)
	var recs []*kgo.Record
	for _, e := range gen.Events {
		v, err := evSerde.Serialize(events, e)
		if err != nil {
			return err
		}
		recs = append(recs, &kgo.Record{Topic: events, Key: []byte(e.Vehicle), Value: v, Timestamp: e.TS})
	}
	for _, r := range gen.Readings {
		v, err := rdSerde.Serialize(readings, r)
		if err != nil {
			return err
		}
		recs = append(recs, &kgo.Record{Topic: readings, Key: []byte(r.Vehicle), Value: v, Timestamp: r.TS})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return fmt.Errorf("produce: %w", err)
	}

	tableTopo, err := TableJoinTopology(events, readings, tableOut)
	if err != nil {
		return err
	}
	windowTopo, err := WindowJoinTopology(events, readings, windowOut)
	if err != nil {
		return err
	}
	appCtx, stopApps := context.WithCancel(ctx)
	defer stopApps()
	type running struct {
		id   string
		app  *kstream.App
		done chan error
	}
	var apps []running
	for _, a := range []struct {
		id   string
		topo *kstream.Topology
	}{{tableApp, tableTopo}, {windowApp, windowTopo}} {
		app, err := kstream.New(a.topo,
			kstream.ApplicationID(a.id),
			kstream.Brokers(addrs...),
			kstream.Logger(logger),
			kstream.StateDir(stateDir),
			kstream.CommitInterval(200*time.Millisecond),
		)
		if err != nil {
			stopApps()
			for _, r := range apps {
				<-r.done
			}
			return err
		}
		r := running{id: a.id, app: app, done: make(chan error, 1)}
		go func() { r.done <- app.Run(appCtx) }()
		apps = append(apps, r)
	}

	var emissions []Emission
	var minutes []MinuteEmission
	ends, err := adm.ListEndOffsets(ctx, events, readings)
	if err == nil {
		err = ends.Error()
	}
	for _, r := range apps {
		if err == nil {
			err = service.WaitCommitted(ctx, adm, r.id, ends, r.done)
		}
	}
	if err == nil {
		emissions, err = readAll[Emission](ctx, addrs, adm, tableOut)
	}
	if err == nil {
		minutes, err = readAll[MinuteEmission](ctx, addrs, adm, windowOut)
	}
	stopApps()
	for _, r := range apps {
		if runErr := <-r.done; runErr != nil && err == nil {
			err = fmt.Errorf("%s: %w", r.id, runErr)
		}
	}
	if err != nil {
		return err
	}

	first, last := gen.Events[0].TS, gen.Events[0].TS
	for _, e := range gen.Events {
		first, last = minTime(first, e.TS), maxTime(last, e.TS)
	}
	for _, r := range gen.Readings {
		first, last = minTime(first, r.TS), maxTime(last, r.TS)
	}
	fmt.Fprintf(w, "wrote %d events and %d temperature readings of %d vehicles (%d partitions each), event time %s to %s, %d readings out of order\n",
		len(gen.Events), len(gen.Readings), gen.Vehicles(), Partitions, clock(first), clock(last), gen.OutOfOrder())
	fmt.Fprintf(w, "stream-table join (each event with its vehicle's latest reading; %.1f °C before the first): %d emissions\n",
		DefaultCelsius, len(emissions))
	for _, line := range EmissionLines(emissions) {
		fmt.Fprintln(w, " ", line)
	}
	fmt.Fprintf(w, "windowed join (each event with its vehicle's readings within 30s), per minute: %d closed minutes\n", len(minutes))
	for _, line := range MinuteLines(minutes) {
		fmt.Fprintln(w, " ", line)
	}
	tm, wm := apps[0].app.Metrics(), apps[1].app.Metrics()
	fmt.Fprintf(w, "processed %d and %d records; the per-minute windows refused %d late pairs\n",
		tm.RecordsProcessed, wm.RecordsProcessed, wm.LateRecords)
	return nil
}

// EmissionLines formats the stream-table join's emissions one per line,
// per vehicle in event-time order.
func EmissionLines(es []Emission) []string {
	sorted := slices.Clone(es)
	slices.SortFunc(sorted, func(a, b Emission) int {
		return cmp.Or(cmp.Compare(a.Vehicle, b.Vehicle), a.TS.Compare(b.TS), cmp.Compare(a.Kind, b.Kind))
	})
	lines := make([]string, len(sorted))
	for i, e := range sorted {
		src := "(no reading yet)"
		if !e.ReadingTS.IsZero() {
			src = "(read at " + clockTenths(e.ReadingTS) + ")"
		}
		lines[i] = fmt.Sprintf("%s %s %-5s %4.2f ml/s at %5.1f °C %-20s %5d mg CO2/s",
			e.Vehicle, clock(e.TS), e.Kind, e.FuelRateMlPerS, e.Celsius, src, e.CO2MgPerS)
	}
	return lines
}

// MinuteLines formats the window join's minutes one per line, per vehicle
// in time order.
func MinuteLines(ms []MinuteEmission) []string {
	sorted := slices.Clone(ms)
	slices.SortFunc(sorted, func(a, b MinuteEmission) int {
		return cmp.Or(cmp.Compare(a.Vehicle, b.Vehicle), a.WindowStart.Compare(b.WindowStart))
	})
	lines := make([]string, len(sorted))
	for i, m := range sorted {
		pairs := fmt.Sprintf("%d pairs,", m.Pairs)
		if m.Pairs == 1 {
			pairs = "1 pair,"
		}
		lines[i] = fmt.Sprintf("%s [%s, %s) %9s mean %5.0f mg CO2/s at %4.1f °C", m.Vehicle,
			clock(m.WindowStart), clock(m.WindowEnd), pairs,
			float64(m.SumCO2MgPerS)/float64(m.Pairs), float64(m.SumDeciC)/10/float64(m.Pairs))
	}
	return lines
}

// readAll reads topic's records, from its start to its current end, and
// decodes their values.
func readAll[T any](ctx context.Context, addrs []string, adm *kadm.Client, topic string) ([]T, error) {
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("list end offsets of %s: %w", topic, err)
	}
	want := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			want[o.Partition] = o.Offset
		}
	})
	if len(want) == 0 {
		return nil, nil
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var out []T
	for len(want) > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("reading %s: %w", topic, err)
		}
		if err := fs.Err0(); err != nil {
			return nil, fmt.Errorf("reading %s: %w", topic, err)
		}
		var decodeErr error
		fs.EachRecord(func(r *kgo.Record) {
			end, ok := want[r.Partition]
			if !ok || r.Offset >= end {
				return
			}
			v, err := serde.JSON[T]().Deserialize(r.Topic, r.Value)
			if err != nil {
				decodeErr = errors.Join(decodeErr, err)
			}
			out = append(out, v)
			if r.Offset+1 >= end {
				delete(want, r.Partition)
			}
		})
		if decodeErr != nil {
			return nil, fmt.Errorf("reading %s: %w", topic, decodeErr)
		}
	}
	return out, nil
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
