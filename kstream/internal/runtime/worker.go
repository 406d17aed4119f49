package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamwork-go/streamwork/kstream/internal/cache"
	"github.com/streamwork-go/streamwork/kstream/internal/commit"
	"github.com/streamwork-go/streamwork/kstream/internal/engine"
	"github.com/streamwork-go/streamwork/kstream/internal/wire"
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
	// defaultFetchMaxPartitionBytes is how much a worker's fetch asks of
	// one partition (Kafka's max.partition.fetch.bytes is 1 MiB). A
	// partition's buffer may hold one fetch beyond
	// BufferedRecordsPerPartition (gateLocked); smaller fetches hold less
	// memory, larger ones take fewer round trips. On the W1 benchmark (1M
	// records of 100 bytes, 6 partitions, medians of 4 runs, measured
	// while full partitions were still paused in the client) 1 MiB gave
	// 350k rec/s at 158-245 MiB peak RSS, 512 KiB 333k at 99-136 MiB,
	// 256 KiB 306k at 74-109.
	defaultFetchMaxPartitionBytes = 512 << 10
)

// topicPartition names one partition of a topic.
type topicPartition struct {
	Topic     string
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
// The worker goroutine starts the end-offset lookups of lag.go, one at a
// time, on a goroutine each: they take no lock of the worker and hand their
// result over a channel that the worker reads under mu; it cancels and
// waits for a running one before it closes or replaces its client.
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
	cfg    *Config
	Topo   *engine.Topology
	Logger *slog.Logger
	client *kgo.Client
	Env    *taskEnv
	prod   producer
	subOf  map[string]*subtopology // source topic => its sub-topology
	// missingSince is, per input topic, when fetches first reported it
	// unknown (deleted) without a good fetch since; owned by the worker
	// goroutine (fetchErrors).
	missingSince map[string]time.Time
	// repartition has the full names of the repartition topics the
	// topology reads: purged after commits.
	repartition map[string]bool

	// asyncErr is the first fatal error raised off the worker goroutine
	// outside a rebalance callback (by the assignor, on the group goroutine
	// of the leader).
	asyncMu  sync.Mutex
	asyncErr error

	mu       sync.Mutex
	tasks    map[engine.TaskID]*task
	Order    []*task // tasks sorted by id: the round-robin order
	rr       int     // where the next processing round starts in order
	assigned map[string]map[int32]bool
	// Paused are the input partitions whose buffer filled
	// (BufferedRecordsPerPartition) and has not drained below half of it
	// yet. While a paused partition's task can process, the worker stops
	// polling (gateLocked), so that kgo keeps its fetched data buffered
	// instead of dropping what it fetched for a partition paused in the
	// client; only a paused partition whose task cannot process (it waits
	// for another partition, or restores) is paused in the client too:
	// fetchPaused.
	Paused      map[topicPartition]bool
	fetchPaused map[topicPartition]bool
	hwm         map[topicPartition]int64 // high watermarks from the latest fetches
	// lag looks up where the input partitions that tasks wait on start and
	// end, when no fetch has told (lag.go).
	lag lagLookups
	// restore restores the stores of new tasks (nil when the topology
	// has no changelogged store); restorePaused are the input partitions
	// paused while their task restores.
	restore       *restorer
	restorePaused map[topicPartition]bool
	closing       bool  // shutting down: create no more tasks
	Failure       error // first fatal error, possibly raised in a callback
	lastCommit    time.Time
	lastStats     time.Time

	// proto commits the tasks' progress under the App's guarantee
	// (kstream/internal/commit); txn: it is exactly-once, so the client is
	// a transact session's, sess.
	proto commit.Protocol
	txn   bool
	sess  *kgo.GroupTransactSession
	// stopping is done when the worker's context ends: a flush waits for
	// Kafka without a bound while the worker runs, not while it stops.
	stopping <-chan struct{}
	// leaves removes the group members of clients a restart replaced
	// (client.go): its goroutines are the worker's, and run waits for
	// them.
	leaves leaver

	// Scaling out (standby.go). inbox has the assignment info of the latest
	// sync (set on the group goroutine); held the offsets of the state the
	// worker holds open, for its member metadata (read there). Both are
	// leaf locks. standbys are the standby tasks (under mu), wantStandby
	// the ones assigned, nextProbe when the next probing rebalance is due.
	inbox struct {
		sync.Mutex
		info *wire.AssignmentInfo
	}
	held struct {
		sync.Mutex
		offsets map[engine.TaskID]int64
	}
	standbys      map[engine.TaskID]*task
	wantStandby   []engine.TaskID
	standbysDirty bool
	nextProbe     time.Time
	// ws are the worker's counters for the detailed Metrics sections
	// (stats.go), under mu.
	ws workerStats

	stats struct {
		sync.Mutex
		standbys   []engine.TaskID
		standbyLag map[engine.TaskID]int64
		tasks      []engine.TaskID
		lag        map[string]map[int32]int64
		// restoring tasks and the changelog records they have left
		restoring []engine.TaskID
		remaining int64
		// shed counts the records load shedding dropped, per partition
		// (countShed).
		shed map[topicPartition]int64
		// the detailed sections (stats.go)
		detail detailed
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
		Topo:          a.Topo,
		Logger:        cfg.Logger.With("instance", cfg.InstanceID, "worker", idx),
		subOf:         make(map[string]*subtopology),
		tasks:         make(map[engine.TaskID]*task),
		assigned:      make(map[string]map[int32]bool),
		Paused:        make(map[topicPartition]bool),
		fetchPaused:   make(map[topicPartition]bool),
		hwm:           make(map[topicPartition]int64),
	}
	w.lag.init()
	w.ws.init(time.Now())
	w.repartition = make(map[string]bool)
	for _, st := range a.Topo.Subs {
		for i, tp := range st.SourceTopics(cfg.AppID) {
			w.subOf[tp] = st
			if st.Internal[st.Topics[i]] {
				w.repartition[tp] = true
			}
		}
	}
	w.Env = &taskEnv{
		AppID:       cfg.AppID,
		Logger:      w.Logger,
		Collector:   w,
		Counters:    a.counters,
		Now:         time.Now,
		MaxTaskIdle: cfg.MaxTaskIdle,
		OnDeser:     cfg.OnDeser,
		OnProcess:   cfg.OnProcess,
		OnProduce:   cfg.OnProduce,
		Topo:        a.Topo,
		State:       a.State,
		Globals:     a.globalStores(),
		ShedLog:     &a.shedLog,
	}
	w.Env.OnShed = w.countShed
	if cfg.CacheMaxBytes > 0 {
		// One budget per worker, as Kafka Streams splits
		// statestore.cache.max.bytes between its stream threads.
		w.Env.Cache = &cache.Budget{Max: cfg.CacheMaxBytes / int64(cfg.Workers)}
	}
	// The group client starts joining as soon as it is made, and its
	// callbacks take mu: hold it until the worker is complete.
	w.mu.Lock()
	defer w.mu.Unlock()
	w.proto = commit.New(cfg.Guarantee, &host{w})
	w.txn = cfg.Guarantee == ExactlyOnce
	w.prod.Metrics = a.counters
	if err := w.newGroupClient(); err != nil {
		return nil, err
	}
	cl := w.client
	if hasChangelogs(a.Topo) {
		rcl, err := kgo.NewClient(append(adminOpts(cfg, w.Logger),
			kgo.ClientID(fmt.Sprintf("%s-%s-w%d-restore", cfg.AppID, cfg.InstanceID, idx)),
			kgo.FetchIsolationLevel(kgo.ReadCommitted()),
			kgo.KeepControlRecords(),
		)...)
		if err != nil {
			cl.Close()
			return nil, fmt.Errorf("%w: worker %d restore client: %v", engine.ErrConfig, idx, err)
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
// callbacks only record what happened (see the commit package).
func (w *worker) newGroupClient() error {
	cfg := w.cfg
	bal := newAssignor(w.Topo, cfg.AppID, wire.MemberInfo{Version: wire.UserDataVersion, InstanceID: cfg.InstanceID, Worker: w.idx, QueryAddr: cfg.QueryAddr}, w.Logger, w.setAsyncErr)
	bal.scaling = newScaling(w)
	bal.onAssignment = func(info wire.AssignmentInfo) { w.app.hosts.assigned(w.idx, info.Hosts) }
	// Defaults the user's options may override: Kafka's own consumer
	// default fetch wait (kgo's is 5s, which a partition resumed after
	// backpressure or restore would wait out when the fetch in flight
	// does not include it), a per-partition fetch size to match the
	// input buffers (defaultFetchMaxPartitionBytes), and under
	// exactly-once the transaction timeout.
	opts := []kgo.Opt{kgo.WithLogger(newKgoLogger(w.Logger)), kgo.FetchMaxWait(defaultFetchMaxWait),
		kgo.FetchMaxPartitionBytes(defaultFetchMaxPartitionBytes)}
	if w.txn {
		opts = append(opts, kgo.TransactionTimeout(defaultTransactionTimeout))
	}
	opts = append(opts, cfg.ClientOpts...)
	// The runtime's options come last, so they override the user's.
	opts = append(opts,
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.ClientID(fmt.Sprintf("%s-%s-w%d", cfg.AppID, cfg.InstanceID, w.idx)),
		kgo.ConsumerGroup(cfg.AppID),
		kgo.ConsumeTopics(w.Topo.SourceTopicsFor(cfg.AppID)...),
		kgo.Balancers(bal),
		kgo.DisableAutoCommit(),
		kgo.OnPartitionsAssigned(w.onAssigned),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, revoked map[string][]int32) {
			w.app.hosts.rebalancing(w.idx)
			w.proto.OnRevoked(revoked)
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
			w.app.hosts.rebalancing(w.idx)
			w.proto.OnLost(lost)
		}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// Transaction markers come as control records, so that the
		// committed offset of a partition can move past the markers
		// after its last records (task.add).
		kgo.KeepControlRecords(),
		kgo.RecordPartitioner(NewPartitioner()),
		kgo.RequiredAcks(kgo.AllISRAcks()),
	)
	if cfg.StaticMembership {
		// A static member does not leave the group when it closes: a
		// restart within the session timeout takes its tasks back with
		// no rebalance.
		opts = append(opts, kgo.InstanceID(GroupInstanceID(cfg.InstanceID, w.idx)))
	}
	if !w.txn {
		// Callbacks run only between polls (they take mu anyway).
		// Not under exactly-once: the session's End, under mu, may wait
		// for a heartbeat that kgo's group loop sends only after it ran
		// onLost, which BlockRebalanceOnPoll would hold until the next
		// AllowRebalance (so End would wait out its context). There the
		// revoke and loss callbacks take no lock the worker holds, and
		// onAssigned takes mu, so no callback sees a task mid-record.
		opts = append(opts, kgo.BlockRebalanceOnPoll())
	}
	if w.txn {
		// Exactly-once v2 (KIP-447): one transactional producer per
		// worker; the input offsets are committed inside its
		// transactions with the group's generation (commitTxnLocked).
		// kgo always fetches offsets with RequireStable, so a new owner
		// of a partition waits for a transaction that committed offsets
		// for it to end.
		opts = append(opts, kgo.TransactionalID(TransactionalID(cfg.AppID, cfg.InstanceID, w.idx)))
		sess, err := kgo.NewGroupTransactSession(opts...)
		if err != nil {
			return fmt.Errorf("%w: worker %d client: %v", engine.ErrConfig, w.idx, err)
		}
		w.sess, w.client = sess, sess.Client()
	} else {
		cl, err := kgo.NewClient(opts...)
		if err != nil {
			return fmt.Errorf("%w: worker %d client: %v", engine.ErrConfig, w.idx, err)
		}
		w.client = cl
	}
	w.prod.client = w.client
	if w.restore != nil {
		w.restore.adm = kadm.NewClient(w.client)
	}
	bal.scaling.client.Store(w.client)
	return nil
}

// hasChangelogs reports whether some store of t that a task holds has a
// changelog.
func hasChangelogs(t *engine.Topology) bool {
	for name, s := range t.Stores {
		if s.Changelog && t.StoreSub[name] != nil {
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
func checkClientOpts(cfg *Config) error {
	opts := append(slices.Clone(cfg.ClientOpts), kgo.SeedBrokers(cfg.Brokers...), kgo.ConsumeTopics(), kgo.ConsumerGroup(""))
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("%w: ClientOpts: %v", engine.ErrConfig, err)
	}
	defer cl.Close()
	switch {
	case cl.OptValue(kgo.DisableIdempotentWrite) == true:
		return fmt.Errorf("%w: ClientOpts must not disable idempotent writes", engine.ErrConfig)
	case cl.OptValue(kgo.ConsumeRegex) == true:
		return fmt.Errorf("%w: ClientOpts must not set ConsumeRegex: the runtime consumes the topology's topics", engine.ErrConfig)
	case cl.OptValue(kgo.TransactionalID) != "":
		return fmt.Errorf("%w: ClientOpts must not set a TransactionalID: the runtime owns transactions", engine.ErrConfig)
	case cl.OptValue(kgo.BlockRebalanceOnPoll) == true:
		return fmt.Errorf("%w: ClientOpts must not set BlockRebalanceOnPoll: the runtime decides when rebalance callbacks run", engine.ErrConfig)
	case cl.OptValue(kgo.InstanceID) != "":
		return fmt.Errorf("%w: ClientOpts must not set a group InstanceID: every worker is its own member (use the InstanceID option to name the instance)", engine.ErrConfig)
	}
	return nil
}

// run is the worker goroutine: it polls, routes records to tasks, processes
// them, punctuates and commits until ctx ends or something fails. Then it
// shuts down (a clean shutdown commits; a failure does not), leaves the
// group and closes the client. It returns nil after a clean shutdown.
func (w *worker) run(ctx context.Context) error {
	w.mu.Lock()
	w.stopping = ctx.Done()
	w.lastCommit = time.Now()
	var err error
	for {
		err = w.loopLocked(ctx)
		if !commit.NeedsRestart(err) {
			break
		}
		// Exactly-once: the producer was fenced or failed.
		if err = w.restartLocked(ctx, err); err != nil {
			break
		}
	}
	w.lag.stop()
	w.leaves.stop()
	if err == nil {
		w.closing = true
		err = w.proto.Shutdown()
	} else {
		// No commit: offsets stay before the failed record.
		w.proto.Abandon()
		w.closeTasksLocked(w.Order, "failure")
	}
	w.closing = true
	w.closeStandbysLocked("shutdown")
	w.publishStatsLocked()
	w.mu.Unlock()
	// Leaving the group runs onRevoked, which takes mu: never hold it here.
	w.client.CloseAllowingRebalance()
	w.closeRestore()
	if err != nil {
		w.Logger.Error("kstream: worker stopped", "err", err)
	} else {
		w.Logger.Info("kstream: worker stopped")
	}
	return err
}

// loopLocked runs the worker's rounds until ctx ends (nil) or something
// fails (the error). Each round polls with w.mu released, then, with w.mu
// held, ingests what it polled, processes, starts a lookup of the input
// partitions that tasks wait on (lag.go), punctuates, settles, commits when
// the commit interval has passed, and publishes its stats when due. It is
// called, and returns, with w.mu held.
func (w *worker) loopLocked(ctx context.Context) error {
	for {
		if stop, err := w.stopLocked(ctx); stop {
			return err
		}
		// Before anything of this round is produced.
		if err := w.proto.BeginRound(); err != nil {
			return err
		}
		fetches, restored := w.pollLocked(ctx)
		if stop, err := w.stopLocked(ctx); stop {
			return err // on ctx's end, the records just polled are not processed, nor committed
		}
		// Busy from here to the next poll.
		busyFrom := time.Now()
		if err := w.ingestLocked(fetches, restored); err != nil {
			return err
		}
		if err := w.processLocked(); err != nil {
			return err
		}
		w.lookUpLagLocked(ctx)
		if err := w.standbyRoundLocked(); err != nil {
			return err
		}
		if err := w.punctuateWallClockLocked(); err != nil {
			return err
		}
		if err := w.settleRoundLocked(ctx); err != nil {
			return err
		}
		if err := w.commitIfDueLocked(); err != nil {
			return err
		}
		if time.Since(w.lastStats) >= statsInterval {
			w.publishStatsLocked()
		}
		w.ws.busy += time.Since(busyFrom)
	}
}

// stopLocked reports whether loopLocked must stop, and with what: the
// worker's failure, else nil when ctx has ended.
func (w *worker) stopLocked(ctx context.Context) (bool, error) {
	if err := w.checkFailureLocked(); err != nil {
		return true, err
	}
	if ctx.Err() != nil {
		return true, nil
	}
	return false, nil
}

// pollLocked polls the group client, and the restore client while tasks
// restore, with the context pollContextLocked gives. It releases w.mu for
// the poll, so that rebalance callbacks may run, and holds it again when
// it returns.
func (w *worker) pollLocked(ctx context.Context) (fetches, restored kgo.Fetches) {
	pollCtx, cancel := w.pollContextLocked(ctx)
	gated := w.gateLocked()
	restoring := w.restore.restoringLocked()
	standbys := w.restore.active()
	w.mu.Unlock()
	w.client.AllowRebalance() // rebalance callbacks may run now
	switch {
	case gated:
		// A full partition drains first; the client keeps what it
		// fetched meanwhile. pollCtx is nil: a task can process.
		if restoring || standbys {
			restored = w.restore.poll(nil)
		}
	case restoring:
		// The wait, if any, is spent in the restore poll: processing
		// never waits for restoring, nor restoring for processing.
		fetches = w.client.PollFetches(nil)
		rctx := pollCtx
		if !fetches.Empty() {
			rctx = nil
		}
		restored = w.restore.poll(rctx)
	default:
		fetches = w.client.PollFetches(pollCtx)
		if standbys {
			// Standbys read what the restore consumer has buffered;
			// processing never waits for them.
			restored = w.restore.poll(nil)
		}
	}
	w.mu.Lock()
	cancel()
	return fetches, restored
}

// ingestLocked takes in what a poll returned: it fails on a fatal fetch
// error, lets the delivery guarantee decide what to route (Polled),
// buffers those records in their tasks, hands the tasks what a finished
// lag lookup found, runs a restore step with the restore poll's records,
// and tells the guarantee what was routed (Routed).
func (w *worker) ingestLocked(fetches, restored kgo.Fetches) error {
	if err := w.fetchErrors(fetches); err != nil {
		return err
	}
	fetches, err := w.proto.Polled(fetches)
	if err != nil {
		return err
	}
	w.routeLocked(fetches)
	w.applyLagLocked()
	if err := w.restoreLocked(restored); err != nil {
		return err
	}
	return w.proto.Routed(fetches)
}

// punctuateWallClockLocked runs the due wall-clock punctuations of the
// started tasks.
func (w *worker) punctuateWallClockLocked() error {
	for _, t := range w.Order {
		if !t.Started {
			continue
		}
		if err := t.PunctuateWallClock(); err != nil {
			return err
		}
	}
	return nil
}

// commitIfDueLocked commits when the commit interval has passed since the
// last commit.
func (w *worker) commitIfDueLocked() error {
	if now := time.Now(); now.Sub(w.lastCommit) >= w.cfg.CommitInterval {
		before := w.ws.commits
		if err := w.proto.Commit(); err != nil {
			return err
		}
		if w.ws.commits > before {
			took := time.Since(now)
			w.ws.commitTime += took
			w.ws.commitMax = max(w.ws.commitMax, took)
		}
		w.lastCommit = now
	}
	return nil
}

// pollContextLocked returns the context of the next poll: nil when a task
// has records to process, else one that ends when the next commit or
// wall-clock punctuation is due, or when a task's idle wait for an empty
// partition ends (MaxTaskIdle), after maxPollWait at most, or with ctx. A
// task that waits for an empty partition keeps the worker polling (the
// poll brings its records, or the wait ends), never spinning.
//
// A nil context makes kgo's PollFetches return at once with whatever it has
// buffered; a cancelled one would return only the context error, without
// the buffered records.
func (w *worker) pollContextLocked(ctx context.Context) (context.Context, context.CancelFunc) {
	noop := func() {}
	now := time.Now()
	wait := min(maxPollWait, w.lastCommit.Add(w.cfg.CommitInterval).Sub(now))
	if w.canProcessLocked() {
		for _, t := range w.Order {
			if !t.Started || t.TotalBuffered() == 0 {
				continue
			}
			ready, until := t.Ready()
			if ready {
				return nil, noop
			}
			if !until.IsZero() {
				wait = min(wait, until.Sub(now))
			}
		}
	}
	for _, t := range w.Order {
		if next, ok := t.NextWallClockPunctuation(); ok {
			wait = min(wait, time.UnixMilli(next).Sub(now))
		}
	}
	if wait <= 0 {
		return nil, noop
	}
	return context.WithDeadline(ctx, now.Add(wait))
}

// gateLocked reports whether the worker skips polling its client this
// round: when a paused partition's task can process, so that the partition
// drains (below half of BufferedRecordsPerPartition) before more records
// come. Not polling is how the worker holds back: kgo fetches again only
// once its buffered fetch is polled, and keeps that fetch whole, where
// pausing a partition in the client drops what was fetched for it, to be
// fetched again. A paused partition whose task cannot process now (it
// waits for records of another partition, or has not started) would hold
// every partition back, so it is paused in the client instead (at most
// one fetch of it is dropped) and does not gate. So a partition's buffer
// holds at most BufferedRecordsPerPartition plus one fetch of it.
func (w *worker) gateLocked() bool {
	if len(w.Paused) == len(w.fetchPaused) {
		return false
	}
	canProcess := w.canProcessLocked()
	gated := false
	for tp := range w.Paused {
		if w.fetchPaused[tp] {
			continue
		}
		if t := w.taskForLocked(tp.Topic, tp.partition); canProcess && t != nil && t.Started {
			if ready, _ := t.Ready(); ready {
				gated = true
				continue
			}
		}
		w.fetchPaused[tp] = true
		if !w.restorePaused[tp] {
			w.client.PauseFetchPartitions(map[string][]int32{tp.Topic: {tp.partition}})
		}
	}
	return gated
}

// fetchErrors logs the errors of a poll and returns the first fatal one.
func (w *worker) fetchErrors(fs kgo.Fetches) error {
	missing := map[string]bool{}
	for _, fe := range fs.Errors() {
		switch {
		case errors.Is(fe.Err, context.Canceled), errors.Is(fe.Err, context.DeadlineExceeded):
			// our own poll deadline
		case commit.IsFatal(fe.Err) && fe.Topic == "":
			// Not a partition's: kgo reports the group's failures (joining,
			// syncing, fetching offsets) as a fetch error without a topic.
			if errors.Is(fe.Err, kerr.GroupAuthorizationFailed) {
				return fmt.Errorf("kstream: consumer group %q: not authorized (the principal needs READ and DESCRIBE on GROUP %q): %w", w.cfg.AppID, w.cfg.AppID, fe.Err)
			}
			return fmt.Errorf("kstream: consumer group %q: %w", w.cfg.AppID, fe.Err)
		case commit.IsFatal(fe.Err):
			return fmt.Errorf("kstream: fetch topic %q partition %d: %w", fe.Topic, fe.Partition, fe.Err)
		case errors.Is(fe.Err, kerr.UnknownTopicID), errors.Is(fe.Err, kerr.UnknownTopicOrPartition):
			// Deleted, or metadata not settled yet: fatal once it lasts.
			missing[fe.Topic] = true
			if w.missingSince == nil {
				w.missingSince = map[string]time.Time{}
			}
			first, ok := w.missingSince[fe.Topic]
			if !ok {
				w.missingSince[fe.Topic] = time.Now()
				w.Logger.Warn("kstream: input topic unknown to the broker (deleted?)", "topic", fe.Topic, "partition", fe.Partition, "err", fe.Err)
			} else if time.Since(first) >= missingGrace {
				return fmt.Errorf("%w: input topic %q partition %d is gone (deleted?) for %v: %w", engine.ErrMissingTopic, fe.Topic, fe.Partition, missingGrace, fe.Err)
			}
		default:
			w.Logger.Warn("kstream: fetch error", "topic", fe.Topic, "partition", fe.Partition, "err", fe.Err)
		}
	}
	if len(w.missingSince) > 0 {
		fs.EachPartition(func(p kgo.FetchTopicPartition) {
			if len(p.Records) > 0 && !missing[p.Topic] {
				delete(w.missingSince, p.Topic) // records again: not gone
			}
		})
	}
	return nil
}

// routeLocked buffers each fetched record in its task, tells the task
// where the partition ends (its last stable offset: the client reads
// committed), and pauses the partitions whose buffer is full.
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
			w.Logger.Warn("kstream: dropping records of a partition without a task", "topic", p.Topic, "partition", p.Partition, "records", len(p.Records))
			return
		}
		w.hwm[tp] = p.HighWatermark
		n := 0
		for _, r := range p.Records {
			n = t.Add(r)
		}
		end := p.LastStableOffset
		if end < 0 {
			end = p.HighWatermark
		}
		t.SetEndOffset(p.Topic, end)
		if n >= w.cfg.MaxBuffered && !w.Paused[tp] {
			w.Paused[tp] = true
			w.Env.Counters.AddPaused(1)
			w.pausedLocked(tp)
			w.Logger.Debug("kstream: paused fetching a full partition", "topic", p.Topic, "partition", p.Partition, "buffered", n)
		}
	})
}

