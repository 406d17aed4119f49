package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamwork-go/streamwork/kstream/internal/commit"
	"github.com/streamwork-go/streamwork/kstream/internal/engine"
	"github.com/streamwork-go/streamwork/kstream/internal/wire"
	"github.com/streamwork-go/streamwork/state"
)

// globalUpdater keeps an App instance's global stores up to date. It owns
// one kgo client (no group) that reads every partition of every global
// topic. bootstrap runs on the Run goroutine before the workers start; then
// run, on a goroutine owned by Run, is the stores' only writer until ctx
// ends; tasks read the stores concurrently (the engines allow concurrent
// readers). close, after run returned, checkpoints and closes the stores.
type globalUpdater struct {
	specs   []*globalSpec
	ByTopic map[string]state.Store
	Stores  map[string]state.Store
	client  *kgo.Client
	Logger  *slog.Logger
	Metrics *metrics
	// next is the offset after the last record applied, per partition.
	next     wire.Checkpoint
	interval time.Duration
	// missingSince is when a partition was first reported unknown.
	missingSince map[wire.TopicPartition]time.Time
}

// openGlobals opens the stores of the topology's global tables with open,
// with the offsets each store records (its checkpoint, a metadata record
// kept with its data); a store without one is wiped, and its topic is read
// from the start.
func openGlobals(t *engine.Topology, cfg *Config, m *metrics, open func(spec *globalSpec) (state.Store, error)) (*globalUpdater, error) {
	if len(t.Globals) == 0 {
		return nil, nil
	}
	g := &globalUpdater{
		specs: t.Globals, ByTopic: map[string]state.Store{}, Stores: map[string]state.Store{},
		Logger: cfg.Logger.With("component", "global-updater"), Metrics: m,
		next: wire.Checkpoint{}, interval: cfg.CommitInterval,
	}
	for _, spec := range t.Globals {
		st, err := open(spec)
		if err != nil {
			g.CloseStores()
			return nil, fmt.Errorf("kstream: open global store %q: %w", spec.Store, err)
		}
		g.Stores[spec.Store] = st
		g.ByTopic[spec.Topic] = st
		if err := g.loadCheckpoint(spec, st); err != nil {
			g.CloseStores()
			return nil, err
		}
	}
	return g, nil
}

// loadCheckpoint adds the offsets st records for spec's topic to g.next, or
// wipes st when it records none (it may hold anything).
func (g *globalUpdater) loadCheckpoint(spec *globalSpec, st state.Store) error {
	b, err := st.GetMeta(OffsetsMeta)
	var c wire.Checkpoint
	if err == nil && b != nil {
		c, err = wire.DecodeCheckpoint(b)
	}
	if err != nil {
		g.Logger.Warn("kstream: global store checkpoint unreadable; restoring it from the start", "store", spec.Store, "err", err)
	}
	if len(c) == 0 {
		if err := st.DeleteRange(nil, nil); err != nil {
			return fmt.Errorf("kstream: wipe global store %q: %w", spec.Store, err)
		}
		return nil
	}
	for tp, off := range c {
		if tp.Topic == spec.Topic {
			g.next[tp] = off
		}
	}
	return nil
}

// bootstrap makes the client and applies every record up to the topics'
// end offsets as of now. It logs progress.
func (g *globalUpdater) bootstrap(ctx context.Context, cfg *Config) error {
	starts, ends, err := g.listOffsets(ctx, cfg)
	if err != nil {
		return err
	}
	if err := g.wipeStale(starts, ends); err != nil {
		return err
	}
	consume, target, err := g.plan(starts, ends)
	if err != nil {
		return err
	}
	opts := append(append([]kgo.Opt{}, cfg.ClientOpts...),
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.ConsumePartitions(consume),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// Transaction markers come through, so the position is known even
		// when a topic ends with one.
		kgo.KeepControlRecords(),
	)
	if g.client, err = kgo.NewClient(opts...); err != nil {
		return fmt.Errorf("kstream: global tables: %w", err)
	}
	if err := g.loadTo(ctx, target); err != nil {
		return err
	}
	return g.writeCheckpoint()
}

