package kstream

import (
	"time"

	"github.com/streamwork-go/streamwork/kstream/internal/engine"
)

// Processor is a user-written node of a topology: it receives records of type
// Record[KIn, VIn] and forwards records of type Record[KOut, VOut] through its
// ProcessorContext. Each task has its own Processor instance, made by the
// supplier given to [Process], so a Processor needs no locking: the runtime
// calls Init, Process, punctuators and Close from one goroutine.
type Processor[KIn, VIn, KOut, VOut any] interface {
	// Init is called once before the first record, with the context the
	// processor keeps for forwarding and scheduling.
	Init(ctx ProcessorContext[KOut, VOut]) error
	// Process handles one record. A returned error goes to the processing
	// error handler, with the source record's coordinates.
	Process(r Record[KIn, VIn]) error
	// Close is called once when the task closes.
	Close() error
}

// ProcessorContext is what a Processor sees of its task. It is valid from
// Init until Close, and only on the task's goroutine.
type ProcessorContext[K, V any] interface {
	// Forward sends r to every child node, depth first: when Forward
	// returns, the whole downstream graph has processed r.
	Forward(r Record[K, V])
	// ForwardTo sends r to the named child node only. Forwarding to a name
	// that is not a child fails the record with ErrUnknownChild.
	ForwardTo(child string, r Record[K, V])
	// RecordMetadata returns where the current record was read from. It
	// returns false inside a punctuator, where there is no input record.
	RecordMetadata() (RecordMetadata, bool)
	// Schedule calls fn every interval of the given kind of time until the
	// returned Cancellable is cancelled or the task closes. See
	// PunctuationType for when it fires.
	Schedule(interval time.Duration, typ PunctuationType, fn Punctuator) Cancellable
	// TaskID returns the id of the task this processor runs in.
	TaskID() TaskID
	// ApplicationID returns the application id of the App.
	ApplicationID() string
	// StreamTime returns the task's stream time: the largest timestamp of
	// the records it has processed (zero before the first).
	StreamTime() time.Time
	// WallClockTime returns the task's wall-clock time (controlled by the
	// test driver in tests).
	WallClockTime() time.Time
}

// Punctuator is a function a processor schedules; ts is the time it fires
// for (stream time or wall-clock time).
type Punctuator = engine.Punctuator

// PunctuationType says which time a punctuator follows: StreamTime or
// WallClockTime.
type PunctuationType = engine.PunctuationType

const (
	// StreamTime punctuators follow the task's stream time. The first one
	// fires at the first record (schedules align to multiples of the
	// interval from the epoch); when stream time jumps over several
	// intervals, the punctuator fires once and re-aligns to the next
	// multiple (Kafka Streams' STREAM_TIME).
	StreamTime = engine.StreamTime
	// WallClockTime punctuators fire an interval after they were scheduled
	// and every interval after, by the task's wall clock, checked between
	// records (Kafka Streams' WALL_CLOCK_TIME).
	WallClockTime = engine.WallClockTime
)

// Cancellable stops a scheduled punctuator.
type Cancellable = engine.Cancellable
