package integration

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamwork-go/streamwork/integration/kafkatest"
	"github.com/streamwork-go/streamwork/kstream"
	"github.com/streamwork-go/streamwork/serde"
	"github.com/streamwork-go/streamwork/state"
)

// The word count run by two instances at once (same application id, own
// InstanceID and StateDir) over a 4-partition topic: the last count of
// each word in the output equals the count computed here, the two
// instances' stores hold every word once with that count, and every input
// and repartition record was processed exactly once.
func TestWordCountTwoInstancesExact(t *testing.T) {
	b := kafkatest.Require(t)
	ctx := testContext(t)
	in := newTopic(t, b, "wc-lines", 4)
	out := newTopic(t, b, "wc-counts", 4)
	appID := kafkatest.UniqueName(t, "wc")
	deleteTopicsAtEnd(t, b, appID+"-"+wcRepartition+"-repartition", appID+"-"+wcStore+"-changelog")
	topo := wordCountTopology(t, in, out)
	want := map[string]int64{}
	lines, words := wordCorpus(1, 5000, 200, want)

	var apps []*runningApp
	for _, name := range []string{"wc-1", "wc-2"} {
		apps = append(apps, startApp(t, b, name, topo, kstream.ApplicationID(appID), kstream.InstanceID(name),
			kstream.StateDir(t.TempDir()), kstream.CommitInterval(wcCommit)))
	}
	waitAssigned(ctx, t, 8, apps...) // 2 sub-topologies x 4 partitions
	produce(ctx, t, producer(t, b), lineRecords(in, lines, 0, 4))

	counts := newLastCounts(newReader(t, b, out), out)
	counts.waitCounts(ctx, t, want, apps...)

	// Every word is in the store of exactly one instance, with its count.
	merged := map[string]int64{}
	for _, a := range apps {
		for k, v := range queryAll(t, a, wcStore) {
			if _, dup := merged[k]; dup {
				t.Fatalf("word %q is in the stores of both instances", k)
			}
			merged[k] = v
		}
	}
	if !maps.Equal(merged, want) {
		t.Fatalf("the stores of both instances hold %d words, want %d:\n got %v\nwant %v", len(merged), len(want), merged, want)
	}
	views := make([]state.ReadOnlyKeyValue[string, int64], len(apps))
	for i, a := range apps {
		var err error
		if views[i], err = kstream.QueryStore(a.App, wcStore, serde.String, serde.Int64); err != nil {
			t.Fatal(err)
		}
	}
	for _, w := range sortedKeys(want) {
		found := 0
		for i, kv := range views {
			v, ok, err := kv.Get(w)
			if err != nil {
				t.Fatalf("%s: Get(%q): %v", apps[i].name, w, err)
			}
			if ok {
				found++
				if v != want[w] {
					t.Fatalf("%s: Get(%q) = %d, want %d", apps[i].name, w, v, want[w])
				}
			}
		}
		if found != 1 {
			t.Fatalf("Get(%q) found the word on %d instances, want 1", w, found)
		}
	}

	// Each line once in sub-topology 0, each word once in sub-topology 1.
	wantProcessed := int64(len(lines) + words)
	processed := func() int64 { return apps[0].Metrics().RecordsProcessed + apps[1].Metrics().RecordsProcessed }
	waitFor(ctx, t, fmt.Sprintf("%d records processed", wantProcessed), func() bool { return processed() >= wantProcessed }, apps...)
	if got := processed(); got != wantProcessed {
		t.Fatalf("the instances processed %d records, want %d (%d lines + %d words)", got, wantProcessed, len(lines), words)
	}
	for _, a := range apps {
		if err := a.stop(t); err != nil {
			t.Fatalf("%s: Run returned %v", a.name, err)
		}
	}
}

