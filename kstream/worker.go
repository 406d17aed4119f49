package kstream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

const (
	// batchPerTask bounds the records one task processes per round, so one
	// busy task cannot starve the others of its worker.
	batchPerTask = 100
	// maxPollWait bounds how long a worker waits in a poll that has nothing
	// to return.
	maxPollWait = 100 * time.Millisecond
	// statsInterval is how often a worker refreshes its Metrics snapshot.
	statsInterval = 100 * time.Millisecond
	// defaultFetchMaxWait is how long the broker may hold a worker's fetch
	// when it has nothing to return (Kafka's fetch.max.wait.ms default).
	defaultFetchMaxWait = 500 * time.Millisecond
)

// topicPartition names one partition of a topic.
type topicPartition struct {
	topic     string
	partition int32
}

// worker is one member of the application's consumer group: one kgo.Client
// that consumes the partitions of the worker's tasks and produces their
// output, and one goroutine (run) that owns the tasks.
//
// Goroutines and locks. The worker goroutine holds mu at all times except
// while it polls (AllowRebalance then PollFetches). kgo calls the rebalance
// callbacks (onAssigned, onRevoked, onLost) on its group goroutine; with
// BlockRebalanceOnPoll they can only run after AllowRebalance, and they
// take mu, so task state is only ever touched by one goroutine at a time
// and a callback never sees a task in the middle of a record. The callbacks
// may commit (CommitOffsetsSync) and flush: neither waits for mu. The
// worker never calls Close or LeaveGroup while holding mu, since leaving
// runs onRevoked and waits for it.
//
// State. The worker goroutine also owns the restore consumer (restore.go,
// a second client without group): it polls it outside mu in the same round
// as the group client, and applies what it returns under mu. Task stores
// are written only under mu (the task's records, cache flushes, restore);
// interactive queries read them concurrently through App.queries. Produce
// promises of changelog records only store an atomic offset
// (changelogStore.acked). Opening and closing stores goes through the
// App's shared pebble.Env, which is concurrency-safe.
//
// Lock order: mu, then any of prod.mu, stats (its embedded mutex),
// asyncMu, App.queries.mu and a record cache's mu: leaf locks, held for a
// few instructions, that never call out (queries.mu is also held by
// readers while they call a store's Get or open an iterator, which take
// only the store's own locks). kgo's produce promises take only prod.mu;
// the assignor (on the leader's group goroutine) only asyncMu;
// App.Metrics only stats.
type worker struct {
	idx    int
	app    *App
	cfg    *config
	topo   *Topology
	logger *slog.Logger
	client *kgo.Client
	env    *taskEnv
	prod   producer
	subOf  map[string]*subtopology // source topic => its sub-topology
	// repartition has the full names of the repartition topics the
	// topology reads: purged after commits.
	repartition map[string]bool

	// asyncErr is the first fatal error raised off the worker goroutine
	// outside a rebalance callback (by the assignor, on the group goroutine
	// of the leader).
	asyncMu  sync.Mutex
	asyncErr error

	mu         sync.Mutex
	tasks      map[TaskID]*task
	order      []*task // tasks sorted by id: the round-robin order
	rr         int     // where the next processing round starts in order
	assigned   map[string]map[int32]bool
	paused     map[topicPartition]bool
	hwm        map[topicPartition]int64 // high watermarks from the latest fetches
	amoPending map[string]map[int32]kgo.EpochOffset
	// restore restores the stores of new tasks (nil when the topology
	// has no changelogged store); restorePaused are the input partitions
	// paused while their task restores.
	restore       *restorer
	restorePaused map[topicPartition]bool
	closing       bool  // shutting down: create no more tasks
	failure       error // first fatal error, possibly raised in a callback
	lastCommit    time.Time
	lastStats     time.Time

	// Exactly-once (txn.go). eos: the guarantee is ExactlyOnce; sess is
	// the client's transact session. inTxn: a transaction is begun.
	// doomed: partitions were revoked or lost while it was open, so it
	// must abort. positions: per assigned partition, where to rewind it
	// after an abort (its committed offset, or the first offset fetched
	// since it was assigned). rebalances (under asyncMu) are the revokes
	// and losses the session's callbacks reported, not yet applied.
	eos        bool
	sess       *kgo.GroupTransactSession
	inTxn      bool
	doomed     bool
	positions  map[topicPartition]kgo.EpochOffset
	rebalances []rebalanceEvent

	stats struct {
		sync.Mutex
		tasks []TaskID
		lag   map[string]map[int32]int64
		// restoring tasks and the changelog records they have left
		restoring []TaskID
		remaining int64
	}
}

