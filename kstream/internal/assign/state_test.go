package assign

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"github.com/streamwork-go/streamwork/kstream/internal/engine"
)

var (
	stGroups = [][]string{{"a", "b"}, {"c"}}
	stParts  = map[string]int32{"a": 4, "b": 4, "c": 4}
)

// stClients makes clients: instances[i] members of instance "i<i>", member
// ids i<i>-w<j>.
func stClients(instances ...int) []Client {
	var cs []Client
	for i, n := range instances {
		for j := range n {
			cs = append(cs, Client{
				Member:   Member{ID: fmt.Sprintf("i%d-w%d", i, j), Owned: map[string][]int32{}},
				Instance: fmt.Sprintf("i%d", i),
				Offsets:  map[engine.TaskID]int64{},
			})
		}
	}
	return cs
}

// stRun gives each client what it was assigned: the partitions of its
// active tasks, Running for them, and the given offset for its standbys.
func stRun(cs []Client, a Assignment, standbyOffset func(engine.TaskID) int64) []Client {
	out := make([]Client, len(cs))
	for i, c := range cs {
		out[i] = Client{Member: Member{ID: c.ID, Generation: c.Generation + 1, Owned: map[string][]int32{}}, Instance: c.Instance, Offsets: map[engine.TaskID]int64{}}
		for _, id := range a.Active[i] {
			for _, tp := range stGroups[id.Subtopology] {
				out[i].Owned[tp] = append(out[i].Owned[tp], id.Partition)
			}
			out[i].Offsets[id] = Running
		}
		for _, id := range a.Standby[i] {
			out[i].Offsets[id] = standbyOffset(id)
		}
	}
	return out
}

func stEnds(end int64) map[engine.TaskID]int64 {
	ends := map[engine.TaskID]int64{}
	for p := range int32(4) {
		ends[engine.TaskID{Subtopology: 0, Partition: p}] = end
	}
	return ends
}

func stPlan(t *testing.T, cs []Client, cfg Config) Assignment {
	t.Helper()
	a, err := Plan(stGroups, stParts, cs, cfg)
	if err != nil {
		t.Fatal(err)
	}
	stCheck(t, cs, cfg, a)
	return a
}

// stCheck checks the invariants: every task active once; no two replicas
// of a task on one instance; warm-ups within the limit; each instance's
// members balanced within one task.
func stCheck(t *testing.T, cs []Client, cfg Config, a Assignment) {
	t.Helper()
	active := map[engine.TaskID]string{}
	on := map[engine.TaskID]map[string]bool{}
	for i, c := range cs {
		inst := c.Instance
		if inst == "" {
			inst = c.ID
		}
		for _, id := range a.Active[i] {
			if prev, dup := active[id]; dup {
				t.Fatalf("task %s active on %s and %s", id, prev, c.ID)
			}
			active[id] = c.ID
			if on[id] == nil {
				on[id] = map[string]bool{}
			}
			on[id][inst] = true
		}
		for _, id := range a.Standby[i] {
			if id.Subtopology >= len(cfg.Stateful) || !cfg.Stateful[id.Subtopology] {
				t.Fatalf("standby of stateless task %s on %s", id, c.ID)
			}
			if on[id] == nil {
				on[id] = map[string]bool{}
			}
			if on[id][inst] {
				t.Fatalf("task %s twice on instance %s: %+v", id, inst, a)
			}
			on[id][inst] = true
		}
	}
	if len(active) != 8 {
		t.Fatalf("%d tasks active, want 8: %+v", len(active), a.Active)
	}
	if len(a.Warmups) > cfg.MaxWarmups {
		t.Fatalf("%d warm-ups, limit %d", len(a.Warmups), cfg.MaxWarmups)
	}
}

func stInstanceOf(cs []Client, a Assignment, id engine.TaskID) (active string, standby []string) {
	for i, c := range cs {
		if slices.Contains(a.Active[i], id) {
			active = c.Instance
		}
		if slices.Contains(a.Standby[i], id) {
			standby = append(standby, c.Instance)
		}
	}
	slices.Sort(standby)
	return active, standby
}

