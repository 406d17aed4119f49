package kstream_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/streamwork-go/streamwork/kstream"
	"github.com/streamwork-go/streamwork/kstream/kstreamtest"
	"github.com/streamwork-go/streamwork/serde"
)

var joinSerdes = kstream.StreamJoined[string, string, string]{Key: serde.String, Left: serde.String, Right: serde.String}

func showJoin(l, r *string) string {
	ls, rs := "nil", "nil"
	if l != nil {
		ls = *l
	}
	if r != nil {
		rs = *r
	}
	return ls + "+" + rs
}

// joinTopology joins "left" and "right" with build and writes "out".
func joinTopology(t *testing.T, build func(l, r kstream.Stream[string, string]) kstream.Stream[string, string]) (
	*kstreamtest.Driver, *kstreamtest.InputTopic[string, string], *kstreamtest.InputTopic[string, string]) {
	t.Helper()
	b := kstream.NewBuilder()
	l := kstream.From(b, "left", serde.String, serde.String)
	r := kstream.From(b, "right", serde.String, serde.String)
	build(l, r).To("out", serde.String, serde.String)
	d := mustDriver(t, b)
	return d, kstreamtest.Input(d, "left", serde.String, serde.String), kstreamtest.Input(d, "right", serde.String, serde.String)
}

func joinOut(t *testing.T, d *kstreamtest.Driver) []string { return topicOut(t, d, "out") }

// topicOut returns what was written to topic as "key:value@timestamp",
// "<nil>" for a tombstone's value.
func topicOut(t *testing.T, d *kstreamtest.Driver, topic string) []string {
	t.Helper()
	recs, err := kstreamtest.Output(d, topic, serde.String, serde.String).Records()
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(recs))
	for i, r := range recs {
		v := r.Value
		if r.Tombstone {
			v = "<nil>"
		}
		out[i] = fmt.Sprintf("%s:%s@%d", r.Key, v, r.Timestamp.UnixMilli())
	}
	return out
}

func pipeS(t *testing.T, in *kstreamtest.InputTopic[string, string], k, v string, at int64) {
	t.Helper()
	if err := in.Pipe(k, v, ts(at)); err != nil {
		t.Fatal(err)
	}
}

// An inner join emits each pair of records of one key within the window,
// timestamped with the later of the two.
func TestStreamStreamInnerJoin(t *testing.T) {
	d, l, r := joinTopology(t, func(l, r kstream.Stream[string, string]) kstream.Stream[string, string] {
		return kstream.Join(l, r, func(_ string, a, b string) string { return a + "+" + b },
			kstream.JoinTimeDifference(10*sec, kstream.NoGrace), joinSerdes)
	})
	pipeS(t, l, "a", "L1", 1000)
	pipeS(t, r, "a", "R1", 5000)
	pipeS(t, r, "a", "R2", 20000) // 19s after L1: no match
	pipeS(t, l, "a", "L2", 15000) // within 10s of R1 and R2
	pipeS(t, r, "b", "R3", 15000) // other key
	if err := l.PipeTombstone("a", ts(16000)); err != nil {
		t.Fatal(err)
	}
	equal(t, "joined", joinOut(t, d), []string{"a:L1+R1@5000", "a:L2+R1@15000", "a:L2+R2@20000"})
}

// A left join emits an unmatched left record only once stream time passes
// its timestamp + after + grace; a match inside that time gives only the
// joined result.
func TestStreamStreamLeftJoin(t *testing.T) {
	d, l, r := joinTopology(t, func(l, r kstream.Stream[string, string]) kstream.Stream[string, string] {
		return kstream.LeftJoin(l, r, func(_ string, a string, b *string) string { return showJoin(&a, b) },
			kstream.JoinTimeDifference(10*sec, 2*sec), joinSerdes)
	})
	pipeS(t, l, "a", "L1", 1000)
	pipeS(t, l, "b", "L2", 2000)
	pipeS(t, r, "a", "R1", 11000) // matches L1 (10s apart)
	pipeS(t, r, "c", "R9", 13000) // stream time 13000: L2's window (until 2000+10000+2000) still open
	equal(t, "before L2 closes", joinOut(t, d), []string{"a:L1+R1@11000"})
	pipeS(t, r, "c", "R9", 14001) // 14001 > 14000: L2 goes unmatched
	equal(t, "L2 unmatched", joinOut(t, d), []string{"b:L2+nil@2000"})
	pipeS(t, l, "x", "L3", 1000) // late: its window closed long ago, emitted at once
	equal(t, "late left", joinOut(t, d), []string{"x:L3+nil@1000"})
}

