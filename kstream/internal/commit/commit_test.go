package commit

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamwork-go/streamwork/kstream/internal/engine"
)

// fakeHost is a worker with no client: Flush returns the errors queued in
// flushErrs, one per call, then nil.
type fakeHost struct {
	mu        sync.Mutex
	flushErrs []error
	flushes   int
	stopping  chan struct{}
	failure   error
	closed    []string
	counters  engine.Counters
	tasks     []*engine.Task
	produced  int
	forgotten int
}

var _ Host = (*fakeHost)(nil)

func newFakeHost() *fakeHost { return &fakeHost{stopping: make(chan struct{})} }

func (h *fakeHost) Logger() *slog.Logger               { return slog.New(slog.DiscardHandler) }
func (h *fakeHost) Counters() *engine.Counters         { return &h.counters }
func (h *fakeHost) Committed()                         { h.counters.Commits.Add(1) }
func (h *fakeHost) Tasks() []*engine.Task              { return h.tasks }
func (h *fakeHost) Client() *kgo.Client                { return nil }
func (h *fakeHost) Session() *kgo.GroupTransactSession { return nil }
func (h *fakeHost) Stopping() <-chan struct{}          { return h.stopping }
func (h *fakeHost) ProducedInTxn() int                 { return h.produced }
func (h *fakeHost) ForgetProduction()                  { h.produced = 0; h.forgotten++ }
func (h *fakeHost) CloseTasks(ts []*engine.Task, why string) {
	h.closed = append(h.closed, why)
	h.tasks = nil
}
func (h *fakeHost) Unassign(map[string][]int32) []*engine.Task { return h.tasks }
func (h *fakeHost) TasksOf(map[string][]int32) []*engine.Task  { return nil }
func (h *fakeHost) Assigned(string, int32) bool                { return true }
func (h *fakeHost) AssignedPartitions() map[string][]int32     { return nil }
func (h *fakeHost) HasTask(string, int32) bool                 { return true }
func (h *fakeHost) CreateTasks(map[string][]int32) error       { return nil }
func (h *fakeHost) ResumeDrained(*engine.Task)                 {}
func (h *fakeHost) Closing() bool                              { return false }
func (h *fakeHost) WriteCheckpoint(*engine.Task) error         { return nil }
func (h *fakeHost) RemoveCheckpoint(*engine.Task) error        { return nil }
func (h *fakeHost) IsRepartition(string) bool                  { return false }
func (h *fakeHost) SetFailure(err error) {
	if h.failure == nil {
		h.failure = err
	}
}
func (h *fakeHost) Failure() error { return h.failure }
func (h *fakeHost) Locked(fn func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	fn()
}

func (h *fakeHost) Flush(context.Context) error {
	h.flushes++
	if len(h.flushErrs) == 0 {
		return nil
	}
	err := h.flushErrs[0]
	h.flushErrs = h.flushErrs[1:]
	return err
}

// flushTimedOut is what a flush whose context ended returns.
var flushTimedOut = errors.Join(errors.New("kstream: flush the producer"), context.DeadlineExceeded)

// Regression: a broker outage longer than one flush timeout stopped the App
// ("flush the producer: context deadline exceeded" was fatal). Under
// at-least-once the commit waits as long as the worker runs.
func TestAtLeastOnceCommitOutlastsAnOutage(t *testing.T) {
	h := newFakeHost()
	h.flushErrs = []error{flushTimedOut, flushTimedOut, flushTimedOut}
	p := New(AtLeastOnce, h)
	if err := p.Commit(); err != nil {
		t.Fatalf("Commit = %v, want nil after the outage", err)
	}
	if h.flushes != 4 {
		t.Fatalf("flushes = %d, want 4 (3 timed out, then done)", h.flushes)
	}
}

// A worker that is shutting down waits one timeout at most, then gives up
// without committing.
func TestAtLeastOnceShutdownFlushIsBounded(t *testing.T) {
	h := newFakeHost()
	close(h.stopping)
	h.flushErrs = []error{flushTimedOut, flushTimedOut}
	p := New(AtLeastOnce, h)
	err := p.Shutdown()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown = %v, want a deadline error", err)
	}
	if h.flushes != 1 || len(h.closed) != 1 || h.closed[0] != "shutdown" {
		t.Fatalf("flushes %d, closed %v; want 1 flush and the tasks closed", h.flushes, h.closed)
	}
}

// A production failure the handler fails on is returned at once, never
// waited out.
func TestAtLeastOnceFlushFailureIsReturned(t *testing.T) {
	h := newFakeHost()
	perr := &engine.ProductionError{Topic: "out", Err: errors.New("record too large")}
	h.flushErrs = []error{perr}
	if err := New(AtLeastOnce, h).Commit(); !errors.Is(err, perr) {
		t.Fatalf("Commit = %v, want %v", err, perr)
	}
	if h.flushes != 1 {
		t.Fatalf("flushes = %d, want 1", h.flushes)
	}
}

// Under exactly-once a flush that times out restarts the worker (its
// transaction aborts), whatever the outage's length.
func TestExactlyOnceFlushTimeoutRestarts(t *testing.T) {
	h := newFakeHost()
	h.flushErrs = []error{flushTimedOut}
	p := newExactlyOnce(h)
	p.inTxn = true // no session: a transaction is open already
	err := p.Commit()
	if !NeedsRestart(err) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Commit = %v, want a restart caused by the deadline", err)
	}
}

// At-most-once processes nothing while fetched offsets wait for their
// commit, and forgets the pending commit of a closed partition.
func TestAtMostOncePendingBlocksProcessing(t *testing.T) {
	h := newFakeHost()
	p := New(AtMostOnce, h).(*atMostOnce)
	if !p.CanProcess() {
		t.Fatal("CanProcess with nothing pending = false")
	}
	p.pending["in"] = map[int32]kgo.EpochOffset{0: {Offset: 5}, 1: {Offset: 9}}
	if p.CanProcess() {
		t.Fatal("CanProcess with pending offsets = true")
	}
	p.PartitionClosed("in", 0)
	p.PartitionClosed("in", 1)
	if !p.CanProcess() || len(p.pending) != 0 {
		t.Fatalf("after closing both partitions: CanProcess %v, pending %v", p.CanProcess(), p.pending)
	}
}

func TestParseGuarantee(t *testing.T) {
	for in, want := range map[string]Guarantee{
		"at-least-once": AtLeastOnce, "AT_LEAST_ONCE": AtLeastOnce,
		"at-most-once": AtMostOnce, "exactly-once": ExactlyOnce, "exactly_once_v2": ExactlyOnce,
	} {
		got, err := ParseGuarantee(in)
		if err != nil || got != want {
			t.Errorf("ParseGuarantee(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := ParseGuarantee("twice"); !errors.Is(err, engine.ErrConfig) {
		t.Errorf("ParseGuarantee(twice) error = %v, want ErrConfig", err)
	}
}
