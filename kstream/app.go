package kstream

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
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
}

// New returns an App that runs t with the given options, applied in order
// over the defaults (see each option) and then checked together. It returns
// an error wrapping ErrConfig for options that are missing, out of range or
// conflicting. It does not connect to Kafka: Run does.
//
// ExactlyOnce is not available yet: New rejects it with ErrConfig.
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
	if cfg.guarantee == ExactlyOnce {
		// Exactly-once plugs in at the places marked in worker.go and
		// commit.go: a transactional producer per worker, the offsets
		// committed in the transaction, read-committed fetching.
		return nil, fmt.Errorf("%w: exactly-once is not available yet; use AtLeastOnce or AtMostOnce", ErrConfig)
	}
	if cfg.instanceID == "" {
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

// Run runs the App until ctx ends; it may be called once. It first checks,
// with an admin client, that every source and fixed sink topic exists
// (ErrMissingTopic, naming the missing ones) and that the source topics of
// each sub-topology have equal partition counts (ErrCopartition, naming
// topics and counts). Then it starts the workers and blocks.
//
// When ctx ends, every worker stops processing, commits what it processed,
// closes its tasks and leaves the group; Run then returns nil. When a worker
// fails (an error handler said Fail, a fatal Kafka error), Run stops the
// other workers the same clean way and returns the failure; the failed
// worker commits nothing past the failed record.
func (a *App) Run(ctx context.Context) error {
	if !a.started.CompareAndSwap(false, true) {
		return fmt.Errorf("%w: Run may be called once per App", ErrClosed)
	}
	log := a.cfg.logger
	log.Info("kstream: starting", "app", a.cfg.appID, "guarantee", a.cfg.guarantee.String(),
		"workers", a.cfg.workers, "instance", a.cfg.instanceID)
	if err := a.checkTopics(ctx); err != nil {
		if ctx.Err() != nil {
			return nil // cancelled before the start: nothing to shut down
		}
		log.Error("kstream: cannot start", "app", a.cfg.appID, "err", err)
		return err
	}
	workers := make([]*worker, 0, a.cfg.workers)
	for i := range a.cfg.workers {
		w, err := newWorker(a, i)
		if err != nil {
			for _, w := range workers {
				w.client.Close()
			}
			return err
		}
		workers = append(workers, w)
	}
	a.mu.Lock()
	a.workers = workers
	a.mu.Unlock()

	// Run owns the worker goroutines: each returns before Run does.
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		errMu    sync.Mutex
		firstErr error
	)
	for _, w := range workers {
		wg.Go(func() {
			if err := w.run(runCtx); err != nil {
				errMu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				errMu.Unlock()
				cancel() // stop the other workers
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		log.Error("kstream: stopped after a failure", "app", a.cfg.appID, "err", firstErr)
		return firstErr
	}
	log.Info("kstream: shut down cleanly", "app", a.cfg.appID, "instance", a.cfg.instanceID)
	return nil
}

// Metrics returns a snapshot of the App's counters and of its workers'
// tasks, lag and paused partitions. It is safe to call concurrently with
// Run and from any goroutine.
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
	return m
}

// checkTopics checks that the topology's topics exist and that
// co-partitioned topics have equal partition counts.
func (a *App) checkTopics(ctx context.Context) error {
	opts := []kgo.Opt{kgo.WithLogger(newKgoLogger(a.cfg.logger))}
	for _, o := range a.cfg.clientOpts {
		switch o.(type) {
		case kgo.ConsumerOpt, kgo.GroupOpt:
			// an admin client must not consume or join the group
		default:
			opts = append(opts, o)
		}
	}
	opts = append(opts,
		kgo.SeedBrokers(a.cfg.brokers...),
		kgo.ClientID(fmt.Sprintf("%s-%s-admin", a.cfg.appID, a.cfg.instanceID)),
	)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("%w: admin client: %v", ErrConfig, err)
	}
	defer cl.Close()

	// Internal topics are not checked here: the runtime creates them.
	var topics []string
	for _, st := range a.topo.subs {
		for _, tp := range st.topics {
			if !st.internal[tp] {
				topics = append(topics, tp)
			}
		}
		topics = append(topics, st.sinks...)
	}
	slices.Sort(topics)
	topics = slices.Compact(topics)
	details, err := kadm.NewClient(cl).ListTopics(ctx, topics...)
	if err != nil {
		return fmt.Errorf("kstream: check topics: %w", err)
	}
	var missing []string
	counts := make(map[string]int32, len(topics))
	for _, tp := range topics {
		d, ok := details[tp]
		switch {
		case !details.Has(tp):
			missing = append(missing, fmt.Sprintf("%q", tp))
		case ok && d.Err != nil:
			return fmt.Errorf("kstream: check topic %q: %w", tp, d.Err)
		default:
			counts[tp] = int32(len(d.Partitions))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: %s", ErrMissingTopic, strings.Join(missing, ", "))
	}
	var mismatched []string
	for _, st := range a.topo.subs {
		if len(st.internal) > 0 {
			continue // internal topics are created to match
		}
		for _, tp := range st.topics[1:] {
			if counts[tp] != counts[st.topics[0]] {
				mismatched = append(mismatched, copartitionMessage(st.id, st.topics, counts))
				break
			}
		}
	}
	if len(mismatched) > 0 {
		return fmt.Errorf("%w: %s", ErrCopartition, strings.Join(mismatched, "; "))
	}
	return nil
}

// randomID returns 16 random hex digits: the default instance id.
func randomID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