// An outer join emits unmatched records of both sides once their windows
// close.
func TestStreamStreamOuterJoin(t *testing.T) {
	d, l, r := joinTopology(t, func(l, r kstream.Stream[string, string]) kstream.Stream[string, string] {
		return kstream.OuterJoin(l, r, func(_ string, a, b *string) string { return showJoin(a, b) },
			kstream.JoinTimeDifference(5*sec, kstream.NoGrace).After(2*sec), joinSerdes)
	})
	pipeS(t, l, "a", "L1", 1000) // joins right records in [-4000, 3000]
	pipeS(t, r, "b", "R1", 2000) // joins left records in [0, 7000]
	pipeS(t, r, "a", "R2", 4000) // L1 is 3s before: outside after=2s
	pipeS(t, l, "z", "Z", 20000)
	equal(t, "unmatched", joinOut(t, d), []string{"a:L1+nil@1000", "b:nil+R1@2000", "a:nil+R2@4000"})
}

// A stream joined with itself: each record meets itself and the earlier
// ones, in both orders.
func TestStreamSelfJoin(t *testing.T) {
	d, l, _ := joinTopology(t, func(l, _ kstream.Stream[string, string]) kstream.Stream[string, string] {
		return kstream.Join(l, l, func(_ string, a, b string) string { return a + "+" + b },
			kstream.JoinTimeDifference(5*sec, kstream.NoGrace), joinSerdes)
	})
	pipeS(t, l, "a", "1", 0)
	pipeS(t, l, "a", "2", 1000)
	equal(t, "self", joinOut(t, d), []string{"a:1+1@0", "a:2+1@1000", "a:1+2@1000", "a:2+2@1000"})
}

// A stream-table join: stream records look the table up as of their turn;
// table updates and deletes change the table only.
func TestStreamTableJoin(t *testing.T) {
	for _, left := range []bool{false, true} {
		b := kstream.NewBuilder()
		s := kstream.From(b, "orders", serde.String, serde.String)
		tbl := kstream.TableFrom(b, "prices", serde.String, serde.String)
		sj := kstream.StreamJoined[string, string, string]{Key: serde.String, Left: serde.String, Right: serde.String}
		var out kstream.Stream[string, string]
		if left {
			out = kstream.LeftJoinTable(s, tbl, func(_ string, v string, p *string) string { return showJoin(&v, p) }, sj)
		} else {
			out = kstream.JoinTable(s, tbl, func(_ string, v, p string) string { return v + "+" + p }, sj)
		}
		out.To("out", serde.String, serde.String)
		d := mustDriver(t, b)
		orders := kstreamtest.Input(d, "orders", serde.String, serde.String)
		prices := kstreamtest.Input(d, "prices", serde.String, serde.String)
		pipeS(t, prices, "a", "1", 0)
		pipeS(t, orders, "a", "x", 5)
		pipeS(t, prices, "a", "2", 10)
		pipeS(t, orders, "a", "y", 15)
		pipeS(t, orders, "b", "z", 20)
		if err := prices.PipeTombstone("a", ts(25)); err != nil {
			t.Fatal(err)
		}
		pipeS(t, orders, "a", "w", 30)
		want := []string{"a:x+1@5", "a:y+2@15"}
		if left {
			want = []string{"a:x+1@5", "a:y+2@15", "b:z+nil@20", "a:w+nil@30"}
		}
		equal(t, fmt.Sprintf("left=%v", left), joinOut(t, d), want)
	}
}