// An instance whose state directory is deleted while it is stopped restores
// the word counts from the changelog — exactly the records the changelog
// holds — and counts on from there exactly.
func TestWordCountRestoresAfterStateDirDeleted(t *testing.T) {
	b := kafkatest.Require(t)
	ctx := testContext(t)
	rig := newWordCountRig(t, b, "wc")
	in, changelog, topo, adm, prod, counts, dir, opts := rig.in, rig.changelog, rig.topo, rig.adm, rig.prod, rig.counts, rig.dir, rig.opts

	want := map[string]int64{}
	lines1, _ := wordCorpus(2, 1500, 200, want)
	first := startApp(t, b, "first", topo, opts...)
	waitAssigned(ctx, t, 8, first)
	produce(ctx, t, prod, lineRecords(in, lines1, 0, 4))
	counts.waitCounts(ctx, t, want, first)
	if err := first.stop(t); err != nil {
		t.Fatalf("first: Run returned %v", err)
	}
	written := changelogSize(ctx, t, b, adm, changelog)
	if written == 0 {
		t.Fatal("the changelog is empty after the first run")
	}

	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	restored := startApp(t, b, "restored", topo, opts...)
	waitAssigned(ctx, t, 8, restored)
	if got := restored.Metrics().RestoredRecords; got != written {
		t.Fatalf("restored %d changelog records, want %d (all the changelog holds)", got, written)
	}
	requireStoreEquals(t, restored, wcStore, want)

	lines2, _ := wordCorpus(3, 1500, 200, want)
	produce(ctx, t, prod, lineRecords(in, lines2, len(lines1), 4))
	counts.waitCounts(ctx, t, want, restored)
	requireStoreEquals(t, restored, wcStore, want)
	if got := restored.Metrics().RestoredRecords; got != written {
		t.Fatalf("restored %d changelog records in the end, want %d", got, written)
	}
	if err := restored.stop(t); err != nil {
		t.Fatalf("restored: Run returned %v", err)
	}
}

// An instance restarted on its own state directory after a clean stop
// restores only what the changelog holds past its checkpoints — nothing,
// since the clean stop checkpointed the changelog's end — and counts on
// exactly.
func TestWordCountRestartResumesFromCheckpoint(t *testing.T) {
	b := kafkatest.Require(t)
	ctx := testContext(t)
	rig := newWordCountRig(t, b, "wc")
	in, appID, changelog, topo, adm, prod, counts, dir, opts := rig.in, rig.appID, rig.changelog, rig.topo, rig.adm, rig.prod, rig.counts, rig.dir, rig.opts

	// requireCheckpointedToEnd checks that the checkpoints of the store's
	// tasks (sub-topology 1) are the changelog's end offsets, and returns
	// how many changelog records lie past them.
	requireCheckpointedToEnd := func() int64 {
		t.Helper()
		start, end := offsetRange(ctx, t, adm, changelog)
		stored, err := kstream.StoredOffsets(dir, appID)
		if err != nil {
			t.Fatal(err)
		}
		ckpt := stored[changelog]
		var past int64
		for p := range int32(4) {
			from, ok := ckpt[p]
			if !ok {
				from = start[p] // no checkpoint: restore from the log start
			}
			if from != end[p] {
				t.Errorf("checkpoint of %s/%d: %d (present: %v), want the changelog's end %d", changelog, p, from, ok, end[p])
			}
			past += end[p] - from
		}
		if len(ckpt) != 4 || len(stored) != 1 {
			t.Errorf("checkpoints %v: want one per changelog partition", stored)
		}
		return past
	}

	want := map[string]int64{}
	lines1, _ := wordCorpus(4, 1500, 200, want)
	first := startApp(t, b, "first", topo, opts...)
	waitAssigned(ctx, t, 8, first)
	produce(ctx, t, prod, lineRecords(in, lines1, 0, 4))
	counts.waitCounts(ctx, t, want, first)
	if err := first.stop(t); err != nil {
		t.Fatalf("first: Run returned %v", err)
	}
	pastCheckpoint := requireCheckpointedToEnd()
	if pastCheckpoint != 0 {
		t.Fatalf("%d changelog records past the checkpoints after a clean stop, want 0", pastCheckpoint)
	}

	second := startApp(t, b, "second", topo, opts...)
	waitAssigned(ctx, t, 8, second)
	if got := second.Metrics().RestoredRecords; got != pastCheckpoint {
		t.Fatalf("the restart restored %d changelog records, want %d (those past the checkpoints)", got, pastCheckpoint)
	}
	requireStoreEquals(t, second, wcStore, want) // from the local stores alone

	lines2, _ := wordCorpus(5, 1500, 200, want)
	produce(ctx, t, prod, lineRecords(in, lines2, len(lines1), 4))
	counts.waitCounts(ctx, t, want, second)
	requireStoreEquals(t, second, wcStore, want)
	if err := second.stop(t); err != nil {
		t.Fatalf("second: Run returned %v", err)
	}
	if got := second.Metrics().RestoredRecords; got != 0 {
		t.Fatalf("the restart restored %d changelog records in all, want 0", got)
	}
	requireCheckpointedToEnd()
}