func TestPlanWithoutLagsIsStickyAndBalanced(t *testing.T) {
	cfg := Config{MaxWarmups: 2, AcceptableLag: 10, Stateful: []bool{true, false}}
	cs := stClients(1, 1)
	a := stPlan(t, cs, cfg)
	for i := range cs {
		if len(a.Active[i]) != 4 {
			t.Fatalf("member %d has %d tasks, want 4: %v", i, len(a.Active[i]), a.Active)
		}
	}
	// A third instance joins: each old instance keeps tasks it ran.
	cs = append(stRun(cs, a, nil), stClients(0, 0, 1)[0])
	b := stPlan(t, cs, cfg)
	for i := range 2 {
		for _, id := range b.Active[i] {
			if !slices.Contains(a.Active[i], id) {
				t.Fatalf("member %d got task %s it did not run: before %v, after %v", i, id, a.Active, b.Active)
			}
		}
	}
	if got := []int{len(b.Active[0]), len(b.Active[1]), len(b.Active[2])}; !reflect.DeepEqual(got, []int{3, 3, 2}) {
		t.Fatalf("loads %v, want [3 3 2]", got)
	}
	if b.Probe || len(b.Warmups) != 0 {
		t.Fatalf("no lags known: want no warm-ups, got %+v", b)
	}
}

func TestPlanPrefersTheCaughtUpInstance(t *testing.T) {
	cfg := Config{MaxWarmups: 2, AcceptableLag: 10, Stateful: []bool{true, false}, Ends: stEnds(1000)}
	cs := stClients(1, 1, 1)
	task := engine.TaskID{Subtopology: 0, Partition: 2}
	// Nobody runs anything; i2 holds task 0_2 almost caught up, i1 far behind.
	cs[1].Offsets[task] = 100
	cs[2].Offsets[task] = 995
	a := stPlan(t, cs, cfg)
	if act, _ := stInstanceOf(cs, a, task); act != "i2" {
		t.Fatalf("task %s active on %s, want i2 (caught up): %v", task, act, a.Active)
	}
	if a.Probe || len(a.Warmups) != 0 {
		t.Fatalf("no instance runs anything: want no warm-ups, got %+v", a)
	}
}

func TestPlanStandbysNeverOnTheActivesInstance(t *testing.T) {
	for _, shape := range [][]int{{1, 1}, {2, 1}, {1, 1, 1}, {2, 2, 2}, {3}} {
		for n := 1; n <= 3; n++ {
			cfg := Config{Standbys: n, MaxWarmups: 2, AcceptableLag: 10, Stateful: []bool{true, false}, Ends: stEnds(50)}
			cs := stClients(shape...)
			a := stPlan(t, cs, cfg)
			for p := range int32(4) {
				id := engine.TaskID{Subtopology: 0, Partition: p}
				act, sb := stInstanceOf(cs, a, id)
				if want := min(n, len(shape)-1); len(sb) != want {
					t.Fatalf("shape %v, %d standbys: task %s has standbys on %v (active %s), want %d", shape, n, id, sb, act, want)
				}
			}
			for p := range int32(4) {
				if _, sb := stInstanceOf(cs, a, engine.TaskID{Subtopology: 1, Partition: p}); len(sb) != 0 {
					t.Fatalf("stateless task has standbys on %v", sb)
				}
			}
		}
	}
}

func TestPlanStandbysAreBalanced(t *testing.T) {
	cfg := Config{Standbys: 1, MaxWarmups: 2, AcceptableLag: 10, Stateful: []bool{true, true}, Ends: map[engine.TaskID]int64{}}
	cs := stClients(1, 1, 1, 1)
	a := stPlan(t, cs, cfg)
	for i := range cs {
		if got := len(a.Active[i]) + len(a.Standby[i]); got != 4 {
			t.Fatalf("member %d has %d active + standby tasks, want 4: %v / %v", i, got, a.Active, a.Standby)
		}
	}
}

