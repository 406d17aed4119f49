package assign

import (
	"slices"

	"github.com/streamwork-go/streamwork/kstream/internal/engine"
)

// Running is the offset sum a member reports for a task it runs as active
// now (wire.TaskRunning): its state is caught up by definition.
const Running int64 = -2

// Client is a member as Plan sees it: a Member with the instance it runs
// in and the state it holds.
type Client struct {
	Member
	// Instance is the instance id of the member's App: the members of one
	// instance share its state directory. Empty: the member is an instance
	// of its own.
	Instance string
	// Offsets is, per task, the sum of the changelog offsets the member's
	// state holds (Running for a task it runs as active). A task whose
	// state a worker of the instance holds open (active or standby) is
	// reported by that member only; state on disk that no worker holds is
	// reported by every member of the instance.
	Offsets map[engine.TaskID]int64
}

// Config is what Plan needs besides the members.
type Config struct {
	// Standbys is the number of standby replicas of each stateful task
	// (StandbyReplicas).
	Standbys int
	// MaxWarmups bounds the warm-up replicas across the group
	// (MaxWarmupReplicas).
	MaxWarmups int
	// AcceptableLag is the largest lag (changelog records) at which an
	// instance counts as caught up on a task (AcceptableRecoveryLag).
	AcceptableLag int64
	// Stateful says, by sub-topology, whether its tasks have changelogged
	// stores; tasks of other sub-topologies have no state to move.
	Stateful []bool
	// Ends is, per stateful task, the sum of its changelogs' end offsets.
	// Nil when they could not be looked up: every instance then counts as
	// caught up (stickiness and balance alone decide).
	Ends map[engine.TaskID]int64
}

// Assignment is what Plan decides, aligned with its clients.
type Assignment struct {
	// Active and Standby are each client's active and standby tasks,
	// sorted. Standby includes the warm-up replicas.
	Active  [][]engine.TaskID
	Standby [][]engine.TaskID
	// Warmups are the warm-up replicas: tasks given to an instance whose
	// state is not caught up, as standbys, while a caught-up instance keeps
	// them active. Sorted by task.
	Warmups []Warmup
	// Probe reports whether some task is not on the instance a balanced
	// assignment gives it (it waits for a warm-up): the members should
	// rebalance again after the probing interval.
	Probe bool
}

// Warmup is one warm-up replica: Task warms up on Instance (an instance id,
// or a member id for a client without one).
type Warmup struct {
	Task     engine.TaskID
	Instance string
}

// instance is the clients of one instance id.
type instance struct {
	key     string
	members []int // indexes into clients, in member id order
	// offsets: the largest offset sum any of its members reports per task
	offsets map[engine.TaskID]int64
	// holder: the member holding a task's state open (reported by it and
	// not by every member), or absent
	holder          map[engine.TaskID]int
	active, standby []engine.TaskID
}

// Plan assigns every task of the sub-topologies (groups and partitions as
// for Tasks) to one client as active, and to up to cfg.Standbys other
// instances as standby, state-aware (Kafka Streams'
// HighAvailabilityTaskAssignor, KIP-441):
//
//  1. A balanced target: each instance gets a share of the active tasks in
//     proportion to its members (floor, and the remainder one each), the
//     stateful tasks and the stateless ones each balanced on their own. A
//     task stays on the instance that runs it now within that share
//     (sticky); every other task goes, in task order,
//     to an instance with room that is caught up on it (lag at most
//     cfg.AcceptableLag), the least lagging first, then the least loaded,
//     then in instance order; then the rest the same way among all
//     instances with room.
//  2. A task whose target instance is not caught up stays active on a
//     caught-up instance (the one running it now, else the least lagging)
//     when there is one, and its target gets a warm-up replica, at most
//     cfg.MaxWarmups across the group; Probe is then set. A task no
//     instance is caught up on goes to its target (it restores there).
//  3. Standbys: each stateful task gets cfg.Standbys replicas (warm-ups
//     count) on instances other than its active's and each other's, the
//     least loaded (active and standby tasks per member) first, then the
//     least lagging, then in instance order. Then, while moving a standby
//     (not a warm-up) from the most loaded instance to a less loaded one
//     that may hold it narrows the gap between the two, one moves, to
//     where the state lags least.
//  4. Within an instance, a task whose state a member holds open goes to
//     that member (so state never changes hands between two workers of an
//     instance within one rebalance); an active task the instance runs now
//     stays with its member within a fair share; the rest go to the least
//     loaded member, the first in member id order on a tie.
//
// Lag is the task's end offset sum minus the largest offset sum the
// instance's members report (0 for a running task, the whole end sum for
// an instance without the state). The result is deterministic: it does
// not depend on the order of clients.
func Plan(groups [][]string, partitions map[string]int32, clients []Client, cfg Config) (Assignment, error) {
	tasks, err := listTasks(groups, partitions)
	if err != nil {
		return Assignment{}, err
	}
	out := Assignment{Active: make([][]engine.TaskID, len(clients)), Standby: make([][]engine.TaskID, len(clients))}
	if len(clients) == 0 || len(tasks) == 0 {
		return out, nil
	}
	p := newPlanner(groups, tasks, clients, cfg)
	target := p.target()
	p.actives(target, &out)
	p.standbys(&out)
	p.members(&out)
	return out, nil
}

