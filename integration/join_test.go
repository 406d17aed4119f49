package integration

import (
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamwork-go/streamwork/integration/kafkatest"
	"github.com/streamwork-go/streamwork/kstream"
	"github.com/streamwork-go/streamwork/serde"
)

// Joins on the real broker with two instances under exactly-once: a
// windowed stream-stream inner join (every pair of records of a key at most
// 5s apart, whatever order the two topics are read in) and a stream-table
// left join (orders priced from a table written before them, unknown
// products priced nil). The outputs equal what the test computes from the
// inputs, each result once.
func TestJoinsTwoInstances(t *testing.T) {
	b := kafkatest.Require(t)
	ctx := testContext(t)
	const parts = 4
	left, right := newTopic(t, b, "join-left", parts), newTopic(t, b, "join-right", parts)
	orders, prices := newTopic(t, b, "join-orders", parts), newTopic(t, b, "join-prices", parts)
	pairs, priced := newTopic(t, b, "join-pairs", parts), newTopic(t, b, "join-priced", parts)
	appID := kafkatest.UniqueName(t, "join")
	deleteTopicsAtEnd(t, b, appID+"-pairs-left-store-changelog", appID+"-pairs-right-store-changelog", appID+"-prices-changelog")

	bld := kstream.NewBuilder()
	l := kstream.From(bld, left, serde.String, serde.String)
	r := kstream.From(bld, right, serde.String, serde.String)
	kstream.Join(l, r, func(_ string, a, b string) string { return a + "+" + b },
		kstream.JoinTimeDifference(5*time.Second, time.Hour),
		kstream.StreamJoined[string, string, string]{Key: serde.String, Left: serde.String, Right: serde.String},
		kstream.Named("pairs")).To(pairs, serde.String, serde.String)
	tbl := kstream.TableFrom(bld, prices, serde.String, serde.String, kstream.StoreName("prices"))
	kstream.LeftJoinTable(kstream.From(bld, orders, serde.String, serde.String), tbl,
		func(_ string, o string, p *string) string {
			if p == nil {
				return o + "@nil"
			}
			return o + "@" + *p
		}, kstream.StreamJoined[string, string, string]{Key: serde.String, Left: serde.String, Right: serde.String}).
		To(priced, serde.String, serde.String)
	topo, err := bld.Build()
	if err != nil {
		t.Fatal(err)
	}

	base := time.Now().Add(-time.Hour).UnixMilli()
	key := func(i int) (string, int32) { k := i % 20; return "k" + strconv.Itoa(k), int32(k % parts) }
	rec := func(topic string, i int, v string, at int64) *kgo.Record {
		k, p := key(i)
		return &kgo.Record{Topic: topic, Partition: p, Key: []byte(k), Value: []byte(v), Timestamp: time.UnixMilli(base + at)}
	}
	var ls, rs, ps, os []*kgo.Record
	for i := range 400 {
		ls = append(ls, rec(left, i, "l"+strconv.Itoa(i), int64(i)*100))
		rs = append(rs, rec(right, i, "r"+strconv.Itoa(i), int64(i)*100+50))
	}
	for i := range 20 {
		ps = append(ps, rec(prices, i, "p"+strconv.Itoa(i), 0))
	}
	for i := range 100 {
		// Products k0..k19 have prices; orders name products i % 25.
		k := "k" + strconv.Itoa(i%25)
		p := int32((i % 25) % parts)
		if i%25 >= 20 {
			p = int32((i%25 - 20) % parts)
		}
		os = append(os, &kgo.Record{Topic: orders, Partition: p, Key: []byte(k), Value: []byte("o" + strconv.Itoa(i)), Timestamp: time.UnixMilli(base + 100000)})
	}
	// The expected outputs, computed from the inputs.
	var wantPairs, wantPriced []string
	for i, a := range ls {
		for j, bb := range rs {
			if string(a.Key) == string(bb.Key) && max(i*100-(j*100+50), j*100+50-i*100) <= 5000 {
				wantPairs = append(wantPairs, fmt.Sprintf("%s:%s+%s", a.Key, a.Value, bb.Value))
			}
		}
	}
	for _, o := range os {
		var k int
		fmt.Sscanf(string(o.Key), "k%d", &k)
		p := "nil"
		if k < 20 {
			p = "p" + strconv.Itoa(k)
		}
		wantPriced = append(wantPriced, fmt.Sprintf("%s:%s@%s", o.Key, o.Value, p))
	}

	var apps []*runningApp
	for _, name := range []string{"join-1", "join-2"} {
		apps = append(apps, startApp(t, b, name, topo, kstream.ApplicationID(appID), kstream.InstanceID(name),
			kstream.StateDir(t.TempDir()), kstream.CommitInterval(100*time.Millisecond), kstream.Guarantee(kstream.ExactlyOnce)))
	}
	waitAssigned(ctx, t, 2*parts, apps...)
	prod := producer(t, b)
	produce(ctx, t, prod, ps)
	waitFor(ctx, t, "the prices read", func() bool {
		return apps[0].Metrics().RecordsProcessed+apps[1].Metrics().RecordsProcessed >= int64(len(ps))
	}, apps...)
	// Right before left, so the two topics interleave out of order.
	produce(ctx, t, prod, rs)
	produce(ctx, t, prod, ls)
	produce(ctx, t, prod, os)
	rd := newReader(t, b, pairs, priced)
	rd.readUntil(ctx, "every join result", func() bool {
		return rd.count(pairs) >= len(wantPairs) && rd.count(priced) >= len(wantPriced)
	}, apps...)
	for _, a := range apps {
		if err := a.stop(t); err != nil {
			t.Fatalf("%s: Run returned %v", a.name, err)
		}
	}
	rd.readToEnd(ctx)
	for _, c := range []struct {
		topic string
		want  []string
	}{{pairs, wantPairs}, {priced, wantPriced}} {
		var got []string
		for _, r := range rd.records(c.topic) {
			got = append(got, string(r.Key)+":"+string(r.Value))
		}
		slices.Sort(got)
		want := slices.Clone(c.want)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("%s: %d results, want %d (first got %v, first want %v)", c.topic, len(got), len(want), firstN(got, 5), firstN(want, 5))
		}
	}
}
