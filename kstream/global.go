package kstream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamwork-go/streamwork/serde"
	"github.com/streamwork-go/streamwork/state"
)

// GlobalTable is a table that every App instance holds whole: all
// partitions of its topic, in one store per instance, kept up to date by the
// instance's global updater. Any task can look records up in it, so a
// lookup needs no co-partitioning (JoinGlobal, LeftJoinGlobal). An App does
// not process records until its global tables have caught up with their
// topics.
type GlobalTable[K, V any] struct {
	b    *Builder
	spec *globalSpec
	ks   serde.Serde[K]
	vs   serde.Serde[V]
}

// globalSpec describes one global table: its topic and the store holding it.
// The store keeps the topic's key and value bytes as they are.
type globalSpec struct {
	store    string
	topic    string
	inMemory bool
}

// StoreName returns the name of the table's store.
func (g GlobalTable[K, V]) StoreName() string { return g.spec.store }

// GlobalTableFrom reads topic as a global table: each record upserts its
// key, a tombstone deletes it. Options: StoreName (default
// "<topic>-global-store"), InMemoryStore.
func GlobalTableFrom[K, V any](b *Builder, topic string, ks serde.Serde[K], vs serde.Serde[V], opts ...NodeOpt) GlobalTable[K, V] {
	cfg := b.nodeCfg(opts)
	if topic == "" {
		b.errorf("%w: empty global table topic name", ErrTopology)
	}
	if ks == nil || vs == nil {
		b.errorf("%w: global table of %q needs a key and a value serde", ErrTopology, topic)
	}
	name := cfg.storeName
	if name == "" {
		name = topic + "-global-store"
		b.generatedNames = append(b.generatedNames, name)
	}
	for _, g := range b.globals {
		if g.store == name || g.topic == topic {
			b.errorf("%w: global table store %q / topic %q", ErrDuplicateName, name, topic)
		}
	}
	if _, dup := b.stores[name]; dup {
		b.errorf("%w: store %q", ErrDuplicateName, name)
	}
	spec := &globalSpec{store: name, topic: topic, inMemory: cfg.inMemory}
	b.globals = append(b.globals, spec)
	return GlobalTable[K, V]{b: b, spec: spec, ks: ks, vs: vs}
}

// JoinGlobal looks each record of s up in gt by the key keyFn computes and,
// when the table has that key, forwards joiner(value, table value) with the
// record's key (an inner join; records without a match are dropped).
// Tombstones are dropped.
func JoinGlobal[K, V, GK, GV, VR any](s Stream[K, V], gt GlobalTable[GK, GV], keyFn func(K, V) GK, joiner func(V, GV) VR, opts ...NodeOpt) Stream[K, VR] {
	return lookupGlobal(s, gt, "JOIN-GLOBAL", keyFn, func(v V, gv GV, found bool) (VR, bool) {
		var zero VR
		if !found {
			return zero, false
		}
		return joiner(v, gv), true
	}, opts)
}

// LeftJoinGlobal is JoinGlobal that also forwards records without a match:
// joiner gets found == false and the zero table value.
func LeftJoinGlobal[K, V, GK, GV, VR any](s Stream[K, V], gt GlobalTable[GK, GV], keyFn func(K, V) GK, joiner func(v V, gv GV, found bool) VR, opts ...NodeOpt) Stream[K, VR] {
	return lookupGlobal(s, gt, "LEFTJOIN-GLOBAL", keyFn, func(v V, gv GV, found bool) (VR, bool) {
		return joiner(v, gv, found), true
	}, opts)
}