// TestPlanScaleOutMovesStateThroughWarmups: one instance runs all tasks;
// two empty instances join. The running instance keeps every stateful
// task active; at most MaxWarmups warm-ups start; a task moves once its
// warm-up caught up; in the end the load is balanced.
func TestPlanScaleOutMovesStateThroughWarmups(t *testing.T) {
	cfg := Config{MaxWarmups: 2, AcceptableLag: 10, Stateful: []bool{true, false}, Ends: stEnds(1000)}
	one := stClients(1)
	a := stPlan(t, one, cfg)
	cs := append(stRun(one, a, nil), stClients(0, 1, 1)...)
	for i := range 3 {
		cs[i].Instance = fmt.Sprintf("i%d", i)
	}
	caughtUp := map[engine.TaskID]bool{}
	moves := 0
	for round := 0; ; round++ {
		if round > 10 {
			t.Fatal("no balance after 10 probing rebalances")
		}
		b := stPlan(t, cs, cfg)
		for ci := range cs {
			for _, id := range b.Active[ci] {
				if id.Subtopology == 0 && cs[ci].Offsets[id] != Running {
					if !caughtUp[id] {
						t.Fatalf("round %d: stateful task %s moved to %s before its warm-up caught up", round, id, cs[ci].ID)
					}
					moves++
				}
			}
		}
		if len(b.Warmups) > 2 {
			t.Fatalf("round %d: %d warm-ups", round, len(b.Warmups))
		}
		if !b.Probe {
			if len(b.Warmups) != 0 {
				t.Fatalf("warm-ups without probing: %+v", b)
			}
			for ci := range cs {
				if n := len(b.Active[ci]); n < 2 || n > 3 {
					t.Fatalf("final loads unbalanced: %v", b.Active)
				}
			}
			// The stateful tasks are balanced on their own: i0 keeps
			// its share of them (2 of 4: 0_0 and 0_1, the first it
			// owns), 0_2 and 0_3 move through warm-ups; the stateless
			// ones move at once, and i0 keeps one of them (3 tasks).
			if moves != 2 {
				t.Fatalf("%d stateful tasks moved, want 2", moves)
			}
			for ci := range cs {
				if n := stStateful(b.Active[ci]); n < 1 || n > 2 {
					t.Fatalf("stateful tasks unbalanced: %v", b.Active)
				}
			}
			return
		}
		// The warm-ups catch up before the next probing rebalance.
		for _, w := range b.Warmups {
			caughtUp[w.Task] = true
		}
		cs = stRun(cs, b, func(engine.TaskID) int64 { return 995 })
	}
}

func TestPlanWithoutCaughtUpInstanceRestoresOnTarget(t *testing.T) {
	cfg := Config{MaxWarmups: 1, AcceptableLag: 10, Stateful: []bool{true, false}, Ends: stEnds(1000)}
	a := stPlan(t, stClients(1, 1), cfg)
	if a.Probe || len(a.Warmups) != 0 {
		t.Fatalf("nobody caught up: want no warm-ups, got %+v", a)
	}
}

func TestPlanWarmupLimit(t *testing.T) {
	for _, max := range []int{1, 2, 3} {
		cfg := Config{MaxWarmups: max, AcceptableLag: 10, Stateful: []bool{true, true}, Ends: map[engine.TaskID]int64{}}
		for s := range 2 {
			for p := range int32(4) {
				cfg.Ends[engine.TaskID{Subtopology: s, Partition: p}] = 500
			}
		}
		one := stClients(1)
		a := stPlan(t, one, cfg)
		cs := append(stRun(one, a, nil), stClients(0, 1, 1)...)
		b := stPlan(t, cs, cfg)
		if len(b.Warmups) != max || !b.Probe {
			t.Fatalf("MaxWarmups %d: %d warm-ups, probe %v", max, len(b.Warmups), b.Probe)
		}
		if len(b.Active[0]) != 8 {
			t.Fatalf("the caught-up instance must keep all 8 tasks until warm-ups catch up: %v", b.Active)
		}
	}
}

