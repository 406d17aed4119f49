package integration

import (
	"context"
	"fmt"
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

// flowProducer writes records batch by batch, one batch per tick, from its
// own goroutine. It stops before the record at holdAt until released, and
// for good when its context ends.
type flowProducer struct {
	produced atomic.Int64 // records acknowledged so far
	release  chan struct{}
	done     chan struct{}
	err      error // read after done
}

// startFlow writes recs in batches of batch records, one batch every
// interval, holding before record holdAt until release is called. It is
// stopped and waited for when t ends.
func startFlow(t testing.TB, cl *kgo.Client, recs []*kgo.Record, batch int, interval time.Duration, holdAt int) *flowProducer {
	ctx, cancel := context.WithCancel(context.Background())
	p := &flowProducer{release: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for start := 0; start < len(recs); start += batch {
			if start == holdAt {
				select {
				case <-p.release:
				case <-ctx.Done():
					p.err = ctx.Err()
					return
				}
			}
			select {
			case <-tick.C:
			case <-ctx.Done():
				p.err = ctx.Err()
				return
			}
			end := min(start+batch, len(recs))
			if start < holdAt && end > holdAt {
				end = holdAt
			}
			if err := cl.ProduceSync(ctx, recs[start:end]...).FirstErr(); err != nil {
				p.err = fmt.Errorf("produce records %d..%d: %w", start, end-1, err)
				return
			}
			p.produced.Add(int64(end - start))
			start = end - batch // the loop adds batch
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-p.done
	})
	return p
}

// check fails t if the producer stopped with an error.
func (p *flowProducer) check(t testing.TB) {
	t.Helper()
	select {
	case <-p.done:
		if p.err != nil {
			t.Fatalf("input producer: %v", p.err)
		}
	default:
	}
}

// TestRebalanceWhileProcessingAtLeastOnce runs two instances of an
// application over a 6-partition input that a producer keeps writing
// (20,000 records in paced batches); a third instance joins while records
// flow, processes some, and leaves while they still flow. Small commit
// intervals and per-partition buffers make commits frequent and fetching
// pause. Under at-least-once nothing may be lost: every input record's
// output must be there (and nothing else); duplicates are reported, not
// failed on. The two remaining instances end up owning every task, and
// their clean shutdown commits the whole input.
func TestRebalanceWhileProcessingAtLeastOnce(t *testing.T) {
	b := kafkatest.Require(t)
	ctx := testContext(t)
	const (
		n          = 20000
		preloaded  = 2000 // written before the Apps start: a backlog that fills buffers
		keys       = 50
		partitions = 6
		batch      = 100
		holdAt     = 18000 // the last records wait until the third instance left
	)
	in := newTopic(t, b, "in", partitions)
	out := newTopic(t, b, "out", 3)

	bld := kstream.NewBuilder()
	kstream.MapValues(kstream.From(bld, in, serde.String, serde.String),
		func(v string) string { return "out:" + v }).
		To(out, serde.String, serde.String)
	topo, err := bld.Build()
	if err != nil {
		t.Fatalf("build: %v", err)
	}

	inputs := make([]*kgo.Record, n)
	for i := range inputs {
		k := i % keys
		inputs[i] = &kgo.Record{
			Topic: in, Partition: int32(k % partitions),
			Key: []byte(dagKey(k)), Value: fmt.Appendf(nil, "%05d", i),
		}
	}
	cl := producer(t, b)
	produce(ctx, t, cl, inputs[:preloaded])

	appID := kafkatest.UniqueName(t, "app")
	opts := func(instance string) []kstream.Opt {
		return []kstream.Opt{
			kstream.ApplicationID(appID),
			kstream.InstanceID(instance),
			kstream.Guarantee(kstream.AtLeastOnce),
			kstream.CommitInterval(100 * time.Millisecond),
			kstream.BufferedRecordsPerPartition(20),
		}
	}
	first := startApp(t, b, "a", topo, opts("a")...)
	second := startApp(t, b, "b", topo, opts("b")...)
	flow := startFlow(t, cl, inputs[preloaded:], batch, 20*time.Millisecond, holdAt-preloaded)
	produced := func() int64 { flow.check(t); return preloaded + flow.produced.Load() }

	waitFor(ctx, t, "30% of the input to be written", func() bool { return produced() >= n*3/10 }, first, second)
	third := startApp(t, b, "c", topo, opts("c")...)
	joinedAt := produced()
	waitFor(ctx, t, "the third instance to run tasks and process records", func() bool {
		m := third.Metrics()
		return len(m.Tasks) > 0 && m.RecordsProcessed > 0 && produced() >= n/2
	}, first, second, third)
	leftAt := produced()
	if err := third.stop(t); err != nil {
		t.Fatalf("third instance: Run returned %v after a clean shutdown, want nil", err)
	}
	close(flow.release)
	mc := third.Metrics()
	t.Logf("third instance joined at %d records written, left at %d; it processed %d records and committed %d times",
		joinedAt, leftAt, mc.RecordsProcessed, mc.Commits)

	waitFor(ctx, t, "the two remaining instances to own all 6 tasks", func() bool {
		all := slices.Concat(first.Metrics().Tasks, second.Metrics().Tasks)
		slices.SortFunc(all, compareTasks)
		return len(slices.CompactFunc(all, func(x, y kstream.TaskID) bool { return x == y })) == partitions
	}, first, second)

	seen := make([]int, n) // outputs per input index
	indexed := 0
	var unexpected []string
	rd := newReader(t, b, out)
	distinct := 0
	rd.readUntil(ctx, "an output for every input record", func() bool {
		flow.check(t)
		for _, r := range rd.records(out)[indexed:] {
			i, ok := rebalanceInput(r, n, keys)
			if !ok {
				unexpected = append(unexpected, recString(r))
				continue
			}
			if seen[i] == 0 {
				distinct++
			}
			seen[i]++
		}
		indexed = rd.count(out)
		return distinct == n
	}, first, second)
	<-flow.done
	flow.check(t)
	for _, app := range []*runningApp{first, second} {
		if err := app.stop(t); err != nil {
			t.Fatalf("App %s: Run returned %v after a clean shutdown, want nil", app.name, err)
		}
	}
	rd.readToEnd(ctx)

	clear(seen)
	unexpected = unexpected[:0]
	firstSeen := map[string][]int{} // per key, input indexes in order of first output
	for _, r := range rd.records(out) {
		i, ok := rebalanceInput(r, n, keys)
		if !ok {
			unexpected = append(unexpected, recString(r))
			continue
		}
		if seen[i] == 0 {
			firstSeen[string(r.Key)] = append(firstSeen[string(r.Key)], i)
		}
		seen[i]++
	}
	var missing []int
	duplicates := 0
	for i, c := range seen {
		if c == 0 {
			missing = append(missing, i)
		}
		duplicates += max(0, c-1)
	}
	ma, mb := first.Metrics(), second.Metrics()
	t.Logf("output: %d records for %d inputs: %d missing, %d duplicates", rd.count(out), n, len(missing), duplicates)
	t.Logf("processed: a=%d b=%d c=%d; commits: a=%d b=%d c=%d; max paused partitions: a=%d b=%d c=%d",
		ma.RecordsProcessed, mb.RecordsProcessed, mc.RecordsProcessed, ma.Commits, mb.Commits, mc.Commits,
		ma.MaxPaused, mb.MaxPaused, mc.MaxPaused)
	if len(missing) > 0 {
		t.Errorf("%d input records have no output (lost under at-least-once), first: %v", len(missing), firstN(missing, 10))
	}
	if len(unexpected) > 0 {
		t.Errorf("%d output records match no input, first: %v", len(unexpected), firstN(unexpected, 3))
	}
	for k, idx := range firstSeen {
		if !slices.IsSorted(idx) {
			t.Errorf("key %s: first outputs out of input order: %v", k, idx)
		}
	}
	if ma.MaxPaused == 0 && mb.MaxPaused == 0 && mc.MaxPaused == 0 {
		t.Errorf("no instance ever paused a partition, although each partition's backlog exceeded BufferedRecordsPerPartition(20)")
	}
	if total := ma.RecordsProcessed + mb.RecordsProcessed + mc.RecordsProcessed; total < n {
		t.Errorf("instances processed %d records together, want at least %d", total, n)
	}
	requireCommittedToEnd(ctx, t, b.Admin(t), appID, in)
}

// rebalanceInput returns the input index an output record of the rebalance
// test names, checking its key.
func rebalanceInput(r *kgo.Record, n, keys int) (int, bool) {
	s, ok := strings.CutPrefix(string(r.Value), "out:")
	if !ok {
		return 0, false
	}
	i, err := strconv.Atoi(s)
	if err != nil || i < 0 || i >= n || string(r.Key) != dagKey(i%keys) {
		return 0, false
	}
	return i, true
}
