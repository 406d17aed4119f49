package kstream

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/streamwork-go/streamwork/serde"
)

// A join of topics with different partition counts is refused when the App
// starts, with an error naming the topics and their counts.
func TestJoinRefusesTopicsNotCopartitioned(t *testing.T) {
	brokers := rtCluster(t, map[string]int32{"left": 2, "right": 3, "out": 1})
	b := NewBuilder()
	Join(From(b, "left", serde.String, serde.String), From(b, "right", serde.String, serde.String),
		func(_ string, l, r string) string { return l + r }, JoinTimeDifference(time.Second, NoGrace),
		StreamJoined[string, string, string]{Key: serde.String, Left: serde.String, Right: serde.String}).
		To("out", serde.String, serde.String)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	app, err := New(topo, rtOpts(t, brokers, "copart")...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), rtTimeout)
	defer cancel()
	err = app.Run(ctx)
	if !errors.Is(err, ErrCopartition) || !strings.Contains(err.Error(), "left") || !strings.Contains(err.Error(), "right") {
		t.Fatalf("Run = %v, want ErrCopartition naming left and right", err)
	}
	t.Log(err)
}
