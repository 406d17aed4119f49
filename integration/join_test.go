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

// A table-table outer join and a stream-stream left join on the real broker
// with two instances under exactly-once: the outer join's final rows are
// the join of the two tables' final contents; every left record of the
// stream join comes out once, matched or (after its window and grace)
// unmatched.
func TestOuterAndLeftJoinsTwoInstances(t *testing.T) {
	b := kafkatest.Require(t)
	ctx := testContext(t)
	const parts = 4
	lt, rt, tout := newTopic(t, b, "tj-left", parts), newTopic(t, b, "tj-right", parts), newTopic(t, b, "tj-out", parts)
	ls, rs, sout := newTopic(t, b, "sj-left", parts), newTopic(t, b, "sj-right", parts), newTopic(t, b, "sj-out", parts)
	appID := kafkatest.UniqueName(t, "ojoin")
	deleteTopicsAtEnd(t, b, appID+"-lt-changelog", appID+"-rt-changelog", appID+"-sj-left-store-changelog",
		appID+"-sj-right-store-changelog", appID+"-sj-outer-store-changelog")
	sj := kstream.StreamJoined[string, string, string]{Key: serde.String, Left: serde.String, Right: serde.String}
	show := func(v *string) string {
		if v == nil {
			return "nil"
		}
		return *v
	}
	bld := kstream.NewBuilder()
	kstream.TableOuterJoin(kstream.TableFrom(bld, lt, serde.String, serde.String, kstream.StoreName("lt")),
		kstream.TableFrom(bld, rt, serde.String, serde.String, kstream.StoreName("rt")),
		func(_ string, a, b *string) string { return show(a) + "+" + show(b) }).
		ToStream().To(tout, serde.String, serde.String)
	kstream.LeftJoin(kstream.From(bld, ls, serde.String, serde.String), kstream.From(bld, rs, serde.String, serde.String),
		func(_ string, a string, b *string) string { return a + "+" + show(b) },
		kstream.JoinTimeDifference(time.Second, time.Second), sj, kstream.Named("sj")).To(sout, serde.String, serde.String)
	topo, err := bld.Build()
	if err != nil {
		t.Fatal(err)
	}
	var apps []*runningApp
	for _, name := range []string{"oj-1", "oj-2"} {
		apps = append(apps, startApp(t, b, name, topo, kstream.ApplicationID(appID), kstream.InstanceID(name),
			kstream.StateDir(t.TempDir()), kstream.CommitInterval(100*time.Millisecond), kstream.Guarantee(kstream.ExactlyOnce)))
	}
	waitAssigned(ctx, t, 2*parts, apps...)

	base := time.Now().Add(-3 * time.Hour).UnixMilli() // the flush records, 2h later, are still in the past
	rec := func(topic string, k int, v string, at int64) *kgo.Record {
		r := &kgo.Record{Topic: topic, Partition: int32(k % parts), Key: []byte("k" + strconv.Itoa(k)), Value: []byte(v),
			Timestamp: time.UnixMilli(base + at)}
		if v == "" {
			r.Value = nil
		}
		return r
	}
	// Tables: keys 0..29 on the left, 10..39 on the right; then the left
	// deletes 0..4 and the right deletes 35..39 and updates 10..14.
	var recs []*kgo.Record
	left, right := map[int]string{}, map[int]string{}
	for k := range 30 {
		recs = append(recs, rec(lt, k, "L"+strconv.Itoa(k), int64(k)))
		left[k] = "L" + strconv.Itoa(k)
	}
	for k := 10; k < 40; k++ {
		recs = append(recs, rec(rt, k, "R"+strconv.Itoa(k), int64(k)))
		right[k] = "R" + strconv.Itoa(k)
	}
	for k := range 5 {
		recs = append(recs, rec(lt, k, "", 100))
		delete(left, k)
		recs = append(recs, rec(rt, 35+k, "", 100))
		delete(right, 35+k)
		recs = append(recs, rec(rt, 10+k, "R2-"+strconv.Itoa(10+k), 100))
		right[10+k] = "R2-" + strconv.Itoa(10+k)
	}
	// Streams: left records at 10s steps; right records 500ms after the
	// even ones only; then a record far later per partition closes the
	// windows.
	var wantStream []string
	for i := range 40 {
		recs = append(recs, rec(ls, i%8, "l"+strconv.Itoa(i), int64(10000*(i+1))))
		if i%2 == 0 {
			recs = append(recs, rec(rs, i%8, "r"+strconv.Itoa(i), int64(10000*(i+1)+500)))
			wantStream = append(wantStream, fmt.Sprintf("k%d:l%d+r%d", i%8, i, i))
		} else {
			wantStream = append(wantStream, fmt.Sprintf("k%d:l%d+nil", i%8, i))
		}
	}
	for p := range parts {
		recs = append(recs, rec(rs, p, "flush", 2*time.Hour.Milliseconds()))
	}
	produce(ctx, t, producer(t, b), recs)

	wantTable := map[string]string{}
	for k := range 40 {
		l, lok := left[k]
		r, rok := right[k]
		switch {
		case lok && rok:
			wantTable["k"+strconv.Itoa(k)] = l + "+" + r
		case lok:
			wantTable["k"+strconv.Itoa(k)] = l + "+nil"
		case rok:
			wantTable["k"+strconv.Itoa(k)] = "nil+" + r
		}
	}
	rd := newReader(t, b, tout, sout)
	lastRows := func() map[string]string {
		m := map[string]string{}
		for _, r := range rd.records(tout) {
			if r.Value == nil {
				delete(m, string(r.Key))
				continue
			}
			m[string(r.Key)] = string(r.Value)
		}
		return m
	}
	rd.readUntil(ctx, "the joins' results", func() bool {
		if rd.count(sout) < len(wantStream) {
			return false
		}
		m := lastRows()
		if len(m) != len(wantTable) {
			return false
		}
		for k, v := range wantTable {
			if m[k] != v {
				return false
			}
		}
		return true
	}, apps...)
	for _, a := range apps {
		if err := a.stop(t); err != nil {
			t.Fatalf("%s: Run returned %v", a.name, err)
		}
	}
	rd.readToEnd(ctx)
	var got []string
	for _, r := range rd.records(sout) {
		got = append(got, string(r.Key)+":"+string(r.Value))
	}
	slices.Sort(got)
	slices.Sort(wantStream)
	if !slices.Equal(got, wantStream) {
		t.Fatalf("stream join: %d results, want %d (first got %v, first want %v)", len(got), len(wantStream), firstN(got, 6), firstN(wantStream, 6))
	}
}
