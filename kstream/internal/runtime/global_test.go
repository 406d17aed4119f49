package runtime

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/streamwork-go/streamwork/kstream/internal/engine"
	"github.com/streamwork-go/streamwork/kstream/internal/wire"
	"github.com/streamwork-go/streamwork/state"
	"github.com/streamwork-go/streamwork/state/memory"
)

// gTimeout bounds every wait of the global updater tests.
const gTimeout = 30 * time.Second

// gCluster starts a one-broker kfake cluster with the given topics (name
// => partitions).
func gCluster(t *testing.T, topics map[string]int32) (*kfake.Cluster, []string) {
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
	return c, c.ListenAddrs()
}

// gLogs keeps what the updater logs (and copies it to the test's output).
type gLogs struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *gLogs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *gLogs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// gConfig is the configuration of an updater on brokers: a 50ms
// checkpoint and poll interval, short fetch waits, logs kept in logs.
func gConfig(t *testing.T, brokers []string, logs *gLogs) Config {
	cfg := DefaultConfig()
	cfg.AppID = "gapp"
	cfg.Brokers = brokers
	cfg.CommitInterval = 50 * time.Millisecond
	cfg.StateDir = t.TempDir()
	cfg.ClientOpts = []kgo.Opt{kgo.FetchMaxWait(100 * time.Millisecond)}
	cfg.Logger = slog.New(slog.NewTextHandler(io.MultiWriter(logs, t.Output()), &slog.HandlerOptions{Level: slog.LevelDebug}))
	return cfg
}

func gTopology(specs ...*globalSpec) *engine.Topology { return &engine.Topology{Globals: specs} }

func gOpenMemory(spec *globalSpec) (state.Store, error) { return memory.New(spec.Store), nil }

// gOpen opens the updater of topo's global tables and bootstraps it. It
// returns the updater, its counters and its Close, which runs once: at the
// test's end if not before (after a gRun started later has stopped).
func gOpen(t *testing.T, cfg *Config, topo *engine.Topology,
	open func(*globalSpec) (state.Store, error)) (*globalUpdater, *metrics, func() error) {
	t.Helper()
	m := new(metrics)
	ctx, cancel := context.WithTimeout(context.Background(), gTimeout)
	defer cancel()
	g, err := openGlobals(topo, cfg, m, open)
	if err != nil {
		t.Fatal(err)
	}
	closeG := gOnce(t, g.Close)
	if err := g.bootstrap(ctx, cfg); err != nil {
		t.Fatalf("bootstrap: %v", err)
	}
	return g, m, closeG
}

// gStateEnv makes the state environment Run would make for topo (the
// Pebble engine: the global stores on disk, with a checkpoint), and its
// Close, which runs once, at the test's end if not before.
func gStateEnv(t *testing.T, cfg *Config, topo *engine.Topology) (*stateEnv, func() error) {
	t.Helper()
	env, err := newStateEnv(cfg, topo, cfg.Logger)
	if err != nil {
		t.Fatal(err)
	}
	return env, gOnce(t, env.Close)
}

// once returns fn guarded to run once, and registers it as a cleanup.
func gOnce(t *testing.T, fn func() error) func() error {
	var o sync.Once
	var err error
	f := func() error {
		o.Do(func() { err = fn() })
		return err
	}
	t.Cleanup(func() { _ = f() })
	return f
}

// gRun starts g.run and returns a function that cancels it and returns
// its result. done is closed when run returns by itself.
func gRun(t *testing.T, g *globalUpdater) (stop func() error, done <-chan struct{}) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	fin := make(chan struct{})
	var err error
	go func() {
		defer close(fin)
		err = g.run(ctx)
	}()
	stopped := false
	stop = func() error {
		t.Helper()
		if !stopped {
			stopped = true
			cancel()
			select {
			case <-fin:
			case <-time.After(gTimeout):
				t.Fatal("run did not return after its context ended")
			}
		}
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stop, fin
}

// gWaitFor polls cond until it holds, or fails the test at the deadline.
func gWaitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(gTimeout)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", gTimeout, what)
		}
		<-tick.C
	}
}