func lookupGlobal[K, V, GK, GV, VR any](s Stream[K, V], gt GlobalTable[GK, GV], op string, keyFn func(K, V) GK,
	join func(V, GV, bool) (VR, bool), opts []NodeOpt) Stream[K, VR] {
	s.valid(op)
	if gt.b != s.b || gt.spec == nil {
		s.b.errorf("%w: %s with a global table of another Builder", ErrTopology, op)
		return Stream[K, VR]{b: s.b, n: s.n}
	}
	spec, gks, gvs := gt.spec, gt.ks, gt.vs
	return stateless(s, op, opts, func(r Record[K, V], d *downstream[K, VR]) {
		if r.Tombstone {
			return
		}
		t := d.t
		st := t.env.globals[spec.store]
		if st == nil {
			t.fail(t.curNode, ProcessingErrorKind, fmt.Errorf("%w: global store %q is not open", ErrTopology, spec.store))
			return
		}
		kb, err := gks.Serialize(spec.topic, keyFn(r.Key, r.Value))
		if err != nil {
			t.fail(t.curNode, ProcessingErrorKind, fmt.Errorf("global table %q: serialize key: %w", spec.store, err))
			return
		}
		vb, err := st.Get(kb)
		if err != nil {
			t.fail(t.curNode, ProcessingErrorKind, fmt.Errorf("global table %q: get: %w", spec.store, err))
			return
		}
		var gv GV
		if vb != nil {
			if gv, err = gvs.Deserialize(spec.topic, vb); err != nil {
				t.fail(t.curNode, ProcessingErrorKind, fmt.Errorf("global table %q: decode value: %w", spec.store, err))
				return
			}
		}
		if out, ok := join(r.Value, gv, vb != nil); ok {
			d.forward(WithValue(r, out))
		}
	})
}

// globalUpdater keeps an App instance's global stores up to date. It owns
// one kgo client (no group) that reads every partition of every global
// topic. bootstrap runs on the Run goroutine before the workers start; then
// run, on a goroutine owned by Run, is the stores' only writer until ctx
// ends; tasks read the stores concurrently (the engines allow concurrent
// readers). close, after run returned, checkpoints and closes the stores.
type globalUpdater struct {
	specs   []*globalSpec
	byTopic map[string]state.Store
	stores  map[string]state.Store
	client  *kgo.Client
	logger  *slog.Logger
	metrics *metrics
	// next is the offset after the last record applied, per partition.
	next       state.Checkpoint
	checkpoint string // the checkpoint file, "" for none
	interval   time.Duration
}

// openGlobals opens the stores of the topology's global tables with open,
// and a client reading their topics from the checkpoint (or the start).
func openGlobals(ctx context.Context, t *Topology, cfg *config, m *metrics, checkpoint string,
	open func(spec *globalSpec) (state.Store, error)) (*globalUpdater, error) {
	if len(t.globals) == 0 {
		return nil, nil
	}
	g := &globalUpdater{
		specs: t.globals, byTopic: map[string]state.Store{}, stores: map[string]state.Store{},
		logger: cfg.logger.With("component", "global-updater"), metrics: m,
		checkpoint: checkpoint, interval: cfg.commitInterval,
	}
	var err error
	if checkpoint != "" {
		if g.next, err = state.ReadCheckpoint(checkpoint); err != nil {
			g.logger.Warn("kstream: global checkpoint unreadable; restoring global tables from the start", "err", err)
			g.next = nil
		}
	}
	if g.next == nil {
		g.next = state.Checkpoint{}
	}
	for _, spec := range t.globals {
		st, err := open(spec)
		if err != nil {
			g.closeStores()
			return nil, fmt.Errorf("kstream: open global store %q: %w", spec.store, err)
		}
		if len(g.next) == 0 {
			// No checkpoint: the store may hold anything; start over.
			if err := wipe(st); err != nil {
				st.Close()
				g.closeStores()
				return nil, fmt.Errorf("kstream: wipe global store %q: %w", spec.store, err)
			}
		}
		g.stores[spec.store] = st
		g.byTopic[spec.topic] = st
	}
	return g, nil
}

