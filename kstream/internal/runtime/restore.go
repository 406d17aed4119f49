package runtime

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamwork-go/streamwork/kstream/internal/commit"
	"github.com/streamwork-go/streamwork/kstream/internal/engine"
	"github.com/streamwork-go/streamwork/kstream/internal/wire"
	"github.com/streamwork-go/streamwork/state"
)

const (
	// restoreBatch bounds the changelog records one restore step applies,
	// so tasks that already run keep being processed between steps.
	restoreBatch = 10000
	// defaultRestoreLogInterval is how often restore progress is logged
	// (Config.RestoreLogInterval).
	defaultRestoreLogInterval = 10 * time.Second
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
	entries map[wire.TopicPartition]*restoreEntry
	byTask  map[*task][]*restoreEntry
	// standby marks the pending tasks that are standbys; standbys has the
	// entries of the standby tasks, which read their changelogs without
	// end (standby.go).
	standby  map[*task]bool
	standbys map[*task][]*restoreEntry
	// lags has each planned standby's lag (standbyLag of its entries),
	// stored after every step for stale reads (queryRegistry.GetStandby),
	// which read it without mu.
	lags    map[*task]*atomic.Int64
	retryAt time.Time
	lastLog time.Time
}

// restoreEntry is one store of a task being restored from one changelog
// partition, from next up to end.
type restoreEntry struct {
	t          *task
	ts         *taskStore
	tp         wire.TopicPartition
	from, next int64
	end        int64
	Restored   int64
	Started    time.Time
	done       bool
	// standby: the entry of a standby task (end is unbounded); hwm is the
	// partition's end as of the latest fetch (-1: unknown).
	standby bool
	hwm     int64
	// hist is Restored over time, for the rate.
	hist history
	// moved: next moved since the store's last commit (transactional
	// stores commit what a restore step applied, with the offset).
	moved bool
}

func newRestorer(w *worker, client *kgo.Client) *restorer {
	return &restorer{
		w: w, client: client, adm: kadm.NewClient(w.client),
		entries: make(map[wire.TopicPartition]*restoreEntry),
		byTask:  make(map[*task][]*restoreEntry),
		standby: make(map[*task]bool), standbys: make(map[*task][]*restoreEntry),
		lags: make(map[*task]*atomic.Int64),
	}
}

