package kstream

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamwork-go/streamwork/kstream/internal/runtime"
	"github.com/streamwork-go/streamwork/kstream/internal/wire"
	"github.com/streamwork-go/streamwork/serde"
	"github.com/streamwork-go/streamwork/state/pebble"
)

// stBatch makes n records with keys k0..k<keys-1>, round robin over
// partitions (so each key stays in one partition); every 7th is a delete.
func stBatch(from, n, keys int, parts int32) []*kgo.Record {
	recs := make([]*kgo.Record, 0, n)
	for i := from; i < from+n; i++ {
		k := i % keys
		v := "x"
		if i%7 == 6 {
			v = "delete"
		}
		recs = append(recs, stRecord(fmt.Sprintf("k%d", k), v, int32(k)%parts, int64(1000+i)))
	}
	return recs
}

// stExpected replays recs as countProcessor does.
func stExpected(into map[string]int64, recs []*kgo.Record) map[string]int64 {
	for _, r := range recs {
		if string(r.Value) == "delete" {
			delete(into, string(r.Key))
		} else {
			into[string(r.Key)]++
		}
	}
	return into
}

// stContents returns what QueryStore sees of "counts".
func stContents(t *testing.T, app *App) map[string]int64 {
	t.Helper()
	kv, err := QueryStore(app, "counts", serde.String, serde.Int64)
	if err != nil {
		t.Fatal(err)
	}
	seq, errf := kv.AllErr()
	got := map[string]int64{}
	for k, v := range seq {
		got[k] = v
	}
	if err := errf(); err != nil {
		t.Fatal(err)
	}
	return got
}

