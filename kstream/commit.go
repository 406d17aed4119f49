package kstream

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// commitTimeout bounds one flush or one offset commit.
const commitTimeout = time.Minute

// commitLocked commits the progress of tasks under at-least-once: it
// flushes the producer and settles every production failure (see
// flushLocked), then commits, for each task, one past the last record it
// processed (with that record's leader epoch), then marks those offsets
// committed in the tasks. A production failure the handler fails on
// returns before anything is committed. A commit the broker rejects (a
// rebalance raced it) is logged and retried at the next commit: at worst
// some records are processed again. Only authorization failures are fatal.
//
// Under at-most-once the offsets were committed before processing
// (commitFetchedLocked), so this only flushes and settles.
//
// Under exactly-once it commits the worker's transaction instead, for all
// of its tasks (commitTxnLocked, txn.go).
//
// It runs on the worker goroutine, or in a rebalance callback; w.mu is held.
func (w *worker) commitLocked(tasks []*task) error {
	if w.eos {
		return w.commitTxnLocked()
	}
	// Caches first: what they flush (downstream output, changelog
	// records) is produced now and so belongs to this commit.
	for _, t := range tasks {
		if err := t.flushCaches(); err != nil {
			return err
		}
	}
	if err := w.flushLocked(); err != nil {
		return err
	}
	if w.cfg.guarantee == AtMostOnce {
		return w.checkpointLocked(tasks)
	}
	offsets, perTask := w.offsetsToCommitLocked(tasks)
	if len(offsets) == 0 {
		return w.checkpointLocked(tasks)
	}
	failed, err := w.commitOffsets(offsets)
	if err != nil {
		return err
	}
	for t, o := range perTask {
		for tp := range o {
			if failed[topicPartition{tp, t.id.Partition}] {
				delete(o, tp)
			}
		}
		t.markCommitted(o)
	}
	if len(failed) == 0 {
		w.env.metrics.commits.Add(1)
		w.logger.Debug("kstream: committed", "offsets", offsets)
	}
	w.purgeRepartitionLocked(offsets, failed)
	return w.checkpointLocked(tasks)
}

// offsetsToCommitLocked returns, for tasks that processed records since
// their last commit, the offsets to commit (with the leader epoch of the
// last record processed), in total and per task.
func (w *worker) offsetsToCommitLocked(tasks []*task) (map[string]map[int32]kgo.EpochOffset, map[*task]map[string]int64) {
	offsets := make(map[string]map[int32]kgo.EpochOffset)
	perTask := make(map[*task]map[string]int64, len(tasks))
	for _, t := range tasks {
		o := t.offsetsToCommit()
		if len(o) == 0 {
			continue
		}
		perTask[t] = o
		for tp, off := range o {
			if offsets[tp] == nil {
				offsets[tp] = make(map[int32]kgo.EpochOffset)
			}
			offsets[tp][t.id.Partition] = kgo.EpochOffset{Epoch: t.leaderEpoch(tp), Offset: off}
		}
	}
	return offsets, perTask
}

// checkpointLocked writes the checkpoints of tasks after a successful
// producer flush (see checkpoint.go). A failure to write one fails the
// worker: the disk is broken.
func (w *worker) checkpointLocked(tasks []*task) error {
	for _, t := range tasks {
		if err := t.writeCheckpoint(); err != nil {
			return err
		}
	}
	return nil
}

// purgeRepartitionLocked deletes the records of repartition topics below
// the offsets just committed: they were processed and are needed by no one
// (Kafka Streams purges them the same way). Failures are only logged; the
// next commit tries again.
func (w *worker) purgeRepartitionLocked(committed map[string]map[int32]kgo.EpochOffset, failed map[topicPartition]bool) {
	var purge kadm.Offsets
	for tp, ps := range committed {
		st := w.subOf[tp]
		if st == nil || !w.repartition[tp] {
			continue
		}
		for p, eo := range ps {
			if failed[topicPartition{tp, p}] {
				continue
			}
			if purge == nil {
				purge = make(kadm.Offsets)
			}
			purge.Add(kadm.Offset{Topic: tp, Partition: p, At: eo.Offset, LeaderEpoch: -1})
		}
	}
	if len(purge) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), commitTimeout)
	defer cancel()
	resp, err := kadm.NewClient(w.client).DeleteRecords(ctx, purge)
	if err == nil {
		resp.Each(func(r kadm.DeleteRecordsResponse) {
			if r.Err != nil && err == nil {
				err = fmt.Errorf("topic %q partition %d: %w", r.Topic, r.Partition, r.Err)
			}
		})
	}
	if err != nil {
		w.logger.Warn("kstream: purging consumed repartition records failed; retrying after the next commit", "err", err)
	}
}