// listOffsets returns the start and end offsets of every partition of the
// global tables' topics; a topic that does not exist is an error wrapping
// ErrMissingTopic.
func (g *globalUpdater) listOffsets(ctx context.Context, cfg *Config) (starts, ends kadm.ListedOffsets, err error) {
	admCl, err := kgo.NewClient(append(append([]kgo.Opt{}, cfg.ClientOpts...), kgo.SeedBrokers(cfg.Brokers...))...)
	if err != nil {
		return nil, nil, fmt.Errorf("kstream: global tables: %w", err)
	}
	defer admCl.Close()
	adm := kadm.NewClient(admCl)
	var topics []string
	for _, s := range g.specs {
		topics = append(topics, s.Topic)
	}
	if ends, err = adm.ListEndOffsets(ctx, topics...); err != nil {
		return nil, nil, fmt.Errorf("kstream: global tables: list end offsets: %w", err)
	}
	if starts, err = adm.ListStartOffsets(ctx, topics...); err != nil {
		return nil, nil, fmt.Errorf("kstream: global tables: list start offsets: %w", err)
	}
	var missing []string
	for _, tp := range topics {
		if _, ok := ends[tp]; !ok {
			missing = append(missing, tp)
		}
	}
	ends.Each(func(o kadm.ListedOffset) {
		if errors.Is(o.Err, kerr.UnknownTopicOrPartition) {
			missing = append(missing, o.Topic)
		}
	})
	if len(missing) > 0 {
		return nil, nil, fmt.Errorf("%w: global table topics %q", engine.ErrMissingTopic, missing)
	}
	return starts, ends, nil
}

// plan returns where to read each partition from (its checkpoint, else its
// start) and, for those not read to their end yet, the end to reach.
func (g *globalUpdater) plan(starts, ends kadm.ListedOffsets) (map[string]map[int32]kgo.Offset, map[wire.TopicPartition]int64, error) {
	consume := map[string]map[int32]kgo.Offset{}
	target := map[wire.TopicPartition]int64{}
	var err error
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			err = fmt.Errorf("kstream: global table topic %q partition %d: %w", o.Topic, o.Partition, o.Err)
			return
		}
		tp := wire.TopicPartition{Topic: o.Topic, Partition: o.Partition}
		from, ok := g.next[tp]
		if !ok {
			start, _ := starts.Lookup(o.Topic, o.Partition)
			from = start.Offset
			g.next[tp] = from
		}
		if consume[o.Topic] == nil {
			consume[o.Topic] = map[int32]kgo.Offset{}
		}
		consume[o.Topic][o.Partition] = kgo.NewOffset().At(from)
		if from < o.Offset {
			target[tp] = o.Offset
		}
	})
	return consume, target, err
}

