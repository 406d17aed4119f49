package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamwork-go/streamwork/examples/service"
	"github.com/streamwork-go/streamwork/kstream"
	"github.com/streamwork-go/streamwork/serde"
)

// dagTopics returns the DAG's topics for a run.
func dagTopics(runID string) DAGTopics {
	return DAGTopics{
		Input: "fraud-txns-" + runID, Merchants: "fraud-merchants-" + runID,
		LateSpend: "fraud-late-spend-" + runID, LateSessions: "fraud-late-sessions-" + runID,
		Scores: "fraud-scores-" + runID, Alerts: "fraud-alerts-" + runID,
	}
}

// runDAG writes the merchants table and the generated transactions, runs
// the DAG until it has settled, and prints the alerts and the totals.
func runDAG(ctx context.Context, addrs []string, seed uint64, runID, stateDir string, logger *slog.Logger, w io.Writer) error {
	topics := dagTopics(runID)
	appID := "frauddag-" + runID
	logger.Info("frauddetection DAG topics", "topics", topics, "application_id", appID)
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	// One partition each: the analyzers see each card's transactions in
	// the order written, and the merchants topic is co-partitioned with
	// the transactions re-keyed by merchant (as many partitions as the
	// input).
	for _, tp := range []string{topics.Input, topics.Merchants, topics.LateSpend, topics.LateSessions, topics.Scores, topics.Alerts} {
		if _, err := adm.CreateTopic(ctx, 1, 1, nil, tp); err != nil {
			return fmt.Errorf("create %s: %w", tp, err)
		}
	}

	gen := Generate(seed)
	first, last := gen.Txns[0].TS, gen.Txns[0].TS
	for _, t := range gen.Txns {
		first, last = minTime(first, t.TS), maxTime(last, t.TS)
	}
	// The merchants table is older than every transaction: a task reads
	// its inputs in timestamp order, so the table is loaded before the
	// first transaction meets it.
	table := MerchantTable(gen.Merchants)
	var recs []*kgo.Record
	for _, m := range table {
		v, err := serde.JSON[MerchantInfo]().Serialize(topics.Merchants, m)
		if err != nil {
			return err
		}
		recs = append(recs, &kgo.Record{Topic: topics.Merchants, Key: []byte(m.Name), Value: v, Timestamp: first.Add(-time.Hour)})
	}
	for _, t := range gen.Txns {
		v, err := serde.JSON[Txn]().Serialize(topics.Input, t)
		if err != nil {
			return err
		}
		recs = append(recs, &kgo.Record{Topic: topics.Input, Key: []byte(t.Card), Value: v, Timestamp: t.TS})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return fmt.Errorf("produce: %w", err)
	}

	topo, err := DAG(topics)
	if err != nil {
		return err
	}
	app, err := kstream.New(topo,
		kstream.ApplicationID(appID),
		kstream.Brokers(addrs...),
		kstream.Logger(logger),
		kstream.StateDir(stateDir),
		kstream.CommitInterval(200*time.Millisecond),
		// The analyzers judge every update: see DAG.
		kstream.CacheMaxBytes(0),
	)
	if err != nil {
		return err
	}
	appCtx, stopApp := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- app.Run(appCtx) }()

	// Settled: the input, the topics the DAG reads back and its
	// repartition topics are committed to their ends, which stay put.
	settle := []string{topics.Input, topics.Merchants, topics.LateSpend, topics.LateSessions}
	for _, st := range topo.Describe().Subtopologies {
		for _, n := range st.Nodes {
			for _, tp := range n.Topics {
				if n.Kind == "Source" && strings.HasSuffix(tp, "-repartition") {
					settle = append(settle, appID+"-"+tp)
				}
			}
		}
	}
	err = service.WaitSettled(ctx, adm, appID, topics.Input, settle, done)
	var out map[string][]*kgo.Record
	if err == nil {
		out, err = service.ReadAll(ctx, addrs, topics.Scores, topics.Alerts)
	}
	stopApp()
	if runErr := <-done; runErr != nil && err == nil {
		err = runErr
	}
	if err != nil {
		return err
	}
	scores, err := decodeScored(out[topics.Scores])
	if err != nil {
		return err
	}
	alerts, err := decodeScored(out[topics.Alerts])
	if err != nil {
		return err
	}
	if err := checkScored(gen.Txns, scores, alerts); err != nil {
		return err
	}

	fmt.Fprintf(w, "wrote %d merchants to the merchants table (%d merchants in all) and %d transactions of %d cards, event time %s to %s, %d of them out of order\n",
		len(table), len(gen.Merchants), len(gen.Txns), gen.Cards(), clock(first), clock(last), gen.OutOfOrder())
	fmt.Fprintf(w, "%d alerts (score %d or more):\n", len(alerts), AlertScore)
	for _, line := range ScoredLines(alerts) {
		fmt.Fprintln(w, " ", line)
	}
	flagged, late := map[string]int{}, map[string]int{}
	for _, s := range scores {
		for _, v := range s.Verdicts {
			if v.Score > 0 {
				flagged[v.Analyzer]++
			}
			if strings.HasPrefix(v.Reason, "late") {
				late[v.Analyzer]++
			}
		}
	}
	fmt.Fprintf(w, "scored %d transactions, each once all %d analyzers gave their verdict\n", len(scores), len(Analyzers))
	fmt.Fprintf(w, "verdicts that scored:")
	for _, a := range Analyzers {
		fmt.Fprintf(w, " %s %d", a, flagged[a])
	}
	fmt.Fprintf(w, "\nlate for the windows, judged without them: %s %d, %s %d\n",
		AnalyzerSpend, late[AnalyzerSpend], AnalyzerSession, late[AnalyzerSession])
	return nil
}

