package kstream

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamwork-go/streamwork/kstream/internal/runtime"
	"github.com/streamwork-go/streamwork/serde"
)

// rtTimeout bounds every wait of the runtime tests.
const rtTimeout = 30 * time.Second

// rtCluster starts a one-broker kfake cluster with the given topics (name
// => partitions) and returns its address.
func rtCluster(t *testing.T, topics map[string]int32) []string {
	t.Helper()
	opts := []kfake.Opt{kfake.NumBrokers(1)}
	for tp, n := range topics {
		opts = append(opts, kfake.SeedTopics(n, tp))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

// rtLogger logs to the test's output (shown on failure or with -v).
func rtLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// rtOpts are the options every runtime test uses: fast heartbeats so
// rebalances take milliseconds, not seconds.
func rtOpts(t *testing.T, brokers []string, appID string, more ...Opt) []Opt {
	return append([]Opt{
		ApplicationID(appID), Brokers(brokers...), Logger(rtLogger(t)),
		ClientOpts(kgo.HeartbeatInterval(50*time.Millisecond), kgo.FetchMaxWait(100*time.Millisecond)),
	}, more...)
}

// rtRun starts app.Run and returns a function that cancels it and returns
// its result.
func rtRun(t *testing.T, app *App) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx) }()
	var stopped bool
	var result error
	stop = func() error {
		if stopped {
			return result
		}
		stopped = true
		cancel()
		select {
		case result = <-done:
		case <-time.After(rtTimeout):
			t.Fatal("Run did not return after cancel")
		}
		return result
	}
	t.Cleanup(func() { stop() })
	return stop
}

// rtWaitRun waits for a Run that ends by itself (a failure).
func rtWaitRun(t *testing.T, app *App) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- app.Run(context.Background()) }()
	select {
	case err := <-done:
		return err
	case <-time.After(rtTimeout):
		t.Fatal("Run did not fail")
		return nil
	}
}

// rtWaitFor polls cond until it holds, or fails the test at the deadline.
func rtWaitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(rtTimeout)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", rtTimeout, what)
		}
		<-tick.C
	}
}

func rtClient(t *testing.T, brokers []string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// rtProduce writes recs synchronously. Records with Partition >= 0 go to
// that partition, others are partitioned by key.
func rtProduce(t *testing.T, brokers []string, recs []*kgo.Record) {
	t.Helper()
	cl := rtClient(t, brokers, kgo.RecordPartitioner(runtime.NewPartitioner()))
	ctx, cancel := context.WithTimeout(context.Background(), rtTimeout)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// rtConsumer reads topic from the start.
type rtConsumer struct {
	t    *testing.T
	cl   *kgo.Client
	got  []*kgo.Record
	name string
}

func rtConsume(t *testing.T, brokers []string, topic string) *rtConsumer {
	return &rtConsumer{t: t, name: topic, cl: rtClient(t, brokers, kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))}
}

// until reads until n records arrived in total, or fails the test at the
// deadline.
func (c *rtConsumer) until(n int) []*kgo.Record {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), rtTimeout)
	defer cancel()
	for len(c.got) < n {
		fs := c.cl.PollFetches(ctx)
		if ctx.Err() != nil {
			c.t.Fatalf("topic %s: %d records after %v, want %d", c.name, len(c.got), rtTimeout, n)
		}
		for _, fe := range fs.Errors() {
			c.t.Fatalf("consume %s: %v", c.name, fe.Err)
		}
		c.got = append(c.got, fs.Records()...)
	}
	return c.got
}

// rtEndOffsets returns the number of records written to topic: the sum of
// its partitions' end offsets.
func rtEndOffsets(t *testing.T, brokers []string, topic string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), rtTimeout)
	defer cancel()
	ends, err := kadm.NewClient(rtClient(t, brokers)).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	ends.Each(func(o kadm.ListedOffset) { n += o.Offset })
	return n
}

