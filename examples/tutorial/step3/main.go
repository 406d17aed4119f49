// Command step3 is the tutorial's third step: orders per customer and
// minute of event time, one final count per window, late orders to a topic
// of their own.
//
//	go run ./examples/tutorial/step3
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

// snippet:begin topology
// Topology counts each customer's orders per minute of event time and
// writes one count per window once the window closes (end + 10s grace).
func Topology() (*kstream.Topology, error) {
	b := kstream.NewBuilder()
	orders := kstream.From(b, "orders", serde.String, serde.JSON[Order]())
	byCustomer := kstream.GroupBy(orders, func(_ string, o Order) string { return o.Customer },
		serde.String, serde.JSON[Order](), kstream.Named("by-customer"))
	perMinute := kstream.WindowedCount(
		kstream.WindowedBy(byCustomer, kstream.Tumbling(time.Minute, 10*time.Second)),
		kstream.StoreName("orders-per-minute"),
		kstream.EmitFinal(),
		kstream.LateRecordsTo("late-orders"))
	perMinute.ToStream().To("orders-per-minute",
		kstream.TimeWindowedSerde(serde.String, time.Minute), serde.Int64)
	return b.Build()
}

// snippet:end topology

func main() {
	var f service.Flags
	f.Register(flag.CommandLine, service.WithEmbeddedBroker())
	service.Main("tutorial-step3", &f, func(ctx context.Context, env service.Env) error {
		return run(ctx, env.Addrs, env.StateDir, env.Logger, env.Out)
	})
}

// run writes the input, runs the App until it has processed it, and prints
// the windows and the late records.
func run(ctx context.Context, addrs []string, stateDir string, logger *slog.Logger, w io.Writer) error {
	topo, err := Topology()
	if err != nil {
		return err
	}
	app, err := kstream.New(topo,
		kstream.ApplicationID("tutorial-step3"),
		kstream.Brokers(addrs...),
		kstream.StateDir(stateDir),
		kstream.CommitInterval(100*time.Millisecond),
		kstream.Logger(logger),
	)
	if err != nil {
		return err
	}
	out, err := harness.Run(ctx, addrs, app, topo, harness.Job{
		AppID:   "tutorial-step3",
		Topics:  []string{"orders", "orders-per-minute", "late-orders"},
		Inputs:  harness.Orders,
		Outputs: []string{"orders-per-minute", "late-orders"},
	})
	if err != nil {
		return err
	}
	// snippet:begin read
	windowed := kstream.TimeWindowedSerde(serde.String, time.Minute)
	for _, r := range out["orders-per-minute"] {
		k, err := windowed.Deserialize(r.Topic, r.Key)
		if err != nil {
			return err
		}
		n, err := serde.Int64.Deserialize(r.Topic, r.Value)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "[%s, %s) %-5s %d\n", clock(k.Start), clock(k.End), k.Key, n)
	}
	// snippet:end read
	for _, r := range out["late-orders"] {
		fmt.Fprintf(w, "late: %s at %s %s\n", r.Key, r.Timestamp.UTC().Format(time.TimeOnly), r.Value)
	}
	return nil
}

// clock formats a window bound, in Unix milliseconds, as a UTC time of day.
func clock(ms int64) string { return time.UnixMilli(ms).UTC().Format(time.TimeOnly) }