// loadTo applies records until every partition of target reached its end
// offset, logging progress every 5s.
func (g *globalUpdater) loadTo(ctx context.Context, target map[wire.TopicPartition]int64) error {
	left := int64(0)
	for tp, end := range target {
		left += end - g.next[tp]
	}
	g.Logger.Info("kstream: bootstrapping global tables", "tables", len(g.specs), "records_left", left)
	started, lastLog, applied := time.Now(), time.Now(), int64(0)
	for len(target) > 0 {
		fs := g.client.PollFetches(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err := g.fatal(fs); err != nil {
			return err
		}
		applied += g.apply(fs)
		for tp, end := range target {
			if g.next[tp] >= end {
				delete(target, tp)
			}
		}
		if time.Since(lastLog) >= 5*time.Second {
			lastLog = time.Now()
			g.Logger.Info("kstream: bootstrapping global tables", "records_done", applied, "partitions_left", len(target))
		}
	}
	g.Logger.Info("kstream: global tables ready", "records", applied, "took", time.Since(started).Round(time.Millisecond))
	return nil
}

// wipeStale wipes the store of every topic that has a partition whose
// checkpointed offset lies outside the partition's offsets now (the topic
// was deleted and made again, or the checkpoint is from elsewhere), and
// forgets that topic's offsets: it is loaded again from its start, as Kafka
// Streams does with invalid offsets.
func (g *globalUpdater) wipeStale(starts, ends kadm.ListedOffsets) error {
	stale := map[string]bool{}
	for tp, from := range g.next {
		start, ok1 := starts.Lookup(tp.Topic, tp.Partition)
		end, ok2 := ends.Lookup(tp.Topic, tp.Partition)
		if !ok1 || !ok2 || from < start.Offset || from > end.Offset {
			stale[tp.Topic] = true
		}
	}
	for topic := range stale {
		st := g.ByTopic[topic]
		g.Logger.Warn("kstream: global store checkpoint outside its topic's offsets; wiping the store and loading the topic from its start", "topic", topic, "store", st.Name())
		if err := st.DeleteRange(nil, nil); err != nil {
			return fmt.Errorf("kstream: wipe global store %q: %w", st.Name(), err)
		}
		for tp := range g.next {
			if tp.Topic == topic {
				delete(g.next, tp)
			}
		}
	}
	return nil
}

// fatal returns the first fetch error that is not a context's end.
func (g *globalUpdater) fatal(fs kgo.Fetches) error {
	for _, fe := range fs.Errors() {
		if ctxErr(fe.Err) {
			continue
		}
		if commit.IsFatal(fe.Err) {
			return fmt.Errorf("kstream: global table topic %q partition %d: %w", fe.Topic, fe.Partition, fe.Err)
		}
		if errors.Is(fe.Err, kerr.UnknownTopicID) || g.missingTooLong(fe) {
			// The topic was deleted (and maybe made again: the client does
			// not follow a new topic id): nothing more will come.
			return fmt.Errorf("%w: global table topic %q partition %d is gone (deleted?): %w", engine.ErrMissingTopic, fe.Topic, fe.Partition, fe.Err)
		}
		g.Logger.Warn("kstream: global table fetch error", "topic", fe.Topic, "partition", fe.Partition, "err", fe.Err)
	}
	return nil
}

// missingGrace is how long a global topic's partition may be reported
// unknown before the updater fails: long enough for metadata to settle after
// a leader change, short enough that a deleted topic is reported.
const missingGrace = 10 * time.Second

// missingTooLong reports whether fe says that its partition is unknown and
// has said so for missingGrace.
func (g *globalUpdater) missingTooLong(fe kgo.FetchError) bool {
	tp := wire.TopicPartition{Topic: fe.Topic, Partition: fe.Partition}
	if !errors.Is(fe.Err, kerr.UnknownTopicOrPartition) {
		delete(g.missingSince, tp)
		return false
	}
	if g.missingSince == nil {
		g.missingSince = map[wire.TopicPartition]time.Time{}
	}
	first, ok := g.missingSince[tp]
	if !ok {
		g.missingSince[tp] = time.Now()
		return false
	}
	return time.Since(first) >= missingGrace
}

// apply writes fetched records into their stores and returns how many.
func (g *globalUpdater) apply(fs kgo.Fetches) int64 {
	var n int64
	fs.EachRecord(func(r *kgo.Record) {
		tp := wire.TopicPartition{Topic: r.Topic, Partition: r.Partition}
		g.next[tp] = r.Offset + 1
		if r.Attrs.IsControl() {
			return
		}
		st := g.ByTopic[r.Topic]
		if st == nil {
			return
		}
		var err error
		if r.Value == nil {
			err = st.Delete(r.Key)
		} else {
			err = st.Put(r.Key, r.Value)
		}
		if err != nil {
			// A store that cannot be written is not recoverable here.
			g.Logger.Error("kstream: global store write failed", "store", st.Name(), "topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "err", err)
			return
		}
		n++
	})
	g.Metrics.GlobalRecords.Add(n)
	return n
}

// run applies new records until ctx ends, checkpointing every interval.
func (g *globalUpdater) run(ctx context.Context) error {
	last := time.Now()
	for {
		pctx, cancel := context.WithTimeout(ctx, g.interval)
		fs := g.client.PollFetches(pctx)
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		if err := g.fatal(fs); err != nil {
			return err
		}
		g.apply(fs)
		if time.Since(last) >= g.interval {
			last = time.Now()
			if err := g.writeCheckpoint(); err != nil {
				g.Logger.Warn("kstream: global checkpoint failed", "err", err)
			}
		}
	}
}

// writeCheckpoint records in each store how far it is (the offsets of its
// topic's partitions) and flushes it with its data.
func (g *globalUpdater) writeCheckpoint() error {
	for _, spec := range g.specs {
		c := wire.Checkpoint{}
		for tp, off := range g.next {
			if tp.Topic == spec.Topic {
				c[tp] = off
			}
		}
		b, err := wire.EncodeCheckpoint(c)
		if err != nil {
			return fmt.Errorf("kstream: global store %q: checkpoint: %w", spec.Store, err)
		}
		if err := putMetaAndFlush(g.Stores[spec.Store], b); err != nil {
			return fmt.Errorf("kstream: global store %q: checkpoint: %w", spec.Store, err)
		}
	}
	return nil
}

// close checkpoints and closes the stores and the client. Call it after run
// returned.
func (g *globalUpdater) Close() error {
	if g == nil {
		return nil
	}
	err := g.writeCheckpoint()
	if g.client != nil {
		g.client.Close()
	}
	return engine.JoinErrors([]error{err, g.CloseStores()})
}

func (g *globalUpdater) CloseStores() error {
	var errs []error
	for _, st := range g.Stores {
		errs = append(errs, st.Close())
	}
	return engine.JoinErrors(errs)
}

// ctxErr reports whether err is a context's end (our own poll deadline).
func ctxErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}