func (w *worker) taskForLocked(topic string, partition int32) *task {
	st := w.subOf[topic]
	if st == nil {
		return nil
	}
	return w.tasks[engine.TaskID{Subtopology: st.ID, Partition: partition}]
}

// canProcessLocked reports whether buffered records may be processed: not
// under at-most-once while fetched offsets wait to be committed.
func (w *worker) canProcessLocked() bool {
	return w.proto.CanProcess()
}

// processLocked runs one round: up to batchPerTask records of each task
// that is ready (a task may wait for records of an empty partition, see
// engine.Task.Process), starting one task further each round, then resumes
// partitions that drained below half of BufferedRecordsPerPartition. Tasks
// with nothing buffered are called too: that is when their wait for a
// partition that went quiet starts, as in Kafka Streams.
func (w *worker) processLocked() error {
	if !w.canProcessLocked() {
		return nil
	}
	n := len(w.Order)
	for i := range n {
		t := w.Order[(w.rr+i)%n]
		if !t.Started {
			continue
		}
		done, err := t.Process(batchPerTask)
		if err != nil {
			return err
		}
		if done > 0 {
			w.resumeDrainedLocked(t)
		}
	}
	if n > 0 {
		w.rr = (w.rr + 1) % n
	}
	return nil
}

func (w *worker) resumeDrainedLocked(t *task) {
	for _, q := range t.Queues {
		tp := topicPartition{q.Topic, q.Partition}
		if w.Paused[tp] && 2*q.Len() < w.cfg.MaxBuffered {
			w.unpauseLocked(tp)
		}
	}
}

