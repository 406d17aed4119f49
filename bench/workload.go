package main

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamwork-go/streamwork/kstream"
	"github.com/streamwork-go/streamwork/serde"
)

// The workloads, by name.
const (
	w1  = "W1"  // filter + map
	w2  = "W2"  // count by a re-keyed field
	w3  = "W3"  // one-minute tumbling windowed count, emit on update
	w3f = "W3f" // the same, emit final
	w4  = "W4"  // stream-table join
)

var workloads = []string{w1, w2, w3, w3f, w4}

// stateful reports whether workload w keeps changelogged state (so its
// restore rate is measured).
func stateful(w string) bool { return w == w2 || w == w3 || w == w3f }

// workloadDoc describes each workload for the report.
var workloadDoc = map[string]string{
	w1:  "filter + map (stateless)",
	w2:  "count by a re-keyed field (repartition, store, changelog)",
	w3:  "1-minute tumbling count, 100,000 keys, emit on update",
	w3f: "1-minute tumbling count, 100,000 keys, emit final: one output per window that closed (its partition's stream time reached its end)",
	w4:  "stream-table join, 100,000-key table",
}

// The shape of the input.
const (
	numKeys       = 100_000 // distinct input keys (and table rows)
	numCategories = 10_000  // distinct values of the re-keyed field (W2)
	span          = 2 * time.Hour
	windowMs      = 60_000
	partitions    = 6
)

// dataset is the input every run reads: n records whose event times run
// evenly over span from base (so an output's timestamp tells how far
// through the input the system is).
type dataset struct {
	n    int
	base int64 // ms of the first record; the table's rows are a minute older
}

func newDataset(n int, now time.Time) dataset {
	base := now.Add(-3*time.Hour).UnixMilli() / windowMs * windowMs
	return dataset{n: n, base: base}
}

func (d dataset) key(i int) string { return fmt.Sprintf("k%06d", i*7919%numKeys) }

func (d dataset) value(i int) string {
	v := fmt.Sprintf("id=%09d,cat=c%05d,amt=%04d,pad=", i, i*31%numCategories, i%10_000)
	return v + strings.Repeat("x", max(0, 100-len(v)))
}

func (d dataset) ts(i int) int64 { return d.base + int64(i)*span.Milliseconds()/int64(d.n) }

// progress maps an output timestamp to the fraction of the input before it.
func (d dataset) progress(ts int64) float64 {
	return float64(ts-d.base) / float64(span.Milliseconds())
}

func tableValue(k string) string { return "name-" + k }

// The transformations, shared by Streamwork and the raw loop (bench/ks
// does the same in Java).
func passes(v string) bool { return field(v, "amt=")%4 != 0 }

func field(v, name string) int {
	i := strings.Index(v, name) + len(name)
	j := strings.IndexByte(v[i:], ',')
	if j < 0 {
		j = len(v) - i
	}
	n, _ := strconv.Atoi(v[i : i+j])
	return n
}

func category(v string) string {
	i := strings.Index(v, "cat=") + 4
	return v[i : i+strings.IndexByte(v[i:], ',')]
}

// expected is what a workload's output must add up to.
type expected struct {
	count int              // W1, W4: the number of outputs
	sum   uint64           // W1, W4: the sum of the outputs' hashes
	final map[string]int64 // W2, W3, W3f: each key's last value
	exact bool             // W3f: each output's key is in final, once
}

func hashKV(k, v []byte) uint64 {
	h := fnv.New64a()
	h.Write(k)
	h.Write([]byte{0})
	h.Write(v)
	return h.Sum64()
}

func (d dataset) expect(w string) expected {
	var e expected
	if w == w2 || w == w3 || w == w3f {
		e.final = map[string]int64{}
	}
	// W3f emits the windows that closed: each partition's stream time
	// (its largest timestamp) reached their end.
	var streamTime [partitions]int64
	if w == w3f {
		e.exact = true
		for i := range d.n {
			p := partitionOf(d.key(i))
			streamTime[p] = max(streamTime[p], d.ts(i))
		}
	}
	for i := range d.n {
		k, v := d.key(i), d.value(i)
		switch w {
		case w1:
			if passes(v) {
				e.count++
				e.sum += hashKV([]byte(k), []byte(strings.ToUpper(v)))
			}
		case w2:
			e.final[category(v)]++
		case w3:
			ts := d.ts(i)
			e.final[k+"@"+strconv.FormatInt(ts-ts%windowMs, 10)]++
		case w3f:
			ts := d.ts(i)
			if start := ts - ts%windowMs; start+windowMs <= streamTime[partitionOf(k)] {
				e.final[k+"@"+strconv.FormatInt(start, 10)]++
			}
		case w4:
			e.count++
			e.sum += hashKV([]byte(k), []byte(v+"|"+tableValue(k)))
		}
	}
	return e
}

// partitionOf is the input partition of key k: the producer's default
// partitioner (murmur2 of the key, as Kafka's Java clients).
func partitionOf(k string) int {
	return int(keyPartitioner.Partition(&kgo.Record{Key: []byte(k)}, partitions))
}

var keyPartitioner = kgo.StickyKeyPartitioner(nil).ForTopic("")

