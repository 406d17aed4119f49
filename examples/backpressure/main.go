// Command backpressure is the backpressure job of stream processing books:
// a source that writes faster than the job can process, and one
// deliberately slow operator (a fixed cost per record), so that the job
// runs at its limit for as long as the source writes.
//
// What it shows: the App never buffers more than
// BufferedRecordsPerPartition records of a partition (-buffer); when a
// partition's buffer is full its fetching pauses, so the records the job
// cannot take yet stay in Kafka, as lag, and memory stays flat; the worker
// is busy all the time (utilization near 100 %, headroom near 0). The
// App learns a partition's end offset from its fetches, so while fetching
// is paused its own lag figure (Metrics.Lag) trails the true lag. At the
// end the example prints a summary from App.Metrics: records produced and
// processed, the lag left, the partitions paused, and the check that every
// record written is either processed or still in Kafka (produced =
// processed + lag, the lag being end offsets minus the offsets the App
// committed when it stopped). With -shed N the source sheds load instead
// of only pausing: a record taken while its partition lags by more than N
// records is dropped (ShedLoad), counted in Metrics.Shed and logged in
// summaries, and the check becomes produced = processed + shed + lag.
//
// While it runs, the App's dashboard is served on -dashboard (loopback,
// 127.0.0.1:8080 by default): open http://127.0.0.1:8080/ to watch the lag
// grow, the partitions pause and the records/s hold at the operator's pace.
//
// With no flags it starts an embedded in-process Kafka broker:
//
//	go run ./examples/backpressure -duration 30s
//
// With -brokers (or KAFKA_BROKERS) it uses that cluster instead. Topic and
// application names end with a run id, so that runs do not see each
// other's records.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamwork-go/streamwork/examples/service"
	"github.com/streamwork-go/streamwork/kstream"
	"github.com/streamwork-go/streamwork/serde"
)

// Config is the example's settings, one per flag.
type Config struct {
	// Duration is how long the source writes (-duration).
	Duration time.Duration
	// Rate is the records per second the source writes; 0 means as fast
	// as the producer can (-rate).
	Rate int
	// Cost is the slow operator's time per record (-cost).
	Cost time.Duration
	// Buffer is BufferedRecordsPerPartition (-buffer).
	Buffer int
	// Partitions of the input topic (-partitions).
	Partitions int
	// Dashboard is the address the dashboard is served on, empty for none
	// (-dashboard).
	Dashboard string
	// Shed, when positive, turns on load shedding at the source: a record
	// taken for processing while its partition lags by more than Shed
	// records is dropped, counted and logged instead (-shed; ShedLoad
	// with MaxLag).
	Shed int64
}

func main() {
	var f service.Flags
	f.Register(flag.CommandLine, service.WithEmbeddedBroker())
	var cfg Config
	flag.DurationVar(&cfg.Duration, "duration", 20*time.Second, "how long the source writes")
	flag.IntVar(&cfg.Rate, "rate", 0, "records per second the source writes; 0: as fast as it can")
	flag.DurationVar(&cfg.Cost, "cost", time.Millisecond, "the slow operator's time per record")
	flag.IntVar(&cfg.Buffer, "buffer", 100, "records buffered per partition at most (BufferedRecordsPerPartition)")
	flag.IntVar(&cfg.Partitions, "partitions", 3, "partitions of the input topic")
	flag.Int64Var(&cfg.Shed, "shed", 0, "drop records while their partition lags by more than this many records (load shedding); 0: pause fetching only")
	flag.StringVar(&cfg.Dashboard, "dashboard", "127.0.0.1:8080", "address to serve the dashboard on (keep it loopback); empty: none")
	service.Main("backpressure", &f, func(ctx context.Context, env service.Env) error {
		return run(ctx, env.Addrs, cfg, env.RunID, env.StateDir, env.Logger, env.Out)
	})
}

