package kstream_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamwork-go/streamwork/kstream"
	"github.com/streamwork-go/streamwork/serde"
)

// Serve interactive queries over HTTP: each instance advertises its
// QueryAddr and mounts the QueryHandler there; any instance answers any
// key, forwarding to the one that holds it. One instance here, on the
// loopback interface.
func ExampleApp_QueryHandler() {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "page-views"))
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
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println("listen:", err)
		return
	}
	app, err := kstream.New(topo, kstream.ApplicationID("page-views-iq"), kstream.Brokers(brokers...),
		kstream.StoreEngine(kstream.MemoryEngine), kstream.QueryAddr(l.Addr().String()))
	if err != nil {
		fmt.Println("new:", err)
		return
	}
	h, err := app.QueryHandler(kstream.Queryable("views-per-page", serde.String, serde.Int64))
	if err != nil {
		fmt.Println("handler:", err)
		return
	}
	mux := http.NewServeMux()
	mux.Handle("/query/", http.StripPrefix("/query", h))
	srv := &http.Server{Handler: mux}
	served := make(chan struct{})
	go func() { defer close(served); _ = srv.Serve(l) }()
	defer func() { _ = srv.Close(); <-served }()

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
	for _, v := range [][2]string{{"/home", "ann"}, {"/docs", "bob"}, {"/home", "cid"}} {
		recs = append(recs, &kgo.Record{Topic: "page-views", Key: []byte(v[0]), Value: []byte(v[1])})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		fmt.Println("produce:", err)
		return
	}

	// Ask until the answer is in (at most 30 seconds): 503 means retry.
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + l.Addr().String() + path)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for app.Metrics().RecordsProcessed < int64(len(recs)) && time.Now().Before(deadline) {
		<-tick.C
	}
	md, err := kstream.QueryMetadataForKey(app, "views-per-page", "/home", serde.String)
	for err != nil && time.Now().Before(deadline) {
		<-tick.C
		md, err = kstream.QueryMetadataForKey(app, "views-per-page", "/home", serde.String)
	}
	fmt.Println("/home is at this instance:", err == nil && md.Active == l.Addr().String())
	status, body := get("/query/stores/views-per-page/keys/%2Fhome")
	var ans struct {
		Key       string
		Partition int32
		Host      string
		Found     bool
		Value     int64
	}
	if err := json.Unmarshal([]byte(body), &ans); err != nil {
		fmt.Println("answer:", status, body)
		return
	}
	fmt.Println(status, ans.Key, ans.Found, ans.Value, "partition", ans.Partition, "answered here:", ans.Host == md.Active)

	cancel()
	if err := <-done; err != nil {
		fmt.Println("run:", err)
	}
	// Output:
	// /home is at this instance: true
	// 200 /home true 2 partition 0 answered here: true
}
