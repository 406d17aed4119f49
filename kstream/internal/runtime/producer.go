package runtime

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamwork-go/streamwork/kstream/internal/commit"
	"github.com/streamwork-go/streamwork/kstream/internal/engine"
)

// produceFailure is an output record Kafka did not take.
type produceFailure struct {
	task engine.TaskID
	rec  *kgo.Record
	err  error
	// deadLetter marks a record the production handler sent to a
	// dead-letter topic: its own failure is fatal, so a broken dead-letter
	// topic cannot loop through the handler forever.
	DeadLetter bool
	// changelog marks a changelog record: its failure is fatal (the store
	// and its changelog would disagree), the handler is not asked.
	Changelog bool
	// acked is the changelog record's acknowledged offset (see
	// produceChangelog).
	acked *atomic.Int64
	// alone marks the failure of a record produced again on its own
	// (resendAlone): a refusal now is the record's own.
	alone bool
}

// tooLarge reports whether err is the broker's (or kgo's) refusal of a
// record or batch for its size. Kafka refuses a whole batch, and kgo then
// fails every record buffered for that partition with the same error, so
// such a failure does not say which record was too large.
func tooLarge(err error) bool {
	return errors.Is(err, kerr.MessageTooLarge) || errors.Is(err, kerr.RecordListTooLarge)
}

// producer writes the output records of one worker's tasks through the
// worker's client. Produce is asynchronous: promises run on kgo's
// goroutines and only append failures (under mu, a leaf lock) and count
// successes; the worker goroutine settles the failures with the production
// error handler (settleLocked) before every commit, so no commit covers an
// input record whose output failed without a engine.Skip or DeadLetterTo decision.
type producer struct {
	client  *kgo.Client
	Metrics *metrics
	// sentInTxn counts the records produced since the transaction began
	// (exactly-once; the worker goroutine only).
	sentInTxn int

	mu     sync.Mutex
	failed []produceFailure

	// promises are produce's promises by task and dead-letter flag, made
	// once each so that producing a record allocates no closure (the
	// worker goroutine only).
	promises map[promiseKey]func(*kgo.Record, error)
}

// promiseKey names one of the producer's promises.
type promiseKey struct {
	task       engine.TaskID
	deadLetter bool
}

// promise returns the promise of the records task id produces (dead
// letters or not): it counts a success and keeps a failure for the next
// settle.
func (p *producer) promise(id engine.TaskID, deadLetter bool) func(*kgo.Record, error) {
	k := promiseKey{id, deadLetter}
	if f, ok := p.promises[k]; ok {
		return f
	}
	f := func(r *kgo.Record, err error) {
		if err == nil {
			p.Metrics.Produced.Add(1)
			return
		}
		p.mu.Lock()
		p.failed = append(p.failed, produceFailure{task: id, rec: r, err: err, DeadLetter: deadLetter})
		p.mu.Unlock()
	}
	if p.promises == nil {
		p.promises = make(map[promiseKey]func(*kgo.Record, error))
	}
	p.promises[k] = f
	return f
}

// produce writes r asynchronously. It may block while the client's
// buffered-records limit is reached: that is the output backpressure.
//
// Under exactly-once the records go into the worker's open transaction.
func (p *producer) produce(id engine.TaskID, r *kgo.Record, deadLetter bool) {
	p.sentInTxn++
	p.client.Produce(context.Background(), r, p.promise(id, deadLetter))
}

// produceChangelog writes a changelog record asynchronously; when Kafka
// acknowledges it, acked is set to its offset + 1. Promises for one
// partition run in offset order, so acked only grows.
func (p *producer) produceChangelog(id engine.TaskID, r *kgo.Record, acked *atomic.Int64) {
	p.sentInTxn++
	p.client.Produce(context.Background(), r, func(r *kgo.Record, err error) {
		if err == nil {
			acked.Store(r.Offset + 1)
			p.Metrics.ChangelogProduced.Add(1)
			return
		}
		p.mu.Lock()
		p.failed = append(p.failed, produceFailure{task: id, rec: r, err: err, Changelog: true, acked: acked})
		p.mu.Unlock()
	})
}

// resendAlone produces the record of f again, alone: it waits until Kafka
// acknowledged or failed it, so no other record shares its batch. A
// failure is reported as any other (marked alone), for the next settle.
// It returns ctx's error when ctx ends first; the record stays in the
// client, which reports its outcome the same way later.
func (p *producer) resendAlone(ctx context.Context, f produceFailure) error {
	p.sentInTxn++
	r := &kgo.Record{Topic: f.rec.Topic, Partition: f.rec.Partition, Key: f.rec.Key, Value: f.rec.Value,
		Headers: f.rec.Headers, Timestamp: f.rec.Timestamp}
	done := make(chan struct{})
	p.client.Produce(context.Background(), r, func(r *kgo.Record, err error) {
		defer close(done)
		switch {
		case err == nil && f.Changelog:
			f.acked.Store(r.Offset + 1)
			p.Metrics.ChangelogProduced.Add(1)
		case err == nil:
			p.Metrics.Produced.Add(1)
		default:
			f.rec, f.err, f.alone = r, err, true
			p.mu.Lock()
			p.failed = append(p.failed, f)
			p.mu.Unlock()
		}
	})
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// requeue puts failures not settled yet back in front of those reported
// since.
func (p *producer) requeue(fs []produceFailure) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.failed = append(fs, p.failed...)
}

// takeFailures returns and forgets the failures reported so far.
func (p *producer) takeFailures() []produceFailure {
	p.mu.Lock()
	defer p.mu.Unlock()
	f := p.failed
	p.failed = nil
	return f
}