// Run creates the internal topics: the grouping's repartition topic
// (delete, kept forever, as many partitions as the input) and the store's
// changelog (compact, one partition per task). An explicit Repartition gets
// the partitions it asks for and writes by key, or round robin with
// RoundRobin.
func TestInternalTopicsConfig(t *testing.T) {
	b := kafkatest.Require(t)
	ctx := testContext(t)
	in := newTopic(t, b, "it-lines", 4)
	out := newTopic(t, b, "it-counts", 4)
	appID := kafkatest.UniqueName(t, "it")
	wordsTopic := appID + "-" + wcRepartition + "-repartition"
	changelog := appID + "-" + wcStore + "-changelog"
	xTopic, rrTopic := appID+"-x-repartition", appID+"-rr-repartition"
	deleteTopicsAtEnd(t, b, wordsTopic, changelog, xTopic, rrTopic)

	bld := kstream.NewBuilder()
	lines := kstream.From(bld, in, serde.String, serde.String)
	words := kstream.FlatMapValues(lines, strings.Fields)
	grouped := kstream.GroupBy(words, func(_, w string) string { return w }, serde.String, serde.String, kstream.Named(wcRepartition))
	kstream.Count(grouped, kstream.StoreName(wcStore)).ToStream().To(out, serde.String, serde.Int64)
	kstream.Repartition(lines, serde.String, serde.String, kstream.Named("x"), kstream.Partitions(3)).
		Foreach(func(string, string) {})
	kstream.Repartition(lines, serde.String, serde.String, kstream.Named("rr"), kstream.Partitions(3), kstream.RoundRobin()).
		Foreach(func(string, string) {})
	topo, err := bld.Build()
	if err != nil {
		t.Fatal(err)
	}

	// A long commit interval: the App purges repartition records it has
	// committed, and this test reads them back before that.
	app := startApp(t, b, "it", topo, kstream.ApplicationID(appID), kstream.StateDir(t.TempDir()),
		kstream.CommitInterval(time.Minute))
	waitAssigned(ctx, t, 4+4+3+3, app)
	adm := kadm.NewClient(b.Client(t, kgo.MetadataMinAge(checkEvery)))
	for _, c := range []struct {
		topic      string
		partitions int
		configs    map[string]string
	}{
		{wordsTopic, 4, map[string]string{"cleanup.policy": "delete", "retention.ms": "-1"}},
		{changelog, 4, map[string]string{"cleanup.policy": "compact"}},
		{xTopic, 3, map[string]string{"cleanup.policy": "delete", "retention.ms": "-1"}},
		{rrTopic, 3, map[string]string{"cleanup.policy": "delete", "retention.ms": "-1"}},
	} {
		if n := partitionCount(ctx, t, adm, c.topic); n != c.partitions {
			t.Errorf("%s has %d partitions, want %d", c.topic, n, c.partitions)
		}
		for k, v := range c.configs {
			if got := topicConfig(ctx, t, adm, c.topic, k); got != v {
				t.Errorf("%s: %s = %q, want %q", c.topic, k, got, v)
			}
		}
	}

	// 30 records of one key, all in input partition 0.
	const n = 30
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = &kgo.Record{Topic: in, Partition: 0, Key: []byte("same"), Value: fmt.Appendf(nil, "v%02d", i)}
	}
	produce(ctx, t, producer(t, b), recs)
	r := newReader(t, b, xTopic, rrTopic)
	r.readCounts(ctx, map[string]int{xTopic: n, rrTopic: n}, app)

	keyPart := int32(kgo.StickyKeyPartitioner(nil).ForTopic(xTopic).Partition(&kgo.Record{Key: []byte("same")}, 3))
	perPartition := func(topic string) map[int32]int {
		got := map[int32]int{}
		var values []string
		for _, rec := range r.records(topic) {
			if string(rec.Key) != "same" {
				t.Fatalf("%s: record with key %q, want \"same\"", topic, rec.Key)
			}
			got[rec.Partition]++
			values = append(values, string(rec.Value))
		}
		slices.Sort(values)
		for i, v := range values {
			if v != fmt.Sprintf("v%02d", i) {
				t.Fatalf("%s: values %v, want v00..v%02d once each", topic, values, n-1)
			}
		}
		return got
	}
	if got, want := perPartition(xTopic), map[int32]int{keyPart: n}; !maps.Equal(got, want) {
		t.Errorf("%s (by key): records per partition %v, want %v", xTopic, got, want)
	}
	if got, want := perPartition(rrTopic), map[int32]int{0: n / 3, 1: n / 3, 2: n / 3}; !maps.Equal(got, want) {
		t.Errorf("%s (round robin): records per partition %v, want %v", rrTopic, got, want)
	}
	if err := app.stop(t); err != nil {
		t.Fatalf("Run returned %v", err)
	}
}