// rtPipeline is filter + map + split + merge: values "<n>" are dropped when
// n%5 == 0, others become "<n>!" and then "E:<n>!" (even n) or "O:<n>!"
// (odd n), merged into "out".
func rtPipeline(t *testing.T) *Topology {
	t.Helper()
	b := NewBuilder()
	in := From(b, "in", serde.String, serde.String)
	kept := in.FilterNot(func(_ string, v string) bool { return rtNum(v)%5 == 0 })
	mapped := Map(kept, func(k, v string) (string, string) { return k, v + "!" })
	br := mapped.Split("split-",
		Branch[string, string]{Name: "even", Pred: func(_ string, v string) bool { return rtNum(v)%2 == 0 }},
		DefaultBranch[string, string]("odd"))
	even := MapValues(br["even"], func(v string) string { return "E:" + v })
	odd := MapValues(br["odd"], func(v string) string { return "O:" + v })
	even.Merge(odd).To("out", serde.String, serde.String)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

func rtNum(v string) int {
	n, _ := strconv.Atoi(strings.TrimSuffix(v, "!"))
	return n
}

// rtInput makes records from..to-1 with value n, key "k<n mod keys>".
func rtInput(from, to, keys int) (recs []*kgo.Record, want map[string][]string) {
	want = map[string][]string{}
	for n := from; n < to; n++ {
		k := fmt.Sprintf("k%d", n%keys)
		recs = append(recs, &kgo.Record{Topic: "in", Partition: -1, Key: []byte(k), Value: []byte(strconv.Itoa(n))})
		if n%5 == 0 {
			continue
		}
		if n%2 == 0 {
			want[k] = append(want[k], fmt.Sprintf("E:%d!", n))
		} else {
			want[k] = append(want[k], fmt.Sprintf("O:%d!", n))
		}
	}
	return recs, want
}

// rtByKey groups values by key, in the order read (one key lives in one
// partition, so that is the order they were written).
func rtByKey(recs []*kgo.Record) map[string][]string {
	out := map[string][]string{}
	for _, r := range recs {
		out[string(r.Key)] = append(out[string(r.Key)], string(r.Value))
	}
	return out
}

func rtCount(m map[string][]string) int {
	n := 0
	for _, vs := range m {
		n += len(vs)
	}
	return n
}

func rtAssertOutput(t *testing.T, got []*kgo.Record, want map[string][]string) {
	t.Helper()
	gotBy := rtByKey(got)
	for k, vs := range want {
		if !slices.Equal(gotBy[k], vs) {
			t.Fatalf("key %s: got %v\nwant %v", k, gotBy[k], vs)
		}
	}
	if len(gotBy) != len(want) {
		t.Fatalf("got %d keys, want %d", len(gotBy), len(want))
	}
}

// Two Apps with two workers each share the six tasks of a 6-partition
// input. Records keep arriving while the second App joins (tasks move to it
// with cooperative rebalances) and while the first one leaves (its tasks move
// on after it committed). The output is exactly the expected records, in
// per-key order: no loss, no duplicate.
func TestAppTwoInstancesProduceExactOutput(t *testing.T) {
	brokers := rtCluster(t, map[string]int32{"in": 6, "out": 3})
	topo := rtPipeline(t)
	want := map[string][]string{}
	batch := func(from, to int) []*kgo.Record {
		recs, w := rtInput(from, to, 24)
		for k, vs := range w {
			want[k] = append(want[k], vs...)
		}
		return recs
	}
	rtProduce(t, brokers, batch(0, 600))

	app1, err := New(topo, rtOpts(t, brokers, "pipeline", Workers(2), InstanceID("one"))...)
	if err != nil {
		t.Fatal(err)
	}
	stop1 := rtRun(t, app1)
	out := rtConsume(t, brokers, "out")
	out.until(100)

	app2, err := New(topo, rtOpts(t, brokers, "pipeline", Workers(2), InstanceID("two"))...)
	if err != nil {
		t.Fatal(err)
	}
	wait := rtProduceAsync(brokers, batch(600, 1200))
	stop2 := rtRun(t, app2)
	rtWaitFor(t, "both instances to own tasks", func() bool {
		return len(app1.Metrics().Tasks) > 0 && len(app2.Metrics().Tasks) > 0
	})
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	out.until(rtCount(want))

	wait = rtProduceAsync(brokers, batch(1200, 1800))
	if err := stop1(); err != nil {
		t.Fatalf("app1: %v", err)
	}
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	got := out.until(rtCount(want))
	m1 := app1.Metrics()
	if err := stop2(); err != nil {
		t.Fatalf("app2: %v", err)
	}
	m2 := app2.Metrics()
	rtAssertOutput(t, got, want)
	if n := rtEndOffsets(t, brokers, "out"); n != int64(rtCount(want)) {
		t.Fatalf("out has %d records, want exactly %d", n, rtCount(want))
	}
	if p := m1.RecordsProcessed + m2.RecordsProcessed; p != 1800 {
		t.Fatalf("processed %d records, want 1800", p)
	}
	if len(m1.Tasks) != 0 || len(m2.Tasks) != 0 || m1.Commits == 0 || m2.Commits == 0 {
		t.Fatalf("after shutdown: tasks %v %v, commits %d %d", m1.Tasks, m2.Tasks, m1.Commits, m2.Commits)
	}
}

// rtProduceAsync writes recs in batches of 50 from another goroutine; wait
// returns the first error.
func rtProduceAsync(brokers []string, recs []*kgo.Record) (wait func() error) {
	done := make(chan error, 1)
	go func() {
		cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(runtime.NewPartitioner()))
		if err != nil {
			done <- err
			return
		}
		defer cl.Close()
		ctx, cancel := context.WithTimeout(context.Background(), rtTimeout)
		defer cancel()
		for len(recs) > 0 {
			n := min(50, len(recs))
			if err := cl.ProduceSync(ctx, recs[:n]...).FirstErr(); err != nil {
				done <- err
				return
			}
			recs = recs[n:]
		}
		done <- nil
	}()
	return func() error { return <-done }
}