// newWorker makes worker idx of app and its client. The client does not
// connect before the worker runs.
func newWorker(a *App, idx int) (*worker, error) {
	cfg := &a.cfg
	w := &worker{
		app:           a,
		restorePaused: make(map[topicPartition]bool),
		idx:           idx,
		cfg:           cfg,
		topo:          a.topo,
		logger:        cfg.logger.With("instance", cfg.instanceID, "worker", idx),
		subOf:         make(map[string]*subtopology),
		tasks:         make(map[TaskID]*task),
		assigned:      make(map[string]map[int32]bool),
		paused:        make(map[topicPartition]bool),
		hwm:           make(map[topicPartition]int64),
		amoPending:    make(map[string]map[int32]kgo.EpochOffset),
		positions:     make(map[topicPartition]kgo.EpochOffset),
	}
	w.repartition = make(map[string]bool)
	for _, st := range a.topo.subs {
		for i, tp := range st.sourceTopics(cfg.appID) {
			w.subOf[tp] = st
			if st.internal[st.topics[i]] {
				w.repartition[tp] = true
			}
		}
	}
	w.env = &taskEnv{
		appID:     cfg.appID,
		logger:    w.logger,
		collector: w,
		metrics:   a.metrics,
		now:       time.Now,
		onDeser:   cfg.onDeser,
		onProcess: cfg.onProcess,
		onProduce: cfg.onProduce,
		topo:      a.topo,
		state:     a.state,
		globals:   a.globalStores(),
	}
	if cfg.cacheMaxBytes > 0 {
		// One budget per worker, as Kafka Streams splits
		// statestore.cache.max.bytes between its stream threads.
		w.env.cache = &cacheBudget{max: cfg.cacheMaxBytes / int64(cfg.workers)}
	}
	// The group client starts joining as soon as it is made, and its
	// callbacks take mu: hold it until the worker is complete.
	w.mu.Lock()
	defer w.mu.Unlock()
	w.eos = cfg.guarantee == ExactlyOnce
	w.prod.metrics = a.metrics
	if err := w.newGroupClient(); err != nil {
		return nil, err
	}
	cl := w.client
	if hasChangelogs(a.topo) {
		rcl, err := kgo.NewClient(append(adminOpts(cfg, w.logger),
			kgo.ClientID(fmt.Sprintf("%s-%s-w%d-restore", cfg.appID, cfg.instanceID, idx)),
			kgo.FetchIsolationLevel(kgo.ReadCommitted()),
			kgo.KeepControlRecords(),
		)...)
		if err != nil {
			cl.Close()
			return nil, fmt.Errorf("%w: worker %d restore client: %v", ErrConfig, idx, err)
		}
		w.restore = newRestorer(w, rcl)
	}
	return w, nil
}

