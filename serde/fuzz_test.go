package serde

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"reflect"
	"testing"
	"unicode/utf8"
)

// fuzzFixed checks a fixed-width serde: decoding any bytes never panics,
// succeeds exactly when the length is right (or the input is nil), and
// re-encoding a decoded value gives back the input.
func fuzzFixed[T any](t *testing.T, s Serde[T], width int, data []byte, reencodeExact bool) {
	v, err := s.Deserialize("t", data)
	if len(data) != width {
		if !errors.Is(err, ErrInvalidLength) {
			t.Fatalf("Deserialize(% x) err = %v, want ErrInvalidLength", data, err)
		}
		return
	}
	if err != nil {
		t.Fatalf("Deserialize(% x): %v", data, err)
	}
	if !reencodeExact {
		return
	}
	b, err := s.Serialize("t", v)
	if err != nil {
		t.Fatalf("Serialize(%v): %v", v, err)
	}
	if !bytes.Equal(b, data) {
		t.Fatalf("Serialize(Deserialize(% x)) = % x", data, b)
	}
	checkAppend(t, s, v)
}

// checkAppend checks that s, an Appender, appends to a buffer exactly what
// Serialize returns for v, keeping what the buffer held.
func checkAppend[T any](t *testing.T, s Serde[T], v T) {
	t.Helper()
	a, ok := s.(Appender[T])
	if !ok {
		t.Fatalf("%T is not an Appender", s)
	}
	want, err := s.Serialize("t", v)
	if err != nil {
		t.Fatalf("Serialize(%v): %v", v, err)
	}
	prefix := []byte{0xAA, 0xBB}
	got, err := a.Append(prefix[:2:2], "t", v)
	if err != nil {
		t.Fatalf("Append(%v): %v", v, err)
	}
	if !bytes.Equal(got[:2], prefix) || !bytes.Equal(got[2:], want) {
		t.Fatalf("Append(% x, %v) = % x, want the prefix then % x", prefix, v, got, want)
	}
}

func FuzzInt64(f *testing.F) {
	for _, n := range []int64{0, 1, -1, math.MaxInt64, math.MinInt64} {
		f.Add(n, binary.BigEndian.AppendUint64(nil, uint64(n)))
	}
	f.Add(int64(7), []byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, n int64, data []byte) {
		b, err := Int64.Serialize("t", n)
		if err != nil || len(b) != 8 {
			t.Fatalf("Serialize(%d) = % x, %v", n, b, err)
		}
		if got, err := Int64.Deserialize("t", b); err != nil || got != n {
			t.Fatalf("round trip %d = %d, %v", n, got, err)
		}
		fuzzFixed(t, Int64, 8, data, true)
	})
}

func FuzzUint64(f *testing.F) {
	f.Add(uint64(0), []byte{})
	f.Add(uint64(math.MaxUint64), []byte{0, 0, 0, 0, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, n uint64, data []byte) {
		b, err := Uint64.Serialize("t", n)
		if err != nil || len(b) != 8 {
			t.Fatalf("Serialize(%d) = % x, %v", n, b, err)
		}
		if got, err := Uint64.Deserialize("t", b); err != nil || got != n {
			t.Fatalf("round trip %d = %d, %v", n, got, err)
		}
		fuzzFixed(t, Uint64, 8, data, true)
	})
}

func FuzzInt32(f *testing.F) {
	f.Add(int32(0), []byte{})
	f.Add(int32(-1), []byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, n int32, data []byte) {
		b, err := Int32.Serialize("t", n)
		if err != nil || len(b) != 4 {
			t.Fatalf("Serialize(%d) = % x, %v", n, b, err)
		}
		if got, err := Int32.Deserialize("t", b); err != nil || got != n {
			t.Fatalf("round trip %d = %d, %v", n, got, err)
		}
		fuzzFixed(t, Int32, 4, data, true)
	})
}

func FuzzFloat64(f *testing.F) {
	for _, x := range []float64{0, math.Copysign(0, -1), 1.5, math.Inf(-1), math.NaN(), math.SmallestNonzeroFloat64} {
		f.Add(x, binary.BigEndian.AppendUint64(nil, math.Float64bits(x)))
	}
	f.Add(1.0, []byte{0x7f})
	f.Fuzz(func(t *testing.T, x float64, data []byte) {
		b, err := Float64.Serialize("t", x)
		if err != nil || len(b) != 8 {
			t.Fatalf("Serialize(%v) = % x, %v", x, b, err)
		}
		got, err := Float64.Deserialize("t", b)
		if err != nil {
			t.Fatalf("Deserialize(% x): %v", b, err)
		}
		if math.IsNaN(x) {
			// Java's doubleToLongBits writes one canonical NaN.
			if math.Float64bits(got) != canonicalNaN64 {
				t.Fatalf("round trip NaN %#x = %#x, want canonical NaN", math.Float64bits(x), math.Float64bits(got))
			}
		} else if math.Float64bits(got) != math.Float64bits(x) {
			t.Fatalf("round trip %v = %v", x, got)
		}
		checkAppend(t, Float64, x) // a NaN too: Append writes the canonical one
		// Re-encoding is exact except for non-canonical NaNs.
		exact := len(data) != 8 || !math.IsNaN(math.Float64frombits(binary.BigEndian.Uint64(data))) ||
			binary.BigEndian.Uint64(data) == canonicalNaN64
		fuzzFixed(t, Float64, 8, data, exact)
	})
}

