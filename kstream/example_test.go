package kstream_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamwork-go/streamwork/kstream"
	"github.com/streamwork-go/streamwork/kstream/kstreamtest"
	"github.com/streamwork-go/streamwork/serde"
)

// Build a stateless topology (a source, a filter, a value mapper and a
// sink) and print its description. Unnamed operators get generated names,
// numbered in the order of the DSL calls.
func ExampleNewBuilder() {
	b := kstream.NewBuilder()
	orders := kstream.From(b, "orders", serde.String, serde.Int64)
	big := orders.Filter(func(_ string, cents int64) bool { return cents >= 10000 })
	kstream.MapValues(big, func(cents int64) string { return fmt.Sprintf("%d.%02d", cents/100, cents%100) }).
		To("big-orders", serde.String, serde.String)
	topo, err := b.Build()
	if err != nil {
		fmt.Println("build:", err)
		return
	}
	fmt.Print(topo.Describe())
	// Output:
	// Topologies:
	//    Sub-topology: 0
	//     Source: KSTREAM-SOURCE-0000000000 (topics: [orders])
	//       --> KSTREAM-FILTER-0000000001
	//     Processor: KSTREAM-FILTER-0000000001 (stores: [])
	//       --> KSTREAM-MAPVALUES-0000000002
	//       <-- KSTREAM-SOURCE-0000000000
	//     Processor: KSTREAM-MAPVALUES-0000000002 (stores: [])
	//       --> KSTREAM-SINK-0000000003
	//       <-- KSTREAM-FILTER-0000000001
	//     Sink: KSTREAM-SINK-0000000003 (topic: big-orders)
	//       <-- KSTREAM-MAPVALUES-0000000002
}

// Run an App against a broker: here an in-process fake Kafka cluster
// (github.com/twmb/franz-go/pkg/kfake), in production the cluster that
// Brokers names. The App reads "orders", keeps the orders of 100.00 or
// more and writes them to "big-orders", until its context is cancelled.
func ExampleNew() {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "orders", "big-orders"))
	if err != nil {
		fmt.Println("cluster:", err)
		return
	}
	defer cluster.Close()
	brokers := cluster.ListenAddrs()

	b := kstream.NewBuilder()
	kstream.From(b, "orders", serde.String, serde.Int64).
		Filter(func(_ string, cents int64) bool { return cents >= 10000 }).
		To("big-orders", serde.String, serde.Int64)
	topo, err := b.Build()
	if err != nil {
		fmt.Println("build:", err)
		return
	}
	app, err := kstream.New(topo, kstream.ApplicationID("big-orders-app"), kstream.Brokers(brokers...))
	if err != nil {
		fmt.Println("new:", err)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx) }()

	// Write a few orders (customer => amount in cents).
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...),
		kgo.ConsumeTopics("big-orders"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		fmt.Println("client:", err)
		return
	}
	defer cl.Close()
	var recs []*kgo.Record
	for _, o := range []struct {
		customer string
		cents    int64
	}{{"ann", 2500}, {"bob", 12000}, {"cid", 9999}, {"ann", 30000}} {
		v, _ := serde.Int64.Serialize("orders", o.cents)
		recs = append(recs, &kgo.Record{Topic: "orders", Key: []byte(o.customer), Value: v})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		fmt.Println("produce:", err)
		return
	}

	// Read the two expected outputs, waiting at most 30 seconds.
	wait, waitDone := context.WithTimeout(ctx, 30*time.Second)
	defer waitDone()
	var out []*kgo.Record
	for len(out) < 2 {
		fs := cl.PollFetches(wait)
		if wait.Err() != nil {
			fmt.Printf("timed out with %d outputs\n", len(out))
			break
		}
		fs.EachError(func(topic string, p int32, err error) { fmt.Println("fetch:", topic, p, err) })
		out = append(out, fs.Records()...)
	}
	for _, r := range out {
		cents, err := serde.Int64.Deserialize(r.Topic, r.Value)
		if err != nil {
			fmt.Println("decode:", err)
			continue
		}
		fmt.Printf("%s %s %d\n", r.Topic, r.Key, cents)
	}

	// Stop the App: it commits what it processed and leaves the group.
	cancel()
	if err := <-done; err != nil {
		fmt.Println("run:", err)
	}
	fmt.Println("stopped")
	// Output:
	// big-orders bob 12000
	// big-orders ann 30000
	// stopped
}

