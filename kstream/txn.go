package kstream

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Exactly-once: the worker side of Kafka's exactly-once v2 (KIP-447). The
// invariants are written out in DESIGN.md ("Exactly-once invariants").
//
// Each worker's client is a kgo.GroupTransactSession's, with the
// transactional id "<application id>-<instance id>-<worker index>". The
// worker keeps one transaction open (begun at the top of its loop, before
// anything is produced): every output, repartition, dead-letter and
// changelog record its tasks write goes into it. Every commit interval
// commitTxnLocked flushes the record caches and the producer, then ends the
// transaction with the session's End: it sends the tasks' processed
// offsets inside the transaction (TxnOffsetCommit, with the group's member
// id and generation, so a zombie whose generation is stale is refused by
// the group coordinator) and commits it. One transaction holds the worker's
// whole progress since the previous one, or none of it.
//
// When a transaction aborts (the group refused its offsets, a rebalance
// revoked partitions or the member lost them while it was open, a record of
// it failed), the worker forgets everything done in it: every task that
// processed a record or punctuated in it (txnDirty) is closed dirty (its
// record cache dropped, no checkpoint, so its on-disk stores are wiped when
// it is made again) and made again, restoring its stores from the
// changelogs, read committed; the other tasks drop their buffered records;
// and every partition is rewound to its committed offset (positions). A
// worker whose producer is fenced or failed (a zombie that resumed after
// its session expired, a producer epoch taken over) restarts: it closes
// its tasks, leaves the group, makes a new client and joins again.
//
// Rebalance callbacks. kgo's session calls the revoke and loss callbacks
// while holding a lock that its End takes too, and End runs under the
// worker's mu, so these callbacks must not take mu: onRevokedTxn and
// onLostTxn only record the partitions (under asyncMu, a leaf lock), and
// the worker applies them under mu (applyRebalancesLocked): after every
// poll, before a commit, and first thing in onAssigned (which takes mu: the
// session does not wrap it). The session itself marks the open
// transaction failed on a revoke or loss, so its End can never commit work
// done for partitions the member gave up; the worker aborts it as soon as
// it applies the event.

const (
	// defaultTransactionTimeout is the transaction timeout of the
	// workers' producers, unless ClientOpts sets kgo.TransactionTimeout:
	// how long the broker lets a transaction stay open before aborting
	// it, which bounds how long a crashed or stopped instance's open
	// transaction holds back read_committed consumers of its partitions.
	// Kafka Streams uses the same under exactly-once.
	defaultTransactionTimeout = 10 * time.Second
	// restartBackoff is how long a fenced worker waits before it joins the
	// group again.
	restartBackoff = 500 * time.Millisecond
)

// transactionalID returns the transactional id of a worker.
func transactionalID(appID, instanceID string, worker int) string {
	return fmt.Sprintf("%s-%s-%d", appID, instanceID, worker)
}

// restartError reports that the worker's transactional producer is fenced
// or failed: the worker restarts with a new client (see restartLocked).
type restartError struct{ err error }

func (e *restartError) Error() string { return "kstream: the worker must restart: " + e.err.Error() }
func (e *restartError) Unwrap() error { return e.err }

// needsRestart reports whether err asks for a worker restart.
func needsRestart(err error) bool {
	var r *restartError
	return errors.As(err, &r)
}

// isTxnError reports errors of the transaction or the producer id rather
// than of one record: the transaction cannot commit, and the producer may
// be fenced.
func isTxnError(err error) bool {
	return errors.Is(err, kgo.ErrAborting) ||
		errors.Is(err, kerr.ProducerFenced) ||
		errors.Is(err, kerr.InvalidProducerEpoch) ||
		errors.Is(err, kerr.InvalidProducerIDMapping) ||
		errors.Is(err, kerr.UnknownProducerID) ||
		errors.Is(err, kerr.InvalidTxnState) ||
		errors.Is(err, kerr.TransactionAbortable) ||
		errors.Is(err, kerr.OutOfOrderSequenceNumber)
}

// rebalanceEvent is a revoke or a loss reported by the session.
type rebalanceEvent struct {
	lost  bool
	parts map[string][]int32
}