func FuzzFloat32(f *testing.F) {
	f.Add(float32(1.5), []byte{0x3f, 0xc0, 0, 0})
	f.Add(float32(math.NaN()), []byte{0xff, 0xc0, 0, 1})
	f.Fuzz(func(t *testing.T, x float32, data []byte) {
		b, err := Float32.Serialize("t", x)
		if err != nil || len(b) != 4 {
			t.Fatalf("Serialize(%v) = % x, %v", x, b, err)
		}
		got, err := Float32.Deserialize("t", b)
		if err != nil || math.Float32bits(got) != math.Float32bits(x) {
			t.Fatalf("round trip %#x = %#x, %v", math.Float32bits(x), math.Float32bits(got), err)
		}
		fuzzFixed(t, Float32, 4, data, true)
	})
}

func FuzzString(f *testing.F) {
	for _, s := range []string{"", "a", "日本", "\xff\x00", "\u2028"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b, err := String.Serialize("t", s)
		if err != nil || b == nil {
			t.Fatalf("Serialize(%q) = %#v, %v", s, b, err)
		}
		if string(b) != s {
			t.Fatalf("Serialize(%q) = % x, want the string's bytes", s, b)
		}
		got, err := String.Deserialize("t", b)
		if err != nil || got != s {
			t.Fatalf("round trip %q = %q, %v", s, got, err)
		}
		checkAppend(t, String, s)
		// Bytes is exercised on the same input.
		bb, err := Bytes.Deserialize("t", b)
		if err != nil || !bytes.Equal(bb, b) {
			t.Fatalf("Bytes.Deserialize(% x) = % x, %v", b, bb, err)
		}
	})
}

// fuzzRecord is a JSON-friendly record whose fields round-trip exactly.
type fuzzRecord struct {
	S string  `json:"s"`
	N int64   `json:"n"`
	F float64 `json:"f"`
	B []byte  `json:"b"`
	P *bool   `json:"p,omitempty"`
}

func FuzzJSON(f *testing.F) {
	f.Add("ann", int64(-3), 0.1, []byte{1, 2}, true, []byte(`{"s":"x","n":1,"f":2.5,"b":"AQI=","p":true}`))
	f.Add("", int64(0), 0.0, []byte(nil), false, []byte(`null`))
	f.Add("é", int64(math.MinInt64), 1e308, []byte{}, false, []byte(`{"n":1e3}`))
	f.Add("x", int64(1), -0.0, []byte{0}, true, []byte(`[`))
	f.Fuzz(func(t *testing.T, s string, n int64, x float64, b []byte, hasP bool, data []byte) {
		js := JSON[fuzzRecord]()

		// Decoding arbitrary bytes never panics, and a failure wraps
		// ErrDecode and returns the zero value.
		v, err := js.Deserialize("t", data)
		if err != nil {
			if !errors.Is(err, ErrDecode) {
				t.Fatalf("Deserialize(%q) err = %v, want ErrDecode", data, err)
			}
			if !reflect.DeepEqual(v, fuzzRecord{}) {
				t.Fatalf("Deserialize(%q) = %+v on error, want zero", data, v)
			}
		} else if _, err := js.Serialize("t", v); err != nil {
			t.Fatalf("Serialize(Deserialize(%q)): %v", data, err)
		}
		if _, err := JSON[any]().Deserialize("t", data); err != nil && !errors.Is(err, ErrDecode) {
			t.Fatalf("JSON[any].Deserialize(%q) err = %v, want ErrDecode", data, err)
		}

		// decode(encode(x)) == x for values JSON can represent exactly.
		if math.IsNaN(x) || math.IsInf(x, 0) {
			if _, err := js.Serialize("t", fuzzRecord{F: x}); err == nil {
				t.Fatalf("Serialize(F=%v) succeeded, want an unsupported value error", x)
			}
			return
		}
		if !utf8.ValidString(s) {
			s = string([]rune(s)) // JSON replaces invalid UTF-8 with U+FFFD
		}
		in := fuzzRecord{S: s, N: n, F: x, B: b}
		if hasP {
			in.P = &hasP
		}
		enc, err := js.Serialize("t", in)
		if err != nil {
			t.Fatalf("Serialize(%+v): %v", in, err)
		}
		out, err := js.Deserialize("t", enc)
		if err != nil {
			t.Fatalf("Deserialize(%s): %v", enc, err)
		}
		if in.B != nil && len(in.B) == 0 {
			in.B = []byte{} // "" decodes to a non-nil empty slice
		}
		if !reflect.DeepEqual(in, out) {
			t.Fatalf("round trip\n in  %+v\n out %+v\n via %s", in, out, enc)
		}
	})
}
