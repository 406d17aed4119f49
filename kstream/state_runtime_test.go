package kstream

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamwork-go/streamwork/kstream/internal/engine"
	"github.com/streamwork-go/streamwork/serde"
	"github.com/streamwork-go/streamwork/state"
)

// countProcessor counts the records of each key in the store "counts" and
// forwards the new count; the value "delete" deletes the key and forwards a
// tombstone.
type countProcessor struct {
	ctx ProcessorContext[string, int64]
	kv  *state.KeyValue[string, int64]
}

func (p *countProcessor) Init(ctx ProcessorContext[string, int64]) error {
	p.ctx = ctx
	var err error
	p.kv, err = StoreOf(ctx, "counts", serde.String, serde.Int64)
	return err
}

func (p *countProcessor) Process(r Record[string, string]) error {
	if r.Value == "delete" {
		if err := p.kv.Delete(r.Key); err != nil {
			return err
		}
		p.ctx.Forward(Record[string, int64]{Key: r.Key, Timestamp: r.Timestamp, Tombstone: true})
		return nil
	}
	n, _, err := p.kv.Get(r.Key)
	if err != nil {
		return err
	}
	n++
	if err := p.kv.Put(r.Key, n); err != nil {
		return err
	}
	p.ctx.Forward(Record[string, int64]{Key: r.Key, Value: n, Timestamp: r.Timestamp})
	return nil
}

func (p *countProcessor) Close() error { return nil }

