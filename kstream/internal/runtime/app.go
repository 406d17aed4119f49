package runtime

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/streamwork-go/streamwork/kstream/internal/engine"
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
	Topo     *engine.Topology
	cfg      Config
	counters *metrics
	Started  atomic.Bool

	mu      sync.Mutex // guards workers, set once by Run
	Workers []*worker

	// Set by Run before the workers start, read by them: the state
	// directory and engine, the global tables. queries is the registry of
	// the local stores for QueryStore (its own lock).
	State   *stateEnv
	Globals *globalUpdater
	queries queryRegistry
	// disk has the offsets of the task state on disk (standby.go).
	disk diskState
	// hosts is where the group's tasks run, by query address (its own
	// lock; see hosts.go).
	hosts hostMap
	// shedLog logs what the sources' load-shedding policies drop, for all
	// workers.
	shedLog engine.ShedLog
}

// New returns an App that runs t with cfg (DefaultConfig changed by the
// options), after checking cfg (Validate). It does not connect to Kafka:
// Run does.
func New(t *engine.Topology, cfg Config) (*App, error) {
	if t == nil {
		return nil, fmt.Errorf("%w: New needs a topology (Builder.Build)", engine.ErrConfig)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := checkInternalTopicNames(t, cfg.AppID); err != nil {
		return nil, err
	}
	if cfg.InstanceID == "" && cfg.Guarantee != ExactlyOnce {
		// Under exactly-once, Run reads it from the state directory.
		cfg.InstanceID = randomID()
	}
	if cfg.Logger == nil {
		cfg.Logger = DefaultConfig().Logger
	}
	cfg.ClientOpts = securityOpts(cfg)
	a := &App{Topo: t, cfg: cfg, counters: new(metrics)}
	if err := checkClientOpts(&cfg); err != nil {
		return nil, err
	}
	return a, nil
}

// Run runs the App until ctx ends; it may be called once. It first locks
// the App's state directory when the topology keeps stores on disk (an
// error wrapping engine.ErrStateDirLocked when another instance holds it), then
// checks, with an admin client, that every source, fixed sink and global
// table topic exists (engine.ErrMissingTopic, naming the missing ones,
// after userTopicGrace) and that
// the source topics of each sub-topology have equal partition counts
// (engine.ErrCopartition, naming topics and counts), and creates the internal
// topics (repartition and changelog topics; engine.ErrInternalTopic when one
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
	if !a.Started.CompareAndSwap(false, true) {
		return fmt.Errorf("%w: Run may be called once per App", engine.ErrClosed)
	}
	st, err := a.openState()
	if err != nil {
		return a.startFailed(ctx, err)
	}
	defer func() {
		if cerr := st.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	a.cfg.Logger.Info("kstream: starting", "app", a.cfg.AppID, "guarantee", a.cfg.Guarantee.String(),
		"workers", a.cfg.Workers, "instance", a.cfg.InstanceID)
	plan, err := a.prepareTopics(ctx)
	if err != nil {
		return a.startFailed(ctx, err)
	}
	a.queries.SetPartitions(a.Topo, plan.subPartitions)
	if err := a.scanDisk(st); err != nil {
		return a.startFailed(ctx, err)
	}
	g, err := a.startGlobals(ctx, st)
	if err != nil {
		return a.startFailed(ctx, err)
	}
	defer func() {
		a.queries.SetGlobals(nil)
		if cerr := g.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	workers, err := a.newWorkers()
	if err != nil {
		return err
	}
	return a.runWorkers(ctx, workers, g)
}

// startFailed returns a failure to start, or nil when ctx ended first
// (then there is nothing to shut down). It does not log it: Run returns
// it, and its caller reports it once.
func (a *App) startFailed(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// openState opens the App's state directory (see newStateEnv) and, under
// exactly-once without an InstanceID option, reads the instance id kept
// there.
func (a *App) openState() (*stateEnv, error) {
	st, err := newStateEnv(&a.cfg, a.Topo, a.cfg.Logger)
	if err != nil {
		return nil, err
	}
	a.State = st
	if a.cfg.InstanceID == "" {
		id, err := st.InstanceID()
		if err != nil {
			return nil, engine.JoinErrors([]error{err, st.Close()})
		}
		a.cfg.InstanceID = id
	}
	return st, nil
}

// startGlobals opens the global tables' stores, loads them to the end of
// their topics and makes them queryable. It returns nil when the topology
// has none.
func (a *App) startGlobals(ctx context.Context, st *stateEnv) (*globalUpdater, error) {
	g, err := openGlobals(a.Topo, &a.cfg, a.counters, st.openGlobal)
	if err != nil || g == nil {
		return nil, err
	}
	a.Globals = g
	if err := g.bootstrap(ctx, &a.cfg); err != nil {
		return nil, engine.JoinErrors([]error{err, g.Close()})
	}
	a.queries.SetGlobals(g.Stores)
	return g, nil
}

// newWorkers makes the App's workers and their clients.
func (a *App) newWorkers() ([]*worker, error) {
	workers := make([]*worker, 0, a.cfg.Workers)
	for i := range a.cfg.Workers {
		w, err := newWorker(a, i)
		if err != nil {
			for _, w := range workers {
				w.client.Close()
				w.closeRestore()
			}
			return nil, err
		}
		workers = append(workers, w)
	}
	a.mu.Lock()
	a.Workers = workers
	a.mu.Unlock()
	return workers, nil
}

// runWorkers runs the workers and the global updater until ctx ends or one
// fails, which stops the others; it returns the first failure. Run owns
// their goroutines: each returns before runWorkers does, the global
// updater last (the global stores outlive the tasks that read them).
func (a *App) runWorkers(ctx context.Context, workers []*worker, g *globalUpdater) error {
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
	gcancel()
	gwg.Wait()
	if firstErr != nil {
		a.cfg.Logger.Error("kstream: stopped after a failure", "app", a.cfg.AppID, "err", firstErr)
		return firstErr
	}
	a.cfg.Logger.Info("kstream: shut down cleanly", "app", a.cfg.AppID, "instance", a.cfg.InstanceID)
	return nil
}

// globalStores returns the stores of the global tables, by store name.
func (a *App) globalStores() map[string]state.Store {
	if a.Globals == nil {
		return nil
	}
	return a.Globals.Stores
}

// Metrics returns a snapshot of the App's counters and of its workers'
// tasks, lag, paused partitions and restores. It is safe to call
// concurrently with Run and from any goroutine.
func (a *App) Metrics() engine.Metrics {
	m := a.counters.Snapshot()
	m.Lag = make(map[string]map[int32]int64)
	a.mu.Lock()
	ws := a.Workers
	a.mu.Unlock()
	for _, w := range ws {
		w.Snapshot(&m)
	}
	a.addShedPartitions(&m, ws)
	slices.SortFunc(m.Tasks, engine.CompareTaskIDs)
	slices.SortFunc(m.RestoringTasks, engine.CompareTaskIDs)
	slices.SortFunc(m.StandbyTasks, engine.CompareTaskIDs)
	sortSections(&m)
	m.Time = time.Now()
	return m
}

// randomID returns 16 random hex digits: the default instance id.
func randomID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Config returns the App's configuration, as validated (defaults applied).
func (a *App) Config() Config { return a.cfg }
