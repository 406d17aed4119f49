// Command step1 is the tutorial's first step: a stateless job that keeps the
// orders of $10 or more and writes a line of text for each.
//
//	go run ./examples/tutorial/step1
//
// It runs on an embedded broker unless given -brokers (or KAFKA_BROKERS).
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

// snippet:begin order
// Order is the value of a record of the orders topic, keyed by order id.
type Order struct {
	Customer string `json:"customer"`
	Item     string `json:"item"`
	Cents    int64  `json:"cents"`
}

// snippet:end order

// snippet:begin topology
// Topology keeps the orders of $10 or more and describes each in a line.
func Topology() (*kstream.Topology, error) {
	b := kstream.NewBuilder()
	orders := kstream.From(b, "orders", serde.String, serde.JSON[Order]())
	large := orders.Filter(func(_ string, o Order) bool { return o.Cents >= 1000 })
	lines := kstream.MapValues(large, func(o Order) string {
		return fmt.Sprintf("%s bought a %s for $%d.%02d", o.Customer, o.Item, o.Cents/100, o.Cents%100)
	})
	lines.To("large-orders", serde.String, serde.String)
	return b.Build()
}

// snippet:end topology

func main() {
	var f service.Flags
	f.Register(flag.CommandLine, service.WithEmbeddedBroker())
	service.Main("tutorial-step1", &f, func(ctx context.Context, env service.Env) error {
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
	// snippet:begin app
	app, err := kstream.New(topo,
		kstream.ApplicationID("tutorial-step1"),
		kstream.Brokers(addrs...),
		kstream.StateDir(stateDir),
		kstream.CommitInterval(100*time.Millisecond),
		kstream.Logger(logger),
	)
	// snippet:end app
	if err != nil {
		return err
	}
	out, err := harness.Run(ctx, addrs, app, topo, harness.Job{
		AppID:   "tutorial-step1",
		Topics:  []string{"orders", "large-orders"},
		Inputs:  harness.Orders,
		Outputs: []string{"large-orders"},
	})
	if err != nil {
		return err
	}
	for _, r := range out["large-orders"] {
		fmt.Fprintf(w, "%s  %s\n", r.Key, r.Value)
	}
	return nil
}
