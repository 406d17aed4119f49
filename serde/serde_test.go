package serde

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
)

// hexBytes decodes a space-separated hex string such as "00 00 00 01".
func hexBytes(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

// wireCase is one value and the exact bytes Kafka's Java serializer writes
// for it.
type wireCase[T any] struct {
	v    T
	wire string
}

// checkWire asserts that s serializes each case to its exact bytes and
// deserializes those bytes back to the value.
func checkWire[T any](t *testing.T, s Serde[T], cases []wireCase[T], eq func(a, b T) bool) {
	t.Helper()
	for _, c := range cases {
		t.Run(fmt.Sprint(c.v), func(t *testing.T) {
			want := hexBytes(t, c.wire)
			got, err := s.Serialize("t", c.v)
			if err != nil {
				t.Fatalf("Serialize(%v): %v", c.v, err)
			}
			if !bytes.Equal(got, want) || got == nil {
				t.Fatalf("Serialize(%v) = % x, want % x", c.v, got, want)
			}
			back, err := s.Deserialize("t", want)
			if err != nil {
				t.Fatalf("Deserialize(% x): %v", want, err)
			}
			if !eq(back, c.v) {
				t.Fatalf("Deserialize(% x) = %v, want %v", want, back, c.v)
			}
		})
	}
}

func eq[T comparable](a, b T) bool { return a == b }

// sameBits64 compares floats by bit pattern, so NaN equals itself and -0 is
// not 0.
func sameBits64(a, b float64) bool { return math.Float64bits(a) == math.Float64bits(b) }
func sameBits32(a, b float32) bool { return math.Float32bits(a) == math.Float32bits(b) }

func TestInt32Wire(t *testing.T) {
	checkWire(t, Int32, []wireCase[int32]{
		{0, "00 00 00 00"},
		{1, "00 00 00 01"},
		{-1, "ff ff ff ff"},
		{256, "00 00 01 00"},
		{math.MaxInt32, "7f ff ff ff"},
		{math.MinInt32, "80 00 00 00"},
		{0x12345678, "12 34 56 78"},
	}, eq)
}

func TestInt64Wire(t *testing.T) {
	checkWire(t, Int64, []wireCase[int64]{
		{0, "00 00 00 00 00 00 00 00"},
		{1, "00 00 00 00 00 00 00 01"},
		{-1, "ff ff ff ff ff ff ff ff"},
		{42, "00 00 00 00 00 00 00 2a"},
		{math.MaxInt64, "7f ff ff ff ff ff ff ff"},
		{math.MinInt64, "80 00 00 00 00 00 00 00"},
		{0x0102030405060708, "01 02 03 04 05 06 07 08"},
	}, eq)
}

func TestUint64Wire(t *testing.T) {
	checkWire(t, Uint64, []wireCase[uint64]{
		{0, "00 00 00 00 00 00 00 00"},
		{1, "00 00 00 00 00 00 00 01"},
		{math.MaxUint64, "ff ff ff ff ff ff ff ff"},
		{1 << 63, "80 00 00 00 00 00 00 00"},
		{0x0102030405060708, "01 02 03 04 05 06 07 08"},
	}, eq)
}

func TestFloat64Wire(t *testing.T) {
	checkWire(t, Float64, []wireCase[float64]{
		{0, "00 00 00 00 00 00 00 00"},
		{math.Copysign(0, -1), "80 00 00 00 00 00 00 00"},
		{1, "3f f0 00 00 00 00 00 00"},
		{1.5, "3f f8 00 00 00 00 00 00"},
		{-2, "c0 00 00 00 00 00 00 00"},
		{math.Inf(1), "7f f0 00 00 00 00 00 00"},
		{math.Inf(-1), "ff f0 00 00 00 00 00 00"},
		{math.MaxFloat64, "7f ef ff ff ff ff ff ff"},
		{math.SmallestNonzeroFloat64, "00 00 00 00 00 00 00 01"},
		{math.NaN(), "7f f8 00 00 00 00 00 00"},
	}, func(a, b float64) bool {
		if math.IsNaN(a) || math.IsNaN(b) {
			return math.IsNaN(a) && math.IsNaN(b)
		}
		return sameBits64(a, b)
	})
}

// TestFloat64CanonicalNaN pins Java's Double.doubleToLongBits behaviour:
// every NaN, whatever its sign and payload, is written as 7ff8000000000000.
func TestFloat64CanonicalNaN(t *testing.T) {
	want := hexBytes(t, "7f f8 00 00 00 00 00 00")
	for _, bits := range []uint64{0x7ff8000000000000, 0x7ff0000000000001, 0xfff8000000000000, 0x7fffffffffffffff} {
		got, err := Float64.Serialize("t", math.Float64frombits(bits))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("Serialize(NaN %#x) = % x, want % x", bits, got, want)
		}
	}
	// Deserialize keeps the bits it reads.
	v, err := Float64.Deserialize("t", hexBytes(t, "ff f8 00 00 00 00 00 07"))
	if err != nil {
		t.Fatal(err)
	}
	if got := math.Float64bits(v); got != 0xfff8000000000007 {
		t.Errorf("Deserialize kept bits %#x, want 0xfff8000000000007", got)
	}
}

