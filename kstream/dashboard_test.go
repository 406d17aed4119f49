package kstream_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamwork-go/streamwork/kstream"
	"github.com/streamwork-go/streamwork/serde"
)

// getJSON decodes the JSON at url into v.
func getJSON(url string, v any) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// Serve the dashboard under /dashboard/ (a browser shows the page at
// /dashboard/) and read three of the JSON endpoints the page polls.
func ExampleApp_Dashboard() {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "clicks"))
	if err != nil {
		fmt.Println("cluster:", err)
		return
	}
	defer cluster.Close()
	b := kstream.NewBuilder()
	kstream.From(b, "clicks", serde.String, serde.String).
		Peek(func(string, string) {})
	topo, err := b.Build()
	if err != nil {
		fmt.Println("build:", err)
		return
	}
	app, err := kstream.New(topo, kstream.ApplicationID("clicks-app"), kstream.InstanceID("clicks-1"), kstream.Brokers(cluster.ListenAddrs()...))
	if err != nil {
		fmt.Println("new:", err)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx) }()

	// Mount it where the service wants it; a real service binds a loopback
	// address (http.ListenAndServe("127.0.0.1:8080", mux)).
	mux := http.NewServeMux()
	mux.Handle("/dashboard/", http.StripPrefix("/dashboard", app.Dashboard()))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.DefaultProduceTopic("clicks"))
	if err != nil {
		fmt.Println("client:", err)
		return
	}
	defer cl.Close()
	for _, page := range []string{"home", "cart", "home"} {
		if err := cl.ProduceSync(ctx, kgo.StringRecord(page)).FirstErr(); err != nil {
			fmt.Println("produce:", err)
			return
		}
	}

	var topology kstream.TopologyDescription
	if err := getJSON(srv.URL+"/dashboard/api/topology", &topology); err != nil {
		fmt.Println(err)
		return
	}
	for _, n := range topology.Subtopologies[0].Nodes {
		fmt.Println(n.Kind, n.Name)
	}
	var m kstream.Metrics
	for deadline := time.Now().Add(30 * time.Second); m.RecordsProcessed < 3 && time.Now().Before(deadline); {
		if err := getJSON(srv.URL+"/dashboard/api/metrics", &m); err != nil {
			fmt.Println(err)
			return
		}
	}
	fmt.Println("records processed:", m.RecordsProcessed)
	// The whole group, as DescribeApplication gives it (asked again at
	// most every 3 seconds).
	var group struct {
		Group kstream.ApplicationDescription
		Error string
	}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
		if err := getJSON(srv.URL+"/dashboard/api/group", &group); err != nil {
			fmt.Println(err)
			return
		}
		if len(group.Group.Members) == 1 && len(group.Group.Members[0].Tasks) == 2 {
			break
		}
	}
	for _, mb := range group.Group.Members {
		fmt.Println("member", mb.InstanceID, "worker", mb.Worker, "tasks", mb.Tasks)
	}
	cancel()
	if err := <-done; err != nil {
		fmt.Println("run:", err)
	}
	// Output:
	// Source KSTREAM-SOURCE-0000000000
	// Processor KSTREAM-PEEK-0000000001
	// records processed: 3
	// member clicks-1 worker 0 tasks [0_0 0_1]
}

// The dashboard's history is sampled while Run runs and no longer once it
// returned; every Dashboard call returns the same handler.
func TestDashboardHistoryEndsWithRun(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "in"))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	b := kstream.NewBuilder()
	kstream.From(b, "in", serde.String, serde.String).Peek(func(string, string) {})
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	app, err := kstream.New(topo, kstream.ApplicationID("dash-history"), kstream.Brokers(cluster.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	if app.Dashboard() != app.Dashboard() {
		t.Fatal("Dashboard returned two handlers")
	}
	srv := httptest.NewServer(app.Dashboard())
	defer srv.Close()
	type history struct {
		Samples []struct{ Time, Processed int64 }
	}
	var h history
	if err := getJSON(srv.URL+"/api/history", &h); err != nil || len(h.Samples) != 0 {
		t.Fatalf("before Run: %d samples, %v", len(h.Samples), err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx) }()
	deadline := time.Now().Add(30 * time.Second)
	for len(h.Samples) < 2 { // the sampler starts with a request made while Run runs
		if time.Now().After(deadline) {
			t.Fatalf("%d samples after 30s", len(h.Samples))
		}
		if err := getJSON(srv.URL+"/api/history", &h); err != nil {
			t.Fatal(err)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := getJSON(srv.URL+"/api/history", &h); err != nil {
		t.Fatal(err)
	}
	n := len(h.Samples)
	if !slices.IsSortedFunc(h.Samples, func(a, b struct{ Time, Processed int64 }) int { return int(a.Time - b.Time) }) {
		t.Fatalf("samples out of order: %+v", h.Samples)
	}
	// Run returned after the sampler ended (it waits for it): a request
	// now starts nothing and the history stays as it was.
	var again history
	if err := getJSON(srv.URL+"/api/history", &again); err != nil || len(again.Samples) != n {
		t.Fatalf("history changed after Run returned: %d samples, then %d (%v)", n, len(again.Samples), err)
	}
}
