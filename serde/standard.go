package serde

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
)

// The standard serdes. Each is stateless and safe for concurrent use; they
// are variables only because Go has no interface constants: do not reassign
// them.
//
// The fixed-width and string serdes produce exactly the bytes of Apache
// Kafka's Java serializers, so topics can be shared with Java applications.
// Deserialize of nil (Kafka null) returns the zero value of T with no error;
// Serialize never returns nil, except Bytes for a nil slice.
var (
	// String encodes a string as its bytes, which for valid UTF-8 is what
	// Kafka's StringSerializer writes. Deserialize copies b into a new string
	// without validating it, so any bytes round-trip unchanged (Java would
	// replace invalid UTF-8 with U+FFFD).
	String Serde[string] = stringSerde{}

	// Bytes passes byte slices through, like Kafka's ByteArraySerializer.
	// Serialize returns v itself, not a copy (nil for a nil v, which the
	// runtime writes as null): do not modify v until the record is produced.
	// Deserialize returns a copy of b, because the runtime reuses its
	// buffers; nil stays nil and empty stays empty.
	Bytes Serde[[]byte] = bytesSerde{}

	// Int32 encodes an int32 as 4 bytes, big-endian two's complement, like
	// Kafka's IntegerSerializer.
	Int32 Serde[int32] = int32Serde{}

	// Int64 encodes an int64 as 8 bytes, big-endian two's complement, like
	// Kafka's LongSerializer.
	Int64 Serde[int64] = int64Serde{}

	// Uint64 encodes a uint64 as 8 bytes, big-endian. Its bytes are those of
	// Int64 for the same bit pattern; Java has no unsigned counterpart.
	Uint64 Serde[uint64] = uint64Serde{}

	// Float64 encodes a float64 as the 8 bytes of its IEEE 754 bits,
	// big-endian, like Kafka's DoubleSerializer. As Java's doubleToLongBits
	// does, every NaN is written as the canonical NaN 0x7ff8000000000000;
	// Deserialize keeps the bits it reads.
	Float64 Serde[float64] = float64Serde{}

	// Float32 encodes a float32 as the 4 bytes of its IEEE 754 bits,
	// big-endian, like Kafka's FloatSerializer (which uses
	// floatToRawIntBits, so NaN payloads are kept).
	Float32 Serde[float32] = float32Serde{}
)

// canonicalNaN64 is the bit pattern Java's Double.doubleToLongBits returns
// for every NaN.
const canonicalNaN64 = 0x7ff8000000000000

// lengthError returns an error wrapping ErrInvalidLength for a typ value that
// takes want bytes but was given got.
func lengthError(typ string, want, got int) error {
	return fmt.Errorf("%w: %s needs %d bytes, got %d", ErrInvalidLength, typ, want, got)
}

type stringSerde struct{}

func (stringSerde) Serialize(_ string, v string) ([]byte, error) {
	// []byte("") is non-nil, so an empty string is not written as null.
	return []byte(v), nil
}

func (stringSerde) Append(dst []byte, _ string, v string) ([]byte, error) {
	return append(dst, v...), nil
}

func (stringSerde) Deserialize(_ string, b []byte) (string, error) {
	return string(b), nil
}

type bytesSerde struct{}

func (bytesSerde) Serialize(_ string, v []byte) ([]byte, error) {
	return v, nil
}

func (bytesSerde) Deserialize(_ string, b []byte) ([]byte, error) {
	return bytes.Clone(b), nil
}

type int32Serde struct{}

func (int32Serde) Serialize(topic string, v int32) ([]byte, error) {
	return int32Serde{}.Append(make([]byte, 0, 4), topic, v)
}

func (int32Serde) Append(dst []byte, _ string, v int32) ([]byte, error) {
	return binary.BigEndian.AppendUint32(dst, uint32(v)), nil
}

func (int32Serde) Deserialize(_ string, b []byte) (int32, error) {
	if b == nil {
		return 0, nil
	}
	if len(b) != 4 {
		return 0, lengthError("int32", 4, len(b))
	}
	return int32(binary.BigEndian.Uint32(b)), nil
}

type int64Serde struct{}

func (int64Serde) Serialize(topic string, v int64) ([]byte, error) {
	return int64Serde{}.Append(make([]byte, 0, 8), topic, v)
}

func (int64Serde) Append(dst []byte, _ string, v int64) ([]byte, error) {
	return binary.BigEndian.AppendUint64(dst, uint64(v)), nil
}

func (int64Serde) Deserialize(_ string, b []byte) (int64, error) {
	if b == nil {
		return 0, nil
	}
	if len(b) != 8 {
		return 0, lengthError("int64", 8, len(b))
	}
	return int64(binary.BigEndian.Uint64(b)), nil
}

type uint64Serde struct{}

func (uint64Serde) Serialize(topic string, v uint64) ([]byte, error) {
	return uint64Serde{}.Append(make([]byte, 0, 8), topic, v)
}

func (uint64Serde) Append(dst []byte, _ string, v uint64) ([]byte, error) {
	return binary.BigEndian.AppendUint64(dst, v), nil
}

func (uint64Serde) Deserialize(_ string, b []byte) (uint64, error) {
	if b == nil {
		return 0, nil
	}
	if len(b) != 8 {
		return 0, lengthError("uint64", 8, len(b))
	}
	return binary.BigEndian.Uint64(b), nil
}

type float64Serde struct{}

func (float64Serde) Serialize(topic string, v float64) ([]byte, error) {
	return float64Serde{}.Append(make([]byte, 0, 8), topic, v)
}

func (float64Serde) Append(dst []byte, _ string, v float64) ([]byte, error) {
	bits := math.Float64bits(v)
	if v != v { // NaN
		bits = canonicalNaN64
	}
	return binary.BigEndian.AppendUint64(dst, bits), nil
}

func (float64Serde) Deserialize(_ string, b []byte) (float64, error) {
	if b == nil {
		return 0, nil
	}
	if len(b) != 8 {
		return 0, lengthError("float64", 8, len(b))
	}
	return math.Float64frombits(binary.BigEndian.Uint64(b)), nil
}

type float32Serde struct{}

func (float32Serde) Serialize(topic string, v float32) ([]byte, error) {
	return float32Serde{}.Append(make([]byte, 0, 4), topic, v)
}

func (float32Serde) Append(dst []byte, _ string, v float32) ([]byte, error) {
	return binary.BigEndian.AppendUint32(dst, math.Float32bits(v)), nil
}

func (float32Serde) Deserialize(_ string, b []byte) (float32, error) {
	if b == nil {
		return 0, nil
	}
	if len(b) != 4 {
		return 0, lengthError("float32", 4, len(b))
	}
	return math.Float32frombits(binary.BigEndian.Uint32(b)), nil
}