// streamworkTopology builds workload w with Streamwork.
func streamworkTopology(w, input, table, output string) (*kstream.Topology, error) {
	b := kstream.NewBuilder()
	in := kstream.From(b, input, serde.String, serde.String)
	switch w {
	case w1:
		kstream.MapValues(in.Filter(func(_, v string) bool { return passes(v) }), strings.ToUpper).
			To(output, serde.String, serde.String)
	case w2:
		kstream.Count(kstream.GroupBy(in, func(_, v string) string { return category(v) }, serde.String, serde.String)).
			ToStream().To(output, serde.String, serde.Int64)
	case w3, w3f:
		var opts []kstream.NodeOpt
		if w == w3f {
			opts = append(opts, kstream.EmitFinal())
		}
		counts := kstream.WindowedCount(kstream.WindowedBy(kstream.GroupByKey(in, serde.String, serde.String),
			kstream.Tumbling(time.Minute, kstream.NoGrace)), opts...).ToStream()
		kstream.Map(counts, func(k kstream.Windowed[string], c int64) (string, int64) {
			return k.Key + "@" + strconv.FormatInt(k.Start, 10), c
		}).To(output, serde.String, serde.Int64)
	case w4:
		t := kstream.TableFrom(b, table, serde.String, serde.String)
		kstream.JoinTable(in, t, func(_ string, v, tv string) string { return v + "|" + tv },
			kstream.StreamJoined[string, string, string]{Key: serde.String, Left: serde.String, Right: serde.String}).
			To(output, serde.String, serde.String)
	default:
		return nil, fmt.Errorf("unknown workload %q", w)
	}
	return b.Build()
}

// runStreamwork runs workload w until ctx ends.
func runStreamwork(ctx context.Context, a childArgs) error {
	topo, err := streamworkTopology(a.workload, a.input, a.table, a.output)
	if err != nil {
		return err
	}
	g := kstream.AtLeastOnce
	if a.eos {
		g = kstream.ExactlyOnce
	}
	opts := []kstream.Opt{kstream.ApplicationID(a.appID), kstream.Brokers(a.brokers...),
		kstream.Guarantee(g), kstream.StateDir(a.stateDir), kstream.Workers(1),
		kstream.Logger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})))}
	if a.commitInterval > 0 {
		opts = append(opts, kstream.CommitInterval(a.commitInterval))
	}
	app, err := kstream.New(topo, opts...)
	if err != nil {
		return err
	}
	if !a.restore {
		return app.Run(ctx)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		watchRestore(ctx, app)
	}()
	err = app.Run(ctx)
	cancel()
	<-done
	return err
}

// restoreLine is how a child reports its restore: the changelog records
// restored and the seconds from the first store starting to restore to the
// last one done.
const restoreLine = "bench-restore records=%d seconds=%f\n"

// watchRestore polls app's metrics every 2 ms until its tasks are assigned
// and restored, then prints restoreLine, or returns when ctx ends.
func watchRestore(ctx context.Context, app *kstream.App) {
	var began time.Time
	t := time.NewTicker(2 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		m := app.Metrics()
		if began.IsZero() && len(m.RestoringTasks) > 0 {
			began = time.Now()
		}
		if !began.IsZero() && len(m.RestoringTasks) == 0 && len(m.Tasks) > 0 {
			fmt.Printf(restoreLine, m.RestoredRecords, time.Since(began).Seconds())
			return
		}
	}
}

// runRaw is the raw franz-go consume-transform-produce loop of W1:
// poll, filter and map, produce, then flush and commit (at-least-once) or
// end the transaction (exactly-once), until ctx ends.
func runRaw(ctx context.Context, a childArgs) error {
	if a.workload != w1 {
		return fmt.Errorf("the raw loop runs W1 only, not %s", a.workload)
	}
	opts := []kgo.Opt{kgo.SeedBrokers(a.brokers...), kgo.ConsumerGroup(a.appID), kgo.ConsumeTopics(a.input),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DefaultProduceTopic(a.output)}
	transform := func(r *kgo.Record) *kgo.Record {
		if !passes(string(r.Value)) {
			return nil
		}
		return &kgo.Record{Key: r.Key, Value: []byte(strings.ToUpper(string(r.Value))), Timestamp: r.Timestamp}
	}
	if a.eos {
		s, err := kgo.NewGroupTransactSession(append(opts, kgo.TransactionalID(a.appID+"-txn"),
			kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.RequireStableFetchOffsets())...)
		if err != nil {
			return err
		}
		defer s.Close()
		for {
			fs := s.PollFetches(ctx)
			if ctx.Err() != nil {
				return nil
			}
			if err := fs.Err0(); err != nil {
				return err
			}
			if err := s.Begin(); err != nil {
				return err
			}
			fs.EachRecord(func(r *kgo.Record) {
				if out := transform(r); out != nil {
					s.Produce(ctx, out, nil)
				}
			})
			if _, err := s.End(ctx, kgo.TryCommit); err != nil && !errors.Is(err, context.Canceled) {
				return err
			}
		}
	}
	cl, err := kgo.NewClient(append(opts, kgo.DisableAutoCommit())...)
	if err != nil {
		return err
	}
	defer cl.Close()
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err := fs.Err0(); err != nil {
			return err
		}
		fs.EachRecord(func(r *kgo.Record) {
			if out := transform(r); out != nil {
				cl.Produce(ctx, out, nil)
			}
		})
		if err := cl.Flush(ctx); err != nil {
			return err
		}
		if err := cl.CommitUncommittedOffsets(ctx); err != nil {
			return err
		}
	}
}