// gRec is a record for partition p of topic; an empty value "-" is a
// tombstone.
func gRec(topic string, p int32, key, value string) *kgo.Record {
	r := &kgo.Record{Topic: topic, Partition: p, Key: []byte(key)}
	if value != "-" {
		r.Value = []byte(value)
	}
	return r
}

// gProduce writes recs synchronously, each to its own partition.
func gProduce(t *testing.T, brokers []string, recs ...*kgo.Record) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), gTimeout)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// gDump returns a store's pairs as "k=v,k=v", in key order.
func gDump(t *testing.T, st state.Store) string {
	t.Helper()
	var parts []string
	var err error
	for k, v := range state.SeqErr(st.All(), &err) {
		parts = append(parts, string(k)+"="+string(v))
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(parts, ",")
}

func gTP(topic string, p int32) wire.TopicPartition {
	return wire.TopicPartition{Topic: topic, Partition: p}
}

// gRegionsInit is the content of "regions" (2 partitions) the tests start
// from: 9 records, 5 on partition 0 and 4 on partition 1; the table is
// a=2, c=1, y=1.
func gRegionsInit() []*kgo.Record {
	return []*kgo.Record{
		gRec("regions", 0, "a", "1"), gRec("regions", 0, "b", "1"), gRec("regions", 0, "a", "2"),
		gRec("regions", 0, "c", "1"), gRec("regions", 0, "b", "-"),
		gRec("regions", 1, "x", "1"), gRec("regions", 1, "y", "1"), gRec("regions", 1, "x", "-"),
		gRec("regions", 1, "q", "-"), // a tombstone of a key never written
	}
}

// Bootstrap reads every partition of every global topic up to its end
// offset as of the start: upserts set keys, tombstones delete them, an
// empty topic gives an empty store; the positions are the end offsets.
func TestGlobalBootstrapLoadsTopicsToTheirEnd(t *testing.T) {
	_, brokers := gCluster(t, map[string]int32{"regions": 2, "rates": 1, "empty": 1})
	gProduce(t, brokers, append(gRegionsInit(), gRec("rates", 0, "usd", "1.0"), gRec("rates", 0, "eur", "1.1"))...)
	logs := &gLogs{}
	cfg := gConfig(t, brokers, logs)
	topo := gTopology(&globalSpec{Store: "regions-store", Topic: "regions"},
		&globalSpec{Store: "rates-store", Topic: "rates"}, &globalSpec{Store: "empty-store", Topic: "empty"})
	g, m, closeG := gOpen(t, &cfg, topo, gOpenMemory)

	for store, want := range map[string]string{"regions-store": "a=2,c=1,y=1", "rates-store": "eur=1.1,usd=1.0", "empty-store": ""} {
		if got := gDump(t, g.Stores[store]); got != want {
			t.Errorf("store %s = %q, want %q", store, got, want)
		}
	}
	for topic, store := range map[string]string{"regions": "regions-store", "rates": "rates-store", "empty": "empty-store"} {
		if g.ByTopic[topic] != g.Stores[store] {
			t.Errorf("ByTopic[%s] is not store %s", topic, store)
		}
	}
	want := wire.Checkpoint{gTP("regions", 0): 5, gTP("regions", 1): 4, gTP("rates", 0): 2, gTP("empty", 0): 0}
	if !maps.Equal(g.next, want) {
		t.Errorf("positions %v, want %v", g.next, want)
	}
	if n := m.GlobalRecords.Load(); n != 11 {
		t.Errorf("GlobalRecords = %d, want 11", n)
	}
	if !strings.Contains(logs.String(), "kstream: global tables ready") || !strings.Contains(logs.String(), "records=11") {
		t.Errorf("logs lack the ready line with records=11:\n%s", logs)
	}
	if err := closeG(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(cfg.StateDir, "gapp")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("an updater of in-memory stores wrote under the state dir: %v", err)
	}
}

// Bootstrap reads committed records only, and finishes on a topic whose
// last record is a transaction marker.
func TestGlobalBootstrapReadsCommittedOnly(t *testing.T) {
	_, brokers := gCluster(t, map[string]int32{"tx": 1})
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.TransactionalID("global-test-tx"),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), gTimeout)
	defer cancel()
	txn := func(commit kgo.TransactionEndTry, recs ...*kgo.Record) {
		t.Helper()
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if err := cl.EndTransaction(ctx, commit); err != nil {
			t.Fatal(err)
		}
	}
	txn(kgo.TryCommit, gRec("tx", 0, "k1", "v1"), gRec("tx", 0, "k2", "v2")) // offsets 0, 1, marker 2
	txn(kgo.TryAbort, gRec("tx", 0, "k1", "aborted"), gRec("tx", 0, "k3", "aborted"))
	txn(kgo.TryCommit, gRec("tx", 0, "k2", "-")) // ends with a commit marker

	cfg := gConfig(t, brokers, &gLogs{})
	g, m, _ := gOpen(t, &cfg, gTopology(&globalSpec{Store: "tx-store", Topic: "tx"}), gOpenMemory)
	if got := gDump(t, g.Stores["tx-store"]); got != "k1=v1" {
		t.Errorf("store = %q, want k1=v1", got)
	}
	if n := m.GlobalRecords.Load(); n != 3 {
		t.Errorf("GlobalRecords = %d, want 3 (the committed records)", n)
	}
	if want := (wire.Checkpoint{gTP("tx", 0): 8}); !maps.Equal(g.next, want) {
		t.Errorf("positions %v, want %v (past the last marker)", g.next, want)
	}
}

