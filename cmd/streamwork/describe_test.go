package main

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamwork-go/streamwork/kstream"
	"github.com/streamwork-go/streamwork/serde"
)

// describe -url against a running App: the word count runs on an
// in-process broker with its dashboard served on loopback, and the command
// prints exactly the App's Describe, as text and as Mermaid.
func TestDescribeLiveApp(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "lines", "counts"))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	b := kstream.NewBuilder()
	words := kstream.From(b, "lines", serde.String, serde.String, kstream.Named("lines"))
	kstream.Count(kstream.GroupBy(words, func(_, v string) string { return v }, serde.String, serde.String, kstream.Named("by-word")),
		kstream.Named("counts")).
		ToStream().
		To("counts", serde.String, serde.Int64)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	app, err := kstream.New(topo,
		kstream.ApplicationID("describe-live"), kstream.Brokers(cluster.ListenAddrs()...),
		kstream.StateDir(t.TempDir()), kstream.Logger(slog.New(slog.DiscardHandler)),
		kstream.ClientOpts(kgo.HeartbeatInterval(50*time.Millisecond), kgo.FetchMaxWait(100*time.Millisecond)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx) }()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("Run did not return after cancel")
		}
	}()

	mux := http.NewServeMux()
	mux.Handle("/streamwork/", http.StripPrefix("/streamwork", app.Dashboard()))
	srv := httptest.NewServer(mux) // 127.0.0.1:PORT
	defer srv.Close()

	// Running: its tasks are assigned (2 partitions, 2 sub-topologies).
	deadline := time.Now().Add(30 * time.Second)
	for len(app.Metrics().Tasks) != 4 {
		if time.Now().After(deadline) {
			t.Fatalf("the App has tasks %v after 30s, want 4", app.Metrics().Tasks)
		}
		select {
		case err := <-done:
			t.Fatalf("Run returned %v", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	d := topo.Describe()
	for format, want := range map[string]string{"text": d.String(), "mermaid": d.Mermaid()} {
		code, out, stderr := runArgs("describe", "-url", srv.URL+"/streamwork/", "-format", format)
		if code != exitOK || out != want {
			t.Errorf("describe -url -format %s: code %d stderr %q\n got %q\nwant %q", format, code, stderr, out, want)
		}
	}
}