type planner struct {
	groups  [][]string
	tasks   []engine.TaskID
	clients []Client
	cfg     Config
	insts   []*instance
	instOf  []int // client => index into insts
	owner   []int // task index => instance index running it now, or -1
	ownerM  []int // task index => client index running it now, or -1
	// final placement, by task index
	activeAt []int
	replicas [][]int
	warmupAt []int     // task index => instance index of its warm-up, or -1
	lags     [][]int64 // task index => instance index => lag
}

func newPlanner(groups [][]string, tasks []engine.TaskID, clients []Client, cfg Config) *planner {
	p := &planner{groups: groups, tasks: tasks, clients: clients, cfg: cfg, instOf: make([]int, len(clients))}
	byKey := map[string]*instance{}
	order := make([]int, len(clients))
	for i := range order {
		order[i] = i
	}
	// Members in id order, so the result does not depend on input order.
	slices.SortStableFunc(order, func(a, b int) int {
		switch {
		case clients[a].ID < clients[b].ID:
			return -1
		case clients[a].ID > clients[b].ID:
			return 1
		}
		return 0
	})
	for _, ci := range order {
		key := clients[ci].Instance
		if key == "" {
			key = "\x00" + clients[ci].ID
		}
		in := byKey[key]
		if in == nil {
			in = &instance{key: key, offsets: map[engine.TaskID]int64{}, holder: map[engine.TaskID]int{}}
			byKey[key] = in
			p.insts = append(p.insts, in)
		}
		in.members = append(in.members, ci)
	}
	slices.SortFunc(p.insts, func(a, b *instance) int {
		switch {
		case a.key < b.key:
			return -1
		case a.key > b.key:
			return 1
		}
		return 0
	})
	for ii, in := range p.insts {
		reported := map[engine.TaskID]int{}
		for _, ci := range in.members {
			p.instOf[ci] = ii
			for id, off := range clients[ci].Offsets {
				reported[id]++
				if cur, ok := in.offsets[id]; !ok || off == Running || (cur != Running && off > cur) {
					in.offsets[id] = off
				}
			}
		}
		if len(in.members) > 1 {
			for _, ci := range in.members {
				for id := range clients[ci].Offsets {
					if reported[id] < len(in.members) {
						if _, dup := in.holder[id]; !dup {
							in.holder[id] = ci
						}
					}
				}
			}
		}
	}
	members := make([]Member, len(clients))
	for i, c := range clients {
		members[i] = c.Member
	}
	p.owner = make([]int, len(tasks))
	p.ownerM = make([]int, len(tasks))
	for ti := range tasks {
		p.owner[ti], p.ownerM[ti] = -1, -1
	}
	for ci, own := range currentOwners(groups, tasks, members) {
		for _, ti := range own {
			p.owner[ti], p.ownerM[ti] = p.instOf[ci], ci
		}
	}
	p.lags = make([][]int64, len(tasks))
	for ti, id := range tasks {
		p.lags[ti] = make([]int64, len(p.insts))
		for ii, in := range p.insts {
			p.lags[ti][ii] = p.lag(id, ti, ii, in)
		}
	}
	p.activeAt = make([]int, len(tasks))
	p.replicas = make([][]int, len(tasks))
	p.warmupAt = make([]int, len(tasks))
	for ti := range p.warmupAt {
		p.warmupAt[ti] = -1
	}
	return p
}

