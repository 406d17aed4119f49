// Command frauddetection is the fraud-detection example of stream
// processing books, over one stream of card transactions (key: the card id;
// value: JSON {id, card, amount_cents, merchant, lat, lon, ts}).
//
// By default it runs the job as a DAG (see DAG): the transactions fan out
// to four analyzers — spend per card per minute, travel between a card's
// consecutive transactions, the merchant's risk in a merchants table, and
// merchants per session — each giving a verdict per transaction; the
// verdicts fan in, by transaction id, to a scorer that sums them once all
// four reported, and transactions scoring AlertScore or more go to an
// alerts topic. It prints each alert with its verdicts, and totals.
//
// With -windows it runs three windowed aggregations instead, each emitting
// its final result per window (EmitFinal) and flagging the suspicious ones:
//
//   - high-spend: each card's spending per minute, in tumbling windows of
//     one minute with 10s of grace (WindowedAggregate); a minute over
//     $1,000 is flagged. Transactions that arrive after their minute
//     closed are written to a late-records topic (LateRecordsTo).
//   - impossible-travel: each card's transactions of the last five minutes,
//     in sliding windows of five minutes with 30s of grace, kept sorted by
//     time; a leg between two consecutive transactions faster than 900 km/h
//     (great-circle distance) is flagged.
//   - many-merchants: each card's sessions of activity, transactions at
//     most two minutes apart, in session windows with 30s of grace
//     (SessionAggregate, which merges sessions that a transaction bridges);
//     a session at four merchants or more is flagged.
//
// The alerts go to one topic, JSON {card, rule, window_start, window_end,
// detail}.
//
// The example generates its input itself, the same for the same -seed:
// ordinary shopping for eight cards with a few fraudulent patterns, a few
// transactions written out of order (up to 25s behind a later one: within
// the 30s grace of the sliding and session windows, so those count them,
// but a transaction written more than 10s after its minute ended is late
// for the spend windows) and two written minutes late (their windows have
// all closed). The spend analyzer writes its late transactions to a
// late-records topic; all three count theirs in Metrics.LateRecords. The
// example runs the topology until it has processed and committed every
// transaction, then reads the alerts and late records back and prints them,
// alerts in window order.
//
// Event time is the transaction's ts (the source's WithTimestamps), and
// stream time, the largest ts the aggregation has seen, only moves with
// records: a window's final result comes out once stream time passes its
// end plus grace. So the generated day ends with one transaction five
// minutes after all others, which closes every earlier window (its own
// windows stay open and are never reported; CloseWindowsWhenIdle would
// close them on an input that stays quiet). The input topic has one
// partition, so one task sees every transaction in the order written and
// the output is the same on every run; with more partitions each task
// would keep its own stream time.
//
// With no flags it starts an embedded in-process Kafka broker:
//
//	go run ./examples/frauddetection
//	go run ./examples/frauddetection -windows
//	go run ./examples/frauddetection -mermaid  # the DAG's topology
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
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamwork-go/streamwork/examples/service"
	"github.com/streamwork-go/streamwork/kstream"
	"github.com/streamwork-go/streamwork/serde"
)

// DefaultSeed is -seed's default, the run the README shows: chosen because
// it has every rule fire, a card flagged twice, and a transaction late for
// one analyzer only.
const DefaultSeed = 20

func main() {
	var f service.Flags
	f.Register(flag.CommandLine, service.WithEmbeddedBroker())
	seed := flag.Uint64("seed", DefaultSeed, "seed of the generated transactions")
	windows := flag.Bool("windows", false, "run the three windowed aggregations with their per-window alerts instead of the DAG")
	mermaid := flag.Bool("mermaid", false, "print the DAG's topology as a Mermaid flowchart and exit")
	flag.Parse()
	if *mermaid {
		topo, err := DAG(dagTopics("<run>"))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Print(topo.Describe().Mermaid())
		return
	}
	service.Main("frauddetection", &f, func(ctx context.Context, env service.Env) error {
		if *windows {
			return run(ctx, env.Addrs, *seed, env.RunID, env.StateDir, env.Logger, env.Out)
		}
		return runDAG(ctx, env.Addrs, *seed, env.RunID, env.StateDir, env.Logger, env.Out)
	})
}