// dslUser is a row of the users table.
type dslUser struct {
	Name   string `json:"name"`
	Region string `json:"region"`
}

// TableGroupBy + TableCount over a users table: a user that moves leaves
// the count of its old region and joins the new one's; an update within a
// region takes the old row out and puts the new one in; a tombstone takes
// the user out; a tombstone of an unknown user changes nothing. With
// CacheMaxBytes(0) every step's updates reach the output, in order per
// region.
func TestTableGroupByMovesKeyBetweenGroups(t *testing.T) {
	b := kafkatest.Require(t)
	ctx := testContext(t)
	users := newTopic(t, b, "users", 2)
	out := newTopic(t, b, "region-counts", 2)
	appID := kafkatest.UniqueName(t, "tg")
	deleteTopicsAtEnd(t, b, appID+"-by-region-repartition", appID+"-region-counts-changelog",
		appID+"-users-changelog")

	bld := kstream.NewBuilder()
	table := kstream.TableFrom(bld, users, serde.String, serde.JSON[dslUser](), kstream.StoreName("users"))
	byRegion := kstream.TableGroupBy(table, func(id string, u dslUser) (string, string) { return u.Region, id },
		serde.String, serde.String, kstream.Named("by-region"))
	kstream.TableCount(byRegion, kstream.StoreName("region-counts")).ToStream().To(out, serde.String, serde.Int64)
	topo, err := bld.Build()
	if err != nil {
		t.Fatal(err)
	}
	app := startApp(t, b, "tg", topo, kstream.ApplicationID(appID), kstream.StateDir(t.TempDir()),
		kstream.CacheMaxBytes(0), kstream.CommitInterval(wcCommit))
	waitAssigned(ctx, t, 2+2, app)

	prod := b.Client(t) // partitions by key, as Kafka's default partitioner
	r := newReader(t, b, out)
	want := map[string][]int64{} // region => its counts, in order
	got := func() map[string][]int64 {
		seqs := map[string][]int64{}
		for _, rec := range r.records(out) {
			if rec.Value == nil {
				t.Fatalf("%s: tombstone for region %q", out, rec.Key)
			}
			v, err := serde.Int64.Deserialize(out, rec.Value)
			if err != nil {
				t.Fatal(err)
			}
			seqs[string(rec.Key)] = append(seqs[string(rec.Key)], v)
		}
		return seqs
	}
	processed := int64(0)
	steps := []struct {
		what      string
		user      string
		row       *dslUser // nil: a tombstone
		updates   map[string][]int64
		processed int64 // users records + repartition records
	}{
		{"alice joins eu", "alice", &dslUser{"Alice", "eu"}, map[string][]int64{"eu": {1}}, 1 + 1},
		{"bob joins eu", "bob", &dslUser{"Bob", "eu"}, map[string][]int64{"eu": {2}}, 1 + 1},
		{"carol joins us", "carol", &dslUser{"Carol", "us"}, map[string][]int64{"us": {1}}, 1 + 1},
		{"alice moves to us", "alice", &dslUser{"Alice", "us"}, map[string][]int64{"eu": {1}, "us": {2}}, 1 + 2},
		{"alice renamed, stays in us: one result (KIP-904)", "alice", &dslUser{"Alicia", "us"}, map[string][]int64{"us": {2}}, 1 + 1},
		{"bob deleted", "bob", nil, map[string][]int64{"eu": {0}}, 1 + 1},
		{"unknown zed deleted", "zed", nil, nil, 1},
		{"dave joins apac", "dave", &dslUser{"Dave", "apac"}, map[string][]int64{"apac": {1}}, 1 + 1},
	}
	for _, s := range steps {
		rec := &kgo.Record{Topic: users, Key: []byte(s.user)}
		if s.row != nil {
			v, err := serde.JSON[dslUser]().Serialize(users, *s.row)
			if err != nil {
				t.Fatal(err)
			}
			rec.Value = v
		}
		produce(ctx, t, prod, []*kgo.Record{rec})
		for region, seq := range s.updates {
			want[region] = append(want[region], seq...)
		}
		processed += s.processed
		r.readUntil(ctx, s.what, func() bool {
			g := got()
			for region, seq := range g {
				if len(seq) > len(want[region]) || !slices.Equal(seq, want[region][:len(seq)]) {
					t.Fatalf("after %q: region %s counts %v, want %v", s.what, region, seq, want[region])
				}
			}
			return maps.EqualFunc(g, want, slices.Equal[[]int64]) && app.Metrics().RecordsProcessed >= processed
		}, app)
		if p := app.Metrics().RecordsProcessed; p != processed {
			t.Fatalf("after %q: processed %d records, want %d", s.what, p, processed)
		}
	}
	if err := app.stop(t); err != nil {
		t.Fatalf("Run returned %v", err)
	}
	r.readToEnd(ctx)
	if g := got(); !maps.EqualFunc(g, want, slices.Equal[[]int64]) {
		t.Fatalf("region counts in the end:\n got %v\nwant %v", g, want)
	}
	final := map[string]int64{}
	for region, seq := range want {
		final[region] = seq[len(seq)-1]
	}
	if w := map[string]int64{"eu": 0, "us": 2, "apac": 1}; !maps.Equal(final, w) {
		t.Fatalf("final counts %v, want %v", final, w)
	}
}

