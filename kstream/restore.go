package kstream

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamwork-go/streamwork/state"
)

const (
	// restoreBatch bounds the changelog records one restore step applies,
	// so tasks that already run keep being processed between steps.
	restoreBatch = 10000
	// restoreLogInterval is how often restore progress is logged.
	restoreLogInterval = 5 * time.Second
	// restoreRetry is how long restore waits before asking for the
	// offsets of changelogs that were not ready (just created, no leader).
	restoreRetry = 200 * time.Millisecond
)

// restorer brings the changelogged stores of a worker's new tasks up to
// date before the tasks process anything (Kafka Streams' StoreChangelogReader).
//
// A task with changelogged stores is opened on assignment but not started:
// its input partitions are paused (records already buffered are kept), and
// it waits in pending. The worker goroutine then, in every round of its
// loop (restoreLocked):
//
//  1. applies the changelog records its restore consumer returned: each
//     goes straight into the engine store (Put, or Delete for a
//     tombstone), not through the changelogging layer;
//  2. reads the log start and end (last stable) offsets of the pending
//     tasks' changelog partitions and decides, per store, where to
//     restore from: the task's checkpoint offset when there is one inside
//     the log's range, else the start of the log, after wiping the store
//     (an on-disk store without a valid checkpoint may hold anything);
//     then it adds the partitions to the restore consumer;
//  3. starts the tasks whose stores all reached their end offsets: resumes
//     their input, initializes their nodes, makes their stores queryable.
//
// The restore consumer is the worker's second kgo.Client: no group, read
// committed, control records kept (so the position passes transaction
// markers). The worker goroutine polls it, outside mu, in the same round
// as the group client, without blocking when tasks have records to
// process: restoring interleaves with processing. All restorer state is
// guarded by the worker's mu; rebalance callbacks (which hold mu) may
// remove tasks (forget) while a poll runs, so records are applied only to
// partitions still registered, and never below an entry's next offset.
type restorer struct {
	w       *worker
	client  *kgo.Client
	adm     *kadm.Client
	pending []*task
	entries map[state.TopicPartition]*restoreEntry
	byTask  map[*task][]*restoreEntry
	retryAt time.Time
	lastLog time.Time
}

// restoreEntry is one store of a task being restored from one changelog
// partition, from next up to end.
type restoreEntry struct {
	t          *task
	ts         *taskStore
	tp         state.TopicPartition
	from, next int64
	end        int64
	restored   int64
	started    time.Time
	done       bool
}

func newRestorer(w *worker, client *kgo.Client) *restorer {
	return &restorer{
		w: w, client: client, adm: kadm.NewClient(w.client),
		entries: make(map[state.TopicPartition]*restoreEntry),
		byTask:  make(map[*task][]*restoreEntry),
	}
}

// needsRestore reports whether t has changelogged stores.
func (t *task) needsRestore() bool {
	for _, ts := range t.stateStores {
		if ts.logged != nil {
			return true
		}
	}
	return false
}

// addLocked queues a newly opened task for restoring.
func (r *restorer) addLocked(t *task) {
	r.pending = append(r.pending, t)
	r.retryAt = time.Time{}
}

// restoring reports whether t is restoring (pending or registered).
func (r *restorer) restoring(t *task) bool {
	if r == nil {
		return false
	}
	_, ok := r.byTask[t]
	return ok || slices.Contains(r.pending, t)
}

// active reports whether there is anything to restore: the worker then
// polls the restore consumer.
func (r *restorer) active() bool {
	return r != nil && (len(r.entries) > 0 || len(r.pending) > 0)
}

// forgetLocked stops restoring t (closed by a revoke, a loss or the
// shutdown). What it restored so far stays in its store, and in the
// checkpoint a clean close writes.
func (r *restorer) forgetLocked(t *task) {
	if r == nil {
		return
	}
	if i := slices.Index(r.pending, t); i >= 0 {
		r.pending = slices.Delete(r.pending, i, i+1)
	}
	es, ok := r.byTask[t]
	if !ok {
		return
	}
	delete(r.byTask, t)
	remove := map[string][]int32{}
	for _, e := range es {
		if r.entries[e.tp] == e {
			delete(r.entries, e.tp)
			remove[e.tp.Topic] = append(remove[e.tp.Topic], e.tp.Partition)
		}
	}
	if len(remove) > 0 {
		r.client.RemoveConsumePartitions(remove)
	}
	r.w.logger.Info("kstream: stopped restoring a task that was closed", "task", t.id.String())
}

// poll polls the restore consumer for up to restoreBatch records; a nil
// ctx returns at once with what is buffered. It runs on the worker
// goroutine without mu.
func (r *restorer) poll(ctx context.Context) kgo.Fetches {
	return r.client.PollRecords(ctx, restoreBatch)
}

