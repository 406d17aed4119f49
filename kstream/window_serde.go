package kstream

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"

	"github.com/streamwork-go/streamwork/serde"
)

// TimeWindowedSerde returns a serde for keys of time, sliding or count
// windows in Kafka Streams' format, which its TimeWindowedSerializer
// writes and TimeWindowedDeserializer reads: the key's bytes (inner), then
// the window start as 8 bytes, big-endian. The end is not written; it is
// start + size when read back (size <= 0: math.MaxInt64, as Kafka Streams
// does without a window size).
func TimeWindowedSerde[K any](inner serde.Serde[K], size time.Duration) serde.Serde[Windowed[K]] {
	return timeWindowedSerde[K]{inner: inner, size: size.Milliseconds()}
}

type timeWindowedSerde[K any] struct {
	inner serde.Serde[K]
	size  int64
}

func (s timeWindowedSerde[K]) Serialize(topic string, w Windowed[K]) ([]byte, error) {
	kb, err := s.inner.Serialize(topic, w.Key)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(kb)+8)
	out = append(out, kb...)
	return binary.BigEndian.AppendUint64(out, uint64(w.Start)), nil
}

func (s timeWindowedSerde[K]) Deserialize(topic string, b []byte) (Windowed[K], error) {
	var w Windowed[K]
	if len(b) < 8 {
		return w, fmt.Errorf("kstream: time-windowed key of %d bytes, want at least 8", len(b))
	}
	k, err := s.inner.Deserialize(topic, b[:len(b)-8])
	if err != nil {
		return w, err
	}
	w.Key = k
	w.Start = int64(binary.BigEndian.Uint64(b[len(b)-8:]))
	w.End = math.MaxInt64
	if s.size > 0 && w.Start <= math.MaxInt64-s.size {
		w.End = w.Start + s.size
	}
	return w, nil
}

// SessionWindowedSerde returns a serde for keys of session windows in Kafka
// Streams' format, which its SessionWindowedSerializer writes and
// SessionWindowedDeserializer reads: the key's bytes (inner), then the
// session end and the session start, 8 bytes each, big-endian.
func SessionWindowedSerde[K any](inner serde.Serde[K]) serde.Serde[Windowed[K]] {
	return sessionWindowedSerde[K]{inner: inner}
}

type sessionWindowedSerde[K any] struct{ inner serde.Serde[K] }

func (s sessionWindowedSerde[K]) Serialize(topic string, w Windowed[K]) ([]byte, error) {
	kb, err := s.inner.Serialize(topic, w.Key)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(kb)+16)
	out = append(out, kb...)
	out = binary.BigEndian.AppendUint64(out, uint64(w.End))
	return binary.BigEndian.AppendUint64(out, uint64(w.Start)), nil
}

func (s sessionWindowedSerde[K]) Deserialize(topic string, b []byte) (Windowed[K], error) {
	var w Windowed[K]
	if len(b) < 16 {
		return w, fmt.Errorf("kstream: session-windowed key of %d bytes, want at least 16", len(b))
	}
	k, err := s.inner.Deserialize(topic, b[:len(b)-16])
	if err != nil {
		return w, err
	}
	w.Key = k
	w.End = int64(binary.BigEndian.Uint64(b[len(b)-16:]))
	w.Start = int64(binary.BigEndian.Uint64(b[len(b)-8:]))
	return w, nil
}
