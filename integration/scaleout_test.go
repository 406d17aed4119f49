package integration

import (
	"cmp"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
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
//
// "Caught up" is read from the survivor's stores, through its query
// handler with stale reads: every word's count there is the final one.
// StandbyLag alone cannot say it: it is as of the standby's latest fetch,
// and a fetch of the last transaction may still be on its way.
func TestStandbyFailoverRestoresOnlyWhatTheStandbyMissed(t *testing.T) {
	b := kafkatest.Require(t)
	ctx := testContext(t)
	rig := newWordCountRig(t, b, "standby")
	opts := []kstream.Opt{kstream.ApplicationID(rig.appID), kstream.CommitInterval(wcCommit),
		kstream.Guarantee(kstream.ExactlyOnce), kstream.StandbyReplicas(1)}

	a := startApp(t, b, "a", rig.topo, append(opts, kstream.InstanceID("a"), kstream.StateDir(t.TempDir()))...)
	bq := startQueryApp(t, b, "b", rig.topo, wcStore, append(opts, kstream.InstanceID("b"), kstream.StateDir(t.TempDir()))...)
	s, bAddr := bq.runningApp, bq.addr
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
	// b's stores, standbys included, hold every final count.
	waitFor(ctx, t, "b's stores to hold every final count", func() bool {
		for w, n := range want {
			ans, err := iqQuery(ctx, bAddr, "/stores/"+wcStore+"/keys/"+url.PathEscape(w)+"?stale=true")
			if err != nil {
				t.Fatal(err)
			}
			if ans.status != http.StatusOK || string(ans.body["value"]) != strconv.FormatInt(n, 10) {
				return false
			}
		}
		return true
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

// probingRebalance is what a member logs when it triggers a probing
// rebalance.
const probingRebalance = "kstream: probing rebalance: moving tasks whose warm-ups caught up"

// Scaling 1 → 3 → 1 instances while records flow, under exactly-once, with
// warm-ups: the new instances first hold warm-up replicas (standbys beyond
// StandbyReplicas) of the counting tasks they are to run, and run none of
// them before it warmed up there; a warmed-up task moves at the next
// rebalance, a probing one or the follow-up of a cooperative one, whichever
// comes first once the warm-up caught up (a small changelog catches up
// within a follow-up's round trip, so which it is is a matter of timing);
// the tasks end balanced (3, 3 and 2 tasks, at most 2 counting ones per
// instance, so at least 2 counting tasks moved). No task is ever active
// on two instances at once and the counts are exact. The longest pause in
// processing across the instances is logged for both moves.
func TestScaleOutWithWarmupsKeepsProcessing(t *testing.T) {
	b := kafkatest.Require(t)
	ctx := testContext(t)
	rig := newWordCountRig(t, b, "scaleout")
	opts := []kstream.Opt{kstream.ApplicationID(rig.appID), kstream.CommitInterval(wcCommit),
		kstream.Guarantee(kstream.ExactlyOnce), kstream.AcceptableRecoveryLag(200),
		kstream.MaxWarmupReplicas(1), kstream.ProbingRebalanceInterval(time.Second)}
	var taps []*logTap
	start := func(name string) *runningApp {
		tap := tapLogs(testLogger(t, name).Handler(), probingRebalance)
		taps = append(taps, tap)
		return startApp(t, b, name, rig.topo, append(opts, kstream.InstanceID(name), kstream.StateDir(t.TempDir()), kstream.Logger(slog.New(tap)))...)
	}
	probes := func() int {
		n := 0
		for _, tap := range taps {
			n += len(tap.records(probingRebalance))
		}
		return n
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
	// In batches, each counted before the next, so that each counting
	// task's changelog holds far more than AcceptableRecoveryLag records:
	// new instances must warm up.
	for i := range 15 {
		send(31+uint64(i), 200)
		rig.counts.waitCounts(ctx, t, want, apps...)
	}

	// sample checks that no task is active on two of the running
	// instances, notes the warm-ups (standbys) each instance held and
	// fails if an instance other than s0 runs a counting task it did not
	// warm up first, and tracks the longest time the instances' processed
	// total stood still while input was waiting.
	var longest time.Duration
	lastMove, lastTotal := time.Now(), int64(-1)
	running := map[string]bool{}
	warmed := map[string]map[kstream.TaskID]bool{}
	sample := func() {
		owner := map[kstream.TaskID]string{}
		var total int64
		for _, a := range apps {
			m := a.Metrics()
			total += m.RecordsProcessed
			if !running[a.name] {
				continue
			}
			if warmed[a.name] == nil {
				warmed[a.name] = map[kstream.TaskID]bool{}
			}
			for _, id := range m.StandbyTasks {
				warmed[a.name][id] = true
			}
			for _, id := range m.Tasks {
				if o, dup := owner[id]; dup {
					t.Fatalf("task %s active on %s and %s at once", id, o, a.name)
				}
				owner[id] = a.name
				if a.name != "s0" && id.Subtopology == 1 && !warmed[a.name][id] {
					t.Fatalf("%s runs counting task %s that it did not warm up first (standbys seen: %v)", a.name, id, warmed[a.name])
				}
			}
		}
		now := time.Now()
		if total != lastTotal {
			lastTotal, lastMove = total, now
		} else if d := now.Sub(lastMove); d > longest {
			longest = d
		}
	}
	began := time.Now()
	apps = append(apps, start("s1"), start("s2"))
	for _, a := range apps {
		running[a.name] = true
	}
	seed := uint64(100)
	// settled: the three members are in the group and every instance got
	// an assignment; the rebalances from there on change no membership.
	settled, probesSettled := false, 0
	var movedSettled []kstream.TaskID
	waitFor(ctx, t, "three instances share the tasks, warm-ups done", func() bool {
		seed++
		send(seed, 5) // records keep flowing
		sample()
		if !settled {
			gs, err := rig.adm.DescribeGroups(ctx, rig.appID)
			g, ok := gs[rig.appID]
			if err != nil || !ok || len(g.Members) != 3 {
				return false
			}
			var moved []kstream.TaskID
			for _, a := range apps {
				m := a.Metrics()
				if len(m.Tasks)+len(m.StandbyTasks) == 0 {
					return false
				}
				if a.name != "s0" {
					moved = append(moved, statefulTasks(m.Tasks)...)
				}
			}
			settled, movedSettled, probesSettled = true, moved, probes()
		}
		var counts, stateful []int
		for _, a := range apps {
			m := a.Metrics()
			if len(m.RestoringTasks) > 0 || len(m.StandbyTasks) > 0 {
				return false
			}
			counts = append(counts, len(m.Tasks))
			stateful = append(stateful, len(statefulTasks(m.Tasks)))
		}
		slices.Sort(counts)
		return slices.Equal(counts, []int{2, 3, 3}) && slices.Max(stateful) <= 2
	}, apps...)
	rig.counts.waitCounts(ctx, t, want, apps...)
	scaleOut, pauseOut := time.Since(began), longest
	var summary []string
	moved := 0
	for _, a := range apps {
		m := a.Metrics()
		if a.name != "s0" {
			moved += len(statefulTasks(m.Tasks))
		}
		summary = append(summary, fmt.Sprintf("%s: tasks %v, warmed up %v",
			a.name, m.Tasks, slices.SortedFunc(maps.Keys(warmed[a.name]), compareTaskIDs)))
	}
	t.Logf("1 → 3 instances in %v, %d probing rebalances (%d once the group had three members); counting tasks on s1 and s2 then %v, now %d; longest pause in processing %v\n%s",
		scaleOut.Round(time.Millisecond), probes(), probes()-probesSettled, movedSettled, moved, pauseOut, strings.Join(summary, "\n"))
	for _, a := range apps[1:] {
		if len(warmed[a.name]) == 0 {
			t.Fatalf("%s never held a warm-up replica", a.name)
		}
	}
	// Each of them warmed up there first (sample checks it at every look).
	if moved < 2 {
		t.Fatalf("s1 and s2 run %d counting tasks at the end, want at least 2 of 4", moved)
	}

	// 3 → 1: both stop at once while records keep flowing.
	longest, lastTotal = 0, -1
	began = time.Now()
	for _, a := range apps[1:] {
		running[a.name] = false
		a.cancel()
	}
	waitFor(ctx, t, "s0 runs every task again", func() bool {
		seed++
		send(seed, 5)
		sample()
		m := apps[0].Metrics()
		return len(m.Tasks) == 8 && len(m.RestoringTasks) == 0
	}, apps[0])
	rig.counts.waitCounts(ctx, t, want, apps[0])
	scaleIn, pauseIn := time.Since(began), longest
	for _, a := range apps[1:] {
		if err := a.stop(t); err != nil {
			t.Fatalf("%s: Run returned %v", a.name, err)
		}
	}
	t.Logf("3 → 1 instances in %v; longest pause in processing %v; s0 restored %d changelog records in all",
		scaleIn.Round(time.Millisecond), pauseIn, apps[0].Metrics().RestoredRecords)
	apps = apps[:1]
	send(60, 1000)
	rig.counts.waitCounts(ctx, t, want, apps...)
	requireStoreEquals(t, apps[0], wcStore, want)
}

// compareTaskIDs orders task ids by sub-topology, then partition.
func compareTaskIDs(a, b kstream.TaskID) int {
	if c := cmp.Compare(a.Subtopology, b.Subtopology); c != 0 {
		return c
	}
	return cmp.Compare(a.Partition, b.Partition)
}