// A clean shutdown commits, so a new App with the same id processes only
// the records written since.
func TestAppShutdownCommitsAndRestartProcessesOnlyNewRecords(t *testing.T) {
	for _, g := range []DeliveryGuarantee{AtLeastOnce, AtMostOnce} {
		t.Run(g.String(), func(t *testing.T) { testRestart(t, g) })
	}
}

func testRestart(t *testing.T, g DeliveryGuarantee) {
	brokers := rtCluster(t, map[string]int32{"in": 6, "out": 6})
	topo := rtPipeline(t)
	recs1, want1 := rtInput(0, 300, 10)
	rtProduce(t, brokers, recs1)

	app1, err := New(topo, rtOpts(t, brokers, "restart", Guarantee(g))...)
	if err != nil {
		t.Fatal(err)
	}
	stop1 := rtRun(t, app1)
	out := rtConsume(t, brokers, "out")
	first := slices.Clone(out.until(rtCount(want1)))
	if err := stop1(); err != nil {
		t.Fatal(err)
	}
	rtAssertOutput(t, first, want1)
	if m := app1.Metrics(); m.Commits == 0 || m.RecordsProcessed != 300 || m.RecordsProduced != int64(rtCount(want1)) {
		t.Fatalf("metrics after the first run: %+v", m)
	}

	recs2, want2 := rtInput(300, 450, 10)
	rtProduce(t, brokers, recs2)
	app2, err := New(topo, rtOpts(t, brokers, "restart", Guarantee(g))...)
	if err != nil {
		t.Fatal(err)
	}
	stop2 := rtRun(t, app2)
	all := out.until(rtCount(want1) + rtCount(want2))
	if err := stop2(); err != nil {
		t.Fatal(err)
	}
	rtAssertOutput(t, all[len(first):], want2)
	if n := rtEndOffsets(t, brokers, "out"); n != int64(rtCount(want1)+rtCount(want2)) {
		t.Fatalf("out has %d records, want %d", n, rtCount(want1)+rtCount(want2))
	}
	if m := app2.Metrics(); m.RecordsProcessed != 150 {
		t.Fatalf("second run processed %d records, want only the 150 new ones", m.RecordsProcessed)
	}
}