// run writes to the input for cfg.Duration while the App processes it,
// then stops both and prints the summary.
func run(ctx context.Context, addrs []string, cfg Config, runID, stateDir string, logger *slog.Logger, w io.Writer) error {
	if cfg.Duration <= 0 || cfg.Cost < 0 || cfg.Buffer <= 0 || cfg.Partitions <= 0 || cfg.Rate < 0 {
		return fmt.Errorf("backpressure: need -duration > 0, -cost >= 0, -buffer > 0, -partitions > 0, -rate >= 0")
	}
	input, output := "bp-input-"+runID, "bp-output-"+runID
	appID := "backpressure-" + runID
	logger.Info("backpressure topics", "input", input, "output", output, "application_id", appID)
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.DefaultProduceTopic(input))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, int32(cfg.Partitions), 1, nil, input); err != nil {
		return fmt.Errorf("create %s: %w", input, err)
	}
	if _, err := adm.CreateTopic(ctx, int32(cfg.Partitions), 1, nil, output); err != nil {
		return fmt.Errorf("create %s: %w", output, err)
	}

	op := &slowOperator{cost: cfg.Cost}
	b := kstream.NewBuilder()
	var srcOpts []kstream.NodeOpt
	if cfg.Shed > 0 {
		srcOpts = append(srcOpts, kstream.ShedLoad(kstream.ShedPolicy{MaxLag: cfg.Shed}))
	}
	kstream.From(b, input, serde.String, serde.String, srcOpts...).
		Peek(op.process, kstream.Named("slow-operator")).
		To(output, serde.String, serde.String)
	topo, err := b.Build()
	if err != nil {
		return err
	}
	app, err := kstream.New(topo,
		kstream.ApplicationID(appID),
		kstream.Brokers(addrs...),
		kstream.Logger(logger),
		kstream.StateDir(stateDir),
		kstream.BufferedRecordsPerPartition(cfg.Buffer),
		kstream.CommitInterval(200*time.Millisecond),
	)
	if err != nil {
		return err
	}

	stopDashboard, err := serveDashboard(cfg.Dashboard, app, logger, w)
	if err != nil {
		return err
	}
	defer stopDashboard()

	appCtx, stopApp := context.WithCancel(ctx)
	defer stopApp()
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- app.Run(appCtx) }()

	produced, prodErr := produce(ctx, cl, input, cfg)
	elapsed := time.Since(start)
	atEnd := app.Metrics() // before the stop: what the App saw while running
	stopApp()
	if err := <-done; err != nil {
		return err
	}
	ran := time.Since(start)
	if prodErr != nil && ctx.Err() == nil {
		return prodErr
	}
	final := app.Metrics()
	lag, err := groupLag(ctx, adm, appID, input)
	if err != nil {
		return err
	}
	writeSummary(w, summary{cfg: cfg, elapsed: elapsed, ran: ran, produced: produced, atEnd: atEnd, final: final,
		lag: lag, busy: op.busy()})
	return nil
}

// slowOperator takes cost per record, and keeps how long it took in all.
type slowOperator struct {
	cost  time.Duration
	total atomic.Int64 // nanoseconds spent in process
}

// process is the operator: a fixed cost, spent sleeping (the worker is
// busy either way: it takes the next record only after this one).
func (o *slowOperator) process(string, string) {
	t := time.Now()
	time.Sleep(o.cost)
	o.total.Add(int64(time.Since(t)))
}

func (o *slowOperator) busy() time.Duration { return time.Duration(o.total.Load()) }

// produce writes records to topic for cfg.Duration, at cfg.Rate or as fast
// as the client takes them, and returns how many Kafka acknowledged. It
// returns once every record written has its answer.
func produce(ctx context.Context, cl *kgo.Client, topic string, cfg Config) (int64, error) {
	var (
		acked   atomic.Int64
		errOnce sync.Once
		failure error
	)
	promise := func(_ *kgo.Record, err error) {
		if err == nil {
			acked.Add(1)
			return
		}
		errOnce.Do(func() { failure = err })
	}
	// Rate: a batch every 10ms; full speed: one record at a time, Produce
	// blocking while the client's buffer is full.
	var tick <-chan time.Time
	perTick := 1
	if cfg.Rate > 0 {
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		tick, perTick = t.C, max(1, cfg.Rate/100)
	}
	ts := time.Now().Add(-time.Hour) // event time an hour back, as for a replay
	deadline := time.Now().Add(cfg.Duration)
	for i := 0; ctx.Err() == nil && time.Now().Before(deadline); {
		if tick != nil {
			select {
			case <-ctx.Done():
				continue
			case <-tick:
			}
		}
		for range perTick {
			key := "sensor-" + strconv.Itoa(i%64)
			cl.Produce(ctx, &kgo.Record{Topic: topic, Key: []byte(key), Value: []byte(strconv.Itoa(i)), Timestamp: ts}, promise)
			i++
		}
	}
	if err := cl.Flush(context.WithoutCancel(ctx)); err != nil {
		return acked.Load(), err
	}
	return acked.Load(), failure
}

