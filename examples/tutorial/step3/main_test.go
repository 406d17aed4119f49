package main

import (
	"bytes"
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/streamwork-go/streamwork/examples/tutorial/internal/harness"
)

// The step on an in-process broker: its exact output and topology, as the
// tutorial shows them.
func TestStep(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.DefaultNumPartitions(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out bytes.Buffer
	if err := run(ctx, c.ListenAddrs(), t.TempDir(), slog.New(slog.DiscardHandler), &out); err != nil {
		t.Fatal(err)
	}
	harness.CheckGolden(t, "testdata/output.txt", out.String())
	topo, err := Topology()
	if err != nil {
		t.Fatal(err)
	}
	harness.CheckGolden(t, "testdata/topology.mmd", topo.Describe().Mermaid())
}
