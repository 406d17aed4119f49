package integration

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamwork-go/streamwork/integration/kafkatest"
	"github.com/streamwork-go/streamwork/kstream"
	"github.com/streamwork-go/streamwork/serde"
)

// TestBranchMergeDAGTwoInstances runs a DAG (a three-way Split whose
// branches are transformed differently and merged again, plus a filtered
// fan-out of the source) over a 6-partition input with two App instances
// of one application at once, the first with two workers. Each of 60 keys has 100 records with
// sequence numbers 0..99. In this clean run the merged output holds, for
// every key, exactly its 100 records in one partition in sequence order
// (nothing missing, nothing twice, order kept), the fan-out exactly every
// tenth, the lag of every input partition drops to 0, both instances ran
// tasks and processed records, together each record exactly once, and the
// group committed the whole input.
func TestBranchMergeDAGTwoInstances(t *testing.T) {
	b := kafkatest.Require(t)
	ctx := testContext(t)
	const (
		keys       = 60
		perKey     = 100
		partitions = 6
	)
	in := newTopic(t, b, "in", partitions)
	out := newTopic(t, b, "out", 4)
	audit := newTopic(t, b, "audit", 2)

	bld := kstream.NewBuilder()
	src := kstream.From(bld, in, serde.String, serde.Int64, kstream.Named("source"))
	br := src.Split("dag-",
		kstream.Branch[string, int64]{Name: "a", Pred: func(_ string, seq int64) bool { return seq%3 == 0 }},
		kstream.Branch[string, int64]{Name: "b", Pred: func(_ string, seq int64) bool { return seq%3 == 1 }},
		kstream.DefaultBranch[string, int64]("c"),
	)
	a := kstream.MapValues(br["a"], func(seq int64) string { return "a:" + strconv.FormatInt(seq, 10) })
	bb := kstream.MapValuesWithKey(br["b"].Filter(func(string, int64) bool { return true }),
		func(_ string, seq int64) string { return "b:" + strconv.FormatInt(seq, 10) })
	c := kstream.Map(br["c"], func(k string, seq int64) (string, string) { return k, "c:" + strconv.FormatInt(seq, 10) })
	a.Merge(bb, c).To(out, serde.String, serde.String)
	kstream.MapValues(src.Filter(func(_ string, seq int64) bool { return seq%10 == 0 }),
		func(seq int64) string { return "audit:" + strconv.FormatInt(seq, 10) }).
		To(audit, serde.String, serde.String)
	topo, err := bld.Build()
	if err != nil {
		t.Fatalf("build: %v", err)
	}

	appID := kafkatest.UniqueName(t, "app")
	opts := []kstream.Opt{kstream.ApplicationID(appID), kstream.CommitInterval(100 * time.Millisecond)}
	first := startApp(t, b, "a", topo, append(opts, kstream.InstanceID("a"), kstream.Workers(2))...)
	second := startApp(t, b, "b", topo, append(opts, kstream.InstanceID("b"))...)

	// The group has three members (a's two workers, b's one), so the
	// assignor gives each two tasks. Waiting for that final assignment
	// before any input exists makes the run that follows rebalance-free.
	waitFor(ctx, t, "a to run 4 tasks and b the other 2", func() bool {
		ta, tb := first.Metrics().Tasks, second.Metrics().Tasks
		all := slices.Concat(ta, tb)
		slices.SortFunc(all, compareTasks)
		return len(ta) == 4 && len(tb) == 2 &&
			len(slices.CompactFunc(all, func(x, y kstream.TaskID) bool { return x == y })) == partitions
	}, first, second)
	t.Logf("tasks: a=%v b=%v", first.Metrics().Tasks, second.Metrics().Tasks)

	inputs := make([]*kgo.Record, 0, keys*perKey)
	for seq := range perKey {
		for k := range keys {
			inputs = append(inputs, &kgo.Record{
				Topic: in, Partition: int32(k % partitions),
				Key:   []byte(dagKey(k)),
				Value: mustSerialize(t, serde.Int64, int64(seq)),
			})
		}
	}
	produce(ctx, t, producer(t, b), inputs)

	rd := newReader(t, b, out, audit)
	rd.readCounts(ctx, map[string]int{out: keys * perKey, audit: keys * perKey / 10}, first, second)
	waitFor(ctx, t, "the lag of every input partition to be 0", func() bool {
		lag := map[int32]int64{}
		for _, app := range []*runningApp{first, second} {
			for p, l := range app.Metrics().Lag[in] {
				lag[p] = l
			}
		}
		if len(lag) != partitions {
			return false
		}
		for _, l := range lag {
			if l != 0 {
				return false
			}
		}
		return true
	}, first, second)
	for _, app := range []*runningApp{first, second} {
		if err := app.stop(t); err != nil {
			t.Fatalf("App %s: Run returned %v after a clean shutdown, want nil", app.name, err)
		}
	}
	rd.readToEnd(ctx)

	wantSeqs := func(step int) []int64 {
		var s []int64
		for seq := 0; seq < perKey; seq += step {
			s = append(s, int64(seq))
		}
		return s
	}
	requireKeySequences(t, out, rd.records(out), keys, wantSeqs(1), func(seq int64) string {
		return string("abc"[seq%3]) + ":" + strconv.FormatInt(seq, 10)
	})
	requireKeySequences(t, audit, rd.records(audit), keys, wantSeqs(10), func(seq int64) string {
		return "audit:" + strconv.FormatInt(seq, 10)
	})

	ma, mb := first.Metrics(), second.Metrics()
	t.Logf("processed: a=%d b=%d; produced: a=%d b=%d", ma.RecordsProcessed, mb.RecordsProcessed, ma.RecordsProduced, mb.RecordsProduced)
	if ma.RecordsProcessed == 0 || mb.RecordsProcessed == 0 || ma.RecordsProcessed+mb.RecordsProcessed != keys*perKey {
		t.Errorf("instances processed a=%d and b=%d records, want both > 0 and %d together", ma.RecordsProcessed, mb.RecordsProcessed, keys*perKey)
	}
	if got, want := ma.RecordsProduced+mb.RecordsProduced, int64(keys*perKey+keys*perKey/10); got != want {
		t.Errorf("instances produced %d records together, want %d", got, want)
	}
	requireCommittedToEnd(ctx, t, b.Admin(t), appID, in)
}

