package kstream

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamwork-go/streamwork/kstream/internal/engine"
	"github.com/streamwork-go/streamwork/kstream/internal/runtime"
	"github.com/streamwork-go/streamwork/serde"
)

// eosTopology passes "in" through to "pass" and counts its records per
// group (the key's number modulo 7) into "counts", through a repartition.
// Each record takes at least work to pass through, so that rebalances
// land while transactions hold records.
func eosTopology(t *testing.T, work time.Duration) *Topology {
	t.Helper()
	b := NewBuilder()
	in := From(b, "in", serde.String, serde.String)
	in = MapValues(in, func(v string) string {
		time.Sleep(work) // simulated work per record
		return v
	})
	in.To("pass", serde.String, serde.String)
	grouped := GroupBy(in, func(k, _ string) string { return eosGroup(k) }, serde.String, serde.String, Named("by-group"))
	Count(grouped, StoreName("counts")).ToStream().To("counts", serde.String, serde.Int64)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

func eosGroup(k string) string {
	n, _ := strconv.Atoi(strings.TrimPrefix(k, "k"))
	return fmt.Sprintf("g%d", n%7)
}

// eosInput makes records from..to-1: key "k<n mod 40>", value "<n>".
func eosInput(from, to int) []*kgo.Record {
	var recs []*kgo.Record
	for n := from; n < to; n++ {
		recs = append(recs, &kgo.Record{Topic: "in", Partition: -1, Key: []byte(fmt.Sprintf("k%d", n%40)), Value: []byte(strconv.Itoa(n))})
	}
	return recs
}

// eosRead reads topics from the start with read_committed isolation until
// cond holds for what was read, or fails the test at the deadline.
func eosRead(t *testing.T, brokers []string, cond func(map[string][]*kgo.Record) bool, topics ...string) map[string][]*kgo.Record {
	t.Helper()
	cl := rtClient(t, brokers, kgo.ConsumeTopics(topics...), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.FetchMaxWait(100*time.Millisecond))
	got := map[string][]*kgo.Record{}
	ctx, cancel := context.WithTimeout(context.Background(), rtTimeout)
	defer cancel()
	for !cond(got) {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %v: condition not met after %v", topics, rtTimeout)
		}
		for _, fe := range fs.Errors() {
			t.Fatalf("read %s: %v", fe.Topic, fe.Err)
		}
		fs.EachRecord(func(r *kgo.Record) { got[r.Topic] = append(got[r.Topic], r) })
	}
	return got
}

// Exactly-once Apps of two workers each share an input while records flow
// (paced, each taking some work): a second and a third App join (tasks move
// to them, so the open transactions of their old owners abort and the
// tasks are restored from their changelogs), then the first and the second
// leave. Read committed, the pass-through output has each input exactly
// once, and each group's counts rise by one per input, without repeats, to
// the exact total.
func TestExactlyOnceOutputExactAcrossRebalances(t *testing.T) {
	brokers := rtCluster(t, map[string]int32{"in": 6, "pass": 3, "counts": 3})
	topo := eosTopology(t, 200*time.Microsecond)
	const n = 4000
	input := eosInput(0, n)
	wait := eosPaced(brokers, input, 50, 10*time.Millisecond)
	apps := make([]*App, 3)
	stops := make([]func() error, 3)
	var aborted, commits int64
	for i := range apps {
		app, err := New(topo, rtOpts(t, brokers, "eos", Guarantee(ExactlyOnce), Workers(2), InstanceID(fmt.Sprintf("i%d", i)), StateDir(t.TempDir()))...)
		if err != nil {
			t.Fatal(err)
		}
		apps[i], stops[i] = app, rtRun(t, app)
		rtWaitFor(t, fmt.Sprintf("app %d to own tasks", i), func() bool { return len(app.Metrics().Tasks) > 0 })
		rtWaitFor(t, "more input to be processed", func() bool {
			var p int64
			for _, a := range apps[:i+1] {
				p += a.Metrics().RecordsProcessed
			}
			return p > int64(400*(i+1))
		})
	}
	for i := range 2 {
		if err := stops[i](); err != nil {
			t.Fatalf("app %d: %v", i, err)
		}
		m := apps[i].Metrics()
		aborted += m.TransactionsAborted
		commits += m.Commits
	}
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{}
	for i := range n {
		want[eosGroup(fmt.Sprintf("k%d", i%40))]++
	}
	got := eosRead(t, brokers, func(got map[string][]*kgo.Record) bool {
		last := map[string]int64{}
		for _, r := range got["counts"] {
			last[string(r.Key)], _ = serde.Int64.Deserialize("", r.Value)
		}
		for g, c := range want {
			if last[g] < c {
				return false
			}
		}
		return len(got["pass"]) >= n
	}, "pass", "counts")
	if err := stops[2](); err != nil {
		t.Fatalf("app 2: %v", err)
	}

	seen := map[string]int{}
	for _, r := range got["pass"] {
		seen[string(r.Value)]++
	}
	for i := range n {
		if c := seen[strconv.Itoa(i)]; c != 1 {
			t.Errorf("input %d passed through %d times, want once", i, c)
		}
	}
	last := map[string]int64{}
	for _, r := range got["counts"] {
		c, err := serde.Int64.Deserialize("", r.Value)
		if err != nil {
			t.Fatal(err)
		}
		if prev, ok := last[string(r.Key)]; ok && c <= prev {
			t.Errorf("group %s: count %d after %d: an update applied twice", r.Key, c, prev)
		}
		last[string(r.Key)] = c
	}
	for g, c := range want {
		if last[g] != c {
			t.Errorf("group %s: last count %d, want %d", g, last[g], c)
		}
	}
	if aborted == 0 || commits == 0 {
		t.Errorf("the two Apps that left committed %d transactions and aborted %d; want some of both (tasks moved while records flowed)", commits, aborted)
	}
	t.Logf("the two Apps that left committed %d transactions and aborted %d", commits, aborted)
}