func TestFloat32Wire(t *testing.T) {
	checkWire(t, Float32, []wireCase[float32]{
		{0, "00 00 00 00"},
		{float32(math.Copysign(0, -1)), "80 00 00 00"},
		{1, "3f 80 00 00"},
		{1.5, "3f c0 00 00"},
		{-2, "c0 00 00 00"},
		{float32(math.Inf(1)), "7f 80 00 00"},
		{math.MaxFloat32, "7f 7f ff ff"},
		{math.Float32frombits(0x7fc00000), "7f c0 00 00"},
		// Java's floatToRawIntBits keeps NaN payloads and signs.
		{math.Float32frombits(0xffc00001), "ff c0 00 01"},
	}, sameBits32)
}

func TestStringWire(t *testing.T) {
	checkWire(t, String, []wireCase[string]{
		{"", ""},
		{"a", "61"},
		{"kafka", "6b 61 66 6b 61"},
		{"é", "c3 a9"},
		{"日本", "e6 97 a5 e6 9c ac"},
		{"\x00\xff", "00 ff"}, // invalid UTF-8 round-trips unchanged
	}, eq)
}

func TestBytes(t *testing.T) {
	in := []byte{1, 2, 3}
	out, err := Bytes.Serialize("t", in)
	if err != nil || !bytes.Equal(out, in) {
		t.Fatalf("Serialize = % x, %v; want % x", out, err, in)
	}
	if out, _ := Bytes.Serialize("t", nil); out != nil {
		t.Errorf("Serialize(nil) = %#v, want nil", out)
	}
	if out, _ := Bytes.Serialize("t", []byte{}); out == nil || len(out) != 0 {
		t.Errorf("Serialize([]byte{}) = %#v, want non-nil empty", out)
	}

	buf := []byte{4, 5, 6}
	got, err := Bytes.Deserialize("t", buf)
	if err != nil || !bytes.Equal(got, []byte{4, 5, 6}) {
		t.Fatalf("Deserialize = % x, %v", got, err)
	}
	buf[0] = 99 // the runtime reuses its buffer
	if got[0] != 4 {
		t.Errorf("Deserialize did not copy: result changed to % x when the input was reused", got)
	}
	if got, _ := Bytes.Deserialize("t", nil); got != nil {
		t.Errorf("Deserialize(nil) = %#v, want nil", got)
	}
	if got, _ := Bytes.Deserialize("t", []byte{}); got == nil || len(got) != 0 {
		t.Errorf("Deserialize([]byte{}) = %#v, want non-nil empty", got)
	}
}

func TestStringDeserializeCopies(t *testing.T) {
	buf := []byte("abc")
	s, err := String.Deserialize("t", buf)
	if err != nil {
		t.Fatal(err)
	}
	buf[0] = 'z'
	if s != "abc" {
		t.Errorf("String.Deserialize aliased its input: got %q after reuse", s)
	}
}

// TestNilIsZero checks that every standard serde decodes Kafka null to the
// zero value without an error.
func TestNilIsZero(t *testing.T) {
	check := func(name string, got any, err error, zero any) {
		t.Helper()
		if err != nil {
			t.Errorf("%s.Deserialize(nil): %v", name, err)
		}
		if !reflect.DeepEqual(got, zero) {
			t.Errorf("%s.Deserialize(nil) = %#v, want %#v", name, got, zero)
		}
	}
	s, err := String.Deserialize("t", nil)
	check("String", s, err, "")
	b, err := Bytes.Deserialize("t", nil)
	check("Bytes", b, err, []byte(nil))
	i32, err := Int32.Deserialize("t", nil)
	check("Int32", i32, err, int32(0))
	i64, err := Int64.Deserialize("t", nil)
	check("Int64", i64, err, int64(0))
	u64, err := Uint64.Deserialize("t", nil)
	check("Uint64", u64, err, uint64(0))
	f64, err := Float64.Deserialize("t", nil)
	check("Float64", f64, err, float64(0))
	f32, err := Float32.Deserialize("t", nil)
	check("Float32", f32, err, float32(0))
	j, err := JSON[testRecord]().Deserialize("t", nil)
	check("JSON", j, err, testRecord{})
	p, err := JSON[*testRecord]().Deserialize("t", nil)
	check("JSON pointer", p, err, (*testRecord)(nil))
}