// onRevokedTxn is the OnPartitionsRevoked callback under exactly-once
// (group goroutine, inside the session's lock): it only records the
// partitions; see applyRebalancesLocked.
func (w *worker) onRevokedTxn(_ context.Context, _ *kgo.Client, revoked map[string][]int32) {
	if len(revoked) == 0 {
		return // the end of a cooperative session that revokes nothing
	}
	w.pushRebalance(rebalanceEvent{parts: clonePartitions(revoked)})
}

// onLostTxn is the OnPartitionsLost callback under exactly-once; see
// onRevokedTxn.
func (w *worker) onLostTxn(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	if len(lost) == 0 {
		return
	}
	w.pushRebalance(rebalanceEvent{lost: true, parts: clonePartitions(lost)})
}

func (w *worker) pushRebalance(ev rebalanceEvent) {
	w.asyncMu.Lock()
	defer w.asyncMu.Unlock()
	w.rebalances = append(w.rebalances, ev)
}

func (w *worker) takeRebalances() []rebalanceEvent {
	w.asyncMu.Lock()
	defer w.asyncMu.Unlock()
	evs := w.rebalances
	w.rebalances = nil
	return evs
}

func clonePartitions(m map[string][]int32) map[string][]int32 {
	out := make(map[string][]int32, len(m))
	for tp, ps := range m {
		out[tp] = slices.Clone(ps)
	}
	return out
}

// applyRebalancesLocked gives up the tasks of the partitions revoked or
// lost since the last call: they belong to another member now. A task that
// did nothing in the open transaction closes cleanly (its checkpoint
// written); one that did closes dirty. Either way the open transaction is
// doomed (the session will not commit it): the worker aborts it next.
func (w *worker) applyRebalancesLocked() {
	for _, ev := range w.takeRebalances() {
		why := "revoked"
		if ev.lost {
			why = "lost"
		}
		for tp, ps := range ev.parts {
			for _, p := range ps {
				delete(w.positions, topicPartition{tp, p})
			}
		}
		tasks := w.unassignLocked(ev.parts)
		w.logger.Info("kstream: partitions "+why+"; the open transaction aborts", "partitions", ev.parts, "tasks", len(tasks))
		w.closeTasksTxnLocked(tasks, why)
		w.doomed = true
	}
}

// closeTasksTxnLocked closes tasks under exactly-once: a task that did
// nothing since its last commit writes its checkpoint first (its stores
// hold exactly the committed changelog); a dirty one removes it, so its
// on-disk stores are wiped and restored when it is made again.
func (w *worker) closeTasksTxnLocked(tasks []*task, why string) {
	for _, t := range tasks {
		var err error
		if t.txnDirty {
			err = t.removeCheckpoint()
		} else {
			err = t.writeCheckpoint()
		}
		if err != nil {
			w.setFailureLocked(err)
		}
	}
	w.closeTasksLocked(tasks, why)
}

// beginLocked begins the worker's transaction if none is open.
func (w *worker) beginLocked() error {
	if w.inTxn {
		return nil
	}
	if err := w.sess.Begin(); err != nil {
		if isFatalKafkaError(err) {
			return fmt.Errorf("kstream: begin a transaction: %w", err)
		}
		return &restartError{fmt.Errorf("begin a transaction: %w", err)}
	}
	w.inTxn = true
	return nil
}

// notePositionsLocked records, for each assigned partition of fs that has
// no position yet, the offset of its first record: where to rewind it after
// an abort until it is committed (the group's committed offset, or its
// reset, is where the fetch started).
func (w *worker) notePositionsLocked(fs kgo.Fetches) {
	fs.EachPartition(func(p kgo.FetchTopicPartition) {
		if len(p.Records) == 0 || !w.assigned[p.Topic][p.Partition] {
			return
		}
		tp := topicPartition{p.Topic, p.Partition}
		if _, ok := w.positions[tp]; !ok {
			first := p.Records[0]
			w.positions[tp] = kgo.EpochOffset{Epoch: first.LeaderEpoch, Offset: first.Offset}
		}
	})
}

