package serde

import (
	"encoding/json"
	"fmt"
)

// JSON returns a Serde that encodes T with encoding/json. It is stateless and
// safe for concurrent use.
//
// Serialize returns json.Marshal(v), so a nil pointer, map or slice is
// written as the JSON text null (not as Kafka null); marshal errors are
// returned as they are. Deserialize returns the zero value of T for nil
// (Kafka null) and otherwise json.Unmarshal's result; input that is not valid
// JSON for T yields an error wrapping both ErrDecode and the json error.
func JSON[T any]() Serde[T] {
	return jsonSerde[T]{}
}

type jsonSerde[T any] struct{}

func (jsonSerde[T]) Serialize(_ string, v T) ([]byte, error) {
	return json.Marshal(v)
}

func (jsonSerde[T]) Deserialize(_ string, b []byte) (T, error) {
	var v T
	if b == nil {
		return v, nil
	}
	if err := json.Unmarshal(b, &v); err != nil {
		var zero T
		return zero, fmt.Errorf("%w: json: %w", ErrDecode, err)
	}
	return v, nil
}
