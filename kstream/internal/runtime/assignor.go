package runtime

import (
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/streamwork-go/streamwork/kstream/internal/assign"
	"github.com/streamwork-go/streamwork/kstream/internal/engine"
	"github.com/streamwork-go/streamwork/kstream/internal/wire"
)

// assignorProtocol is the group protocol name of the Streamwork assignor.
// Every member of an application's group uses it, so a group never mixes it
// with the plain consumer balancers.
const assignorProtocol = "streamwork"

// assignor is the kgo.GroupBalancer of an App: it assigns whole tasks, not
// partitions. A task (sub-topology, partition p) goes to one member with
// partition p of every source topic of its sub-topology, so co-partitioned
// topics meet in one task. Assignments are sticky and balanced, and
// cooperative: a task that moves is first revoked from its owner (which
// commits it) and only given to its new owner in the next round, while
// every other task keeps running.
//
// kgo calls JoinGroupMetadata and ParseSyncAssignment on the group
// management goroutine of the member's client, and MemberBalancer (then
// Balance) there too when the member leads the group. An assignor keeps no
// state between calls other than its immutable configuration.
type assignor struct {
	groups [][]string // the sorted source topics of each sub-topology, by id
	self   wire.MemberInfo
	Logger *slog.Logger
	// onError, if set, is told about a balance that failed (a co-partition
	// mismatch), so the worker can fail rather than retry forever.
	onError func(error)
	// scaling is the state-aware side (standby.go): nil assigns by
	// stickiness and balance alone.
	scaling *scaling
	// onAssignment, if set, is given the assignment user data of each
	// assignment the member receives (ParseSyncAssignment).
	onAssignment func(wire.AssignmentInfo)
}

var _ kgo.GroupBalancer = (*assignor)(nil)

func newAssignor(t *engine.Topology, appID string, self wire.MemberInfo, logger *slog.Logger, onError func(error)) *assignor {
	a := &assignor{self: self, Logger: logger, onError: onError}
	for _, st := range t.Subs {
		a.groups = append(a.groups, st.SourceTopics(appID))
	}
	return a
}

// ProtocolName implements kgo.GroupBalancer.
func (*assignor) ProtocolName() string { return assignorProtocol }

// IsCooperative implements kgo.GroupBalancer: the assignor is cooperative
// (KIP-429), so a rebalance only stops the tasks that move.
func (*assignor) IsCooperative() bool { return true }

// JoinGroupMetadata implements kgo.GroupBalancer: a version 3
// ConsumerMemberMetadata with the member's topics, the partitions it owns
// (cooperative rebalancing and stickiness need them), its generation, and
// the encoded wire.MemberInfo as user data. The output is deterministic.
func (a *assignor) JoinGroupMetadata(interests []string, owned map[string][]int32, generation int32) []byte {
	meta := kmsg.NewConsumerMemberMetadata()
	meta.Version = 3
	meta.Topics = interests
	meta.Generation = generation
	topics := make([]string, 0, len(owned))
	for t := range owned {
		topics = append(topics, t)
	}
	slices.Sort(topics)
	for _, t := range topics {
		op := kmsg.NewConsumerMemberMetadataOwnedPartition()
		op.Topic = t
		op.Partitions = slices.Sorted(slices.Values(owned[t]))
		meta.OwnedPartitions = append(meta.OwnedPartitions, op)
	}
	meta.UserData = wire.EncodeMemberInfo(a.memberInfo())
	return meta.AppendTo(nil)
}

// ParseSyncAssignment implements kgo.GroupBalancer: it returns the
// member's partitions and hands the assignment user data
// (wire.AssignmentInfo: standby tasks, the next probing rebalance, the host
// map of the group's query addresses) to the worker (scaling.received) and
// to the query routing (onAssignment) before kgo calls its
// OnPartitionsAssigned, which follows every sync. User data that does not
// decode is logged and taken as empty: no standbys, routing knows no host.
func (a *assignor) ParseSyncAssignment(assignment []byte) (map[string][]int32, error) {
	var ka kmsg.ConsumerMemberAssignment
	if err := ka.ReadFrom(assignment); err != nil {
		return nil, fmt.Errorf("sync assignment parse failed: %v", err)
	}
	a.receivedInfo(ka.UserData)
	out := make(map[string][]int32, len(ka.Topics))
	for _, t := range ka.Topics {
		out[t.Topic] = append(out[t.Topic], t.Partitions...)
	}
	return out, nil
}

