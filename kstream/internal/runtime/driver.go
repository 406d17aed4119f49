package runtime

import (
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamwork-go/streamwork/kstream/internal/cache"
	"github.com/streamwork-go/streamwork/kstream/internal/engine"
	"github.com/streamwork-go/streamwork/state"
	"github.com/streamwork-go/streamwork/state/memory"
)

// TestDriver runs a topology synchronously, in process, for kstreamtest:
// one task per sub-topology on partition 0, a controlled wall clock, and a
// collector that keeps what each topic received (and feeds records written
// to a topic the topology reads back into it). Every input partition is
// caught up with what was piped into it, so with MaxTaskIdle 0 (the
// default) or NoTaskIdle each record is processed when it is piped; with a
// positive MaxTaskIdle a task with several inputs keeps a record while one
// of its inputs is empty, until that input gets a record or the wall clock
// passes the end of the idle wait (as Kafka Streams' TopologyTestDriver).
type TestDriver struct {
	Topo    *engine.Topology
	Env     *taskEnv
	tasks   map[*subtopology]*task
	clock   time.Time
	offsets map[string]int64
	outputs map[string][]*kgo.Record
	pending []*kgo.Record
	Closed  bool
}

// NewTestDriver returns a driver that runs t synchronously with cfg
// (DefaultConfig changed by the options), its wall clock at start.
func NewTestDriver(t *engine.Topology, start time.Time, cfg Config) (*TestDriver, error) {
	if cfg.Guarantee == ExactlyOnce && !cfg.CommitSet {
		cfg.CommitSet = true // the driver has no commits; keep validate quiet
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	d := &TestDriver{
		Topo:    t,
		tasks:   make(map[*subtopology]*task),
		clock:   start,
		offsets: make(map[string]int64),
		outputs: make(map[string][]*kgo.Record),
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	d.Env = &taskEnv{
		AppID:       cfg.AppID,
		Logger:      logger,
		Collector:   d,
		Counters:    new(metrics),
		Now:         func() time.Time { return d.clock },
		MaxTaskIdle: cfg.MaxTaskIdle,
		OnDeser:     cfg.OnDeser,
		OnProcess:   cfg.OnProcess,
		OnProduce:   cfg.OnProduce,
		Topo:        t,
		ShedLog:     new(engine.ShedLog),
	}
	if cfg.CacheMaxBytes > 0 {
		// Caches flush after every record (as Kafka Streams' test driver
		// commits after every record), so each input shows its output.
		d.Env.Cache = &cache.Budget{Max: cfg.CacheMaxBytes}
	}
	d.Env.Globals = make(map[string]state.Store, len(t.Globals))
	for _, g := range t.Globals {
		d.Env.Globals[g.Store] = memory.New(g.Store)
	}
	for _, st := range t.Subs {
		tk, err := engine.NewTask(engine.TaskID{Subtopology: st.ID, Partition: 0}, st, d.Env)
		if err != nil {
			d.Close()
			return nil, err
		}
		for _, q := range tk.Queues {
			tk.SetStartOffset(q.Topic, 0) // empty, and caught up
			tk.SetEndOffset(q.Topic, 0)
		}
		d.tasks[st] = tk
	}
	return d, nil
}

// send implements collector.
func (d *TestDriver) Send(_ *task, r *kgo.Record) {
	if r.Partition < 0 {
		r.Partition = 0
	}
	r.Offset = d.offsets[r.Topic]
	d.offsets[r.Topic]++
	d.outputs[r.Topic] = append(d.outputs[r.Topic], r)
	d.Env.Counters.Produced.Add(1)
	if d.Topo.SubtopologyFor(d.Env.AppID, r.Topic) != nil {
		d.pending = append(d.pending, r)
	}
}

// sendChangelog implements changelogCollector: changelog records are kept
// as output (read them with TakeOutput("<app id>-<store>-changelog")) and
// acknowledged at once.
func (d *TestDriver) SendChangelog(_ *task, r *kgo.Record, acked *atomic.Int64) {
	r.Offset = d.offsets[r.Topic]
	d.offsets[r.Topic]++
	d.outputs[r.Topic] = append(d.outputs[r.Topic], r)
	d.Env.Counters.ChangelogProduced.Add(1)
	acked.Store(r.Offset + 1)
}

func (d *TestDriver) Pipe(r *kgo.Record) error {
	if d.Closed {
		return engine.ErrClosed
	}
	for _, g := range d.Topo.Globals {
		if g.Topic == r.Topic {
			// A global table's topic updates its store at once, as the
			// App's global updater would.
			st := d.Env.Globals[g.Store]
			if r.Value == nil {
				return st.Delete(r.Key)
			}
			return st.Put(r.Key, r.Value)
		}
	}
	if d.Topo.SubtopologyFor(d.Env.AppID, r.Topic) == nil {
		return fmt.Errorf("%w: topic %q is not read by the topology", engine.ErrMissingTopic, r.Topic)
	}
	r.Partition = 0
	r.Offset = d.offsets[r.Topic]
	d.offsets[r.Topic]++
	d.pending = append(d.pending, r)
	return d.drain()
}

// drain processes pending input, including records the topology wrote to
// topics it reads, until nothing is left that a task may process now.
func (d *TestDriver) drain() error {
	for len(d.pending) > 0 {
		r := d.pending[0]
		d.pending = d.pending[1:]
		tk := d.tasks[d.Topo.SubtopologyFor(d.Env.AppID, r.Topic)]
		in := &kgo.Record{Topic: r.Topic, Partition: 0, Offset: r.Offset, Key: r.Key, Value: r.Value,
			Headers: r.Headers, Timestamp: r.Timestamp}
		tk.Add(in)
		tk.SetEndOffset(r.Topic, r.Offset+1)
		if err := d.process(tk); err != nil {
			d.pending = nil
			return err
		}
	}
	return nil
}

// process processes what tk may process now (all it has buffered, unless
// it waits for an empty input: MaxTaskIdle) and flushes its caches.
func (d *TestDriver) process(tk *task) error {
	for {
		n, err := tk.Process(1 << 20)
		if err != nil {
			return err
		}
		if n == 0 {
			return tk.FlushCaches()
		}
	}
}

func (d *TestDriver) AdvanceWallClock(dur time.Duration) error {
	if d.Closed {
		return engine.ErrClosed
	}
	d.clock = d.clock.Add(dur)
	d.Env.ShedLog.Flush(d.Env.Logger, d.clock)
	for _, st := range d.Topo.Subs {
		if err := d.tasks[st].PunctuateWallClock(); err != nil {
			return err
		}
		// Records kept by an idle wait that is over now.
		if err := d.process(d.tasks[st]); err != nil {
			return err
		}
	}
	return d.drain()
}

func (d *TestDriver) Now() time.Time { return d.clock }

func (d *TestDriver) TakeOutput(topic string) []*kgo.Record {
	out := d.outputs[topic]
	delete(d.outputs, topic)
	return out
}

func (d *TestDriver) Close() error {
	if d.Closed {
		return nil
	}
	d.Closed = true
	var errs []error
	for _, st := range d.Topo.Subs {
		if tk := d.tasks[st]; tk != nil {
			if n := tk.TotalBuffered(); n > 0 {
				d.Env.Logger.Warn("kstream: test driver closed with records a task kept waiting for an empty input (MaxTaskIdle); they were not processed",
					"task", tk.ID.String(), "records", n)
			}
			if err := tk.Close(); err != nil {
				errs = append(errs, err)
			}
		}
	}
	for _, st := range d.Env.Globals {
		errs = append(errs, st.Close())
	}
	return engine.JoinErrors(errs)
}