// commitTxnLocked commits the worker's transaction: it applies pending
// revokes and losses (aborting instead when there were some), flushes the
// record caches and the producer and settles production failures, then
// ends the transaction with the tasks' processed offsets in it. A
// transaction with nothing in it stays open. On success the offsets are
// the tasks' committed ones and the new rewind positions, and the
// repartition topics are purged below them; when the session aborted
// instead (a rebalance, an offset commit the group refused), see
// afterAbortLocked.
func (w *worker) commitTxnLocked() error {
	w.applyRebalancesLocked()
	if w.doomed {
		return w.abortLocked("partitions were revoked or lost")
	}
	// The caches' flush produces.
	if err := w.beginLocked(); err != nil {
		return err
	}
	for _, t := range w.order {
		if err := t.flushCaches(); err != nil {
			return err
		}
	}
	if err := w.flushLocked(); err != nil {
		return err
	}
	offsets, perTask := w.offsetsToCommitLocked(w.order)
	if len(offsets) == 0 && w.prod.sentInTxn == 0 {
		for _, t := range w.order {
			t.txnDirty = false // nothing of theirs is in the transaction
		}
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), commitTimeout)
	defer cancel()
	committed, err := w.sess.End(kgo.PreTxnCommitFnContext(ctx, txnOffsets(offsets)), kgo.TryCommit)
	w.inTxn, w.prod.sentInTxn = false, 0
	if err != nil {
		if isFatalKafkaError(err) {
			return fmt.Errorf("kstream: commit the transaction: %w", err)
		}
		return &restartError{fmt.Errorf("commit the transaction: %w", err)}
	}
	if !committed {
		return w.afterAbortLocked("the group refused the offsets or a rebalance began")
	}
	for t, o := range perTask {
		t.markCommitted(o)
	}
	for tp, ps := range offsets {
		for p, eo := range ps {
			w.positions[topicPartition{tp, p}] = eo
		}
	}
	for _, t := range w.order {
		t.txnDirty = false
	}
	w.env.metrics.commits.Add(1)
	w.logger.Debug("kstream: committed a transaction", "offsets", offsets)
	w.purgeRepartitionLocked(offsets, nil)
	return nil
}

// txnOffsets returns the kgo.PreTxnCommitFnContext function that makes the
// session's TxnOffsetCommit carry the tasks' processed offsets (one past
// the last processed record of each partition) instead of the client's
// polled positions: the worker buffers fetched records, so what it polled
// is ahead of what it processed. Topic ids of the request are kept.
func txnOffsets(offsets map[string]map[int32]kgo.EpochOffset) func(*kmsg.TxnOffsetCommitRequest) error {
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
			for _, p := range slices.Sorted(maps.Keys(ps)) {
				rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
				rp.Partition, rp.Offset, rp.LeaderEpoch = p, ps[p].Offset, ps[p].Epoch
				rp.Metadata = &req.MemberID
				rt.Partitions = append(rt.Partitions, rp)
			}
			req.Topics = append(req.Topics, rt)
		}
		return nil
	}
}

// abortLocked aborts the worker's transaction (the session's End with
// TryAbort, which also clears its revoke and loss marks), then recovers
// (afterAbortLocked). A failure to abort restarts the worker.
func (w *worker) abortLocked(why string) error {
	ctx, cancel := context.WithTimeout(context.Background(), commitTimeout)
	defer cancel()
	_, err := w.sess.End(ctx, kgo.TryAbort)
	w.inTxn = false
	if err != nil {
		if isFatalKafkaError(err) {
			return fmt.Errorf("kstream: abort the transaction: %w", err)
		}
		return &restartError{fmt.Errorf("abort the transaction (%s): %w", why, err)}
	}
	return w.afterAbortLocked(why)
}

// afterAbortLocked forgets what the aborted transaction did. Pending
// revokes and losses are applied first. The failures of its records are
// dropped. Every task that did something in it is closed dirty and, unless
// the worker is shutting down, made again from its changelogs; the other
// tasks drop their buffered records. Every assigned partition is rewound to
// its position (its committed offset, or where its fetch started), which
// also undoes the rewind kgo's session made to the client's own idea of
// the committed offsets.
func (w *worker) afterAbortLocked(why string) error {
	w.applyRebalancesLocked()
	w.doomed = false
	w.prod.sentInTxn = 0
	_ = w.prod.takeFailures()
	w.env.metrics.aborts.Add(1)
	var dirty []*task
	for _, t := range w.order {
		if t.txnDirty {
			dirty = append(dirty, t)
			continue
		}
		t.resetInput()
		w.resumeDrainedLocked(t)
	}
	ids := make([]string, len(dirty))
	for i, t := range dirty {
		ids[i] = t.id.String()
	}
	w.logger.Warn("kstream: transaction aborted; restoring the tasks it wrote and rewinding to the committed offsets", "why", why, "dirty_tasks", ids)
	w.closeTasksTxnLocked(dirty, "transaction aborted")
	w.rewindLocked()
	if !w.closing && w.failure == nil {
		if err := w.createTasksLocked(w.assignedPartitions()); err != nil {
			return err
		}
	}
	return w.checkFailureLocked()
}

