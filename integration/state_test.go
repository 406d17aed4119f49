package integration

import (
	"context"
	"fmt"
	"maps"
	"os"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamwork-go/streamwork/integration/kafkatest"
	"github.com/streamwork-go/streamwork/kstream"
	"github.com/streamwork-go/streamwork/serde"
	"github.com/streamwork-go/streamwork/state"
)

// stateCounter counts the records of each key in the store "counts" (added
// with the processor API) and forwards the new count.
type stateCounter struct {
	ctx kstream.ProcessorContext[string, int64]
	kv  *state.KeyValue[string, int64]
}

func (p *stateCounter) Init(ctx kstream.ProcessorContext[string, int64]) error {
	p.ctx = ctx
	var err error
	p.kv, err = kstream.StoreOf(ctx, "counts", serde.String, serde.Int64)
	return err
}

func (p *stateCounter) Process(r kstream.Record[string, string]) error {
	n, _, err := p.kv.Get(r.Key)
	if err != nil {
		return err
	}
	if err := p.kv.Put(r.Key, n+1); err != nil {
		return err
	}
	p.ctx.Forward(kstream.WithValue(r, n+1))
	return nil
}

func (p *stateCounter) Close() error { return nil }

func stateTopology(t *testing.T, in, out string) *kstream.Topology {
	t.Helper()
	b := kstream.NewBuilder()
	kstream.AddStore(b, "counts")
	counts := kstream.Process(kstream.From(b, in, serde.String, serde.String),
		func() kstream.Processor[string, string, string, int64] { return &stateCounter{} },
		kstream.Named("counter"), kstream.UseStores("counts"))
	counts.To(out, serde.String, serde.Int64)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

// stateBatch makes n records "k<i mod keys>", each in the partition of 4
// that Kafka's default partitioner gives its key (QueryStore's Get looks
// keys up there), and adds them to the expected counts.
func stateBatch(topic string, from, n, keys int, want map[string]int64) []*kgo.Record {
	byKey := kgo.StickyKeyPartitioner(nil).ForTopic(topic)
	recs := make([]*kgo.Record, 0, n)
	for i := from; i < from+n; i++ {
		key := fmt.Sprintf("k%d", i%keys)
		want[key]++
		r := &kgo.Record{Topic: topic, Key: []byte(key), Value: []byte("x"), Timestamp: time.UnixMilli(1_700_000_000_000 + int64(i))}
		r.Partition = int32(byKey.Partition(r, 4))
		recs = append(recs, r)
	}
	return recs
}

// endOffsetSum returns the sum of topic's end offsets: how many records it
// ever had.
func endOffsetSum(ctx context.Context, t *testing.T, adm *kadm.Client, topic string) int64 {
	t.Helper()
	var n int64
	for _, ps := range lastStableOffsets(ctx, t, adm, topic) {
		for _, o := range ps {
			n += o
		}
	}
	return n
}

// A processor-API counting topology over a 4-partition topic on a real
// broker: the counts are exact through QueryStore; after the instance's
// state directory is deleted a restart restores them exactly from the
// changelog (compacted, 4 partitions); a restart with checkpoints restores
// exactly the changelog records written after them (by another instance,
// on its own state directory, while the first was stopped).
func TestStateCountsRestoreAndCheckpoints(t *testing.T) {
	b := kafkatest.Require(t)
	ctx := testContext(t)
	in := newTopic(t, b, "state-in", 4)
	out := newTopic(t, b, "state-out", 4)
	appID := kafkatest.UniqueName(t, "state-app")
	changelog := appID + "-counts-changelog"
	cleanupAdm := b.Admin(t) // closed after the cleanup below ran
	t.Cleanup(func() {
		dctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		_, _ = cleanupAdm.DeleteTopic(dctx, changelog) // best effort
	})
	topo := stateTopology(t, in, out)
	adm := kadm.NewClient(b.Client(t, kgo.MetadataMinAge(checkEvery)))
	prod := producer(t, b)
	dirA, dirB := t.TempDir(), t.TempDir()
	want := map[string]int64{}

	// run starts an instance on dir, waits until it processed n records
	// with nothing left to restore, checks the counts through QueryStore
	// and the records it restored, and stops it cleanly.
	run := func(name, dir string, processed int64, restored int64) {
		t.Helper()
		a := startApp(t, b, name, topo, kstream.ApplicationID(appID), kstream.StateDir(dir), kstream.InstanceID(name))
		waitFor(ctx, t, fmt.Sprintf("%s to process %d records", name, processed), func() bool {
			m := a.Metrics()
			return m.RecordsProcessed >= processed && len(m.Tasks) == 4 && len(m.RestoringTasks) == 0
		}, a)
		m := a.Metrics()
		if m.RecordsProcessed != processed {
			t.Fatalf("%s processed %d records, want %d", name, m.RecordsProcessed, processed)
		}
		if m.RestoredRecords != restored {
			t.Fatalf("%s restored %d changelog records, want %d", name, m.RestoredRecords, restored)
		}
		kv, err := kstream.QueryStore(a.App, "counts", serde.String, serde.Int64)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]int64{}
		for k, v := range kv.All() {
			got[k] = v
		}
		if !maps.Equal(got, want) {
			t.Fatalf("%s: counts through QueryStore:\n got %v\nwant %v", name, got, want)
		}
		for k, n := range want {
			if v, ok, err := kv.Get(k); err != nil || !ok || v != n {
				t.Fatalf("%s: Get(%s) = %d, %v, %v; want %d", name, k, v, ok, err, n)
			}
		}
		if err := a.stop(t); err != nil {
			t.Fatalf("%s: Run returned %v", name, err)
		}
	}

	// 1. Count 400 records.
	produce(ctx, t, prod, stateBatch(in, 0, 400, 40, want))
	run("first", dirA, 400, 0)
	written := endOffsetSum(ctx, t, adm, changelog)
	if written != 400 {
		t.Fatalf("the changelog has %d records, want 400 (one per update)", written)
	}
	details, err := adm.ListTopics(ctx, changelog)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(details[changelog].Partitions); n != 4 {
		t.Fatalf("the changelog has %d partitions, want 4", n)
	}
	cfgs, err := adm.DescribeTopicConfigs(ctx, changelog)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := cfgs.On(changelog, nil)
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
		t.Fatalf("the changelog's cleanup.policy is %q, want compact", policy)
	}

	// 2. The state directory is lost: everything is restored.
	if err := os.RemoveAll(dirA); err != nil {
		t.Fatal(err)
	}
	produce(ctx, t, prod, stateBatch(in, 400, 40, 40, want))
	run("restored", dirA, 40, written)
	atCheckpoint := endOffsetSum(ctx, t, adm, changelog)

	// 3. Another instance with its own (empty) directory restores it all
	// and writes 200 more changelog records.
	produce(ctx, t, prod, stateBatch(in, 440, 200, 40, want))
	run("other", dirB, 200, atCheckpoint)
	after := endOffsetSum(ctx, t, adm, changelog) - atCheckpoint
	if after != 200 {
		t.Fatalf("%d changelog records after the checkpoint, want 200", after)
	}

	// 4. The first directory again, with its checkpoints: only those.
	produce(ctx, t, prod, stateBatch(in, 640, 8, 40, want))
	run("checkpointed", dirA, 8, after)
}