// TestPlanHeldStateStaysWithItsMember: a standby held open by one worker
// of an instance becomes active on that worker, not on its sibling.
func TestPlanHeldStateStaysWithItsMember(t *testing.T) {
	cfg := Config{Standbys: 1, MaxWarmups: 2, AcceptableLag: 10, Stateful: []bool{true, false}, Ends: stEnds(100)}
	cs := stClients(3)
	for p := range int32(4) {
		cs[2].Offsets[engine.TaskID{Subtopology: 0, Partition: p}] = 100 // held by i0-w2 only
	}
	a := stPlan(t, cs, cfg)
	for p := range int32(4) {
		if id := (engine.TaskID{Subtopology: 0, Partition: p}); !slices.Contains(a.Active[2], id) {
			t.Fatalf("task %s held by i0-w2 went elsewhere: %v", id, a.Active)
		}
	}
}

// TestPlanIsDeterministic: random member sets, offsets and ownership; the
// same input in any order gives the same assignment, and the invariants
// hold.
func TestPlanIsDeterministic(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	for iter := range 300 {
		shape := make([]int, 1+rng.IntN(4))
		for i := range shape {
			shape[i] = 1 + rng.IntN(3)
		}
		cs := stClients(shape...)
		cfg := Config{Standbys: rng.IntN(3), MaxWarmups: 1 + rng.IntN(3), AcceptableLag: 10, Stateful: []bool{true, rng.IntN(2) == 0}, Ends: map[engine.TaskID]int64{}}
		for s := range 2 {
			for p := range int32(4) {
				id := engine.TaskID{Subtopology: s, Partition: p}
				cfg.Ends[id] = int64(rng.IntN(100))
				if rng.IntN(3) == 0 {
					ci := rng.IntN(len(cs))
					cs[ci].Offsets[id] = int64(rng.IntN(100))
				}
				if rng.IntN(2) == 0 {
					ci := rng.IntN(len(cs))
					for _, tp := range stGroups[s] {
						cs[ci].Owned[tp] = append(cs[ci].Owned[tp], p)
					}
					cs[ci].Offsets[id] = Running
				}
			}
		}
		a := stPlan(t, cs, cfg)
		perm := rng.Perm(len(cs))
		shuffled := make([]Client, len(cs))
		for i, j := range perm {
			shuffled[i] = cs[j]
		}
		b := stPlan(t, shuffled, cfg)
		for i, j := range perm {
			if !reflect.DeepEqual(a.Active[j], b.Active[i]) || !reflect.DeepEqual(a.Standby[j], b.Standby[i]) {
				t.Fatalf("iteration %d: member %s got %v/%v, then %v/%v after shuffling", iter, cs[j].ID, a.Active[j], a.Standby[j], b.Active[i], b.Standby[i])
			}
		}
		if !reflect.DeepEqual(a.Warmups, b.Warmups) || a.Probe != b.Probe {
			t.Fatalf("iteration %d: warm-ups %v/%v, then %v/%v", iter, a.Warmups, a.Probe, b.Warmups, b.Probe)
		}
	}
}

// stStateful counts the tasks of sub-topology 0 (the stateful one in the
// tests that have one) in ids.
func stStateful(ids []engine.TaskID) int {
	n := 0
	for _, id := range ids {
		if id.Subtopology == 0 {
			n++
		}
	}
	return n
}

