package runtime

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

const (
	// lagLookupInterval is how often a partition that a task waits on
	// (engine.Task.AwaitingLag) is looked up again while no fetch brings
	// its records.
	lagLookupInterval = time.Second
	// lagLookupTimeout bounds one lookup.
	lagLookupTimeout = 10 * time.Second
)

// lagLookups finds out where input partitions end, and where fetching them
// starts, for tasks that wait on them (max.task.idle.ms, engine/idle.go)
// when no fetch has told: kgo returns a fetch only when it has records or
// an error, so a task whose partition was caught up when it was assigned
// (an empty table topic, say) would otherwise never learn that it is. A
// lookup is a ListOffsets request (last stable offsets and log start
// offsets) plus the group's committed offsets as the client knows them.
//
// One lookup runs at a time, on a goroutine of its own that touches no
// task and takes no lock of the worker: the worker goroutine starts it
// (lookUpLagLocked) and applies its result under mu (applyLagLocked) at the
// next round, and stop cancels it and waits for it. Everything but done is
// the worker goroutine's, under mu.
type lagLookups struct {
	looked  map[topicPartition]time.Time // when each partition was last looked up
	running bool
	cancel  context.CancelFunc // of the lookup running
	done    chan lagLookup     // capacity 1: the running lookup's result
	wg      sync.WaitGroup
}

// lagLookup is what one lookup found: per partition, where fetching it
// starts (-1 when it cannot tell) and where it ends.
type lagLookup struct {
	parts []partitionEnds
	err   error
}

type partitionEnds struct {
	tp         topicPartition
	start, end int64
}

func (p *lagLookups) init() {
	p.looked = make(map[topicPartition]time.Time)
	p.done = make(chan lagLookup, 1)
}

// lookUpLagLocked starts a lookup of the partitions that started tasks
// wait on and that were not looked up in the last lagLookupInterval,
// unless one runs.
func (w *worker) lookUpLagLocked(ctx context.Context) {
	if w.lag.running || w.cfg.MaxTaskIdle < 0 {
		return
	}
	now := time.Now()
	var due []topicPartition
	for _, t := range w.Order {
		if !t.Started {
			continue
		}
		for _, topic := range t.AwaitingLag() {
			tp := topicPartition{topic, t.ID.Partition}
			if last, ok := w.lag.looked[tp]; ok && now.Sub(last) < lagLookupInterval {
				continue
			}
			w.lag.looked[tp] = now
			due = append(due, tp)
		}
	}
	if len(due) == 0 {
		return
	}
	lctx, cancel := context.WithTimeout(ctx, lagLookupTimeout)
	w.lag.running, w.lag.cancel = true, cancel
	w.lag.wg.Add(1)
	go func(cl *kgo.Client) {
		defer w.lag.wg.Done()
		defer cancel()
		w.lag.done <- lookUpEnds(lctx, cl, due)
	}(w.client)
}

// applyLagLocked hands the result of a finished lookup to the tasks.
func (w *worker) applyLagLocked() {
	var res lagLookup
	select {
	case res = <-w.lag.done:
	default:
		return
	}
	w.lag.running = false
	if res.err != nil {
		w.Logger.Warn("kstream: looking up the end offsets of empty input partitions failed; retrying", "err", res.err)
	}
	for _, pe := range res.parts {
		t := w.taskForLocked(pe.tp.Topic, pe.tp.partition)
		if t == nil {
			continue
		}
		if pe.start >= 0 {
			t.SetStartOffset(pe.tp.Topic, pe.start)
		}
		t.SetEndOffset(pe.tp.Topic, pe.end)
	}
}

// stop cancels the running lookup and waits for it; its result is dropped.
func (p *lagLookups) stop() {
	if !p.running {
		return
	}
	p.cancel()
	p.wg.Wait()
	<-p.done
	p.running = false
}

// lookUpEnds asks Kafka where parts end (their last stable offsets: the
// workers read committed) and works out where fetching them starts: the
// group's committed offset as cl knows it (kept within the log), else the
// log start when the client starts partitions without a committed offset
// there (the default) or the partition is empty, else the end (any other
// start offset is taken as caught up). Without a committed offset the
// start may also be unknown (-1) because the client has not loaded it
// yet; a fetch, or the next lookup, tells.
func lookUpEnds(ctx context.Context, cl *kgo.Client, parts []topicPartition) lagLookup {
	var topics []string
	for _, tp := range parts {
		topics = append(topics, tp.Topic)
	}
	slices.Sort(topics)
	topics = slices.Compact(topics)
	adm := kadm.NewClient(cl)
	ends, err := adm.ListCommittedOffsets(ctx, topics...)
	if err != nil && len(ends) == 0 {
		return lagLookup{err: err}
	}
	starts, serr := adm.ListStartOffsets(ctx, topics...)
	if err == nil {
		err = serr
	}
	committed := cl.CommittedOffsets()
	startOffset, _ := cl.OptValue(kgo.ConsumeStartOffset).(kgo.Offset)
	fromLogStart := startOffset == kgo.NewOffset().AtStart()
	res := lagLookup{err: err}
	for _, tp := range parts {
		e, ok := ends.Lookup(tp.Topic, tp.partition)
		if !ok || e.Err != nil || e.Offset < 0 {
			continue
		}
		s, sok := starts.Lookup(tp.Topic, tp.partition)
		sok = sok && s.Err == nil && s.Offset >= 0
		pe := partitionEnds{tp: tp, start: -1, end: e.Offset}
		c, cok := committed[tp.Topic][tp.partition]
		switch {
		case cok && c.Offset >= 0:
			pe.start = c.Offset
			if sok {
				pe.start = max(pe.start, s.Offset)
			}
		case sok && s.Offset >= e.Offset:
			pe.start = e.Offset // empty
		case !fromLogStart:
			pe.start = e.Offset
		}
		// Else the client starts at the log start, unless it has not
		// loaded the committed offset yet: unknown, a fetch tells.
		res.parts = append(res.parts, pe)
	}
	return res
}
