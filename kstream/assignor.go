package kstream

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// assignorProtocol is the group protocol name of the Streamwork assignor.
// Every member of an application's group uses it, so a group never mixes it
// with the plain consumer balancers.
const assignorProtocol = "streamwork"

// userDataVersion is the version of the member user data this code writes.
const userDataVersion = 1

// memberInfo is what a member says about itself in the user data of its
// JoinGroup metadata.
//
// Encoding, version 1 (big endian):
//
//	uint8   version (1)
//	uint16  length of the instance id, then its bytes
//	uint32  worker index
//
// Later versions only append fields (host:port for interactive queries,
// the changelog offsets of the state a member holds, standby tasks), so a
// decoder reads the fields it knows and ignores what follows.
type memberInfo struct {
	version    uint8
	instanceID string
	worker     int
}

// errUserData reports member user data that cannot be decoded.
var errUserData = errors.New("kstream: malformed assignor user data")

func encodeUserData(m memberInfo) []byte {
	id := m.instanceID
	if len(id) > 0xffff {
		id = id[:0xffff]
	}
	b := make([]byte, 0, 1+2+len(id)+4)
	b = append(b, userDataVersion)
	b = binary.BigEndian.AppendUint16(b, uint16(len(id)))
	b = append(b, id...)
	b = binary.BigEndian.AppendUint32(b, uint32(m.worker))
	return b
}

func decodeUserData(b []byte) (memberInfo, error) {
	var m memberInfo
	if len(b) < 1 {
		return m, fmt.Errorf("%w: empty", errUserData)
	}
	m.version = b[0]
	if m.version < 1 {
		return m, fmt.Errorf("%w: version %d", errUserData, m.version)
	}
	b = b[1:]
	if len(b) < 2 {
		return m, fmt.Errorf("%w: short instance id length", errUserData)
	}
	n := int(binary.BigEndian.Uint16(b))
	b = b[2:]
	if len(b) < n+4 {
		return m, fmt.Errorf("%w: short instance id or worker index", errUserData)
	}
	m.instanceID = string(b[:n])
	m.worker = int(binary.BigEndian.Uint32(b[n:]))
	return m, nil
}

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
	self   memberInfo
	logger *slog.Logger
	// onError, if set, is told about a balance that failed (a co-partition
	// mismatch), so the worker can fail rather than retry forever.
	onError func(error)
}

var _ kgo.GroupBalancer = (*assignor)(nil)