// eosPaced writes recs in batches of batch, one batch every interval, from
// another goroutine; wait returns the first error.
func eosPaced(brokers []string, recs []*kgo.Record, batch int, interval time.Duration) (wait func() error) {
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
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for len(recs) > 0 {
			k := min(batch, len(recs))
			if err := cl.ProduceSync(ctx, recs[:k]...).FirstErr(); err != nil {
				done <- err
				return
			}
			recs = recs[k:]
			<-tick.C
		}
		done <- nil
	}()
	return func() error { return <-done }
}

// A transaction marker (a control record) is never processed: it only moves
// the offset to commit past it, once the records before it are processed,
// so a partition whose last records are a transaction's commits to its end.
func TestTaskControlRecordsMoveTheCommittedOffset(t *testing.T) {
	b := NewBuilder()
	From(b, "a", serde.String, serde.String).To("out", serde.String, serde.String)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	c := &sliceCollector{}
	env := testEnv(c)
	tk, err := engine.NewTask(TaskID{Subtopology: 0, Partition: 1}, topo.t.Subs[0], env)
	if err != nil {
		t.Fatal(err)
	}
	tk.Add(&kgo.Record{Topic: "a", Partition: 1, Offset: 10, Key: []byte("k"), Value: []byte("v10"), Timestamp: time.UnixMilli(100)})
	tk.Add(&kgo.Record{Topic: "a", Partition: 1, Offset: 11, Key: []byte("k"), Value: []byte("v11"), Timestamp: time.UnixMilli(200)})
	tk.Add(&kgo.Record{Topic: "a", Partition: 1, Offset: 12, Attrs: kgo.NewRecordAttrs(kgo.RecordAttrsOpts{Transactional: true, Control: true}), Timestamp: time.UnixMilli(999)})
	if n, err := tk.Process(1); n != 1 || err != nil {
		t.Fatalf("process(1) = %d, %v", n, err)
	}
	if off := tk.OffsetsToCommit(); off["a"] != 11 {
		t.Fatalf("offset to commit after the first record = %v, want 11", off)
	}
	if n, err := tk.Process(10); n != 2 || err != nil {
		t.Fatalf("process(10) = %d, %v", n, err)
	}
	if off := tk.OffsetsToCommit(); off["a"] != 13 {
		t.Fatalf("offset to commit after the marker = %v, want 13 (past it)", off)
	}
	if len(c.recs) != 2 || env.Counters.Processed.Load() != 2 || tk.StreamTime != 200 {
		t.Fatalf("outputs %d, processed %d, stream time %d; want 2, 2, 200 (the marker is not a record)", len(c.recs), env.Counters.Processed.Load(), tk.StreamTime)
	}
	tk.ResetInput()
	if off := tk.OffsetsToCommit(); off != nil || tk.TotalBuffered() != 0 {
		t.Fatalf("after resetInput: offsets %v, buffered %d; want none", off, tk.TotalBuffered())
	}
}

