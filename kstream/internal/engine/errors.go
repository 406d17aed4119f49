package engine

import (
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
)

var (
	// ErrTopology reports a topology that cannot be built or run.
	ErrTopology = errors.New("kstream: invalid topology")
	// ErrDuplicateName reports two operators given the same name.
	ErrDuplicateName = errors.New("kstream: duplicate node name")
	// ErrUnknownChild reports ForwardTo with a name that is not a child.
	ErrUnknownChild = errors.New("kstream: forward to unknown child")
	// ErrInvalidTimestamp reports a record whose timestamp is negative.
	ErrInvalidTimestamp = errors.New("kstream: invalid (negative) record timestamp")
	// ErrConfig reports options that conflict or are out of range.
	ErrConfig = errors.New("kstream: invalid configuration")
	// ErrCopartition reports co-partitioned topics whose partition counts
	// differ.
	ErrCopartition = errors.New("kstream: co-partitioned topics have different partition counts")
	// ErrMissingTopic reports a source or sink topic that does not exist.
	ErrMissingTopic = errors.New("kstream: topic does not exist")
	// ErrClosed reports use of an App or test driver after Close.
	ErrClosed = errors.New("kstream: closed")
	// ErrOptionNotApplicable reports a NodeOpt given to an operator it does
	// not apply to.
	ErrOptionNotApplicable = errors.New("kstream: option does not apply to this operator")
	// ErrUnnamed reports, under RequireExplicitNames, stores or internal
	// topics left to generated names.
	ErrUnnamed = errors.New("kstream: stores and internal topics must be named")
	// ErrPanic wraps a panic raised by user code while processing.
	ErrPanic = errors.New("kstream: panic in user code")
	// ErrInternalTopic reports an internal topic (repartition or
	// changelog) that exists with another partition count than the
	// topology needs, or that cannot be created.
	ErrInternalTopic = errors.New("kstream: internal topic does not match the topology")
	// ErrUnknownStore reports a store name the topology does not have (or,
	// from GetStore and StoreOf, a store the node is not connected to).
	ErrUnknownStore = errors.New("kstream: unknown store")
	// ErrStoreNotAvailable reports a query scan that a rebalance
	// interrupted: a task holding part of the store moved away (or the App
	// stopped) while the scan ran. Retry the query.
	ErrStoreNotAvailable = errors.New("kstream: store not available here now")
	// ErrRebalancing reports a query whose routing is not known now: the
	// group is rebalancing, or this instance has not received its first
	// assignment yet. Retry the query.
	ErrRebalancing = errors.New("kstream: rebalancing, query metadata not available")
	// ErrStateDirLocked reports a state directory already locked by another
	// App instance (another process, or another App of this one): give
	// every instance its own StateDir.
	ErrStateDirLocked = errors.New("kstream: state directory locked by another instance")
	// ErrReadOnlyStore reports a write to a store the caller may only read:
	// a global table's store seen from a processor.
	ErrReadOnlyStore = errors.New("kstream: store is read-only here")
)

// ProcessingError reports a record that failed inside the topology, with
// where it came from and the node where it failed.
type ProcessingError struct {
	Task      TaskID
	Node      string
	Topic     string // empty inside a punctuator
	Partition int32
	Offset    int64
	Err       error
}

// Error formats the error with its coordinates.
func (e *ProcessingError) Error() string {
	if e.Topic == "" {
		return fmt.Sprintf("kstream: task %s node %q (punctuation): %v", e.Task, e.Node, e.Err)
	}
	return fmt.Sprintf("kstream: task %s node %q processing topic %q partition %d offset %d: %v",
		e.Task, e.Node, e.Topic, e.Partition, e.Offset, e.Err)
}

// Unwrap returns the cause.
func (e *ProcessingError) Unwrap() error { return e.Err }

// ProductionError reports a record the runtime could not write to Kafka.
type ProductionError struct {
	Topic     string
	Partition int32
	Err       error
}

// Error formats the error with its topic and partition, and for an
// authorization failure the permission that is missing.
func (e *ProductionError) Error() string {
	if errors.Is(e.Err, kerr.TopicAuthorizationFailed) {
		return fmt.Sprintf("kstream: produce to topic %q partition %d: not authorized (the principal needs WRITE and DESCRIBE on TOPIC %q): %v", e.Topic, e.Partition, e.Topic, e.Err)
	}
	return fmt.Sprintf("kstream: produce to topic %q partition %d: %v", e.Topic, e.Partition, e.Err)
}

// Unwrap returns the cause.
func (e *ProductionError) Unwrap() error { return e.Err }

func JoinErrors(errs []error) error { return errors.Join(errs...) }
