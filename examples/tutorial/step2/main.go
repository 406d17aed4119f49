// Command step2 is the tutorial's second step: it re-keys the orders by
// customer, counts them in a store, and queries the store.
//
//	go run ./examples/tutorial/step2
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"time"

	"github.com/streamwork-go/streamwork/examples/service"
	"github.com/streamwork-go/streamwork/examples/tutorial/internal/harness"
	"github.com/streamwork-go/streamwork/kstream"
	"github.com/streamwork-go/streamwork/serde"
)

// Order is the value of a record of the orders topic, keyed by order id.
type Order struct {
	Customer string `json:"customer"`
	Item     string `json:"item"`
	Cents    int64  `json:"cents"`
}

// snippet:begin topology
// Topology counts the orders of each customer in the store
// "orders-per-customer" and writes every new count.
func Topology() (*kstream.Topology, error) {
	b := kstream.NewBuilder()
	orders := kstream.From(b, "orders", serde.String, serde.JSON[Order]())
	byCustomer := kstream.GroupBy(orders, func(_ string, o Order) string { return o.Customer },
		serde.String, serde.JSON[Order](), kstream.Named("by-customer"))
	counts := kstream.Count(byCustomer, kstream.StoreName("orders-per-customer"))
	counts.ToStream().To("order-counts", serde.String, serde.Int64)
	return b.Build()
}

// snippet:end topology

func main() {
	var f service.Flags
	f.Register(flag.CommandLine, service.WithEmbeddedBroker())
	service.Main("tutorial-step2", &f, func(ctx context.Context, env service.Env) error {
		return run(ctx, env.Addrs, env.StateDir, env.Logger, env.Out)
	})
}

// snippet:begin query
// query reads the store of the running App: the instance's own tasks.
func query(app *kstream.App, w io.Writer) error {
	store, err := kstream.QueryStore(app, "orders-per-customer", serde.String, serde.Int64)
	if err != nil {
		return err
	}
	for _, customer := range []string{"alice", "erin"} {
		n, found, err := store.Get(customer)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "query %s: %d orders (found: %v)\n", customer, n, found)
	}
	return nil
}

// snippet:end query

// run writes the input, runs the App until it has processed it, queries
// the store, and prints each customer's last count from the output topic.
func run(ctx context.Context, addrs []string, stateDir string, logger *slog.Logger, w io.Writer) error {
	topo, err := Topology()
	if err != nil {
		return err
	}
	app, err := kstream.New(topo,
		kstream.ApplicationID("tutorial-step2"),
		kstream.Brokers(addrs...),
		kstream.StateDir(stateDir),
		kstream.CommitInterval(100*time.Millisecond),
		kstream.Logger(logger),
	)
	if err != nil {
		return err
	}
	out, err := harness.Run(ctx, addrs, app, topo, harness.Job{
		AppID:   "tutorial-step2",
		Topics:  []string{"orders", "order-counts"},
		Inputs:  harness.Orders,
		Outputs: []string{"order-counts"},
		Query:   func(app *kstream.App) error { return query(app, w) },
	})
	if err != nil {
		return err
	}
	// The record cache may merge updates of a key between commits: the
	// last record of each key is the count.
	last := map[string]int64{}
	var keys []string
	for _, r := range out["order-counts"] {
		n, err := serde.Int64.Deserialize("order-counts", r.Value)
		if err != nil {
			return err
		}
		if _, ok := last[string(r.Key)]; !ok {
			keys = append(keys, string(r.Key))
		}
		last[string(r.Key)] = n
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "%-5s  %d\n", k, last[k])
	}
	return nil
}