// Under exactly-once a task's on-disk stores hold the changelog offset of
// their last committed transaction while the App runs (their uncommitted
// writes are in the stores' open transactions, not on disk), and after a
// clean shutdown, so that the next run restores nothing and goes on with
// the same state.
func TestExactlyOnceStoresHoldTheirCommittedOffset(t *testing.T) {
	brokers := rtCluster(t, map[string]int32{"in": 3, "pass": 1, "counts": 1})
	topo := eosTopology(t, 0)
	dir := t.TempDir()
	opts := rtOpts(t, brokers, "ckpt", Guarantee(ExactlyOnce), InstanceID("one"), StateDir(dir))
	// checkpoints lists the stores that hold a checkpoint: of the running
	// App, or, when it is nil, on disk.
	checkpoints := func(app *App) []string {
		if app != nil {
			return app.rt.StoresWithCheckpoint()
		}
		stored, err := StoredOffsets(dir, "ckpt")
		if err != nil {
			t.Fatal(err)
		}
		var found []string
		for topic, ps := range stored {
			for p := range ps {
				found = append(found, fmt.Sprintf("%s/%d", topic, p))
			}
		}
		return found
	}
	countsOf := func(got map[string][]*kgo.Record) map[string]int64 {
		last := map[string]int64{}
		for _, r := range got["counts"] {
			last[string(r.Key)], _ = serde.Int64.Deserialize("", r.Value)
		}
		return last
	}
	want := func(n int) map[string]int64 {
		w := map[string]int64{}
		for i := range n {
			w[eosGroup(fmt.Sprintf("k%d", i%40))]++
		}
		return w
	}
	reached := func(n int) func(map[string][]*kgo.Record) bool {
		return func(got map[string][]*kgo.Record) bool {
			last := countsOf(got)
			for g, c := range want(n) {
				if last[g] != c {
					return false
				}
			}
			return true
		}
	}

	rtProduce(t, brokers, eosInput(0, 300))
	app, err := New(topo, opts...)
	if err != nil {
		t.Fatal(err)
	}
	stop := rtRun(t, app)
	eosRead(t, brokers, reached(300), "counts")
	if c := checkpoints(app); len(c) != 3 {
		t.Fatalf("checkpoints while running under exactly-once: %v, want one per counting task (3)", c)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if c := checkpoints(nil); len(c) != 3 {
		t.Fatalf("after a clean shutdown: checkpoints %v, want one per counting task (3)", c)
	}

	rtProduce(t, brokers, eosInput(300, 500))
	app, err = New(topo, opts...)
	if err != nil {
		t.Fatal(err)
	}
	stop = rtRun(t, app)
	got := eosRead(t, brokers, reached(500), "counts")
	m := app.Metrics()
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if m.RestoredRecords != 0 {
		t.Errorf("the second run restored %d changelog records, want 0 (its checkpoints were at the end)", m.RestoredRecords)
	}
	if last := countsOf(got); len(last) != len(want(500)) {
		t.Errorf("groups %v, want %v", last, want(500))
	}
}

// A worker whose producer is fenced (another producer took over its
// transactional id, as the restarted run of a zombie does) restarts with a
// new client and rejoins; what its fenced transaction held is done again,
// so the committed output stays exact.
func TestExactlyOnceFencedWorkerRestarts(t *testing.T) {
	brokers := rtCluster(t, map[string]int32{"in": 3, "pass": 1, "counts": 1, "other": 1})
	topo := eosTopology(t, 100*time.Microsecond)
	const n = 3000
	wait := eosPaced(brokers, eosInput(0, n), 50, 10*time.Millisecond)
	app, err := New(topo, rtOpts(t, brokers, "fence", Guarantee(ExactlyOnce), InstanceID("one"), StateDir(t.TempDir()))...)
	if err != nil {
		t.Fatal(err)
	}
	stop := rtRun(t, app)
	rtWaitFor(t, "records to be processed", func() bool { return app.Metrics().RecordsProcessed > 500 })

	// Take over the worker's transactional id.
	usurper := rtClient(t, brokers, kgo.TransactionalID(runtime.TransactionalID("fence", "one", 0)), kgo.DefaultProduceTopic("other"))
	ctx, cancel := context.WithTimeout(context.Background(), rtTimeout)
	defer cancel()
	if err := usurper.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := usurper.ProduceSync(ctx, kgo.StringRecord("x")).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := usurper.EndTransaction(ctx, kgo.TryAbort); err != nil {
		t.Fatal(err)
	}
	rtWaitFor(t, "the fenced worker to restart", func() bool { return app.Metrics().WorkerRestarts > 0 })
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{}
	for i := range n {
		want[eosGroup(fmt.Sprintf("k%d", i%40))]++
	}
	got := eosRead(t, brokers, func(got map[string][]*kgo.Record) bool {
		last := map[string]int64{}
		for _, r := range got["counts"] {
			last[string(r.Key)], _ = serde.Int64.Deserialize("", r.Value)
		}
		for g, c := range want {
			if last[g] < c {
				return false
			}
		}
		return len(got["pass"]) >= n
	}, "pass", "counts")
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	seen := map[string]int{}
	for _, r := range got["pass"] {
		seen[string(r.Value)]++
	}
	for i := range n {
		if c := seen[strconv.Itoa(i)]; c != 1 {
			t.Errorf("input %d passed through %d times, want once", i, c)
		}
	}
	last := map[string]int64{}
	for _, r := range got["counts"] {
		c, _ := serde.Int64.Deserialize("", r.Value)
		if prev, ok := last[string(r.Key)]; ok && c <= prev {
			t.Errorf("group %s: count %d after %d", r.Key, c, prev)
		}
		last[string(r.Key)] = c
	}
	for g, c := range want {
		if last[g] != c {
			t.Errorf("group %s: last count %d, want %d", g, last[g], c)
		}
	}
}
