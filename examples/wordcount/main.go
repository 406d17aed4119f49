// Command wordcount counts words in a stream of lines: the classic stateful
// stream-processing example. Lines are split into words, regrouped by word
// (through a repartition topic), counted in a state store backed by a
// changelog topic, and every count update is written to an output topic.
// It also answers a few queries from its local store.
//
// With no flags it starts an embedded in-process Kafka broker:
//
//	go run ./examples/wordcount
//
// With -brokers (or KAFKA_BROKERS) it uses that cluster instead.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamwork-go/streamwork/examples/service"
	"github.com/streamwork-go/streamwork/kstream"
	"github.com/streamwork-go/streamwork/serde"
)

var text = []string{
	"the quick brown fox jumps over the lazy dog",
	"the dog barks",
	"a quick brown dog",
	"foxes and dogs are not the same",
}

func main() {
	var f service.Flags
	f.Register(flag.CommandLine, service.WithEmbeddedBroker())
	service.Main("wordcount", &f, func(ctx context.Context, env service.Env) error {
		return run(ctx, env.Addrs, env.RunID, env.StateDir, env.Logger, env.Out)
	})
}

// Topology counts the words of input and writes each new count to output.
func Topology(input, output string) (*kstream.Topology, error) {
	b := kstream.NewBuilder()
	lines := kstream.From(b, input, serde.String, serde.String, kstream.Named("lines"))
	words := kstream.FlatMapValues(lines, func(line string) []string {
		return strings.Fields(strings.ToLower(line))
	}, kstream.Named("split-words"))
	byWord := kstream.GroupBy(words, func(_, w string) string { return w }, serde.String, serde.String, kstream.Named("words-by-word"))
	counts := kstream.Count(byWord, kstream.Named("count"), kstream.StoreName("word-counts"))
	counts.ToStream(kstream.Named("count-updates")).To(output, serde.String, serde.Int64, kstream.Named("counts-out"))
	return b.Build()
}

// run writes the text, counts it until every word's final count arrived,
// prints the counts, and queries the store.
func run(ctx context.Context, addrs []string, runID, stateDir string, logger *slog.Logger, w io.Writer) error {
	input, output := "lines-"+runID, "word-counts-"+runID
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	for _, tp := range []string{input, output} {
		if _, err := adm.CreateTopic(ctx, 2, 1, nil, tp); err != nil {
			return fmt.Errorf("create %s: %w", tp, err)
		}
	}
	want := map[string]int64{}
	var recs []*kgo.Record
	for i, line := range text {
		for _, word := range strings.Fields(line) {
			want[word]++
		}
		recs = append(recs, &kgo.Record{Topic: input, Key: []byte(fmt.Sprint("line-", i)), Value: []byte(line)})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return fmt.Errorf("produce: %w", err)
	}

	topo, err := Topology(input, output)
	if err != nil {
		return err
	}
	app, err := kstream.New(topo,
		kstream.ApplicationID("wordcount-"+runID),
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

	got, err := readCounts(ctx, addrs, output, want, done)
	if err == nil {
		err = query(app, w)
	}
	stopApp()
	if runErr := <-done; runErr != nil && err == nil {
		err = runErr
	}
	if err != nil {
		return err
	}
	words := make([]string, 0, len(got))
	for word := range got {
		words = append(words, word)
	}
	slices.Sort(words)
	fmt.Fprintf(w, "%d lines, %d distinct words:\n", len(text), len(words))
	for _, word := range words {
		fmt.Fprintf(w, "  %-6s %d\n", word, got[word])
	}
	return nil
}

// readCounts reads count updates until every word's count reached want.
func readCounts(ctx context.Context, addrs []string, topic string, want map[string]int64, appDone chan error) (map[string]int64, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	got := map[string]int64{}
	done := func() bool {
		for word, n := range want {
			if got[word] != n {
				return false
			}
		}
		return true
	}
	for !done() {
		select {
		case err := <-appDone:
			appDone <- err // for the caller, which waits for it
			return nil, fmt.Errorf("app stopped before the counts were complete: %v", err)
		default:
		}
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("waiting for counts: %w", err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			n, err := serde.Int64.Deserialize(topic, r.Value)
			if err == nil {
				got[string(r.Key)] = n
			}
		})
	}
	return got, nil
}

// query reads the local store the way a service answering requests would.
func query(app *kstream.App, w io.Writer) error {
	store, err := kstream.QueryStore(app, "word-counts", serde.String, serde.Int64)
	if err != nil {
		return err
	}
	for _, word := range []string{"the", "dog", "cat"} {
		n, ok, err := store.Get(word)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "query %q: count=%d found=%v\n", word, n, ok)
	}
	return nil
}
