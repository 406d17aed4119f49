package kstream

import (
	"fmt"

	"github.com/streamwork-go/streamwork/state"
)

// Checkpoints. A task's checkpoint file (<task dir>/.checkpoint) says, for
// each changelog partition of its on-disk stores, the offset up to which
// the store on disk holds the changelog: the offset after the last
// changelog record Kafka acknowledged for it (changelogStore.acked), or
// where restoring ended. When the task is assigned again to this instance,
// restore reads only from there to the end of the changelog (restore.go).
//
// At-least-once writes the checkpoint after every commit — the caches
// flushed, the producer flushed (so every changelog record sent is
// acknowledged), the offsets committed — and on clean close (revoke,
// shutdown): it flushes each store to disk first (Store.Flush), so the
// file never claims more than the disk holds. A task closed without a
// commit (lost partitions, a failure) writes none: its last checkpoint
// stays, and is still true, since the store only ever holds more.
//
// Under exactly-once a checkpoint is only written on a clean close (a
// shutdown after its last transaction committed, a revoke or an abort that
// finds the task untouched since its last commit), never after a commit:
// when a task starts processing it removes its checkpoint
// (removeCheckpoint), since its stores then hold writes of transactions
// that may yet abort. A task found without a checkpoint (a crash, a dirty
// close) is wiped and restored from the start of its changelogs, read
// committed; see DESIGN.md, "Exactly-once invariants".

// writeCheckpoint flushes the task's on-disk changelogged stores and
// writes its checkpoint, if an offset moved since the last one. It runs on
// the goroutine that owns the task, after a successful producer flush.
func (t *task) writeCheckpoint() error {
	if t.env.state == nil || t.env.state.env == nil {
		return nil
	}
	c := make(state.Checkpoint)
	changed := false
	var stores []*taskStore
	for _, ts := range t.stateStores {
		if !ts.persistent || ts.logged == nil {
			continue
		}
		off := ts.offset()
		if off < 0 {
			continue
		}
		c[ts.changelog] = off
		stores = append(stores, ts)
		if off != ts.checkpointed {
			changed = true
		}
	}
	if !changed {
		return nil
	}
	for _, ts := range stores {
		if err := ts.engine.Flush(); err != nil {
			return fmt.Errorf("kstream: task %s: checkpoint: %w", t.id, err)
		}
	}
	if err := state.WriteCheckpoint(t.env.state.checkpointPath(t.id), c); err != nil {
		return fmt.Errorf("kstream: task %s: %w", t.id, err)
	}
	for _, ts := range stores {
		ts.checkpointed = c[ts.changelog]
	}
	return nil
}

// removeCheckpoint deletes the task's checkpoint file, if the engine is on
// disk.
func (t *task) removeCheckpoint() error {
	if t.env.state == nil || t.env.state.env == nil {
		return nil
	}
	if err := state.RemoveCheckpoint(t.env.state.checkpointPath(t.id)); err != nil {
		return fmt.Errorf("kstream: task %s: %w", t.id, err)
	}
	for _, ts := range t.stateStores {
		ts.checkpointed = -1
	}
	return nil
}

// readCheckpoint returns the task's checkpoint: empty when there is none
// or the engine is in memory. An unreadable file counts as none (the
// stores are then wiped and restored from the start), with a warning.
func (t *task) readCheckpoint() state.Checkpoint {
	if t.env.state == nil || t.env.state.env == nil {
		return state.Checkpoint{}
	}
	c, err := state.ReadCheckpoint(t.env.state.checkpointPath(t.id))
	if err != nil {
		t.env.logger.Warn("kstream: unreadable checkpoint; restoring the task's stores from the start", "task", t.id.String(), "err", err)
		return state.Checkpoint{}
	}
	for _, ts := range t.stateStores {
		if off, ok := c[ts.changelog]; ok && ts.persistent {
			ts.checkpointed = off
		}
	}
	return c
}
