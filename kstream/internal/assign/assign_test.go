package assign

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/streamwork-go/streamwork/kstream/internal/engine"
)

// asgMembers makes n members owning nothing, with ids m0, m1, ...
func asgMembers(n int) []Member {
	ms := make([]Member, n)
	for i := range ms {
		ms[i] = Member{ID: fmt.Sprintf("m%d", i), Owned: map[string][]int32{}}
	}
	return ms
}

// asgOwn gives each member the partitions of the tasks it was assigned.
func asgOwn(groups [][]string, members []Member, assignment [][]engine.TaskID, generation int32) []Member {
	out := make([]Member, len(members))
	for i, m := range members {
		out[i] = Member{ID: m.ID, Generation: generation, Owned: map[string][]int32{}}
		for _, id := range assignment[i] {
			for _, tp := range groups[id.Subtopology] {
				out[i].Owned[tp] = append(out[i].Owned[tp], id.Partition)
			}
		}
	}
	return out
}

// asgCheck checks that every task is assigned exactly once and that loads
// differ by at most one.
func asgCheck(t *testing.T, groups [][]string, parts map[string]int32, assignment [][]engine.TaskID) {
	t.Helper()
	seen := map[engine.TaskID]int{}
	minLoad, maxLoad := 1<<30, -1
	for mi, ts := range assignment {
		minLoad, maxLoad = min(minLoad, len(ts)), max(maxLoad, len(ts))
		for _, id := range ts {
			if prev, dup := seen[id]; dup {
				t.Fatalf("task %s assigned to members %d and %d", id, prev, mi)
			}
			seen[id] = mi
		}
	}
	want := 0
	for _, g := range groups {
		want += int(parts[g[0]])
	}
	if len(seen) != want {
		t.Fatalf("%d tasks assigned, want %d: %v", len(seen), want, assignment)
	}
	if len(assignment) > 0 && maxLoad-minLoad > 1 {
		t.Fatalf("unbalanced: loads from %d to %d: %v", minLoad, maxLoad, assignment)
	}
}

func TestAssignTasksCopartitionedTopicsGoToOneMember(t *testing.T) {
	groups := [][]string{{"a", "b"}, {"c"}}
	parts := map[string]int32{"a": 6, "b": 6, "c": 4}
	for n := 1; n <= 7; n++ {
		got, err := Tasks(groups, parts, asgMembers(n))
		if err != nil {
			t.Fatal(err)
		}
		asgCheck(t, groups, parts, got)
	}
}