// A source reading two topics as one stream needs them co-partitioned:
// with 3 and 2 partitions Run refuses to start, naming both, and processes
// nothing.
func TestCopartitionMismatchRefused(t *testing.T) {
	b := kafkatest.Require(t)
	ctx := testContext(t)
	ta := newTopic(t, b, "copart-a", 3)
	tb := newTopic(t, b, "copart-b", 2)
	out := newTopic(t, b, "copart-out", 2)
	appID := kafkatest.UniqueName(t, "copart")
	produce(ctx, t, producer(t, b), []*kgo.Record{
		{Topic: ta, Partition: 0, Key: []byte("k"), Value: []byte("a")},
		{Topic: tb, Partition: 0, Key: []byte("k"), Value: []byte("b")},
	})

	bld := kstream.NewBuilder()
	kstream.FromTopics(bld, []string{ta, tb}, serde.String, serde.String).To(out, serde.String, serde.String)
	topo, err := bld.Build()
	if err != nil {
		t.Fatal(err)
	}
	app := startApp(t, b, "copart", topo, kstream.ApplicationID(appID), kstream.StateDir(t.TempDir()))
	err = app.wait(t)
	if !errors.Is(err, kstream.ErrCopartition) {
		t.Fatalf("Run returned %v, want an error wrapping ErrCopartition", err)
	}
	for _, s := range []string{ta + " has 3 partitions", tb + " has 2 partitions"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("Run's error %q does not say %q", err, s)
		}
	}
	if m := app.Metrics(); m.RecordsProcessed != 0 || m.RecordsProduced != 0 || m.Commits != 0 {
		t.Errorf("metrics after the refusal: processed %d, produced %d, commits %d; want none", m.RecordsProcessed, m.RecordsProduced, m.Commits)
	}
	adm := b.Admin(t)
	if n := endOffsetSum(ctx, t, adm, out); n != 0 {
		t.Errorf("%s has %d records, want none", out, n)
	}
	for _, tp := range []string{ta, tb} {
		if offs := committedOffsets(ctx, t, adm, appID, tp); len(offs) != 0 {
			t.Errorf("group %s committed %v on %s, want nothing", appID, offs, tp)
		}
	}
}

