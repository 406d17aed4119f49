// Command systemusage counts system usage per user under the three
// delivery guarantees, and with -demo-crash shows what each promises when
// the processing crashes.
//
// The input is usage events (key: the user; value: JSON {id, user,
// cpu_ms, ts}), generated from -seed, on a topic of two partitions. The
// counter (Topology) adds each event's CPU milliseconds to its user's
// total in a store and writes a delta per event to an output topic: the
// event id, its contribution and the user's new total. The sum is not
// idempotent, on purpose: an event processed twice is added twice and has
// two deltas; an event never processed has none. Reading the output back
// (read committed), the example counts each event's deltas and compares
// each user's last total with the input's sums.
//
// By default it runs the counter once per guarantee (Guarantee:
// AtMostOnce, AtLeastOnce, ExactlyOnce; one application id and output
// topic each, over the same input) in this process, to the end of the
// input: with no crash, all three count every event once.
//
// With -demo-crash each guarantee's counter runs as a separate process
// (this program, started again with a flag -help does not list), slowed to
// -rate events a second. Once it has written deltas for a third of the
// input and committed some, the example kills that process with SIGKILL
// (no shutdown of any kind), starts another on the same state directory,
// waits until the group has dropped the dead one and given the new one
// the input, lets it commit the whole input and stops it cleanly; then it
// reads the output. What the
// guarantees promise shows in the numbers:
//
//   - at-most-once commits each fetched record's offset before processing
//     it: the events fetched but not processed before the crash are lost,
//     none is counted twice;
//   - at-least-once commits after the outputs are written: the events
//     processed since the last commit are processed again, counted twice
//     (and the store, restored from its changelog, adds them twice), none
//     is lost;
//   - exactly-once writes the outputs, the store's changelog and the
//     offsets in one transaction: the crashed instance's open transaction
//     is aborted, so read-committed readers see every event counted once
//     and the totals are exact.
//
// The lost and doubled counts vary from run to run with where the crash
// lands; exactly-once's are always 0 and 0.
//
// With no flags it starts an embedded in-process Kafka broker (the crash
// demo's processes connect to it too):
//
//	go run ./examples/systemusage
//	go run ./examples/systemusage -demo-crash
//
// With -brokers (or KAFKA_BROKERS) it uses that cluster instead. Topic and
// application names end with a run id, so that runs do not see each
// other's records.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamwork-go/streamwork/examples/service"
	"github.com/streamwork-go/streamwork/kstream"
	"github.com/streamwork-go/streamwork/serde"
)

// Defaults of the flags: the run the README shows.
const (
	DefaultSeed   = 1
	DefaultEvents = 3000
	DefaultRate   = 1000
)

// InputPartitions is the input topic's partition count (and the output's).
const InputPartitions = 2

// guarantees are the ones the example runs, in the order it prints them.
var guarantees = []kstream.DeliveryGuarantee{kstream.AtMostOnce, kstream.AtLeastOnce, kstream.ExactlyOnce}

// config is what the example's own flags say.
type config struct {
	seed      uint64
	events    int
	demoCrash bool
	rate      float64
	// exe is the program the crash demo starts as a processing instance:
	// this one (os.Executable).
	exe string
	// childLog receives the processing instances' logs, at logLevel.
	childLog io.Writer
	logLevel slog.Level
}

func main() {
	if c, ok, err := processorInvocation(os.Args[1:]); ok {
		if err != nil {
			fmt.Fprintln(os.Stderr, "systemusage:", err)
			os.Exit(2)
		}
		os.Exit(runProcessor(c, os.Stderr))
	}
	var f service.Flags
	f.Register(flag.CommandLine, service.WithEmbeddedBroker())
	var c config
	flag.Uint64Var(&c.seed, "seed", DefaultSeed, "seed of the generated usage events")
	flag.IntVar(&c.events, "events", DefaultEvents, "how many usage events to generate")
	flag.BoolVar(&c.demoCrash, "demo-crash", false, "run each guarantee's counter as a separate process, kill it mid-run with SIGKILL and restart it")
	flag.Float64Var(&c.rate, "rate", DefaultRate, "with -demo-crash: events a second each processing instance takes")
	service.Main("systemusage", &f, func(ctx context.Context, env service.Env) error {
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		c.exe, c.childLog, c.logLevel = exe, os.Stderr, f.LogLevel
		_, err = run(ctx, env.Addrs, c, env.RunID, env.StateDir, env.Logger, env.Out)
		return err
	})
}