func TestAssignTasksCopartitionMismatchIsAnError(t *testing.T) {
	groups := [][]string{{"a", "b"}}
	_, err := Tasks(groups, map[string]int32{"a": 6, "b": 3}, asgMembers(2))
	if !errors.Is(err, engine.ErrCopartition) {
		t.Fatalf("err = %v, want engine.ErrCopartition", err)
	}
	for _, want := range []string{"a has 6 partitions", "b has 3 partitions"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

func TestAssignTasksSkipsSubtopologiesWithUnknownTopics(t *testing.T) {
	got, err := Tasks([][]string{{"a"}, {"x", "y"}}, map[string]int32{"a": 2, "x": 2}, asgMembers(1))
	if err != nil {
		t.Fatal(err)
	}
	if want := [][]engine.TaskID{{{Subtopology: 0, Partition: 0}, {Subtopology: 0, Partition: 1}}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestAssignTasksIsStickyAndStable(t *testing.T) {
	groups := [][]string{{"a", "b"}, {"c"}}
	parts := map[string]int32{"a": 6, "b": 6, "c": 5}
	ms := asgMembers(3)
	first, err := Tasks(groups, parts, ms)
	if err != nil {
		t.Fatal(err)
	}
	// Fed back as ownership, the assignment does not change.
	again, err := Tasks(groups, parts, asgOwn(groups, ms, first, 1))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(first, again) {
		t.Fatalf("not stable:\n%v\n%v", first, again)
	}
}

func TestAssignTasksNewMemberTakesOnlyItsShare(t *testing.T) {
	groups := [][]string{{"a"}}
	parts := map[string]int32{"a": 6}
	one := asgMembers(1)
	all, _ := Tasks(groups, parts, one)
	owned := asgOwn(groups, one, all, 1)
	two := append(owned, Member{ID: "m1", Owned: map[string][]int32{}})
	got, err := Tasks(groups, parts, two)
	if err != nil {
		t.Fatal(err)
	}
	asgCheck(t, groups, parts, got)
	// m0 keeps 3 of its 6 tasks, m1 gets the other 3: only 3 move.
	if want := []engine.TaskID{{Subtopology: 0, Partition: 0}, {Subtopology: 0, Partition: 1}, {Subtopology: 0, Partition: 2}}; !reflect.DeepEqual(got[0], want) {
		t.Fatalf("m0 kept %v, want %v", got[0], want)
	}
	if want := []engine.TaskID{{Subtopology: 0, Partition: 3}, {Subtopology: 0, Partition: 4}, {Subtopology: 0, Partition: 5}}; !reflect.DeepEqual(got[1], want) {
		t.Fatalf("m1 got %v, want %v", got[1], want)
	}
}

func TestAssignTasksLeavingMemberMovesOnlyItsTasks(t *testing.T) {
	groups := [][]string{{"a", "b"}, {"c"}}
	parts := map[string]int32{"a": 8, "b": 8, "c": 3}
	ms := asgMembers(4)
	before, _ := Tasks(groups, parts, ms)
	owned := asgOwn(groups, ms, before, 1)
	for leaving := range owned {
		rest := slices.Delete(slices.Clone(owned), leaving, leaving+1)
		after, err := Tasks(groups, parts, rest)
		if err != nil {
			t.Fatal(err)
		}
		asgCheck(t, groups, parts, after)
		ri := 0
		for mi := range owned {
			if mi == leaving {
				continue
			}
			for _, id := range before[mi] {
				if !slices.Contains(after[ri], id) {
					t.Fatalf("member %d leaving moved task %s away from member %d: before %v after %v", leaving, id, mi, before, after)
				}
			}
			ri++
		}
	}
}

func TestAssignTasksIsDeterministic(t *testing.T) {
	groups := [][]string{{"a", "b"}, {"c"}, {"d"}}
	parts := map[string]int32{"a": 7, "b": 7, "c": 3, "d": 11}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		n := 1 + rng.IntN(6)
		ms := asgMembers(n)
		// random current ownership, some of it overlapping (stale claims)
		for i := range ms {
			ms[i].Generation = int32(rng.IntN(3))
			for tp, c := range parts {
				for p := range c {
					if rng.IntN(n+1) == 0 {
						ms[i].Owned[tp] = append(ms[i].Owned[tp], p)
					}
				}
			}
		}
		got1, err := Tasks(groups, parts, ms)
		if err != nil {
			t.Fatal(err)
		}
		asgCheck(t, groups, parts, got1)
		// Same input in another partition order: same output.
		shuffled := make([]Member, len(ms))
		for i, m := range ms {
			shuffled[i] = Member{ID: m.ID, Generation: m.Generation, Owned: map[string][]int32{}}
			for tp, ps := range m.Owned {
				c := slices.Clone(ps)
				rng.Shuffle(len(c), func(a, b int) { c[a], c[b] = c[b], c[a] })
				shuffled[i].Owned[tp] = c
			}
		}
		got2, _ := Tasks(groups, parts, shuffled)
		if !reflect.DeepEqual(got1, got2) {
			t.Fatalf("not deterministic:\n%v\n%v", got1, got2)
		}
	}
}

func TestAssignTasksPrefersTheNewestClaim(t *testing.T) {
	groups := [][]string{{"a"}}
	parts := map[string]int32{"a": 2}
	ms := []Member{
		{ID: "m0", Generation: 3, Owned: map[string][]int32{"a": {0}}}, // stale claim on 0
		{ID: "m1", Generation: 5, Owned: map[string][]int32{"a": {0}}},
	}
	got, err := Tasks(groups, parts, ms)
	if err != nil {
		t.Fatal(err)
	}
	if want := [][]engine.TaskID{{{Subtopology: 0, Partition: 1}}, {{Subtopology: 0, Partition: 0}}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}
