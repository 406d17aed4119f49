package engine

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Record is a key-value pair with its timestamp and headers, as it flows
// through a topology. Records are values: an operator that changes one passes
// a modified copy Downstream.
type Record[K, V any] struct {
	Key       K
	Value     V
	Timestamp time.Time
	Headers   []Header
	// Tombstone marks a record that deletes its key: Kafka's null value.
	// Its Value is the zero value. Sources set it for records with a null
	// value (their serde is not called); sinks write a null value for it;
	// tables delete the key. Value mappers pass tombstones through without
	// calling the mapper; aggregations drop them (counted in
	// Metrics.Dropped).
	Tombstone bool
}

// Header is a Kafka record header.
type Header struct {
	Key   string
	Value []byte
}

// RecordMetadata says where the record being processed was read from.
type RecordMetadata struct {
	Topic     string
	Partition int32
	Offset    int64
}

// TaskID names a task: one sub-topology working on one partition number of
// its input topics. It prints as "<Subtopology>_<partition>".
type TaskID struct {
	Subtopology int
	Partition   int32
}

// String returns the id in the form "0_3".
func (id TaskID) String() string {
	return itoa(int64(id.Subtopology)) + "_" + itoa(int64(id.Partition))
}

// MarshalText encodes the id as String does, so a TaskID can key a JSON
// object (Metrics.StandbyLag, for one).
func (id TaskID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText decodes an id written by MarshalText ("0_3").
func (id *TaskID) UnmarshalText(b []byte) error {
	sub, part, ok := strings.Cut(string(b), "_")
	s, err1 := strconv.Atoi(sub)
	p, err2 := strconv.ParseInt(part, 10, 32)
	if !ok || err1 != nil || err2 != nil || s < 0 || p < 0 {
		return fmt.Errorf("kstream: malformed task id %q", b)
	}
	id.Subtopology, id.Partition = s, int32(p)
	return nil
}

func itoa(v int64) string {
	if v == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	neg := v < 0
	if neg {
		v = -v
	}
	for v > 0 {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
	}
	if neg {
		i--
		b[i] = '-'
	}
	return string(b[i:])
}

func Millis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// CompareTaskIDs orders task ids by sub-topology, then partition.
func CompareTaskIDs(a, b TaskID) int {
	if a.Subtopology != b.Subtopology {
		return a.Subtopology - b.Subtopology
	}
	return int(a.Partition - b.Partition)
}