// With a buffer of 5 records per partition fetching pauses and resumes, and
// the output is still exact.
func TestAppBackpressurePausesAndKeepsOutputExact(t *testing.T) {
	brokers := rtCluster(t, map[string]int32{"in": 6, "out": 2})
	recs, want := rtInput(0, 900, 12)
	rtProduce(t, brokers, recs)
	app, err := New(rtPipeline(t), rtOpts(t, brokers, "backpressure", BufferedRecordsPerPartition(5), CommitInterval(50*time.Millisecond))...)
	if err != nil {
		t.Fatal(err)
	}
	stop := rtRun(t, app)
	got := rtConsume(t, brokers, "out").until(rtCount(want))
	m := app.Metrics()
	if m.MaxPaused < 1 {
		t.Fatalf("no partition was paused: %+v", m)
	}
	// Every partition was read to its end: lag 0 on all six.
	rtWaitFor(t, "zero lag on every partition", func() bool {
		lag := app.Metrics().Lag["in"]
		if len(lag) != 6 {
			return false
		}
		for _, l := range lag {
			if l != 0 {
				return false
			}
		}
		return true
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	rtAssertOutput(t, got, want)
	if n := rtEndOffsets(t, brokers, "out"); n != int64(rtCount(want)) {
		t.Fatalf("out has %d records, want %d", n, rtCount(want))
	}
	if m := app.Metrics(); m.Paused != 0 || len(m.Lag) != 0 {
		t.Fatalf("after shutdown: %d partitions paused, lag %v", m.Paused, m.Lag)
	}
}

// errorLogs is a slog handler that keeps the messages of error-level
// records.
type errorLogs struct {
	mu   sync.Mutex
	msgs []string
}

func (h *errorLogs) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelError }
func (h *errorLogs) WithAttrs([]slog.Attr) slog.Handler           { return h }
func (h *errorLogs) WithGroup(string) slog.Handler                { return h }
func (h *errorLogs) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	h.msgs = append(h.msgs, r.Message)
	h.mu.Unlock()
	return nil
}

func (h *errorLogs) messages() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.msgs)
}

func TestAppMissingTopic(t *testing.T) {
	brokers := rtCluster(t, map[string]int32{"in": 2})
	b := NewBuilder()
	From(b, "in", serde.String, serde.String).To("nowhere", serde.String, serde.String)
	From(b, "absent", serde.String, serde.String).To("in", serde.String, serde.String)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	errs := &errorLogs{}
	app, err := New(topo, rtOpts(t, brokers, "missing", Logger(slog.New(errs)))...)
	if err != nil {
		t.Fatal(err)
	}
	err = rtWaitRun(t, app)
	if !errors.Is(err, ErrMissingTopic) {
		t.Fatalf("err = %v, want ErrMissingTopic", err)
	}
	// Returned, not also logged: the caller reports it once.
	if got := errs.messages(); len(got) != 0 {
		t.Errorf("the start-up error was also logged at error level: %q", got)
	}
	for _, name := range []string{`"absent"`, `"nowhere"`} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error %q does not name %s", err, name)
		}
	}
}

// infoLogs records the messages logged at info level and above.
type infoLogs struct{ errorLogs }

func (h *infoLogs) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelInfo }
func (h *infoLogs) WithAttrs([]slog.Attr) slog.Handler           { return h }
func (h *infoLogs) WithGroup(string) slog.Handler                { return h }

func (h *infoLogs) logged(msg string) bool { return slices.Contains(h.messages(), msg) }

