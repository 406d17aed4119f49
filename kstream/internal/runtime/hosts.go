package runtime

import (
	"maps"
	"slices"
	"sync"

	"github.com/streamwork-go/streamwork/kstream/internal/engine"
	"github.com/streamwork-go/streamwork/kstream/internal/wire"
)

// hostMap is what this instance knows of where the group's tasks run: the
// Hosts of the assignment user data each of its workers received last
// (every member of one generation receives the same map), and whether a
// worker is between a revoke (or loss) and its next assignment.
//
// The assignor's ParseSyncAssignment (on a worker's group goroutine) calls
// assigned; the revoke and loss callbacks call rebalancing; queries call
// Hosts. mu is a leaf lock: held for a few instructions, calling nothing.
type hostMap struct {
	mu      sync.Mutex
	workers map[int]*workerHosts
	// seq numbers the assignments received, so that Hosts returns the
	// latest one.
	seq uint64
}

type workerHosts struct {
	known       bool // an assignment was received
	rebalancing bool // a revoke or loss since it
	seq         uint64
	hosts       []wire.HostTasks
}

func (h *hostMap) workerLocked(idx int) *workerHosts {
	if h.workers == nil {
		h.workers = make(map[int]*workerHosts)
	}
	w := h.workers[idx]
	if w == nil {
		w = new(workerHosts)
		h.workers[idx] = w
	}
	return w
}

// assigned records the host map worker idx received with its assignment.
func (h *hostMap) assigned(idx int, hosts []wire.HostTasks) {
	h.mu.Lock()
	defer h.mu.Unlock()
	w := h.workerLocked(idx)
	h.seq++
	w.known, w.rebalancing, w.seq, w.hosts = true, false, h.seq, hosts
}

// rebalancing records that worker idx gave up partitions: its routing is
// stale until its next assignment.
func (h *hostMap) rebalancing(idx int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.workerLocked(idx).rebalancing = true
}

// Hosts returns the latest host map, or engine.ErrRebalancing when one of
// the n workers has not received an assignment yet or is rebalancing.
func (h *hostMap) Hosts(n int) ([]wire.HostTasks, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var latest *workerHosts
	for i := range n {
		w := h.workers[i]
		if w == nil || !w.known || w.rebalancing {
			return nil, engine.ErrRebalancing
		}
		if latest == nil || w.seq > latest.seq {
			latest = w
		}
	}
	if latest == nil {
		return nil, engine.ErrRebalancing
	}
	return latest.hosts, nil
}

// QueryHosts returns the tasks of every query address of the group (see
// hostMap.Hosts), or an error wrapping engine.ErrRebalancing.
func (a *App) QueryHosts() ([]wire.HostTasks, error) {
	return a.hosts.Hosts(a.cfg.Workers)
}

// BuildHosts groups the tasks of the members by query address: addrs maps
// a member id to its query address (members without one are left out),
// active and standby map a member id to its active and standby tasks.
// Several members at one address (the workers of one instance) share an
// entry. Entries are sorted by address and their tasks by sub-topology and
// partition, so the result is deterministic.
func BuildHosts(addrs map[string]string, active, standby map[string][]wire.Task) []wire.HostTasks {
	byAddr := make(map[string]*wire.HostTasks)
	for _, m := range slices.Sorted(maps.Keys(addrs)) {
		addr := addrs[m]
		if addr == "" {
			continue
		}
		h := byAddr[addr]
		if h == nil {
			h = &wire.HostTasks{Addr: addr, Active: []wire.Task{}, Standby: []wire.Task{}}
			byAddr[addr] = h
		}
		h.Active = append(h.Active, active[m]...)
		h.Standby = append(h.Standby, standby[m]...)
	}
	out := make([]wire.HostTasks, 0, len(byAddr))
	for _, addr := range slices.Sorted(maps.Keys(byAddr)) {
		h := byAddr[addr]
		wire.SortTasks(h.Active)
		wire.SortTasks(h.Standby)
		h.Active = slices.Compact(h.Active)
		h.Standby = slices.Compact(h.Standby)
		out = append(out, *h)
	}
	return out
}