// commitOffsets commits offsets synchronously and returns the partitions
// whose commit failed, or an error when the failure is fatal.
func (w *worker) commitOffsets(offsets map[string]map[int32]kgo.EpochOffset) (map[topicPartition]bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), commitTimeout)
	defer cancel()
	var (
		failed   map[topicPartition]bool
		firstErr error
	)
	fail := func(tp topicPartition, err error) {
		if failed == nil {
			failed = make(map[topicPartition]bool)
		}
		failed[tp] = true
		if firstErr == nil {
			firstErr = err
		}
	}
	w.client.CommitOffsetsSync(ctx, offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			for tp, ps := range offsets {
				for p := range ps {
					fail(topicPartition{tp, p}, err)
				}
			}
			return
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
					fail(topicPartition{t.Topic, p.Partition}, err)
				}
			}
		}
	})
	if firstErr == nil {
		return nil, nil
	}
	if isFatalKafkaError(firstErr) {
		return nil, fmt.Errorf("kstream: commit offsets: %w", firstErr)
	}
	w.logger.Warn("kstream: offset commit failed; retrying at the next commit", "partitions", len(failed), "err", firstErr)
	return failed, nil
}

// commitFetchedLocked is the at-most-once commit: it commits the positions
// after the records fetched so far, before they are processed. Until it
// succeeds the worker processes nothing (processLocked checks amoPending),
// so no record is processed whose offset is not committed.
func (w *worker) commitFetchedLocked() error {
	if len(w.amoPending) == 0 {
		return nil
	}
	failed, err := w.commitOffsets(w.amoPending)
	if err != nil {
		return err
	}
	if len(failed) > 0 {
		return nil // retried at the next loop; processing waits
	}
	w.env.metrics.commits.Add(1)
	w.logger.Debug("kstream: committed fetched offsets before processing (at-most-once)", "offsets", w.amoPending)
	clear(w.amoPending)
	return nil
}

// revokeLocked gives up tasks in a cooperative rebalance: it processes
// nothing more for them (under at-most-once it first processes the records
// whose offsets are already committed, which would otherwise be lost),
// commits their progress and closes them. A failure to commit fails the
// worker, but the tasks close regardless: they belong to another member
// now.
func (w *worker) revokeLocked(tasks []*task) {
	if len(tasks) == 0 {
		return
	}
	if w.cfg.guarantee == AtMostOnce {
		w.drainCommittedLocked(tasks)
	}
	if w.failure == nil {
		if err := w.commitLocked(tasks); err != nil {
			w.setFailureLocked(err)
		}
	}
	w.closeTasksLocked(tasks, "revoked")
}

// drainCommittedLocked processes, under at-most-once, the buffered records
// of tasks whose offsets were committed when they were fetched. When some
// fetched offsets are still uncommitted it tries to commit them first; if
// that fails the buffered records are dropped (at-most-once allows losing
// them, never processing them twice).
func (w *worker) drainCommittedLocked(tasks []*task) {
	if w.failure != nil {
		return
	}
	if err := w.commitFetchedLocked(); err != nil {
		w.setFailureLocked(err)
		return
	}
	if len(w.amoPending) > 0 {
		w.logger.Warn("kstream: dropping fetched records whose offsets could not be committed (at-most-once)")
		return
	}
	for _, t := range tasks {
		for t.started && t.totalBuffered() > 0 {
			if _, err := t.process(batchPerTask); err != nil {
				w.setFailureLocked(err)
				return
			}
		}
	}
}

// shutdownLocked ends the worker cleanly: it processes nothing more,
// commits what was processed (see commitLocked), and closes every task.
func (w *worker) shutdownLocked() error {
	if w.eos {
		return w.shutdownTxnLocked()
	}
	var err error
	if w.cfg.guarantee == AtMostOnce {
		w.drainCommittedLocked(w.order)
		err = w.failure
	}
	if err == nil {
		err = w.commitLocked(w.order)
	}
	w.closeTasksLocked(w.order, "shutdown")
	return err
}

// isFatalKafkaError reports errors that waiting or rejoining does not fix.
func isFatalKafkaError(err error) bool {
	return errors.Is(err, kgo.ErrClientClosed) ||
		errors.Is(err, kerr.TopicAuthorizationFailed) ||
		errors.Is(err, kerr.GroupAuthorizationFailed) ||
		errors.Is(err, kerr.ClusterAuthorizationFailed) ||
		errors.Is(err, kerr.SaslAuthenticationFailed) ||
		errors.Is(err, kerr.TransactionalIDAuthorizationFailed)
}