// newGroupClient makes the worker's group client (the consumer group
// member and the producer of its tasks) and points the producer and the
// restorer's admin client at it: when the worker starts, and again when an
// exactly-once worker restarts after a fencing. Under exactly-once the
// client is a kgo.GroupTransactSession's, with the transactional id
// "<application id>-<instance id>-<worker index>"; its revoke and loss
// callbacks only record what happened (see onRevokedTxn).
func (w *worker) newGroupClient() error {
	cfg := w.cfg
	bal := newAssignor(w.topo, cfg.appID, memberInfo{version: userDataVersion, instanceID: cfg.instanceID, worker: w.idx}, w.logger, w.setAsyncErr)
	// Defaults the user's options may override: Kafka's own consumer
	// default fetch wait (kgo's is 5s, which a partition resumed after
	// backpressure or restore would wait out when the fetch in flight
	// does not include it), and under exactly-once the transaction
	// timeout.
	opts := []kgo.Opt{kgo.WithLogger(newKgoLogger(w.logger)), kgo.FetchMaxWait(defaultFetchMaxWait)}
	if w.eos {
		opts = append(opts, kgo.TransactionTimeout(defaultTransactionTimeout))
	}
	opts = append(opts, cfg.clientOpts...)
	onRevoked, onLost := w.onRevoked, w.onLost
	if w.eos {
		onRevoked, onLost = w.onRevokedTxn, w.onLostTxn
	}
	// The runtime's options come last, so they override the user's.
	opts = append(opts,
		kgo.SeedBrokers(cfg.brokers...),
		kgo.ClientID(fmt.Sprintf("%s-%s-w%d", cfg.appID, cfg.instanceID, w.idx)),
		kgo.ConsumerGroup(cfg.appID),
		kgo.ConsumeTopics(w.topo.sourceTopicsFor(cfg.appID)...),
		kgo.Balancers(bal),
		kgo.DisableAutoCommit(),
		kgo.OnPartitionsAssigned(w.onAssigned),
		kgo.OnPartitionsRevoked(onRevoked),
		kgo.OnPartitionsLost(onLost),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// Transaction markers come as control records, so that the
		// committed offset of a partition can move past the markers
		// after its last records (task.add).
		kgo.KeepControlRecords(),
		kgo.RecordPartitioner(newPartitioner()),
		kgo.RequiredAcks(kgo.AllISRAcks()),
	)
	if !w.eos {
		// Callbacks run only between polls (they take mu anyway).
		// Not under exactly-once: the session's End, under mu, may wait
		// for a heartbeat that kgo's group loop sends only after it ran
		// onLost, which BlockRebalanceOnPoll would hold until the next
		// AllowRebalance (so End would wait out its context). There the
		// revoke and loss callbacks take no lock the worker holds, and
		// onAssigned takes mu, so no callback sees a task mid-record.
		opts = append(opts, kgo.BlockRebalanceOnPoll())
	}
	if w.eos {
		// Exactly-once v2 (KIP-447): one transactional producer per
		// worker; the input offsets are committed inside its
		// transactions with the group's generation (commitTxnLocked).
		// kgo always fetches offsets with RequireStable, so a new owner
		// of a partition waits for a transaction that committed offsets
		// for it to end.
		opts = append(opts, kgo.TransactionalID(transactionalID(cfg.appID, cfg.instanceID, w.idx)))
		sess, err := kgo.NewGroupTransactSession(opts...)
		if err != nil {
			return fmt.Errorf("%w: worker %d client: %v", ErrConfig, w.idx, err)
		}
		w.sess, w.client = sess, sess.Client()
	} else {
		cl, err := kgo.NewClient(opts...)
		if err != nil {
			return fmt.Errorf("%w: worker %d client: %v", ErrConfig, w.idx, err)
		}
		w.client = cl
	}
	w.prod.client = w.client
	if w.restore != nil {
		w.restore.adm = kadm.NewClient(w.client)
	}
	return nil
}

// hasChangelogs reports whether some store of t that a task holds has a
// changelog.
func hasChangelogs(t *Topology) bool {
	for name, s := range t.stores {
		if s.changelog && t.storeSub[name] != nil {
			return true
		}
	}
	return false
}

// close releases the worker's clients; the group client is closed by run.
func (w *worker) closeRestore() {
	if w.restore != nil {
		w.restore.client.Close()
	}
}

// checkClientOpts rejects user ClientOpts that the runtime's own options
// cannot override but that break it. It reads them from a client that has
// no topics and no group, so it neither connects nor joins anything.
func checkClientOpts(cfg *config) error {
	opts := append(slices.Clone(cfg.clientOpts), kgo.SeedBrokers(cfg.brokers...), kgo.ConsumeTopics(), kgo.ConsumerGroup(""))
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("%w: ClientOpts: %v", ErrConfig, err)
	}
	defer cl.Close()
	switch {
	case cl.OptValue(kgo.DisableIdempotentWrite) == true:
		return fmt.Errorf("%w: ClientOpts must not disable idempotent writes", ErrConfig)
	case cl.OptValue(kgo.ConsumeRegex) == true:
		return fmt.Errorf("%w: ClientOpts must not set ConsumeRegex: the runtime consumes the topology's topics", ErrConfig)
	case cl.OptValue(kgo.TransactionalID) != "":
		return fmt.Errorf("%w: ClientOpts must not set a TransactionalID: the runtime owns transactions", ErrConfig)
	case cl.OptValue(kgo.BlockRebalanceOnPoll) == true:
		return fmt.Errorf("%w: ClientOpts must not set BlockRebalanceOnPoll: the runtime decides when rebalance callbacks run", ErrConfig)
	case cl.OptValue(kgo.InstanceID) != "":
		return fmt.Errorf("%w: ClientOpts must not set a group InstanceID: every worker is its own member (use the InstanceID option to name the instance)", ErrConfig)
	}
	return nil
}