// MemberBalancer implements kgo.GroupBalancer.
func (a *assignor) MemberBalancer(members []kmsg.JoinGroupResponseMember) (kgo.GroupMemberBalancer, map[string]struct{}, error) {
	b, err := kgo.NewConsumerBalancer(balanceFunc(a.balance), members)
	if err != nil {
		return nil, nil, err
	}
	return b, b.MemberTopics(), nil
}

// balanceFunc adapts a function to kgo.ConsumerBalancerBalance.
type balanceFunc func(*kgo.ConsumerBalancer, map[string]int32) kgo.IntoSyncAssignment

// Balance implements kgo.ConsumerBalancerBalance.
func (f balanceFunc) Balance(b *kgo.ConsumerBalancer, topics map[string]int32) kgo.IntoSyncAssignment {
	return f(b, topics)
}

// balance runs on the group leader: it assigns tasks to members with
// assign.Plan (state-aware, with standbys and warm-ups; see scaling) and
// turns the result into a cooperative partition plan, with each member's
// wire.AssignmentInfo as the assignment's user data.
func (a *assignor) balance(b *kgo.ConsumerBalancer, partitions map[string]int32) kgo.IntoSyncAssignment {
	var members []assign.Member
	var infos []wire.MemberInfo
	addrs := make(map[string]string)
	b.EachMember(func(m *kmsg.JoinGroupResponseMember, meta *kmsg.ConsumerMemberMetadata) {
		tm := assign.Member{ID: m.MemberID, Generation: meta.Generation, Owned: make(map[string][]int32, len(meta.OwnedPartitions))}
		for _, op := range meta.OwnedPartitions {
			tm.Owned[op.Topic] = append(tm.Owned[op.Topic], op.Partitions...)
		}
		info, err := wire.DecodeMemberInfo(meta.UserData)
		if err != nil {
			a.Logger.Warn("kstream: group member sent unreadable assignor user data", "member", m.MemberID, "err", err)
		} else {
			a.Logger.Debug("kstream: balancing member", "member", m.MemberID, "instance", info.InstanceID, "worker", info.Worker, "query_addr", info.QueryAddr)
			addrs[m.MemberID] = info.QueryAddr
		}
		members = append(members, tm)
		infos = append(infos, info)
	})
	result, err := a.plan(partitions, members, infos)
	if err != nil {
		b.SetError(err)
		if a.onError != nil {
			a.onError(err)
		}
		return nil
	}
	plan := b.NewPlan()
	for i, tasks := range result.Active {
		m, _ := b.MemberAt(i)
		for _, id := range tasks {
			for _, tp := range a.groups[id.Subtopology] {
				plan.AddPartition(m, tp, id.Partition)
			}
		}
	}
	plan.AdjustCooperative(b)
	return withUserData{plan, a.assignmentInfos(b, result, addrs, a.activeTasks(plan.AsMemberIDMap()))}
}

// activeTasks returns the tasks of each member in plan (member => topic =>
// partitions): a task whose source partitions the member all has. A task
// that moves is in no member's plan until the follow-up rebalance
// (AdjustCooperative withholds it), so the host map never names two
// owners of one task.
func (a *assignor) activeTasks(plan map[string]map[string][]int32) map[string][]wire.Task {
	out := make(map[string][]wire.Task, len(plan))
	for member, topics := range plan {
		tasks := []wire.Task{}
		for sub, group := range a.groups {
			if len(group) == 0 {
				continue
			}
			for _, p := range topics[group[0]] {
				all := true
				for _, tp := range group[1:] {
					all = all && slices.Contains(topics[tp], p)
				}
				if all {
					tasks = append(tasks, wire.Task{Sub: int32(sub), Partition: p})
				}
			}
		}
		out[member] = tasks
	}
	return out
}

// withUserData is a partition plan with user data for each member's
// assignment.
type withUserData struct {
	plan *kgo.BalancePlan
	data map[string][]byte // member id => user data
}

// IntoSyncAssignment implements kgo.IntoSyncAssignment.
func (p withUserData) IntoSyncAssignment() []kmsg.SyncGroupRequestGroupAssignment {
	out := p.plan.IntoSyncAssignment()
	for i := range out {
		ud := p.data[out[i].MemberID]
		if len(ud) == 0 {
			continue
		}
		var ka kmsg.ConsumerMemberAssignment
		if err := ka.ReadFrom(out[i].MemberAssignment); err != nil {
			continue // kgo encoded it: cannot happen
		}
		ka.UserData = ud
		out[i].MemberAssignment = ka.AppendTo(nil)
	}
	return out
}

// endsTimeout bounds the leader's lookup of changelog end offsets.
const endsTimeout = 10 * time.Second