// A stream joins an aggregation's table (whose store keeps timestamps with
// the values).
func TestStreamJoinsAggregationTable(t *testing.T) {
	b := kstream.NewBuilder()
	clicks := kstream.From(b, "clicks", serde.String, serde.String)
	counts := kstream.Count(kstream.GroupByKey(clicks, serde.String, serde.String))
	sj := kstream.StreamJoined[string, string, int64]{Key: serde.String, Left: serde.String, Right: serde.Int64}
	kstream.JoinTable(kstream.From(b, "views", serde.String, serde.String), counts,
		func(_ string, v string, n int64) string { return fmt.Sprintf("%s after %d clicks", v, n) }, sj).
		To("out", serde.String, serde.String)
	d := mustDriver(t, b)
	c := kstreamtest.Input(d, "clicks", serde.String, serde.String)
	v := kstreamtest.Input(d, "views", serde.String, serde.String)
	pipeS(t, c, "u", "c1", 0)
	pipeS(t, c, "u", "c2", 1)
	pipeS(t, v, "u", "home", 2)
	equal(t, "joined", joinOut(t, d), []string{"u:home after 2 clicks@2"})
}

// Table-table joins, inner, left and outer: both sides trigger; deletes
// propagate as tombstones, none for a key never in the result.
func TestTableTableJoins(t *testing.T) {
	cases := map[string]struct {
		build func(l, r kstream.Table[string, string]) kstream.Table[string, string]
		want  []string
	}{
		"inner": {func(l, r kstream.Table[string, string]) kstream.Table[string, string] {
			return kstream.TableJoin(l, r, func(_ string, a, b string) string { return a + "+" + b })
		}, []string{"a:L1+R1@2", "a:L2+R1@4", "a:<nil>@5"}},
		"left": {func(l, r kstream.Table[string, string]) kstream.Table[string, string] {
			return kstream.TableLeftJoin(l, r, func(_ string, a string, b *string) string { return showJoin(&a, b) })
		}, []string{"a:L1+nil@1", "a:L1+R1@2", "a:L2+R1@4", "a:L2+nil@5", "a:<nil>@6"}},
		"outer": {func(l, r kstream.Table[string, string]) kstream.Table[string, string] {
			return kstream.TableOuterJoin(l, r, func(_ string, a, b *string) string { return showJoin(a, b) })
		}, []string{"a:L1+nil@1", "a:L1+R1@2", "b:nil+R2@3", "a:L2+R1@4", "a:L2+nil@5", "a:<nil>@6", "b:<nil>@7"}},
	}
	for name, c := range cases {
		b := kstream.NewBuilder()
		l := kstream.TableFrom(b, "l", serde.String, serde.String)
		r := kstream.TableFrom(b, "r", serde.String, serde.String)
		c.build(l, r).ToStream().To("out", serde.String, serde.String)
		d := mustDriver(t, b)
		li := kstreamtest.Input(d, "l", serde.String, serde.String)
		ri := kstreamtest.Input(d, "r", serde.String, serde.String)
		pipeS(t, li, "a", "L1", 1)
		pipeS(t, ri, "a", "R1", 2)
		pipeS(t, ri, "b", "R2", 3)
		pipeS(t, li, "a", "L2", 4)
		for _, del := range []struct {
			in  *kstreamtest.InputTopic[string, string]
			key string
			at  int64
		}{{ri, "a", 5}, {li, "a", 6}, {ri, "b", 7}, {li, "c", 8}} {
			if err := del.in.PipeTombstone(del.key, ts(del.at)); err != nil {
				t.Fatal(err)
			}
		}
		equal(t, name, joinOut(t, d), c.want)
	}
}