// run writes the generated transactions, runs the topology until it has
// committed all of them, and prints the alerts and the late transactions.
func run(ctx context.Context, addrs []string, seed uint64, runID, stateDir string, logger *slog.Logger, w io.Writer) error {
	input, alerts, late := "fraud-txns-"+runID, "fraud-alerts-"+runID, "fraud-late-txns-"+runID
	appID := "frauddetection-" + runID
	logger.Info("frauddetection topics", "input", input, "alerts", alerts, "late", late, "application_id", appID)
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	for _, tp := range []string{input, alerts, late} {
		// One partition each: see the package doc.
		if _, err := adm.CreateTopic(ctx, 1, 1, nil, tp); err != nil {
			return fmt.Errorf("create %s: %w", tp, err)
		}
	}

	gen := Generate(seed)
	recs := make([]*kgo.Record, len(gen.Txns))
	for i, t := range gen.Txns {
		v, err := serde.JSON[Txn]().Serialize(input, t)
		if err != nil {
			return err
		}
		recs[i] = &kgo.Record{Topic: input, Key: []byte(t.Card), Value: v}
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return fmt.Errorf("produce: %w", err)
	}

	topo, err := Topology(input, alerts, late)
	if err != nil {
		return err
	}
	app, err := kstream.New(topo,
		kstream.ApplicationID(appID),
		kstream.Brokers(addrs...),
		kstream.Logger(logger),
		kstream.StateDir(stateDir),
		kstream.CommitInterval(200*time.Millisecond),
	)
	if err != nil {
		return err
	}
	appCtx, stopApp := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- app.Run(appCtx) }()

	var found []Alert
	var lateRecs []*kgo.Record
	ends, err := adm.ListEndOffsets(ctx, input)
	if err == nil {
		err = ends.Error()
	}
	if err == nil {
		err = service.WaitCommitted(ctx, adm, appID, ends, done)
	}
	if err == nil {
		found, lateRecs, err = readOutputs(ctx, addrs, adm, alerts, late)
	}
	stopApp()
	if runErr := <-done; runErr != nil && err == nil {
		err = runErr
	}
	if err != nil {
		return err
	}
	first, last := gen.Txns[0].TS, gen.Txns[0].TS
	for _, t := range gen.Txns {
		first, last = minTime(first, t.TS), maxTime(last, t.TS)
	}
	fmt.Fprintf(w, "wrote %d transactions of %d cards, event time %s to %s, %d of them out of order\n",
		len(gen.Txns), gen.Cards(), clock(first), clock(last), gen.OutOfOrder())
	fmt.Fprintf(w, "%d alerts:\n", len(found))
	for _, line := range AlertLines(found) {
		fmt.Fprintln(w, " ", line)
	}
	fmt.Fprintf(w, "%d late transactions (the spend windows' side output):\n", len(lateRecs))
	for _, r := range lateRecs {
		line, err := lateLine(r)
		if err != nil {
			return err
		}
		fmt.Fprintln(w, " ", line)
	}
	m := app.Metrics()
	fmt.Fprintf(w, "processed %d transactions; the windows refused %d late records (each analyzer counts its own)\n",
		m.RecordsProcessed, m.LateRecords)
	return nil
}

// AlertLines formats alerts one per line, in window order (start, end,
// card, rule).
func AlertLines(alerts []Alert) []string {
	sorted := slices.Clone(alerts)
	slices.SortFunc(sorted, func(a, b Alert) int {
		return cmp.Or(a.WindowStart.Compare(b.WindowStart), a.WindowEnd.Compare(b.WindowEnd),
			cmp.Compare(a.Card, b.Card), cmp.Compare(a.Rule, b.Rule), cmp.Compare(a.Detail, b.Detail))
	})
	lines := make([]string, len(sorted))
	for i, a := range sorted {
		closing := "]"
		if a.Rule == RuleHighSpend {
			closing = ")" // tumbling windows exclude their end
		}
		lines[i] = fmt.Sprintf("[%s, %s%s %s %-17s %s", clock(a.WindowStart), clock(a.WindowEnd), closing, a.Card, a.Rule, a.Detail)
	}
	return lines
}

// lateLine describes a record of the late-records topic from its value
// and the headers the windowed aggregation added.
func lateLine(r *kgo.Record) (string, error) {
	t, err := serde.JSON[Txn]().Deserialize(r.Topic, r.Value)
	if err != nil {
		return "", err
	}
	h := map[string]string{}
	for _, hd := range r.Headers {
		h[hd.Key] = string(hd.Value)
	}
	ms := func(key string) (time.Time, error) {
		v, err := strconv.ParseInt(h[key], 10, 64)
		if err != nil {
			return time.Time{}, fmt.Errorf("late record header %s: %w", key, err)
		}
		return utc(v), nil
	}
	start, err := ms(kstream.HeaderLateWindowStart)
	if err != nil {
		return "", err
	}
	end, err := ms(kstream.HeaderLateWindowEnd)
	if err != nil {
		return "", err
	}
	st, err := ms(kstream.HeaderLateStreamTime)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%s %s at %s: %s [%s, %s) at stream time %s", t.Card, dollars(t.AmountCents), clock(t.TS),
		h[kstream.HeaderLateReason], clock(start), clock(end), clock(st)), nil
}

// readOutputs reads the alerts and the late records, from the start of
// their topics to their current ends.
func readOutputs(ctx context.Context, addrs []string, adm *kadm.Client, alertsTopic, lateTopic string) ([]Alert, []*kgo.Record, error) {
	ends, err := adm.ListEndOffsets(ctx, alertsTopic, lateTopic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, nil, fmt.Errorf("list end offsets: %w", err)
	}
	alertRecs, err := readTo(ctx, addrs, alertsTopic, ends)
	if err != nil {
		return nil, nil, err
	}
	lateRecs, err := readTo(ctx, addrs, lateTopic, ends)
	if err != nil {
		return nil, nil, err
	}
	alerts := make([]Alert, len(alertRecs))
	for i, r := range alertRecs {
		if alerts[i], err = serde.JSON[Alert]().Deserialize(r.Topic, r.Value); err != nil {
			return nil, nil, err
		}
	}
	return alerts, lateRecs, nil
}

// readTo reads topic's partitions from their start to the offsets in
// ends.
func readTo(ctx context.Context, addrs []string, topic string, ends kadm.ListedOffsets) ([]*kgo.Record, error) {
	want := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Topic == topic && o.Offset > 0 {
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
	var out []*kgo.Record
	for len(want) > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("reading %s: %w", topic, err)
		}
		if err := fs.Err0(); err != nil {
			return nil, fmt.Errorf("reading %s: %w", topic, err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if end, ok := want[r.Partition]; ok && r.Offset < end {
				out = append(out, r)
				if r.Offset+1 >= end {
					delete(want, r.Partition)
				}
			}
		})
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