// run is the worker goroutine: it polls, routes records to tasks, processes
// them, punctuates and commits until ctx ends or something fails. Then it
// shuts down (a clean shutdown commits; a failure does not), leaves the
// group and closes the client. It returns nil after a clean shutdown.
func (w *worker) run(ctx context.Context) error {
	w.mu.Lock()
	w.lastCommit = time.Now()
	var err error
	for {
		err = w.loopLocked(ctx)
		if !needsRestart(err) {
			break
		}
		// Exactly-once: the producer was fenced or failed.
		if err = w.restartLocked(ctx, err); err != nil {
			break
		}
	}
	if err == nil {
		err = w.shutdownLocked()
	} else {
		// No commit: offsets stay before the failed record.
		if w.eos {
			w.abortQuietlyLocked()
		}
		w.closeTasksLocked(w.order, "failure")
	}
	w.closing = true
	w.publishStatsLocked()
	w.mu.Unlock()
	// Leaving the group runs onRevoked, which takes mu: never hold it here.
	w.client.CloseAllowingRebalance()
	w.closeRestore()
	if err != nil {
		w.logger.Error("kstream: worker stopped", "err", err)
	} else {
		w.logger.Info("kstream: worker stopped")
	}
	return err
}

func (w *worker) loopLocked(ctx context.Context) error {
	for {
		if err := w.checkFailureLocked(); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
		if w.eos {
			// Before anything of this round is produced.
			if err := w.beginLocked(); err != nil {
				return err
			}
		}
		pollCtx, cancel := w.pollContextLocked(ctx)
		restoring := w.restore.active()
		w.mu.Unlock()
		w.client.AllowRebalance() // rebalance callbacks may run now
		var fetches, restored kgo.Fetches
		if restoring {
			// The wait, if any, is spent in the restore poll: processing
			// never waits for restoring, nor restoring for processing.
			fetches = w.client.PollFetches(nil)
			rctx := pollCtx
			if !fetches.Empty() {
				rctx = nil
			}
			restored = w.restore.poll(rctx)
		} else {
			fetches = w.client.PollFetches(pollCtx)
		}
		w.mu.Lock()
		cancel()
		if err := w.checkFailureLocked(); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return nil // the records just polled are not processed, nor committed
		}
		if err := w.fetchErrors(fetches); err != nil {
			return err
		}
		if w.eos {
			w.notePositionsLocked(fetches)
			w.applyRebalancesLocked()
			if w.doomed {
				if err := w.abortLocked("partitions were revoked or lost"); err != nil {
					return err
				}
				// Fetched from before the rewind: fetched again.
				fetches = nil
				if err := w.beginLocked(); err != nil {
					return err
				}
			}
		}
		w.routeLocked(fetches)
		if err := w.restoreLocked(restored); err != nil {
			return err
		}
		if w.cfg.guarantee == AtMostOnce {
			if err := w.commitFetchedLocked(); err != nil {
				return err
			}
		}
		if err := w.processLocked(); err != nil {
			return err
		}
		for _, t := range w.order {
			if !t.started {
				continue
			}
			if err := t.punctuateWallClock(); err != nil {
				return err
			}
		}
		if _, err := w.settleLocked(); err != nil {
			return err
		}
		if now := time.Now(); now.Sub(w.lastCommit) >= w.cfg.commitInterval {
			if err := w.commitLocked(w.order); err != nil {
				return err
			}
			w.lastCommit = now
		}
		if time.Since(w.lastStats) >= statsInterval {
			w.publishStatsLocked()
		}
	}
}

// pollContextLocked returns the context of the next poll: nil when a task
// has records to process, else one that ends when the next commit or
// wall-clock punctuation is due, after maxPollWait at most, or with ctx.
//
// A nil context makes kgo's PollFetches return at once with whatever it has
// buffered; a cancelled one would return only the context error, without
// the buffered records.
func (w *worker) pollContextLocked(ctx context.Context) (context.Context, context.CancelFunc) {
	noop := func() {}
	if w.canProcessLocked() {
		for _, t := range w.order {
			if t.started && t.totalBuffered() > 0 {
				return nil, noop
			}
		}
	}
	now := time.Now()
	wait := min(maxPollWait, w.lastCommit.Add(w.cfg.commitInterval).Sub(now))
	for _, t := range w.order {
		if next, ok := t.nextWallClockPunctuation(); ok {
			wait = min(wait, time.UnixMilli(next).Sub(now))
		}
	}
	if wait <= 0 {
		return nil, noop
	}
	return context.WithTimeout(ctx, wait)
}

