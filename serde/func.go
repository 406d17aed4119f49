package serde

// Func returns a Serde that calls ser to serialize and de to deserialize. It
// adapts user code (a protobuf or Avro codec, say) to the Serde interface.
//
// ser and de are called exactly as the Serde methods are: they must be safe
// for concurrent use, de receives nil for a Kafka null, and de must not keep
// b after it returns (copy what it needs). Func panics if ser or de is nil;
// a one-way serde should pass a function that returns an error.
func Func[T any](ser func(topic string, v T) ([]byte, error), de func(topic string, b []byte) (T, error)) Serde[T] {
	if ser == nil || de == nil {
		panic("serde: Func called with a nil ser or de function")
	}
	return funcSerde[T]{ser: ser, de: de}
}

type funcSerde[T any] struct {
	ser func(topic string, v T) ([]byte, error)
	de  func(topic string, b []byte) (T, error)
}

func (f funcSerde[T]) Serialize(topic string, v T) ([]byte, error) {
	return f.ser(topic, v)
}

func (f funcSerde[T]) Deserialize(topic string, b []byte) (T, error) {
	return f.de(topic, b)
}