func decodeScored(recs []*kgo.Record) ([]Scored, error) {
	out := make([]Scored, len(recs))
	for i, r := range recs {
		var err error
		if out[i], err = serde.JSON[Scored]().Deserialize(r.Topic, r.Value); err != nil {
			return nil, fmt.Errorf("%s partition %d offset %d: %w", r.Topic, r.Partition, r.Offset, err)
		}
		if out[i].Txn.ID != string(r.Key) {
			return nil, fmt.Errorf("%s partition %d offset %d: key %q, transaction %q", r.Topic, r.Partition, r.Offset, r.Key, out[i].Txn.ID)
		}
	}
	return out, nil
}

// checkScored checks that every transaction was scored once, with a
// verdict of every analyzer, and that the alerts are the scored
// transactions over the threshold.
func checkScored(txns []Txn, scores, alerts []Scored) error {
	want := map[string]Txn{}
	for _, t := range txns {
		want[t.ID] = t
	}
	seen := map[string]bool{}
	over := 0
	for _, s := range scores {
		t, ok := want[s.Txn.ID]
		switch {
		case !ok:
			return fmt.Errorf("scored %s, which was not written", s.Txn.ID)
		case seen[s.Txn.ID]:
			return fmt.Errorf("scored %s twice", s.Txn.ID)
		case !t.TS.Equal(s.Txn.TS) || t.AmountCents != s.Txn.AmountCents || t.Merchant != s.Txn.Merchant:
			return fmt.Errorf("scored %s as %+v, written as %+v", s.Txn.ID, s.Txn, t)
		case len(s.Verdicts) != len(Analyzers):
			return fmt.Errorf("scored %s with %d verdicts, want %d", s.Txn.ID, len(s.Verdicts), len(Analyzers))
		}
		for i, v := range s.Verdicts {
			if v.Analyzer != Analyzers[i] {
				return fmt.Errorf("scored %s: verdict %d is %s's, want %s's", s.Txn.ID, i, v.Analyzer, Analyzers[i])
			}
		}
		seen[s.Txn.ID] = true
		if s.Score >= AlertScore {
			over++
		}
	}
	if len(seen) != len(want) {
		return fmt.Errorf("scored %d of %d transactions", len(seen), len(want))
	}
	if len(alerts) != over {
		return fmt.Errorf("%d alerts, but %d transactions scored %d or more", len(alerts), over, AlertScore)
	}
	return nil
}
