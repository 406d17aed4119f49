// Package commit holds the delivery guarantees: how a worker commits its
// tasks' progress under at-most-once, at-least-once and exactly-once, behind
// one interface, Protocol. The worker (kstream/internal/runtime) calls the
// protocol at fixed points of its loop and its rebalance callbacks, and the
// protocol drives the worker back through Host. A new guarantee is a new
// Protocol in this package; the worker does not change.
//
// Every method of a Protocol runs with the worker's lock held (the worker
// goroutine, or a rebalance callback that took the lock), except OnRevoked
// and OnLost, which kgo calls on its group goroutine: they take the lock
// themselves through Host.Locked when the protocol needs it.
package commit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamwork-go/streamwork/kstream/internal/engine"
)

// Guarantee selects how input offsets and outputs are committed.
type Guarantee int

const (
	// AtLeastOnce (the default) commits input offsets after every output of
	// the records before them was acknowledged by Kafka.
	AtLeastOnce Guarantee = iota
	// AtMostOnce commits the offsets of fetched records before processing
	// them.
	AtMostOnce
	// ExactlyOnce commits outputs, changelog records and input offsets in
	// one Kafka transaction per worker and commit interval (KIP-447).
	ExactlyOnce
)

// String returns "at-least-once", "at-most-once" or "exactly-once".
func (g Guarantee) String() string {
	switch g {
	case AtMostOnce:
		return "at-most-once"
	case ExactlyOnce:
		return "exactly-once"
	default:
		return "at-least-once"
	}
}

// ParseGuarantee parses the names String returns and Kafka Streams'
// processing.guarantee values, case-insensitively.
func ParseGuarantee(s string) (Guarantee, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "at-least-once", "at_least_once":
		return AtLeastOnce, nil
	case "at-most-once", "at_most_once":
		return AtMostOnce, nil
	case "exactly-once", "exactly_once", "exactly_once_v2":
		return ExactlyOnce, nil
	}
	return AtLeastOnce, fmt.Errorf("%w: unknown delivery guarantee %q (want at-least-once, at-most-once or exactly-once)", engine.ErrConfig, s)
}