// An instance that ran every task alone shares them with a newcomer,
// nothing lagging (empty changelogs): each gets half of the stateful tasks
// and half of the stateless ones, so each holds standbys of the other's
// stateful tasks. Balancing all tasks as one kept the first tasks in task
// order, the stateless ones, where the running instance owned them all, and
// gave every stateful task to the newcomer.
func TestPlanBalancesStatefulAndStatelessTasksEachOnTheirOwn(t *testing.T) {
	for _, stateful := range [][]bool{{true, false}, {false, true}} {
		cfg := Config{Standbys: 1, AcceptableLag: 10, Stateful: stateful, Ends: map[engine.TaskID]int64{}}
		one := stClients(1)
		cs := append(stRun(one, stPlan(t, one, cfg), nil), stClients(1)...)
		cs[1].Instance, cs[1].ID = "i1", "i1-w0"
		a := stPlan(t, cs, cfg)
		for ci := range cs {
			var st, sl int
			for _, id := range a.Active[ci] {
				if stateful[id.Subtopology] {
					st++
				} else {
					sl++
				}
			}
			if st != 2 || sl != 2 || len(a.Standby[ci]) != 2 {
				t.Fatalf("stateful %v: %s has %d stateful and %d stateless tasks and %d standbys, want 2, 2 and 2: active %v, standby %v",
					stateful, cs[ci].ID, st, sl, len(a.Standby[ci]), a.Active, a.Standby)
			}
		}
		if a.Probe || len(a.Warmups) != 0 {
			t.Fatalf("stateful %v: nothing lags, yet probe %v, warm-ups %v", stateful, a.Probe, a.Warmups)
		}
	}
}

// A third instance joins two that run 6 tasks with a standby each (each
// holds the standbys of the other's tasks, caught up). Taking its share,
// the newcomer gets 2 active tasks; every instance then keeps 2 standbys.
// Placing standbys greedily in task order left it with 1 and another with
// 3: the newcomer's own tasks came last, when only the two loaded
// instances could take them (an integration test then waited forever for
// 2 standbys each).
func TestPlanStandbysStayBalancedWhenAnInstanceJoins(t *testing.T) {
	groups := [][]string{{"in"}}
	parts := map[string]int32{"in": 6}
	ends := map[engine.TaskID]int64{}
	for p := range int32(6) {
		ends[engine.TaskID{Partition: p}] = 100
	}
	cfg := Config{Standbys: 1, MaxWarmups: 2, AcceptableLag: 10_000, Stateful: []bool{true}, Ends: ends}
	client := func(inst string) Client {
		return Client{Member: Member{ID: inst + "-w0", Owned: map[string][]int32{}}, Instance: inst, Offsets: map[engine.TaskID]int64{}}
	}
	// run gives each client what a assigned it: its active partitions,
	// Running for its actives, caught-up offsets for its standbys.
	run := func(cs []Client, a Assignment) []Client {
		out := make([]Client, len(cs))
		for i, c := range cs {
			out[i] = client(c.Instance)
			out[i].Generation = c.Generation + 1
			for _, id := range a.Active[i] {
				out[i].Owned["in"] = append(out[i].Owned["in"], id.Partition)
				out[i].Offsets[id] = Running
			}
			for _, id := range a.Standby[i] {
				out[i].Offsets[id] = ends[id]
			}
		}
		return out
	}
	plan := func(cs []Client) Assignment {
		t.Helper()
		a, err := Plan(groups, parts, cs, cfg)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	two := []Client{client("a"), client("c")}
	cs := append(run(two, plan(two)), client("b"))
	for round := range 3 {
		a := plan(cs)
		for i, c := range cs {
			if len(a.Active[i]) != 2 || len(a.Standby[i]) != 2 {
				t.Fatalf("round %d: instance %s has %d active tasks and %d standbys, want 2 and 2: active %v, standby %v",
					round, c.Instance, len(a.Active[i]), len(a.Standby[i]), a.Active, a.Standby)
			}
			for _, id := range a.Standby[i] {
				if slices.Contains(a.Active[i], id) {
					t.Fatalf("round %d: %s keeps %s active and standby", round, c.Instance, id)
				}
			}
		}
		cs = run(cs, a)
	}
}
