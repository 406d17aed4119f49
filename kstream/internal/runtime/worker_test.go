package runtime

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamwork-go/streamwork/kstream/internal/commit"
	"github.com/streamwork-go/streamwork/kstream/internal/engine"
	"github.com/streamwork-go/streamwork/serde"
)

// passThrough builds, by hand, the engine topology in -> out.
func passThrough(t *testing.T, in, out string) *engine.Topology {
	t.Helper()
	src := &engine.Node{Name: "src", Kind: engine.KindSource, Topics: []string{in},
		NewInstance: func() engine.Instance {
			return &engine.SourceNode[string, string]{Ks: serde.String, Vs: serde.String}
		}}
	sink := &engine.Node{Name: "sink", Kind: engine.KindSink, Topics: []string{out}, Order: 1,
		NewInstance: func() engine.Instance {
			return &engine.SinkNode[string, string]{Topic: out, Ks: serde.String, Vs: serde.String}
		}}
	src.Children, sink.Parents = []*engine.Node{sink}, []*engine.Node{src}
	topo, err := engine.Build(&engine.Graph{Nodes: []*engine.Node{src, sink}, ByName: map[string]*engine.Node{"src": src, "sink": sink}})
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

// A worker pauses fetching a partition whose buffer is full and resumes it
// once it drained; every record still goes through exactly once, and is
// fetched once: the worker holds back by not polling, which keeps what the
// client fetched, rather than by pausing the partition in the client,
// which drops it.
func TestWorkerPausesFullPartitionsAndResumes(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "in", "out"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	const n = 3000
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = &kgo.Record{Topic: "in", Partition: int32(i % 2), Key: []byte(fmt.Sprint(i)), Value: []byte("v")}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// In batches of 50 (25 a partition), fetched a batch at a time.
	for b := 0; b < n; b += 50 {
		if err := cl.ProduceSync(ctx, recs[b:b+50]...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}

	cfg := DefaultConfig()
	cfg.AppID, cfg.Brokers, cfg.MaxBuffered = "worker-test", cluster.ListenAddrs(), 10
	cfg.StateDir, cfg.Logger = t.TempDir(), slog.New(slog.DiscardHandler)
	fetched := new(fetchCounter)
	cfg.ClientOpts = []kgo.Opt{kgo.WithHooks(fetched), kgo.FetchMaxPartitionBytes(1)}
	app, err := New(passThrough(t, "in", "out"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- app.Run(runCtx) }()

	rd, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.ConsumeTopics("out"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	seen := map[string]int{}
	for len(seen) < n {
		fs := rd.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("read %d of %d records: %v", len(seen), n, err)
		}
		fs.EachRecord(func(r *kgo.Record) { seen[string(r.Key)]++ })
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
	for k, c := range seen {
		if c != 1 {
			t.Fatalf("key %s written %d times", k, c)
		}
	}
	m := app.Metrics()
	if m.MaxPaused < 1 {
		t.Fatalf("MaxPaused = %d: no partition was paused with 10 records of buffer", m.MaxPaused)
	}
	if m.Paused != 0 {
		t.Fatalf("Paused = %d after the run, want 0", m.Paused)
	}
	if m.RecordsProcessed != n {
		t.Fatalf("RecordsProcessed = %d, want %d", m.RecordsProcessed, n)
	}
	// Holding back keeps what was fetched: nothing is fetched twice.
	if got := fetched.records("in"); got != n {
		t.Fatalf("the worker fetched %d records of %q for %d in it, want each once", got, "in", n)
	}
}

// fetchCounter is a kgo hook that counts the records fetched per topic.
type fetchCounter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *fetchCounter) OnFetchBatchRead(_ kgo.BrokerMetadata, topic string, _ int32, m kgo.FetchBatchMetrics) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[topic] += m.NumRecords
}

func (c *fetchCounter) records(topic string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[topic]
}

// A task that waits for an empty partition (MaxTaskIdle) does not keep the
// worker from waiting in its poll, but the wait ends when the task's idle
// wait does, so the task runs then even if no fetch arrives; a task that
// may process makes the poll return at once.
func TestPollWaitEndsWithIdleWait(t *testing.T) {
	src := &engine.Node{Name: "src", Kind: engine.KindSource, Topics: []string{"a", "b"},
		NewInstance: func() engine.Instance {
			return &engine.SourceNode[string, string]{Ks: serde.String, Vs: serde.String}
		}}
	topo, err := engine.Build(&engine.Graph{Nodes: []*engine.Node{src}, ByName: map[string]*engine.Node{"src": src}})
	if err != nil {
		t.Fatal(err)
	}
	env := &taskEnv{AppID: "t", Logger: slog.New(slog.DiscardHandler), Counters: new(metrics), Now: time.Now,
		MaxTaskIdle: maxPollWait / 2, OnDeser: engine.LogAndFail, OnProcess: engine.LogAndFail, OnProduce: engine.LogAndFail}
	tk, err := engine.NewTask(engine.TaskID{}, topo.Subs[0], env)
	if err != nil {
		t.Fatal(err)
	}
	tk.Add(&kgo.Record{Topic: "a", Key: []byte("k"), Value: []byte("v"), Timestamp: time.UnixMilli(1)})
	tk.SetEndOffset("a", 1)
	tk.SetStartOffset("b", 0)
	tk.SetEndOffset("b", 0)

	cfg := DefaultConfig()
	w := &worker{cfg: &cfg, lastCommit: time.Now(), Order: []*task{tk}}
	w.proto = commit.New(AtLeastOnce, &host{w})
	if n, err := tk.Process(10); n != 0 || err != nil {
		t.Fatalf("Process = %d, %v; want to wait", n, err)
	}
	_, until := tk.Ready()
	ctx, cancel := w.pollContextLocked(context.Background())
	defer cancel()
	if ctx == nil {
		// Allowed only when the wait is over already (a slow machine).
		if time.Now().Before(until) {
			t.Fatal("poll does not wait while the only task waits for an empty partition")
		}
	} else if deadline, ok := ctx.Deadline(); !ok || deadline.After(until) {
		t.Fatalf("poll waits until %v (%v), after the idle wait ends at %v", deadline, ok, until)
	}

	tk.Add(&kgo.Record{Topic: "b", Key: []byte("k"), Value: []byte("v"), Timestamp: time.UnixMilli(2)})
	if ctx, cancel := w.pollContextLocked(context.Background()); ctx != nil {
		cancel()
		t.Fatal("poll waits while a task may process")
	}
}
