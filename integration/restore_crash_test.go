package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamwork-go/streamwork/integration/kafkatest"
	"github.com/streamwork-go/streamwork/kstream"
	"github.com/streamwork-go/streamwork/serde"
)

// restoreKeysEnv sets the number of keys TestExactlyOnceCrashRestoresOnly-
// PastTheStoresOffset fills its store with (default 50,000):
//
//	cd integration && STREAMWORK_RESTORE_KEYS=1000000 go test -count=1 -v \
//	    -run TestExactlyOnceCrashRestoresOnlyPastTheStoresOffset .
const restoreKeysEnv = "STREAMWORK_RESTORE_KEYS"

// Under exactly-once a killed instance's Pebble store holds its last
// committed transaction's state and changelog offset, so the restarted
// instance restores only the changelog records written past that offset —
// not the whole store. The test fills a store of one key per input record
// (a count per key), lets the instance go on with updates, SIGKILLs it in
// the middle of them, and restarts it; the restart may restore at most the
// changelog records past the offsets the store holds (kstream.StoredOffsets,
// read after the kill) up to the changelog's end, and the counts it then
// writes are exact.
func TestExactlyOnceCrashRestoresOnlyPastTheStoresOffset(t *testing.T) {
	b := kafkatest.Require(t)
	keys := 50000
	if s := os.Getenv(restoreKeysEnv); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("%s=%q: want a positive number of keys", restoreKeysEnv, s)
		}
		keys = n
	}
	const (
		partitions = 4
		updates    = 3000 // keys 0 .. updates-1 are counted twice
	)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout+time.Duration(keys/2000)*time.Second)
	t.Cleanup(cancel)
	bin := buildTestProgram(ctx, t, "restoreapp")
	in := newTopic(t, b, "restore-in", partitions)
	out := newTopic(t, b, "restore-out", partitions)
	appID := kafkatest.UniqueName(t, "restore")
	changelog := appID + "-counts-changelog"
	deleteTopicsAtEnd(t, b, changelog)
	stateDir := t.TempDir()
	report := filepath.Join(t.TempDir(), "report")
	adm := b.Admin(t)
	args := []string{
		"-brokers", strings.Join(b.Addrs, ","), "-app", appID, "-input", in, "-output", out,
		"-state-dir", stateDir, "-report", report, "-guarantee", "exactly-once", "-commit-interval", "100ms",
	}

	// The fill: one record per key, event times 3h..2h ago.
	cl := producer(t, b)
	now := time.Now()
	key := func(i int) string { return fmt.Sprintf("k%08d", i) }
	record := func(i int, ts time.Time) *kgo.Record {
		k := key(i)
		return &kgo.Record{Topic: in, Partition: int32(i % partitions), Key: []byte(k), Value: []byte("v"), Timestamp: ts}
	}
	const chunk = 50000
	for lo := 0; lo < keys; lo += chunk {
		recs := make([]*kgo.Record, 0, chunk)
		for i := lo; i < min(lo+chunk, keys); i++ {
			recs = append(recs, record(i, now.Add(-3*time.Hour+time.Duration(i)*time.Hour/time.Duration(keys))))
		}
		produce(ctx, t, cl, recs)
	}

	run1 := startCrashApp(ctx, t, bin, "run1", args...)
	run1.waitReady(ctx, t)
	inEnd := lastStableOffsets(ctx, t, adm, in)[in]
	waitCommitted(ctx, t, adm, appID, in, inEnd, run1)
	filled := lastStableOffsets(ctx, t, adm, changelog)[changelog]

	// The updates, then a kill as soon as the first of them is committed:
	// the instance is in the middle of them.
	recs := make([]*kgo.Record, updates)
	for i := range recs {
		recs[i] = record(i, now.Add(-time.Hour))
	}
	produce(ctx, t, cl, recs)
	waitFor(ctx, t, "the first updates to be committed", func() bool {
		run1.running(t)
		got := committedOffsets(ctx, t, adm, appID, in)
		for p, e := range inEnd {
			if got[p] > e {
				return true
			}
		}
		return false
	})
	run1.kill(ctx, t)

	stored, err := kstream.StoredOffsets(stateDir, appID)
	if err != nil {
		t.Fatal(err)
	}
	// The changelog's end now: the records of the killed run's open
	// transaction included (they abort, and restore skips them).
	highWater := endOffsets(ctx, t, adm, changelog)

	began := time.Now()
	run2 := startCrashApp(ctx, t, bin, "run2", args...)
	run2.waitReady(ctx, t)
	readyAfter := time.Since(began)
	line, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	var restored, millis int64
	if _, err := fmt.Sscanf(string(line), "restored=%d millis=%d", &restored, &millis); err != nil {
		t.Fatalf("report %q: %v", line, err)
	}
	var bound int64
	for p, hw := range highWater {
		bound += hw - stored[changelog][p]
	}
	t.Logf("%d keys: the restart restored %d changelog records in %dms (ready %v after it started); stored offsets %v, changelog end %v, filled at %v",
		keys, restored, millis, readyAfter.Round(time.Millisecond), stored[changelog], highWater, filled)

	// The fill's last transaction committed before the updates' first:
	// every store holds at least its records (all but the commit marker
	// that ends the fill's changelog).
	for p := range int32(partitions) {
		off, ok := stored[changelog][p]
		if !ok || off < filled[p]-1 {
			t.Errorf("the store of partition %d holds changelog offset %d (%t), want at least %d, past the fill's last record", p, off, ok, filled[p]-1)
		}
	}
	if restored > bound {
		t.Errorf("the restart restored %d changelog records, more than the %d written past the offsets its stores hold", restored, bound)
	}

	// Exact results: every key counted once, the updated ones twice.
	waitCommitted(ctx, t, adm, appID, in, lastStableOffsets(ctx, t, adm, in)[in], run2)
	counts := lastCountsOf(ctx, t, b, adm, out)
	if len(counts) != keys {
		t.Errorf("counts of %d keys, want %d", len(counts), keys)
	}
	wrong := 0
	for i := range keys {
		want := int64(1)
		if i < updates {
			want = 2
		}
		if got := counts[key(i)]; got != want {
			if wrong++; wrong <= 10 {
				t.Errorf("count of %s = %d, want %d", key(i), got, want)
			}
		}
	}
	if wrong > 0 {
		t.Errorf("%d wrong counts", wrong)
	}
	run2.terminate(ctx, t)
}