func (w *worker) unpauseLocked(tp topicPartition) {
	if w.fetchPaused[tp] && !w.restorePaused[tp] {
		w.client.ResumeFetchPartitions(map[string][]int32{tp.Topic: {tp.partition}})
	}
	delete(w.fetchPaused, tp)
	delete(w.Paused, tp)
	w.Env.Counters.AddPaused(-1)
	w.resumedLocked(tp)
}

// pauseForRestoreLocked pauses the input partitions of a task that is
// restoring. Records already buffered stay in the task.
func (w *worker) pauseForRestoreLocked(t *task) {
	ps := map[string][]int32{}
	for _, q := range t.Queues {
		w.restorePaused[topicPartition{q.Topic, q.Partition}] = true
		ps[q.Topic] = append(ps[q.Topic], q.Partition)
	}
	w.client.PauseFetchPartitions(ps)
}

// resumeRestoredLocked resumes the input of a restored task, except the
// partitions paused for backpressure.
func (w *worker) resumeRestoredLocked(t *task) {
	ps := map[string][]int32{}
	for _, q := range t.Queues {
		tp := topicPartition{q.Topic, q.Partition}
		delete(w.restorePaused, tp)
		if !w.fetchPaused[tp] {
			ps[q.Topic] = append(ps[q.Topic], q.Partition)
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
	w.ws.rebalances++
	w.proto.Assigning()
	for tp, ps := range assigned {
		if w.assigned[tp] == nil {
			w.assigned[tp] = make(map[int32]bool)
		}
		for _, p := range ps {
			w.assigned[tp][p] = true
		}
	}
	if w.closing || w.Failure != nil {
		return
	}
	w.proto.Assigned(assigned)
	if err := w.createTasksLocked(assigned); err != nil {
		w.setFailureLocked(err)
		return
	}
	w.takeAssignmentInfoLocked()
	if err := w.syncStandbysLocked(); err != nil {
		w.setFailureLocked(err)
	}
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
			w.Logger.Info("kstream: tasks assigned", "added", added, "tasks", len(w.tasks))
		}
	}()
	for tp, ps := range parts {
		st := w.subOf[tp]
		if st == nil {
			continue
		}
		for _, p := range ps {
			id := engine.TaskID{Subtopology: st.ID, Partition: p}
			if _, ok := w.tasks[id]; ok || !w.allAssignedLocked(st, p) {
				continue
			}
			if sb := w.standbys[id]; sb != nil {
				// The standby becomes active: its checkpoint says where
				// the restore starts.
				w.closeStandbyLocked(sb, "now active here")
			}
			t, err := engine.OpenTask(id, st, w.Env)
			if err != nil {
				return err
			}
			w.tasks[id] = t
			added = append(added, id.String())
			if w.restore != nil && needsRestore(t) {
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
	if err := w.proto.TaskStarting(t); err != nil {
		return err
	}
	if err := t.Start(); err != nil {
		return err
	}
	w.app.queries.Register(t)
	return nil
}

func (w *worker) allAssignedLocked(st *subtopology, p int32) bool {
	for _, tp := range st.SourceTopics(w.cfg.AppID) {
		if !w.assigned[tp][p] {
			return false
		}
	}
	return true
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
			if t := w.tasks[engine.TaskID{Subtopology: st.ID, Partition: p}]; t != nil && !slices.Contains(tasks, t) {
				tasks = append(tasks, t)
			}
		}
	}
	slices.SortFunc(tasks, func(a, b *task) int { return engine.CompareTaskIDs(a.ID, b.ID) })
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
		w.app.queries.Deregister(t)
		if err := t.Close(); err != nil {
			w.Logger.Warn("kstream: closing task failed", "task", t.ID.String(), "err", err)
		}
		for _, q := range t.Queues {
			tp := topicPartition{q.Topic, q.Partition}
			if w.Paused[tp] {
				w.unpauseLocked(tp)
			}
			if w.restorePaused[tp] {
				delete(w.restorePaused, tp)
				w.client.ResumeFetchPartitions(map[string][]int32{tp.Topic: {tp.partition}})
			}
			delete(w.hwm, tp)
			delete(w.lag.looked, tp)
			w.proto.PartitionClosed(q.Topic, q.Partition)
		}
		w.taskClosedLocked(t)
		delete(w.tasks, t.ID)
		w.app.noteStateLocked(t)
		removed = append(removed, t.ID.String())
	}
	w.reorderLocked()
	w.Logger.Info("kstream: tasks removed", "why", why, "removed", removed, "tasks", len(w.tasks))
	w.publishStatsLocked()
}

