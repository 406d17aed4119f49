package kstream

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/streamwork-go/streamwork/serde"
)

// asgMembers makes n members owning nothing, with ids m0, m1, ...
func asgMembers(n int) []taskMember {
	ms := make([]taskMember, n)
	for i := range ms {
		ms[i] = taskMember{id: fmt.Sprintf("m%d", i), owned: map[string][]int32{}}
	}
	return ms
}

// asgOwn gives each member the partitions of the tasks it was assigned.
func asgOwn(groups [][]string, members []taskMember, assignment [][]TaskID, generation int32) []taskMember {
	out := make([]taskMember, len(members))
	for i, m := range members {
		out[i] = taskMember{id: m.id, generation: generation, owned: map[string][]int32{}}
		for _, id := range assignment[i] {
			for _, tp := range groups[id.Subtopology] {
				out[i].owned[tp] = append(out[i].owned[tp], id.Partition)
			}
		}
	}
	return out
}

// asgCheck checks that every task is assigned exactly once and that loads
// differ by at most one.
func asgCheck(t *testing.T, groups [][]string, parts map[string]int32, assignment [][]TaskID) {
	t.Helper()
	seen := map[TaskID]int{}
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
		got, err := assignTasks(groups, parts, asgMembers(n))
		if err != nil {
			t.Fatal(err)
		}
		asgCheck(t, groups, parts, got)
	}

	// Through the kgo balancer: the plan gives partition p of a and b to the
	// member that has task 0_p.
	a := &assignor{groups: groups, logger: slog.New(slog.DiscardHandler)}
	plan := balancePlan(t, a, parts, []joinState{{id: "m0"}, {id: "m1"}, {id: "m2"}})
	owner := map[string]map[int32]string{}
	for m, topics := range plan {
		for tp, ps := range topics {
			for _, p := range ps {
				if owner[tp] == nil {
					owner[tp] = map[int32]string{}
				}
				if prev, dup := owner[tp][p]; dup {
					t.Fatalf("%s/%d assigned to %s and %s", tp, p, prev, m)
				}
				owner[tp][p] = m
			}
		}
	}
	for p := range int32(6) {
		if owner["a"][p] == "" || owner["a"][p] != owner["b"][p] {
			t.Fatalf("partition %d: a to %q, b to %q; want one member", p, owner["a"][p], owner["b"][p])
		}
	}
	if len(owner["c"]) != 4 {
		t.Fatalf("c partitions assigned: %v", owner["c"])
	}
}

