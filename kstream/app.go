package kstream

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/streamwork-go/streamwork/state"
)

// App runs a Topology against Kafka: Run joins the consumer group named by
// the application id with Workers(n) workers, each a group member with its
// own client and tasks, and processes until its context ends.
//
// An App runs once: make a new one (with the same ApplicationID) to run
// again; it continues from the offsets the previous one committed. Metrics
// may be called concurrently with Run, and after it.
type App struct {
	topo    *Topology
	cfg     config
	metrics *metrics
	started atomic.Bool

	mu      sync.Mutex // guards workers, set once by Run
	workers []*worker

	// Set by Run before the workers start, read by them: the state
	// directory and engine, the global tables. queries is the registry of
	// the local stores for QueryStore (its own lock).
	state   *stateEnv
	globals *globalUpdater
	queries queryRegistry
}

// New returns an App that runs t with the given options, applied in order
// over the defaults (see each option) and then checked together. It returns
// an error wrapping ErrConfig for options that are missing, out of range or
// conflicting. It does not connect to Kafka: Run does.
func New(t *Topology, opts ...Opt) (*App, error) {
	if t == nil {
		return nil, fmt.Errorf("%w: New needs a topology (Builder.Build)", ErrConfig)
	}
	cfg := defaultConfig()
	for _, o := range opts {
		if o != nil {
			o.apply(&cfg)
		}
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.instanceID == "" && cfg.guarantee != ExactlyOnce {
		// Under exactly-once, Run reads it from the state directory.
		cfg.instanceID = randomID()
	}
	if cfg.logger == nil {
		cfg.logger = defaultConfig().logger
	}
	a := &App{topo: t, cfg: cfg, metrics: new(metrics)}
	if err := checkClientOpts(&cfg); err != nil {
		return nil, err
	}
	return a, nil
}

// Run runs the App until ctx ends; it may be called once. It first locks
// the App's state directory when the topology keeps stores on disk (an
// error wrapping state.ErrLocked when another instance holds it), then
// checks, with an admin client, that every source, fixed sink and global
// table topic exists (ErrMissingTopic, naming the missing ones) and that
// the source topics of each sub-topology have equal partition counts
// (ErrCopartition, naming topics and counts), and creates the internal
// topics (repartition and changelog topics; ErrInternalTopic when one
// exists with another partition count). It loads the global tables up to
// the end of their topics, then starts the workers and blocks. Tasks with
// changelogged stores restore them before they process (see Metrics'
// RestoringTasks).
//
// When ctx ends, every worker stops processing, flushes its caches,
// commits what it processed, writes its tasks' checkpoints, closes its
// tasks and leaves the group; Run then returns nil. When a worker fails
// (an error handler said Fail, a fatal Kafka error), Run stops the other
// workers the same clean way and returns the failure; the failed worker
// commits nothing past the failed record.
func (a *App) Run(ctx context.Context) (err error) {
	if !a.started.CompareAndSwap(false, true) {
		return fmt.Errorf("%w: Run may be called once per App", ErrClosed)
	}
	log := a.cfg.logger
	fail := func(err error) error {
		if ctx.Err() != nil {
			return nil // cancelled before the start: nothing to shut down
		}
		log.Error("kstream: cannot start", "app", a.cfg.appID, "err", err)
		return err
	}
	st, err := newStateEnv(&a.cfg, a.topo, log)
	if err != nil {
		return fail(err)
	}
	a.state = st
	defer func() {
		if cerr := st.close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	if a.cfg.instanceID == "" {
		id, err := st.instanceID()
		if err != nil {
			return fail(err)
		}
		a.cfg.instanceID = id
	}
	log.Info("kstream: starting", "app", a.cfg.appID, "guarantee", a.cfg.guarantee.String(),
		"workers", a.cfg.workers, "instance", a.cfg.instanceID)
	plan, err := a.prepareTopics(ctx)
	if err != nil {
		return fail(err)
	}
	a.queries.setPartitions(a.topo, plan.subPartitions)
	g, err := openGlobals(ctx, a.topo, &a.cfg, a.metrics, st.globalCheckpoint(), st.openGlobal)
	if err != nil {
		return fail(err)
	}
	a.globals = g
	if g != nil {
		if err := g.bootstrap(ctx, &a.cfg); err != nil {
			err = joinErrors([]error{err, g.close()})
			return fail(err)
		}
		a.queries.setGlobals(g.stores)
	}
	defer func() {
		a.queries.setGlobals(nil)
		if cerr := g.close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	workers := make([]*worker, 0, a.cfg.workers)
	for i := range a.cfg.workers {
		w, err := newWorker(a, i)
		if err != nil {
			for _, w := range workers {
				w.client.Close()
				w.closeRestore()
			}
			return err
		}
		workers = append(workers, w)
	}
	a.mu.Lock()
	a.workers = workers
	a.mu.Unlock()

	// Run owns the worker goroutines and the global updater's: each
	// returns before Run does.
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		errMu    sync.Mutex
		firstErr error
	)
	setErr := func(err error) {
		errMu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		errMu.Unlock()
		cancel() // stop the others
	}
	for _, w := range workers {
		wg.Go(func() {
			if err := w.run(runCtx); err != nil {
				setErr(err)
			}
		})
	}
	var gwg sync.WaitGroup
	gctx, gcancel := context.WithCancel(runCtx)
	if g != nil {
		gwg.Go(func() {
			if err := g.run(gctx); err != nil {
				setErr(err)
			}
		})
	}
	wg.Wait()
	// The global stores outlive the tasks that read them.
	gcancel()
	gwg.Wait()
	if firstErr != nil {
		log.Error("kstream: stopped after a failure", "app", a.cfg.appID, "err", firstErr)
		return firstErr
	}
	log.Info("kstream: shut down cleanly", "app", a.cfg.appID, "instance", a.cfg.instanceID)
	return nil
}

// globalStores returns the stores of the global tables, by store name.
func (a *App) globalStores() map[string]state.Store {
	if a.globals == nil {
		return nil
	}
	return a.globals.stores
}

// Metrics returns a snapshot of the App's counters and of its workers'
// tasks, lag, paused partitions and restores. It is safe to call
// concurrently with Run and from any goroutine.
func (a *App) Metrics() Metrics {
	m := a.metrics.snapshot()
	m.Lag = make(map[string]map[int32]int64)
	a.mu.Lock()
	ws := a.workers
	a.mu.Unlock()
	for _, w := range ws {
		w.snapshot(&m)
	}
	slices.SortFunc(m.Tasks, compareTaskIDs)
	slices.SortFunc(m.RestoringTasks, compareTaskIDs)
	return m
}

// randomID returns 16 random hex digits: the default instance id.
func randomID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