func dagKey(k int) string { return fmt.Sprintf("key-%02d", k) }

func compareTasks(x, y kstream.TaskID) int {
	if x.Subtopology != y.Subtopology {
		return x.Subtopology - y.Subtopology
	}
	return int(x.Partition - y.Partition)
}

// requireKeySequences checks that recs, read partition by partition, hold
// for each of keys keys (dagKey) the values value(seq) for exactly the
// sequence numbers want, in that order, all in one partition.
func requireKeySequences(t *testing.T, topic string, recs []*kgo.Record, keys int, want []int64, value func(seq int64) string) {
	t.Helper()
	type keyed struct {
		partitions []int32
		values     []string
	}
	byKey := map[string]*keyed{}
	for _, r := range recs {
		k := byKey[string(r.Key)]
		if k == nil {
			k = &keyed{}
			byKey[string(r.Key)] = k
		}
		if !slices.Contains(k.partitions, r.Partition) {
			k.partitions = append(k.partitions, r.Partition)
		}
		k.values = append(k.values, string(r.Value))
	}
	wantValues := make([]string, len(want))
	for i, seq := range want {
		wantValues[i] = value(seq)
	}
	if len(byKey) != keys {
		t.Errorf("%s holds %d keys, want %d", topic, len(byKey), keys)
	}
	for k := range keys {
		got := byKey[dagKey(k)]
		switch {
		case got == nil:
			t.Errorf("%s: no record of key %s", topic, dagKey(k))
		case len(got.partitions) != 1:
			t.Errorf("%s: key %s is in partitions %v, want one", topic, dagKey(k), got.partitions)
		case !slices.Equal(got.values, wantValues):
			t.Errorf("%s: key %s has %d values, want %d in sequence order:\n got %s\nwant %s", topic, dagKey(k),
				len(got.values), len(wantValues), strings.Join(got.values, " "), strings.Join(wantValues, " "))
		}
	}
}
