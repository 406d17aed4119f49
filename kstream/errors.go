package kstream

import "github.com/streamwork-go/streamwork/kstream/internal/engine"

// Sentinel errors; match them with errors.Is.
var (
	// ErrTopology reports a topology that cannot be built or run.
	ErrTopology = engine.ErrTopology
	// ErrDuplicateName reports two operators given the same name.
	ErrDuplicateName = engine.ErrDuplicateName
	// ErrUnknownChild reports ForwardTo with a name that is not a child.
	ErrUnknownChild = engine.ErrUnknownChild
	// ErrInvalidTimestamp reports a record whose timestamp is negative.
	ErrInvalidTimestamp = engine.ErrInvalidTimestamp
	// ErrConfig reports options that conflict or are out of range.
	ErrConfig = engine.ErrConfig
	// ErrCopartition reports co-partitioned topics whose partition counts
	// differ.
	ErrCopartition = engine.ErrCopartition
	// ErrMissingTopic reports a source or sink topic that does not exist.
	ErrMissingTopic = engine.ErrMissingTopic
	// ErrClosed reports use of an App or test driver after Close.
	ErrClosed = engine.ErrClosed
	// ErrOptionNotApplicable reports a NodeOpt given to an operator it does
	// not apply to.
	ErrOptionNotApplicable = engine.ErrOptionNotApplicable
	// ErrUnnamed reports, under RequireExplicitNames, stores or internal
	// topics left to generated names.
	ErrUnnamed = engine.ErrUnnamed
	// ErrPanic wraps a panic raised by user code while processing.
	ErrPanic = engine.ErrPanic
	// ErrInternalTopic reports an internal topic (repartition or
	// changelog) that exists with another partition count than the
	// topology needs, or that cannot be created.
	ErrInternalTopic = engine.ErrInternalTopic
	// ErrUnknownStore reports a store name the topology does not have (or,
	// from GetStore and StoreOf, a store the node is not connected to).
	ErrUnknownStore = engine.ErrUnknownStore
	// ErrStoreNotAvailable reports a query scan that a rebalance
	// interrupted: a task holding part of the store moved away (or the App
	// stopped) while the scan ran. Retry the query.
	ErrStoreNotAvailable = engine.ErrStoreNotAvailable
	// ErrRebalancing reports a query whose routing is not known now: the
	// group is rebalancing (a worker of this instance gave up partitions
	// and waits for its next assignment), or the instance has not received
	// its first assignment yet. It is retryable: retry the query.
	ErrRebalancing = engine.ErrRebalancing
	// ErrStateDirLocked reports a state directory already locked by another
	// App instance (another process, or another App of this one): give
	// every instance its own StateDir.
	ErrStateDirLocked = engine.ErrStateDirLocked
	// ErrReadOnlyStore reports a write to a store the caller may only read:
	// a global table's store seen from a processor.
	ErrReadOnlyStore = engine.ErrReadOnlyStore
)

// ProcessingError is a record (or punctuation) that failed in a node and
// that its error handler decided to Fail on. It carries the task, node and
// the record's topic, partition and offset.
type ProcessingError = engine.ProcessingError

// ProductionError is a record that Kafka refused.
type ProductionError = engine.ProductionError