// stRunUntil runs app until it processed n records in total, checks the
// store's contents and the RestoredRecords count, and stops it cleanly.
func stRunUntil(t *testing.T, app *App, n int64, want map[string]int64, restored int64) {
	t.Helper()
	stop := rtRun(t, app)
	stWaitProcessed(t, app, n)
	if got := stContents(t, app); !maps.Equal(got, want) {
		t.Fatalf("store contents:\n got %v\nwant %v", got, want)
	}
	m := app.Metrics()
	if m.RestoredRecords != restored {
		t.Fatalf("RestoredRecords = %d, want %d", m.RestoredRecords, restored)
	}
	if m.RestoreRemaining != 0 || len(m.RestoringTasks) != 0 {
		t.Fatalf("after restoring: remaining %d, restoring %v", m.RestoreRemaining, m.RestoringTasks)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// An instance whose state directory is gone restores its stores from the
// changelogs, all of them, before it processes: the contents are exactly
// what they were, and new records count on from there.
func TestRestoreAfterStateDirDeleted(t *testing.T) {
	for _, engine := range []Engine{PebbleEngine, MemoryEngine} {
		t.Run(engine.String(), func(t *testing.T) {
			brokers := rtCluster(t, map[string]int32{"in": 2, "out": 2})
			dir := t.TempDir()
			topo := countTopology(t)
			b1 := stBatch(0, 300, 20, 2)
			want := stExpected(map[string]int64{}, b1)
			rtProduce(t, brokers, b1)
			app, err := New(topo, stOpts(t, brokers, "restore", dir, StoreEngine(engine), CacheMaxBytes(0))...)
			if err != nil {
				t.Fatal(err)
			}
			stRunUntil(t, app, 300, want, 0)
			changelog := rtEndOffsets(t, brokers, "restore-counts-changelog")
			if changelog != 300 {
				t.Fatalf("changelog has %d records, want 300", changelog)
			}
			if err := os.RemoveAll(dir); err != nil {
				t.Fatal(err)
			}
			b2 := stBatch(300, 100, 20, 2)
			rtProduce(t, brokers, b2)
			want = stExpected(want, b2)
			app, err = New(topo, stOpts(t, brokers, "restore", dir, StoreEngine(engine), CacheMaxBytes(0))...)
			if err != nil {
				t.Fatal(err)
			}
			stRunUntil(t, app, 100, want, changelog)
		})
	}
}

// A restart with a checkpoint restores only the changelog records written
// after it: here those another instance (with its own state directory)
// wrote while the first was stopped.
func TestRestoreFromCheckpoint(t *testing.T) {
	brokers := rtCluster(t, map[string]int32{"in": 2, "out": 2})
	dirA, dirB := t.TempDir(), t.TempDir()
	topo := countTopology(t)
	opts := func(dir string, more ...Opt) []Opt {
		return stOpts(t, brokers, "ckpt", dir, append([]Opt{CacheMaxBytes(0)}, more...)...)
	}

	b1 := stBatch(0, 200, 10, 2)
	want := stExpected(map[string]int64{}, b1)
	rtProduce(t, brokers, b1)
	appA, err := New(topo, opts(dirA, InstanceID("a"))...)
	if err != nil {
		t.Fatal(err)
	}
	stRunUntil(t, appA, 200, want, 0)
	atCheckpoint := rtEndOffsets(t, brokers, "ckpt-counts-changelog")
	stored, err := StoredOffsets(dirA, "ckpt")
	if err != nil || len(stored["ckpt-counts-changelog"]) != 2 {
		t.Fatalf("stored offsets: %v, %v; want both partitions of the changelog", stored, err)
	}
	if sum := stored["ckpt-counts-changelog"][0] + stored["ckpt-counts-changelog"][1]; sum != atCheckpoint {
		t.Fatalf("stored offsets %v add up to %d, want the changelog's end %d", stored, sum, atCheckpoint)
	}

	// Instance B, on another directory, restores everything, then writes 150
	// more changelog records.
	b2 := stBatch(200, 150, 10, 2)
	want = stExpected(want, b2)
	rtProduce(t, brokers, b2)
	appB, err := New(topo, opts(dirB, InstanceID("b"))...)
	if err != nil {
		t.Fatal(err)
	}
	stRunUntil(t, appB, 150, want, atCheckpoint)
	after := rtEndOffsets(t, brokers, "ckpt-counts-changelog") - atCheckpoint
	if after != 150 {
		t.Fatalf("%d changelog records after the checkpoint, want 150", after)
	}

	// A again: only what B wrote.
	b3 := stBatch(350, 10, 10, 2)
	want = stExpected(want, b3)
	rtProduce(t, brokers, b3)
	appA, err = New(topo, opts(dirA, InstanceID("a"))...)
	if err != nil {
		t.Fatal(err)
	}
	stRunUntil(t, appA, 10, want, after)
}

// A checkpoint outside the changelog's range (the changelog was recreated,
// or the file is from elsewhere) wipes the store and restores it all.
func TestRestoreWipesOnCheckpointOutOfRange(t *testing.T) {
	brokers := rtCluster(t, map[string]int32{"in": 1, "out": 1})
	dir := t.TempDir()
	topo := countTopology(t)
	b1 := stBatch(0, 50, 5, 1)
	want := stExpected(map[string]int64{}, b1)
	rtProduce(t, brokers, b1)
	app, err := New(topo, stOpts(t, brokers, "wipe", dir, CacheMaxBytes(0))...)
	if err != nil {
		t.Fatal(err)
	}
	stRunUntil(t, app, 50, want, 0)
	writeStoredOffset(t, filepath.Join(dir, "wipe", "0_0", "counts"), "counts",
		wire.Checkpoint{{Topic: "wipe-counts-changelog", Partition: 0}: 1 << 40})
	app, err = New(topo, stOpts(t, brokers, "wipe", dir, CacheMaxBytes(0))...)
	if err != nil {
		t.Fatal(err)
	}
	stRunUntil(t, app, 0, want, 50)
}

// Records of a restoring task are processed only after its stores are
// restored; Metrics show the restore while it runs and its total after.
func TestRestoringTaskWaitsAndMetricsReport(t *testing.T) {
	// A changelog as a previous instance left it.
	brokers := rtCluster(t, map[string]int32{"in": 1, "out": 1, "slow-counts-changelog": 1})
	const n = 20000
	recs := make([]*kgo.Record, n)
	for i := range recs {
		v, _ := serde.Int64.Serialize("", int64(i))
		recs[i] = &kgo.Record{Topic: "slow-counts-changelog", Partition: 0, Key: fmt.Appendf(nil, "k%d", i%100), Value: v}
	}
	rtProduce(t, brokers, recs)
	rtProduce(t, brokers, []*kgo.Record{stRecord("k1", "x", 0, 5)})
	app, err := New(countTopology(t), stOpts(t, brokers, "slow", t.TempDir(), CacheMaxBytes(0))...)
	if err != nil {
		t.Fatal(err)
	}
	stop := rtRun(t, app)
	sawRestoring := false
	rtWaitFor(t, "the record after the restore", func() bool {
		m := app.Metrics()
		if len(m.RestoringTasks) > 0 {
			sawRestoring = true
			if m.RecordsProcessed != 0 {
				t.Errorf("processed %d records while restoring", m.RecordsProcessed)
			}
		}
		return m.RecordsProcessed == 1
	})
	m := app.Metrics()
	if m.RestoredRecords != n || len(m.RestoringTasks) != 0 || m.RestoreRemaining != 0 {
		t.Fatalf("metrics after restore: restored %d (want %d), restoring %v, remaining %d (saw restoring: %v)",
			m.RestoredRecords, n, m.RestoringTasks, m.RestoreRemaining, sawRestoring)
	}
	if got := stContents(t, app)["k1"]; got != (n-100+1)+1 {
		t.Fatalf("k1 = %d, want %d", got, (n-100+1)+1)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkRestore measures how fast a task restores a store from a
// changelog of 1,000,000 records (100,000 keys, 8-byte values) on an
// in-process kfake broker: from Run to the task processing, so it includes
// joining the group. records/s is the restore rate.
func BenchmarkRestore(b *testing.B) {
	const n, keys = 1_000_000, 100_000
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "in", "out", "bench-counts-changelog"))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	brokers := c.ListenAddrs()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ProducerBatchMaxBytes(1<<20), kgo.MaxBufferedRecords(1<<16))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for i := range n {
		v, _ := serde.Int64.Serialize("", int64(i))
		cl.Produce(ctx, &kgo.Record{Topic: "bench-counts-changelog", Partition: 0, Key: fmt.Appendf(nil, "k%06d", i%keys), Value: v}, nil)
	}
	if err := cl.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	cl.Close()
	topo := countTopology(b)
	for _, engine := range []Engine{PebbleEngine, MemoryEngine} {
		b.Run(engine.String(), func(b *testing.B) {
			b.ReportAllocs()
			var total time.Duration
			for b.Loop() {
				app, err := New(topo, ApplicationID("bench"), Brokers(brokers...), StateDir(b.TempDir()), StoreEngine(engine),
					ClientOpts(kgo.HeartbeatInterval(50*time.Millisecond)))
				if err != nil {
					b.Fatal(err)
				}
				rctx, cancel := context.WithCancel(ctx)
				done := make(chan error, 1)
				start := time.Now()
				go func() { done <- app.Run(rctx) }()
				for {
					m := app.Metrics()
					if m.RestoredRecords == n && len(m.Tasks) == 1 && len(m.RestoringTasks) == 0 {
						break
					}
					select {
					case err := <-done:
						b.Fatalf("Run returned %v", err)
					case <-time.After(2 * time.Millisecond):
					}
				}
				total += time.Since(start)
				cancel()
				if err := <-done; err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/total.Seconds(), "records/s")
		})
	}
}

// writeStoredOffset replaces the checkpoint kept in the on-disk store in dir.
func writeStoredOffset(t *testing.T, dir, name string, c wire.Checkpoint) {
	t.Helper()
	env, err := pebble.NewEnv()
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	st, err := env.Open(dir, name)
	if err != nil {
		t.Fatal(err)
	}
	b, err := wire.EncodeCheckpoint(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.PutMeta(runtime.OffsetsMeta, b); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
}

// progressLog keeps the restore progress lines a logger writes, and the
// Metrics' Restores at each.
type progressLog struct {
	mu    sync.Mutex
	app   *App
	lines []progressLine
}

type progressLine struct {
	task     string
	restored int64
	left     int64
	metrics  []RestoreMetrics
}

func (l *progressLog) Enabled(context.Context, slog.Level) bool { return true }
func (l *progressLog) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *progressLog) WithGroup(string) slog.Handler            { return l }
func (l *progressLog) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "kstream: restoring" {
		return nil
	}
	var p progressLine
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "task":
			p.task = a.Value.String()
		case "restored":
			p.restored = a.Value.Int64()
		case "left":
			p.left = a.Value.Int64()
		}
		return true
	})
	l.mu.Lock()
	defer l.mu.Unlock()
	// Logged under the worker's lock, after the stats were published.
	p.metrics = l.app.Metrics().Restores
	l.lines = append(l.lines, p)
	return nil
}