// Word count: GroupBy re-keys each word by itself (through a repartition
// topic), Count counts each word, and ToStream turns the count updates into
// a stream. Run in process with kstreamtest, which flushes the record cache
// after every input record, so each record shows its updates.
func ExampleGroupBy() {
	b := kstream.NewBuilder()
	lines := kstream.From(b, "lines", serde.String, serde.String)
	words := kstream.FlatMapValues(lines, func(line string) []string { return strings.Fields(strings.ToLower(line)) })
	grouped := kstream.GroupBy(words, func(_, word string) string { return word }, serde.String, serde.String)
	kstream.Count(grouped, kstream.StoreName("word-counts")).
		ToStream().
		To("word-counts", serde.String, serde.Int64)
	topo, err := b.Build()
	if err != nil {
		fmt.Println("build:", err)
		return
	}

	d, err := kstreamtest.New(topo)
	if err != nil {
		fmt.Println("driver:", err)
		return
	}
	defer d.Close()
	in := kstreamtest.Input(d, "lines", serde.String, serde.String)
	out := kstreamtest.Output(d, "word-counts", serde.String, serde.Int64)
	for i, line := range []string{"The cat", "the dog", "A cat and a dog"} {
		if err := in.Pipe(fmt.Sprintf("line-%d", i), line, time.UnixMilli(int64(1000*i))); err != nil {
			fmt.Println("pipe:", err)
			return
		}
	}
	for _, kv := range out.KeyValues() {
		fmt.Println(kv.Key, kv.Value)
	}
	// Output:
	// the 1
	// cat 1
	// the 2
	// dog 1
	// a 1
	// cat 2
	// and 1
	// a 2
	// dog 2
}

// Count the clicks of each user. The stream is keyed by user already, so
// GroupByKey groups it without a repartition topic. The counts of the
// table are read after the last record from its update stream.
func ExampleCount() {
	b := kstream.NewBuilder()
	clicks := kstream.From(b, "clicks", serde.String, serde.String) // user => page
	counts := kstream.Count(kstream.GroupByKey(clicks, serde.String, serde.String), kstream.StoreName("clicks-per-user"))
	counts.ToStream().To("clicks-per-user", serde.String, serde.Int64)
	topo, err := b.Build()
	if err != nil {
		fmt.Println("build:", err)
		return
	}

	d, err := kstreamtest.New(topo)
	if err != nil {
		fmt.Println("driver:", err)
		return
	}
	defer d.Close()
	in := kstreamtest.Input(d, "clicks", serde.String, serde.String)
	out := kstreamtest.Output(d, "clicks-per-user", serde.String, serde.Int64)
	for i, c := range [][2]string{{"ann", "/"}, {"bob", "/"}, {"ann", "/cart"}, {"ann", "/pay"}, {"bob", "/help"}} {
		if err := in.Pipe(c[0], c[1], time.UnixMilli(int64(1000*i))); err != nil {
			fmt.Println("pipe:", err)
			return
		}
	}
	latest := map[string]int64{}
	for _, kv := range out.KeyValues() {
		latest[kv.Key] = kv.Value
	}
	fmt.Println("ann", latest["ann"])
	fmt.Println("bob", latest["bob"])
	// Output:
	// ann 3
	// bob 2
}

