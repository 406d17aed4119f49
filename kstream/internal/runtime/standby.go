package runtime

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamwork-go/streamwork/kstream/internal/assign"
	"github.com/streamwork-go/streamwork/kstream/internal/engine"
	"github.com/streamwork-go/streamwork/kstream/internal/wire"
	"github.com/streamwork-go/streamwork/state/pebble"
)

// Scaling out: state-aware assignment, standby tasks and warm-ups.
//
// Each member says, in its JoinGroupMetadata (wire.MemberInfo), how caught
// up its instance's state of each task is: TaskRunning for its running
// active tasks, the offset sum of the stores it holds open for restoring
// or standby tasks, and, from every member of the instance, the offset sum
// of the checkpoints on disk that no worker of the instance holds open
// (App.disk). The leader looks up the changelogs' end offsets and plans
// with assign.Plan; each member's assignment carries a wire.AssignmentInfo
// with its standby tasks (warm-ups included) and, while warm-ups exist,
// when the next probing rebalance is due (NextProbe).
//
// A standby task is an engine task opened (stores and node instances) and
// never started: the worker's restore consumer reads its changelogs from
// its checkpoint on, continuously, and applies them to its engine stores
// (restore.go, standby entries). It processes no input and sends nothing.
// Its checkpoint is written every standbyCheckpointEvery records and when
// it closes, so when it becomes active (on this worker: it is closed
// first, then opened as an active task), restore reads only what the
// standby had not. The worker goroutine owns its standbys; they are
// touched under mu only.

// standbyCheckpointEvery is how many changelog records a standby applies
// between two checkpoints (each one flushes its stores).
const standbyCheckpointEvery = 10000

// scaling is the state-aware side of the assignor. Its functions are
// called on the group goroutine of the member's client and take only leaf
// locks.
type scaling struct {
	standbys, maxWarmups int
	acceptableLag        int64
	probing              time.Duration
	stateful             []bool     // by sub-topology: has changelogged stores
	changelogs           [][]string // by sub-topology: its changelog topics
	// info returns the member's metadata now; ends looks up end offsets
	// (the leader only); received takes the member's assignment info.
	info     func() wire.MemberInfo
	ends     func(ctx context.Context, topics ...string) (kadm.ListedOffsets, error)
	received func(wire.AssignmentInfo)
	// client is the member's client, set once it exists: kgo may start
	// joining the group, and so call the balancer, before NewClient
	// returns.
	client atomic.Pointer[kgo.Client]
}

// listEnds looks up end offsets through the member's client (ends' default).
func (s *scaling) listEnds(ctx context.Context, topics ...string) (kadm.ListedOffsets, error) {
	cl := s.client.Load()
	if cl == nil {
		return nil, errors.New("kstream: the member's client is not ready")
	}
	return kadm.NewClient(cl).ListEndOffsets(ctx, topics...)
}

// newScaling returns the scaling side of worker w's assignor.
func newScaling(w *worker) *scaling {
	cfg := w.cfg
	s := &scaling{
		standbys: cfg.StandbyReplicas, maxWarmups: cfg.MaxWarmupReplicas,
		acceptableLag: cfg.AcceptableRecoveryLag, probing: cfg.ProbingInterval,
		info: w.memberInfo, received: w.receiveAssignmentInfo,
	}
	s.ends = s.listEnds
	for _, st := range w.Topo.Subs {
		var cls []string
		for _, name := range w.Topo.StoreOrder {
			if spec := w.Topo.Stores[name]; spec != nil && spec.Changelog && w.Topo.StoreSub[name] == st {
				cls = append(cls, spec.ChangelogTopic(cfg.AppID))
			}
		}
		s.changelogs = append(s.changelogs, cls)
		s.stateful = append(s.stateful, len(cls) > 0)
	}
	return s
}

// memberInfo returns what the member says about itself: a.self, with the
// task offsets when the assignor is state-aware.
func (a *assignor) memberInfo() wire.MemberInfo {
	if a.scaling != nil && a.scaling.info != nil {
		return a.scaling.info()
	}
	return a.self
}

// receivedInfo decodes the user data of the member's assignment and hands
// it to the worker.
func (a *assignor) receivedInfo(ud []byte) {
	info, err := wire.DecodeAssignmentInfo(ud)
	if err != nil {
		a.Logger.Warn("kstream: unreadable assignment user data; no standby tasks and no query hosts", "err", err)
	}
	if a.scaling != nil && a.scaling.received != nil {
		a.scaling.received(info)
	}
	if a.onAssignment != nil {
		a.onAssignment(info)
	}
}