// MarshalText implements encoding.TextMarshaler, with the names of String.
func (g Guarantee) MarshalText() ([]byte, error) { return []byte(g.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler, with ParseGuarantee.
func (g *Guarantee) UnmarshalText(b []byte) error {
	v, err := ParseGuarantee(string(b))
	if err != nil {
		return err
	}
	*g = v
	return nil
}

// Host is the worker a protocol commits for. Its methods run under the
// worker's lock, except Locked, which takes it.
type Host interface {
	// Logger and Counters are the worker's.
	Logger() *slog.Logger
	Counters() *engine.Counters
	// Committed counts one commit (or committed transaction) of the
	// worker, in Counters and in the worker's own metrics.
	Committed()
	// Tasks returns the worker's tasks in their processing order.
	Tasks() []*engine.Task
	// Client is the worker's group client; Session its transact session
	// (nil unless the protocol is transactional).
	Client() *kgo.Client
	Session() *kgo.GroupTransactSession
	// Flush waits until Kafka acknowledged or failed every record produced
	// so far and settles the failures through the production handler. It
	// returns an error wrapping context.DeadlineExceeded when ctx ends
	// first (the records stay buffered in the client, which keeps retrying
	// them), a *engine.ProductionError that the handler failed on, or an
	// error for which NeedsRestart is true under exactly-once.
	Flush(ctx context.Context) error
	// Stopping is done when the worker is shutting down.
	Stopping() <-chan struct{}
	// ProducedInTxn returns how many records were produced since the last
	// ForgetProduction; ForgetProduction resets it and drops the production
	// failures reported so far (their transaction aborted).
	ProducedInTxn() int
	ForgetProduction()
	// CloseTasks closes tasks and forgets them and their partitions.
	CloseTasks(tasks []*engine.Task, why string)
	// Unassign forgets partitions and returns the tasks that used them;
	// TasksOf returns those tasks and forgets nothing.
	Unassign(parts map[string][]int32) []*engine.Task
	TasksOf(parts map[string][]int32) []*engine.Task
	// Assigned reports whether the worker is assigned partition p of
	// topic; AssignedPartitions returns all of them.
	Assigned(topic string, p int32) bool
	AssignedPartitions() map[string][]int32
	// HasTask reports whether a task of the worker reads partition p of
	// topic (records of other partitions are dropped, not processed).
	HasTask(topic string, p int32) bool
	// CreateTasks makes the tasks of parts that the worker does not run.
	CreateTasks(parts map[string][]int32) error
	// ResumeDrained resumes the partitions of t paused for backpressure
	// whose buffers drained.
	ResumeDrained(t *engine.Task)
	// Closing reports whether the worker makes no more tasks.
	Closing() bool
	// WriteCheckpoint records the changelog offsets t's stores hold and
	// makes them durable (flushing write-through stores, committing the
	// open transaction of transactional ones: call it only once the Kafka
	// transaction holding their changelog records committed);
	// RemoveCheckpoint forgets what the stores may hold beyond the
	// committed changelog (a write-through store's checkpoint, so an
	// unclean stop restores it in full; a transactional store's open
	// transaction).
	WriteCheckpoint(t *engine.Task) error
	RemoveCheckpoint(t *engine.Task) error
	// IsRepartition reports whether topic is a repartition topic the
	// topology reads: its records are purged once committed.
	IsRepartition(topic string) bool
	// SetFailure records the error that stops the worker (the first one
	// wins); Failure returns it.
	SetFailure(err error)
	Failure() error
	// Locked runs fn with the worker's lock held.
	Locked(fn func())
}

// Protocol is how one delivery guarantee commits. See the package doc for
// when each method runs.
type Protocol interface {
	// Guarantee returns the guarantee the protocol implements.
	Guarantee() Guarantee
	// BeginRound runs at the top of each loop round, before anything of the
	// round is produced.
	BeginRound() error
	// Polled runs after each poll, before the fetches are routed to the
	// tasks; it returns what to route (nil: drop them, they are fetched
	// again).
	Polled(fs kgo.Fetches) (kgo.Fetches, error)
	// Routed runs after records were routed to the tasks: fs holds them.
	Routed(fs kgo.Fetches) error
	// CanProcess reports whether the tasks may process buffered records.
	CanProcess() bool
	// Commit commits the progress of every task (every commit interval).
	Commit() error
	// Assigning runs first thing when partitions are assigned, under the
	// worker's lock; Assigned runs once the worker noted them, before it
	// makes their tasks (not when it is closing or failed).
	Assigning()
	Assigned(parts map[string][]int32)
	// TaskStarting runs before a task processes its first record.
	TaskStarting(t *engine.Task) error
	// OnRevoked and OnLost are the group client's callbacks for revoked
	// and lost partitions (kgo's group goroutine; they take the worker's
	// lock through Host.Locked when they need it).
	OnRevoked(parts map[string][]int32)
	OnLost(parts map[string][]int32)
	// PartitionClosed forgets what the protocol keeps for a partition
	// whose task closed.
	PartitionClosed(topic string, p int32)
	// Shutdown commits what was processed and closes every task: a clean
	// stop.
	Shutdown() error
	// Abandon gives up what is not committed: the worker failed.
	Abandon()
	// Restarting runs when the worker replaces its client (a fenced
	// transactional producer): it closes the tasks and forgets the state
	// of the old client. The worker calls it before it closes the old
	// client and again after (what the old client's last callbacks
	// reported is dropped); a second call closes nothing.
	Restarting()
}

// New returns the protocol of guarantee g for worker h.
func New(g Guarantee, h Host) Protocol {
	switch g {
	case AtMostOnce:
		return &atMostOnce{atLeastOnce: atLeastOnce{h: h}, pending: make(map[string]map[int32]kgo.EpochOffset)}
	case ExactlyOnce:
		return newExactlyOnce(h)
	default:
		return &atLeastOnce{h: h}
	}
}

// Timeout bounds one offset commit, purge or transaction end, and how long
// a shutting-down worker waits for the producer.
const Timeout = time.Minute

// RestartError says the worker must restart its client (exactly-once: the
// producer was fenced, or its transaction cannot end).
type RestartError struct{ Err error }

func (e *RestartError) Error() string { return "kstream: the worker must restart: " + e.Err.Error() }

// Unwrap returns the cause.
func (e *RestartError) Unwrap() error { return e.Err }

// NeedsRestart reports whether err asks the worker to restart.
func NeedsRestart(err error) bool {
	var r *RestartError
	return errors.As(err, &r)
}

// IsFatal reports Kafka errors that waiting or rejoining does not fix.
func IsFatal(err error) bool {
	return errors.Is(err, kgo.ErrClientClosed) ||
		errors.Is(err, kerr.TopicAuthorizationFailed) ||
		errors.Is(err, kerr.GroupAuthorizationFailed) ||
		errors.Is(err, kerr.ClusterAuthorizationFailed) ||
		errors.Is(err, kerr.SaslAuthenticationFailed) ||
		errors.Is(err, kerr.TransactionalIDAuthorizationFailed)
}

// IsTxnError reports errors that doom the open transaction and may mean the
// producer was fenced: the worker restarts.
func IsTxnError(err error) bool {
	return errors.Is(err, kgo.ErrAborting) ||
		errors.Is(err, kerr.ProducerFenced) ||
		errors.Is(err, kerr.InvalidProducerEpoch) ||
		errors.Is(err, kerr.InvalidProducerIDMapping) ||
		errors.Is(err, kerr.UnknownProducerID) ||
		errors.Is(err, kerr.InvalidTxnState) ||
		errors.Is(err, kerr.TransactionAbortable) ||
		errors.Is(err, kerr.OutOfOrderSequenceNumber)
}