// Foreign-key joins: orders (order → product id) with products (product
// id → name), through the subscription and response topics.
func TestForeignKeyJoins(t *testing.T) {
	for _, left := range []bool{false, true} {
		b := kstream.NewBuilder()
		orders := kstream.TableFrom(b, "orders", serde.String, serde.String)
		products := kstream.TableFrom(b, "products", serde.String, serde.String)
		fk := func(_ string, product string) string { return product }
		var out kstream.Table[string, string]
		if left {
			out = kstream.ForeignKeyLeftJoin(orders, products, fk, func(_ string, p string, name *string) string { return showJoin(&p, name) })
		} else {
			out = kstream.ForeignKeyJoin(orders, products, fk, func(_ string, p, name string) string { return p + "+" + name })
		}
		out.ToStream().To("out", serde.String, serde.String)
		d := mustDriver(t, b)
		o := kstreamtest.Input(d, "orders", serde.String, serde.String)
		p := kstreamtest.Input(d, "products", serde.String, serde.String)
		pipeS(t, p, "p1", "Pen", 1)
		pipeS(t, o, "o1", "p1", 2)
		pipeS(t, o, "o2", "p2", 3) // no p2 yet
		pipeS(t, p, "p2", "Ink", 4)
		pipeS(t, o, "o1", "p2", 5) // o1 moves to p2
		pipeS(t, p, "p1", "Pencil", 6)
		if err := p.PipeTombstone("p2", ts(7)); err != nil {
			t.Fatal(err)
		}
		if err := o.PipeTombstone("o1", ts(8)); err != nil {
			t.Fatal(err)
		}
		got := joinOut(t, d)
		want := []string{"o1:p1+Pen@2", "o2:p2+Ink@4", "o1:p2+Ink@5", "o1:<nil>@7", "o2:<nil>@7", "o1:<nil>@8"}
		if left {
			want = []string{"o1:p1+Pen@2", "o2:p2+nil@3", "o2:p2+Ink@4", "o1:p2+Ink@5", "o1:p2+nil@7", "o2:p2+nil@7", "o1:<nil>@8"}
		}
		equal(t, fmt.Sprintf("left=%v", left), got, want)
	}
}

// A stream turned into a table with ToTable (so one topic can feed both a
// stream and a table): events join the latest reading.
func TestToTableAndTableTimestamps(t *testing.T) {
	b := kstream.NewBuilder()
	readings := kstream.From(b, "readings", serde.String, serde.String)
	latest := kstream.ToTable(readings, serde.String, serde.String)
	kstream.LeftJoinTable(kstream.From(b, "events", serde.String, serde.String), latest,
		func(_ string, e string, r *string) string { return showJoin(&e, r) },
		kstream.StreamJoined[string, string, string]{Key: serde.String, Left: serde.String, Right: serde.String}).
		To("out", serde.String, serde.String)
	d := mustDriver(t, b)
	r := kstreamtest.Input(d, "readings", serde.String, serde.String)
	e := kstreamtest.Input(d, "events", serde.String, serde.String)
	pipeS(t, e, "v", "start", 1)
	pipeS(t, r, "v", "20C", 2)
	pipeS(t, e, "v", "tick", 3)
	equal(t, "joined", joinOut(t, d), []string{"v:start+nil@1", "v:tick+20C@3"})

	// TableFrom takes WithTimestamps for its source.
	b = kstream.NewBuilder()
	kstream.TableFrom(b, "t", serde.String, serde.Int64,
		kstream.WithTimestamps(func(r kstream.Record[string, int64]) (time.Time, error) { return time.UnixMilli(r.Value), nil })).
		ToStream().To("out", serde.String, serde.Int64)
	d = mustDriver(t, b)
	if err := kstreamtest.Input(d, "t", serde.String, serde.Int64).Pipe("k", 4242, ts(1)); err != nil {
		t.Fatal(err)
	}
	recs, err := kstreamtest.Output(d, "out", serde.String, serde.Int64).Records()
	if err != nil || len(recs) != 1 || recs[0].Timestamp.UnixMilli() != 4242 {
		t.Fatalf("table record timestamps: %v, %v; want 4242", recs, err)
	}
}

