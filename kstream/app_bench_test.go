package kstream_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamwork-go/streamwork/kstream"
	"github.com/streamwork-go/streamwork/serde"
)

// BenchmarkAppThroughput runs a whole App (one worker) on the in-process
// broker over b.N pre-produced records through Filter, MapValues and a sink,
// and reports records per second from the first record to the last commit.
// It measures the runtime with the broker in the same process, so the
// figure is a relative one (for comparing changes), not a production one.
func BenchmarkAppThroughput(b *testing.B) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, "in", "out"))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ProducerLinger(time.Millisecond))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	val, _ := serde.Int64.Serialize("in", 21)
	const batch = 10_000
	for i := 0; i < b.N; i += batch {
		recs := make([]*kgo.Record, 0, batch)
		for j := i; j < min(i+batch, b.N); j++ {
			recs = append(recs, &kgo.Record{Topic: "in", Key: []byte(fmt.Sprint("user-", j%1000)), Value: val})
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			b.Fatal(err)
		}
	}

	bl := kstream.NewBuilder()
	s := kstream.From(bl, "in", serde.String, serde.Int64).Filter(func(_ string, v int64) bool { return v > 0 })
	kstream.MapValues(s, func(v int64) int64 { return v * 2 }).To("out", serde.String, serde.Int64)
	topo, err := bl.Build()
	if err != nil {
		b.Fatal(err)
	}
	app, err := kstream.New(topo, kstream.ApplicationID("bench"), kstream.Brokers(c.ListenAddrs()...),
		kstream.CommitInterval(100*time.Millisecond), kstream.StateDir(b.TempDir()))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- app.Run(runCtx) }()
	deadline := time.Now().Add(5 * time.Minute)
	for app.Metrics().RecordsProduced < int64(b.N) {
		if time.Now().After(deadline) {
			b.Fatalf("produced %d of %d", app.Metrics().RecordsProduced, b.N)
		}
		select {
		case err := <-done:
			b.Fatalf("Run returned early: %v", err)
		case <-time.After(5 * time.Millisecond):
		}
	}
	elapsed := time.Since(start)
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "records/s")
}