// fetchErrors logs the errors of a poll and returns the first fatal one.
func (w *worker) fetchErrors(fs kgo.Fetches) error {
	for _, fe := range fs.Errors() {
		switch {
		case errors.Is(fe.Err, context.Canceled), errors.Is(fe.Err, context.DeadlineExceeded):
			// our own poll deadline
		case isFatalKafkaError(fe.Err):
			return fmt.Errorf("kstream: fetch topic %q partition %d: %w", fe.Topic, fe.Partition, fe.Err)
		default:
			w.logger.Warn("kstream: fetch error", "topic", fe.Topic, "partition", fe.Partition, "err", fe.Err)
		}
	}
	return nil
}

// routeLocked buffers each fetched record in its task and pauses the
// partitions whose buffer is full.
func (w *worker) routeLocked(fs kgo.Fetches) {
	fs.EachPartition(func(p kgo.FetchTopicPartition) {
		if len(p.Records) == 0 {
			return
		}
		tp := topicPartition{p.Topic, p.Partition}
		t := w.taskForLocked(p.Topic, p.Partition)
		if t == nil {
			// The balancer assigns all partitions of a task together, so
			// this is a partition of a task this worker does not run; its
			// offsets are never committed here.
			w.logger.Warn("kstream: dropping records of a partition without a task", "topic", p.Topic, "partition", p.Partition, "records", len(p.Records))
			return
		}
		w.hwm[tp] = p.HighWatermark
		n := 0
		for _, r := range p.Records {
			n = t.add(r)
		}
		if w.cfg.guarantee == AtMostOnce {
			last := p.Records[len(p.Records)-1]
			if w.amoPending[p.Topic] == nil {
				w.amoPending[p.Topic] = make(map[int32]kgo.EpochOffset)
			}
			w.amoPending[p.Topic][p.Partition] = kgo.EpochOffset{Epoch: last.LeaderEpoch, Offset: last.Offset + 1}
		}
		if n >= w.cfg.maxBuffered && !w.paused[tp] {
			w.client.PauseFetchPartitions(map[string][]int32{p.Topic: {p.Partition}})
			w.paused[tp] = true
			w.env.metrics.addPaused(1)
			w.logger.Debug("kstream: paused fetching a full partition", "topic", p.Topic, "partition", p.Partition, "buffered", n)
		}
	})
}

func (w *worker) taskForLocked(topic string, partition int32) *task {
	st := w.subOf[topic]
	if st == nil {
		return nil
	}
	return w.tasks[TaskID{Subtopology: st.id, Partition: partition}]
}

// canProcessLocked reports whether buffered records may be processed: not
// under at-most-once while fetched offsets wait to be committed.
func (w *worker) canProcessLocked() bool {
	return w.cfg.guarantee != AtMostOnce || len(w.amoPending) == 0
}

// processLocked runs one round: up to batchPerTask records of each task,
// starting one task further each round, then resumes partitions that
// drained below half of BufferedRecordsPerPartition.
func (w *worker) processLocked() error {
	if !w.canProcessLocked() {
		return nil
	}
	n := len(w.order)
	for i := range n {
		t := w.order[(w.rr+i)%n]
		if !t.started || t.totalBuffered() == 0 {
			continue
		}
		if _, err := t.process(batchPerTask); err != nil {
			return err
		}
		w.resumeDrainedLocked(t)
	}
	if n > 0 {
		w.rr = (w.rr + 1) % n
	}
	return nil
}

func (w *worker) resumeDrainedLocked(t *task) {
	for _, q := range t.queues {
		tp := topicPartition{q.topic, q.partition}
		if w.paused[tp] && 2*q.len() < w.cfg.maxBuffered {
			w.unpauseLocked(tp)
		}
	}
}

func (w *worker) unpauseLocked(tp topicPartition) {
	if !w.restorePaused[tp] {
		w.client.ResumeFetchPartitions(map[string][]int32{tp.topic: {tp.partition}})
	}
	delete(w.paused, tp)
	w.env.metrics.addPaused(-1)
}