// waitCommitted waits until group committed at least end for every
// partition of topic.
func waitCommitted(ctx context.Context, t testing.TB, adm *kadm.Client, group, topic string, end map[int32]int64, p *crashProc) {
	t.Helper()
	waitFor(ctx, t, "the group's committed offsets to reach "+fmt.Sprint(end), func() bool {
		p.running(t)
		got := committedOffsets(ctx, t, adm, group, topic)
		for part, e := range end {
			if e > 0 && got[part] < e {
				return false
			}
		}
		return true
	})
}

// endOffsets returns the high watermarks of topic's partitions: the end,
// records of open transactions included.
func endOffsets(ctx context.Context, t testing.TB, adm *kadm.Client, topic string) map[int32]int64 {
	t.Helper()
	var offs kadm.ListedOffsets
	err := retry(ctx, func() error {
		var err error
		offs, err = adm.ListEndOffsets(ctx, topic)
		if err == nil {
			err = offs.Error()
		}
		return err
	})
	if err != nil {
		t.Fatalf("list end offsets of %s: %v", topic, err)
	}
	out := make(map[int32]int64)
	offs.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
	return out
}

// lastCountsOf reads topic (read committed) up to its last stable offsets
// and returns the last count written for each key.
func lastCountsOf(ctx context.Context, t testing.TB, b *kafkatest.Broker, adm *kadm.Client, topic string) map[string]int64 {
	t.Helper()
	end := lastStableOffsets(ctx, t, adm, topic)[topic]
	parts := map[int32]kgo.Offset{}
	for p := range end {
		parts[p] = kgo.NewOffset().At(0)
	}
	cl := b.Client(t,
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: parts}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
	)
	next := map[int32]int64{}
	caughtUp := func() bool {
		for p, e := range end {
			if next[p] < e {
				return false
			}
		}
		return true
	}
	counts := map[string]int64{}
	for !caughtUp() {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("read %s: %v (at %v, end %v)", topic, err, next, end)
		}
		fs.EachError(func(_ string, p int32, err error) { t.Logf("read %s/%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			next[r.Partition] = r.Offset + 1
			if r.Attrs.IsControl() {
				return
			}
			n, err := serde.Int64.Deserialize(topic, r.Value)
			if err != nil {
				t.Fatalf("count of %q at %s/%d offset %d: %v", r.Key, topic, r.Partition, r.Offset, err)
			}
			counts[string(r.Key)] = n
		})
	}
	return counts
}