// After bootstrap, run keeps applying new records, on every partition,
// until its context ends; it then returns nil.
func TestGlobalRunKeepsApplying(t *testing.T) {
	_, brokers := gCluster(t, map[string]int32{"regions": 2})
	gProduce(t, brokers, gRegionsInit()...)
	cfg := gConfig(t, brokers, &gLogs{})
	g, m, _ := gOpen(t, &cfg, gTopology(&globalSpec{Store: "regions-store", Topic: "regions"}), gOpenMemory)
	stop, _ := gRun(t, g)
	st := g.Stores["regions-store"]

	gProduce(t, brokers, gRec("regions", 0, "a", "3"), gRec("regions", 0, "c", "-"), gRec("regions", 0, "d", "1"))
	gWaitFor(t, "3 more records applied", func() bool { return m.GlobalRecords.Load() == 9+3 })
	if got := gDump(t, st); got != "a=3,d=1,y=1" {
		t.Errorf("store = %q after partition 0's updates", got)
	}
	gProduce(t, brokers, gRec("regions", 1, "y", "2"), gRec("regions", 1, "z", "1"), gRec("regions", 1, "y", "-"))
	gWaitFor(t, "6 more records applied", func() bool { return m.GlobalRecords.Load() == 9+6 })
	if got := gDump(t, st); got != "a=3,d=1,z=1" {
		t.Errorf("store = %q after partition 1's updates", got)
	}
	if err := stop(); err != nil {
		t.Fatalf("run = %v, want nil after its context ended", err)
	}
	if want := (wire.Checkpoint{gTP("regions", 0): 8, gTP("regions", 1): 7}); !maps.Equal(g.next, want) {
		t.Errorf("positions %v, want %v", g.next, want)
	}
}