// pauseForRestoreLocked pauses the input partitions of a task that is
// restoring. Records already buffered stay in the task.
func (w *worker) pauseForRestoreLocked(t *task) {
	ps := map[string][]int32{}
	for _, q := range t.queues {
		w.restorePaused[topicPartition{q.topic, q.partition}] = true
		ps[q.topic] = append(ps[q.topic], q.partition)
	}
	w.client.PauseFetchPartitions(ps)
}

// resumeRestoredLocked resumes the input of a restored task, except the
// partitions paused for backpressure.
func (w *worker) resumeRestoredLocked(t *task) {
	ps := map[string][]int32{}
	for _, q := range t.queues {
		tp := topicPartition{q.topic, q.partition}
		delete(w.restorePaused, tp)
		if !w.paused[tp] {
			ps[q.topic] = append(ps[q.topic], q.partition)
		}
	}
	w.client.ResumeFetchPartitions(ps)
}

// onAssigned is kgo's OnPartitionsAssigned callback (group goroutine). It
// creates the tasks whose partitions are now all assigned. Under
// exactly-once it first applies the revokes and losses reported before (see
// applyRebalancesLocked).
func (w *worker) onAssigned(_ context.Context, _ *kgo.Client, assigned map[string][]int32) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.eos {
		w.applyRebalancesLocked()
	}
	for tp, ps := range assigned {
		if w.assigned[tp] == nil {
			w.assigned[tp] = make(map[int32]bool)
		}
		for _, p := range ps {
			w.assigned[tp][p] = true
		}
	}
	if w.closing || w.failure != nil {
		return
	}
	if w.eos {
		w.dropStaleTasksLocked(assigned)
	}
	if err := w.createTasksLocked(assigned); err != nil {
		w.setFailureLocked(err)
	}
}

// dropStaleTasksLocked closes, dirty, the tasks of newly assigned
// partitions that still run: kgo assigns a member only partitions it does
// not own, so such a task outlived a revoke the transact session did not
// report (it reports one per transaction), and its state may be stale. It
// is made again from its changelogs; the open transaction aborts.
func (w *worker) dropStaleTasksLocked(assigned map[string][]int32) {
	var stale []*task
	for tp, ps := range assigned {
		st := w.subOf[tp]
		if st == nil {
			continue
		}
		for _, p := range ps {
			if t := w.tasks[TaskID{Subtopology: st.id, Partition: p}]; t != nil && !slices.Contains(stale, t) {
				stale = append(stale, t)
			}
		}
	}
	if len(stale) == 0 {
		return
	}
	slices.SortFunc(stale, func(a, b *task) int { return compareTaskIDs(a.id, b.id) })
	for _, t := range stale {
		t.txnDirty = true
	}
	w.logger.Warn("kstream: tasks assigned again while they still run; closing them dirty", "tasks", len(stale))
	w.closeTasksTxnLocked(stale, "stale")
	w.doomed = true
}

// createTasksLocked opens the tasks of parts whose partitions are all
// assigned and that do not run yet: a task with changelogged stores waits
// for its restore (its input paused), the others start at once. Under
// exactly-once a task's checkpoint is removed when it starts (it is written
// again on a clean close only).
func (w *worker) createTasksLocked(parts map[string][]int32) error {
	var added []string
	defer func() {
		if len(added) > 0 {
			w.reorderLocked()
			slices.Sort(added)
			w.logger.Info("kstream: tasks assigned", "added", added, "tasks", len(w.tasks))
		}
	}()
	for tp, ps := range parts {
		st := w.subOf[tp]
		if st == nil {
			continue
		}
		for _, p := range ps {
			id := TaskID{Subtopology: st.id, Partition: p}
			if _, ok := w.tasks[id]; ok || !w.allAssignedLocked(st, p) {
				continue
			}
			t, err := openTask(id, st, w.env)
			if err != nil {
				return err
			}
			w.tasks[id] = t
			added = append(added, id.String())
			if w.restore != nil && t.needsRestore() {
				// Processing waits for the restore; the input waits too.
				w.restore.addLocked(t)
				w.pauseForRestoreLocked(t)
				continue
			}
			if err := w.startTaskLocked(t); err != nil {
				delete(w.tasks, id)
				return err
			}
		}
	}
	return nil
}