// restoreLocked runs one restore step (see restorer) with the records of
// the last poll. It returns an error that fails the worker.
func (w *worker) restoreLocked(fs kgo.Fetches) error {
	r := w.restore
	if r == nil {
		return nil
	}
	for _, fe := range fs.Errors() {
		switch {
		case ctxErr(fe.Err):
		case isFatalKafkaError(fe.Err):
			return fmt.Errorf("kstream: restore from topic %q partition %d: %w", fe.Topic, fe.Partition, fe.Err)
		default:
			w.logger.Warn("kstream: restore fetch error", "topic", fe.Topic, "partition", fe.Partition, "err", fe.Err)
		}
	}
	var err error
	fs.EachRecord(func(rec *kgo.Record) {
		if err == nil {
			err = r.applyLocked(rec)
		}
	})
	if err != nil {
		return err
	}
	if len(r.pending) > 0 && !time.Now().Before(r.retryAt) {
		if err := r.initPendingLocked(); err != nil {
			return err
		}
	}
	for _, e := range r.entries {
		if e.next >= e.end {
			r.doneLocked(e)
		}
	}
	for t, es := range r.byTask {
		if !slices.ContainsFunc(es, func(e *restoreEntry) bool { return !e.done }) {
			if err := w.finishRestoreLocked(t); err != nil {
				return err
			}
		}
	}
	if len(r.entries) > 0 && time.Since(r.lastLog) >= restoreLogInterval {
		r.lastLog = time.Now()
		for _, e := range r.entries {
			el := time.Since(e.started).Seconds()
			w.logger.Info("kstream: restoring", "task", e.t.id.String(), "store", e.ts.spec.name,
				"restored", e.restored, "left", max(0, e.end-e.next), "records_per_sec", int64(float64(e.restored)/max(el, 1e-3)))
		}
	}
	return nil
}

// applyLocked applies one changelog record to the engine store of its
// entry.
func (r *restorer) applyLocked(rec *kgo.Record) error {
	e := r.entries[state.TopicPartition{Topic: rec.Topic, Partition: rec.Partition}]
	if e == nil || e.done || rec.Offset < e.next {
		return nil // a partition no longer restored here, or seen already
	}
	e.next = rec.Offset + 1
	e.ts.restoredTo = e.next
	if rec.Attrs.IsControl() {
		return nil
	}
	var err error
	if rec.Value == nil {
		err = e.ts.engine.Delete(rec.Key)
	} else {
		err = e.ts.engine.Put(rec.Key, rec.Value)
	}
	if err != nil {
		return fmt.Errorf("kstream: task %s: restore store %q from %s offset %d: %w", e.t.id, e.ts.spec.name, e.tp, rec.Offset, err)
	}
	e.restored++
	r.w.env.metrics.restored.Add(1)
	return nil
}

