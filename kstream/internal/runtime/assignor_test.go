package runtime

import (
	"errors"
	"io"
	"log/slog"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/streamwork-go/streamwork/kstream/internal/assign"
	"github.com/streamwork-go/streamwork/kstream/internal/engine"
	"github.com/streamwork-go/streamwork/kstream/internal/wire"
)

// A task that moves is first only revoked (cooperative), and given to its
// new owner in the next round; tasks that stay are untouched.
func TestAssignorPlanIsCooperative(t *testing.T) {
	a := &assignor{groups: [][]string{{"a", "b"}}, Logger: slog.New(slog.DiscardHandler)}
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

func TestAssignorJoinMetadata(t *testing.T) {
	src := &engine.Node{Name: "src", Kind: engine.KindSource, Topics: []string{"b", "a"}}
	topo, err := engine.Build(&engine.Graph{Nodes: []*engine.Node{src}, ByName: map[string]*engine.Node{"src": src}})
	if err != nil {
		t.Fatal(err)
	}
	a := newAssignor(topo, "app", wire.MemberInfo{InstanceID: "i1", Worker: 2}, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
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
	info, err := wire.DecodeMemberInfo(meta.UserData)
	if err != nil || info.InstanceID != "i1" || info.Worker != 2 {
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

// Through the kgo balancer, the plan gives partition p of co-partitioned
// topics a and b to the member that has task 0_p.
func TestAssignorPlanKeepsCopartitionedTopicsTogether(t *testing.T) {
	groups := [][]string{{"a", "b"}, {"c"}}
	parts := map[string]int32{"a": 6, "b": 6, "c": 4}
	a := &assignor{groups: groups, Logger: slog.New(slog.DiscardHandler)}
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

// The balancer sets a co-partitioning error on the kgo balancer and
// reports it.
func TestAssignorReportsCopartitionMismatch(t *testing.T) {
	groups := [][]string{{"a", "b"}}
	var reported error
	a := &assignor{groups: groups, Logger: slog.New(slog.DiscardHandler), onError: func(err error) { reported = err }}
	b, _, err := a.MemberBalancer(joinMembers(a, []joinState{{id: "m0"}}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.(kgo.GroupMemberBalancerOrError).BalanceOrError(map[string]int32{"a": 6, "b": 3}); !errors.Is(err, engine.ErrCopartition) {
		t.Fatalf("BalanceOrError err = %v", err)
	}
	if !errors.Is(reported, engine.ErrCopartition) {
		t.Fatalf("reported %v", reported)
	}
}

// While warm-ups exist, one member only — the first by member id — is
// told when to trigger the probing rebalance; every member gets its
// standbys.
func TestAssignorOneMemberProbes(t *testing.T) {
	a := &assignor{groups: [][]string{{"a"}}, Logger: slog.New(slog.DiscardHandler), scaling: &scaling{probing: time.Minute}}
	b, err := kgo.NewConsumerBalancer(balanceFunc(a.balance), joinMembers(a, []joinState{{id: "m2"}, {id: "m0"}, {id: "m1"}}))
	if err != nil {
		t.Fatal(err)
	}
	standby := []engine.TaskID{{Subtopology: 0, Partition: 1}}
	res := assign.Assignment{Active: make([][]engine.TaskID, 3), Standby: [][]engine.TaskID{standby, standby, standby}, Probe: true}
	before := time.Now()
	probers := map[string]time.Time{}
	for id, ud := range a.assignmentInfos(b, res, nil, nil) {
		info, err := wire.DecodeAssignmentInfo(ud)
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		if !reflect.DeepEqual(info.Standby, []wire.Task{{Sub: 0, Partition: 1}}) {
			t.Fatalf("%s: standbys %v", id, info.Standby)
		}
		if info.NextProbe != 0 {
			probers[id] = time.UnixMilli(info.NextProbe)
		}
	}
	at, ok := probers["m0"]
	if len(probers) != 1 || !ok || at.Before(before.Add(time.Minute).Truncate(time.Millisecond)) || at.After(time.Now().Add(time.Minute)) {
		t.Fatalf("probing rebalance given to %v; want m0 only, a minute from now", probers)
	}

	res.Probe = false
	for id, ud := range a.assignmentInfos(b, res, nil, nil) {
		if info, err := wire.DecodeAssignmentInfo(ud); err != nil || info.NextProbe != 0 {
			t.Fatalf("%s: no warm-ups, yet NextProbe %d (%v)", id, info.NextProbe, err)
		}
	}
}