// With the stores on disk (the Pebble engine, as Run sets it up with
// stateEnv), bootstrap writes the checkpoint, run rewrites it every
// interval, Close writes the last one; a restarted updater reads it and
// applies only the records written after it.
func TestGlobalCheckpointAndResume(t *testing.T) {
	_, brokers := gCluster(t, map[string]int32{"regions": 2})
	gProduce(t, brokers, gRegionsInit()...)
	cfg := gConfig(t, brokers, &gLogs{})
	topo := gTopology(&globalSpec{Store: "regions-store", Topic: "regions"})
	env, closeEnv := gStateEnv(t, &cfg, topo)
	var g *globalUpdater
	readCP := func() wire.Checkpoint {
		t.Helper()
		c, err := gStoredCheckpoint(g.Stores["regions-store"])
		if err != nil {
			t.Fatal(err)
		}
		return c
	}

	g, m, closeG := gOpen(t, &cfg, topo, env.openGlobal)
	if got, want := readCP(), (wire.Checkpoint{gTP("regions", 0): 5, gTP("regions", 1): 4}); !maps.Equal(got, want) {
		t.Fatalf("checkpoint after bootstrap %v, want %v", got, want)
	}
	if n := m.GlobalRecords.Load(); n != 9 {
		t.Fatalf("first bootstrap applied %d records, want 9", n)
	}
	stop, _ := gRun(t, g)
	gProduce(t, brokers, gRec("regions", 0, "a", "3"), gRec("regions", 1, "z", "1"))
	gWaitFor(t, "the checkpoint to follow the new records", func() bool {
		c, err := gStoredCheckpoint(g.Stores["regions-store"])
		return err == nil && maps.Equal(c, wire.Checkpoint{gTP("regions", 0): 6, gTP("regions", 1): 5})
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if err := closeG(); err != nil {
		t.Fatal(err)
	}
	if err := closeEnv(); err != nil {
		t.Fatal(err)
	}

	// Written while the updater was down: only these two are applied.
	gProduce(t, brokers, gRec("regions", 0, "c", "-"), gRec("regions", 1, "b", "2"))
	env, closeEnv = gStateEnv(t, &cfg, topo)
	g, m, closeG = gOpen(t, &cfg, topo, env.openGlobal)
	if n := m.GlobalRecords.Load(); n != 2 {
		t.Errorf("restarted bootstrap applied %d records, want the 2 new ones", n)
	}
	if got := gDump(t, g.Stores["regions-store"]); got != "a=3,b=2,y=1,z=1" {
		t.Errorf("store after the restart = %q", got)
	}
	if got, want := readCP(), (wire.Checkpoint{gTP("regions", 0): 7, gTP("regions", 1): 6}); !maps.Equal(got, want) {
		t.Errorf("checkpoint after the restart %v, want %v", got, want)
	}
	if err := closeG(); err != nil {
		t.Fatal(err)
	}
	if err := closeEnv(); err != nil {
		t.Fatal(err)
	}

	// Nothing new: a restart applies nothing.
	env, _ = gStateEnv(t, &cfg, topo)
	g, m, _ = gOpen(t, &cfg, topo, env.openGlobal)
	if n := m.GlobalRecords.Load(); n != 0 {
		t.Errorf("restart at the end applied %d records, want 0", n)
	}
	if got := gDump(t, g.Stores["regions-store"]); got != "a=3,b=2,y=1,z=1" {
		t.Errorf("store after the second restart = %q", got)
	}
}

// An unreadable checkpoint is logged and ignored: the stores are wiped
// (a key that no record wrote disappears) and loaded from the start.
func TestGlobalUnreadableCheckpointRestoresFromStart(t *testing.T) {
	_, brokers := gCluster(t, map[string]int32{"regions": 2})
	gProduce(t, brokers, gRegionsInit()...)
	logs := &gLogs{}
	cfg := gConfig(t, brokers, logs)
	spec := &globalSpec{Store: "regions-store", Topic: "regions"}
	topo := gTopology(spec)
	env, _ := gStateEnv(t, &cfg, topo)
	_, _, closeG := gOpen(t, &cfg, topo, env.openGlobal)
	if err := closeG(); err != nil {
		t.Fatal(err)
	}
	st, err := env.openGlobal(spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Put([]byte("junk"), []byte("1")); err != nil {
		t.Fatal(err)
	}
	if err := st.PutMeta(OffsetsMeta, []byte("not a checkpoint")); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	g, m, _ := gOpen(t, &cfg, topo, env.openGlobal)
	if !strings.Contains(logs.String(), "kstream: global store checkpoint unreadable") {
		t.Errorf("no warning about the unreadable checkpoint:\n%s", logs)
	}
	if got := gDump(t, g.Stores["regions-store"]); got != "a=2,c=1,y=1" {
		t.Errorf("store = %q, want a=2,c=1,y=1 (wiped, then loaded)", got)
	}
	if n := m.GlobalRecords.Load(); n != 9 {
		t.Errorf("GlobalRecords = %d, want 9", n)
	}
}

// A topic deleted and created again behind a checkpoint: the checkpoint's
// offsets are past the new topic's end, so the updater loads the topic
// from its start; the keys of the old topic must not survive in the store
// (Kafka Streams wipes a global store whose offsets are invalid).
func TestGlobalCheckpointPastTheEndReloads(t *testing.T) {
	c, brokers := gCluster(t, map[string]int32{"regions": 2})
	gProduce(t, brokers, gRegionsInit()...)
	cfg := gConfig(t, brokers, &gLogs{})
	topo := gTopology(&globalSpec{Store: "regions-store", Topic: "regions"})
	env, _ := gStateEnv(t, &cfg, topo)
	_, _, closeG := gOpen(t, &cfg, topo, env.openGlobal)
	if err := closeG(); err != nil {
		t.Fatal(err)
	}

	if err := c.DeleteTopic("regions"); err != nil {
		t.Fatal(err)
	}
	if err := c.CreateTopic("regions", 2, nil); err != nil {
		t.Fatal(err)
	}
	gProduce(t, brokers, gRec("regions", 0, "n", "1"))
	g, m, _ := gOpen(t, &cfg, topo, env.openGlobal)
	if want := (wire.Checkpoint{gTP("regions", 0): 1, gTP("regions", 1): 0}); !maps.Equal(g.next, want) {
		t.Errorf("positions %v, want %v", g.next, want)
	}
	if n := m.GlobalRecords.Load(); n != 1 {
		t.Errorf("GlobalRecords = %d, want 1", n)
	}
	if got := gDump(t, g.Stores["regions-store"]); got != "n=1" {
		t.Fatalf("global.go bootstrap: a checkpoint past the topic's end reloads the topic from its start "+
			"without wiping the store: store = %q, want n=1", got)
	}
}

// A global table whose topic does not exist fails the bootstrap with
// ErrMissingTopic, naming it.
func TestGlobalMissingTopic(t *testing.T) {
	_, brokers := gCluster(t, map[string]int32{"regions": 1})
	cfg := gConfig(t, brokers, &gLogs{})
	topo := gTopology(&globalSpec{Store: "regions-store", Topic: "regions"}, &globalSpec{Store: "nope-store", Topic: "nope"})
	ctx, cancel := context.WithTimeout(context.Background(), gTimeout)
	defer cancel()
	g, err := openGlobals(topo, &cfg, new(metrics), gOpenMemory)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	err = g.bootstrap(ctx, &cfg)
	if err == nil || !strings.Contains(err.Error(), `"nope"`) || strings.Contains(err.Error(), `"regions"`) {
		t.Fatalf("bootstrap = %v, want an error naming nope only", err)
	}
	if !errors.Is(err, engine.ErrMissingTopic) {
		t.Fatalf("global.go bootstrap: ListEndOffsets lists a missing topic with an error (partition -1), "+
			"so the ErrMissingTopic check never fires: got %v", err)
	}
}

// A fetch error that Kafka does not retry stops the bootstrap: with a
// fatal one (authorization) bootstrap returns it, naming the topic.
func TestGlobalFetchErrorFailsBootstrap(t *testing.T) {
	c, brokers := gCluster(t, map[string]int32{"regions": 2})
	gProduce(t, brokers, gRegionsInit()...)
	c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Fetch}, Topic: "regions", Err: kerr.TopicAuthorizationFailed})
	cfg := gConfig(t, brokers, &gLogs{})
	ctx, cancel := context.WithTimeout(context.Background(), gTimeout)
	defer cancel()
	g, err := openGlobals(gTopology(&globalSpec{Store: "regions-store", Topic: "regions"}), &cfg, new(metrics), gOpenMemory)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	err = g.bootstrap(ctx, &cfg)
	if !errors.Is(err, kerr.TopicAuthorizationFailed) || !strings.Contains(err.Error(), `global table topic "regions" partition`) {
		t.Fatalf("bootstrap = %v, want TOPIC_AUTHORIZATION_FAILED naming the topic", err)
	}
}