// Read a topic as a table: each record upserts its key, a tombstone (a
// record with a null value) deletes it. ToStream shows the table's updates;
// a deletion comes out as a tombstone.
func ExampleTableFrom() {
	b := kstream.NewBuilder()
	regions := kstream.TableFrom(b, "user-regions", serde.String, serde.String, kstream.StoreName("user-regions"))
	kstream.TableMapValues(regions, func(_, region string) string { return strings.ToUpper(region) }).
		ToStream().
		To("user-regions-upper", serde.String, serde.String)
	topo, err := b.Build()
	if err != nil {
		fmt.Println("build:", err)
		return
	}

	d, err := kstreamtest.New(topo)
	if err != nil {
		fmt.Println("driver:", err)
		return
	}
	defer d.Close()
	in := kstreamtest.Input(d, "user-regions", serde.String, serde.String)
	out := kstreamtest.Output(d, "user-regions-upper", serde.String, serde.String)
	ts := time.UnixMilli(1000)
	_ = in.Pipe("ann", "eu", ts)
	_ = in.Pipe("bob", "us", ts)
	_ = in.Pipe("ann", "apac", ts)
	_ = in.PipeTombstone("bob", ts)
	recs, err := out.Records()
	if err != nil {
		fmt.Println("output:", err)
		return
	}
	for _, r := range recs {
		if r.Tombstone {
			fmt.Println(r.Key, "deleted")
			continue
		}
		fmt.Println(r.Key, r.Value)
	}
	// Output:
	// ann EU
	// bob US
	// ann APAC
	// bob deleted
}

// Query the local state of a running App (interactive queries): count page
// views per page into the store "views-per-page", wait until the App has
// processed the input, then read the counts. The App runs against an
// in-process fake Kafka cluster, with its stores in memory.
func ExampleQueryStore() {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "page-views"))
	if err != nil {
		fmt.Println("cluster:", err)
		return
	}
	defer cluster.Close()
	brokers := cluster.ListenAddrs()

	b := kstream.NewBuilder()
	views := kstream.From(b, "page-views", serde.String, serde.String) // page => user
	kstream.Count(kstream.GroupByKey(views, serde.String, serde.String), kstream.StoreName("views-per-page"))
	topo, err := b.Build()
	if err != nil {
		fmt.Println("build:", err)
		return
	}
	app, err := kstream.New(topo, kstream.ApplicationID("page-views-app"), kstream.Brokers(brokers...),
		kstream.StoreEngine(kstream.MemoryEngine))
	if err != nil {
		fmt.Println("new:", err)
		return
	}
	counts, err := kstream.QueryStore(app, "views-per-page", serde.String, serde.Int64)
	if err != nil {
		fmt.Println("query:", err)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx) }()

	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		fmt.Println("client:", err)
		return
	}
	defer cl.Close()
	var recs []*kgo.Record
	for _, v := range [][2]string{{"/home", "ann"}, {"/docs", "bob"}, {"/home", "cid"}, {"/home", "bob"}, {"/docs", "ann"}} {
		recs = append(recs, &kgo.Record{Topic: "page-views", Key: []byte(v[0]), Value: []byte(v[1])})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		fmt.Println("produce:", err)
		return
	}

	// Wait, at most 30 seconds, until the App has processed the five views.
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for app.Metrics().RecordsProcessed < int64(len(recs)) && time.Now().Before(deadline) {
		<-tick.C
	}
	for _, page := range []string{"/home", "/docs", "/blog"} {
		n, ok, err := counts.Get(page)
		switch {
		case err != nil:
			fmt.Println(page, "error:", err)
		case !ok:
			fmt.Println(page, "not found")
		default:
			fmt.Println(page, n)
		}
	}

	cancel()
	if err := <-done; err != nil {
		fmt.Println("run:", err)
	}
	// Output:
	// /home 3
	// /docs 2
	// /blog not found
}

// Parse a delivery guarantee from configuration: the names String returns
// and Kafka Streams' processing.guarantee values. DeliveryGuarantee is an
// encoding.TextUnmarshaler, so flag.TextVar reads it from a command line.
func ExampleParseDeliveryGuarantee() {
	for _, s := range []string{"at-least-once", "exactly_once_v2", "AT-MOST-ONCE", "sometimes"} {
		g, err := kstream.ParseDeliveryGuarantee(s)
		if err != nil {
			fmt.Printf("%q: error (ErrConfig: %v)\n", s, errors.Is(err, kstream.ErrConfig))
			continue
		}
		fmt.Printf("%q: %v\n", s, g)
	}

	var g kstream.DeliveryGuarantee
	fs := flag.NewFlagSet("app", flag.ContinueOnError)
	fs.TextVar(&g, "guarantee", kstream.AtLeastOnce, "delivery guarantee")
	if err := fs.Parse([]string{"-guarantee", "exactly-once"}); err != nil {
		fmt.Println("flags:", err)
		return
	}
	fmt.Println("flag:", g, g == kstream.ExactlyOnce)
	// Output:
	// "at-least-once": at-least-once
	// "exactly_once_v2": exactly-once
	// "AT-MOST-ONCE": at-most-once
	// "sometimes": error (ErrConfig: true)
	// flag: exactly-once true
}