// A stream joined with a versioned table meets each key's value as of the
// stream record's time; an out-of-order table update changes the history
// (and the joins at its time) but is not forwarded.
func TestStreamJoinsVersionedTableAsOf(t *testing.T) {
	b := kstream.NewBuilder()
	prices := kstream.TableFrom(b, "prices", serde.String, serde.String, kstream.Versioned(time.Minute), kstream.StoreName("prices"))
	prices.ToStream().To("changes", serde.String, serde.String)
	kstream.LeftJoinTable(kstream.From(b, "orders", serde.String, serde.String), prices,
		func(_ string, o string, p *string) string { return showJoin(&o, p) },
		kstream.StreamJoined[string, string, string]{Key: serde.String, Left: serde.String, Right: serde.String}).
		To("out", serde.String, serde.String)
	d := mustDriver(t, b)
	p := kstreamtest.Input(d, "prices", serde.String, serde.String)
	o := kstreamtest.Input(d, "orders", serde.String, serde.String)
	pipeS(t, p, "a", "1", 10)
	pipeS(t, p, "a", "2", 20)
	pipeS(t, o, "a", "o15", 15) // as of 15: price 1
	pipeS(t, o, "a", "o25", 25)
	pipeS(t, o, "a", "o5", 5)   // before any price
	pipeS(t, p, "a", "3", 12)   // out of order: history only
	pipeS(t, o, "a", "o13", 13) // as of 13: price 3
	if err := p.PipeTombstone("a", ts(30)); err != nil {
		t.Fatal(err)
	}
	pipeS(t, o, "a", "o31", 31)
	pipeS(t, o, "a", "o21", 21) // as of 21: price 2, deleted since
	equal(t, "joined", joinOut(t, d), []string{"a:o15+1@15", "a:o25+2@25", "a:o5+nil@5", "a:o13+3@13", "a:o31+nil@31", "a:o21+2@21"})
	equal(t, "forwarded changes", topicOut(t, d, "changes"), []string{"a:1@10", "a:2@20", "a:<nil>@30"})

	// Versioned tables join streams only.
	b = kstream.NewBuilder()
	l := kstream.TableFrom(b, "l", serde.String, serde.String, kstream.Versioned(time.Minute))
	r := kstream.TableFrom(b, "r", serde.String, serde.String)
	kstream.TableJoin(l, r, func(_ string, a, b string) string { return a + b })
	if _, err := b.Build(); err == nil || !strings.Contains(err.Error(), "versioned") {
		t.Fatalf("table join of a versioned table: Build error %v", err)
	}
}

// With JoinGrace, a stream record waits until stream time passes its
// timestamp + grace, so a table update that arrives later but is older
// than the record still counts; a record later than the grace joins at
// once.
func TestStreamTableJoinGrace(t *testing.T) {
	for _, grace := range []bool{false, true} {
		b := kstream.NewBuilder()
		prices := kstream.TableFrom(b, "prices", serde.String, serde.String, kstream.Versioned(time.Minute))
		opts := []kstream.NodeOpt{}
		if grace {
			opts = append(opts, kstream.JoinGrace(10*time.Millisecond))
		}
		kstream.LeftJoinTable(kstream.From(b, "orders", serde.String, serde.String), prices,
			func(_ string, o string, p *string) string { return showJoin(&o, p) },
			kstream.StreamJoined[string, string, string]{Key: serde.String, Left: serde.String, Right: serde.String}, opts...).
			To("out", serde.String, serde.String)
		d := mustDriver(t, b)
		p := kstreamtest.Input(d, "prices", serde.String, serde.String)
		o := kstreamtest.Input(d, "orders", serde.String, serde.String)
		pipeS(t, p, "a", "1", 10)
		pipeS(t, o, "a", "o20", 20)
		pipeS(t, p, "a", "2", 15) // older than o20, arriving after it
		pipeS(t, o, "a", "o31", 31)
		pipeS(t, o, "a", "o5", 5)
		pipeS(t, o, "z", "flush", 100)
		want := []string{"a:o20+1@20", "a:o31+2@31", "a:o5+nil@5", "z:flush+nil@100"}
		if grace {
			want = []string{"a:o20+2@20", "a:o5+nil@5", "a:o31+2@31"}
		}
		equal(t, fmt.Sprintf("grace=%v", grace), joinOut(t, d), want)
	}
	b := kstream.NewBuilder()
	kstream.JoinTable(kstream.From(b, "o", serde.String, serde.String), kstream.TableFrom(b, "p", serde.String, serde.String),
		func(_ string, a, b string) string { return a + b },
		kstream.StreamJoined[string, string, string]{Key: serde.String, Left: serde.String, Right: serde.String},
		kstream.JoinGrace(time.Second))
	if _, err := b.Build(); err == nil || !strings.Contains(err.Error(), "versioned") {
		t.Fatalf("JoinGrace without a versioned table: Build error %v", err)
	}
}