// A global table over a 3-partition topic joined from a 2-partition stream
// (not co-partitioned): every table record produced before the App starts
// is visible to the first stream record, stream records without a match
// are dropped, and updates and deletes of the table made while the App
// runs apply to later stream records.
func TestGlobalTableLookupOnRealBroker(t *testing.T) {
	b := kafkatest.Require(t)
	ctx := testContext(t)
	products := newTopic(t, b, "products", 3)
	orders := newTopic(t, b, "orders", 2)
	out := newTopic(t, b, "enriched", 2)
	appID := kafkatest.UniqueName(t, "glob")

	// The table: p00..p29, by key over the 3 partitions. The orders, all
	// produced before the App starts too: o000..o063 for p(i mod 32), so
	// p30 and p31 are missing; the first order of each partition looks up
	// the last product written.
	tableProd := b.Client(t)
	var prodRecs []*kgo.Record
	for i := range 30 {
		prodRecs = append(prodRecs, &kgo.Record{Topic: products, Key: fmt.Appendf(nil, "p%02d", i), Value: fmt.Appendf(nil, "product-%02d-v1", i)})
	}
	produce(ctx, t, tableProd, prodRecs)
	want := map[string]string{}
	var orderRecs []*kgo.Record
	for i := range 64 {
		pid := fmt.Sprintf("p%02d", i%32)
		if i < 2 {
			pid = "p29"
		}
		oid := fmt.Sprintf("o%03d", i)
		orderRecs = append(orderRecs, &kgo.Record{Topic: orders, Partition: int32(i % 2), Key: []byte(oid), Value: []byte(pid)})
		if i%32 < 30 || i < 2 {
			want[oid] = fmt.Sprintf("%s=product-%s-v1", pid, pid[1:])
		}
	}
	prod := producer(t, b)
	produce(ctx, t, prod, orderRecs)

	bld := kstream.NewBuilder()
	gt := kstream.GlobalTableFrom(bld, products, serde.String, serde.String, kstream.StoreName("products"))
	enriched := kstream.JoinGlobal(kstream.From(bld, orders, serde.String, serde.String), gt,
		func(_, pid string) string { return pid },
		func(pid, name string) string { return pid + "=" + name })
	enriched.To(out, serde.String, serde.String)
	topo, err := bld.Build()
	if err != nil {
		t.Fatal(err)
	}
	app := startApp(t, b, "glob", topo, kstream.ApplicationID(appID), kstream.StateDir(t.TempDir()),
		kstream.CommitInterval(wcCommit))

	r := newReader(t, b, out)
	gotOut := func() map[string]string {
		m := map[string]string{}
		for _, rec := range r.records(out) {
			if _, dup := m[string(rec.Key)]; dup {
				t.Fatalf("%s: order %s joined twice", out, rec.Key)
			}
			m[string(rec.Key)] = string(rec.Value)
		}
		return m
	}
	r.readCounts(ctx, map[string]int{out: len(want)}, app)
	if g := gotOut(); !maps.Equal(g, want) {
		t.Fatalf("joined orders:\n got %v\nwant %v", g, want)
	}
	// The last orders of each partition have no match: wait for them too.
	waitFor(ctx, t, "every order processed", func() bool { return app.Metrics().RecordsProcessed >= int64(len(orderRecs)) }, app)
	if p := app.Metrics().RecordsProcessed; p != int64(len(orderRecs)) {
		t.Fatalf("processed %d orders, want %d", p, len(orderRecs))
	}

	// While it runs: p00 changes, p01 is deleted. Once the global store
	// shows both, o100 (p00) joins the new value, o101 (p01) is dropped,
	// and o102 (p02, after o101 in the same partition) marks the end.
	produce(ctx, t, tableProd, []*kgo.Record{
		{Topic: products, Key: []byte("p00"), Value: []byte("product-00-v2")},
		{Topic: products, Key: []byte("p01")},
	})
	kv, err := kstream.QueryStore(app.App, "products", serde.String, serde.String)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(ctx, t, "the global store to apply the update and the delete", func() bool {
		v0, ok0, err0 := kv.Get("p00")
		_, ok1, err1 := kv.Get("p01")
		if err0 != nil || err1 != nil {
			t.Fatalf("Get: %v, %v", err0, err1)
		}
		return ok0 && v0 == "product-00-v2" && !ok1
	}, app)
	produce(ctx, t, prod, []*kgo.Record{
		{Topic: orders, Partition: 0, Key: []byte("o100"), Value: []byte("p00")},
		{Topic: orders, Partition: 1, Key: []byte("o101"), Value: []byte("p01")},
		{Topic: orders, Partition: 1, Key: []byte("o102"), Value: []byte("p02")},
	})
	want["o100"] = "p00=product-00-v2"
	want["o102"] = "p02=product-02-v1"
	r.readCounts(ctx, map[string]int{out: len(want)}, app)
	if err := app.stop(t); err != nil {
		t.Fatalf("Run returned %v", err)
	}
	r.readToEnd(ctx)
	if g := gotOut(); !maps.Equal(g, want) {
		t.Fatalf("joined orders in the end:\n got %v\nwant %v", g, want)
	}
}
