package serde

// Serde turns values of type T into bytes and back. Implementations must be
// safe for concurrent use: one Serde is shared by every task of an App.
//
// A nil byte slice is Kafka's null (a tombstone when it is a value). Serialize
// returns nil only for a value that means null; Deserialize receives nil for a
// null key or value and decides what it means (the standard serdes return the
// zero value of T).
type Serde[T any] interface {
	// Serialize encodes v for topic. The topic lets schema-aware serdes pick
	// a subject; simple serdes ignore it.
	Serialize(topic string, v T) ([]byte, error)
	// Deserialize decodes b, read from topic. It must not keep b after it
	// returns: the runtime may reuse the buffer.
	Deserialize(topic string, b []byte) (T, error)
}

// Appender is implemented by serdes whose encoding can be appended to a
// caller's buffer, and is never null: the runtime's sinks encode a record's
// key and value into one buffer allocated with the record, instead of one
// slice per Serialize. Append(dst, topic, v) must append exactly the bytes
// Serialize(topic, v) returns. The standard String, Int32, Int64, Uint64,
// Float32 and Float64 serdes implement it.
type Appender[T any] interface {
	// Append appends the encoding of v for topic to dst and returns the
	// extended slice.
	Append(dst []byte, topic string, v T) ([]byte, error)
}