// lag returns how far instance ii's state of task id is behind its
// changelogs.
func (p *planner) lag(id engine.TaskID, ti, ii int, in *instance) int64 {
	if !p.stateful(id) || p.cfg.Ends == nil || p.owner[ti] == ii {
		return 0
	}
	end := p.cfg.Ends[id]
	off, ok := in.offsets[id]
	switch {
	case ok && off == Running:
		return 0
	case ok && off >= 0:
		return max(0, end-off)
	}
	return max(0, end)
}

func (p *planner) stateful(id engine.TaskID) bool {
	return id.Subtopology < len(p.cfg.Stateful) && p.cfg.Stateful[id.Subtopology]
}

func (p *planner) caughtUp(ti, ii int) bool { return p.lags[ti][ii] <= p.cfg.AcceptableLag }

// target returns the balanced target instance of each task (rule 1). The
// stateful tasks are balanced first, then the stateless ones, each class
// on its own (as Kafka Streams' assignor does), so that an instance that
// ran every task alone does not keep, say, the stateless ones and leave
// all the state to the newcomers.
func (p *planner) target() []int {
	target := make([]int, len(p.tasks))
	for ti := range target {
		target[ti] = -1
	}
	load := make([]int, len(p.insts)) // tasks placed so far, both classes
	// The stateless tasks also keep every instance within its share of all
	// tasks (rounded up) while they can.
	limit := make([]int, len(p.insts))
	for ii, in := range p.insts {
		limit[ii] = (len(in.members)*len(p.tasks) + len(p.clients) - 1) / len(p.clients)
	}
	for _, stateful := range []bool{true, false} {
		var class []int
		for ti, id := range p.tasks {
			if p.stateful(id) == stateful {
				class = append(class, ti)
			}
		}
		var capAt []int
		if !stateful {
			capAt = limit
		}
		p.spread(class, target, load, capAt)
	}
	return target
}

// spread places the tasks of one class (indexes into p.tasks, in task
// order): each instance gets a share of them in proportion to its members
// (floor, and the remainder one each); a task stays on the instance that
// runs it now within that share; every other task goes to an instance
// with room in the class, caught up on it first, then the least lagging,
// then the least loaded over both classes, then in instance order. With
// capAt, an instance that holds capAt[ii] tasks of both classes takes no
// more of this one while another can.
func (p *planner) spread(class, target, load, capAt []int) {
	n := len(p.insts)
	total := len(p.clients)
	floor := make([]int, n)
	extras := len(class)
	for ii, in := range p.insts {
		floor[ii] = len(in.members) * len(class) / total
		extras -= floor[ii]
	}
	got := make([]int, n) // of this class
	room := func(ii int) bool {
		if capAt != nil && load[ii] >= capAt[ii] {
			return false
		}
		return got[ii] < floor[ii] || (got[ii] == floor[ii] && extras > 0)
	}
	take := func(ti, ii int) {
		if got[ii] >= floor[ii] {
			extras--
		}
		got[ii]++
		load[ii]++
		target[ti] = ii
	}
	owned := make([][]int, n)
	for _, ti := range class {
		if ii := p.owner[ti]; ii >= 0 {
			owned[ii] = append(owned[ii], ti)
		}
	}
	for ii, own := range owned {
		for _, ti := range own[:min(len(own), floor[ii])] {
			if room(ii) {
				take(ti, ii)
			}
		}
	}
	for ii, own := range owned {
		if len(own) > floor[ii] && target[own[floor[ii]]] < 0 && room(ii) {
			take(own[floor[ii]], ii)
		}
	}
	// less reports whether instance a is a better home for task ti than b.
	less := func(ti, a, b int) bool {
		if la, lb := p.lags[ti][a], p.lags[ti][b]; la != lb {
			return la < lb
		}
		if ra, rb := load[a]*len(p.insts[b].members), load[b]*len(p.insts[a].members); ra != rb {
			return ra < rb
		}
		return a < b
	}
	// Caught-up instances with room first, then any with room, then (the
	// cap left no room) any at all.
	for pass := range 3 {
		for _, ti := range class {
			if target[ti] >= 0 {
				continue
			}
			best := -1
			for ii := range p.insts {
				if (pass < 2 && !room(ii)) || (pass == 0 && !p.caughtUp(ti, ii)) {
					continue
				}
				if best < 0 || less(ti, ii, best) {
					best = ii
				}
			}
			if best >= 0 {
				take(ti, best)
			}
		}
	}
}