// An input topic created after Run started, within the grace Run gives a
// topic that the metadata does not show yet, is used: Run waits for it,
// says so once, and processes its records.
func TestAppWaitsForTopicCreatedJustBefore(t *testing.T) {
	brokers := rtCluster(t, map[string]int32{"out": 1})
	b := NewBuilder()
	From(b, "late", serde.String, serde.String).To("out", serde.String, serde.String)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	logs := &infoLogs{}
	app, err := New(topo, rtOpts(t, brokers, "late-topic", Logger(slog.New(logs)))...)
	if err != nil {
		t.Fatal(err)
	}
	stop := rtRun(t, app)
	const waiting = "kstream: waiting for topics to appear in the cluster's metadata"
	rtWaitFor(t, "Run to wait for the missing topic", func() bool { return logs.logged(waiting) })
	ctx, cancel := context.WithTimeout(context.Background(), rtTimeout)
	defer cancel()
	if _, err := kadm.NewClient(rtClient(t, brokers)).CreateTopic(ctx, 2, 1, nil, "late"); err != nil {
		t.Fatal(err)
	}
	rtProduce(t, brokers, []*kgo.Record{{Topic: "late", Key: []byte("k"), Value: []byte("v"), Partition: -1}})
	got := rtConsume(t, brokers, "out").until(1)
	if k, v := string(got[0].Key), string(got[0].Value); k != "k" || v != "v" {
		t.Errorf("out has %s=%s, want k=v", k, v)
	}
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	n := 0
	for _, m := range logs.messages() {
		if m == waiting {
			n++
		}
	}
	if n != 1 {
		t.Errorf("logged %q %d times, want once", waiting, n)
	}
}