// Clicks per user per minute, emitted once per window when it closes (its
// end plus 10 seconds of grace): a tumbling windowed count with EmitFinal.
// The click at 00:30 that arrives after stream time reached 01:10 is late
// for [00:00, 01:00): dropped and counted. The click at 02:10 closes
// [01:00, 02:00).
func ExampleWindowedCount() {
	b := kstream.NewBuilder()
	clicks := kstream.From(b, "clicks", serde.String, serde.String)
	perMinute := kstream.WindowedCount(
		kstream.WindowedBy(kstream.GroupByKey(clicks, serde.String, serde.String),
			kstream.Tumbling(time.Minute, 10*time.Second)),
		kstream.EmitFinal())
	perMinute.ToStream().To("clicks-per-minute", kstream.TimeWindowedSerde(serde.String, time.Minute), serde.Int64)
	topo, err := b.Build()
	if err != nil {
		fmt.Println("build:", err)
		return
	}
	d, err := kstreamtest.New(topo)
	if err != nil {
		fmt.Println("driver:", err)
		return
	}
	defer d.Close()
	in := kstreamtest.Input(d, "clicks", serde.String, serde.String)
	for _, c := range []struct {
		user string
		at   time.Duration
	}{{"ann", 5 * time.Second}, {"bob", 20 * time.Second}, {"ann", 50 * time.Second},
		{"ann", 65 * time.Second}, {"bob", 70 * time.Second}, {"ann", 30 * time.Second}, {"bob", 130 * time.Second}} {
		if err := in.Pipe(c.user, "/home", time.UnixMilli(c.at.Milliseconds())); err != nil {
			fmt.Println("pipe:", err)
			return
		}
	}
	recs, err := kstreamtest.Output(d, "clicks-per-minute", kstream.TimeWindowedSerde(serde.String, time.Minute), serde.Int64).Records()
	if err != nil {
		fmt.Println("output:", err)
		return
	}
	for _, r := range recs {
		fmt.Printf("%s [%v, %v) %d\n", r.Key.Key, time.Duration(r.Key.Start)*time.Millisecond, time.Duration(r.Key.End)*time.Millisecond, r.Value)
	}
	fmt.Println("late:", d.Metrics().LateRecords)
	// Output:
	// ann [0s, 1m0s) 2
	// bob [0s, 1m0s) 1
	// ann [1m0s, 2m0s) 1
	// bob [1m0s, 2m0s) 1
	// late: 1
}

// StandbyReplicas and the warm-up options configure how an App scales out:
// one standby copy of each stateful task on another instance, warm-ups of at
// most 2 tasks at a time, probing rebalances every 5 minutes while they
// warm up. Options are checked by New.
func ExampleStandbyReplicas() {
	b := kstream.NewBuilder()
	kstream.Count(kstream.GroupByKey(kstream.From(b, "clicks", serde.String, serde.String), serde.String, serde.String)).
		ToStream().To("click-counts", serde.String, serde.Int64)
	topo, err := b.Build()
	if err != nil {
		fmt.Println("build:", err)
		return
	}
	_, err = kstream.New(topo, kstream.ApplicationID("clicks-app"), kstream.Brokers("localhost:9092"),
		kstream.StandbyReplicas(1),
		kstream.MaxWarmupReplicas(2),
		kstream.AcceptableRecoveryLag(10000),
		kstream.ProbingRebalanceInterval(5*time.Minute))
	fmt.Println("valid:", err == nil)
	_, err = kstream.New(topo, kstream.ApplicationID("clicks-app"), kstream.Brokers("localhost:9092"), kstream.StandbyReplicas(-1))
	fmt.Println(err)
	// Output:
	// valid: true
	// kstream: invalid configuration: StandbyReplicas(-1) must be between 0 and 16
}
