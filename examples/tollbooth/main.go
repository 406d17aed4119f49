// Command tollbooth is the first job of the streaming-systems book: count
// the vehicles that pass a set of toll booths, per booth and per vehicle
// type, then run it in parallel and show how records are grouped between
// the parallel tasks.
//
// The input is vehicle events (key: the booth; value: JSON {booth, seq,
// type, plate, ts}), generated from -seed: six booths with uneven traffic,
// cars, trucks, motorcycles and buses, plates read by cameras in mixed
// case and spacing, and seq numbering each booth's events in the order
// the booth wrote them. The input topic has four partitions; the producer
// partitions by key, so each booth's events sit in one partition, in order.
//
// The job has four stages (tasks "<stage>_<partition>", the stage being a
// sub-topology of the topology):
//
//   - read: one task per input partition.
//   - normalise, after a shuffle grouping (Repartition with RoundRobin):
//     records are dealt in turn to three tasks, whatever their booth, so
//     the busy booths' load is spread evenly over a stateless stage that
//     writes each plate in canonical form and adds the toll.
//   - count-by-type, after a fields grouping by vehicle type (Repartition
//     by key): each type is counted by one task, in a store.
//   - count-by-booth, after a fields grouping by booth, straight from the
//     read stage: each booth is counted by one task, which also checks that
//     the booth's events come in sequence. A booth's events go from one
//     partition through one read task to one partition of the internal
//     topic, so they reach the counter in the order written. (After a
//     shuffle they would not: records of one booth would travel through
//     several tasks.)
//
// The App runs -workers workers (Workers), which share the tasks. Each
// stage's processor notes the task it runs in (ProcessorContext.TaskID);
// the example prints what each task handled, the final counts read back
// from the two output topics, and whether per-key order held.
//
// With no flags it starts an embedded in-process Kafka broker:
//
//	go run ./examples/tollbooth
//
// With -brokers (or KAFKA_BROKERS) it uses that cluster instead. Topic and
// application names end with a run id, so that runs do not see each
// other's records.
package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamwork-go/streamwork/examples/service"
	"github.com/streamwork-go/streamwork/kstream"
	"github.com/streamwork-go/streamwork/serde"
)

// Defaults of the flags: the run the README shows.
const (
	DefaultSeed    = 1
	DefaultEvents  = 240
	DefaultWorkers = 3
)

// config is what the example's own flags say.
type config struct {
	seed    uint64
	events  int
	workers int
}

func main() {
	var f service.Flags
	f.Register(flag.CommandLine, service.WithEmbeddedBroker())
	var c config
	flag.Uint64Var(&c.seed, "seed", DefaultSeed, "seed of the generated vehicle events")
	flag.IntVar(&c.events, "events", DefaultEvents, "how many vehicle events to generate")
	flag.IntVar(&c.workers, "workers", DefaultWorkers, "workers of the App (Workers), which share the tasks")
	service.Main("tollbooth", &f, func(ctx context.Context, env service.Env) error {
		return run(ctx, env.Addrs, c, env.RunID, env.StateDir, env.Logger, env.Out)
	})
}

