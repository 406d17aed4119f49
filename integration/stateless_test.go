package integration

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamwork-go/streamwork/integration/kafkatest"
	"github.com/streamwork-go/streamwork/kstream"
	"github.com/streamwork-go/streamwork/serde"
)

// statelessBase is the timestamp of input record 0; record i has
// statelessBase + i ms, so an output's timestamp names its input.
var statelessBase = time.UnixMilli(1_700_000_000_000)

// statelessKeys is how many keys the input of the stateless test has; key
// "k<i mod statelessKeys>" is in input partition (i mod statelessKeys) mod 3.
const statelessKeys = 6

// outRec is an expected output record: its key and value bytes, its
// timestamp, its headers and the input record it came from.
type outRec struct {
	key, value []byte
	ts         time.Time
	headers    []kgo.RecordHeader
	seq        int64 // the input record's index
}

func (o outRec) String() string {
	return fmt.Sprintf("key=%q value=%q ts=%d headers=%s", o.key, o.value, o.ts.UnixMilli(), headerString(o.headers))
}

func headerString(hs []kgo.RecordHeader) string {
	parts := make([]string, len(hs))
	for i, h := range hs {
		parts[i] = h.Key + "=" + string(h.Value)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

func recString(r *kgo.Record) string {
	return outRec{key: r.Key, value: r.Value, ts: r.Timestamp, headers: r.Headers}.String()
}

// routeProcessor forwards every record, its value rewritten to say where
// the record was read from, to the child "router-even" or "router-odd".
type routeProcessor struct {
	ctx kstream.ProcessorContext[string, string]
}

func (p *routeProcessor) Init(ctx kstream.ProcessorContext[string, string]) error {
	p.ctx = ctx
	return nil
}

func (p *routeProcessor) Process(r kstream.Record[string, int64]) error {
	md, ok := p.ctx.RecordMetadata()
	if !ok {
		return fmt.Errorf("no record metadata while processing %v", r)
	}
	out := kstream.WithValue(r, routedValue(r.Value, md.Topic, md.Partition, md.Offset))
	if r.Value%2 == 0 {
		p.ctx.ForwardTo("router-even", out)
	} else {
		p.ctx.ForwardTo("router-odd", out)
	}
	return nil
}

func (p *routeProcessor) Close() error { return nil }

func routedValue(v int64, topic string, partition int32, offset int64) string {
	return fmt.Sprintf("%d@%s/%d/%d", v, topic, partition, offset)
}

// TestEveryOperatorOnRealBroker runs one topology that uses every stateless
// operator over a 3-partition input on a real broker, and checks every
// output topic record by record: the exact multiset of key, value,
// timestamp (the input record's) and headers (the input record's), and,
// per output partition and input key, the input order. Then it checks that
// nothing beyond that was written, that Peek and Foreach saw every record
// once, and the App's counters.
func TestEveryOperatorOnRealBroker(t *testing.T) {
	b := kafkatest.Require(t)
	ctx := testContext(t)
	const n = 600

	in := newTopic(t, b, "in", 3)
	outs := map[string]string{}
	for _, name := range []string{"even", "map", "mvk", "flatmap", "fmv", "selectkey", "small", "dyn-even", "dyn-odd", "proc-even", "proc-odd"} {
		outs[name] = newTopic(t, b, "out-"+name, 2)
	}

	// The input: value i, key k<i mod 6>, timestamp base+i ms, header seq=i.
	inputs := make([]*kgo.Record, n)
	for i := range inputs {
		k := i % statelessKeys
		inputs[i] = &kgo.Record{
			Topic: in, Partition: int32(k % 3),
			Key:       []byte("k" + strconv.Itoa(k)),
			Value:     mustSerialize(t, serde.Int64, int64(i)),
			Timestamp: statelessBase.Add(time.Duration(i) * time.Millisecond),
			Headers:   []kgo.RecordHeader{{Key: "seq", Value: []byte(strconv.Itoa(i))}},
		}
	}

	var peeks, foreachN, foreachSum atomic.Int64
	bld := kstream.NewBuilder()
	src := kstream.From(bld, in, serde.String, serde.Int64, kstream.Named("source"))
	kstream.MapValues(src.Filter(func(_ string, v int64) bool { return v%2 == 0 }),
		func(v int64) int64 { return v * 10 }).
		To(outs["even"], serde.String, serde.Int64)
	kstream.Map(src.FilterNot(func(_ string, v int64) bool { return v%3 == 0 }),
		func(k string, v int64) (string, string) { return k + "-m", strconv.FormatInt(v, 10) }).
		To(outs["map"], serde.String, serde.String)
	kstream.MapValuesWithKey(src, func(k string, v int64) string { return k + ":" + strconv.FormatInt(v, 10) }).
		To(outs["mvk"], serde.String, serde.String)
	kstream.FlatMap(src, func(k string, v int64) []kstream.KeyValue[string, int64] {
		if v%5 != 0 {
			return nil
		}
		return []kstream.KeyValue[string, int64]{{Key: k, Value: v}, {Key: k + "x", Value: v + 1000}}
	}).To(outs["flatmap"], serde.String, serde.Int64)
	kstream.FlatMapValues(src, func(v int64) []int64 {
		if v%7 != 0 {
			return nil
		}
		return []int64{v, -v}
	}).To(outs["fmv"], serde.String, serde.Int64)
	kstream.SelectKey(src, func(_ string, v int64) string { return "sk" + strconv.FormatInt(v%4, 10) }).
		To(outs["selectkey"], serde.String, serde.Int64)
	peeked := src.Peek(func(string, int64) { peeks.Add(1) })
	peeked.Foreach(func(_ string, v int64) { foreachN.Add(1); foreachSum.Add(v) })
	branches := peeked.Split("split-",
		kstream.Branch[string, int64]{Name: "small", Pred: func(_ string, v int64) bool { return v < n/3 }},
		kstream.Branch[string, int64]{Name: "mid", Pred: func(_ string, v int64) bool { return v < 2*n/3 }},
		kstream.DefaultBranch[string, int64]("rest"),
	)
	branches["small"].To(outs["small"], serde.String, serde.Int64)
	branches["mid"].Merge(branches["rest"]).ToDynamic(func(r kstream.Record[string, int64]) string {
		if r.Value%2 == 0 {
			return outs["dyn-even"]
		}
		return outs["dyn-odd"]
	}, serde.String, serde.Int64)
	routed := kstream.Process(src, func() kstream.Processor[string, int64, string, string] { return &routeProcessor{} },
		kstream.Named("router"))
	routed.Peek(func(string, string) {}, kstream.Named("router-even")).To(outs["proc-even"], serde.String, serde.String)
	routed.Peek(func(string, string) {}, kstream.Named("router-odd")).To(outs["proc-odd"], serde.String, serde.String)
	topo, err := bld.Build()
	if err != nil {
		t.Fatalf("build: %v", err)
	}

	produce(ctx, t, producer(t, b), inputs)

	// What each output topic must hold, in input order.
	want := map[string][]outRec{}
	add := func(name string, from *kgo.Record, key, value []byte) {
		seq, _ := strconv.ParseInt(string(from.Headers[0].Value), 10, 64)
		want[outs[name]] = append(want[outs[name]], outRec{key: key, value: value, ts: from.Timestamp, headers: from.Headers, seq: seq})
	}
	for i, r := range inputs {
		v, k := int64(i), string(r.Key)
		if v%2 == 0 {
			add("even", r, r.Key, mustSerialize(t, serde.Int64, v*10))
		}
		if v%3 != 0 {
			add("map", r, []byte(k+"-m"), []byte(strconv.FormatInt(v, 10)))
		}
		add("mvk", r, r.Key, []byte(k+":"+strconv.FormatInt(v, 10)))
		if v%5 == 0 {
			add("flatmap", r, r.Key, mustSerialize(t, serde.Int64, v))
			add("flatmap", r, []byte(k+"x"), mustSerialize(t, serde.Int64, v+1000))
		}
		if v%7 == 0 {
			add("fmv", r, r.Key, mustSerialize(t, serde.Int64, v))
			add("fmv", r, r.Key, mustSerialize(t, serde.Int64, -v))
		}
		add("selectkey", r, []byte("sk"+strconv.FormatInt(v%4, 10)), r.Value)
		switch {
		case v < n/3:
			add("small", r, r.Key, r.Value)
		case v%2 == 0:
			add("dyn-even", r, r.Key, r.Value)
		default:
			add("dyn-odd", r, r.Key, r.Value)
		}
		routed := []byte(routedValue(v, in, r.Partition, r.Offset))
		if v%2 == 0 {
			add("proc-even", r, r.Key, routed)
		} else {
			add("proc-odd", r, r.Key, routed)
		}
	}
	wantCounts := map[string]int{}
	totalOut := 0
	topics := make([]string, 0, len(outs))
	for _, tp := range outs {
		topics = append(topics, tp)
		wantCounts[tp] = len(want[tp])
		totalOut += len(want[tp])
	}

	app := startApp(t, b, "solo", topo,
		kstream.ApplicationID(kafkatest.UniqueName(t, "app")),
		kstream.CommitInterval(100*time.Millisecond),
	)
	rd := newReader(t, b, topics...)
	rd.readCounts(ctx, wantCounts, app)
	if err := app.stop(t); err != nil {
		t.Fatalf("Run returned %v after a clean shutdown, want nil", err)
	}
	rd.readToEnd(ctx)

	for _, name := range slices.Sorted(maps.Keys(outs)) {
		tp := outs[name]
		t.Run(name, func(t *testing.T) {
			requireExactOutput(t, tp, rd.records(tp), want[tp], func(seq int64) string {
				return "k" + strconv.FormatInt(seq%statelessKeys, 10)
			})
		})
	}

	if got := peeks.Load(); got != n {
		t.Errorf("Peek saw %d records, want %d", got, n)
	}
	if got, sum := foreachN.Load(), foreachSum.Load(); got != n || sum != n*(n-1)/2 {
		t.Errorf("Foreach saw %d records summing to %d, want %d summing to %d", got, sum, n, n*(n-1)/2)
	}
	m := app.Metrics()
	if m.RecordsProcessed != n || m.RecordsProduced != int64(totalOut) {
		t.Errorf("Metrics: RecordsProcessed=%d RecordsProduced=%d, want %d and %d", m.RecordsProcessed, m.RecordsProduced, n, totalOut)
	}
}

// requireExactOutput checks that got, the records of topic as read
// partition by partition, are exactly want as a multiset (key, value,
// timestamp and headers), that each output key is in one partition, and
// that in each output partition the records of each input key (inputKey of
// the input's index) come in the order of want.
func requireExactOutput(t *testing.T, topic string, got []*kgo.Record, want []outRec, inputKey func(seq int64) string) {
	t.Helper()
	gotStrs := make([]string, len(got))
	for i, r := range got {
		gotStrs[i] = recString(r)
	}
	wantStrs := make([]string, len(want))
	for i, o := range want {
		wantStrs[i] = o.String()
	}
	if missing, extra := multisetDiff(wantStrs, gotStrs); len(missing) > 0 || len(extra) > 0 {
		t.Fatalf("%s holds %d records, want %d: %d missing (first %v), %d unexpected (first %v)",
			topic, len(got), len(want), len(missing), firstN(missing, 3), len(extra), firstN(extra, 3))
	}

	partOf := map[string]int32{}
	for _, r := range got {
		if p, ok := partOf[string(r.Key)]; ok && p != r.Partition {
			t.Errorf("%s: key %q is in partitions %d and %d", topic, r.Key, p, r.Partition)
		}
		partOf[string(r.Key)] = r.Partition
	}
	type group struct {
		partition int32
		inputKey  string
	}
	gotOrder := map[group][]string{}
	for _, r := range got {
		seq := r.Timestamp.Sub(statelessBase).Milliseconds()
		g := group{r.Partition, inputKey(seq)}
		gotOrder[g] = append(gotOrder[g], recString(r))
	}
	wantOrder := map[group][]string{}
	for _, o := range want {
		g := group{partOf[string(o.key)], inputKey(o.seq)}
		wantOrder[g] = append(wantOrder[g], o.String())
	}
	for g, w := range wantOrder {
		if gs := gotOrder[g]; !slices.Equal(gs, w) {
			t.Errorf("%s partition %d, records of input key %s out of order:\n got %v\nwant %v", topic, g.partition, g.inputKey, gs, w)
		}
	}
}

// multisetDiff returns the elements of want missing from got and those of
// got beyond want, counting repeats.
func multisetDiff(want, got []string) (missing, extra []string) {
	count := map[string]int{}
	for _, w := range want {
		count[w]++
	}
	for _, g := range got {
		if count[g] > 0 {
			count[g]--
		} else {
			extra = append(extra, g)
		}
	}
	for _, w := range want {
		if count[w] > 0 {
			count[w]--
			missing = append(missing, w)
		}
	}
	return missing, extra
}

func firstN[T any](s []T, n int) []T { return s[:min(n, len(s))] }

func mustSerialize[T any](t testing.TB, s serde.Serde[T], v T) []byte {
	t.Helper()
	b, err := s.Serialize("", v)
	if err != nil {
		t.Fatalf("serialize %v: %v", v, err)
	}
	return b
}
