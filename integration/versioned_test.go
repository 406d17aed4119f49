package integration

import (
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamwork-go/streamwork/integration/kafkatest"
	"github.com/streamwork-go/streamwork/kstream"
	"github.com/streamwork-go/streamwork/serde"
)

// A stream joined with a versioned table on the real broker with two
// instances under exactly-once: each order meets its product's price as of
// the order's time, an out-of-order price update counts for orders at its
// time, and the table is queryable as of a time on the instance that owns
// the key.
func TestVersionedTableJoinTwoInstances(t *testing.T) {
	b := kafkatest.Require(t)
	ctx := testContext(t)
	prices, orders, out := newTopic(t, b, "vt-prices", 2), newTopic(t, b, "vt-orders", 2), newTopic(t, b, "vt-out", 2)
	appID := kafkatest.UniqueName(t, "vt")
	deleteTopicsAtEnd(t, b, appID+"-prices-changelog")
	bld := kstream.NewBuilder()
	tbl := kstream.TableFrom(bld, prices, serde.String, serde.String, kstream.Versioned(time.Hour), kstream.StoreName("prices"))
	kstream.LeftJoinTable(kstream.From(bld, orders, serde.String, serde.String), tbl,
		func(_ string, o string, p *string) string {
			if p == nil {
				return o + "@nil"
			}
			return o + "@" + *p
		}, kstream.StreamJoined[string, string, string]{Key: serde.String, Left: serde.String, Right: serde.String}).
		To(out, serde.String, serde.String)
	topo, err := bld.Build()
	if err != nil {
		t.Fatal(err)
	}
	var apps []*runningApp
	for _, name := range []string{"vt-1", "vt-2"} {
		apps = append(apps, startApp(t, b, name, topo, kstream.ApplicationID(appID), kstream.InstanceID(name),
			kstream.StateDir(t.TempDir()), kstream.CommitInterval(100*time.Millisecond), kstream.Guarantee(kstream.ExactlyOnce)))
	}
	waitAssigned(ctx, t, 2, apps...)
	base := time.Now().Add(-time.Hour).UnixMilli()
	rec := func(topic, k, v string, at int64) *kgo.Record {
		return &kgo.Record{Topic: topic, Key: []byte(k), Value: []byte(v), Timestamp: time.UnixMilli(base + at)}
	}
	prod := b.Client(t, kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)))
	keys := []string{"a", "b", "c", "d", "e", "f"}
	var ps []*kgo.Record
	for _, k := range keys {
		ps = append(ps, rec(prices, k, k+"1", 10), rec(prices, k, k+"2", 20))
	}
	produce(ctx, t, prod, ps)
	processed := func() int64 { return apps[0].Metrics().RecordsProcessed + apps[1].Metrics().RecordsProcessed }
	waitFor(ctx, t, "the prices read", func() bool { return processed() >= int64(len(ps)) }, apps...)
	// An out-of-order price for every key, older than its second one.
	var late []*kgo.Record
	for _, k := range keys {
		late = append(late, rec(prices, k, k+"0", 12))
	}
	produce(ctx, t, prod, late)
	waitFor(ctx, t, "the late prices read", func() bool { return processed() >= int64(len(ps)+len(late)) }, apps...)
	var os []*kgo.Record
	var want []string
	for _, k := range keys {
		os = append(os, rec(orders, k, "o5", 5), rec(orders, k, "o11", 11), rec(orders, k, "o13", 13), rec(orders, k, "o25", 25))
		want = append(want, k+":o5@nil", k+":o11@"+k+"1", k+":o13@"+k+"0", k+":o25@"+k+"2")
	}
	produce(ctx, t, prod, os)
	rd := newReader(t, b, out)
	rd.readUntil(ctx, "every order joined", func() bool { return rd.count(out) >= len(want) }, apps...)

	// As of 12, each key's price is its out-of-order one, on exactly one
	// instance.
	for _, k := range keys {
		found := 0
		for _, a := range apps {
			q, err := kstream.QueryVersionedTable(a.App, "prices", serde.String, serde.String)
			if err != nil {
				t.Fatal(err)
			}
			v, from, ok, err := q.GetAsOf(k, time.UnixMilli(base+12))
			if err != nil {
				t.Fatal(err)
			}
			if ok {
				found++
				if v != k+"0" || from.UnixMilli() != base+12 {
					t.Fatalf("%s as of 12: %q from %d, want %q from 12", k, v, from.UnixMilli()-base, k+"0")
				}
			}
		}
		if found != 1 {
			t.Fatalf("%s found on %d instances, want 1", k, found)
		}
	}
	for _, a := range apps {
		if err := a.stop(t); err != nil {
			t.Fatalf("%s: Run returned %v", a.name, err)
		}
	}
	rd.readToEnd(ctx)
	var got []string
	for _, r := range rd.records(out) {
		got = append(got, string(r.Key)+":"+string(r.Value))
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("joined %v, want %v", got, want)
	}
}
