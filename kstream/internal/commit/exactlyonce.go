package commit

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/streamwork-go/streamwork/kstream/internal/engine"
)

// exactlyOnce is the worker side of Kafka's exactly-once v2 (KIP-447). The
// invariants are written out in DESIGN.md ("Exactly-once invariants").
//
// The worker's client is a kgo.GroupTransactSession's, with the
// transactional id "<application id>-<instance id>-<worker index>". The
// protocol keeps one transaction open (begun at the top of each round,
// before anything is produced): every output, repartition, dead-letter and
// changelog record the tasks write goes into it. Every commit interval
// Commit flushes the record caches and the producer, then ends the
// transaction with the session's End: it sends the tasks' processed
// offsets inside the transaction (TxnOffsetCommit, with the group's member
// id and generation, so a zombie whose generation is stale is refused by
// the group coordinator) and commits it. One transaction holds the worker's
// whole progress since the previous one, or none of it.
//
// The tasks' on-disk stores are transactional (see runtime/checkpoint.go):
// what they write stays in each store's open transaction until End has
// committed the Kafka transaction; then WriteCheckpoint commits each store
// with its changelog offset.
//
// When a transaction aborts (the group refused its offsets, a rebalance
// revoked partitions or the member lost them while it was open, a record of
// it failed), the worker forgets everything done in it: every task that
// processed a record or punctuated in it (TxnDirty) is closed dirty (its
// record cache and its stores' open transactions dropped, so its stores
// hold the last committed state and offset) and made again, restoring its
// stores from the changelogs past that offset, read committed (nothing but
// the aborted records and markers, which it skips); the other tasks drop
// their buffered records; and every partition is rewound to its committed
// offset (positions). A
// worker whose producer is fenced or failed restarts (RestartError): it
// closes its tasks, leaves the group, makes a new client and joins again.
//
// Rebalance callbacks. kgo's session calls the revoke and loss callbacks
// while holding a lock that its End takes too, and End runs under the
// worker's lock, so OnRevoked and OnLost must not take it: they only record
// the partitions (under mu, a leaf lock), and the protocol applies them
// under the worker's lock (applyRebalances): after every poll, before a
// commit, and first thing when partitions are assigned. The session itself
// marks the open transaction failed on a revoke or loss, so its End can
// never commit work done for partitions the member gave up; the protocol
// aborts it as soon as it applies the event.
type exactlyOnce struct {
	h Host
	// inTxn: a transaction is begun. doomed: partitions were revoked or
	// lost while it was open, so it must abort.
	inTxn, doomed bool
	// positions are, per assigned partition, where to rewind it after an
	// abort: its committed offset, or the first offset fetched since it was
	// assigned.
	positions map[topicPartition]kgo.EpochOffset

	// mu guards rebalances: the revokes and losses the session's callbacks
	// reported, not applied yet. A leaf lock.
	mu         sync.Mutex
	rebalances []rebalanceEvent
}

// rebalanceEvent is a revoke or a loss reported by the session.
type rebalanceEvent struct {
	lost  bool
	parts map[string][]int32
}

func newExactlyOnce(h Host) *exactlyOnce {
	return &exactlyOnce{h: h, positions: make(map[topicPartition]kgo.EpochOffset)}
}

func (p *exactlyOnce) Guarantee() Guarantee          { return ExactlyOnce }
func (p *exactlyOnce) Routed(kgo.Fetches) error      { return nil }
func (p *exactlyOnce) CanProcess() bool              { return true }
func (p *exactlyOnce) PartitionClosed(string, int32) {}

// BeginRound begins a transaction when none is open.
func (p *exactlyOnce) BeginRound() error { return p.begin() }

// Polled notes where each newly fetched partition starts (its rewind
// position), applies reported revokes and losses, and aborts a doomed
// transaction; then what was polled before the rewind is dropped.
func (p *exactlyOnce) Polled(fs kgo.Fetches) (kgo.Fetches, error) {
	p.notePositions(fs)
	p.applyRebalances()
	if !p.doomed {
		return fs, nil
	}
	if err := p.abort("partitions were revoked or lost"); err != nil {
		return nil, err
	}
	// Fetched from before the rewind: fetched again.
	return nil, p.begin()
}

