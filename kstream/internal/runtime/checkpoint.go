package runtime

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"

	"github.com/streamwork-go/streamwork/kstream/internal/wire"
	"github.com/streamwork-go/streamwork/state"
	"github.com/streamwork-go/streamwork/state/pebble"
)

// Checkpoints. Each on-disk changelogged store keeps, as a metadata record
// (OffsetsMeta), the offset up to which it holds its changelog: the offset
// after the last changelog record Kafka acknowledged for it
// (ChangelogStore.Acked), or where restoring ended. The record is written
// into the store with its data, so it never claims more or less than the
// store holds: a deleted store has none and is restored in full, a store
// that lost its later writes (a crash, a damaged manifest) has the record
// that goes with what it kept (Kafka Streams 4.3 keeps the offsets in the
// store the same way, KIP-1035). When the task is assigned again to this
// instance, restore reads only from there to the end of the changelog
// (restore.go).
//
// At-least-once (and at-most-once) stores write through: the record is
// written and the store flushed (state.Store.Flush) after every commit —
// the caches flushed, the producer flushed (so every changelog record sent
// is acknowledged), the offsets committed — and on clean close (revoke,
// shutdown). A task closed without a commit (lost partitions, a failure)
// writes none: its last checkpoint stays, and is still true, since the
// store only ever holds more.
//
// Under exactly-once the on-disk stores of tasks are transactional
// (pebble.Transactional, opened so by stateEnv.Open): what a task writes
// stays in the store's open transaction, which the task's reads see, and
// reaches the database only once the Kafka transaction that carries its
// changelog records has committed. Then writeCheckpoint puts the new
// offset into the same store transaction and commits it: data and offset
// in one atomic write, synced to the store's write-ahead log. A transaction
// that aborts, and a task closed dirty, drop the store's open transaction
// (removeCheckpoint); a crash loses it. So a store on disk always holds a
// committed Kafka transaction's state and the offset that goes with it —
// the last one, or an earlier one when the crash came between the Kafka
// commit and the store's — and restore reads, read committed, only the
// changelog past that offset. Restoring commits each applied batch of
// records with the offset it reached, so a crash during a restore resumes
// it. See DESIGN.md, "Exactly-once invariants".

// OffsetsMeta names the metadata record of a store's changelog offsets, a
// wire.Checkpoint.
const OffsetsMeta = "streamwork.changelog"

// checkpointed returns the stores of t whose checkpoint lives on disk: the
// persistent, changelogged ones.
func checkpointed(t *task) []*taskStore {
	var out []*taskStore
	for _, ts := range t.StateStores {
		if ts.Persistent && ts.Logged != nil {
			out = append(out, ts)
		}
	}
	return out
}

// txnStore returns the engine store of ts when it is a transactional
// Pebble store, else nil.
func txnStore(ts *taskStore) *pebble.Store {
	if st, ok := ts.Engine.(*pebble.Store); ok && st.Transactional() {
		return st
	}
	return nil
}

// writeCheckpoint records in each on-disk changelogged store of t the
// offset it holds, when it moved, and makes it durable: it flushes a
// write-through store, and commits a transactional store's open
// transaction with it. It runs on the goroutine that owns the task, after a
// successful producer flush, and for transactional stores only after the
// Kafka transaction holding the changelog records committed.
func writeCheckpoint(t *task) error {
	for _, ts := range checkpointed(t) {
		off := ts.Offset()
		moved := off >= 0 && off != ts.Checkpointed
		var err error
		if st := txnStore(ts); st != nil {
			err = commitStore(st, ts.Changelog, off, moved)
		} else if moved {
			var b []byte
			if b, err = wire.EncodeCheckpoint(wire.Checkpoint{ts.Changelog: off}); err == nil {
				err = putMetaAndFlush(ts.Engine, b)
			}
		}
		if err != nil {
			return fmt.Errorf("kstream: task %s: store %q: checkpoint: %w", t.ID, ts.Spec.Name, err)
		}
		if moved {
			ts.Checkpointed = off
		}
	}
	return nil
}

// commitStore commits the open transaction of st, with the offset record
// of tp at off in it when moved.
func commitStore(st *pebble.Store, tp wire.TopicPartition, off int64, moved bool) error {
	if moved {
		b, err := wire.EncodeCheckpoint(wire.Checkpoint{tp: off})
		if err != nil {
			return err
		}
		if err := st.PutMeta(OffsetsMeta, b); err != nil {
			return err
		}
	}
	return st.Commit()
}