// send implements collector for the worker's tasks.
func (w *worker) Send(t *task, r *kgo.Record) { w.prod.produce(t.ID, r, false) }

// sendChangelog implements changelogCollector for the worker's tasks.
func (w *worker) SendChangelog(t *task, r *kgo.Record, acked *atomic.Int64) {
	w.prod.produceChangelog(t.ID, r, acked)
}

// flushLocked waits until Kafka acknowledged or failed every record produced
// so far, then settles the failures; it repeats while settling produced
// records (dead letters, records produced again alone). It returns the
// error that fails the worker (a failure the handler said to Fail on), or
// one wrapping ctx's error when ctx ends first: the records stay in the
// client, which keeps retrying them, and the caller decides whether to
// wait more (commit.Host.Flush).
func (w *worker) flushLocked(ctx context.Context) error {
	for {
		if err := w.client.Flush(ctx); err != nil {
			return fmt.Errorf("kstream: flush the producer: %w", err)
		}
		n, err := w.settleLocked(ctx)
		if err != nil || n == 0 {
			return err
		}
	}
}

// settleLocked asks the production error handler about every failure
// reported so far and returns how many records it produced (dead letters,
// records produced again), or the *engine.ProductionError that fails the
// worker. Failures of tasks this worker no longer owns (lost in a
// rebalance) are only logged: their input was not committed, so the task's
// new owner processes it again.
//
// A record refused for its size may only have shared a batch with the
// record that was too large: each such record is first produced again
// alone, in the order the records were produced (resendAlone), and the
// handler is asked only about a record refused alone. So the handler sees
// exactly the records the topic refuses, whatever the batching; the
// others are written, in their order in the partition. When ctx ends
// during a resend, the failures not settled yet are kept for the next
// settle and the error wraps ctx's.
func (w *worker) settleLocked(ctx context.Context) (int, error) {
	produced := 0
	fs := w.prod.takeFailures()
	for i, f := range fs {
		if tooLarge(f.err) && !f.alone {
			if _, owned := w.tasks[f.task]; owned || f.DeadLetter {
				if err := w.prod.resendAlone(ctx, f); err != nil {
					w.prod.requeue(fs[i+1:])
					return produced, fmt.Errorf("kstream: produce a refused record again alone to topic %q partition %d: %w", f.rec.Topic, f.rec.Partition, err)
				}
				produced++
				continue
			}
		}
		perr := &engine.ProductionError{Topic: f.rec.Topic, Partition: f.rec.Partition, Err: f.err}
		if w.txn && commit.IsTxnError(f.err) {
			// Not this record's fault: the transaction cannot commit, and
			// the producer may be fenced. The worker restarts; what the
			// transaction held is done again.
			return produced, &commit.RestartError{Err: perr}
		}
		if f.DeadLetter {
			w.Logger.Error("kstream: writing to the dead-letter topic failed; stopping", "task", f.task.String(), "err", perr)
			return produced, perr
		}
		if f.Changelog {
			if _, owned := w.tasks[f.task]; !owned {
				w.Logger.Warn("kstream: changelog write of a task no longer owned failed", "task", f.task.String(), "err", perr)
				continue
			}
			w.Logger.Error("kstream: writing to a changelog failed; stopping", "task", f.task.String(), "err", perr)
			return produced, perr
		}
		if _, owned := w.tasks[f.task]; !owned {
			w.Logger.Warn("kstream: output of a task no longer owned failed; its new owner reprocesses the input", "task", f.task.String(), "err", perr)
			continue
		}
		ec := &engine.ErrorContext{
			Kind: engine.ProductionErrorKind, Task: f.task, Topic: f.rec.Topic, Partition: f.rec.Partition, Offset: -1,
			Timestamp: f.rec.Timestamp, Key: f.rec.Key, Value: f.rec.Value, Headers: engine.FromKgoHeaders(f.rec.Headers), Err: f.err,
		}
		d := w.decideProduction(ec)
		switch d.Action {
		case engine.ActionSkip:
			w.Env.Counters.Skipped(engine.ProductionErrorKind)
			w.Logger.Warn("kstream: skipping output that could not be written", "task", f.task.String(), "err", perr)
		case engine.ActionDeadLetter:
			w.Env.Counters.DeadLettered(engine.ProductionErrorKind)
			w.Logger.Warn("kstream: sending output that could not be written to the dead-letter topic", "task", f.task.String(), "topic", d.DeadLetter, "err", perr)
			w.prod.produce(f.task, engine.DeadLetterRecord(d.DeadLetter, f.task, ec), true)
			produced++
		default:
			w.Logger.Error("kstream: output could not be written; stopping", "task", f.task.String(), "err", perr)
			return produced, perr
		}
	}
	return produced, nil
}

// settleRoundLocked settles the failures reported so far, between two
// rounds of the loop. Producing refused records again alone waits
// commit.Timeout at most (and not past ctx): the failures it could not
// settle in time stay for the next settle (the commit's flush at the
// latest), which applies the flush's waiting rules.
func (w *worker) settleRoundLocked(ctx context.Context) error {
	sctx, cancel := context.WithTimeout(ctx, commit.Timeout)
	defer cancel()
	_, err := w.settleLocked(sctx)
	if err != nil && sctx.Err() != nil && errors.Is(err, sctx.Err()) {
		return nil
	}
	return err
}

// decideProduction calls the production error handler; a panic in it counts
// as Fail.
func (w *worker) decideProduction(ec *engine.ErrorContext) (d engine.Decision) {
	defer func() {
		if p := recover(); p != nil {
			w.Logger.Error("kstream: production error handler panicked", "panic", fmt.Sprint(p))
			d = engine.Fail
		}
	}()
	return w.Env.OnProduce(ec)
}