func (w *worker) reorderLocked() {
	w.Order = w.Order[:0]
	for _, t := range w.tasks {
		w.Order = append(w.Order, t)
	}
	slices.SortFunc(w.Order, func(a, b *task) int { return engine.CompareTaskIDs(a.ID, b.ID) })
	w.rr = 0
	w.publishStatsLocked()
}

// setFailureLocked records the first fatal error; the worker goroutine
// stops at its next check.
func (w *worker) setFailureLocked(err error) {
	if w.Failure == nil {
		w.Failure = err
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
	if w.Failure != nil {
		return w.Failure
	}
	w.asyncMu.Lock()
	defer w.asyncMu.Unlock()
	w.Failure = w.asyncErr
	return w.Failure
}

// publishStatsLocked refreshes the snapshot App.Metrics reads.
func (w *worker) publishStatsLocked() {
	w.lastStats = time.Now()
	w.Env.ShedLog.Flush(w.Logger, w.lastStats)
	ids := make([]engine.TaskID, 0, len(w.Order))
	lag := make(map[string]map[int32]int64)
	for _, t := range w.Order {
		ids = append(ids, t.ID)
		for _, q := range t.Queues {
			hwm, ok := w.hwm[topicPartition{q.Topic, q.Partition}]
			next := t.NextOffset(q.Topic)
			if !ok || next < 0 {
				continue
			}
			if lag[q.Topic] == nil {
				lag[q.Topic] = make(map[int32]int64)
			}
			lag[q.Topic][q.Partition] = max(0, hwm-next)
		}
	}
	remaining, restoring := w.restore.remainingLocked()
	w.heldLocked()
	standbyLag := w.restore.standbyLagLocked()
	standbys := slices.SortedFunc(maps.Keys(w.standbys), engine.CompareTaskIDs)
	detail := w.detailLocked(w.lastStats)
	w.stats.Lock()
	w.stats.standbys, w.stats.standbyLag = standbys, standbyLag
	w.stats.tasks, w.stats.lag = ids, lag
	w.stats.remaining, w.stats.restoring = remaining, restoring
	w.stats.detail = detail
	w.stats.Unlock()
}

// snapshot adds the worker's tasks and lag to m.
func (w *worker) Snapshot(m *engine.Metrics) {
	w.stats.Lock()
	defer w.stats.Unlock()
	m.Tasks = append(m.Tasks, w.stats.tasks...)
	m.RestoringTasks = append(m.RestoringTasks, w.stats.restoring...)
	m.RestoreRemaining += w.stats.remaining
	m.StandbyTasks = append(m.StandbyTasks, w.stats.standbys...)
	for id, l := range w.stats.standbyLag {
		if m.StandbyLag == nil {
			m.StandbyLag = make(map[engine.TaskID]int64)
		}
		m.StandbyLag[id] = l
	}
	d := &w.stats.detail
	m.Rebalances += d.worker.Rebalances
	m.Workers = append(m.Workers, d.worker)
	m.TaskStats = append(m.TaskStats, d.tasks...)
	m.Nodes = append(m.Nodes, d.nodes...)
	m.Partitions = append(m.Partitions, d.partitions...)
	m.Stores = append(m.Stores, d.stores...)
	m.Restores = append(m.Restores, d.restores...)
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

func NewPartitioner() kgo.Partitioner {
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
	Cur        *kgo.Record
	explicit   bool // cur had Partition >= 0 when it arrived
	RoundRobin bool // cur had Partition == engine.PartitionRoundRobin
	rrPick     int  // the partition picked for cur by round robin, or -1
	rrNext     int  // the next round-robin partition
}

// RequiresConsistency implements kgo.TopicPartitioner: records with an
// explicit partition or a key must go to exactly their partition.
func (p *topicPartitioner) RequiresConsistency(r *kgo.Record) bool {
	p.Cur, p.explicit = r, r.Partition >= 0
	p.RoundRobin, p.rrPick = r.Partition == engine.PartitionRoundRobin, -1
	return p.explicit || p.RoundRobin || p.byKey.RequiresConsistency(r)
}

// Partition implements kgo.TopicPartitioner. For a record that requires
// consistency, kgo passes all n partitions in partition order, so the
// returned index is the partition number.
func (p *topicPartitioner) Partition(r *kgo.Record, n int) int {
	explicit := r.Partition >= 0
	if r == p.Cur {
		explicit = p.explicit
	}
	if explicit {
		return int(r.Partition)
	}
	if r == p.Cur && p.RoundRobin {
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
