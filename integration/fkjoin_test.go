package integration

import (
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamwork-go/streamwork/integration/kafkatest"
	"github.com/streamwork-go/streamwork/kstream"
	"github.com/streamwork-go/streamwork/serde"
)

// A foreign-key join on the real broker with two instances under
// exactly-once, of tables with different partition counts (orders: 4,
// products: 2): each order's last result is its product's name, or gone
// when the product was deleted; orders moved to another product follow it.
func TestForeignKeyJoinTwoInstances(t *testing.T) {
	b := kafkatest.Require(t)
	ctx := testContext(t)
	orders, products := newTopic(t, b, "fk-orders", 4), newTopic(t, b, "fk-products", 2)
	out := newTopic(t, b, "fk-out", 4)
	appID := kafkatest.UniqueName(t, "fk")
	deleteTopicsAtEnd(t, b, appID+"-fk-subscription-repartition", appID+"-fk-response-repartition",
		appID+"-fk-subscription-store-changelog", appID+"-orders-changelog", appID+"-products-changelog")

	bld := kstream.NewBuilder()
	ot := kstream.TableFrom(bld, orders, serde.String, serde.String, kstream.StoreName("orders"))
	pt := kstream.TableFrom(bld, products, serde.String, serde.String, kstream.StoreName("products"))
	kstream.ForeignKeyJoin(ot, pt, func(_ string, product string) string { return product },
		func(_ string, product, name string) string { return product + "=" + name }, kstream.Named("fk")).
		ToStream().To(out, serde.String, serde.String)
	topo, err := bld.Build()
	if err != nil {
		t.Fatal(err)
	}
	var apps []*runningApp
	for _, name := range []string{"fk-1", "fk-2"} {
		apps = append(apps, startApp(t, b, name, topo, kstream.ApplicationID(appID), kstream.InstanceID(name),
			kstream.StateDir(t.TempDir()), kstream.CommitInterval(100*time.Millisecond), kstream.Guarantee(kstream.ExactlyOnce)))
	}
	// Three sub-topologies: orders (4), products with the subscriptions (2),
	// ... the responses join the orders' sub-topology.
	waitAssigned(ctx, t, 6, apps...)

	base := time.Now().Add(-time.Hour).UnixMilli()
	// Inputs partitioned by key with Kafka's default partitioner (murmur2),
	// as the internal topics are: a foreign-key join's tables must be.
	rec := func(topic string, _ int32, k, v string, at int64, tomb bool) *kgo.Record {
		r := &kgo.Record{Topic: topic, Key: []byte(k), Value: []byte(v), Timestamp: time.UnixMilli(base + at)}
		if tomb {
			r.Value = nil
		}
		return r
	}
	prod := b.Client(t, kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)))
	// Products p0..p9, then 40 orders over them, then changes.
	var ps, os []*kgo.Record
	for i := range 10 {
		ps = append(ps, rec(products, 2, "p"+strconv.Itoa(i), "name"+strconv.Itoa(i), 0, false))
	}
	produce(ctx, t, prod, ps)
	want := map[string]string{}
	for i := range 40 {
		p := "p" + strconv.Itoa(i%10)
		os = append(os, rec(orders, 4, "o"+strconv.Itoa(i), p, 100, false))
		want["o"+strconv.Itoa(i)] = p + "=name" + strconv.Itoa(i%10)
	}
	produce(ctx, t, prod, os)
	rd := newReader(t, b, out)
	last := func() map[string]string {
		m := map[string]string{}
		for _, r := range rd.records(out) {
			if r.Value == nil {
				delete(m, string(r.Key))
				continue
			}
			m[string(r.Key)] = string(r.Value)
		}
		return m
	}
	equalMaps := func(a, b map[string]string) bool {
		if len(a) != len(b) {
			return false
		}
		for k, v := range a {
			if b[k] != v {
				return false
			}
		}
		return true
	}
	rd.readUntil(ctx, "every order joined", func() bool { return equalMaps(last(), want) }, apps...)

	// o0..o4 move to p9; p1 is renamed; p2 is deleted.
	var changes []*kgo.Record
	for i := range 5 {
		changes = append(changes, rec(orders, 4, "o"+strconv.Itoa(i), "p9", 200, false))
		want["o"+strconv.Itoa(i)] = "p9=name9"
	}
	produce(ctx, t, prod, changes)
	// Let the moves land before the products change, so that each order
	// ends as computed here.
	rd.readUntil(ctx, "the moved orders", func() bool { return equalMaps(last(), want) }, apps...)
	produce(ctx, t, prod, []*kgo.Record{rec(products, 2, "p1", "renamed", 300, false), rec(products, 2, "p2", "", 300, true)})
	for i := range 40 {
		o := "o" + strconv.Itoa(i)
		switch {
		case i < 5:
		case i%10 == 1:
			want[o] = "p1=renamed"
		case i%10 == 2:
			delete(want, o)
		}
	}
	rd.readUntil(ctx, "the renamed and deleted products", func() bool { return equalMaps(last(), want) }, apps...)
	for _, a := range apps {
		if err := a.stop(t); err != nil {
			t.Fatalf("%s: Run returned %v", a.name, err)
		}
	}
	rd.readToEnd(ctx)
	if got := last(); !equalMaps(got, want) {
		keys := slices.Sorted(func(yield func(string) bool) {
			for k := range got {
				if !yield(k) {
					return
				}
			}
		})
		t.Fatalf("final results differ: got %d rows (%v), want %d", len(got), firstN(keys, 10), len(want))
	}
}