// Assigning applies the revokes and losses reported before the assignment.
func (p *exactlyOnce) Assigning() { p.applyRebalances() }

// Assigned closes, dirty, the tasks of newly assigned partitions that still
// run: kgo assigns a member only partitions it does not own, so such a task
// outlived a revoke the transact session did not report (it reports one
// per transaction), and its state may be stale. It is made again from its
// changelogs; the open transaction aborts.
func (p *exactlyOnce) Assigned(parts map[string][]int32) {
	stale := p.h.TasksOf(parts)
	if len(stale) == 0 {
		return
	}
	for _, t := range stale {
		t.TxnDirty = true
	}
	p.h.Logger().Warn("kstream: tasks assigned again while they still run; closing them dirty", "tasks", len(stale))
	p.closeTasks(stale, "stale")
	p.doomed = true
}

// TaskStarting makes sure the task's stores hold nothing uncommitted before
// its first record (RemoveCheckpoint: the open transactions of its
// transactional stores, empty after a restore, are dropped; a write-through
// store's checkpoint is removed, since it will hold uncommitted writes).
func (p *exactlyOnce) TaskStarting(t *engine.Task) error { return p.h.RemoveCheckpoint(t) }

// OnRevoked records revoked partitions; see the type's doc.
func (p *exactlyOnce) OnRevoked(parts map[string][]int32) {
	if len(parts) == 0 {
		return // the end of a cooperative session that revokes nothing
	}
	p.push(rebalanceEvent{parts: clonePartitions(parts)})
}

// OnLost records lost partitions; see the type's doc.
func (p *exactlyOnce) OnLost(parts map[string][]int32) {
	if len(parts) == 0 {
		return
	}
	p.push(rebalanceEvent{lost: true, parts: clonePartitions(parts)})
}

func (p *exactlyOnce) push(ev rebalanceEvent) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rebalances = append(p.rebalances, ev)
}

func (p *exactlyOnce) take() []rebalanceEvent {
	p.mu.Lock()
	defer p.mu.Unlock()
	evs := p.rebalances
	p.rebalances = nil
	return evs
}

func clonePartitions(m map[string][]int32) map[string][]int32 {
	out := make(map[string][]int32, len(m))
	for tp, ps := range m {
		out[tp] = slices.Clone(ps)
	}
	return out
}

// applyRebalances closes the tasks of the partitions the session reported
// revoked or lost (dirty if they did something in the open transaction)
// and dooms the open transaction.
func (p *exactlyOnce) applyRebalances() {
	for _, ev := range p.take() {
		why := "revoked"
		if ev.lost {
			why = "lost"
		}
		for tp, ps := range ev.parts {
			for _, part := range ps {
				delete(p.positions, topicPartition{tp, part})
			}
		}
		tasks := p.h.Unassign(ev.parts)
		p.h.Logger().Info("kstream: partitions "+why+"; the open transaction aborts", "partitions", ev.parts, "tasks", len(tasks))
		p.closeTasks(tasks, why)
		p.doomed = true
	}
}

// closeTasks closes tasks: a task that did something in the open
// transaction (TxnDirty) drops what its stores hold uncommitted
// (RemoveCheckpoint), so they are restored from their last committed
// offset when it is made again; the others commit their checkpoint.
func (p *exactlyOnce) closeTasks(tasks []*engine.Task, why string) {
	for _, t := range tasks {
		var err error
		if t.TxnDirty {
			err = p.h.RemoveCheckpoint(t)
		} else {
			err = p.h.WriteCheckpoint(t)
		}
		if err != nil {
			p.h.SetFailure(err)
		}
	}
	p.h.CloseTasks(tasks, why)
}

// begin begins a transaction when none is open.
func (p *exactlyOnce) begin() error {
	if p.inTxn {
		return nil
	}
	if err := p.h.Session().Begin(); err != nil {
		if IsFatal(err) {
			return fmt.Errorf("kstream: begin a transaction: %w", err)
		}
		return &RestartError{fmt.Errorf("begin a transaction: %w", err)}
	}
	p.inTxn = true
	return nil
}