// A long restore logs its progress per task at the configured pace
// (records restored, left, rate, ETA), and Metrics' Restores says the same
// at each line: done grows, done + left stays the changelog's length.
func TestRestoreLogsProgressAndMetrics(t *testing.T) {
	brokers := rtCluster(t, map[string]int32{"in": 1, "out": 1, "prog-counts-changelog": 1})
	const n = 60000 // the restore applies 10,000 records per round at most
	recs := make([]*kgo.Record, n)
	for i := range recs {
		v, _ := serde.Int64.Serialize("", int64(i))
		recs[i] = &kgo.Record{Topic: "prog-counts-changelog", Partition: 0, Key: fmt.Appendf(nil, "k%d", i%100), Value: v}
	}
	rtProduce(t, brokers, recs)
	rtProduce(t, brokers, []*kgo.Record{stRecord("k1", "x", 0, 5)})
	log := &progressLog{}
	opts := append(stOpts(t, brokers, "prog", t.TempDir(), CacheMaxBytes(0)), Logger(slog.New(log)),
		optFunc(func(c *runtime.Config) { c.RestoreLogInterval = time.Nanosecond }))
	app, err := New(countTopology(t), opts...)
	if err != nil {
		t.Fatal(err)
	}
	log.app = app
	stop := rtRun(t, app)
	rtWaitFor(t, "the record after the restore", func() bool { return app.Metrics().RecordsProcessed == 1 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	log.mu.Lock()
	defer log.mu.Unlock()
	if len(log.lines) < 2 {
		t.Fatalf("%d progress lines, want at least 2: %+v", len(log.lines), log.lines)
	}
	var last int64 = -1
	var partial int
	for _, p := range log.lines {
		if p.task != "0_0" || p.restored+p.left != n || p.restored < last {
			t.Fatalf("progress line %+v after restored %d: want task 0_0, restored + left = %d, restored not going back", p, last, n)
		}
		last = p.restored
		if p.restored > 0 && p.restored < n {
			partial++
		}
		if len(p.metrics) != 1 {
			t.Fatalf("Restores at %+v: %+v, want one store", p, p.metrics)
		}
		m := p.metrics[0]
		if m.Task.String() != "0_0" || m.Store != "counts" || m.Done != p.restored || m.Left != p.left || m.RecordsPerSecond < 0 || m.ETA < 0 {
			t.Fatalf("Restores %+v at log line %+v", m, p)
		}
	}
	if partial == 0 {
		t.Fatalf("no progress line in the middle of the restore: %+v", log.lines)
	}
	if m := app.Metrics(); len(m.Restores) != 0 || m.RestoredRecords != n {
		t.Fatalf("after the restore: Restores %+v, RestoredRecords %d", m.Restores, m.RestoredRecords)
	}
}
