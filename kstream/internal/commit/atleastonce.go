package commit

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/streamwork-go/streamwork/kstream/internal/engine"
)

// atLeastOnce commits input offsets after every output of the records
// before them was acknowledged:
//
//  0. flush the record caches of the tasks (their updates go downstream and
//     to the changelogs now, so they belong to this commit);
//  1. flush the producer and settle production failures through the
//     production handler (a failure the handler fails on stops the worker
//     before anything is committed);
//  2. commit, per task, one past the last processed record of each
//     partition, with that record's leader epoch;
//  3. mark those offsets committed in the tasks;
//  4. purge the repartition topics below the committed offsets;
//  5. write each task's checkpoint.
//
// A commit the broker rejects (a rebalance raced it) is logged and retried
// at the next commit: at worst some records are processed again. Only
// authorization failures are fatal. A producer that cannot reach Kafka is
// waited for as long as the worker runs: an outage of any length delays
// the commit, it does not stop the App.
type atLeastOnce struct {
	h Host
}

func (p *atLeastOnce) Guarantee() Guarantee                       { return AtLeastOnce }
func (p *atLeastOnce) BeginRound() error                          { return nil }
func (p *atLeastOnce) Polled(fs kgo.Fetches) (kgo.Fetches, error) { return fs, nil }
func (p *atLeastOnce) Routed(kgo.Fetches) error                   { return nil }
func (p *atLeastOnce) CanProcess() bool                           { return true }
func (p *atLeastOnce) Assigning()                                 {}
func (p *atLeastOnce) Assigned(map[string][]int32)                {}
func (p *atLeastOnce) TaskStarting(*engine.Task) error            { return nil }
func (p *atLeastOnce) PartitionClosed(string, int32)              {}
func (p *atLeastOnce) Abandon()                                   {}
func (p *atLeastOnce) Restarting()                                {}

// Commit commits every task's progress.
func (p *atLeastOnce) Commit() error { return p.commit(p.h.Tasks()) }

// OnRevoked commits the progress of the tasks of the revoked partitions
// and closes them, before the partitions go to another member. A failure
// to commit fails the worker, but the tasks close regardless: they belong
// to another member now.
func (p *atLeastOnce) OnRevoked(parts map[string][]int32) {
	p.h.Locked(func() {
		tasks := p.h.Unassign(parts)
		if len(tasks) == 0 {
			return
		}
		if p.h.Failure() == nil {
			if err := p.commit(tasks); err != nil {
				p.h.SetFailure(err)
			}
		}
		p.h.CloseTasks(tasks, "revoked")
	})
}

// OnLost closes the tasks of lost partitions without committing (session
// expired, fenced): their new owners start from the last commit.
func (p *atLeastOnce) OnLost(parts map[string][]int32) {
	p.h.Locked(func() {
		tasks := p.h.Unassign(parts)
		if len(tasks) > 0 {
			p.h.Logger().Warn("kstream: partitions lost; closing their tasks without committing", "tasks", len(tasks))
		}
		p.h.CloseTasks(tasks, "lost")
	})
}

// Shutdown commits what was processed and closes every task.
func (p *atLeastOnce) Shutdown() error {
	tasks := p.h.Tasks()
	err := p.commit(tasks)
	p.h.CloseTasks(tasks, "shutdown")
	return err
}

// commit runs the steps in the type's doc for tasks.
func (p *atLeastOnce) commit(tasks []*engine.Task) error {
	if err := flushCaches(tasks); err != nil {
		return err
	}
	if err := flushProducer(p.h); err != nil {
		return err
	}
	offsets, perTask := OffsetsToCommit(tasks)
	if len(offsets) > 0 {
		failed, err := commitOffsets(p.h, offsets)
		if err != nil {
			return err
		}
		for t, o := range perTask {
			for tp := range o {
				if failed[topicPartition{tp, t.ID.Partition}] {
					delete(o, tp)
				}
			}
			t.MarkCommitted(o)
		}
		if len(failed) == 0 {
			p.h.Committed()
			p.h.Logger().Debug("kstream: committed", "offsets", offsets)
		}
		purgeRepartition(p.h, offsets, failed)
	}
	return checkpoint(p.h, tasks)
}