// TestSerializeNeverNil checks that zero values are not written as Kafka
// null.
func TestSerializeNeverNil(t *testing.T) {
	outs := map[string]func() ([]byte, error){
		"String":  func() ([]byte, error) { return String.Serialize("t", "") },
		"Int32":   func() ([]byte, error) { return Int32.Serialize("t", 0) },
		"Int64":   func() ([]byte, error) { return Int64.Serialize("t", 0) },
		"Uint64":  func() ([]byte, error) { return Uint64.Serialize("t", 0) },
		"Float64": func() ([]byte, error) { return Float64.Serialize("t", 0) },
		"Float32": func() ([]byte, error) { return Float32.Serialize("t", 0) },
		"JSON":    func() ([]byte, error) { return JSON[*testRecord]().Serialize("t", nil) },
	}
	for name, f := range outs {
		b, err := f()
		if err != nil || b == nil {
			t.Errorf("%s.Serialize(zero) = %#v, %v; want non-nil bytes", name, b, err)
		}
	}
}

func TestInvalidLength(t *testing.T) {
	type deser func([]byte) error
	serdes := []struct {
		name string
		want int
		de   deser
	}{
		{"int32", 4, func(b []byte) error { _, err := Int32.Deserialize("t", b); return err }},
		{"int64", 8, func(b []byte) error { _, err := Int64.Deserialize("t", b); return err }},
		{"uint64", 8, func(b []byte) error { _, err := Uint64.Deserialize("t", b); return err }},
		{"float64", 8, func(b []byte) error { _, err := Float64.Deserialize("t", b); return err }},
		{"float32", 4, func(b []byte) error { _, err := Float32.Deserialize("t", b); return err }},
	}
	for _, s := range serdes {
		for _, n := range []int{0, 1, s.want - 1, s.want + 1, 16} {
			t.Run(fmt.Sprintf("%s/len%d", s.name, n), func(t *testing.T) {
				err := s.de(make([]byte, n))
				if !errors.Is(err, ErrInvalidLength) {
					t.Fatalf("err = %v, want one wrapping ErrInvalidLength", err)
				}
				msg := err.Error()
				wantMsg := fmt.Sprintf("serde: invalid length: %s needs %d bytes, got %d", s.name, s.want, n)
				if msg != wantMsg {
					t.Errorf("err = %q, want %q", msg, wantMsg)
				}
			})
		}
	}
}

type testRecord struct {
	Name  string            `json:"name"`
	Count int64             `json:"count"`
	Score float64           `json:"score"`
	Tags  []string          `json:"tags,omitempty"`
	Attrs map[string]string `json:"attrs,omitempty"`
}