// plan runs assign.Plan over the members (their metadata in infos),
// state-aware when the assignor is.
func (a *assignor) plan(partitions map[string]int32, members []assign.Member, infos []wire.MemberInfo) (assign.Assignment, error) {
	clients := make([]assign.Client, len(members))
	for i, m := range members {
		c := assign.Client{Member: m, Instance: infos[i].InstanceID, Offsets: make(map[engine.TaskID]int64, len(infos[i].TaskOffsets))}
		for _, to := range infos[i].TaskOffsets {
			off := to.Offset
			if off == wire.TaskRunning {
				off = assign.Running
			}
			c.Offsets[engine.TaskID{Subtopology: int(to.Sub), Partition: to.Partition}] = off
		}
		clients[i] = c
	}
	var cfg assign.Config
	if s := a.scaling; s != nil {
		cfg = assign.Config{Standbys: s.standbys, MaxWarmups: s.maxWarmups, AcceptableLag: s.acceptableLag, Stateful: s.stateful}
		cfg.Ends = a.lookUpEnds(partitions)
	}
	res, err := assign.Plan(a.groups, partitions, clients, cfg)
	if err == nil && len(res.Warmups) > 0 {
		ws := make([]string, len(res.Warmups))
		for i, w := range res.Warmups {
			ws[i] = w.Task.String() + "@" + w.Instance
		}
		a.Logger.Info("kstream: warm-up replicas assigned; tasks move once caught up", "warmups", ws, "probing_in", a.scaling.probing)
	}
	return res, err
}

// lookUpEnds returns the sum of the changelog end offsets of every stateful
// task, or nil when they cannot be looked up (the plan then ignores lags).
func (a *assignor) lookUpEnds(partitions map[string]int32) map[engine.TaskID]int64 {
	s := a.scaling
	var topics []string
	for _, cls := range s.changelogs {
		topics = append(topics, cls...)
	}
	if len(topics) == 0 || s.ends == nil {
		return map[engine.TaskID]int64{}
	}
	ctx, cancel := context.WithTimeout(context.Background(), endsTimeout)
	defer cancel()
	listed, err := s.ends(ctx, topics...)
	if err == nil {
		err = listed.Error()
	}
	if err != nil {
		a.Logger.Warn("kstream: changelog end offsets not available; assigning without lags", "err", err)
		return nil
	}
	ends := map[engine.TaskID]int64{}
	for sub, cls := range s.changelogs {
		if len(cls) == 0 {
			continue
		}
		n := partitions[a.groups[sub][0]]
		for p := range n {
			var sum int64
			for _, tp := range cls {
				if o, ok := listed.Lookup(tp, p); ok && o.Offset > 0 {
					sum += o.Offset
				}
			}
			ends[engine.TaskID{Subtopology: sub, Partition: p}] = sum
		}
	}
	return ends
}

// assignmentInfos encodes each member's assignment user data: its standby
// tasks, while warm-ups exist when the next probing rebalance is due, and
// the group's host map (BuildHosts over the members' query addresses, the
// active tasks of the partition plan and the standbys of res). One member
// only, the first by member id, is told when to probe (Kafka Streams has
// the leader schedule it): a rebalance any member triggers moves the tasks
// of the whole group, so one per interval is enough.
func (a *assignor) assignmentInfos(b *kgo.ConsumerBalancer, res assign.Assignment, addrs map[string]string, active map[string][]wire.Task) map[string][]byte {
	var next int64
	if res.Probe && a.scaling != nil {
		next = time.Now().Add(a.scaling.probing).UnixMilli()
	}
	standby := make(map[string][]wire.Task, len(res.Standby))
	prober := ""
	for i := range res.Active {
		m, _ := b.MemberAt(i)
		if prober == "" || m.MemberID < prober {
			prober = m.MemberID
		}
		for _, id := range res.Standby[i] {
			standby[m.MemberID] = append(standby[m.MemberID], wire.Task{Sub: int32(id.Subtopology), Partition: id.Partition})
		}
	}
	hosts := BuildHosts(addrs, active, standby)
	out := make(map[string][]byte, len(res.Active))
	for i := range res.Active {
		m, _ := b.MemberAt(i)
		info := wire.AssignmentInfo{Standby: standby[m.MemberID], Hosts: hosts}
		if m.MemberID == prober {
			info.NextProbe = next
		}
		out[m.MemberID] = wire.EncodeAssignmentInfo(info)
	}
	return out
}

// ---- the worker side ----

// receiveAssignmentInfo keeps the assignment info of the latest sync for
// the worker goroutine (group goroutine; takes only inbox's lock).
func (w *worker) receiveAssignmentInfo(info wire.AssignmentInfo) {
	w.inbox.Lock()
	w.inbox.info = &info
	w.inbox.Unlock()
}