// removeCheckpoint makes each on-disk changelogged store of t forget what
// it may hold beyond its changelog's committed records: a write-through
// store loses its checkpoint, durably (it is wiped and restored in full
// when it opens again), a transactional store drops its open transaction
// (its checkpoint stays true).
func removeCheckpoint(t *task) error {
	for _, ts := range checkpointed(t) {
		var err error
		if st := txnStore(ts); st != nil {
			err = st.Abort()
		} else {
			err = putMetaAndFlush(ts.Engine, nil)
			ts.Checkpointed = -1
		}
		if err != nil {
			return fmt.Errorf("kstream: task %s: store %q: remove checkpoint: %w", t.ID, ts.Spec.Name, err)
		}
	}
	return nil
}

// putMetaAndFlush writes (nil: deletes) the offsets record of st and
// flushes it with the data written before it.
func putMetaAndFlush(st state.Store, b []byte) error {
	if err := st.PutMeta(OffsetsMeta, b); err != nil {
		return err
	}
	return st.Flush()
}

// readCheckpoint returns the checkpoints of t's on-disk changelogged
// stores: none for a store without one. An unreadable record counts as
// none (the store is then wiped and restored from the start), with a
// warning.
func readCheckpoint(t *task) wire.Checkpoint {
	c := wire.Checkpoint{}
	for _, ts := range checkpointed(t) {
		off, ok, err := readOffsets(ts.Engine, ts.Changelog)
		if err != nil {
			t.Env.Logger.Warn("kstream: unreadable checkpoint; restoring the store from the start", "task", t.ID.String(), "store", ts.Spec.Name, "err", err)
			continue
		}
		if ok {
			c[ts.Changelog] = off
			ts.Checkpointed = off
		}
	}
	return c
}

// readOffsets returns the offset st's checkpoint records for tp.
func readOffsets(st state.Store, tp wire.TopicPartition) (int64, bool, error) {
	b, err := st.GetMeta(OffsetsMeta)
	if err != nil || b == nil {
		return 0, false, err
	}
	c, err := wire.DecodeCheckpoint(b)
	if err != nil {
		return 0, false, err
	}
	off, ok := c[tp]
	return off, ok, nil
}

// StoredOffsets returns, for application appID under stateDir, the changelog
// offsets its on-disk stores hold (their checkpoints), by changelog topic
// and partition: where a restore would resume. It locks the application's
// state directory, so it fails with an error wrapping
// engine.ErrStateDirLocked while an App uses it.
func StoredOffsets(stateDir, appID string) (map[string]map[int32]int64, error) {
	appDir := filepath.Join(stateDir, appID)
	if _, err := os.Stat(appDir); err != nil {
		return nil, fmt.Errorf("kstream: state of application %q: %w", appID, err)
	}
	unlock, err := lockDir(appDir)
	if err != nil {
		return nil, fmt.Errorf("kstream: state of application %q: %w", appID, err)
	}
	defer unlock()
	env, err := pebble.NewEnv(pebble.Logger(slog.New(slog.DiscardHandler)))
	if err != nil {
		return nil, err
	}
	defer env.Close()
	out := map[string]map[int32]int64{}
	taskDirs, err := os.ReadDir(appDir)
	if err != nil {
		return nil, err
	}
	for _, td := range taskDirs {
		if !td.IsDir() {
			continue
		}
		stores, err := os.ReadDir(filepath.Join(appDir, td.Name()))
		if err != nil {
			return nil, err
		}
		for _, sd := range stores {
			if !sd.IsDir() {
				continue
			}
			if err := readStoredOffsets(env, filepath.Join(appDir, td.Name(), sd.Name()), sd.Name(), out); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// readStoredOffsets adds the checkpoint of the store in dir to out.
func readStoredOffsets(env *pebble.Env, dir, name string, out map[string]map[int32]int64) error {
	st, err := env.Open(dir, name)
	if err != nil {
		return err
	}
	defer st.Close()
	b, err := st.GetMeta(OffsetsMeta)
	if err != nil || b == nil {
		return err
	}
	c, err := wire.DecodeCheckpoint(b)
	if err != nil {
		return fmt.Errorf("kstream: store in %s: %w", dir, err)
	}
	for tp, off := range c {
		if out[tp.Topic] == nil {
			out[tp.Topic] = map[int32]int64{}
		}
		out[tp.Topic][tp.Partition] = off
	}
	return nil
}

// StoresWithCheckpoint lists, as "<task>/<store>", the stores of the App's
// running tasks that hold a checkpoint now. For tests of the exactly-once
// invariants.
func (a *App) StoresWithCheckpoint() []string {
	a.mu.Lock()
	workers := slices.Clone(a.Workers)
	a.mu.Unlock()
	var out []string
	for _, w := range workers {
		w.mu.Lock()
		for _, t := range w.Order {
			for _, ts := range checkpointed(t) {
				if b, err := ts.Engine.GetMeta(OffsetsMeta); err == nil && b != nil {
					out = append(out, t.ID.String()+"/"+ts.Spec.Name)
				}
			}
		}
		w.mu.Unlock()
	}
	return out
}
