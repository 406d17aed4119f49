package runtime

import (
	"errors"
	"log/slog"
	"reflect"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/streamwork-go/streamwork/kstream/internal/engine"
	"github.com/streamwork-go/streamwork/kstream/internal/wire"
)

func TestBuildHostsGroupsMembersByAddress(t *testing.T) {
	addrs := map[string]string{"m0": "h1:1", "m1": "h2:2", "m2": "h1:1", "m3": ""}
	active := map[string][]wire.Task{
		"m0": {{Sub: 1, Partition: 0}, {Sub: 0, Partition: 2}},
		"m1": {{Sub: 0, Partition: 1}},
		"m2": {{Sub: 0, Partition: 0}},
		"m3": {{Sub: 0, Partition: 3}},
	}
	standby := map[string][]wire.Task{"m1": {{Sub: 0, Partition: 0}}}
	got := BuildHosts(addrs, active, standby)
	want := []wire.HostTasks{
		{Addr: "h1:1", Active: []wire.Task{{Sub: 0, Partition: 0}, {Sub: 0, Partition: 2}, {Sub: 1, Partition: 0}}, Standby: []wire.Task{}},
		{Addr: "h2:2", Active: []wire.Task{{Sub: 0, Partition: 1}}, Standby: []wire.Task{{Sub: 0, Partition: 0}}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("BuildHosts = %+v\nwant %+v", got, want)
	}
}

func TestHostMapIsRebalancingUntilEveryWorkerIsAssigned(t *testing.T) {
	var h hostMap
	if _, err := h.Hosts(2); !errors.Is(err, engine.ErrRebalancing) {
		t.Fatalf("before any assignment: %v", err)
	}
	first := []wire.HostTasks{{Addr: "a:1"}}
	h.assigned(0, first)
	if _, err := h.Hosts(2); !errors.Is(err, engine.ErrRebalancing) {
		t.Fatalf("one of two workers assigned: %v", err)
	}
	second := []wire.HostTasks{{Addr: "b:1"}}
	h.assigned(1, second)
	if got, err := h.Hosts(2); err != nil || !reflect.DeepEqual(got, second) {
		t.Fatalf("both assigned: %v, %v; want the latest %v", got, err, second)
	}
	h.rebalancing(0)
	if _, err := h.Hosts(2); !errors.Is(err, engine.ErrRebalancing) {
		t.Fatalf("after a revoke: %v", err)
	}
	h.assigned(0, first)
	if got, err := h.Hosts(2); err != nil || !reflect.DeepEqual(got, first) {
		t.Fatalf("after the next assignment: %v, %v", got, err)
	}
}

// The leader's plan carries the host map in every member's assignment user
// data, and ParseSyncAssignment hands it over with the member's partitions.
func TestAssignorSendsHostMapInAssignment(t *testing.T) {
	groups := [][]string{{"a", "b"}, {"c"}}
	parts := map[string]int32{"a": 2, "b": 2, "c": 2}
	var got []wire.AssignmentInfo
	mk := func(addr string) *assignor {
		return &assignor{groups: groups, Logger: slog.New(slog.DiscardHandler),
			self:         wire.MemberInfo{InstanceID: addr, QueryAddr: addr},
			onAssignment: func(info wire.AssignmentInfo) { got = append(got, info) }}
	}
	leader, other := mk("h0:1"), mk("h1:1")
	var members []kmsg.JoinGroupResponseMember
	for i, a := range []*assignor{leader, other} {
		m := kmsg.NewJoinGroupResponseMember()
		m.MemberID = []string{"m0", "m1"}[i]
		m.ProtocolMetadata = a.JoinGroupMetadata([]string{"a", "b", "c"}, nil, -1)
		members = append(members, m)
	}
	mb, _, err := leader.MemberBalancer(members)
	if err != nil {
		t.Fatal(err)
	}
	into, err := mb.(kgo.GroupMemberBalancerOrError).BalanceOrError(parts)
	if err != nil {
		t.Fatal(err)
	}
	tasksOf := map[string][]wire.Task{}
	for _, sa := range into.IntoSyncAssignment() {
		assigned, err := leader.ParseSyncAssignment(sa.MemberAssignment)
		if err != nil {
			t.Fatal(err)
		}
		for sub, g := range groups {
			for _, p := range assigned[g[0]] {
				tasksOf[sa.MemberID] = append(tasksOf[sa.MemberID], wire.Task{Sub: int32(sub), Partition: p})
			}
		}
		wire.SortTasks(tasksOf[sa.MemberID])
	}
	if len(tasksOf["m0"])+len(tasksOf["m1"]) != 4 || len(tasksOf["m0"]) != 2 {
		t.Fatalf("tasks %v", tasksOf)
	}
	want := []wire.HostTasks{
		{Addr: "h0:1", Active: tasksOf["m0"]}, // decoded: no standbys is nil
		{Addr: "h1:1", Active: tasksOf["m1"]},
	}
	if len(got) != 2 {
		t.Fatalf("%d assignments parsed, want 2", len(got))
	}
	for _, info := range got {
		if !reflect.DeepEqual(info.Hosts, want) {
			t.Fatalf("host map %+v\nwant %+v", info.Hosts, want)
		}
	}
}
