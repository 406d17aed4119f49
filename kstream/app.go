package kstream

import (
	"context"
	"fmt"
	"net/http"
	"sync"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/streamwork-go/streamwork/kstream/internal/dashboard"
	"github.com/streamwork-go/streamwork/kstream/internal/engine"
	"github.com/streamwork-go/streamwork/kstream/internal/runtime"
)

// App runs a Topology against Kafka: Run joins the consumer group named by
// the application id with Workers(n) workers, each a group member with its
// own client and tasks, and processes until its context ends.
//
// An App runs once: make a new one (with the same ApplicationID) to run
// again; it continues from the offsets the previous one committed. Metrics
// may be called concurrently with Run, and after it.
type App struct {
	topo *Topology
	rt   *runtime.App

	// running is closed when Run starts, done when it returned; the
	// dashboard's history goroutine lives in between.
	running, done chan struct{}
	runOnce       sync.Once
	dashMu        sync.Mutex
	dash          *dashboard.Handler // made by the first Dashboard call
}

// New returns an App that runs t with the given options, applied in order
// over the defaults (see each option) and then checked together. It returns
// an error wrapping ErrConfig for options that are missing, out of range or
// conflicting. It does not connect to Kafka: Run does.
func New(t *Topology, opts ...Opt) (*App, error) {
	if t == nil || t.t == nil {
		return nil, fmt.Errorf("%w: New needs a topology (Builder.Build)", ErrConfig)
	}
	cfg := runtime.DefaultConfig()
	for _, o := range opts {
		if o != nil {
			o.apply(&cfg)
		}
	}
	rt, err := runtime.New(t.t, cfg)
	if err != nil {
		return nil, err
	}
	return &App{topo: t, rt: rt, running: make(chan struct{}), done: make(chan struct{})}, nil
}

// Run runs the App until ctx ends; it may be called once. It first locks
// the App's state directory when the topology keeps stores on disk (an
// error wrapping ErrStateDirLocked when another instance holds it), then
// checks, with an admin client, that every source, fixed sink and global
// table topic exists (ErrMissingTopic, naming the missing ones, once such
// a topic has stayed out of the cluster's metadata for 5 s: a topic
// created just before may take a moment to appear there) and that
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
func (a *App) Run(ctx context.Context) error {
	first := false
	a.runOnce.Do(func() { first = true })
	if !first {
		return a.rt.Run(ctx) // an error: Run may be called once
	}
	close(a.running)
	defer a.stopDashboard()
	return a.rt.Run(ctx)
}

// stopDashboard ends the dashboard's history goroutine, if it started, and
// waits for it: Run returns only after it ended.
func (a *App) stopDashboard() {
	close(a.done)
	a.dashMu.Lock()
	d := a.dash
	a.dashMu.Unlock()
	if d != nil {
		d.Wait()
	}
}

// Dashboard returns an http.Handler that serves a live dashboard of the
// App: a page that draws the topology as a graph with each node's
// records/s, utilization and headroom, the lag of each input partition,
// the tasks of each worker, every member of the application's group (each
// instance's workers and their tasks, from DescribeApplication) and charts
// of the last five minutes (records/s, lag, utilization), refreshed every
// second. It also serves the JSON the page reads: api/topology (Describe),
// api/metrics (Metrics), api/history (one sample a second of the last five
// minutes) and api/group (DescribeApplication through an admin client
// made from the App's options, asked at most every 3 seconds; an error is
// shown on the page).
//
// Nothing is served unless the caller mounts the handler; its paths are
// relative, so it works under any prefix:
//
//	mux.Handle("/dashboard/", http.StripPrefix("/dashboard", app.Dashboard()))
//
// The page, its script and styles are embedded in the binary and fetch
// nothing else. Every call returns the same handler. Its history is kept by
// one goroutine that starts with the first request made while Run runs and
// ends before Run returns. The handler does not authenticate: bind it to a
// loopback or otherwise protected address.
func (a *App) Dashboard() http.Handler {
	a.dashMu.Lock()
	defer a.dashMu.Unlock()
	if a.dash == nil {
		topo := a.topo.Describe()
		a.dash = dashboard.New(dashboard.Source{
			Topology: topo,
			Metrics:  a.Metrics,
			Running:  a.running,
			Done:     a.done,
			Group:    func(ctx context.Context) (any, error) { return a.describeGroup(ctx, topo) },
		})
	}
	return a.dash
}

// describeGroup describes the App's whole group for the dashboard
// (DescribeApplication with the App's topology), through an admin client
// made from the App's options for this call.
func (a *App) describeGroup(ctx context.Context, topo TopologyDescription) (ApplicationDescription, error) {
	cl, err := a.rt.AdminClient("dashboard")
	if err != nil {
		return ApplicationDescription{}, err
	}
	defer cl.Close()
	return DescribeApplication(ctx, kadm.NewClient(cl), a.ApplicationID(), WithTopology(topo))
}

// Metrics returns a snapshot of the App's counters and of its workers'
// tasks, lag, paused partitions and restores. It is safe to call
// concurrently with Run and from any goroutine.
func (a *App) Metrics() Metrics { return a.rt.Metrics() }

// ApplicationID returns the App's application id (the ApplicationID
// option): its consumer group and the prefix of its internal topics.
func (a *App) ApplicationID() string { return a.rt.Config().AppID }

// Metrics is a snapshot of an App's counters since it started, and of its
// workers' state when the snapshot was taken.
type Metrics = engine.Metrics

// The detailed sections of a Metrics snapshot.
type (
	// WorkerMetrics are the numbers of one worker of this instance.
	WorkerMetrics = engine.WorkerMetrics
	// TaskMetrics are the numbers of one active task of this instance.
	TaskMetrics = engine.TaskMetrics
	// NodeMetrics are the numbers of one node, summed over the tasks of
	// this instance.
	NodeMetrics = engine.NodeMetrics
	// PartitionMetrics are the numbers of one input partition assigned to
	// this instance.
	PartitionMetrics = engine.PartitionMetrics
	// StoreMetrics are the numbers of one store of one task.
	StoreMetrics = engine.StoreMetrics
	// RestoreMetrics are the progress of one store restoring.
	RestoreMetrics = engine.RestoreMetrics
)

// RateWindow is the span over which a Metrics snapshot's rates,
// utilizations and latency percentiles are computed.
const RateWindow = engine.RateWindow

// StoredOffsets returns, for application appID under stateDir (the
// StateDir option), the changelog offsets its on-disk stores hold, by
// changelog topic and partition: where each store's restore would resume
// when its task is assigned to an instance using that directory. Stores keep
// these offsets inside themselves, written with their data, so a store that
// was deleted or damaged has none and is restored in full. It is for
// operators and tests; it fails with an error wrapping ErrStateDirLocked
// while an App uses the directory.
func StoredOffsets(stateDir, appID string) (map[string]map[int32]int64, error) {
	return runtime.StoredOffsets(stateDir, appID)
}