// startTaskLocked starts a task (restored, if it had to be) and makes its
// stores queryable. Under exactly-once it removes the task's checkpoint
// first: from now on its stores hold writes that are not committed yet.
func (w *worker) startTaskLocked(t *task) error {
	if w.eos {
		if err := t.removeCheckpoint(); err != nil {
			return err
		}
	}
	if err := t.start(); err != nil {
		return err
	}
	w.app.queries.register(t)
	return nil
}

func (w *worker) allAssignedLocked(st *subtopology, p int32) bool {
	for _, tp := range st.sourceTopics(w.cfg.appID) {
		if !w.assigned[tp][p] {
			return false
		}
	}
	return true
}

// onRevoked is kgo's OnPartitionsRevoked callback (group goroutine): the
// tasks of the revoked partitions are committed and closed (revokeLocked)
// before their partitions go to another member.
func (w *worker) onRevoked(_ context.Context, _ *kgo.Client, revoked map[string][]int32) {
	w.mu.Lock()
	defer w.mu.Unlock()
	tasks := w.unassignLocked(revoked)
	w.revokeLocked(tasks)
}

// onLost is kgo's OnPartitionsLost callback (group goroutine): the member
// lost its partitions without a clean revoke (session expired, fenced), so
// their tasks close without committing; the new owners start from the last
// commit.
func (w *worker) onLost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	w.mu.Lock()
	defer w.mu.Unlock()
	tasks := w.unassignLocked(lost)
	if len(tasks) > 0 {
		w.logger.Warn("kstream: partitions lost; closing their tasks without committing", "tasks", len(tasks))
	}
	w.closeTasksLocked(tasks, "lost")
}

// unassignLocked forgets partitions and returns the tasks that used them.
func (w *worker) unassignLocked(parts map[string][]int32) []*task {
	var tasks []*task
	for tp, ps := range parts {
		st := w.subOf[tp]
		for _, p := range ps {
			delete(w.assigned[tp], p)
			if st == nil {
				continue
			}
			if t := w.tasks[TaskID{Subtopology: st.id, Partition: p}]; t != nil && !slices.Contains(tasks, t) {
				tasks = append(tasks, t)
			}
		}
	}
	slices.SortFunc(tasks, func(a, b *task) int { return compareTaskIDs(a.id, b.id) })
	return tasks
}

// closeTasksLocked closes tasks and forgets them and their partitions'
// fetch state (pauses, watermarks, pending at-most-once commits).
func (w *worker) closeTasksLocked(tasks []*task, why string) {
	if len(tasks) == 0 {
		return
	}
	tasks = slices.Clone(tasks) // may alias w.order, which reorderLocked rewrites
	removed := make([]string, 0, len(tasks))
	for _, t := range tasks {
		w.restore.forgetLocked(t)
		w.app.queries.deregister(t)
		if err := t.close(); err != nil {
			w.logger.Warn("kstream: closing task failed", "task", t.id.String(), "err", err)
		}
		for _, q := range t.queues {
			tp := topicPartition{q.topic, q.partition}
			if w.paused[tp] {
				w.unpauseLocked(tp)
			}
			if w.restorePaused[tp] {
				delete(w.restorePaused, tp)
				w.client.ResumeFetchPartitions(map[string][]int32{tp.topic: {tp.partition}})
			}
			delete(w.hwm, tp)
			delete(w.amoPending[q.topic], q.partition)
			if len(w.amoPending[q.topic]) == 0 {
				delete(w.amoPending, q.topic)
			}
		}
		delete(w.tasks, t.id)
		removed = append(removed, t.id.String())
	}
	w.reorderLocked()
	w.logger.Info("kstream: tasks removed", "why", why, "removed", removed, "tasks", len(w.tasks))
	w.publishStatsLocked()
}

func (w *worker) reorderLocked() {
	w.order = w.order[:0]
	for _, t := range w.tasks {
		w.order = append(w.order, t)
	}
	slices.SortFunc(w.order, func(a, b *task) int { return compareTaskIDs(a.id, b.id) })
	w.rr = 0
	w.publishStatsLocked()
}

// setFailureLocked records the first fatal error; the worker goroutine
// stops at its next check.
func (w *worker) setFailureLocked(err error) {
	if w.failure == nil {
		w.failure = err
	}
}

// setAsyncErr records a fatal error from a goroutine that cannot take mu.
func (w *worker) setAsyncErr(err error) {
	w.asyncMu.Lock()
	defer w.asyncMu.Unlock()
	if w.asyncErr == nil {
		w.asyncErr = err
	}
}