// groupLag returns the records of topic the application group has not
// committed: end offsets minus committed offsets, summed.
func groupLag(ctx context.Context, adm *kadm.Client, group, topic string) (int64, error) {
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return 0, fmt.Errorf("end offsets of %s: %w", topic, err)
	}
	committed, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return 0, fmt.Errorf("offsets of %s: %w", group, err)
	}
	var lag int64
	ends.Each(func(e kadm.ListedOffset) {
		at := int64(0)
		if o, ok := committed.Lookup(e.Topic, e.Partition); ok && o.Err == nil && o.At >= 0 {
			at = o.At
		}
		lag += e.Offset - at
	})
	return lag, nil
}

// serveDashboard serves the App's dashboard on addr until the returned
// function is called; with an empty addr it serves nothing.
func serveDashboard(addr string, app *kstream.App, logger *slog.Logger, w io.Writer) (stop func(), err error) {
	if addr == "" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dashboard: %w", err)
	}
	if ip := ln.Addr().(*net.TCPAddr).IP; !ip.IsLoopback() {
		logger.Warn("the dashboard is served on a non-loopback address; it has no authentication", "addr", ln.Addr().String())
	}
	mux := http.NewServeMux()
	mux.Handle("/", app.Dashboard())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	served := make(chan struct{})
	go func() {
		defer close(served)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("dashboard server", "err", err)
		}
	}()
	fmt.Fprintf(w, "dashboard: http://%s/\n", ln.Addr())
	return func() {
		_ = srv.Close()
		<-served
	}, nil
}

// summary is what writeSummary prints.
type summary struct {
	cfg      Config
	elapsed  time.Duration // the source's time
	ran      time.Duration // the App's, from Run to its return
	produced int64
	atEnd    kstream.Metrics // taken as the source stopped, the App running
	final    kstream.Metrics // taken after the App stopped
	lag      int64           // end offsets minus committed offsets
	busy     time.Duration   // the slow operator's time
}

func writeSummary(w io.Writer, s summary) {
	rate := "as fast as it could"
	if s.cfg.Rate > 0 {
		rate = fmt.Sprintf("at %d records/s", s.cfg.Rate)
	}
	secs, ran := s.elapsed.Seconds(), s.ran.Seconds()
	processed := s.final.RecordsProcessed
	fmt.Fprintf(w, "source: %d partitions, written %s for %s; slow operator: %s a record; buffer: %d records a partition\n",
		s.cfg.Partitions, rate, s.elapsed.Round(time.Millisecond), s.cfg.Cost, s.cfg.Buffer)
	fmt.Fprintf(w, "produced:  %d records (%.0f/s)\n", s.produced, float64(s.produced)/secs)
	fmt.Fprintf(w, "processed: %d records (%.0f/s over the App's %s)\n", processed, float64(processed)/ran, s.ran.Round(time.Millisecond))
	fmt.Fprintf(w, "lag:       %d records left in Kafka (end offsets - committed offsets); the App last saw %d\n",
		s.lag, lagSum(s.atEnd))
	check := "holds"
	if s.produced != processed+s.final.Shed+s.lag {
		check = "DOES NOT HOLD"
	}
	if s.cfg.Shed > 0 {
		fmt.Fprintf(w, "shed:      %d records dropped by load shedding (partition lag over %d)\n", s.final.Shed, s.cfg.Shed)
		fmt.Fprintf(w, "produced = processed + shed + lag: %d = %d + %d + %d (%s)\n", s.produced, processed, s.final.Shed, s.lag, check)
	} else {
		fmt.Fprintf(w, "produced = processed + lag: %d = %d + %d (%s)\n", s.produced, processed, s.lag, check)
	}
	fmt.Fprintf(w, "paused:    %d partitions paused as the source stopped, %d at most (fetching stops while a buffer is full)\n",
		s.atEnd.Paused, s.final.MaxPaused)
	fmt.Fprintf(w, "operator:  busy %.0f%% of the App's time (%s in %d records)\n",
		100*min(1, s.busy.Seconds()/ran), s.busy.Round(time.Millisecond), processed)
	for _, wm := range s.atEnd.Workers {
		fmt.Fprintf(w, "worker %d:  utilization %.0f%%, headroom %.0f%%, %.0f records/s\n",
			wm.Worker, 100*wm.Utilization, 100*wm.Headroom, wm.RecordsPerSecond)
	}
	for _, n := range s.atEnd.Nodes {
		fmt.Fprintf(w, "node %s: %.0f records/s, utilization %.0f%%\n", n.Name, n.RecordsPerSecond, 100*n.Utilization)
	}
}

// lagSum sums the lag of every partition of m.
func lagSum(m kstream.Metrics) int64 {
	var n int64
	for _, ps := range m.Lag {
		for _, l := range ps {
			n += l
		}
	}
	return n
}
