package main

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// The example, end to end on an in-process broker: the exact summaries.
func TestPageviewsOnEmbeddedBroker(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out bytes.Buffer
	if err := run(ctx, c.ListenAddrs(), 12, "test", slog.New(slog.DiscardHandler), &out); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	want := `12 page views in, 9 summaries out:
  alice: alice viewed /docs on mobile (tablet)
  alice: alice viewed /home on desktop
  alice: alice viewed /home on mobile (phone)
  bob: bob viewed /home on desktop
  bob: bob viewed /home on mobile (tablet)
  bob: bob viewed /pricing on mobile (phone)
  carol: carol viewed /docs on mobile (phone)
  carol: carol viewed /home on mobile (tablet)
  carol: carol viewed /pricing on desktop
processed 12 records, produced 9
`
	i := strings.Index(s, "12 page views in")
	if i < 0 || s[i:] != want {
		t.Fatalf("output:\n%s\nwant it to end with:\n%s", s, want)
	}
}