func newAssignor(t *Topology, appID string, self memberInfo, logger *slog.Logger, onError func(error)) *assignor {
	a := &assignor{self: self, logger: logger, onError: onError}
	for _, st := range t.subs {
		a.groups = append(a.groups, st.sourceTopics(appID))
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
// the encoded memberInfo as user data. The output is deterministic.
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
	meta.UserData = encodeUserData(a.self)
	return meta.AppendTo(nil)
}

// ParseSyncAssignment implements kgo.GroupBalancer.
func (*assignor) ParseSyncAssignment(assignment []byte) (map[string][]int32, error) {
	return kgo.ParseConsumerSyncAssignment(assignment)
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
// assignTasks and turns the result into a cooperative partition plan.
func (a *assignor) balance(b *kgo.ConsumerBalancer, partitions map[string]int32) kgo.IntoSyncAssignment {
	var members []taskMember
	b.EachMember(func(m *kmsg.JoinGroupResponseMember, meta *kmsg.ConsumerMemberMetadata) {
		tm := taskMember{id: m.MemberID, generation: meta.Generation, owned: make(map[string][]int32, len(meta.OwnedPartitions))}
		for _, op := range meta.OwnedPartitions {
			tm.owned[op.Topic] = append(tm.owned[op.Topic], op.Partitions...)
		}
		if info, err := decodeUserData(meta.UserData); err != nil {
			a.logger.Warn("kstream: group member sent unreadable assignor user data", "member", m.MemberID, "err", err)
		} else {
			a.logger.Debug("kstream: balancing member", "member", m.MemberID, "instance", info.instanceID, "worker", info.worker)
		}
		members = append(members, tm)
	})
	assignment, err := assignTasks(a.groups, partitions, members)
	if err != nil {
		b.SetError(err)
		if a.onError != nil {
			a.onError(err)
		}
		return nil
	}
	plan := b.NewPlan()
	for i, tasks := range assignment {
		m, _ := b.MemberAt(i)
		for _, id := range tasks {
			for _, tp := range a.groups[id.Subtopology] {
				plan.AddPartition(m, tp, id.Partition)
			}
		}
	}
	plan.AdjustCooperative(b)
	return plan
}

// taskMember is one group member as assignTasks sees it.
type taskMember struct {
	id         string
	generation int32              // the generation the member last knew
	owned      map[string][]int32 // the partitions it owns now
}

// assignTasks assigns every task of the sub-topologies (groups[i] are the
// source topics of sub-topology i) to exactly one member and returns the
// tasks of each member, aligned with members and sorted. partitions has the
// partition count of every known topic; a sub-topology with a topic missing
// from it gets no tasks, and one whose topics disagree on their partition
// count is an error wrapping ErrCopartition.
//
// The rules, in order:
//
//  1. Sticky: a task stays with the member that owns (some of) its
//     partitions now; when several claim it, the one with the highest
//     generation wins (older claims are stale, KIP-792). A member keeps at
//     most its fair share: with T tasks and M members, T mod M members may
//     keep T/M+1 tasks (those that own more than T/M, in member order) and
//     the others T/M.
//  2. Every other task, in task order, goes to the member with the fewest
//     tasks, the first in member order on a tie.
//
// The result is deterministic for equal input, every member ends with T/M
// or T/M+1 tasks, and a member that leaves moves only its own tasks.
func assignTasks(groups [][]string, partitions map[string]int32, members []taskMember) ([][]TaskID, error) {
	var tasks []TaskID
	var copart []string
	for sub, topics := range groups {
		n, known, equal := int32(-1), true, true
		for _, tp := range topics {
			c, ok := partitions[tp]
			switch {
			case !ok:
				known = false
			case n < 0:
				n = c
			case c != n:
				equal = false
			}
		}
		switch {
		case !known:
			continue // not (yet) in the metadata: no tasks
		case !equal:
			copart = append(copart, copartitionMessage(sub, topics, partitions))
			continue
		}
		for p := range n {
			tasks = append(tasks, TaskID{Subtopology: sub, Partition: p})
		}
	}
	if len(copart) > 0 {
		return nil, fmt.Errorf("%w: %s", ErrCopartition, strings.Join(copart, "; "))
	}
	out := make([][]TaskID, len(members))
	if len(members) == 0 || len(tasks) == 0 {
		return out, nil
	}

	// Current owner of each task: the highest-generation claimant.
	ownedBy := make([][]int, len(members)) // member => indexes into tasks
	for ti, id := range tasks {
		owner, gen := -1, int32(0)
		for mi, m := range members {
			if !ownsAny(m.owned, groups[id.Subtopology], id.Partition) {
				continue
			}
			if owner < 0 || m.generation > gen {
				owner, gen = mi, m.generation
			}
		}
		if owner >= 0 {
			ownedBy[owner] = append(ownedBy[owner], ti)
		}
	}

	q, extra := len(tasks)/len(members), len(tasks)%len(members)
	assigned := make([]bool, len(tasks))
	load := make([]int, len(members))
	give := func(mi, ti int) {
		out[mi] = append(out[mi], tasks[ti])
		assigned[ti] = true
		load[mi]++
	}
	for mi, own := range ownedBy {
		for _, ti := range own[:min(len(own), q)] {
			give(mi, ti)
		}
	}
	for mi, own := range ownedBy {
		if extra == 0 {
			break
		}
		if len(own) > q {
			give(mi, own[q])
			extra--
		}
	}
	for ti := range tasks {
		if assigned[ti] {
			continue
		}
		best := 0
		for mi := 1; mi < len(members); mi++ {
			if load[mi] < load[best] {
				best = mi
			}
		}
		give(best, ti)
	}
	for _, ts := range out {
		slices.SortFunc(ts, compareTaskIDs)
	}
	return out, nil
}

// copartitionMessage says the partition counts of a sub-topology's topics.
func copartitionMessage(sub int, topics []string, partitions map[string]int32) string {
	counts := make([]string, 0, len(topics))
	for _, tp := range topics {
		if c, ok := partitions[tp]; ok {
			counts = append(counts, fmt.Sprintf("%s has %d partitions", tp, c))
		} else {
			counts = append(counts, fmt.Sprintf("%s is missing", tp))
		}
	}
	return fmt.Sprintf("sub-topology %d: %s", sub, strings.Join(counts, ", "))
}

// ownsAny reports whether owned holds partition p of any of topics.
func ownsAny(owned map[string][]int32, topics []string, p int32) bool {
	for _, tp := range topics {
		if slices.Contains(owned[tp], p) {
			return true
		}
	}
	return false
}

// compareTaskIDs orders task ids by sub-topology, then partition.
func compareTaskIDs(a, b TaskID) int {
	if a.Subtopology != b.Subtopology {
		return a.Subtopology - b.Subtopology
	}
	return int(a.Partition - b.Partition)
}