// needsRestore reports whether t has changelogged stores.
func needsRestore(t *task) bool {
	for _, ts := range t.StateStores {
		if ts.Logged != nil {
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

// addStandbyLocked queues a newly opened standby task: it reads its
// changelogs from its checkpoint on, without end.
func (r *restorer) addStandbyLocked(t *task) {
	r.standby[t] = true
	r.addLocked(t)
}

// restoringLocked reports whether active tasks restore: the worker then
// spends its poll's wait in the restore poll.
func (r *restorer) restoringLocked() bool {
	if r == nil {
		return false
	}
	return len(r.byTask) > 0 || slices.ContainsFunc(r.pending, func(t *task) bool { return !r.standby[t] })
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
	standby := r.standby[t]
	delete(r.standby, t)
	delete(r.lags, t)
	es, ok := r.byTask[t]
	if standby {
		es, ok = r.standbys[t]
		delete(r.standbys, t)
	}
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
	if !standby {
		r.w.Logger.Info("kstream: stopped restoring a task that was closed", "task", t.ID.String())
	}
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
		case commit.IsFatal(fe.Err):
			return fmt.Errorf("kstream: restore from topic %q partition %d: %w", fe.Topic, fe.Partition, fe.Err)
		default:
			w.Logger.Warn("kstream: restore fetch error", "topic", fe.Topic, "partition", fe.Partition, "err", fe.Err)
		}
	}
	var err error
	fs.EachPartition(func(p kgo.FetchTopicPartition) {
		e := r.entries[wire.TopicPartition{Topic: p.Topic, Partition: p.Partition}]
		if e != nil && e.standby {
			e.hwm = p.LastStableOffset
			if e.hwm < 0 {
				e.hwm = p.HighWatermark
			}
		}
		for _, rec := range p.Records {
			if err == nil {
				err = r.applyLocked(rec)
			}
		}
	})
	if err != nil {
		return err
	}
	if err := r.commitLocked(); err != nil {
		return err
	}
	for t, lag := range r.lags {
		lag.Store(standbyLag(r.standbys[t]))
	}
	if err := r.checkpointStandbysLocked(); err != nil {
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
	every := w.cfg.RestoreLogInterval
	if every <= 0 {
		every = defaultRestoreLogInterval
	}
	if len(r.entries) > 0 && time.Since(r.lastLog) >= every {
		r.lastLog = time.Now()
		w.publishStatsLocked() // Metrics shows what the log says
		r.logProgressLocked(r.lastLog)
	}
	return nil
}

// logProgressLocked logs, for each task restoring, the changelog records
// restored so far and left, the rate over RateWindow and the time left at
// that rate.
func (r *restorer) logProgressLocked(now time.Time) {
	type progress struct {
		done, left int64
		rate       float64
	}
	byTask := map[engine.TaskID]*progress{}
	var ids []engine.TaskID
	for _, m := range r.metricsLocked(now) {
		p := byTask[m.Task]
		if p == nil {
			p = new(progress)
			byTask[m.Task] = p
			ids = append(ids, m.Task)
		}
		p.done += m.Done
		p.left += m.Left
		p.rate += m.RecordsPerSecond
	}
	for _, id := range ids {
		p := byTask[id]
		r.w.Logger.Info("kstream: restoring", "task", id.String(), "restored", p.done, "left", p.left,
			"records_per_sec", int64(p.rate), "eta", eta(p.left, p.rate).Round(time.Second))
	}
}

// eta returns how long left records take at rate per second (0 when the
// rate is unknown).
func eta(left int64, rate float64) time.Duration {
	if rate <= 0 {
		return 0
	}
	return time.Duration(float64(left) / rate * float64(time.Second))
}

// metricsLocked returns the progress of each store restoring now, sorted by
// task and store. Standby entries read on without end: they are not
// restores (their lag is Metrics.StandbyLag).
func (r *restorer) metricsLocked(now time.Time) []engine.RestoreMetrics {
	if r == nil {
		return nil
	}
	var out []engine.RestoreMetrics
	for t, es := range r.byTask {
		for _, e := range es {
			if e.done || e.standby {
				continue
			}
			e.hist.add(now, e.Restored)
			rate := e.hist.rate(now, e.Restored)
			left := max(0, e.end-e.next)
			out = append(out, engine.RestoreMetrics{Store: e.ts.Spec.Name, Task: t.ID, Done: e.Restored, Left: left,
				RecordsPerSecond: rate, ETA: eta(left, rate)})
		}
	}
	slices.SortFunc(out, func(a, b engine.RestoreMetrics) int {
		if c := engine.CompareTaskIDs(a.Task, b.Task); c != 0 {
			return c
		}
		return strings.Compare(a.Store, b.Store)
	})
	return out
}

// applyLocked applies one changelog record to the engine store of its
// entry.
func (r *restorer) applyLocked(rec *kgo.Record) error {
	e := r.entries[wire.TopicPartition{Topic: rec.Topic, Partition: rec.Partition}]
	if e == nil || e.done || rec.Offset < e.next {
		return nil // a partition no longer restored here, or seen already
	}
	e.next = rec.Offset + 1
	e.ts.RestoredTo = e.next
	e.moved = true
	if rec.Attrs.IsControl() {
		return nil
	}
	var err error
	if rec.Value == nil {
		err = e.ts.Engine.Delete(rec.Key)
	} else {
		err = e.ts.Engine.Put(rec.Key, rec.Value)
	}
	if err != nil {
		return fmt.Errorf("kstream: task %s: restore store %q from %s offset %d: %w", e.t.ID, e.ts.Spec.Name, e.tp, rec.Offset, err)
	}
	e.Restored++
	if !e.standby {
		r.w.Env.Counters.Restored.Add(1)
	}
	return nil
}

// commitLocked commits, in each transactional store that a restore step
// moved, the records it applied together with the offset they reach, so
// the store on disk stays a committed state with its offset (a crash
// during a long restore resumes it from there).
func (r *restorer) commitLocked() error {
	for _, e := range r.entries {
		if !e.moved {
			continue
		}
		e.moved = false
		st := txnStore(e.ts)
		if st == nil {
			continue
		}
		if err := commitStore(st, e.tp, e.next, true); err != nil {
			return fmt.Errorf("kstream: task %s: restore store %q from %s: commit at offset %d: %w", e.t.ID, e.ts.Spec.Name, e.tp, e.next, err)
		}
		e.ts.Checkpointed = e.next
	}
	return nil
}

// initPendingLocked reads the changelog offsets of the pending tasks and
// registers what they must restore. Offsets that are not available yet
// (a changelog just created) are asked again after restoreRetry.
func (r *restorer) initPendingLocked() error {
	var topics []string
	for _, t := range r.pending {
		for _, ts := range t.StateStores {
			if ts.Logged != nil && !slices.Contains(topics, ts.Changelog.Topic) {
				topics = append(topics, ts.Changelog.Topic)
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), commit.Timeout)
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
		if commit.IsFatal(err) {
			return fmt.Errorf("kstream: restore: list changelog offsets: %w", err)
		}
		r.w.Logger.Debug("kstream: changelog offsets not available yet; retrying", "topics", topics, "err", err)
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
	ckpt := readCheckpoint(t)
	standby := r.standby[t]
	es := []*restoreEntry{}
	for _, ts := range t.StateStores {
		if ts.Logged == nil {
			continue
		}
		start, ok1 := starts.Lookup(ts.Changelog.Topic, ts.Changelog.Partition)
		end, ok2 := ends.Lookup(ts.Changelog.Topic, ts.Changelog.Partition)
		if !ok1 || !ok2 {
			return fmt.Errorf("%w: changelog %s of store %q has no partition %d", engine.ErrInternalTopic, ts.Changelog.Topic, ts.Spec.Name, ts.Changelog.Partition)
		}
		from, ok := ckpt[ts.Changelog]
		if !ts.Persistent || !ok || from < start.Offset || from > end.Offset {
			if ts.Persistent && hasData(ts.Engine) {
				if ok {
					w.Logger.Warn("kstream: checkpoint outside the changelog's range; wiping the store", "task", t.ID.String(), "store", ts.Spec.Name,
						"checkpoint", from, "log_start", start.Offset, "log_end", end.Offset)
				}
				if err := wipeStore(t, ts); err != nil {
					return err
				}
			}
			if ts.Persistent && !ok && !standby && end.Offset > start.Offset {
				w.Logger.Info("kstream: store has no checkpoint (new here, deleted, damaged or unreadable); restoring it in full", "task", t.ID.String(), "store", ts.Spec.Name,
					"changelog", ts.Changelog.String(), "records", end.Offset-start.Offset)
			}
			from = start.Offset
		}
		ts.RestoredTo = from
		e := &restoreEntry{t: t, ts: ts, tp: ts.Changelog, from: from, next: from, end: end.Offset, Started: time.Now(), hwm: end.Offset}
		e.hist.add(e.Started, 0)
		es = append(es, e)
		if standby {
			// A standby reads on, without end.
			e.standby, e.end = true, math.MaxInt64
			w.Logger.Info("kstream: standby reading changelog", "task", t.ID.String(), "store", ts.Spec.Name, "changelog", ts.Changelog.String(),
				"from", from, "lag", end.Offset-from)
		} else if from >= end.Offset {
			e.done = true
			continue
		}
		if !standby {
			w.Logger.Info("kstream: restoring store", "task", t.ID.String(), "store", ts.Spec.Name, "changelog", ts.Changelog.String(),
				"from", from, "to", end.Offset, "records_left", end.Offset-from)
		}
		r.entries[ts.Changelog] = e
		if add[ts.Changelog.Topic] == nil {
			add[ts.Changelog.Topic] = map[int32]kgo.Offset{}
		}
		add[ts.Changelog.Topic][ts.Changelog.Partition] = kgo.NewOffset().At(from)
	}
	if standby {
		r.standbys[t] = es
		// Its stores are final now (a wipe above replaces them): stale
		// reads may read them.
		lag := new(atomic.Int64)
		lag.Store(standbyLag(es))
		r.lags[t] = lag
		w.app.queries.RegisterStandby(t, lag)
	} else {
		r.byTask[t] = es
	}
	return nil
}

// checkpointStandbysLocked writes the checkpoint of each standby whose
// stores moved standbyCheckpointEvery records past their last one.
func (r *restorer) checkpointStandbysLocked() error {
	for t, es := range r.standbys {
		for _, e := range es {
			if e.ts.Persistent && e.next-max(e.ts.Checkpointed, e.from) >= standbyCheckpointEvery {
				if err := writeCheckpoint(t); err != nil {
					return err
				}
				break
			}
		}
	}
	return nil
}

// standbyLagLocked returns, per standby task, how many changelog records
// it is behind the end of its changelogs as of the latest fetch.
func (r *restorer) standbyLagLocked() map[engine.TaskID]int64 {
	if r == nil || len(r.standbys) == 0 {
		return nil
	}
	out := make(map[engine.TaskID]int64, len(r.standbys))
	for t, es := range r.standbys {
		out[t.ID] = standbyLag(es)
	}
	return out
}

// standbyLag sums how far a standby's entries are behind the ends of
// their changelogs as of the latest fetch.
func standbyLag(es []*restoreEntry) int64 {
	var lag int64
	for _, e := range es {
		lag += max(0, e.hwm-e.next)
	}
	return lag
}

// doneLocked finishes restoring one store.
func (r *restorer) doneLocked(e *restoreEntry) {
	e.done = true
	delete(r.entries, e.tp)
	r.client.RemoveConsumePartitions(map[string][]int32{e.tp.Topic: {e.tp.Partition}})
	el := time.Since(e.Started)
	r.w.Logger.Info("kstream: restored store", "task", e.t.ID.String(), "store", e.ts.Spec.Name, "records", e.Restored,
		"to", e.next, "took", el.Round(time.Millisecond), "records_per_sec", int64(float64(e.Restored)/max(el.Seconds(), 1e-3)))
}

// remainingLocked returns how many changelog records the restoring tasks
// still have to read, and the restoring tasks.
func (r *restorer) remainingLocked() (int64, []engine.TaskID) {
	if r == nil {
		return 0, nil
	}
	var n int64
	var ids []engine.TaskID
	for t, es := range r.byTask {
		ids = append(ids, t.ID)
		for _, e := range es {
			if !e.done {
				n += max(0, e.end-e.next)
			}
		}
	}
	for _, t := range r.pending {
		ids = append(ids, t.ID)
	}
	slices.SortFunc(ids, engine.CompareTaskIDs)
	return n, ids
}

// finishRestoreLocked starts a restored task: its input resumes, its nodes
// are initialized and its stores become queryable.
func (w *worker) finishRestoreLocked(t *task) error {
	var n int64
	for _, e := range w.restore.byTask[t] {
		n += e.Restored
	}
	delete(w.restore.byTask, t)
	if err := w.startTaskLocked(t); err != nil {
		return err
	}
	w.resumeRestoredLocked(t)
	w.Logger.Info("kstream: task restored; processing", "task", t.ID.String(), "records", n)
	w.publishStatsLocked()
	return nil
}

// wipeStore deletes an on-disk store's data: closes it, destroys its
// directory and opens it again, empty.
func wipeStore(t *task, ts *taskStore) error {
	if err := ts.Engine.Close(); err != nil {
		return fmt.Errorf("kstream: task %s: wipe store %q: %w", t.ID, ts.Spec.Name, err)
	}
	if err := t.Env.State.Destroy(ts.Dir); err != nil {
		return fmt.Errorf("kstream: task %s: wipe store %q: %w", t.ID, ts.Spec.Name, err)
	}
	st, _, err := t.Env.State.Open(t.ID, ts.Spec)
	if err != nil {
		return err
	}
	ts.Engine = st
	if ts.Logged != nil {
		ts.Logged.Store = st
	}
	if ts.Cache != nil && ts.Logged == nil {
		ts.Cache.SetInner(st)
	}
	if ts.Logged == nil && ts.Cache == nil {
		ts.Top = st
	}
	ts.Checkpointed = -1
	return nil
}

// hasData reports whether st holds any key.
func hasData(st state.Store) bool {
	it := st.All()
	ok := it.Next()
	_ = it.Close()
	return ok
}
