package kstream

import "github.com/streamwork-go/streamwork/kstream/internal/engine"

// ErrorKind says where a record failed.
type ErrorKind = engine.ErrorKind

const (
	// DeserializationErrorKind: a source could not decode the record (or
	// its timestamp extractor failed, or gave a negative timestamp).
	DeserializationErrorKind = engine.DeserializationErrorKind
	// ProcessingErrorKind: a node returned an error or panicked.
	ProcessingErrorKind = engine.ProcessingErrorKind
	// ProductionErrorKind: a sink could not encode the record, or Kafka
	// refused it.
	ProductionErrorKind = engine.ProductionErrorKind
)

// ErrorContext describes a failed record for an ErrorHandler: the failure,
// the task and node, and the original record's coordinates and bytes.
type ErrorContext = engine.ErrorContext

// Decision is what an ErrorHandler decides: Fail, Skip, or DeadLetter to a
// topic.
type Decision = engine.Decision

// ErrorHandler decides what happens to a record that failed. It is called on
// the task's goroutine and must be safe for concurrent use across tasks.
type ErrorHandler = engine.ErrorHandler

var (
	// Fail stops the worker (and so the App) with the error; nothing past
	// the failed record is committed.
	Fail = engine.Fail
	// Skip drops the failed record; it is counted in Metrics.Skipped and
	// logged.
	Skip = engine.Skip
)

// DeadLetterTo writes the failed record's original key, value and headers
// to topic, with headers saying what failed (HeaderError and the others),
// in the same commit as the outputs; it is counted in Metrics.DeadLettered.
func DeadLetter(topic string) Decision { return engine.DeadLetterTo(topic) }

// The handlers below decide the same for every failure; each is named after
// its Decision.

// LogAndFail is the default handler: it stops the App (Fail).
func LogAndFail(*ErrorContext) Decision { return Fail }

// LogAndSkip skips every failed record (Skip; each is counted and logged).
func LogAndSkip(*ErrorContext) Decision { return Skip }

// LogAndDeadLetter returns a handler that writes every failed record to
// topic (DeadLetter).
func LogAndDeadLetter(topic string) ErrorHandler {
	d := DeadLetter(topic)
	return func(*ErrorContext) Decision { return d }
}

// Header names of records written to a dead-letter topic.
const (
	HeaderError        = engine.HeaderError
	HeaderErrorKind    = engine.HeaderErrorKind
	HeaderErrorNode    = engine.HeaderErrorNode
	HeaderSourceTopic  = engine.HeaderSourceTopic
	HeaderSourcePart   = engine.HeaderSourcePart
	HeaderSourceOffset = engine.HeaderSourceOffset
	HeaderSourceTask   = engine.HeaderSourceTask
)