// takeAssignmentInfoLocked applies the latest assignment info: the standby
// tasks wanted and the next probing rebalance.
func (w *worker) takeAssignmentInfoLocked() {
	w.inbox.Lock()
	info := w.inbox.info
	w.inbox.info = nil
	w.inbox.Unlock()
	if info == nil {
		return
	}
	w.wantStandby = w.wantStandby[:0]
	for _, t := range info.Standby {
		w.wantStandby = append(w.wantStandby, engine.TaskID{Subtopology: int(t.Sub), Partition: t.Partition})
	}
	w.nextProbe = time.Time{}
	if info.NextProbe > 0 {
		w.nextProbe = time.UnixMilli(info.NextProbe)
	}
	w.standbysDirty = true
}

// standbyRoundLocked runs in every round of the worker loop: it applies
// assignment info not applied yet, opens or closes standbys to match the
// wanted set (retrying those that could not open), and triggers the
// probing rebalance when it is due.
func (w *worker) standbyRoundLocked() error {
	w.takeAssignmentInfoLocked()
	if w.standbysDirty {
		if err := w.syncStandbysLocked(); err != nil {
			return err
		}
	}
	if !w.nextProbe.IsZero() && !time.Now().Before(w.nextProbe) {
		w.nextProbe = time.Time{}
		w.Logger.Info("kstream: probing rebalance: moving tasks whose warm-ups caught up")
		w.client.ForceRebalance()
	}
	return nil
}

// syncStandbysLocked closes the standbys no longer wanted and opens the
// wanted ones. A standby whose task runs here as active, or whose stores
// another worker of the instance still holds (it gives them up in its own
// rebalance callback), is opened in a later round.
func (w *worker) syncStandbysLocked() error {
	w.standbysDirty = false
	if w.restore == nil || w.closing {
		return nil
	}
	for id, t := range w.standbys {
		if !slices.Contains(w.wantStandby, id) {
			w.closeStandbyLocked(t, "no longer assigned")
		}
	}
	var added []string
	for _, id := range w.wantStandby {
		if w.standbys[id] != nil {
			continue
		}
		if w.tasks[id] != nil || id.Subtopology >= len(w.Topo.Subs) {
			w.standbysDirty = true
			continue
		}
		t, err := engine.OpenTask(id, w.Topo.Subs[id.Subtopology], w.Env)
		if errors.Is(err, pebble.ErrStoreOpen) {
			w.Logger.Debug("kstream: standby's stores are still open elsewhere in the instance; retrying", "task", id.String())
			w.standbysDirty = true
			continue
		}
		if err != nil {
			return fmt.Errorf("kstream: open standby task %s: %w", id, err)
		}
		if w.standbys == nil {
			w.standbys = make(map[engine.TaskID]*task)
		}
		w.standbys[id] = t
		w.restore.addStandbyLocked(t)
		added = append(added, id.String())
	}
	if len(added) > 0 {
		w.Logger.Info("kstream: standby tasks assigned", "added", added, "standbys", len(w.standbys))
	}
	w.publishStatsLocked()
	return nil
}

// closeStandbyLocked stops a standby, writes its checkpoint and closes its
// stores.
func (w *worker) closeStandbyLocked(t *task, why string) {
	// No stale read may be in progress when the stores close or, when the
	// task becomes active here, are opened again for it.
	w.app.queries.DeregisterStandby(t)
	w.restore.forgetLocked(t)
	if err := writeCheckpoint(t); err != nil {
		w.Logger.Warn("kstream: standby checkpoint failed", "task", t.ID.String(), "err", err)
	}
	if err := t.Close(); err != nil {
		w.Logger.Warn("kstream: closing standby task failed", "task", t.ID.String(), "err", err)
	}
	delete(w.standbys, t.ID)
	w.app.noteStateLocked(t)
	w.Logger.Info("kstream: standby task closed", "task", t.ID.String(), "why", why)
	w.publishStatsLocked()
}

// closeStandbysLocked closes every standby (shutdown, failure).
func (w *worker) closeStandbysLocked(why string) {
	for _, id := range slices.SortedFunc(maps.Keys(w.standbys), engine.CompareTaskIDs) {
		w.closeStandbyLocked(w.standbys[id], why)
	}
}

// offsetSum returns the sum of the changelog offsets t's stores hold.
func offsetSum(t *task) int64 {
	var sum int64
	for _, ts := range t.StateStores {
		if ts.Logged != nil {
			sum += max(0, ts.Offset())
		}
	}
	return sum
}

// heldLocked refreshes the offsets of the state the worker holds open, for
// memberInfo: TaskRunning for running active tasks, the offset sum of
// restoring and standby tasks.
func (w *worker) heldLocked() {
	held := make(map[engine.TaskID]int64, len(w.tasks)+len(w.standbys))
	for id, t := range w.tasks {
		if t.Started {
			held[id] = wire.TaskRunning
		} else {
			held[id] = offsetSum(t)
		}
	}
	for id, t := range w.standbys {
		held[id] = offsetSum(t)
	}
	w.held.Lock()
	w.held.offsets = held
	w.held.Unlock()
}

