// Package serde turns keys and values into the bytes of Kafka records and
// back.
//
// A [Serde] pairs a Serialize and a Deserialize for one Go type. The package
// provides the standard serdes [String], [Bytes], [Int32], [Int64], [Uint64],
// [Float32] and [Float64], whose bytes match Apache Kafka's Java serializers
// byte for byte; [JSON] for any type encoding/json handles; and [Func] to
// wrap user code such as a protobuf codec.
//
// A nil byte slice is Kafka's null. The standard serdes decode it to the zero
// value of T and never encode a value as nil, except [Bytes] for a nil slice.
// Every Serde in this package is stateless and safe for concurrent use.
//
// A serde may also implement [Appender], appending its encoding to a buffer:
// the runtime's sinks then encode key and value into one buffer allocated
// with the produced record. [String] and the fixed-width serdes do; a custom
// serde on a hot path can too.
//
// Decoding errors are values: the fixed-width serdes wrap [ErrInvalidLength],
// [JSON] wraps [ErrDecode], and the runtime reports a failed record as a
// [*DecodeError] carrying its topic, partition and offset. Match them with
// errors.Is and errors.As.
//
// Usage:
//
//	b, _ := serde.Int64.Serialize("clicks", 42) // 00 00 00 00 00 00 00 2a
//	n, err := serde.Int64.Deserialize("clicks", b)
//
//	type Click struct{ User string }
//	clicks := serde.JSON[Click]()
//	c, err := clicks.Deserialize("clicks", []byte(`{"User":"ann"}`))
package serde