// initPendingLocked reads the changelog offsets of the pending tasks and
// registers what they must restore. Offsets that are not available yet
// (a changelog just created) are asked again after restoreRetry.
func (r *restorer) initPendingLocked() error {
	var topics []string
	for _, t := range r.pending {
		for _, ts := range t.stateStores {
			if ts.logged != nil && !slices.Contains(topics, ts.changelog.Topic) {
				topics = append(topics, ts.changelog.Topic)
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), commitTimeout)
	defer cancel()
	starts, err := r.adm.ListStartOffsets(ctx, topics...)
	if err == nil {
		err = starts.Error()
	}
	var ends kadm.ListedOffsets
	if err == nil {
		// The last stable offset: what a read-committed consumer can reach.
		ends, err = r.adm.ListCommittedOffsets(ctx, topics...)
		if err == nil {
			err = ends.Error()
		}
	}
	if err != nil {
		if isFatalKafkaError(err) {
			return fmt.Errorf("kstream: restore: list changelog offsets: %w", err)
		}
		r.w.logger.Debug("kstream: changelog offsets not available yet; retrying", "topics", topics, "err", err)
		r.retryAt = time.Now().Add(restoreRetry)
		return nil
	}
	pending := r.pending
	r.pending = nil
	add := map[string]map[int32]kgo.Offset{}
	for _, t := range pending {
		if err := r.planLocked(t, starts, ends, add); err != nil {
			return err
		}
	}
	if len(add) > 0 {
		r.client.AddConsumePartitions(add)
	}
	r.lastLog = time.Now()
	r.w.publishStatsLocked()
	return nil
}

// planLocked decides where each changelogged store of t restores from.
func (r *restorer) planLocked(t *task, starts, ends kadm.ListedOffsets, add map[string]map[int32]kgo.Offset) error {
	w := r.w
	ckpt := t.readCheckpoint()
	es := []*restoreEntry{}
	for _, ts := range t.stateStores {
		if ts.logged == nil {
			continue
		}
		start, ok1 := starts.Lookup(ts.changelog.Topic, ts.changelog.Partition)
		end, ok2 := ends.Lookup(ts.changelog.Topic, ts.changelog.Partition)
		if !ok1 || !ok2 {
			return fmt.Errorf("%w: changelog %s of store %q has no partition %d", ErrInternalTopic, ts.changelog.Topic, ts.spec.name, ts.changelog.Partition)
		}
		from, ok := ckpt[ts.changelog]
		if !ts.persistent || !ok || from < start.Offset || from > end.Offset {
			if ts.persistent && hasData(ts.engine) {
				if ok {
					w.logger.Warn("kstream: checkpoint outside the changelog's range; wiping the store", "task", t.id.String(), "store", ts.spec.name,
						"checkpoint", from, "log_start", start.Offset, "log_end", end.Offset)
				}
				if err := t.wipeStore(ts); err != nil {
					return err
				}
			}
			from = start.Offset
		}
		ts.restoredTo = from
		e := &restoreEntry{t: t, ts: ts, tp: ts.changelog, from: from, next: from, end: end.Offset, started: time.Now()}
		es = append(es, e)
		if from >= end.Offset {
			e.done = true
			continue
		}
		w.logger.Info("kstream: restoring store", "task", t.id.String(), "store", ts.spec.name, "changelog", ts.changelog.String(),
			"from", from, "to", end.Offset, "records_left", end.Offset-from)
		r.entries[ts.changelog] = e
		if add[ts.changelog.Topic] == nil {
			add[ts.changelog.Topic] = map[int32]kgo.Offset{}
		}
		add[ts.changelog.Topic][ts.changelog.Partition] = kgo.NewOffset().At(from)
	}
	r.byTask[t] = es
	return nil
}

// doneLocked finishes restoring one store.
func (r *restorer) doneLocked(e *restoreEntry) {
	e.done = true
	delete(r.entries, e.tp)
	r.client.RemoveConsumePartitions(map[string][]int32{e.tp.Topic: {e.tp.Partition}})
	el := time.Since(e.started)
	r.w.logger.Info("kstream: restored store", "task", e.t.id.String(), "store", e.ts.spec.name, "records", e.restored,
		"to", e.next, "took", el.Round(time.Millisecond), "records_per_sec", int64(float64(e.restored)/max(el.Seconds(), 1e-3)))
}

// remainingLocked returns how many changelog records the restoring tasks
// still have to read, and the restoring tasks.
func (r *restorer) remainingLocked() (int64, []TaskID) {
	if r == nil {
		return 0, nil
	}
	var n int64
	var ids []TaskID
	for t, es := range r.byTask {
		ids = append(ids, t.id)
		for _, e := range es {
			if !e.done {
				n += max(0, e.end-e.next)
			}
		}
	}
	for _, t := range r.pending {
		ids = append(ids, t.id)
	}
	slices.SortFunc(ids, compareTaskIDs)
	return n, ids
}

// finishRestoreLocked starts a restored task: its input resumes, its nodes
// are initialized and its stores become queryable.
func (w *worker) finishRestoreLocked(t *task) error {
	var n int64
	for _, e := range w.restore.byTask[t] {
		n += e.restored
	}
	delete(w.restore.byTask, t)
	if err := w.startTaskLocked(t); err != nil {
		return err
	}
	w.resumeRestoredLocked(t)
	w.logger.Info("kstream: task restored; processing", "task", t.id.String(), "records", n)
	w.publishStatsLocked()
	return nil
}

// wipeStore deletes an on-disk store's data: closes it, destroys its
// directory and opens it again, empty.
func (t *task) wipeStore(ts *taskStore) error {
	if err := ts.engine.Close(); err != nil {
		return fmt.Errorf("kstream: task %s: wipe store %q: %w", t.id, ts.spec.name, err)
	}
	if err := t.env.state.destroy(ts.dir); err != nil {
		return fmt.Errorf("kstream: task %s: wipe store %q: %w", t.id, ts.spec.name, err)
	}
	st, _, err := t.env.state.open(t.id, ts.spec)
	if err != nil {
		return err
	}
	ts.engine = st
	if ts.logged != nil {
		ts.logged.Store = st
	}
	if ts.cache != nil && ts.logged == nil {
		ts.cache.inner = st
	}
	if ts.logged == nil && ts.cache == nil {
		ts.top = st
	}
	ts.checkpointed = -1
	return nil
}

// hasData reports whether st holds any key.
func hasData(st state.Store) bool {
	it := st.All()
	ok := it.Next()
	_ = it.Close()
	return ok
}