// While running, a fetch error that is not fatal is logged as a warning
// naming the topic and partition, and the updater goes on applying
// records; a fatal one ends run with the error.
func TestGlobalFetchErrorsWhileRunning(t *testing.T) {
	c, brokers := gCluster(t, map[string]int32{"regions": 2})
	gProduce(t, brokers, gRegionsInit()...)
	logs := &gLogs{}
	cfg := gConfig(t, brokers, logs)
	g, m, _ := gOpen(t, &cfg, gTopology(&globalSpec{Store: "regions-store", Topic: "regions"}), gOpenMemory)
	stop, done := gRun(t, g)

	f := c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Fetch}, Topic: "regions", Partitions: []int32{1}, Err: kerr.UnknownServerError})
	gWaitFor(t, "the fault to hit a fetch", func() bool { return f.Hits() == 1 })
	gWaitFor(t, "a warning about the fetch error", func() bool {
		return strings.Contains(logs.String(), `level=WARN msg="kstream: global table fetch error" component=global-updater topic=regions partition=1 err="UNKNOWN_SERVER_ERROR`)
	})
	gProduce(t, brokers, gRec("regions", 1, "z", "1"), gRec("regions", 0, "a", "-"))
	gWaitFor(t, "the records after the error", func() bool { return m.GlobalRecords.Load() == 9+2 })
	if got := gDump(t, g.Stores["regions-store"]); got != "c=1,y=1,z=1" {
		t.Errorf("store = %q after the non-fatal error", got)
	}
	select {
	case <-done:
		t.Fatalf("run returned after a non-fatal fetch error: %v", stop())
	default:
	}

	c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Fetch}, Topic: "regions", Err: kerr.TopicAuthorizationFailed})
	select {
	case <-done:
	case <-time.After(gTimeout):
		t.Fatal("run did not return after a fatal fetch error")
	}
	if err := stop(); !errors.Is(err, kerr.TopicAuthorizationFailed) || !strings.Contains(err.Error(), `global table topic "regions" partition`) {
		t.Fatalf("run = %v, want TOPIC_AUTHORIZATION_FAILED naming the topic", err)
	}
}

