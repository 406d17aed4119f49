package engine

import (
	"time"
)

// ErrorKind says which stage a record failed in.
type ErrorKind int

const (
	// DeserializationErrorKind: the record's key or value (or timestamp)
	// could not be read.
	DeserializationErrorKind ErrorKind = iota
	// ProcessingErrorKind: a node of the topology returned an error or
	// panicked.
	ProcessingErrorKind
	// ProductionErrorKind: a result could not be serialized or written.
	ProductionErrorKind
)

// String returns "deserialization", "processing" or "production".
func (k ErrorKind) String() string {
	switch k {
	case DeserializationErrorKind:
		return "deserialization"
	case ProcessingErrorKind:
		return "processing"
	default:
		return "production"
	}
}

// ErrorContext describes a failed record to an ErrorHandler. Key and Value
// are the record's original bytes (the input record for deserialization and
// processing errors, the output record for production errors). It is valid
// only during the handler call.
type ErrorContext struct {
	Kind      ErrorKind
	Task      TaskID
	Node      string // where it failed: the source node for deserialization errors
	Topic     string // empty for a failure inside a punctuator
	Partition int32
	Offset    int64 // -1 for production errors
	Timestamp time.Time
	Key       []byte
	Value     []byte
	Headers   []Header
	Err       error
}

// Decision is what an ErrorHandler wants done with a failed record.
type Decision struct {
	Action     DecisionAction
	DeadLetter string
}

type DecisionAction int

const (
	ActionFail DecisionAction = iota
	ActionSkip
	ActionDeadLetter
)

var (
	// Fail stops the App (Run returns the error). Nothing after the record
	// is committed, so a restart sees the record again.
	Fail = Decision{Action: ActionFail}
	// Skip drops the record, counts it and logs it, and goes on.
	Skip = Decision{Action: ActionSkip}
)

// DeadLetterTo writes the failed record's original key, value and headers to
// topic, with headers that say the error (see the DeadLetter header names),
// counts and logs it, and goes on. Under exactly-once the dead-letter write is
// part of the transaction.
func DeadLetterTo(topic string) Decision {
	return Decision{Action: ActionDeadLetter, DeadLetter: topic}
}

// ErrorHandler decides what happens to a record that failed. It is called on
// the task's goroutine and must be safe for concurrent use across tasks.
type ErrorHandler func(ec *ErrorContext) Decision

// LogAndFail is the default handler: it stops the App.
func LogAndFail(*ErrorContext) Decision { return Fail }

// LogAndSkip skips every failed record (each is counted and logged).
func LogAndSkip(*ErrorContext) Decision { return Skip }

// DeadLetter returns a handler that writes every failed record to topic.
func DeadLetter(topic string) ErrorHandler {
	return func(*ErrorContext) Decision { return DeadLetterTo(topic) }
}

// Header names of records written to a dead-letter topic.
const (
	HeaderError        = "streamwork.error"
	HeaderErrorKind    = "streamwork.error.kind"
	HeaderErrorNode    = "streamwork.error.node"
	HeaderSourceTopic  = "streamwork.source.topic"
	HeaderSourcePart   = "streamwork.source.partition"
	HeaderSourceOffset = "streamwork.source.offset"
	HeaderSourceTask   = "streamwork.source.task"
)