// flushCaches flushes the tasks' record caches: what they flush (downstream
// output, changelog records) is produced now and belongs to this commit.
func flushCaches(tasks []*engine.Task) error {
	for _, t := range tasks {
		if err := t.FlushCaches(); err != nil {
			return err
		}
	}
	return nil
}

// flushProducer waits for the producer. While the worker runs it waits as
// long as Kafka takes (the client keeps retrying the records through an
// outage), logging every Timeout; a worker that is shutting down waits
// Timeout at most, then gives up without committing (its input is
// processed again after the restart).
func flushProducer(h Host) error {
	for waited := 1; ; waited++ {
		ctx, cancel := context.WithTimeout(context.Background(), Timeout)
		err := h.Flush(ctx)
		cancel()
		if err == nil || !errors.Is(err, context.DeadlineExceeded) {
			return err
		}
		select {
		case <-h.Stopping():
			return fmt.Errorf("kstream: flush the producer while shutting down: %w", err)
		default:
		}
		h.Logger().Warn("kstream: Kafka has not acknowledged the produced records yet; still waiting (nothing is committed meanwhile)",
			"waited", (Timeout * time.Duration(waited)).String())
	}
}

// OffsetsToCommit returns, for tasks that processed records since their
// last commit, the offsets to commit (with the leader epoch of the last
// record processed), in total and per task.
func OffsetsToCommit(tasks []*engine.Task) (map[string]map[int32]kgo.EpochOffset, map[*engine.Task]map[string]int64) {
	offsets := make(map[string]map[int32]kgo.EpochOffset)
	perTask := make(map[*engine.Task]map[string]int64, len(tasks))
	for _, t := range tasks {
		o := t.OffsetsToCommit()
		if len(o) == 0 {
			continue
		}
		perTask[t] = o
		for tp, off := range o {
			if offsets[tp] == nil {
				offsets[tp] = make(map[int32]kgo.EpochOffset)
			}
			offsets[tp][t.ID.Partition] = kgo.EpochOffset{Epoch: t.LeaderEpoch(tp), Offset: off}
		}
	}
	return offsets, perTask
}

// checkpoint writes the checkpoints of tasks after a successful producer
// flush. A failure to write one fails the worker: the disk is broken.
func checkpoint(h Host, tasks []*engine.Task) error {
	for _, t := range tasks {
		if err := h.WriteCheckpoint(t); err != nil {
			return err
		}
	}
	return nil
}

// topicPartition names a partition.
type topicPartition struct {
	topic     string
	partition int32
}

// commitOffsets commits offsets synchronously and returns the partitions
// whose commit failed, or an error when the failure is fatal.
func commitOffsets(h Host, offsets map[string]map[int32]kgo.EpochOffset) (map[topicPartition]bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
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
	h.Client().CommitOffsetsSync(ctx, offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
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
	if IsFatal(firstErr) {
		return nil, fmt.Errorf("kstream: commit offsets: %w", firstErr)
	}
	h.Logger().Warn("kstream: offset commit failed; retrying at the next commit", "partitions", len(failed), "err", firstErr)
	return failed, nil
}

// purgeRepartition deletes the records of repartition topics below the
// offsets just committed: they were processed and are needed by no one
// (Kafka Streams purges them the same way). Failures are only logged; the
// next commit tries again.
func purgeRepartition(h Host, committed map[string]map[int32]kgo.EpochOffset, failed map[topicPartition]bool) {
	var purge kadm.Offsets
	for tp, ps := range committed {
		if !h.IsRepartition(tp) {
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
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	resp, err := kadm.NewClient(h.Client()).DeleteRecords(ctx, purge)
	if err == nil {
		resp.Each(func(r kadm.DeleteRecordsResponse) {
			if r.Err != nil && err == nil {
				err = fmt.Errorf("topic %q partition %d: %w", r.Topic, r.Partition, r.Err)
			}
		})
	}
	if err != nil {
		h.Logger().Warn("kstream: purging consumed repartition records failed; retrying after the next commit", "err", err)
	}
}