func (w *worker) checkFailureLocked() error {
	if w.failure != nil {
		return w.failure
	}
	w.asyncMu.Lock()
	defer w.asyncMu.Unlock()
	w.failure = w.asyncErr
	return w.failure
}

// publishStatsLocked refreshes the snapshot App.Metrics reads.
func (w *worker) publishStatsLocked() {
	w.lastStats = time.Now()
	ids := make([]TaskID, 0, len(w.order))
	lag := make(map[string]map[int32]int64)
	for _, t := range w.order {
		ids = append(ids, t.id)
		for _, q := range t.queues {
			hwm, ok := w.hwm[topicPartition{q.topic, q.partition}]
			next := t.nextOffset(q.topic)
			if !ok || next < 0 {
				continue
			}
			if lag[q.topic] == nil {
				lag[q.topic] = make(map[int32]int64)
			}
			lag[q.topic][q.partition] = max(0, hwm-next)
		}
	}
	remaining, restoring := w.restore.remainingLocked()
	w.stats.Lock()
	w.stats.tasks, w.stats.lag = ids, lag
	w.stats.remaining, w.stats.restoring = remaining, restoring
	w.stats.Unlock()
}

// snapshot adds the worker's tasks and lag to m.
func (w *worker) snapshot(m *Metrics) {
	w.stats.Lock()
	defer w.stats.Unlock()
	m.Tasks = append(m.Tasks, w.stats.tasks...)
	m.RestoringTasks = append(m.RestoringTasks, w.stats.restoring...)
	m.RestoreRemaining += w.stats.remaining
	for tp, ps := range w.stats.lag {
		if m.Lag[tp] == nil {
			m.Lag[tp] = make(map[int32]int64, len(ps))
		}
		for p, l := range ps {
			m.Lag[tp][p] = l
		}
	}
}

// partitioner writes a record to its Partition when that is set (>= 0) and
// otherwise partitions by key like Kafka's Java producer: murmur2 of the
// key, and sticky batches for records without a key.
type partitioner struct{ byKey kgo.Partitioner }

func newPartitioner() kgo.Partitioner {
	return partitioner{byKey: kgo.StickyKeyPartitioner(nil)}
}

// ForTopic implements kgo.Partitioner.
func (p partitioner) ForTopic(topic string) kgo.TopicPartitioner {
	return &topicPartitioner{byKey: p.byKey.ForTopic(topic)}
}

// topicPartitioner partitions the records of one topic. kgo calls it under
// a per-topic lock, first RequiresConsistency and then Partition for each
// record, and after OnNewBatch Partition again for the same record (by then
// kgo has set r.Partition to its first choice), so the decision whether a
// record had an explicit partition is taken once, at RequiresConsistency.
type topicPartitioner struct {
	byKey      kgo.TopicPartitioner
	cur        *kgo.Record
	explicit   bool // cur had Partition >= 0 when it arrived
	roundRobin bool // cur had Partition == partitionRoundRobin
	rrPick     int  // the partition picked for cur by round robin, or -1
	rrNext     int  // the next round-robin partition
}

// RequiresConsistency implements kgo.TopicPartitioner: records with an
// explicit partition or a key must go to exactly their partition.
func (p *topicPartitioner) RequiresConsistency(r *kgo.Record) bool {
	p.cur, p.explicit = r, r.Partition >= 0
	p.roundRobin, p.rrPick = r.Partition == partitionRoundRobin, -1
	return p.explicit || p.roundRobin || p.byKey.RequiresConsistency(r)
}

// Partition implements kgo.TopicPartitioner. For a record that requires
// consistency, kgo passes all n partitions in partition order, so the
// returned index is the partition number.
func (p *topicPartitioner) Partition(r *kgo.Record, n int) int {
	explicit := r.Partition >= 0
	if r == p.cur {
		explicit = p.explicit
	}
	if explicit {
		return int(r.Partition)
	}
	if r == p.cur && p.roundRobin {
		if p.rrPick < 0 {
			p.rrPick = p.rrNext % n
			p.rrNext++
		}
		return p.rrPick
	}
	return p.byKey.Partition(r, n)
}

// OnNewBatch implements kgo.TopicPartitionerOnNewBatch (for the sticky
// partitioning of records without a key).
func (p *topicPartitioner) OnNewBatch() {
	if nb, ok := p.byKey.(kgo.TopicPartitionerOnNewBatch); ok {
		nb.OnNewBatch()
	}
}
