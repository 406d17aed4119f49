package kstream

import "github.com/streamwork-go/streamwork/kstream/internal/engine"

// WithValue returns a copy of r carrying value v.
func WithValue[K, V, V2 any](r Record[K, V], v V2) Record[K, V2] {
	return Record[K, V2]{Key: r.Key, Value: v, Timestamp: r.Timestamp, Headers: r.Headers}
}

// WithKeyValue returns a copy of r carrying key k and value v.
func WithKeyValue[K, V, K2, V2 any](r Record[K, V], k K2, v V2) Record[K2, V2] {
	return Record[K2, V2]{Key: k, Value: v, Timestamp: r.Timestamp, Headers: r.Headers}
}

// Record is a typed record flowing through a topology: key, value,
// timestamp, headers, and whether it is a tombstone (Kafka's null value).
// Its Tombstone field marks a record that deletes its key: sources set it for
// records with a null value (their serde is not called); sinks write a null
// value for it; tables delete the key; value mappers pass tombstones
// through without calling the mapper; aggregations drop them (counted in
// Metrics.Dropped).
type Record[K, V any] = engine.Record[K, V]

// Header is a record header.
type Header = engine.Header

// RecordMetadata says where a record was read from.
type RecordMetadata = engine.RecordMetadata

// TaskID names a task: a sub-topology and a partition number. Its String
// form is "<sub-topology>_<partition>", as Kafka Streams writes it.
type TaskID = engine.TaskID
