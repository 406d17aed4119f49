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

// A stream-global-table left join on the real broker with two instances:
// orders (keyed by order, 4 partitions) look their product up in a global
// table (2 partitions, held whole by each instance) by the product id in
// their value; unknown products give nil. No co-partitioning is needed.
func TestGlobalLeftJoinTwoInstances(t *testing.T) {
	b := kafkatest.Require(t)
	ctx := testContext(t)
	products, orders, out := newTopic(t, b, "gj-products", 2), newTopic(t, b, "gj-orders", 4), newTopic(t, b, "gj-out", 4)
	appID := kafkatest.UniqueName(t, "gj")
	bld := kstream.NewBuilder()
	gt := kstream.GlobalTableFrom(bld, products, serde.String, serde.String, kstream.StoreName("gj-products"))
	kstream.LeftJoinGlobal(kstream.From(bld, orders, serde.String, serde.String), gt,
		func(_ string, product string) string { return product },
		func(product string, name string, found bool) string {
			if !found {
				return product + "=nil"
			}
			return product + "=" + name
		}).To(out, serde.String, serde.String)
	topo, err := bld.Build()
	if err != nil {
		t.Fatal(err)
	}
	prod := b.Client(t, kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)))
	base := time.Now().Add(-time.Hour).UnixMilli()
	var ps []*kgo.Record
	for i := range 8 {
		ps = append(ps, &kgo.Record{Topic: products, Key: []byte("p" + strconv.Itoa(i)), Value: []byte("name" + strconv.Itoa(i)),
			Timestamp: time.UnixMilli(base)})
	}
	produce(ctx, t, prod, ps)
	var apps []*runningApp
	for _, name := range []string{"gj-1", "gj-2"} {
		apps = append(apps, startApp(t, b, name, topo, kstream.ApplicationID(appID), kstream.InstanceID(name),
			kstream.StateDir(t.TempDir()), kstream.CommitInterval(100*time.Millisecond)))
	}
	waitAssigned(ctx, t, 4, apps...)
	var os []*kgo.Record
	var want []string
	for i := range 40 {
		p := "p" + strconv.Itoa(i%10) // p8, p9 unknown
		os = append(os, &kgo.Record{Topic: orders, Key: []byte("o" + strconv.Itoa(i)), Value: []byte(p), Timestamp: time.UnixMilli(base + 1)})
		if i%10 < 8 {
			want = append(want, "o"+strconv.Itoa(i)+":"+p+"=name"+strconv.Itoa(i%10))
		} else {
			want = append(want, "o"+strconv.Itoa(i)+":"+p+"=nil")
		}
	}
	produce(ctx, t, prod, os)
	rd := newReader(t, b, out)
	rd.readUntil(ctx, "every order looked up", func() bool { return rd.count(out) >= len(want) }, apps...)
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
		t.Fatalf("looked up %v, want %v", firstN(got, 8), firstN(want, 8))
	}
}