func TestAssignTasksCopartitionMismatchIsAnError(t *testing.T) {
	groups := [][]string{{"a", "b"}}
	_, err := assignTasks(groups, map[string]int32{"a": 6, "b": 3}, asgMembers(2))
	if !errors.Is(err, ErrCopartition) {
		t.Fatalf("err = %v, want ErrCopartition", err)
	}
	for _, want := range []string{"a has 6 partitions", "b has 3 partitions"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}

	// The balancer sets the error on the kgo balancer and reports it.
	var reported error
	a := &assignor{groups: groups, logger: slog.New(slog.DiscardHandler), onError: func(err error) { reported = err }}
	b, _, err := a.MemberBalancer(joinMembers(a, []joinState{{id: "m0"}}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.(kgo.GroupMemberBalancerOrError).BalanceOrError(map[string]int32{"a": 6, "b": 3}); !errors.Is(err, ErrCopartition) {
		t.Fatalf("BalanceOrError err = %v", err)
	}
	if !errors.Is(reported, ErrCopartition) {
		t.Fatalf("reported %v", reported)
	}
}

func TestAssignTasksSkipsSubtopologiesWithUnknownTopics(t *testing.T) {
	got, err := assignTasks([][]string{{"a"}, {"x", "y"}}, map[string]int32{"a": 2, "x": 2}, asgMembers(1))
	if err != nil {
		t.Fatal(err)
	}
	if want := [][]TaskID{{{0, 0}, {0, 1}}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestAssignTasksIsStickyAndStable(t *testing.T) {
	groups := [][]string{{"a", "b"}, {"c"}}
	parts := map[string]int32{"a": 6, "b": 6, "c": 5}
	ms := asgMembers(3)
	first, err := assignTasks(groups, parts, ms)
	if err != nil {
		t.Fatal(err)
	}
	// Fed back as ownership, the assignment does not change.
	again, err := assignTasks(groups, parts, asgOwn(groups, ms, first, 1))
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
	all, _ := assignTasks(groups, parts, one)
	owned := asgOwn(groups, one, all, 1)
	two := append(owned, taskMember{id: "m1", owned: map[string][]int32{}})
	got, err := assignTasks(groups, parts, two)
	if err != nil {
		t.Fatal(err)
	}
	asgCheck(t, groups, parts, got)
	// m0 keeps 3 of its 6 tasks, m1 gets the other 3: only 3 move.
	if want := []TaskID{{0, 0}, {0, 1}, {0, 2}}; !reflect.DeepEqual(got[0], want) {
		t.Fatalf("m0 kept %v, want %v", got[0], want)
	}
	if want := []TaskID{{0, 3}, {0, 4}, {0, 5}}; !reflect.DeepEqual(got[1], want) {
		t.Fatalf("m1 got %v, want %v", got[1], want)
	}
}

func TestAssignTasksLeavingMemberMovesOnlyItsTasks(t *testing.T) {
	groups := [][]string{{"a", "b"}, {"c"}}
	parts := map[string]int32{"a": 8, "b": 8, "c": 3}
	ms := asgMembers(4)
	before, _ := assignTasks(groups, parts, ms)
	owned := asgOwn(groups, ms, before, 1)
	for leaving := range owned {
		rest := slices.Delete(slices.Clone(owned), leaving, leaving+1)
		after, err := assignTasks(groups, parts, rest)
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
			ms[i].generation = int32(rng.IntN(3))
			for tp, c := range parts {
				for p := range c {
					if rng.IntN(n+1) == 0 {
						ms[i].owned[tp] = append(ms[i].owned[tp], p)
					}
				}
			}
		}
		got1, err := assignTasks(groups, parts, ms)
		if err != nil {
			t.Fatal(err)
		}
		asgCheck(t, groups, parts, got1)
		// Same input in another partition order: same output.
		shuffled := make([]taskMember, len(ms))
		for i, m := range ms {
			shuffled[i] = taskMember{id: m.id, generation: m.generation, owned: map[string][]int32{}}
			for tp, ps := range m.owned {
				c := slices.Clone(ps)
				rng.Shuffle(len(c), func(a, b int) { c[a], c[b] = c[b], c[a] })
				shuffled[i].owned[tp] = c
			}
		}
		got2, _ := assignTasks(groups, parts, shuffled)
		if !reflect.DeepEqual(got1, got2) {
			t.Fatalf("not deterministic:\n%v\n%v", got1, got2)
		}
	}
}

func TestAssignTasksPrefersTheNewestClaim(t *testing.T) {
	groups := [][]string{{"a"}}
	parts := map[string]int32{"a": 2}
	ms := []taskMember{
		{id: "m0", generation: 3, owned: map[string][]int32{"a": {0}}}, // stale claim on 0
		{id: "m1", generation: 5, owned: map[string][]int32{"a": {0}}},
	}
	got, err := assignTasks(groups, parts, ms)
	if err != nil {
		t.Fatal(err)
	}
	if want := [][]TaskID{{{0, 1}}, {{0, 0}}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

// A task that moves is first only revoked (cooperative), and given to its
// new owner in the next round; tasks that stay are untouched.
func TestAssignorPlanIsCooperative(t *testing.T) {
	a := &assignor{groups: [][]string{{"a", "b"}}, logger: slog.New(slog.DiscardHandler)}
	parts := map[string]int32{"a": 4, "b": 4}
	all := map[string][]int32{"a": {0, 1, 2, 3}, "b": {0, 1, 2, 3}}
	round1 := balancePlan(t, a, parts, []joinState{{id: "m0", owned: all, generation: 1}, {id: "m1"}})
	half := map[string][]int32{"a": {0, 1}, "b": {0, 1}}
	if !reflect.DeepEqual(round1["m0"], half) || len(round1["m1"]) != 0 {
		t.Fatalf("round 1 = %v; want m0 to keep %v and m1 to wait", round1, half)
	}
	round2 := balancePlan(t, a, parts, []joinState{{id: "m0", owned: half, generation: 2}, {id: "m1", generation: 2}})
	if !reflect.DeepEqual(round2["m0"], half) || !reflect.DeepEqual(round2["m1"], map[string][]int32{"a": {2, 3}, "b": {2, 3}}) {
		t.Fatalf("round 2 = %v", round2)
	}
}

func TestUserDataRoundTrip(t *testing.T) {
	in := memberInfo{version: userDataVersion, instanceID: "host-7", worker: 3}
	b := encodeUserData(in)
	got, err := decodeUserData(b)
	if err != nil || got != in {
		t.Fatalf("decode = %+v, %v; want %+v", got, err, in)
	}
	// A later version appends fields: this decoder reads what it knows.
	later := append([]byte{2}, b[1:]...)
	later = append(later, "host:8080"...)
	got, err = decodeUserData(later)
	if err != nil || got.instanceID != "host-7" || got.worker != 3 || got.version != 2 {
		t.Fatalf("decode later version = %+v, %v", got, err)
	}
	for _, bad := range [][]byte{nil, {0}, {1}, {1, 0, 5, 'a'}, b[:len(b)-1]} {
		if _, err := decodeUserData(bad); !errors.Is(err, errUserData) {
			t.Errorf("decode(%v) err = %v, want errUserData", bad, err)
		}
	}
}

func FuzzDecodeUserData(f *testing.F) {
	f.Add(encodeUserData(memberInfo{instanceID: "x", worker: 1}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeUserData(b)
		if err != nil {
			return
		}
		again, err := decodeUserData(encodeUserData(m))
		if err != nil || again.instanceID != m.instanceID || again.worker != m.worker {
			t.Fatalf("re-decode %+v: %+v, %v", m, again, err)
		}
	})
}

func TestAssignorJoinMetadata(t *testing.T) {
	b := NewBuilder()
	FromTopics(b, []string{"b", "a"}, serde.String, serde.String).To("out", serde.String, serde.String)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	a := newAssignor(topo, "app", memberInfo{instanceID: "i1", worker: 2}, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	raw := a.JoinGroupMetadata([]string{"a", "b"}, map[string][]int32{"b": {2, 0}, "a": {1}}, 7)
	var meta kmsg.ConsumerMemberMetadata
	if err := meta.ReadFrom(raw); err != nil {
		t.Fatal(err)
	}
	if meta.Version != 3 || meta.Generation != 7 || !reflect.DeepEqual(meta.Topics, []string{"a", "b"}) {
		t.Fatalf("metadata %+v", meta)
	}
	if len(meta.OwnedPartitions) != 2 || meta.OwnedPartitions[0].Topic != "a" || !reflect.DeepEqual(meta.OwnedPartitions[1].Partitions, []int32{0, 2}) {
		t.Fatalf("owned %+v", meta.OwnedPartitions)
	}
	info, err := decodeUserData(meta.UserData)
	if err != nil || info.instanceID != "i1" || info.worker != 2 {
		t.Fatalf("user data %+v, %v", info, err)
	}
	if a.ProtocolName() != "streamwork" || !a.IsCooperative() {
		t.Fatal("protocol")
	}
}

// joinState is a member as it joins: what it owns and its generation.
type joinState struct {
	id         string
	owned      map[string][]int32
	generation int32
}

func joinMembers(a *assignor, states []joinState) []kmsg.JoinGroupResponseMember {
	var topics []string
	for _, g := range a.groups {
		topics = append(topics, g...)
	}
	slices.Sort(topics)
	out := make([]kmsg.JoinGroupResponseMember, len(states))
	for i, s := range states {
		out[i] = kmsg.NewJoinGroupResponseMember()
		out[i].MemberID = s.id
		out[i].ProtocolMetadata = a.JoinGroupMetadata(topics, s.owned, s.generation)
	}
	return out
}

// balancePlan runs the assignor as a group leader would and returns the
// plan by member, topic and sorted partitions.
func balancePlan(t *testing.T, a *assignor, parts map[string]int32, states []joinState) map[string]map[string][]int32 {
	t.Helper()
	mb, _, err := a.MemberBalancer(joinMembers(a, states))
	if err != nil {
		t.Fatal(err)
	}
	into, err := mb.(kgo.GroupMemberBalancerOrError).BalanceOrError(parts)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string][]int32{}
	for _, sa := range into.IntoSyncAssignment() {
		m, err := kgo.ParseConsumerSyncAssignment(sa.MemberAssignment)
		if err != nil {
			t.Fatal(err)
		}
		for tp, ps := range m {
			if len(ps) == 0 {
				delete(m, tp)
			}
			slices.Sort(ps)
		}
		out[sa.MemberID] = m
	}
	return out
}