// actives places each task's active on its target or, while the target is
// not caught up, on a caught-up instance with a warm-up on the target
// (rule 2).
func (p *planner) actives(target []int, out *Assignment) {
	load := make([]int, len(p.insts))
	for ti := range p.tasks {
		g := target[ti]
		at := g
		if !p.caughtUp(ti, g) {
			best := -1
			for ii := range p.insts {
				if !p.caughtUp(ti, ii) {
					continue
				}
				if best < 0 || p.betterHolder(ti, ii, best, load) {
					best = ii
				}
			}
			if best >= 0 {
				at = best
				out.Probe = true
				if len(out.Warmups) < p.cfg.MaxWarmups {
					out.Warmups = append(out.Warmups, Warmup{Task: p.tasks[ti], Instance: p.instKey(g)})
					p.replicas[ti] = append(p.replicas[ti], g)
					p.warmupAt[ti] = g
				}
			}
		}
		p.activeAt[ti] = at
		load[at]++
	}
}

// betterHolder reports whether instance a is a better caught-up holder of
// task ti than b: the one running it now, else the least lagging, then the
// least loaded, then instance order.
func (p *planner) betterHolder(ti, a, b int, load []int) bool {
	if (p.owner[ti] == a) != (p.owner[ti] == b) {
		return p.owner[ti] == a
	}
	if la, lb := p.lags[ti][a], p.lags[ti][b]; la != lb {
		return la < lb
	}
	if ra, rb := load[a]*len(p.insts[b].members), load[b]*len(p.insts[a].members); ra != rb {
		return ra < rb
	}
	return a < b
}

func (p *planner) instKey(ii int) string {
	k := p.insts[ii].key
	if len(k) > 0 && k[0] == 0 {
		return k[1:]
	}
	return k
}

// standbys gives each stateful task its standby replicas (rule 3).
func (p *planner) standbys(out *Assignment) {
	load := make([]int, len(p.insts))
	for ti := range p.tasks {
		load[p.activeAt[ti]]++
		for _, ii := range p.replicas[ti] {
			load[ii]++
		}
	}
	for ti, id := range p.tasks {
		if !p.stateful(id) {
			continue
		}
		for len(p.replicas[ti]) < p.cfg.Standbys {
			best := -1
			for ii := range p.insts {
				if ii == p.activeAt[ti] || slices.Contains(p.replicas[ti], ii) {
					continue
				}
				if best < 0 || p.betterStandby(ti, ii, best, load) {
					best = ii
				}
			}
			if best < 0 {
				break // fewer instances than replicas
			}
			p.replicas[ti] = append(p.replicas[ti], best)
			load[best]++
		}
	}
	p.balanceStandbys(load)
}

