// Command pageviews is Streamwork's quick-start example: a stateless
// topology that cleans a stream of page views, routes them by device and
// writes one summary line per human page view.
//
// With no flags it starts an embedded in-process Kafka broker, so it runs on
// a fresh machine with nothing set up:
//
//	go run ./examples/pageviews
//
// With -brokers (or KAFKA_BROKERS) it uses that cluster instead, for example
// the one docker-compose.yml starts on localhost:9092.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamwork-go/streamwork/examples/service"
	"github.com/streamwork-go/streamwork/kstream"
	"github.com/streamwork-go/streamwork/serde"
)

// PageView is one input event.
type PageView struct {
	User   string `json:"user"`
	Page   string `json:"page"`
	Device string `json:"device"`
	Bot    bool   `json:"bot"`
}

func main() {
	var f service.Flags
	f.Register(flag.CommandLine, service.WithEmbeddedBroker())
	records := flag.Int("records", 12, "how many page views to generate")
	flag.Parse()

	logger := f.Logger(os.Stderr)
	ctx, cancel := service.SignalContext()
	defer cancel()

	addrs, stop, err := service.Brokers(ctx, f.Brokers, logger)
	if err != nil {
		logger.Error("no broker", "err", err)
		os.Exit(1)
	}
	defer stop()
	if err := run(ctx, addrs, *records, fmt.Sprint(time.Now().UnixNano()), logger, os.Stdout); err != nil {
		logger.Error("pageviews failed", "err", err)
		stop()
		os.Exit(1)
	}
}

// Topology builds the example's topology over the given topics.
func Topology(input, output string) (*kstream.Topology, error) {
	b := kstream.NewBuilder()
	views := kstream.From(b, input, serde.String, serde.JSON[PageView](), kstream.Named("page-views"))
	humans := views.FilterNot(func(_ string, v PageView) bool { return v.Bot }, kstream.Named("drop-bots"))
	byDevice := humans.Split("device-",
		kstream.Branch[string, PageView]{Name: "mobile", Pred: func(_ string, v PageView) bool {
			return v.Device == "phone" || v.Device == "tablet"
		}},
		kstream.DefaultBranch[string, PageView]("desktop"),
	)
	mobile := kstream.MapValues(byDevice["mobile"], func(v PageView) string {
		return fmt.Sprintf("%s viewed %s on mobile (%s)", v.User, v.Page, v.Device)
	})
	desktop := kstream.MapValues(byDevice["desktop"], func(v PageView) string {
		return fmt.Sprintf("%s viewed %s on desktop", v.User, v.Page)
	})
	mobile.Merge(desktop).To(output, serde.String, serde.String, kstream.Named("summaries"))
	return b.Build()
}

// views generates n page views; every fourth is a bot.
func views(n int) []PageView {
	users := []string{"alice", "bob", "carol"}
	pages := []string{"/home", "/pricing", "/docs"}
	devices := []string{"phone", "laptop", "tablet", "desktop"}
	out := make([]PageView, n)
	for i := range out {
		out[i] = PageView{User: users[i%3], Page: pages[(i/3)%3], Device: devices[i%4], Bot: i%4 == 3}
	}
	return out
}

// run creates the topics, writes the input, runs the topology until every
// expected summary arrived, prints them sorted, and shuts down.
func run(ctx context.Context, addrs []string, n int, runID string, logger *slog.Logger, w io.Writer) error {
	input, output := "pageviews-"+runID, "pageview-summaries-"+runID
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, 3, 1, nil, input); err != nil {
		return fmt.Errorf("create %s: %w", input, err)
	}
	if _, err := adm.CreateTopic(ctx, 3, 1, nil, output); err != nil {
		return fmt.Errorf("create %s: %w", output, err)
	}

	in := views(n)
	var recs []*kgo.Record
	want := 0
	for _, v := range in {
		b, _ := serde.JSON[PageView]().Serialize(input, v)
		recs = append(recs, &kgo.Record{Topic: input, Key: []byte(v.User), Value: b})
		if !v.Bot {
			want++
		}
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return fmt.Errorf("produce input: %w", err)
	}

	topo, err := Topology(input, output)
	if err != nil {
		return err
	}
	fmt.Fprint(w, topo.Describe())
	app, err := kstream.New(topo,
		kstream.ApplicationID("pageviews-"+runID),
		kstream.Brokers(addrs...),
		kstream.Logger(logger),
		kstream.CommitInterval(200*time.Millisecond),
	)
	if err != nil {
		return err
	}
	appCtx, stopApp := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- app.Run(appCtx) }()

	got, err := readN(ctx, addrs, output, want, done)
	stopApp()
	if runErr := <-done; runErr != nil && err == nil {
		err = runErr
	}
	if err != nil {
		return err
	}
	slices.Sort(got)
	fmt.Fprintf(w, "%d page views in, %d summaries out:\n", len(in), len(got))
	for _, line := range got {
		fmt.Fprintln(w, " ", line)
	}
	m := app.Metrics()
	fmt.Fprintf(w, "processed %d records, produced %d\n", m.RecordsProcessed, m.RecordsProduced)
	return nil
}

// readN consumes topic until n records arrived, the app stopped, or a minute
// passed.
func readN(ctx context.Context, addrs []string, topic string, n int, appDone chan error) ([]string, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var got []string
	for len(got) < n {
		select {
		case err := <-appDone:
			appDone <- err // for the caller, which waits for it
			return nil, fmt.Errorf("app stopped before the output was complete: %v", err)
		default:
		}
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("waiting for %d summaries, have %d: %w", n, len(got), err)
		}
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Key)+": "+string(r.Value)) })
	}
	return got, nil
}