// countTopology reads "in", counts per key with countProcessor and writes
// the counts to "out". The store is added with the public processor API.
func countTopology(t testing.TB, opts ...StoreOpt) *Topology {
	t.Helper()
	b := NewBuilder()
	AddStore(b, "counts", opts...)
	in := From(b, "in", serde.String, serde.String)
	out := Process(in, func() Processor[string, string, string, int64] { return &countProcessor{} },
		Named("counter"), UseStores("counts"))
	out.To("out", serde.String, serde.Int64)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

// stOpts are rtOpts with a state directory of the test's own.
func stOpts(t *testing.T, brokers []string, appID, dir string, more ...Opt) []Opt {
	return rtOpts(t, brokers, appID, append([]Opt{StateDir(dir)}, more...)...)
}

// stRecord is an input record for partition p.
func stRecord(key, value string, p int32, ms int64) *kgo.Record {
	return &kgo.Record{Topic: "in", Partition: p, Key: []byte(key), Value: []byte(value), Timestamp: time.UnixMilli(ms)}
}

// stWaitProcessed waits until app processed n records and restores
// nothing.
func stWaitProcessed(t *testing.T, app *App, n int64) {
	t.Helper()
	rtWaitFor(t, fmt.Sprintf("%d records processed", n), func() bool {
		m := app.Metrics()
		return m.RecordsProcessed >= n && len(m.Tasks) > 0 && len(m.RestoringTasks) == 0
	})
	if m := app.Metrics(); m.RecordsProcessed != n {
		t.Fatalf("processed %d records, want %d", m.RecordsProcessed, n)
	}
}

// stReadAll reads every record of topic up to its end offsets now.
func stReadAll(t *testing.T, brokers []string, topic string) []*kgo.Record {
	t.Helper()
	n := rtEndOffsets(t, brokers, topic)
	if n == 0 {
		return nil
	}
	return rtConsume(t, brokers, topic).until(int(n))
}

type clRec struct {
	part  int32
	key   string
	value string // "<nil>" for a tombstone
	ts    int64
}

func clRecs(recs []*kgo.Record) []clRec {
	out := make([]clRec, 0, len(recs))
	for _, r := range recs {
		v := "<nil>"
		if r.Value != nil {
			n, err := serde.Int64.Deserialize("", r.Value)
			if err != nil {
				v = "undecodable:" + string(r.Value)
			} else {
				v = strconv.FormatInt(n, 10)
			}
		}
		out = append(out, clRec{r.Partition, string(r.Key), v, r.Timestamp.UnixMilli()})
	}
	slices.SortStableFunc(out, func(a, b clRec) int { return int(a.part - b.part) })
	return out
}

// Every store write is in the changelog, exactly: the key, the value bytes
// (a tombstone for a delete), the task's partition and the record's
// timestamp; the changelog topic is created compacted with one partition
// per task.
func TestChangelogRecordsExact(t *testing.T) {
	brokers := rtCluster(t, map[string]int32{"in": 2, "out": 2})
	rtProduce(t, brokers, []*kgo.Record{
		stRecord("a", "x", 0, 1000), stRecord("b", "x", 1, 1001), stRecord("a", "x", 0, 1002),
		stRecord("a", "delete", 0, 1003), stRecord("b", "x", 1, 1004), stRecord("a", "x", 0, 1005),
	})
	app, err := New(countTopology(t), stOpts(t, brokers, "cl", t.TempDir(), CacheMaxBytes(0))...)
	if err != nil {
		t.Fatal(err)
	}
	stop := rtRun(t, app)
	stWaitProcessed(t, app, 6)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	got := clRecs(stReadAll(t, brokers, "cl-counts-changelog"))
	want := []clRec{
		{0, "a", "1", 1000}, {0, "a", "2", 1002}, {0, "a", "<nil>", 1003}, {0, "a", "1", 1005},
		{1, "b", "1", 1001}, {1, "b", "2", 1004},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("changelog:\n got %v\nwant %v", got, want)
	}
	if m := app.Metrics(); m.ChangelogRecords != 6 || m.RecordsProduced != 6 {
		t.Fatalf("metrics: changelog %d, produced %d; want 6 and 6", m.ChangelogRecords, m.RecordsProduced)
	}
	adm := kadm.NewClient(rtClient(t, brokers))
	ctx, cancel := context.WithTimeout(context.Background(), rtTimeout)
	defer cancel()
	details, err := adm.ListTopics(ctx, "cl-counts-changelog")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(details["cl-counts-changelog"].Partitions); n != 2 {
		t.Fatalf("changelog has %d partitions, want 2", n)
	}
	cfgs, err := adm.DescribeTopicConfigs(ctx, "cl-counts-changelog")
	if err != nil {
		t.Fatal(err)
	}
	rc, err := cfgs.On("cl-counts-changelog", nil)
	if err != nil {
		t.Fatal(err)
	}
	policy := ""
	for _, c := range rc.Configs {
		if c.Key == "cleanup.policy" && c.Value != nil {
			policy = *c.Value
		}
	}
	if policy != "compact" {
		t.Fatalf("changelog cleanup.policy = %q, want compact", policy)
	}
}

// A store without changelog writes nothing to Kafka and creates no topic.
func TestStoreWithoutChangelog(t *testing.T) {
	brokers := rtCluster(t, map[string]int32{"in": 1, "out": 1})
	rtProduce(t, brokers, []*kgo.Record{stRecord("a", "x", 0, 1), stRecord("a", "x", 0, 2)})
	app, err := New(countTopology(t, WithoutChangelog()), stOpts(t, brokers, "nocl", t.TempDir())...)
	if err != nil {
		t.Fatal(err)
	}
	stop := rtRun(t, app)
	stWaitProcessed(t, app, 2)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if m := app.Metrics(); m.ChangelogRecords != 0 || m.RecordsProduced != 2 {
		t.Fatalf("metrics: %+v", m)
	}
	ctx, cancel := context.WithTimeout(context.Background(), rtTimeout)
	defer cancel()
	details, err := kadm.NewClient(rtClient(t, brokers)).ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if details.Has("nocl-counts-changelog") {
		t.Fatal("a changelog topic was created for a store without changelog")
	}
}

// A second instance pointed at the state directory of a running one fails
// at once with ErrStateDirLocked; with its own directory it runs.
func TestStateDirLockConflict(t *testing.T) {
	brokers := rtCluster(t, map[string]int32{"in": 2, "out": 2})
	dir := t.TempDir()
	topo := countTopology(t)
	app1, err := New(topo, stOpts(t, brokers, "lock", dir)...)
	if err != nil {
		t.Fatal(err)
	}
	rtRun(t, app1)
	rtWaitFor(t, "the first instance to run tasks", func() bool { return len(app1.Metrics().Tasks) > 0 })
	app2, err := New(topo, stOpts(t, brokers, "lock", dir, InstanceID("second"))...)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := rtWaitRun(t, app2); !errors.Is(err, ErrStateDirLocked) {
		t.Fatalf("second instance on the same state dir: Run = %v, want ErrStateDirLocked", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("the lock conflict took %v to report", d)
	}
	// A memory-engine App does not use the directory.
	app3, err := New(topo, stOpts(t, brokers, "lock", dir, StoreEngine(MemoryEngine), InstanceID("third"))...)
	if err != nil {
		t.Fatal(err)
	}
	stop3 := rtRun(t, app3)
	rtWaitFor(t, "the memory instance to join", func() bool { return len(app3.Metrics().Tasks) > 0 })
	if err := stop3(); err != nil {
		t.Fatal(err)
	}
}

func TestStateOptionsValidated(t *testing.T) {
	topo := countTopology(t)
	for _, o := range []Opt{StateDir(""), StoreEngine(Engine(7)), BlockCacheSize(-1), MemTableSize(1), CacheMaxBytes(-1)} {
		if _, err := New(topo, ApplicationID("x"), Brokers("b:1"), o); !errors.Is(err, ErrConfig) {
			t.Errorf("New with a bad state option: %v, want ErrConfig", err)
		}
	}
	b := NewBuilder()
	From(b, "in", serde.String, serde.String).Filter(func(string, string) bool { return true }, UseStores("x"))
	if _, err := b.Build(); !errors.Is(err, ErrOptionNotApplicable) {
		t.Errorf("UseStores on Filter: %v, want ErrOptionNotApplicable", err)
	}
	b = NewBuilder()
	Process(From(b, "in", serde.String, serde.String),
		func() Processor[string, string, string, int64] { return &countProcessor{} }, UseStores("missing"))
	if _, err := b.Build(); !errors.Is(err, ErrTopology) {
		t.Errorf("UseStores of a store never added: %v, want ErrTopology", err)
	}
}

// A processor asking for a store its node is not connected to gets
// ErrUnknownStore, from Init.
func TestGetStoreNotConnected(t *testing.T) {
	b := NewBuilder()
	AddStore(b, "counts")
	in := From(b, "in", serde.String, serde.String)
	Process(in, func() Processor[string, string, string, int64] { return &countProcessor{} }).
		To("out", serde.String, serde.Int64)
	// Another node uses the store, so it exists in the sub-topology.
	Process(in, func() Processor[string, string, string, int64] { return &countProcessor{} }, UseStores("counts"))
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	_, err = engine.NewTask(TaskID{}, topo.t.Subs[0], func() *engine.TaskEnv { e := testEnv(nopCollector{}); e.Topo = topo.t; return e }())
	if !errors.Is(err, ErrUnknownStore) {
		t.Fatalf("newTask = %v, want ErrUnknownStore", err)
	}
}

// Global tables run in the App: bootstrapped before processing, kept up to
// date, readable from every task and through QueryStore, and restarted from
// their checkpoint.
func TestAppGlobalTable(t *testing.T) {
	brokers := rtCluster(t, map[string]int32{"in": 2, "out": 2, "names": 3})
	rtProduce(t, brokers, []*kgo.Record{
		{Topic: "names", Partition: 0, Key: []byte("1"), Value: []byte("one")},
		{Topic: "names", Partition: 2, Key: []byte("2"), Value: []byte("two")},
	})
	b := NewBuilder()
	names := GlobalTableFrom(b, "names", serde.String, serde.String, StoreName("names"))
	in := From(b, "in", serde.String, serde.String)
	LeftJoinGlobal(in, names, func(_, v string) string { return v }, func(_ string, name string, found bool) string {
		if !found {
			return "?"
		}
		return name
	}).To("out", serde.String, serde.String)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	app, err := New(topo, stOpts(t, brokers, "glob", dir)...)
	if err != nil {
		t.Fatal(err)
	}
	stop := rtRun(t, app)
	rtProduce(t, brokers, []*kgo.Record{stRecord("a", "1", 0, 1), stRecord("b", "2", 1, 2), stRecord("c", "3", 1, 3)})
	out := rtConsume(t, brokers, "out")
	got := map[string]string{}
	for _, r := range out.until(3) {
		got[string(r.Key)] = string(r.Value)
	}
	if want := map[string]string{"a": "one", "b": "two", "c": "?"}; !maps.Equal(got, want) {
		t.Fatalf("out = %v, want %v", got, want)
	}
	kv, err := QueryStore(app, "names", serde.String, serde.String)
	if err != nil {
		t.Fatal(err)
	}
	rtProduce(t, brokers, []*kgo.Record{{Topic: "names", Partition: 1, Key: []byte("3"), Value: []byte("three")}})
	rtWaitFor(t, "the global table to update", func() bool {
		v, ok, err := kv.Get("3")
		return err == nil && ok && v == "three"
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	// The global store keeps how far it read each partition: the end.
	stored, err := StoredOffsets(dir, "glob")
	if err != nil {
		t.Fatal(err)
	}
	sum := int64(0)
	for _, off := range stored["names"] {
		sum += off
	}
	if end := rtEndOffsets(t, brokers, "names"); len(stored["names"]) != 3 || sum != end {
		t.Fatalf("global store checkpoint %v (sum %d), want 3 partitions adding up to the topic's end %d", stored["names"], sum, end)
	}
}

// The DSL's repartition and changelog topics are created with the right
// partition counts, consumed records of the repartition topic are purged
// after commits, and an internal topic with a wrong count fails Run.
func TestAppInternalTopics(t *testing.T) {
	brokers := rtCluster(t, map[string]int32{"lines": 3, "counts": 2, "bad-word-counts-repartition": 5})
	build := func() *Topology {
		b := NewBuilder()
		words := FlatMapValues(From(b, "lines", serde.String, serde.String), func(l string) []string { return []string{l, l + "!"} })
		Count(GroupBy(words, func(_, w string) string { return w }, serde.String, serde.String), StoreName("word-counts")).
			ToStream().To("counts", serde.String, serde.Int64)
		topo, err := b.Build()
		if err != nil {
			t.Fatal(err)
		}
		return topo
	}
	var recs []*kgo.Record
	for i := range 30 {
		recs = append(recs, &kgo.Record{Topic: "lines", Partition: int32(i % 3), Key: []byte("k"), Value: fmt.Appendf(nil, "w%d", i%4)})
	}
	rtProduce(t, brokers, recs)
	app, err := New(build(), stOpts(t, brokers, "wc", t.TempDir(), CommitInterval(50*time.Millisecond))...)
	if err != nil {
		t.Fatal(err)
	}
	stop := rtRun(t, app)
	// 30 lines in, 60 words through the repartition topic: the words are
	// counted, the lines alone are input records.
	want := map[string]int64{"w0": 8, "w1": 8, "w2": 7, "w3": 7, "w0!": 8, "w1!": 8, "w2!": 7, "w3!": 7}
	got := map[string]int64{}
	rtWaitFor(t, "the 60 words counted", func() bool {
		kv, err := QueryStore(app, "word-counts", serde.String, serde.Int64)
		if err != nil {
			return false
		}
		clear(got)
		for k, v := range kv.All() {
			got[k] = v
		}
		return maps.Equal(got, want)
	})
	if m := app.Metrics(); m.RecordsProcessed != 30 {
		t.Fatalf("processed %d records, want the 30 lines", m.RecordsProcessed)
	}
	adm := kadm.NewClient(rtClient(t, brokers))
	ctx := t.Context()
	details, err := adm.ListTopics(ctx, "wc-word-counts-repartition", "wc-word-counts-changelog")
	if err != nil {
		t.Fatal(err)
	}
	for _, tp := range []string{"wc-word-counts-repartition", "wc-word-counts-changelog"} {
		if n := len(details[tp].Partitions); n != 3 {
			t.Fatalf("%s has %d partitions, want 3", tp, n)
		}
	}
	rtWaitFor(t, "the repartition topic to be purged", func() bool {
		starts, err := adm.ListStartOffsets(ctx, "wc-word-counts-repartition")
		if err != nil {
			return false
		}
		var n int64
		starts.Each(func(o kadm.ListedOffset) { n += o.Offset })
		return n == 60
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	bad, err := New(build(), stOpts(t, brokers, "bad", t.TempDir())...)
	if err != nil {
		t.Fatal(err)
	}
	if err := rtWaitRun(t, bad); !errors.Is(err, ErrInternalTopic) {
		t.Fatalf("Run with a repartition topic of 5 partitions: %v, want ErrInternalTopic", err)
	}
}