func TestJSONRoundTrip(t *testing.T) {
	s := JSON[testRecord]()
	in := testRecord{Name: "ann", Count: -7, Score: 0.1, Tags: []string{"a", "b"}, Attrs: map[string]string{"k": "v"}}
	b, err := s.Serialize("t", in)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"name":"ann","count":-7,"score":0.1,"tags":["a","b"],"attrs":{"k":"v"}}`; string(b) != want {
		t.Errorf("Serialize = %s, want %s", b, want)
	}
	out, err := s.Deserialize("t", b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Errorf("round trip = %+v, want %+v", out, in)
	}
}

func TestJSONNilPointerMarshalsAsNull(t *testing.T) {
	b, err := JSON[*testRecord]().Serialize("t", nil)
	if err != nil || string(b) != "null" {
		t.Errorf("Serialize(nil) = %q, %v; want \"null\"", b, err)
	}
}

func TestJSONDecodeError(t *testing.T) {
	s := JSON[testRecord]()
	for _, in := range []string{"", "{", "not json", `{"name":1}`, `[1,2]`, `{"count":1.5}`} {
		v, err := s.Deserialize("t", []byte(in))
		if !errors.Is(err, ErrDecode) {
			t.Errorf("Deserialize(%q) err = %v, want one wrapping ErrDecode", in, err)
			continue
		}
		if !strings.HasPrefix(err.Error(), "serde: cannot decode: json: ") {
			t.Errorf("Deserialize(%q) err = %q, want the serde and json prefixes", in, err)
		}
		if !reflect.DeepEqual(v, testRecord{}) {
			t.Errorf("Deserialize(%q) = %+v on error, want the zero value", in, v)
		}
	}
}

func TestJSONMarshalError(t *testing.T) {
	_, err := JSON[float64]().Serialize("t", math.NaN())
	if err == nil {
		t.Fatal("Serialize(NaN) succeeded, want json.UnsupportedValueError")
	}
}

func TestFunc(t *testing.T) {
	var gotTopic string
	errBad := errors.New("bad")
	s := Func(
		func(topic string, v int) ([]byte, error) {
			gotTopic = topic
			return []byte(fmt.Sprint(v)), nil
		},
		func(topic string, b []byte) (int, error) {
			gotTopic = topic
			if b == nil {
				return -1, nil
			}
			if len(b) == 0 {
				return 0, errBad
			}
			var v int
			_, err := fmt.Sscan(string(b), &v)
			return v, err
		},
	)
	b, err := s.Serialize("orders", 12)
	if err != nil || string(b) != "12" || gotTopic != "orders" {
		t.Fatalf("Serialize = %q, %v, topic %q", b, err, gotTopic)
	}
	v, err := s.Deserialize("returns", b)
	if err != nil || v != 12 || gotTopic != "returns" {
		t.Fatalf("Deserialize = %d, %v, topic %q", v, err, gotTopic)
	}
	if v, _ := s.Deserialize("t", nil); v != -1 {
		t.Errorf("Deserialize(nil) = %d, want the user function's -1", v)
	}
	if _, err := s.Deserialize("t", []byte{}); !errors.Is(err, errBad) {
		t.Errorf("Deserialize error = %v, want the user function's error", err)
	}
}

func TestFuncNilPanics(t *testing.T) {
	ser := func(string, int) ([]byte, error) { return nil, nil }
	de := func(string, []byte) (int, error) { return 0, nil }
	for name, f := range map[string]func(){
		"nil ser": func() { Func(nil, de) },
		"nil de":  func() { Func(ser, nil) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Func with %s did not panic", name)
				}
			}()
			f()
		}()
	}
}

func TestDecodeError(t *testing.T) {
	inner := fmt.Errorf("%w: int64 needs 8 bytes, got 3", ErrInvalidLength)
	cases := []struct {
		e    *DecodeError
		want string
	}{
		{&DecodeError{Topic: "t", Partition: 3, Offset: 42, Err: inner},
			`serde: decode value of topic "t" partition 3 offset 42: serde: invalid length: int64 needs 8 bytes, got 3`},
		{&DecodeError{Topic: "orders", Partition: 0, Offset: 0, Key: true, Err: inner},
			`serde: decode key of topic "orders" partition 0 offset 0: serde: invalid length: int64 needs 8 bytes, got 3`},
		{&DecodeError{Topic: "we\"ird", Partition: -1, Offset: -1, Key: true},
			`serde: decode key of topic "we\"ird" partition -1 offset -1`},
	}
	for _, c := range cases {
		if got := c.e.Error(); got != c.want {
			t.Errorf("Error() = %s\nwant      %s", got, c.want)
		}
	}

	var err error = fmt.Errorf("task 0_3: %w", cases[0].e)
	var de *DecodeError
	if !errors.As(err, &de) {
		t.Fatal("errors.As did not find the *DecodeError")
	}
	if de.Topic != "t" || de.Partition != 3 || de.Offset != 42 || de.Key {
		t.Errorf("errors.As found %+v", de)
	}
	if !errors.Is(err, ErrInvalidLength) {
		t.Error("errors.Is does not see ErrInvalidLength through DecodeError")
	}
	if de.Unwrap() != inner {
		t.Errorf("Unwrap() = %v, want the inner error", de.Unwrap())
	}
	if errors.Is(err, ErrDecode) {
		t.Error("errors.Is matched ErrDecode, which the inner error does not wrap")
	}
}

// TestConcurrentUse runs every standard serde from many goroutines; with
// -race it checks that they share no mutable state.
func TestConcurrentUse(t *testing.T) {
	js := JSON[testRecord]()
	done := make(chan struct{})
	for g := range 8 {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range 200 {
				n := int64(g*1000 + i)
				b, _ := Int64.Serialize("t", n)
				if v, err := Int64.Deserialize("t", b); err != nil || v != n {
					t.Errorf("Int64 round trip %d = %d, %v", n, v, err)
				}
				jb, _ := js.Serialize("t", testRecord{Count: n})
				if r, err := js.Deserialize("t", jb); err != nil || r.Count != n {
					t.Errorf("JSON round trip %d = %+v, %v", n, r, err)
				}
			}
		}()
	}
	for range 8 {
		<-done
	}
}