// notePositions records, for each assigned partition seen for the first
// time since its last commit or assignment, the offset of its first fetched
// record: where an abort rewinds it when it has no committed offset here.
func (p *exactlyOnce) notePositions(fs kgo.Fetches) {
	fs.EachPartition(func(fp kgo.FetchTopicPartition) {
		if len(fp.Records) == 0 || !p.h.Assigned(fp.Topic, fp.Partition) {
			return
		}
		tp := topicPartition{fp.Topic, fp.Partition}
		if _, ok := p.positions[tp]; !ok {
			first := fp.Records[0]
			p.positions[tp] = kgo.EpochOffset{Epoch: first.LeaderEpoch, Offset: first.Offset}
		}
	})
}

// Commit ends the open transaction with the offsets of every task in it:
// the caches and the producer are flushed first, so the transaction holds
// everything processed since the last one. A round with nothing produced
// and no offset moved commits nothing.
func (p *exactlyOnce) Commit() error {
	p.applyRebalances()
	if p.doomed {
		return p.abort("partitions were revoked or lost")
	}
	if err := p.begin(); err != nil {
		return err
	}
	tasks := p.h.Tasks()
	if err := flushCaches(tasks); err != nil {
		return err
	}
	if err := p.flush(); err != nil {
		return err
	}
	offsets, perTask := OffsetsToCommit(tasks)
	if len(offsets) == 0 && p.h.ProducedInTxn() == 0 {
		for _, t := range tasks {
			t.TxnDirty = false // nothing of theirs is in the transaction
		}
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	committed, err := p.h.Session().End(kgo.PreTxnCommitFnContext(ctx, TxnOffsets(offsets)), kgo.TryCommit)
	p.inTxn = false
	p.h.ForgetProduction()
	if err != nil {
		if IsFatal(err) {
			return fmt.Errorf("kstream: commit the transaction: %w", err)
		}
		return &RestartError{fmt.Errorf("commit the transaction: %w", err)}
	}
	if !committed {
		return p.afterAbort("the group refused the offsets or a rebalance began")
	}
	for t, o := range perTask {
		t.MarkCommitted(o)
	}
	for tp, ps := range offsets {
		for part, eo := range ps {
			p.positions[topicPartition{tp, part}] = eo
		}
	}
	for _, t := range tasks {
		t.TxnDirty = false
		// The stores commit what the transaction wrote, with their
		// changelog offsets. A failure here leaves a store at its
		// previous commit, which restore brings up to date.
		if err := p.h.WriteCheckpoint(t); err != nil {
			return err
		}
	}
	p.h.Committed()
	p.h.Logger().Debug("kstream: committed a transaction", "offsets", offsets)
	purgeRepartition(p.h, offsets, nil)
	return nil
}

// flush waits for the producer, Timeout at most: a transaction whose
// records Kafka does not acknowledge in time (a broker outage) is given up
// and the worker restarts, which aborts it (the broker aborts it by its
// timeout if it cannot be reached) and redoes its work from the committed
// offsets once Kafka is back.
func (p *exactlyOnce) flush() error {
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	err := p.h.Flush(ctx)
	if err != nil && errors.Is(err, context.DeadlineExceeded) {
		return &RestartError{fmt.Errorf("flush the producer: %w", err)}
	}
	return err
}

// TxnOffsets returns the hook that replaces the offsets the session would
// commit (the polled positions) by the processed ones, keeping the topic
// ids the request had.
func TxnOffsets(offsets map[string]map[int32]kgo.EpochOffset) func(*kmsg.TxnOffsetCommitRequest) error {
	return func(req *kmsg.TxnOffsetCommitRequest) error {
		ids := make(map[string][16]byte, len(req.Topics))
		for _, rt := range req.Topics {
			ids[rt.Topic] = rt.TopicID
		}
		req.Topics = req.Topics[:0:0]
		for _, topic := range slices.Sorted(maps.Keys(offsets)) {
			rt := kmsg.NewTxnOffsetCommitRequestTopic()
			rt.Topic, rt.TopicID = topic, ids[topic]
			ps := offsets[topic]
			for _, part := range slices.Sorted(maps.Keys(ps)) {
				rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
				rp.Partition, rp.Offset, rp.LeaderEpoch = part, ps[part].Offset, ps[part].Epoch
				rp.Metadata = &req.MemberID
				rt.Partitions = append(rt.Partitions, rp)
			}
			req.Topics = append(req.Topics, rt)
		}
		return nil
	}
}

// abort aborts the open transaction and forgets what it held.
func (p *exactlyOnce) abort(why string) error {
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	_, err := p.h.Session().End(ctx, kgo.TryAbort)
	p.inTxn = false
	if err != nil {
		if IsFatal(err) {
			return fmt.Errorf("kstream: abort the transaction: %w", err)
		}
		return &RestartError{fmt.Errorf("abort the transaction (%s): %w", why, err)}
	}
	return p.afterAbort(why)
}

// afterAbort forgets what an aborted transaction held: the dirty tasks are
// closed dirty and made again (restoring their stores), the others drop
// their buffered records, and every partition is rewound to its committed
// offset.
func (p *exactlyOnce) afterAbort(why string) error {
	p.applyRebalances()
	p.doomed = false
	p.h.ForgetProduction()
	p.h.Counters().Aborts.Add(1)
	var dirty []*engine.Task
	for _, t := range p.h.Tasks() {
		if t.TxnDirty {
			dirty = append(dirty, t)
			continue
		}
		t.ResetInput()
		p.h.ResumeDrained(t)
	}
	ids := make([]string, len(dirty))
	for i, t := range dirty {
		ids[i] = t.ID.String()
	}
	p.h.Logger().Warn("kstream: transaction aborted; restoring the tasks it wrote and rewinding to the committed offsets", "why", why, "dirty_tasks", ids)
	p.closeTasks(dirty, "transaction aborted")
	p.rewind()
	if !p.h.Closing() && p.h.Failure() == nil {
		if err := p.h.CreateTasks(p.h.AssignedPartitions()); err != nil {
			return err
		}
	}
	return p.h.Failure()
}

// rewind moves every assigned partition back to its position: what the
// aborted transaction consumed is fetched again.
func (p *exactlyOnce) rewind() {
	set := make(map[string]map[int32]kgo.EpochOffset)
	for tp, eo := range p.positions {
		if !p.h.Assigned(tp.topic, tp.partition) {
			continue
		}
		if set[tp.topic] == nil {
			set[tp.topic] = make(map[int32]kgo.EpochOffset)
		}
		set[tp.topic][tp.partition] = eo
	}
	if len(set) > 0 {
		p.h.Client().SetOffsets(set)
		p.h.Logger().Debug("kstream: rewound to the committed offsets", "offsets", set)
	}
}

// Shutdown commits the last transaction and closes every task with its
// checkpoint. A last transaction that cannot commit closes the tasks dirty.
func (p *exactlyOnce) Shutdown() error {
	err := p.Commit()
	if NeedsRestart(err) {
		p.h.Logger().Warn("kstream: the last transaction did not commit; closing the tasks dirty", "err", err)
		for _, t := range p.h.Tasks() {
			t.TxnDirty = true
		}
		err = nil
	}
	p.closeTasks(p.h.Tasks(), "shutdown")
	if err == nil {
		err = p.h.Failure()
	}
	return err
}

// Abandon aborts the open transaction of a failed worker, best effort.
func (p *exactlyOnce) Abandon() {
	if !p.inTxn {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	if _, err := p.h.Session().End(ctx, kgo.TryAbort); err != nil {
		p.h.Logger().Warn("kstream: aborting the transaction of a failed worker failed", "err", err)
	}
	p.inTxn = false
}

// Restarting closes every task (dirty ones dirty) and forgets the
// transaction and the positions of the client being replaced.
func (p *exactlyOnce) Restarting() {
	p.closeTasks(p.h.Tasks(), "fenced")
	p.inTxn, p.doomed = false, false
	p.h.ForgetProduction()
	p.take()
	clear(p.positions)
}