func TestAppCopartitionMismatch(t *testing.T) {
	brokers := rtCluster(t, map[string]int32{"left": 6, "right": 3, "out": 1})
	b := NewBuilder()
	FromTopics(b, []string{"left", "right"}, serde.String, serde.String).To("out", serde.String, serde.String)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	app, err := New(topo, rtOpts(t, brokers, "copart")...)
	if err != nil {
		t.Fatal(err)
	}
	err = rtWaitRun(t, app)
	if !errors.Is(err, ErrCopartition) {
		t.Fatalf("err = %v, want ErrCopartition", err)
	}
	for _, want := range []string{"left has 6 partitions", "right has 3 partitions"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	topo := rtPipeline(t)
	eos, err := New(topo, ApplicationID("a"), Brokers("x:1"), Guarantee(ExactlyOnce))
	if err != nil {
		t.Fatalf("ExactlyOnce: %v", err)
	}
	if eos.rt.Config().InstanceID != "" || eos.rt.Config().CommitInterval != 100*time.Millisecond {
		t.Fatalf("ExactlyOnce: instance id %q (want none before Run: it is kept in the state directory), commit interval %v (want 100ms)",
			eos.rt.Config().InstanceID, eos.rt.Config().CommitInterval)
	}
	if _, err := New(topo, Brokers("x:1")); !errors.Is(err, ErrConfig) {
		t.Fatalf("no app id: err = %v", err)
	}
	if _, err := New(nil, ApplicationID("a"), Brokers("x:1")); !errors.Is(err, ErrConfig) {
		t.Fatalf("nil topology: err = %v", err)
	}
	app, err := New(topo, ApplicationID("a"), Brokers("x:1"))
	if err != nil {
		t.Fatal(err)
	}
	if app.rt.Config().InstanceID == "" {
		t.Fatal("no default instance id")
	}
}

func TestAppRunOnlyOnce(t *testing.T) {
	brokers := rtCluster(t, map[string]int32{"in": 1, "out": 1})
	app, err := New(rtPipeline(t), rtOpts(t, brokers, "once")...)
	if err != nil {
		t.Fatal(err)
	}
	stop := rtRun(t, app)
	rtWaitFor(t, "the first Run to get its task", func() bool { return len(app.Metrics().Tasks) == 1 })
	if err := app.Run(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("second Run: %v", err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// poisonSetup writes 20 records with 8-byte int64 values to the 2
// partitions of "nums" and one 3-byte value (the poison pill) at partition
// 1, offset 4, and returns the expected outputs of the good records.
func poisonSetup(t *testing.T, brokers []string) (want map[string][]string) {
	t.Helper()
	var recs []*kgo.Record
	want = map[string][]string{}
	for p := range int32(2) {
		for i := range 10 {
			k := fmt.Sprintf("p%d", p)
			v := binary.BigEndian.AppendUint64(nil, uint64(i))
			if p == 1 && i == 4 {
				v = []byte("bad")
			} else {
				want[k] = append(want[k], strconv.Itoa(i*10))
			}
			recs = append(recs, &kgo.Record{Topic: "nums", Partition: p, Key: []byte(k), Value: v,
				Headers: []kgo.RecordHeader{{Key: "origin", Value: []byte("test")}}})
		}
	}
	rtProduce(t, brokers, recs)
	return want
}

func poisonTopology(t *testing.T) *Topology {
	t.Helper()
	b := NewBuilder()
	MapValues(From(b, "nums", serde.String, serde.Int64), func(v int64) string { return strconv.FormatInt(v*10, 10) }).
		To("tens", serde.String, serde.String)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

func TestAppPoisonPillFailsRun(t *testing.T) {
	brokers := rtCluster(t, map[string]int32{"nums": 2, "tens": 2})
	poisonSetup(t, brokers)
	app, err := New(poisonTopology(t), rtOpts(t, brokers, "poison-fail")...)
	if err != nil {
		t.Fatal(err)
	}
	err = rtWaitRun(t, app)
	var perr *ProcessingError
	if !errors.As(err, &perr) {
		t.Fatalf("err = %v, want a *ProcessingError", err)
	}
	if perr.Topic != "nums" || perr.Partition != 1 || perr.Offset != 4 {
		t.Fatalf("error at %s/%d@%d, want nums/1@4: %v", perr.Topic, perr.Partition, perr.Offset, perr)
	}

	// Nothing at or past the pill was committed: a new run fails on it again.
	app2, err := New(poisonTopology(t), rtOpts(t, brokers, "poison-fail")...)
	if err != nil {
		t.Fatal(err)
	}
	if err := rtWaitRun(t, app2); !errors.As(err, &perr) || perr.Offset != 4 {
		t.Fatalf("second run: err = %v", err)
	}
}

func TestAppPoisonPillSkipped(t *testing.T) {
	brokers := rtCluster(t, map[string]int32{"nums": 2, "tens": 2})
	want := poisonSetup(t, brokers)
	app, err := New(poisonTopology(t), rtOpts(t, brokers, "poison-skip", DeserializationErrorHandler(LogAndSkip))...)
	if err != nil {
		t.Fatal(err)
	}
	stop := rtRun(t, app)
	got := rtConsume(t, brokers, "tens").until(19)
	// The last record of each partition was processed, so the skip is counted.
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	rtAssertOutput(t, got, want)
	if n := rtEndOffsets(t, brokers, "tens"); n != 19 {
		t.Fatalf("tens has %d records, want 19", n)
	}
	if m := app.Metrics(); m.Skipped[DeserializationErrorKind] != 1 || m.RecordsProcessed != 20 {
		t.Fatalf("skipped %v, processed %d; want 1 and 20", m.Skipped, m.RecordsProcessed)
	}
}

func TestAppPoisonPillDeadLettered(t *testing.T) {
	brokers := rtCluster(t, map[string]int32{"nums": 2, "tens": 2, "dlq": 1})
	want := poisonSetup(t, brokers)
	app, err := New(poisonTopology(t), rtOpts(t, brokers, "poison-dlq", DeserializationErrorHandler(LogAndDeadLetter("dlq")))...)
	if err != nil {
		t.Fatal(err)
	}
	stop := rtRun(t, app)
	got := rtConsume(t, brokers, "tens").until(19)
	dead := rtConsume(t, brokers, "dlq").until(1)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	rtAssertOutput(t, got, want)
	d := dead[0]
	if string(d.Key) != "p1" || string(d.Value) != "bad" {
		t.Fatalf("dead letter %q=%q, want the original bytes p1=bad", d.Key, d.Value)
	}
	h := map[string]string{}
	for _, rh := range d.Headers {
		h[rh.Key] = string(rh.Value)
	}
	for k, v := range map[string]string{
		"origin": "test", HeaderSourceTopic: "nums", HeaderSourcePart: "1", HeaderSourceOffset: "4",
		HeaderErrorKind: "deserialization", HeaderSourceTask: "0_1",
	} {
		if h[k] != v {
			t.Errorf("header %s = %q, want %q (all: %v)", k, h[k], v, h)
		}
	}
	if h[HeaderError] == "" {
		t.Error("no error header")
	}
	if m := app.Metrics(); m.DeadLettered[DeserializationErrorKind] != 1 || m.RecordsProduced != 20 {
		t.Fatalf("dead-lettered %v, produced %d; want 1 and 20 (19 + the dead letter)", m.DeadLettered, m.RecordsProduced)
	}
	if n := rtEndOffsets(t, brokers, "dlq"); n != 1 {
		t.Fatalf("dlq has %d records, want 1", n)
	}
}

// prodTopology writes every record to "out", except the value "lost",
// which goes to a topic that does not exist: its production fails.
func prodTopology(t *testing.T) *Topology {
	t.Helper()
	b := NewBuilder()
	From(b, "in", serde.String, serde.String).ToDynamic(func(r Record[string, string]) string {
		if r.Value == "lost" {
			return "no-such-topic"
		}
		return "out"
	}, serde.String, serde.String)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

func prodSetup(t *testing.T, topics map[string]int32) []string {
	t.Helper()
	brokers := rtCluster(t, topics)
	var recs []*kgo.Record
	for _, v := range []string{"a", "b", "lost", "c", "d"} {
		recs = append(recs, &kgo.Record{Topic: "in", Partition: 0, Key: []byte("k"), Value: []byte(v)})
	}
	rtProduce(t, brokers, recs)
	return brokers
}

// prodOpts make a failed production surface at once: kgo gives up on an
// unknown topic at the first metadata answer.
func prodOpts(t *testing.T, brokers []string, appID string, more ...Opt) []Opt {
	return append(rtOpts(t, brokers, appID, ClientOpts(kgo.UnknownTopicRetries(0)), CommitInterval(time.Millisecond)), more...)
}

func TestAppProductionErrorFails(t *testing.T) {
	brokers := prodSetup(t, map[string]int32{"in": 1, "out": 1})
	app, err := New(prodTopology(t), prodOpts(t, brokers, "prod-fail")...)
	if err != nil {
		t.Fatal(err)
	}
	err = rtWaitRun(t, app)
	var perr *ProductionError
	if !errors.As(err, &perr) || perr.Topic != "no-such-topic" {
		t.Fatalf("err = %v, want a *ProductionError for no-such-topic", err)
	}
	// No commit covers the record whose output failed (offset 2).
	ctx, cancel := context.WithTimeout(context.Background(), rtTimeout)
	defer cancel()
	offs, err := kadm.NewClient(rtClient(t, brokers)).FetchOffsets(ctx, "prod-fail")
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := offs.Lookup("in", 0); ok && o.At > 2 {
		t.Fatalf("committed offset %d is past the failed record at 2", o.At)
	}
}

func TestAppProductionErrorSkipped(t *testing.T) {
	brokers := prodSetup(t, map[string]int32{"in": 1, "out": 1})
	app, err := New(prodTopology(t), prodOpts(t, brokers, "prod-skip", ProductionErrorHandler(LogAndSkip))...)
	if err != nil {
		t.Fatal(err)
	}
	stop := rtRun(t, app)
	got := rtConsume(t, brokers, "out").until(4)
	rtWaitFor(t, "the skip to be counted", func() bool { return app.Metrics().Skipped[ProductionErrorKind] == 1 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	rtAssertOutput(t, got, map[string][]string{"k": {"a", "b", "c", "d"}})
	if m := app.Metrics(); m.Skipped[ProductionErrorKind] != 1 || m.RecordsProduced != 4 {
		t.Fatalf("skipped %v, produced %d; want 1 and 4", m.Skipped, m.RecordsProduced)
	}
}

func TestAppProductionErrorDeadLettered(t *testing.T) {
	brokers := prodSetup(t, map[string]int32{"in": 1, "out": 1, "dlq": 1})
	app, err := New(prodTopology(t), prodOpts(t, brokers, "prod-dlq", ProductionErrorHandler(LogAndDeadLetter("dlq")))...)
	if err != nil {
		t.Fatal(err)
	}
	stop := rtRun(t, app)
	got := rtConsume(t, brokers, "out").until(4)
	dead := rtConsume(t, brokers, "dlq").until(1)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	rtAssertOutput(t, got, map[string][]string{"k": {"a", "b", "c", "d"}})
	h := map[string]string{}
	for _, rh := range dead[0].Headers {
		h[rh.Key] = string(rh.Value)
	}
	if string(dead[0].Value) != "lost" || h[HeaderErrorKind] != "production" || h[HeaderSourceTopic] != "no-such-topic" || h[HeaderSourceOffset] != "-1" {
		t.Fatalf("dead letter %q with headers %v", dead[0].Value, h)
	}
	if m := app.Metrics(); m.DeadLettered[ProductionErrorKind] != 1 || m.RecordsProduced != 5 {
		t.Fatalf("dead-lettered %v, produced %d; want 1 and 5", m.DeadLettered, m.RecordsProduced)
	}
}

// TestAppOversizedOutputSkipped writes an output record larger than the
// output topic's max.message.bytes among small ones: the broker refuses
// the batch that holds it, and only the record refused on its own goes to
// the production handler; the small records that shared its batch are
// written, in order.
func TestAppOversizedOutputSkipped(t *testing.T) {
	for _, g := range []DeliveryGuarantee{AtLeastOnce, ExactlyOnce} {
		t.Run(g.String(), func(t *testing.T) {
			brokers := rtCluster(t, map[string]int32{"in": 1, "out": 1})
			ctx, cancel := context.WithTimeout(context.Background(), rtTimeout)
			defer cancel()
			limit := "4096"
			resp, err := kadm.NewClient(rtClient(t, brokers)).AlterTopicConfigs(ctx,
				[]kadm.AlterConfig{{Op: kadm.SetConfig, Name: "max.message.bytes", Value: &limit}}, "out")
			if err == nil {
				_, err = resp.On("out", nil)
			}
			if err != nil {
				t.Fatal(err)
			}
			big := make([]byte, 16<<10) // random bytes: no compression shrinks them below the limit
			rng := rand.New(rand.NewPCG(1, 2))
			for i := range big {
				big[i] = byte(rng.Uint32())
			}
			var recs []*kgo.Record
			for _, v := range []string{"a", "b", "c", string(big), "d", "e"} {
				recs = append(recs, &kgo.Record{Topic: "in", Partition: 0, Key: []byte("k"), Value: []byte(v)})
			}
			rtProduce(t, brokers, recs)
			b := NewBuilder()
			From(b, "in", serde.String, serde.String).To("out", serde.String, serde.String)
			topo, err := b.Build()
			if err != nil {
				t.Fatal(err)
			}
			app, err := New(topo, rtOpts(t, brokers, "oversize-"+g.String(), Guarantee(g),
				CommitInterval(10*time.Millisecond), ProductionErrorHandler(LogAndSkip))...)
			if err != nil {
				t.Fatal(err)
			}
			stop := rtRun(t, app)
			out := &rtConsumer{t: t, name: "out", cl: rtClient(t, brokers, kgo.ConsumeTopics("out"),
				kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond),
				kgo.FetchIsolationLevel(kgo.ReadCommitted()))}
			got := out.until(5)
			rtWaitFor(t, "the skip to be counted", func() bool { return app.Metrics().Skipped[ProductionErrorKind] == 1 })
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			rtAssertOutput(t, got, map[string][]string{"k": {"a", "b", "c", "d", "e"}})
			if m := app.Metrics(); m.Skipped[ProductionErrorKind] != 1 || m.RecordsProduced != 5 {
				t.Fatalf("skipped %v, produced %d; want 1 and 5", m.Skipped, m.RecordsProduced)
			}
		})
	}
}

func TestNewRejectsClientOptsThatBreakTheRuntime(t *testing.T) {
	topo := rtPipeline(t)
	for name, o := range map[string]kgo.Opt{
		"idempotence":     kgo.DisableIdempotentWrite(),
		"regex":           kgo.ConsumeRegex(),
		"transactional":   kgo.TransactionalID("x"),
		"static instance": kgo.InstanceID("x"),
		"block rebalance": kgo.BlockRebalanceOnPoll(),
	} {
		if _, err := New(topo, ApplicationID("a"), Brokers("127.0.0.1:1"), ClientOpts(o)); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: err = %v, want ErrConfig", name, err)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
}
