package integration

import (
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamwork-go/streamwork/integration/kafkatest"
	"github.com/streamwork-go/streamwork/kstream"
)

// recentLineRecords is lineRecords with event times an hour or two ago (the
// broker keeps them by their timestamps).
func recentLineRecords(topic string, lines []string, from int, partitions int32) []*kgo.Record {
	recs := lineRecords(topic, lines, from, partitions)
	base := time.Now().Add(-2 * time.Hour)
	for i, r := range recs {
		r.Timestamp = base.Add(time.Duration(from+i) * time.Millisecond)
	}
	return recs
}

// statefulTasks returns the tasks of the word count's counting
// sub-topology (1) among ids.
func statefulTasks(ids []kstream.TaskID) []kstream.TaskID {
	var out []kstream.TaskID
	for _, id := range ids {
		if id.Subtopology == 1 {
			out = append(out, id)
		}
	}
	return out
}

// Failover with a standby: two instances, StandbyReplicas(1), exactly-once.
// Each keeps a standby of every counting task the other runs. When one
// instance goes, the survivor takes its tasks over and restores only what
// its standbys had not read (here nothing: they had caught up), far less
// than the changelog holds; the counts stay exact.
func TestStandbyFailoverRestoresOnlyWhatTheStandbyMissed(t *testing.T) {
	b := kafkatest.Require(t)
	ctx := testContext(t)
	rig := newWordCountRig(t, b, "standby")
	opts := []kstream.Opt{kstream.ApplicationID(rig.appID), kstream.CommitInterval(wcCommit),
		kstream.Guarantee(kstream.ExactlyOnce), kstream.StandbyReplicas(1)}

	a := startApp(t, b, "a", rig.topo, append(opts, kstream.InstanceID("a"), kstream.StateDir(t.TempDir()))...)
	s := startApp(t, b, "b", rig.topo, append(opts, kstream.InstanceID("b"), kstream.StateDir(t.TempDir()))...)
	waitAssigned(ctx, t, 8, a, s)
	// Every counting task has its standby on the other instance.
	waitFor(ctx, t, "standbys of the other instance's counting tasks", func() bool {
		ma, mb := a.Metrics(), s.Metrics()
		return slices.Equal(statefulTasks(ma.Tasks), mb.StandbyTasks) && slices.Equal(statefulTasks(mb.Tasks), ma.StandbyTasks) &&
			len(ma.StandbyTasks)+len(mb.StandbyTasks) == 4
	}, a, s)

	want := map[string]int64{}
	lines1, _ := wordCorpus(21, 2000, 200, want)
	produce(ctx, t, rig.prod, recentLineRecords(rig.in, lines1, 0, 4))
	rig.counts.waitCounts(ctx, t, want, a, s)
	// Offsets, transaction markers included: at least the records.
	start, end := offsetRange(ctx, t, rig.adm, rig.changelog)
	var total int64
	for p, e := range end {
		total += e - start[p]
	}
	if total == 0 {
		t.Fatal("the changelog is empty")
	}
	// The survivor's standbys read the whole changelog of a's tasks.
	var lagged int64
	waitFor(ctx, t, "b's standbys caught up", func() bool {
		m := s.Metrics()
		lagged = 0
		for _, id := range m.StandbyTasks {
			l, ok := m.StandbyLag[id]
			if !ok {
				return false
			}
			lagged += l
		}
		return len(m.StandbyTasks) > 0 && lagged == 0
	}, a, s)
	restoredBefore := s.Metrics().RestoredRecords
	taken := statefulTasks(a.Metrics().Tasks)
	t.Logf("changelog records %d; b restored %d before; b's standbys of %v lag %d", total, restoredBefore, taken, lagged)

	if err := a.stop(t); err != nil {
		t.Fatalf("a: Run returned %v", err)
	}
	waitAssigned(ctx, t, 8, s)
	restored := s.Metrics().RestoredRecords - restoredBefore
	t.Logf("b took over %v restoring %d changelog records (the changelog holds %d)", taken, restored, total)
	if restored != lagged {
		t.Fatalf("b restored %d changelog records taking over %v, want %d (what its standbys lagged)", restored, taken, lagged)
	}
	if restored >= total {
		t.Fatalf("b restored %d records, not less than the changelog's %d", restored, total)
	}
	if m := s.Metrics(); len(m.StandbyTasks) != 0 {
		t.Fatalf("b alone keeps standbys %v", m.StandbyTasks)
	}

	lines2, _ := wordCorpus(22, 1000, 200, want)
	produce(ctx, t, rig.prod, recentLineRecords(rig.in, lines2, len(lines1), 4))
	rig.counts.waitCounts(ctx, t, want, s)
	requireStoreEquals(t, s, wcStore, want)
}

