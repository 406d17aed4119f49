// Package assign is the task assignment of the streamwork group balancer,
// as a pure function: the sub-topologies' topics, the partition counts and
// the members with what they own go in; each member's tasks come out. The
// runtime's kgo.GroupBalancer turns the result into a cooperative
// partition plan.
package assign

import (
	"fmt"
	"slices"
	"strings"

	"github.com/streamwork-go/streamwork/kstream/internal/engine"
)

// Member is one group member as Tasks sees it.
type Member struct {
	ID         string
	Generation int32              // the generation the member last knew
	Owned      map[string][]int32 // the partitions it owns now
}

// Tasks assigns every task of the sub-topologies (groups[i] are the
// source topics of sub-topology i) to exactly one member and returns the
// tasks of each member, aligned with members and sorted. partitions has the
// partition count of every known topic; a sub-topology with a topic missing
// from it gets no tasks, and one whose topics disagree on their partition
// count is an error wrapping engine.ErrCopartition.
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
func Tasks(groups [][]string, partitions map[string]int32, members []Member) ([][]engine.TaskID, error) {
	tasks, err := listTasks(groups, partitions)
	if err != nil {
		return nil, err
	}
	out := make([][]engine.TaskID, len(members))
	if len(members) == 0 || len(tasks) == 0 {
		return out, nil
	}
	ownedBy := currentOwners(groups, tasks, members)
	give(out, tasks, ownedBy)
	return out, nil
}

// listTasks returns the tasks of the sub-topologies whose topics are all
// known, one per partition; topics of one sub-topology with different
// counts are an error wrapping ErrCopartition.
func listTasks(groups [][]string, partitions map[string]int32) ([]engine.TaskID, error) {
	var tasks []engine.TaskID
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
			copart = append(copart, CopartitionMessage(sub, topics, partitions))
			continue
		}
		for p := range n {
			tasks = append(tasks, engine.TaskID{Subtopology: sub, Partition: p})
		}
	}
	if len(copart) > 0 {
		return nil, fmt.Errorf("%w: %s", engine.ErrCopartition, strings.Join(copart, "; "))
	}
	return tasks, nil
}

// currentOwners returns, per member, the indexes of the tasks it owns now:
// each task goes to its highest-generation claimant (older claims are
// stale, KIP-792).
func currentOwners(groups [][]string, tasks []engine.TaskID, members []Member) [][]int {
	ownedBy := make([][]int, len(members)) // member => indexes into tasks
	for ti, id := range tasks {
		owner, gen := -1, int32(0)
		for mi, m := range members {
			if !ownsAny(m.Owned, groups[id.Subtopology], id.Partition) {
				continue
			}
			if owner < 0 || m.Generation > gen {
				owner, gen = mi, m.Generation
			}
		}
		if owner >= 0 {
			ownedBy[owner] = append(ownedBy[owner], ti)
		}
	}

	return ownedBy
}

// give assigns tasks: sticky first (each member keeps up to its fair share
// of what it owns), then every other task to the least loaded member, the
// first in member order on a tie; each member's tasks end sorted.
func give(out [][]engine.TaskID, tasks []engine.TaskID, ownedBy [][]int) {
	members := len(out)
	q, extra := len(tasks)/members, len(tasks)%members
	assigned := make([]bool, len(tasks))
	load := make([]int, members)
	take := func(mi, ti int) {
		out[mi] = append(out[mi], tasks[ti])
		assigned[ti] = true
		load[mi]++
	}
	for mi, own := range ownedBy {
		for _, ti := range own[:min(len(own), q)] {
			take(mi, ti)
		}
	}
	for mi, own := range ownedBy {
		if extra == 0 {
			break
		}
		if len(own) > q {
			take(mi, own[q])
			extra--
		}
	}
	for ti := range tasks {
		if assigned[ti] {
			continue
		}
		best := 0
		for mi := 1; mi < members; mi++ {
			if load[mi] < load[best] {
				best = mi
			}
		}
		take(best, ti)
	}
	for _, ts := range out {
		slices.SortFunc(ts, engine.CompareTaskIDs)
	}
}

// CopartitionMessage says the partition counts of a sub-topology's topics.
func CopartitionMessage(sub int, topics []string, partitions map[string]int32) string {
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