// A global topic deleted while the updater runs is reported: the client
// never reads the topic again (it does not adopt a recreated topic's new
// id), so run ends with an error wrapping ErrMissingTopic that names it,
// instead of looping on UNKNOWN_TOPIC_ID fetch errors.
func TestGlobalTopicDeletedWhileRunning(t *testing.T) {
	c, brokers := gCluster(t, map[string]int32{"regions": 2})
	gProduce(t, brokers, gRegionsInit()...)
	logs := &gLogs{}
	cfg := gConfig(t, brokers, logs)
	// Only to logs: the warnings may come by the thousand.
	cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	// Fast retries, so the client gives up on the deleted topic's id in
	// milliseconds rather than seconds.
	cfg.ClientOpts = append(cfg.ClientOpts, kgo.RetryBackoffFn(func(int) time.Duration { return 5 * time.Millisecond }))
	g, _, _ := gOpen(t, &cfg, gTopology(&globalSpec{Store: "regions-store", Topic: "regions"}), gOpenMemory)
	stop, done := gRun(t, g)
	if err := c.DeleteTopic("regions"); err != nil {
		t.Fatal(err)
	}
	const warning = `level=WARN msg="kstream: global table fetch error" component=global-updater topic=regions partition=%d err="UNKNOWN_TOPIC_ID`
	reported := func() bool {
		l := logs.String()
		return strings.Contains(l, fmt.Sprintf(warning, 0)) && strings.Contains(l, fmt.Sprintf(warning, 1))
	}
	flood := func() bool { return strings.Count(logs.String(), "level=WARN") >= 1000 }
	deadline := time.NewTimer(gTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-done:
			err := stop()
			if err == nil || !strings.Contains(err.Error(), `"regions"`) {
				t.Fatalf("run = %v after the topic was deleted, want an error naming it", err)
			}
			return
		case <-deadline.C:
			t.Fatalf("run still going %v after the topic was deleted, reported %v; logs:\n%.4000s", gTimeout, reported(), logs)
		case <-tick.C:
		}
		if flood() {
			if !reported() {
				t.Fatalf("1000 warnings without the UNKNOWN_TOPIC_ID ones for both partitions:\n%.4000s", logs)
			}
			t.Fatalf("global.go run: after its topic is deleted the updater loops on UNKNOWN_TOPIC_ID fetch errors, "+
				"logging %d warnings so far, instead of failing", strings.Count(logs.String(), "level=WARN"))
		}
	}
}

// gStoredCheckpoint reads the checkpoint a global store keeps inside itself.
func gStoredCheckpoint(st state.Store) (wire.Checkpoint, error) {
	b, err := st.GetMeta(OffsetsMeta)
	if err != nil || b == nil {
		return wire.Checkpoint{}, err
	}
	return wire.DecodeCheckpoint(b)
}
