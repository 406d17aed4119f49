// Command step4 is the tutorial's fourth step: each order enriched with its
// customer's row of a table.
//
//	go run ./examples/tutorial/step4
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
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

// snippet:begin customer
// Customer is the value of a record of the customers topic, keyed by
// customer.
type Customer struct {
	Name string `json:"name"`
	Tier string `json:"tier"`
}

// snippet:end customer

// snippet:begin topology
// Topology joins each order with its customer's row as of the order's time and writes a
// line per order, keyed by customer.
func Topology() (*kstream.Topology, error) {
	b := kstream.NewBuilder()
	customers := kstream.TableFrom(b, "customers", serde.String, serde.JSON[Customer](),
		kstream.StoreName("customers"), kstream.Versioned(time.Hour)) // rows as of each order's time
	orders := kstream.From(b, "orders", serde.String, serde.JSON[Order]())
	byCustomer := kstream.SelectKey(orders, func(_ string, o Order) string { return o.Customer })
	enriched := kstream.LeftJoinTable(byCustomer, customers,
		func(_ string, o Order, c *Customer) string {
			if c == nil { // no row for this customer
				return fmt.Sprintf("%s (unknown) bought a %s", o.Customer, o.Item)
			}
			return fmt.Sprintf("%s (%s) bought a %s", c.Name, c.Tier, o.Item)
		},
		kstream.StreamJoined[string, Order, Customer]{
			Key: serde.String, Left: serde.JSON[Order](), Right: serde.JSON[Customer](),
		},
		kstream.Named("with-customer"))
	enriched.To("enriched-orders", serde.String, serde.String)
	return b.Build()
}

// snippet:end topology

func main() {
	var f service.Flags
	f.Register(flag.CommandLine, service.WithEmbeddedBroker())
	service.Main("tutorial-step4", &f, func(ctx context.Context, env service.Env) error {
		return run(ctx, env.Addrs, env.StateDir, env.Logger, env.Out)
	})
}

// run writes the input, runs the App until it has processed it, and prints
// the output topic.
func run(ctx context.Context, addrs []string, stateDir string, logger *slog.Logger, w io.Writer) error {
	topo, err := Topology()
	if err != nil {
		return err
	}
	app, err := kstream.New(topo,
		kstream.ApplicationID("tutorial-step4"),
		kstream.Brokers(addrs...),
		kstream.StateDir(stateDir),
		kstream.CommitInterval(100*time.Millisecond),
		kstream.Logger(logger),
	)
	if err != nil {
		return err
	}
	out, err := harness.Run(ctx, addrs, app, topo, harness.Job{
		AppID:   "tutorial-step4",
		Topics:  []string{"customers", "orders", "enriched-orders"},
		Inputs:  append(append([]harness.Input{}, harness.Customers...), harness.Orders...),
		Outputs: []string{"enriched-orders"},
	})
	if err != nil {
		return err
	}
	for _, r := range out["enriched-orders"] {
		fmt.Fprintf(w, "%s %-5s  %s\n", r.Timestamp.UTC().Format(time.TimeOnly), r.Key, r.Value)
	}
	return nil
}