// Scaling 1 → 3 → 1 instances while records flow, under exactly-once, with
// warm-ups: new instances first warm up (standbys beyond StandbyReplicas),
// tasks move at probing rebalances once caught up, no task is ever active
// on two instances at once, and the counts are exact. The longest pause in
// processing across the instances is logged.
func TestScaleOutWithWarmupsKeepsProcessing(t *testing.T) {
	b := kafkatest.Require(t)
	ctx := testContext(t)
	rig := newWordCountRig(t, b, "scaleout")
	opts := []kstream.Opt{kstream.ApplicationID(rig.appID), kstream.CommitInterval(wcCommit),
		kstream.Guarantee(kstream.ExactlyOnce), kstream.AcceptableRecoveryLag(10),
		kstream.MaxWarmupReplicas(1), kstream.ProbingRebalanceInterval(2 * time.Second)}
	start := func(name string) *runningApp {
		return startApp(t, b, name, rig.topo, append(opts, kstream.InstanceID(name), kstream.StateDir(t.TempDir()))...)
	}
	want := map[string]int64{}
	next := 0
	send := func(seed uint64, n int) {
		lines, _ := wordCorpus(seed, n, 200, want)
		produce(ctx, t, rig.prod, recentLineRecords(rig.in, lines, next, 4))
		next += n
	}
	apps := []*runningApp{start("s0")}
	waitAssigned(ctx, t, 8, apps...)
	send(31, 3000)
	rig.counts.waitCounts(ctx, t, want, apps...)

	// sample checks that no task is active on two instances and tracks the
	// longest time the instances' processed total stood still while input
	// was waiting.
	var longest time.Duration
	lastMove, lastTotal := time.Now(), int64(-1)
	sample := func() {
		owner := map[kstream.TaskID]string{}
		var total int64
		for _, a := range apps {
			m := a.Metrics()
			total += m.RecordsProcessed
			for _, id := range m.Tasks {
				if o, dup := owner[id]; dup {
					t.Fatalf("task %s active on %s and %s at once", id, o, a.name)
				}
				owner[id] = a.name
			}
		}
		now := time.Now()
		if total != lastTotal {
			lastTotal, lastMove = total, now
		} else if d := now.Sub(lastMove); d > longest {
			longest = d
		}
	}
	apps = append(apps, start("s1"), start("s2"))
	seed := uint64(40)
	waitFor(ctx, t, "three instances share the tasks, warm-ups done", func() bool {
		seed++
		send(seed, 20) // records keep flowing
		sample()
		standbys := 0
		for _, a := range apps {
			m := a.Metrics()
			if len(m.Tasks) < 2 || len(m.Tasks) > 3 || len(m.RestoringTasks) > 0 {
				return false
			}
			standbys += len(m.StandbyTasks)
		}
		return standbys == 0
	}, apps...)
	rig.counts.waitCounts(ctx, t, want, apps...)
	t.Logf("1 → 3 instances: longest pause in processing %v", longest)

	longest = 0
	for _, a := range apps[1:] {
		if err := a.stop(t); err != nil {
			t.Fatalf("%s: Run returned %v", a.name, err)
		}
	}
	apps = apps[:1]
	send(60, 1000)
	waitAssigned(ctx, t, 8, apps...)
	rig.counts.waitCounts(ctx, t, want, apps...)
	requireStoreEquals(t, apps[0], wcStore, want)
}
