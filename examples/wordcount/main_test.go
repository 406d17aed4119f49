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

// The example end to end on an in-process broker: the exact counts and
// store queries.
func TestWordcountOnEmbeddedBroker(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out bytes.Buffer
	if err := run(ctx, c.ListenAddrs(), "test", t.TempDir(), slog.New(slog.DiscardHandler), &out); err != nil {
		t.Fatal(err)
	}
	want := `query "the": count=4 found=true
query "dog": count=3 found=true
query "cat": count=0 found=false
4 lines, 16 distinct words:
  a      1
  and    1
  are    1
  barks  1
  brown  2
  dog    3
  dogs   1
  fox    1
  foxes  1
  jumps  1
  lazy   1
  not    1
  over   1
  quick  2
  same   1
  the    4
`
	if got := out.String(); !strings.HasSuffix(got, want) {
		t.Fatalf("output:\n%s\nwant:\n%s", got, want)
	}
}
