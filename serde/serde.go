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
