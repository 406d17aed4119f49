// Command step5 is the tutorial's last job: revenue per customer tier and
// minute, from orders joined with the customers table, windowed, emitted
// once per window, under exactly-once.
//
//	go run ./examples/tutorial/step5
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
// The join sets Tier.
type Order struct {
	Customer string `json:"customer"`
	Item     string `json:"item"`
	Cents    int64  `json:"cents"`
	Tier     string `json:"tier,omitempty"`
}

// Customer is the value of a record of the customers topic, keyed by
// customer.
type Customer struct {
	Name string `json:"name"`
	Tier string `json:"tier"`
}

// snippet:begin topology
// Topology sums the cents of each customer tier's orders per minute of
// event time and writes one sum per window once it closes.
func Topology() (*kstream.Topology, error) {
	b := kstream.NewBuilder()
	customers := kstream.TableFrom(b, "customers", serde.String, serde.JSON[Customer](),
		kstream.StoreName("customers"), kstream.Versioned(time.Hour)) // rows as of each order's time
	orders := kstream.From(b, "orders", serde.String, serde.JSON[Order]())
	byCustomer := kstream.SelectKey(orders, func(_ string, o Order) string { return o.Customer })
	withTier := kstream.LeftJoinTable(byCustomer, customers,
		func(_ string, o Order, c *Customer) Order {
			o.Tier = "none"
			if c != nil {
				o.Tier = c.Tier
			}
			return o
		},
		kstream.StreamJoined[string, Order, Customer]{
			Key: serde.String, Left: serde.JSON[Order](), Right: serde.JSON[Customer](),
		},
		kstream.Named("with-customer"))
	byTier := kstream.GroupBy(withTier, func(_ string, o Order) string { return o.Tier },
		serde.String, serde.JSON[Order](), kstream.Named("by-tier"))
	revenue := kstream.WindowedAggregate(
		kstream.WindowedBy(byTier, kstream.Tumbling(time.Minute, 10*time.Second)),
		func() int64 { return 0 },
		func(_ string, o Order, sum int64) int64 { return sum + o.Cents },
		serde.Int64,
		kstream.StoreName("revenue-per-minute"),
		kstream.EmitFinal())
	revenue.ToStream().To("revenue-per-minute",
		kstream.TimeWindowedSerde(serde.String, time.Minute), serde.Int64)
	return b.Build()
}

// snippet:end topology

func main() {
	var f service.Flags
	f.Register(flag.CommandLine, service.WithEmbeddedBroker())
	service.Main("tutorial-step5", &f, func(ctx context.Context, env service.Env) error {
		return run(ctx, env.Addrs, env.StateDir, env.Logger, env.Out)
	})
}

// run writes the input, runs the App until it has processed it, and prints
// the windows, read read-committed.
func run(ctx context.Context, addrs []string, stateDir string, logger *slog.Logger, w io.Writer) error {
	topo, err := Topology()
	if err != nil {
		return err
	}
	// snippet:begin app
	app, err := kstream.New(topo,
		kstream.ApplicationID("tutorial-step5"),
		kstream.Brokers(addrs...),
		kstream.StateDir(stateDir),
		kstream.Guarantee(kstream.ExactlyOnce), // commits every 100ms by default
		kstream.Logger(logger),
	)
	// snippet:end app
	if err != nil {
		return err
	}
	out, err := harness.Run(ctx, addrs, app, topo, harness.Job{
		AppID:   "tutorial-step5",
		Topics:  []string{"customers", "orders", "revenue-per-minute"},
		Inputs:  append(append([]harness.Input{}, harness.Customers...), harness.Orders...),
		Outputs: []string{"revenue-per-minute"},
	})
	if err != nil {
		return err
	}
	windowed := kstream.TimeWindowedSerde(serde.String, time.Minute)
	for _, r := range out["revenue-per-minute"] {
		k, err := windowed.Deserialize(r.Topic, r.Key)
		if err != nil {
			return err
		}
		cents, err := serde.Int64.Deserialize(r.Topic, r.Value)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "[%s, %s) %-6s $%d.%02d\n", clock(k.Start), clock(k.End), k.Key, cents/100, cents%100)
	}
	return nil
}

// clock formats a window bound, in Unix milliseconds, as a UTC time of day.
func clock(ms int64) string { return time.UnixMilli(ms).UTC().Format(time.TimeOnly) }
