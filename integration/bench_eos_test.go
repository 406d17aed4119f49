package integration

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/streamwork-go/streamwork/integration/internal/ledger"
	"github.com/streamwork-go/streamwork/integration/kafkatest"
	"github.com/streamwork-go/streamwork/kstream"
)

// benchRecordsEnv sets how many input records each BenchmarkEOS run
// processes (default 300,000).
const benchRecordsEnv = "STREAMWORK_BENCH_RECORDS"

// BenchmarkEOS measures the throughput of the ledger workload (a
// pass-through output, a repartition, a count and a sum; see
// internal/ledger) on the real broker under each guarantee: one App with one
// worker processes a preloaded input over 6 partitions, from its first
// processed record until it processed every record (the commits made
// meanwhile included; then it checks that the group commits everything).
// It reports input records per second (records/s).
// Run it with -benchtime=1x:
//
//	go test -run '^$' -bench EOS -benchtime=1x ./integration/
func BenchmarkEOS(b *testing.B) {
	n := 300000
	if s := os.Getenv(benchRecordsEnv); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 {
			b.Fatalf("%s=%q: want a positive number", benchRecordsEnv, s)
		}
		n = v
	}
	for _, c := range []struct {
		name string
		opts []kstream.Opt
	}{
		{"at-least-once", []kstream.Opt{kstream.Guarantee(kstream.AtLeastOnce)}},
		{"at-least-once-commit-100ms", []kstream.Opt{kstream.Guarantee(kstream.AtLeastOnce), kstream.CommitInterval(100 * time.Millisecond)}},
		{"exactly-once", []kstream.Opt{kstream.Guarantee(kstream.ExactlyOnce)}},
		{"exactly-once-commit-1s", []kstream.Opt{kstream.Guarantee(kstream.ExactlyOnce), kstream.CommitInterval(time.Second)}},
	} {
		b.Run(c.name, func(b *testing.B) {
			var total time.Duration
			for range b.N {
				total += benchLedgerOnce(b, n, c.opts)
			}
			b.ReportMetric(float64(n)*float64(b.N)/total.Seconds(), "records/s")
			b.ReportMetric(0, "ns/op") // the wall time of a run is not the measure
		})
	}
}

// benchLedgerOnce runs the ledger workload once over n preloaded records
// and returns how long processing took.
func benchLedgerOnce(b *testing.B, n int, opts []kstream.Opt) time.Duration {
	b.StopTimer()
	defer b.StartTimer()
	br := kafkatest.Require(b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	p := ledgerPlan{partitions: 6, records: n, users: 1000, groups: 40, seed: 1}
	tp := ledger.Topics{
		Input:       newTopic(b, br, "bench-in", p.partitions),
		Passthrough: newTopic(b, br, "bench-pass", p.partitions),
		Counts:      newTopic(b, br, "bench-counts", p.partitions),
		Sums:        newTopic(b, br, "bench-sums", p.partitions),
	}
	inputs, _ := ledgerInputs(p, tp.Input)
	cl := producer(b, br)
	for i := 0; i < len(inputs); i += 5000 {
		produce(ctx, b, cl, inputs[i:min(i+5000, len(inputs))])
	}
	topo, err := ledger.Topology(tp, p.groups, nil)
	if err != nil {
		b.Fatal(err)
	}
	group := kafkatest.UniqueName(b, "bench")
	all := append([]kstream.Opt{
		kstream.ApplicationID(group), kstream.Workers(1), kstream.StateDir(b.TempDir()),
	}, opts...)
	app := startApp(b, br, group, topo, all...)

	var began time.Time
	waitFor(ctx, b, "the first processed record", func() bool {
		if app.Metrics().RecordsProcessed > 0 {
			began = time.Now()
			return true
		}
		return false
	}, app)
	// Every input record is processed twice: from the input, then from
	// the repartition topic.
	waitFor(ctx, b, "every record processed", func() bool {
		return app.Metrics().RecordsProcessed >= int64(2*n)
	}, app)
	took := time.Since(began)
	adm := br.Admin(b)
	inEnd := lastStableOffsets(ctx, b, adm, tp.Input)[tp.Input]
	repart := ledger.RepartitionTopic(group)
	waitFor(ctx, b, "the group to commit everything", func() bool {
		if !committedAll(ctx, b, adm, group, tp.Input, inEnd) {
			return false
		}
		end := lastStableOffsets(ctx, b, adm, repart)[repart]
		return committedAll(ctx, b, adm, group, repart, end)
	}, app)
	if err := app.stop(b); err != nil {
		b.Fatalf("App: %v", err)
	}
	return took
}