// run writes the generated events, runs the counter under each guarantee
// (through a crash with demoCrash), reads each output back and prints
// what it says. It returns the outcomes, in the order of guarantees.
func run(ctx context.Context, addrs []string, c config, runID, stateDir string, logger *slog.Logger, w io.Writer) ([]Outcome, error) {
	if c.events < 3 {
		return nil, fmt.Errorf("-events %d: want at least 3", c.events)
	}
	input := "usage-events-" + runID
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, InputPartitions, 1, nil, input); err != nil {
		return nil, fmt.Errorf("create %s: %w", input, err)
	}
	events := Generate(c.seed, c.events)
	recs := make([]*kgo.Record, len(events))
	for i, e := range events {
		v, err := serde.JSON[Usage]().Serialize(input, e)
		if err != nil {
			return nil, err
		}
		recs[i] = &kgo.Record{Topic: input, Key: []byte(e.User), Value: v, Timestamp: e.TS}
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return nil, fmt.Errorf("produce: %w", err)
	}
	fmt.Fprintf(w, "wrote %d usage events of %d users (seed %d) to %d partitions, keyed by user\n",
		len(events), len(Totals(events)), c.seed, InputPartitions)
	if c.demoCrash {
		fmt.Fprintf(w, "crash demo: each guarantee's counter runs as a separate process at %g events/s, is killed with SIGKILL mid-run, and a second process finishes the input\n", c.rate)
	} else {
		fmt.Fprintln(w, "each guarantee's counter sums CPU per user and writes a delta per event, to the end of the input:")
	}

	var outcomes []Outcome
	for _, g := range guarantees {
		appID := fmt.Sprintf("systemusage-%s-%s", g, runID)
		output := fmt.Sprintf("usage-deltas-%s-%s", g, runID)
		if _, err := adm.CreateTopic(ctx, InputPartitions, 1, nil, output); err != nil {
			return nil, fmt.Errorf("create %s: %w", output, err)
		}
		logger.Info("systemusage", "guarantee", g.String(), "input", input, "output", output, "application_id", appID)
		dir := filepath.Join(stateDir, g.String())
		if c.demoCrash {
			info, err := crashRun(ctx, adm, c.exe, processorConfig{
				Brokers: addrs, AppID: appID, Input: input, Output: output, Guarantee: g, StateDir: dir,
				Rate: c.rate, CommitInterval: crashCommitInterval(g), SessionTimeout: 6 * time.Second, LogLevel: c.logLevel,
			}, len(events), c.childLog)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", g, err)
			}
			fmt.Fprintf(w, "  %-14s killed with %d records in the output and %d of %d input offsets committed\n", g.String()+":", info.Written, info.Committed, len(events))
		} else if err := runInProcess(ctx, adm, addrs, g, appID, input, output, dir, logger); err != nil {
			return nil, fmt.Errorf("%s: %w", g, err)
		}
		out, err := service.ReadAll(ctx, addrs, output)
		if err != nil {
			return nil, err
		}
		o, err := check(g, events, out[output])
		if err != nil {
			return nil, err
		}
		outcomes = append(outcomes, o)
	}
	for _, l := range summaryLines(outcomes) {
		fmt.Fprintln(w, l)
	}
	return outcomes, nil
}

// crashCommitInterval is the processing instances' commit interval: under
// exactly-once the default (100ms: a transaction each), else long enough
// for a crash to land between two commits visibly.
func crashCommitInterval(g kstream.DeliveryGuarantee) time.Duration {
	if g == kstream.ExactlyOnce {
		return 100 * time.Millisecond
	}
	return 500 * time.Millisecond
}

// runInProcess runs the counter under g in this process until its group
// has committed the whole input, then shuts it down cleanly (which, under
// at-most-once, processes what it committed and had not processed yet).
func runInProcess(ctx context.Context, adm *kadm.Client, addrs []string, g kstream.DeliveryGuarantee, appID, input, output, stateDir string, logger *slog.Logger) error {
	topo, err := Topology(input, output, nil)
	if err != nil {
		return err
	}
	app, err := kstream.New(topo,
		kstream.ApplicationID(appID),
		kstream.Brokers(addrs...),
		kstream.Guarantee(g),
		kstream.CommitInterval(200*time.Millisecond),
		kstream.StateDir(stateDir),
		kstream.Logger(logger),
	)
	if err != nil {
		return err
	}
	appCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- app.Run(appCtx) }()
	ends, err := adm.ListEndOffsets(ctx, input)
	if err == nil {
		err = ends.Error()
	}
	if err == nil {
		err = service.WaitCommitted(ctx, adm, appID, ends, done)
	}
	stop()
	if runErr := <-done; runErr != nil && err == nil {
		err = runErr
	}
	return err
}