// balanceStandbys evens out what greedy placement in task order leaves
// uneven: an instance's own tasks may come last, when only instances
// loaded already may hold their standbys (a newcomer then keeps fewer
// standbys than the others, and another instance more). While moving a
// standby from the most loaded instance to a less loaded one that may
// hold it narrows the gap, it moves one: of the tasks it could move, the
// one whose state the receiver lags least on, then the first. Warm-ups
// stay where they are. Loads are weighed by members, as in betterStandby.
func (p *planner) balanceStandbys(load []int) {
	order := make([]int, len(p.insts))
	for i := range order {
		order[i] = i
	}
	heavier := func(a, b int) bool {
		return load[a]*len(p.insts[b].members) > load[b]*len(p.insts[a].members)
	}
	for range len(p.tasks) * max(p.cfg.Standbys, 1) * len(p.insts) {
		slices.SortStableFunc(order, func(a, b int) int {
			switch {
			case heavier(a, b):
				return -1
			case heavier(b, a):
				return 1
			}
			return a - b
		})
		moved := false
		for _, hi := range order {
			for k := len(order) - 1; k >= 0 && !moved; k-- {
				lo := order[k]
				// Does one standby less at hi and one more at lo narrow
				// the gap between them?
				if lo == hi || load[hi]*len(p.insts[lo].members) <= (load[lo]+1)*len(p.insts[hi].members) {
					continue
				}
				if ti := p.standbyToMove(hi, lo); ti >= 0 {
					i := slices.Index(p.replicas[ti], hi)
					p.replicas[ti][i] = lo
					load[hi]--
					load[lo]++
					moved = true
				}
			}
			if moved {
				break
			}
		}
		if !moved {
			return
		}
	}
}

// standbyToMove returns the index of a stateful task with a standby (not
// a warm-up) at instance from that instance to may hold instead (it runs
// neither the task nor another replica of it), preferring the one whose
// state to lags least on; -1 if there is none.
func (p *planner) standbyToMove(from, to int) int {
	best := -1
	for ti, id := range p.tasks {
		if !p.stateful(id) || p.warmupAt[ti] == from || !slices.Contains(p.replicas[ti], from) ||
			p.activeAt[ti] == to || slices.Contains(p.replicas[ti], to) {
			continue
		}
		if best < 0 || p.lags[ti][to] < p.lags[best][to] {
			best = ti
		}
	}
	return best
}

func (p *planner) betterStandby(ti, a, b int, load []int) bool {
	if ra, rb := load[a]*len(p.insts[b].members), load[b]*len(p.insts[a].members); ra != rb {
		return ra < rb
	}
	if la, lb := p.lags[ti][a], p.lags[ti][b]; la != lb {
		return la < lb
	}
	return a < b
}

// members spreads each instance's tasks over its members (rule 4).
func (p *planner) members(out *Assignment) {
	for ti, id := range p.tasks {
		in := p.insts[p.activeAt[ti]]
		in.active = append(in.active, id)
		for _, ii := range p.replicas[ti] {
			p.insts[ii].standby = append(p.insts[ii].standby, id)
		}
	}
	index := make(map[engine.TaskID]int, len(p.tasks))
	for ti, id := range p.tasks {
		index[id] = ti
	}
	for ii, in := range p.insts {
		n := len(in.members)
		load := make(map[int]int, n)
		share := (len(in.active) + n - 1) / n
		give := func(ci int, id engine.TaskID, standby bool) {
			load[ci]++
			if standby {
				out.Standby[ci] = append(out.Standby[ci], id)
			} else {
				out.Active[ci] = append(out.Active[ci], id)
			}
		}
		least := func() int {
			best := in.members[0]
			for _, ci := range in.members[1:] {
				if load[ci] < load[best] {
					best = ci
				}
			}
			return best
		}
		var rest []engine.TaskID
		for _, id := range in.active {
			if ci, ok := in.holder[id]; ok && p.ownerM[index[id]] != ci {
				give(ci, id, false) // held open as a standby there
			} else if ci := p.ownerM[index[id]]; ci >= 0 && p.instOf[ci] == p.activeAt[index[id]] && load[ci] < share {
				give(ci, id, false)
			} else {
				rest = append(rest, id)
			}
		}
		for _, id := range rest {
			give(least(), id, false)
		}
		rest = rest[:0]
		for _, id := range in.standby {
			if ci, ok := in.holder[id]; ok {
				give(ci, id, true)
			} else if ci := p.ownerM[index[id]]; ci >= 0 && p.instOf[ci] == ii {
				give(ci, id, true) // it ran the task: its state is there
			} else {
				rest = append(rest, id)
			}
		}
		for _, id := range rest {
			give(least(), id, true)
		}
	}
	for ci := range p.clients {
		slices.SortFunc(out.Active[ci], engine.CompareTaskIDs)
		slices.SortFunc(out.Standby[ci], engine.CompareTaskIDs)
	}
}
