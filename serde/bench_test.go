package serde

import "testing"

// benchRoundTrip measures one Serialize plus one Deserialize of v.
func benchRoundTrip[T any](b *testing.B, s Serde[T], v T) {
	b.ReportAllocs()
	for b.Loop() {
		enc, err := s.Serialize("topic", v)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.Deserialize("topic", enc); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkString(b *testing.B) {
	benchRoundTrip(b, String, "a typical key of about 32 bytes!")
}

func BenchmarkBytes(b *testing.B) {
	benchRoundTrip(b, Bytes, make([]byte, 256))
}

func BenchmarkInt32(b *testing.B) { benchRoundTrip(b, Int32, int32(123456)) }

func BenchmarkInt64(b *testing.B) { benchRoundTrip(b, Int64, int64(1234567890123)) }

func BenchmarkUint64(b *testing.B) { benchRoundTrip(b, Uint64, uint64(1234567890123)) }

func BenchmarkFloat64(b *testing.B) { benchRoundTrip(b, Float64, 3.14159) }

func BenchmarkFloat32(b *testing.B) { benchRoundTrip(b, Float32, float32(3.14159)) }

func BenchmarkJSON(b *testing.B) {
	benchRoundTrip(b, JSON[testRecord](), testRecord{Name: "ann", Count: 7, Score: 0.5, Tags: []string{"a", "b"}})
}

func BenchmarkFunc(b *testing.B) {
	s := Func(Int64.Serialize, Int64.Deserialize)
	benchRoundTrip(b, s, int64(42))
}