func (w *worker) heldOffsets() map[engine.TaskID]int64 {
	w.held.Lock()
	defer w.held.Unlock()
	return w.held.offsets
}

// memberInfo is the member's wire.MemberInfo now (group goroutine): the
// state it holds, and the instance's state on disk that no worker holds.
func (w *worker) memberInfo() wire.MemberInfo {
	info := wire.MemberInfo{Version: wire.UserDataVersion, InstanceID: w.cfg.InstanceID, Worker: w.idx, QueryAddr: w.cfg.QueryAddr}
	offs := maps.Clone(w.heldOffsets())
	if offs == nil {
		offs = map[engine.TaskID]int64{}
	}
	w.app.mu.Lock()
	ws := w.app.Workers
	w.app.mu.Unlock()
	heldElsewhere := map[engine.TaskID]bool{}
	for _, o := range ws {
		if o != w {
			for id := range o.heldOffsets() {
				heldElsewhere[id] = true
			}
		}
	}
	for id, off := range w.app.diskOffsets() {
		if _, mine := offs[id]; !mine && !heldElsewhere[id] {
			offs[id] = off
		}
	}
	for _, id := range slices.SortedFunc(maps.Keys(offs), engine.CompareTaskIDs) {
		info.TaskOffsets = append(info.TaskOffsets, wire.TaskOffset{Sub: int32(id.Subtopology), Partition: id.Partition, Offset: offs[id]})
	}
	return info
}

// ---- the instance's state on disk ----

// diskState is the offset sum of the checkpoints of each task's stores on
// disk (an App's disk field): read when Run starts, updated when a worker
// closes a task or a standby.
type diskState struct {
	sync.Mutex
	offsets map[engine.TaskID]int64
}

func (a *App) diskOffsets() map[engine.TaskID]int64 {
	a.disk.Lock()
	defer a.disk.Unlock()
	return maps.Clone(a.disk.offsets)
}

// noteStateLocked records what a task (active or standby) just closed left
// on disk: the sum of its stores' checkpoints, or nothing.
func (a *App) noteStateLocked(t *task) {
	var sum int64
	found := false
	for _, ts := range checkpointed(t) {
		if ts.Checkpointed >= 0 {
			sum += ts.Checkpointed
			found = true
		}
	}
	a.disk.Lock()
	defer a.disk.Unlock()
	if a.disk.offsets == nil {
		a.disk.offsets = map[engine.TaskID]int64{}
	}
	if found {
		a.disk.offsets[t.ID] = sum
	} else {
		delete(a.disk.offsets, t.ID)
	}
}

// scanDisk reads the checkpoints of the task stores under the application
// state directory (before the workers start).
func (a *App) scanDisk(st *stateEnv) error {
	a.disk.offsets = map[engine.TaskID]int64{}
	if st.Env == nil {
		return nil
	}
	dirs, err := os.ReadDir(st.appDir)
	if err != nil {
		return nil // nothing there yet
	}
	for _, d := range dirs {
		id, ok := parseTaskID(d.Name())
		if !d.IsDir() || !ok {
			continue
		}
		stores, err := os.ReadDir(filepath.Join(st.appDir, d.Name()))
		if err != nil {
			return err
		}
		var sum int64
		found := false
		for _, sd := range stores {
			spec := a.Topo.Stores[sd.Name()]
			if !sd.IsDir() || spec == nil || !spec.Changelog {
				continue
			}
			s, err := st.openStore(filepath.Join(st.appDir, d.Name(), sd.Name()), sd.Name(), pebble.Layout(storeLayout(spec)))
			if err != nil {
				return fmt.Errorf("kstream: task %s: %w", id, err)
			}
			off, ok, rerr := readOffsets(s, wire.TopicPartition{Topic: spec.ChangelogTopic(a.cfg.AppID), Partition: id.Partition})
			if cerr := s.Close(); rerr == nil {
				rerr = cerr
			}
			if rerr == nil && ok {
				sum += off
				found = true
			}
		}
		if found {
			a.disk.offsets[id] = sum
		}
	}
	return nil
}

// parseTaskID parses a task directory's name, "<sub-topology>_<partition>".
func parseTaskID(s string) (engine.TaskID, bool) {
	sub, part, ok := strings.Cut(s, "_")
	if !ok {
		return engine.TaskID{}, false
	}
	a, err1 := strconv.Atoi(sub)
	b, err2 := strconv.ParseInt(part, 10, 32)
	if err1 != nil || err2 != nil || a < 0 || b < 0 {
		return engine.TaskID{}, false
	}
	return engine.TaskID{Subtopology: a, Partition: int32(b)}, true
}