// run writes the generated events, runs the job until it has committed
// them and everything they caused, and prints the summary.
func run(ctx context.Context, addrs []string, c config, runID, stateDir string, logger *slog.Logger, w io.Writer) error {
	if c.events <= 0 || c.workers <= 0 {
		return fmt.Errorf("-events %d and -workers %d must be positive", c.events, c.workers)
	}
	topics := Topics{Input: "tollbooth-events-" + runID, BoothCounts: "tollbooth-booth-counts-" + runID, TypeCounts: "tollbooth-type-counts-" + runID}
	appID := "tollbooth-" + runID
	logger.Info("tollbooth topics", "input", topics.Input, "booth_counts", topics.BoothCounts, "type_counts", topics.TypeCounts, "application_id", appID)
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, InputPartitions, 1, nil, topics.Input); err != nil {
		return fmt.Errorf("create %s: %w", topics.Input, err)
	}
	for _, tp := range []string{topics.BoothCounts, topics.TypeCounts} {
		if _, err := adm.CreateTopic(ctx, 1, 1, nil, tp); err != nil {
			return fmt.Errorf("create %s: %w", tp, err)
		}
	}

	tr := NewTrace()
	topo, err := Topology(topics, tr)
	if err != nil {
		return err
	}
	app, err := kstream.New(topo,
		kstream.ApplicationID(appID),
		kstream.Brokers(addrs...),
		kstream.Workers(c.workers),
		kstream.Logger(logger),
		kstream.StateDir(stateDir),
		kstream.CommitInterval(200*time.Millisecond),
	)
	if err != nil {
		return err
	}
	appCtx, stopApp := context.WithCancel(ctx)
	defer stopApp()
	done := make(chan error, 1)
	go func() { done <- app.Run(appCtx) }()
	// The input is written once every worker owns tasks: else the first
	// worker to join could do the whole job before the others join.
	if err := waitSpread(ctx, adm, appID, c.workers, done, logger); err != nil {
		stopApp()
		<-done
		return err
	}

	events := Generate(c.seed, c.events)
	recs := make([]*kgo.Record, len(events))
	for i, e := range events {
		v, err := serde.JSON[Event]().Serialize(topics.Input, e)
		if err != nil {
			return err
		}
		recs[i] = &kgo.Record{Topic: topics.Input, Key: []byte(e.Booth), Value: v, Timestamp: e.TS}
	}
	// One producer, partitioning by key: each booth's events go to one
	// partition in the order written.
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		stopApp()
		<-done
		return fmt.Errorf("produce: %w", err)
	}

	internal := []string{topics.Input}
	for _, name := range []string{"shuffle", "by-type", "by-booth"} {
		internal = append(internal, appID+"-"+name+"-repartition")
	}
	err = service.WaitSettled(ctx, adm, appID, topics.Input, internal, done)
	var out map[string][]*kgo.Record
	if err == nil {
		out, err = service.ReadAll(ctx, addrs, topics.BoothCounts, topics.TypeCounts)
	}
	stopApp()
	if runErr := <-done; runErr != nil && err == nil {
		err = runErr
	}
	if err != nil {
		return err
	}
	boothCounts, err := latest[BoothCount](out[topics.BoothCounts])
	if err != nil {
		return err
	}
	typeCounts, err := latest[TypeCount](out[topics.TypeCounts])
	if err != nil {
		return err
	}
	printSummary(w, c, len(boothCounts), tr, boothCounts, typeCounts)
	return nil
}

// waitSpread waits, for a minute at most, until the application's group
// is stable with one member per worker, each owning some partitions, and
// logs what each owns.
func waitSpread(ctx context.Context, adm *kadm.Client, group string, workers int, appDone chan error, logger *slog.Logger) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		groups, err := adm.DescribeGroups(ctx, group)
		if err == nil {
			g := groups[group]
			owned := make([]string, 0, len(g.Members))
			for _, m := range g.Members {
				if a, ok := m.Assigned.AsConsumer(); ok {
					var parts []string
					for _, t := range a.Topics {
						for _, p := range t.Partitions {
							parts = append(parts, fmt.Sprintf("%s/%d", t.Topic, p))
						}
					}
					if len(parts) > 0 {
						slices.Sort(parts)
						short := strings.NewReplacer(group+"-", "", "-repartition", "", strings.TrimPrefix(group, "tollbooth"), "")
						owned = append(owned, short.Replace(m.ClientID+": "+strings.Join(parts, " ")))
					}
				}
			}
			if g.Err == nil && g.State == "Stable" && len(g.Members) == workers && len(owned) == workers {
				slices.Sort(owned)
				for _, o := range owned {
					logger.Info("tollbooth: worker owns " + o)
				}
				return nil
			}
		}
		select {
		case err := <-appDone:
			appDone <- err // for the caller, which waits for it
			return fmt.Errorf("%s stopped before its workers shared the tasks: %v", group, err)
		case <-ctx.Done():
			return fmt.Errorf("waiting for the %d workers of %s to share the tasks: %w", workers, group, ctx.Err())
		case <-tick.C:
		}
	}
}

