package wire

import (
	"bytes"
	"errors"
	"testing"
)

func TestStampedRoundTrip(t *testing.T) {
	cases := []struct {
		ts  int64
		hs  []Header
		val []byte
	}{
		{0, nil, nil},
		{-1, nil, []byte("x")},
		{1 << 40, []Header{{Key: "a", Value: []byte("1")}, {Key: "", Value: nil}, {Key: "e", Value: []byte{}}}, []byte{0, 1, 2}},
	}
	for _, c := range cases {
		b := AppendStamped(nil, c.ts, c.hs, c.val)
		ts, hs, val, err := DecodeStamped(b)
		if err != nil {
			t.Fatalf("decode %x: %v", b, err)
		}
		if ts != c.ts || !bytes.Equal(val, c.val) || len(hs) != len(c.hs) {
			t.Fatalf("got %d %v %x, want %d %v %x", ts, hs, val, c.ts, c.hs, c.val)
		}
		for i := range hs {
			if hs[i].Key != c.hs[i].Key || !bytes.Equal(hs[i].Value, c.hs[i].Value) || (hs[i].Value == nil) != (c.hs[i].Value == nil) {
				t.Fatalf("header %d: got %+v want %+v", i, hs[i], c.hs[i])
			}
		}
	}
}

func TestStampedRejectsMalformed(t *testing.T) {
	for _, b := range [][]byte{nil, {1}, {2, 0, 0, 0, 0, 0, 0, 0, 0, 0}, {1, 0, 0, 0, 0, 0, 0, 0, 0, 5}, {1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 9, 'a'}} {
		if _, _, _, err := DecodeStamped(b); !errors.Is(err, ErrStamped) {
			t.Errorf("DecodeStamped(%x) = %v, want ErrStamped", b, err)
		}
	}
}

func FuzzStamped(f *testing.F) {
	f.Add(AppendStamped(nil, 5, []Header{{Key: "k", Value: []byte("v")}}, []byte("agg")))
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		ts, hs, val, err := DecodeStamped(b)
		if err != nil {
			return
		}
		again := AppendStamped(nil, ts, hs, val)
		ts2, hs2, val2, err := DecodeStamped(again)
		if err != nil || ts2 != ts || !bytes.Equal(val2, val) || len(hs2) != len(hs) {
			t.Fatalf("re-decode of %x: %v", again, err)
		}
	})
}

func TestCountWindowsRoundTrip(t *testing.T) {
	wins := []CountWindow{{Start: 0, TS: -5, Agg: []byte("a")}, {Start: 3, TS: 1 << 50, Agg: nil}}
	b := AppendCountWindows(nil, 7, wins)
	seen, got, err := DecodeCountWindows(b, nil)
	if err != nil || seen != 7 || len(got) != 2 || got[0].Start != 0 || got[0].TS != -5 || string(got[0].Agg) != "a" ||
		got[1].Start != 3 || got[1].TS != 1<<50 || len(got[1].Agg) != 0 {
		t.Fatalf("got %d %+v %v", seen, got, err)
	}
	for _, bad := range [][]byte{nil, {2}, {1}, {1, 0, 5}, append(b[:len(b):len(b)], 0)} {
		if _, _, err := DecodeCountWindows(bad, nil); !errors.Is(err, ErrCountWindows) {
			t.Errorf("DecodeCountWindows(%x) = %v, want ErrCountWindows", bad, err)
		}
	}
}

func FuzzCountWindows(f *testing.F) {
	f.Add(AppendCountWindows(nil, 4, []CountWindow{{Start: 3, TS: 9, Agg: []byte("x")}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		seen, wins, err := DecodeCountWindows(b, nil)
		if err != nil {
			return
		}
		again := AppendCountWindows(nil, seen, wins)
		seen2, wins2, err := DecodeCountWindows(again, nil)
		if err != nil || seen2 != seen || len(wins2) != len(wins) {
			t.Fatalf("re-decode of %x: %d %d %v", again, seen2, len(wins2), err)
		}
		for i := range wins {
			if wins[i].Start != wins2[i].Start || wins[i].TS != wins2[i].TS || !bytes.Equal(wins[i].Agg, wins2[i].Agg) {
				t.Fatalf("window %d: %+v != %+v", i, wins[i], wins2[i])
			}
		}
	})
}

func TestSuppressedRoundTrip(t *testing.T) {
	b := AppendSuppressed(nil, 15000, true, 7, []Header{{Key: "h", Value: []byte("v")}}, nil)
	d, tomb, ts, hs, v, err := DecodeSuppressed(b)
	if err != nil || d != 15000 || !tomb || ts != 7 || len(hs) != 1 || hs[0].Key != "h" || len(v) != 0 {
		t.Fatalf("got %d %v %d %v %x %v", d, tomb, ts, hs, v, err)
	}
	for _, bad := range [][]byte{nil, {1}, {2, 0, 0, 0, 0, 0, 0, 0, 0, 0}, {1, 0, 0, 0, 0, 0, 0, 0, 0, 2}, {1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}} {
		if _, _, _, _, _, err := DecodeSuppressed(bad); !errors.Is(err, ErrSuppressed) {
			t.Errorf("DecodeSuppressed(%x) = %v, want ErrSuppressed", bad, err)
		}
	}
}

func FuzzSuppressed(f *testing.F) {
	f.Add(AppendSuppressed(nil, 1, false, 2, nil, []byte("x")))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, tomb, ts, hs, v, err := DecodeSuppressed(b)
		if err != nil {
			return
		}
		d2, tomb2, ts2, hs2, v2, err := DecodeSuppressed(AppendSuppressed(nil, d, tomb, ts, hs, v))
		if err != nil || d2 != d || tomb2 != tomb || ts2 != ts || len(hs2) != len(hs) || !bytes.Equal(v, v2) {
			t.Fatalf("re-decode of %x: %v", b, err)
		}
	})
}
