package commit

import (
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamwork-go/streamwork/kstream/internal/engine"
)

// atMostOnce commits the positions after the records fetched, before any of
// them is processed: until that commit succeeds the worker processes
// nothing (CanProcess), so no record is processed whose offset is not
// committed, and a crash may lose records but never processes one twice.
// Its periodic commit only flushes the caches and the producer, settles
// production failures and writes checkpoints.
type atMostOnce struct {
	atLeastOnce
	// pending are the positions after the records fetched but not yet
	// committed, per topic and partition.
	pending map[string]map[int32]kgo.EpochOffset
}

func (p *atMostOnce) Guarantee() Guarantee { return AtMostOnce }

// Routed notes the position after the last record fetched for each
// partition and commits them.
func (p *atMostOnce) Routed(fs kgo.Fetches) error {
	fs.EachPartition(func(fp kgo.FetchTopicPartition) {
		if len(fp.Records) == 0 || !p.h.HasTask(fp.Topic, fp.Partition) {
			return
		}
		last := fp.Records[len(fp.Records)-1]
		if p.pending[fp.Topic] == nil {
			p.pending[fp.Topic] = make(map[int32]kgo.EpochOffset)
		}
		p.pending[fp.Topic][fp.Partition] = kgo.EpochOffset{Epoch: last.LeaderEpoch, Offset: last.Offset + 1}
	})
	return p.commitFetched()
}

// CanProcess reports whether every fetched offset is committed.
func (p *atMostOnce) CanProcess() bool { return len(p.pending) == 0 }

// PartitionClosed forgets the pending commit of a closed task's partition.
func (p *atMostOnce) PartitionClosed(topic string, partition int32) {
	delete(p.pending[topic], partition)
	if len(p.pending[topic]) == 0 {
		delete(p.pending, topic)
	}
}

// Commit flushes, settles and checkpoints: the offsets were committed
// before processing.
func (p *atMostOnce) Commit() error { return p.flush(p.h.Tasks()) }

func (p *atMostOnce) flush(tasks []*engine.Task) error {
	if err := flushCaches(tasks); err != nil {
		return err
	}
	if err := flushProducer(p.h); err != nil {
		return err
	}
	return checkpoint(p.h, tasks)
}

// OnRevoked first processes the records of the revoked tasks whose offsets
// are already committed (dropping them would lose records on every clean
// rebalance), then flushes and closes the tasks.
func (p *atMostOnce) OnRevoked(parts map[string][]int32) {
	p.h.Locked(func() {
		tasks := p.h.Unassign(parts)
		if len(tasks) == 0 {
			return
		}
		p.drainCommitted(tasks)
		if p.h.Failure() == nil {
			if err := p.flush(tasks); err != nil {
				p.h.SetFailure(err)
			}
		}
		p.h.CloseTasks(tasks, "revoked")
	})
}

// Shutdown processes the records whose offsets are committed, flushes and
// closes every task.
func (p *atMostOnce) Shutdown() error {
	tasks := p.h.Tasks()
	p.drainCommitted(tasks)
	err := p.h.Failure()
	if err == nil {
		err = p.flush(tasks)
	}
	p.h.CloseTasks(tasks, "shutdown")
	return err
}

// commitFetched commits the pending positions. A commit the broker rejects
// is retried at the next loop; processing waits meanwhile.
func (p *atMostOnce) commitFetched() error {
	if len(p.pending) == 0 {
		return nil
	}
	failed, err := commitOffsets(p.h, p.pending)
	if err != nil {
		return err
	}
	if len(failed) > 0 {
		return nil
	}
	p.h.Committed()
	p.h.Logger().Debug("kstream: committed fetched offsets before processing (at-most-once)", "offsets", p.pending)
	clear(p.pending)
	return nil
}

// drainCommitted processes the buffered records of tasks whose offsets were
// committed when they were fetched, without waiting for the records of
// empty partitions (Task.Drain): they are processed now or never. When some fetched offsets are still
// uncommitted it tries to commit them first; if that fails the buffered
// records are dropped (at-most-once allows losing them, never processing
// them twice).
func (p *atMostOnce) drainCommitted(tasks []*engine.Task) {
	if p.h.Failure() != nil {
		return
	}
	if err := p.commitFetched(); err != nil {
		p.h.SetFailure(err)
		return
	}
	if len(p.pending) > 0 {
		p.h.Logger().Warn("kstream: dropping fetched records whose offsets could not be committed (at-most-once)")
		return
	}
	for _, t := range tasks {
		for t.Started && t.TotalBuffered() > 0 {
			if _, err := t.Drain(drainBatch); err != nil {
				p.h.SetFailure(err)
				return
			}
		}
	}
}

// drainBatch is how many records drainCommitted processes per call.
const drainBatch = 100
