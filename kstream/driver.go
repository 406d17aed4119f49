package kstream

import (
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamwork-go/streamwork/kstream/internal/testhook"
	"github.com/streamwork-go/streamwork/state"
	"github.com/streamwork-go/streamwork/state/memory"
)

func init() {
	testhook.NewDriver = newTestDriver
}

// testDriver runs a topology synchronously, in process, for kstreamtest:
// one task per sub-topology on partition 0, a controlled wall clock, and a
// collector that keeps what each topic received (and feeds records written
// to a topic the topology reads back into it).
type testDriver struct {
	topo    *Topology
	env     *taskEnv
	tasks   map[*subtopology]*task
	now     time.Time
	offsets map[string]int64
	outputs map[string][]*kgo.Record
	pending []*kgo.Record
	closed  bool
}

func newTestDriver(topology any, start time.Time, opts []any) (testhook.Driver, error) {
	t, ok := topology.(*Topology)
	if !ok || t == nil {
		return nil, fmt.Errorf("%w: the test driver needs a *kstream.Topology, got %T", ErrConfig, topology)
	}
	cfg := defaultConfig()
	cfg.appID = "kstreamtest"
	cfg.brokers = []string{"in-process"}
	for _, o := range opts {
		opt, ok := o.(Opt)
		if !ok {
			return nil, fmt.Errorf("%w: %T is not a kstream.Opt", ErrConfig, o)
		}
		opt.apply(&cfg)
	}
	if cfg.guarantee == ExactlyOnce && !cfg.commitSet {
		cfg.commitSet = true // the driver has no commits; keep validate quiet
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	d := &testDriver{
		topo:    t,
		tasks:   make(map[*subtopology]*task),
		now:     start,
		offsets: make(map[string]int64),
		outputs: make(map[string][]*kgo.Record),
	}
	logger := cfg.logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	d.env = &taskEnv{
		appID:     cfg.appID,
		logger:    logger,
		collector: d,
		metrics:   new(metrics),
		now:       func() time.Time { return d.now },
		onDeser:   cfg.onDeser,
		onProcess: cfg.onProcess,
		onProduce: cfg.onProduce,
		topo:      t,
	}
	if cfg.cacheMaxBytes > 0 {
		// Caches flush after every record (as Kafka Streams' test driver
		// commits after every record), so each input shows its output.
		d.env.cache = &cacheBudget{max: cfg.cacheMaxBytes}
	}
	d.env.globals = make(map[string]state.Store, len(t.globals))
	for _, g := range t.globals {
		d.env.globals[g.store] = memory.New(g.store)
	}
	for _, st := range t.subs {
		tk, err := newTask(TaskID{Subtopology: st.id, Partition: 0}, st, d.env)
		if err != nil {
			d.Close()
			return nil, err
		}
		d.tasks[st] = tk
	}
	return d, nil
}

// send implements collector.
func (d *testDriver) send(_ *task, r *kgo.Record) {
	if r.Partition < 0 {
		r.Partition = 0
	}
	r.Offset = d.offsets[r.Topic]
	d.offsets[r.Topic]++
	d.outputs[r.Topic] = append(d.outputs[r.Topic], r)
	d.env.metrics.produced.Add(1)
	if d.topo.subtopologyFor(d.env.appID, r.Topic) != nil {
		d.pending = append(d.pending, r)
	}
}

// sendChangelog implements changelogCollector: changelog records are kept
// as output (read them with TakeOutput("<app id>-<store>-changelog")) and
// acknowledged at once.
func (d *testDriver) sendChangelog(_ *task, r *kgo.Record, acked *atomic.Int64) {
	r.Offset = d.offsets[r.Topic]
	d.offsets[r.Topic]++
	d.outputs[r.Topic] = append(d.outputs[r.Topic], r)
	d.env.metrics.changelogProduced.Add(1)
	acked.Store(r.Offset + 1)
}

func (d *testDriver) Pipe(r *kgo.Record) error {
	if d.closed {
		return ErrClosed
	}
	for _, g := range d.topo.globals {
		if g.topic == r.Topic {
			// A global table's topic updates its store at once, as the
			// App's global updater would.
			st := d.env.globals[g.store]
			if r.Value == nil {
				return st.Delete(r.Key)
			}
			return st.Put(r.Key, r.Value)
		}
	}
	if d.topo.subtopologyFor(d.env.appID, r.Topic) == nil {
		return fmt.Errorf("%w: topic %q is not read by the topology", ErrMissingTopic, r.Topic)
	}
	r.Partition = 0
	r.Offset = d.offsets[r.Topic]
	d.offsets[r.Topic]++
	d.pending = append(d.pending, r)
	return d.drain()
}

// drain processes pending input, including records the topology wrote to
// topics it reads, until nothing is left.
func (d *testDriver) drain() error {
	for len(d.pending) > 0 {
		r := d.pending[0]
		d.pending = d.pending[1:]
		tk := d.tasks[d.topo.subtopologyFor(d.env.appID, r.Topic)]
		in := &kgo.Record{Topic: r.Topic, Partition: 0, Offset: r.Offset, Key: r.Key, Value: r.Value,
			Headers: r.Headers, Timestamp: r.Timestamp}
		tk.add(in)
		for tk.totalBuffered() > 0 {
			if _, err := tk.process(1 << 20); err != nil {
				d.pending = nil
				return err
			}
		}
		if err := tk.flushCaches(); err != nil {
			d.pending = nil
			return err
		}
	}
	return nil
}

func (d *testDriver) AdvanceWallClock(dur time.Duration) error {
	if d.closed {
		return ErrClosed
	}
	d.now = d.now.Add(dur)
	for _, st := range d.topo.subs {
		if err := d.tasks[st].punctuateWallClock(); err != nil {
			return err
		}
		if err := d.tasks[st].flushCaches(); err != nil {
			return err
		}
	}
	return d.drain()
}

func (d *testDriver) Now() time.Time { return d.now }

func (d *testDriver) TakeOutput(topic string) []*kgo.Record {
	out := d.outputs[topic]
	delete(d.outputs, topic)
	return out
}

func (d *testDriver) Metrics() any { return d.env.metrics.snapshot() }

func (d *testDriver) Close() error {
	if d.closed {
		return nil
	}
	d.closed = true
	var errs []error
	for _, st := range d.topo.subs {
		if tk := d.tasks[st]; tk != nil {
			if err := tk.close(); err != nil {
				errs = append(errs, err)
			}
		}
	}
	for _, st := range d.env.globals {
		errs = append(errs, st.Close())
	}
	return joinErrors(errs)
}