// rewindLocked sets every assigned partition's fetch position to its
// rewind position.
func (w *worker) rewindLocked() {
	set := make(map[string]map[int32]kgo.EpochOffset)
	for tp, eo := range w.positions {
		if !w.assigned[tp.topic][tp.partition] {
			continue
		}
		if set[tp.topic] == nil {
			set[tp.topic] = make(map[int32]kgo.EpochOffset)
		}
		set[tp.topic][tp.partition] = eo
	}
	if len(set) > 0 {
		w.client.SetOffsets(set)
		w.logger.Debug("kstream: rewound to the committed offsets", "offsets", set)
	}
}

// assignedPartitions returns the partitions assigned to the worker.
func (w *worker) assignedPartitions() map[string][]int32 {
	out := make(map[string][]int32, len(w.assigned))
	for tp, ps := range w.assigned {
		for p := range ps {
			out[tp] = append(out[tp], p)
		}
	}
	return out
}

// shutdownTxnLocked ends an exactly-once worker cleanly: it commits the
// open transaction and closes every task, writing the checkpoints of the
// clean ones (all of them after a successful commit). A worker fenced at
// this point closes its tasks dirty: what it did is aborted, and another
// instance or the next run does it again.
func (w *worker) shutdownTxnLocked() error {
	w.closing = true
	err := w.commitTxnLocked()
	if needsRestart(err) {
		w.logger.Warn("kstream: the last transaction did not commit; closing the tasks dirty", "err", err)
		for _, t := range w.order {
			t.txnDirty = true
		}
		err = nil
	}
	w.closeTasksTxnLocked(w.order, "shutdown")
	if err == nil {
		err = w.checkFailureLocked()
	}
	return err
}

// abortQuietlyLocked aborts the open transaction of a failed worker, if it
// has one, so that its partitions are not held back until the transaction
// timeout; errors are only logged.
func (w *worker) abortQuietlyLocked() {
	if !w.inTxn {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), commitTimeout)
	defer cancel()
	if _, err := w.sess.End(ctx, kgo.TryAbort); err != nil {
		w.logger.Warn("kstream: aborting the transaction of a failed worker failed", "err", err)
	}
	w.inTxn = false
}

// restartLocked replaces the client of a fenced worker: it closes every
// task (dirty ones dirty), forgets its assignment, closes the client
// (leaving the group), waits restartBackoff and makes a new client, which
// joins the group again. It unlocks mu while the old client closes (the
// close runs the rebalance callbacks). It returns an error when a task
// could not be closed cleanly or the new client cannot be made.
func (w *worker) restartLocked(ctx context.Context, cause error) error {
	w.env.metrics.restarts.Add(1)
	w.logger.Warn("kstream: fenced: restarting the worker with a new client", "err", cause)
	w.closeTasksTxnLocked(w.order, "fenced")
	w.inTxn, w.doomed, w.prod.sentInTxn = false, false, 0
	_ = w.prod.takeFailures()
	w.publishStatsLocked()
	// The old client's late callbacks (an assignment racing the close)
	// must not make tasks: closing holds them off.
	w.closing = true
	old := w.client
	w.mu.Unlock()
	old.CloseAllowingRebalance()
	select {
	case <-ctx.Done():
	case <-time.After(restartBackoff):
	}
	w.mu.Lock()
	w.closing = false
	w.takeRebalances()
	clear(w.assigned)
	clear(w.positions)
	clear(w.hwm)
	if err := w.checkFailureLocked(); err != nil {
		return err
	}
	return w.newGroupClient()
}