func wipe(st state.Store) error {
	var keys [][]byte
	it := st.All()
	for it.Next() {
		keys = append(keys, append([]byte(nil), it.Key()...))
	}
	if err := it.Close(); err != nil {
		return err
	}
	for _, k := range keys {
		if err := st.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// bootstrap makes the client and applies every record up to the topics'
// end offsets as of now. It logs progress.
func (g *globalUpdater) bootstrap(ctx context.Context, cfg *config) error {
	admCl, err := kgo.NewClient(append(append([]kgo.Opt{}, cfg.clientOpts...), kgo.SeedBrokers(cfg.brokers...))...)
	if err != nil {
		return fmt.Errorf("kstream: global tables: %w", err)
	}
	defer admCl.Close()
	adm := kadm.NewClient(admCl)
	var topics []string
	for _, s := range g.specs {
		topics = append(topics, s.topic)
	}
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		return fmt.Errorf("kstream: global tables: list end offsets: %w", err)
	}
	starts, err := adm.ListStartOffsets(ctx, topics...)
	if err != nil {
		return fmt.Errorf("kstream: global tables: list start offsets: %w", err)
	}
	consume := map[string]map[int32]kgo.Offset{}
	target := map[state.TopicPartition]int64{}
	var missing []string
	for _, tp := range topics {
		if _, ok := ends[tp]; !ok {
			missing = append(missing, tp)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: global table topics %q", ErrMissingTopic, missing)
	}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			err = fmt.Errorf("kstream: global table topic %q partition %d: %w", o.Topic, o.Partition, o.Err)
			return
		}
		tp := state.TopicPartition{Topic: o.Topic, Partition: o.Partition}
		from, ok := g.next[tp]
		start, _ := starts.Lookup(o.Topic, o.Partition)
		if !ok || from < start.Offset || from > o.Offset {
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
	if err != nil {
		return err
	}
	opts := append(append([]kgo.Opt{}, cfg.clientOpts...),
		kgo.SeedBrokers(cfg.brokers...),
		kgo.ConsumePartitions(consume),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// Transaction markers come through, so the position is known even
		// when a topic ends with one.
		kgo.KeepControlRecords(),
	)
	if g.client, err = kgo.NewClient(opts...); err != nil {
		return fmt.Errorf("kstream: global tables: %w", err)
	}
	left := int64(0)
	for tp, end := range target {
		left += end - g.next[tp]
	}
	g.logger.Info("kstream: bootstrapping global tables", "tables", len(g.specs), "records_left", left)
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
			g.logger.Info("kstream: bootstrapping global tables", "records_done", applied, "partitions_left", len(target))
		}
	}
	g.logger.Info("kstream: global tables ready", "records", applied, "took", time.Since(started).Round(time.Millisecond))
	return g.writeCheckpoint()
}

// fatal returns the first fetch error that is not a context's end.
func (g *globalUpdater) fatal(fs kgo.Fetches) error {
	for _, fe := range fs.Errors() {
		if ctxErr(fe.Err) {
			continue
		}
		if isFatalKafkaError(fe.Err) {
			return fmt.Errorf("kstream: global table topic %q partition %d: %w", fe.Topic, fe.Partition, fe.Err)
		}
		g.logger.Warn("kstream: global table fetch error", "topic", fe.Topic, "partition", fe.Partition, "err", fe.Err)
	}
	return nil
}

// apply writes fetched records into their stores and returns how many.
func (g *globalUpdater) apply(fs kgo.Fetches) int64 {
	var n int64
	fs.EachRecord(func(r *kgo.Record) {
		tp := state.TopicPartition{Topic: r.Topic, Partition: r.Partition}
		g.next[tp] = r.Offset + 1
		if r.Attrs.IsControl() {
			return
		}
		st := g.byTopic[r.Topic]
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
			g.logger.Error("kstream: global store write failed", "store", st.Name(), "topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "err", err)
			return
		}
		n++
	})
	g.metrics.globalRecords.Add(n)
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
				g.logger.Warn("kstream: global checkpoint failed", "err", err)
			}
		}
	}
}

// writeCheckpoint flushes the stores and records how far they are.
func (g *globalUpdater) writeCheckpoint() error {
	if g.checkpoint == "" {
		return nil
	}
	for _, st := range g.stores {
		if err := st.Flush(); err != nil {
			return err
		}
	}
	return state.WriteCheckpoint(g.checkpoint, g.next)
}

// close checkpoints and closes the stores and the client. Call it after run
// returned.
func (g *globalUpdater) close() error {
	if g == nil {
		return nil
	}
	err := g.writeCheckpoint()
	if g.client != nil {
		g.client.Close()
	}
	return joinErrors([]error{err, g.closeStores()})
}

func (g *globalUpdater) closeStores() error {
	var errs []error
	for _, st := range g.stores {
		errs = append(errs, st.Close())
	}
	return joinErrors(errs)
}

// globalCheckpointPath is where an App keeps its global tables' checkpoint.
func globalCheckpointPath(stateDir string) string {
	return filepath.Join(stateDir, "global", ".checkpoint")
}

// ctxErr reports whether err is a context's end (our own poll deadline).
func ctxErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}
