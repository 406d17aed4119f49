package integration

import (
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamwork-go/streamwork/integration/kafkatest"
	"github.com/streamwork-go/streamwork/kstream"
)

// keyedBatch makes n records "k<i mod keys>" for i in [from, from+n), each
// in the partition of partitions that Kafka's default partitioner gives
// its key, timestamped an hour or two ago, and adds them to want.
func keyedBatch(topic string, partitions int32, from, n, keys int, want map[string]int64) []*kgo.Record {
	byKey := kgo.StickyKeyPartitioner(nil).ForTopic(topic)
	base := time.Now().Add(-2 * time.Hour)
	recs := make([]*kgo.Record, 0, n)
	for i := from; i < from+n; i++ {
		key := fmt.Sprintf("k%d", i%keys)
		want[key]++
		r := &kgo.Record{Topic: topic, Key: []byte(key), Value: []byte("x"), Timestamp: base.Add(time.Duration(i) * time.Millisecond)}
		r.Partition = int32(byKey.Partition(r, int(partitions)))
		recs = append(recs, r)
	}
	return recs
}

// With static membership, an instance that stops and comes back within the
// session timeout moves no task: the other instance sees no rebalance (no
// assignment, same tasks), the restarted one gets its own tasks back and
// restores nothing (its checkpoints are current), and the counts are exact.
func TestStaticMembershipRestartMovesNothing(t *testing.T) {
	b := kafkatest.Require(t)
	ctx := testContext(t)
	in := newTopic(t, b, "static-in", 4)
	out := newTopic(t, b, "static-out", 4)
	appID := kafkatest.UniqueName(t, "static-app")
	deleteTopicsAtEnd(t, b, appID+"-counts-changelog")
	topo := stateTopology(t, in, out)
	prod := producer(t, b)
	dirA, dirB := t.TempDir(), t.TempDir()
	want := map[string]int64{}
	opts := func(id, dir string) []kstream.Opt {
		return []kstream.Opt{
			kstream.ApplicationID(appID), kstream.InstanceID(id), kstream.StateDir(dir),
			kstream.StaticMembership(true),
			kstream.ClientOpts(kgo.SessionTimeout(30 * time.Second)),
		}
	}

	produce(ctx, t, prod, keyedBatch(in, 4, 0, 400, 40, want))
	a := startApp(t, b, "a", topo, opts("a", dirA)...)
	b1 := startApp(t, b, "b", topo, opts("b", dirB)...)
	waitFor(ctx, t, "both instances to run two tasks each and process 400 records", func() bool {
		ma, mb := a.Metrics(), b1.Metrics()
		return len(ma.Tasks) == 2 && len(mb.Tasks) == 2 && len(ma.RestoringTasks)+len(mb.RestoringTasks) == 0 &&
			ma.RecordsProcessed+mb.RecordsProcessed == 400
	}, a, b1)
	before := a.Metrics()
	bTasks := b1.Metrics().Tasks
	if err := b1.stop(t); err != nil {
		t.Fatalf("b: Run returned %v", err)
	}
	bProcessed := b1.Metrics().RecordsProcessed // Metrics outlive Run
	if m := a.Metrics(); m.Rebalances != before.Rebalances || !slices.Equal(m.Tasks, before.Tasks) {
		t.Fatalf("a saw b stop: rebalances %d -> %d, tasks %v -> %v", before.Rebalances, m.Rebalances, before.Tasks, m.Tasks)
	}

	// b comes back with the same instance id and state directory, and
	// more input arrives.
	b2 := startApp(t, b, "b-again", topo, opts("b", dirB)...)
	produce(ctx, t, prod, keyedBatch(in, 4, 400, 200, 40, want))
	waitFor(ctx, t, "600 records processed in all", func() bool {
		ma, mb := a.Metrics(), b2.Metrics()
		return len(mb.Tasks) == 2 && len(mb.RestoringTasks) == 0 &&
			ma.RecordsProcessed+bProcessed+mb.RecordsProcessed == 600
	}, a, b2)
	after, mb := a.Metrics(), b2.Metrics()
	if after.Rebalances != before.Rebalances || !slices.Equal(after.Tasks, before.Tasks) {
		t.Fatalf("a saw a rebalance: assignments %d -> %d, tasks %v -> %v", before.Rebalances, after.Rebalances, before.Tasks, after.Tasks)
	}
	if !slices.Equal(mb.Tasks, bTasks) {
		t.Fatalf("b came back with tasks %v, had %v", mb.Tasks, bTasks)
	}
	if mb.RestoredRecords != 0 {
		t.Fatalf("b restored %d changelog records, want 0 (checkpoints)", mb.RestoredRecords)
	}
	if mb.Rebalances != 1 {
		t.Fatalf("b received %d assignments, want 1 (its old one)", mb.Rebalances)
	}
	got := queryAll(t, a, "counts")
	maps.Copy(got, queryAll(t, b2, "counts"))
	if !maps.Equal(got, want) {
		t.Fatalf("counts:\n got %v\nwant %v", got, want)
	}
}