// latest decodes a counter's output: the last value of each key.
func latest[V any](recs []*kgo.Record) (map[string]V, error) {
	out := map[string]V{}
	for _, r := range recs {
		v, err := serde.JSON[V]().Deserialize(r.Topic, r.Value)
		if err != nil {
			return nil, fmt.Errorf("%s/%d offset %d: %w", r.Topic, r.Partition, r.Offset, err)
		}
		out[string(r.Key)] = v
	}
	return out, nil
}

// printSummary prints what each stage's tasks handled, the counts, and
// whether each booth's events reached its counter in sequence.
func printSummary(w io.Writer, c config, nBooths int, tr *Trace, booths map[string]BoothCount, types map[string]TypeCount) {
	fmt.Fprintf(w, "wrote %d vehicle events of %d booths (seed %d) to %d partitions, keyed by booth; %d workers share the tasks\n",
		c.events, nBooths, c.seed, InputPartitions, c.workers)
	keyed := func(title string, stage string) {
		fmt.Fprintln(w, title)
		for _, l := range tr.Tasks(stage) {
			fmt.Fprintf(w, "  task %-4s %-32s %4d events\n", l.Task, strings.Join(l.Keys, " "), l.Records)
		}
	}
	keyed("read: a task per input partition", StageRead)
	fmt.Fprintf(w, "normalise: shuffle grouping, round robin over %d partitions, whatever the booth\n", ShufflePartitions)
	for _, l := range tr.Tasks(StageNormalise) {
		fmt.Fprintf(w, "  task %-4s %4d events\n", l.Task, l.Records)
	}
	keyed(fmt.Sprintf("count-by-type: fields grouping by vehicle type over %d partitions", ByTypePartitions), StageCountByType)
	keyed(fmt.Sprintf("count-by-booth: fields grouping by booth over %d partitions", ByBoothPartitions), StageCountByBooth)

	fmt.Fprintln(w, "vehicles per booth:")
	for _, b := range slices.Sorted(maps.Keys(booths)) {
		bc := booths[b]
		var parts []string
		for _, t := range VehicleTypes {
			parts = append(parts, fmt.Sprintf("%s %d", t, bc.ByType[t]))
		}
		fmt.Fprintf(w, "  %-8s %4d  (%s)\n", b, bc.Vehicles, strings.Join(parts, ", "))
	}
	fmt.Fprintln(w, "vehicles per type:")
	var total TypeCount
	order := slices.SortedFunc(maps.Keys(types), func(a, b string) int {
		return cmp.Or(cmp.Compare(slices.Index(VehicleTypes, a), slices.Index(VehicleTypes, b)), cmp.Compare(a, b))
	})
	for _, t := range order {
		tc := types[t]
		fmt.Fprintf(w, "  %-10s %4d  tolls %s\n", t, tc.Vehicles, dollars(tc.TollCents))
		total.Vehicles += tc.Vehicles
		total.TollCents += tc.TollCents
		total.RewrittenPlates += tc.RewrittenPlates
	}
	fmt.Fprintf(w, "  %-10s %4d  tolls %s\n", "all", total.Vehicles, dollars(total.TollCents))
	fmt.Fprintf(w, "plates: %d of %d rewritten in canonical form (e.g. %q -> %q)\n",
		total.RewrittenPlates, total.Vehicles, "ab-123 cd", NormalisePlate("ab-123 cd"))
	var broken []string
	for _, b := range slices.Sorted(maps.Keys(booths)) {
		if bc := booths[b]; bc.OutOfOrder > 0 || bc.LastSeq != bc.Vehicles {
			broken = append(broken, fmt.Sprintf("%s (%d out of sequence)", b, bc.OutOfOrder))
		}
	}
	if len(broken) == 0 {
		fmt.Fprintf(w, "per-key order: held for %d keys (each booth's events reached its counter in the order written)\n", len(booths))
	} else {
		fmt.Fprintf(w, "per-key order: broken for %s\n", strings.Join(broken, ", "))
	}
}

// dollars formats cents as $1,234.56.
func dollars(cents int64) string {
	s := fmt.Sprintf("%d", cents/100)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return fmt.Sprintf("$%s.%02d", s, cents%100)
}
