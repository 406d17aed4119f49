package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// latencyResult is one latency run: sys on workload w with input produced
// at a fixed rate, each input record's produce time against the time the
// verifying consumer saw the first output that includes it.
type latencyResult struct {
	workload, system string
	eos              bool
	rate             int
	p50, p99, max    time.Duration
	records          int // input records whose latency was measured
}

// latencyRuns reports whether workload w runs in latency mode under
// guarantee eos: every workload exactly-once (a 100 ms commit interval
// bounds how long a record cache holds an update), the stateless ones also
// at-least-once (whose 30 s commit interval would otherwise be what
// cached aggregations' latency measures).
func latencyRuns(w string, eos bool) bool { return eos || w == w1 || w == w4 }

// runLatency runs sys on workload w against a fresh input topic: once the
// child's consumer group is stable, it produces cfg.latencyRate records a
// second for cfg.latencyDuration and reads the output read committed until
// every input record's effect is seen.
func runLatency(ctx context.Context, cfg config, adm *kadm.Client, w, sys string, eos bool, id, table string) (latencyResult, error) {
	lr := latencyResult{workload: w, system: sys, eos: eos, rate: cfg.latencyRate}
	input, output := id+"-in", id+"-out"
	for _, t := range []string{input, output} {
		if err := createTopic(ctx, adm, t); err != nil {
			return lr, err
		}
	}
	n := int(float64(cfg.latencyRate) * cfg.latencyDuration.Seconds())
	ds := newDataset(n, time.Now())
	want := ds.expect(w)
	stateDir, err := os.MkdirTemp("", "streamwork-bench-latency-*")
	if err != nil {
		return lr, err
	}
	defer os.RemoveAll(stateDir)
	cmd, logf, err := startChild(cfg, sys, w, eos, id, stateDir, input, table, output, false)
	if err != nil {
		return lr, err
	}
	defer logf.Close()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer stopChild(cmd, exited)

	vctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	if err := waitStable(vctx, adm, id, exited); err != nil {
		return lr, fmt.Errorf("%w; the child's log:\n%s", err, tail(logf.Name()))
	}
	sent := make([]atomic.Int64, n) // unix ns each input record was produced
	lats := make(chan latencyOut, 1)
	go func() { lats <- measureLatency(vctx, cfg.brokers, output, w, ds, want, sent) }()
	if err := produceAtRate(vctx, cfg, ds, input, sent); err != nil {
		cancel()
		<-lats
		return lr, err
	}
	var out latencyOut
	select {
	case out = <-lats:
	case err := <-exited:
		exited <- err
		cancel()
		<-lats
		return lr, fmt.Errorf("the child exited before its output was complete (%v); its log:\n%s", err, tail(logf.Name()))
	}
	if out.err != nil {
		return lr, fmt.Errorf("%w; the child's log:\n%s", out.err, tail(logf.Name()))
	}
	slices.Sort(out.lats)
	lr.records = len(out.lats)
	lr.p50 = out.lats[len(out.lats)/2]
	lr.p99 = out.lats[len(out.lats)*99/100]
	lr.max = out.lats[len(out.lats)-1]
	return lr, nil
}

// waitStable waits until consumer group id is stable with a member.
func waitStable(ctx context.Context, adm *kadm.Client, id string, exited chan error) error {
	for {
		gs, err := adm.DescribeGroups(ctx, id)
		if err == nil {
			if g, ok := gs[id]; ok && g.State == "Stable" && len(g.Members) > 0 {
				return nil
			}
		}
		select {
		case err := <-exited:
			exited <- err
			return fmt.Errorf("the child exited before its group was stable (%v)", err)
		case <-ctx.Done():
			return fmt.Errorf("group %s not stable: %w", id, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// produceAtRate writes ds to input at cfg.latencyRate records a second,
// noting each record's produce time in sent.
func produceAtRate(ctx context.Context, cfg config, ds dataset, input string, sent []atomic.Int64) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(cfg.brokers...), kgo.ProducerLinger(0))
	if err != nil {
		return err
	}
	defer cl.Close()
	var failed atomic.Pointer[error]
	promise := func(_ *kgo.Record, err error) {
		if err != nil {
			failed.CompareAndSwap(nil, &err)
		}
	}
	start := time.Now()
	t := time.NewTicker(time.Millisecond)
	defer t.Stop()
	i := 0
	for i < ds.n {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		due := min(ds.n, int(time.Since(start).Seconds()*float64(cfg.latencyRate))+1)
		for ; i < due; i++ {
			sent[i].Store(time.Now().UnixNano())
			cl.Produce(ctx, &kgo.Record{Topic: input, Key: []byte(ds.key(i)), Value: []byte(ds.value(i)), Timestamp: time.UnixMilli(ds.ts(i))}, promise)
		}
	}
	if err := cl.Flush(ctx); err != nil {
		return err
	}
	if p := failed.Load(); p != nil {
		return fmt.Errorf("produce the latency input: %w", *p)
	}
	return nil
}

type latencyOut struct {
	lats []time.Duration
	err  error
}

// measureLatency reads output (read committed) until each input record of
// ds that has an effect on it is seen, and returns each one's latency: for
// W1 and W4 the output carries the input's id; for W2, W3 and W3f an
// output of count c for a key covers that key's first c input records.
func measureLatency(ctx context.Context, brokers []string, output, w string, ds dataset, want expected, sent []atomic.Int64) latencyOut {
	var out latencyOut
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(output),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		out.err = err
		return out
	}
	defer cl.Close()
	// The input records behind each output key, in input order (W2, W3,
	// W3f), and how many of them were seen.
	byKey := map[string][]int{}
	covered := map[string]int{}
	total := want.count
	if want.final != nil {
		for i := range ds.n {
			v := ds.value(i)
			var k string
			switch w {
			case w2:
				k = category(v)
			default:
				ts := ds.ts(i)
				k = ds.key(i) + "@" + strconv.FormatInt(ts-ts%windowMs, 10)
			}
			if _, ok := want.final[k]; ok {
				byKey[k] = append(byKey[k], i)
			}
		}
		total = 0
		for _, c := range want.final {
			total += int(c)
		}
	}
	seen := make([]bool, ds.n)
	note := func(i int, now time.Time) {
		if !seen[i] {
			seen[i] = true
			out.lats = append(out.lats, now.Sub(time.Unix(0, sent[i].Load())))
		}
	}
	for len(out.lats) < total {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			out.err = fmt.Errorf("latency output incomplete: %d of %d input records seen", len(out.lats), total)
			return out
		}
		if err := fs.Err0(); err != nil && !errors.Is(err, context.Canceled) {
			out.err = err
			return out
		}
		now := time.Now()
		fs.EachRecord(func(r *kgo.Record) {
			if want.final == nil {
				v := strings.ToLower(string(r.Value))
				j := strings.Index(v, "id=")
				if j < 0 || len(v) < j+12 {
					return
				}
				i, err := strconv.Atoi(v[j+3 : j+12])
				if err == nil && i < ds.n {
					note(i, now)
				}
				return
			}
			if len(r.Value) != 8 {
				return
			}
			k := string(r.Key)
			c := int(binary.BigEndian.Uint64(r.Value))
			ids := byKey[k]
			for ; covered[k] < min(c, len(ids)); covered[k]++ {
				note(ids[covered[k]], now)
			}
		})
	}
	return out
}
