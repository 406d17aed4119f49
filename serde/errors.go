package serde

import (
	"errors"
	"strconv"
)

// ErrInvalidLength is wrapped by the errors of the fixed-width serdes (Int32,
// Int64, Uint64, Float32, Float64) when Deserialize receives a non-nil input
// of the wrong length. The wrapping error names the expected and the actual
// length. Test for it with errors.Is.
var ErrInvalidLength = errors.New("serde: invalid length")

// ErrDecode is wrapped by the errors of serdes that parse their input (JSON)
// when Deserialize receives bytes that do not decode into T. The wrapping
// error also wraps the parser's own error. Test for it with errors.Is.
var ErrDecode = errors.New("serde: cannot decode")

// DecodeError reports a key or value that could not be decoded, with where it
// came from. The runtime returns it (or passes it to the deserialization
// exception handler) when a Serde's Deserialize fails on a consumed record.
// Match it with errors.As; errors.Is sees through it to Err.
type DecodeError struct {
	// Topic is the topic the record was read from.
	Topic string
	// Partition is the partition the record was read from.
	Partition int32
	// Offset is the record's offset in its partition.
	Offset int64
	// Key is true when the key failed to decode, false when the value did.
	Key bool
	// Err is the error returned by Deserialize.
	Err error
}

// Error formats e as, for example,
// `serde: decode value of topic "t" partition 3 offset 42: <err>`.
func (e *DecodeError) Error() string {
	what := "value"
	if e.Key {
		what = "key"
	}
	s := "serde: decode " + what + " of topic " + strconv.Quote(e.Topic) +
		" partition " + strconv.FormatInt(int64(e.Partition), 10) +
		" offset " + strconv.FormatInt(e.Offset, 10)
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the error returned by Deserialize.
func (e *DecodeError) Unwrap() error { return e.Err }
