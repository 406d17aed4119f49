package state

import (
	"bytes"
	"cmp"
	"errors"
	"math"
	"testing"
)

var tags = []byte{tagWindow, tagWindowDups, tagSession, tagVersioned}

// compareTuple orders (key, a, b) as the layout promises: key bytes, then
// the timestamps numerically.
func compareTuple(k1 []byte, a1, b1 int64, k2 []byte, a2, b2 int64) int {
	if c := bytes.Compare(k1, k2); c != 0 {
		return c
	}
	if c := cmp.Compare(a1, a2); c != 0 {
		return c
	}
	return cmp.Compare(b1, b2)
}

func sign(c int) int { return cmp.Compare(c, 0) }

// TestEscapingExhaustive checks every key of up to 4 bytes over the bytes
// that matter to the escaping (0x00, 0x01, 0xff and one other), with
// timestamps at the extremes: encoding keeps the order of (key,
// timestamps), and no key's range (the keys starting with its
// tag|segment|escaped key) holds a key of another user key. So an arbitrary
// key can never be confused with another key followed by timestamp bytes.
func TestEscapingExhaustive(t *testing.T) {
	alphabet := []byte{0x00, 0x01, 'a', 0xff}
	var keys [][]byte
	var gen func(prefix []byte)
	gen = func(prefix []byte) {
		keys = append(keys, bytes.Clone(prefix))
		if len(prefix) == 4 {
			return
		}
		for _, c := range alphabet {
			gen(append(prefix, c))
		}
	}
	gen(nil)
	times := []int64{math.MinInt64, -1, 0, 1, 0x0001_0000_0000_0000, math.MaxInt64}
	type enc struct {
		key    []byte
		a      int64
		b      []byte
		prefix []byte
	}
	var all []enc
	for _, k := range keys {
		for _, a := range times {
			all = append(all, enc{k, a, appendTimeKey(nil, tagWindow, 7, k, a, 0), appendKeyPrefix(nil, tagWindow, 7, k)})
		}
	}
	for _, x := range all {
		dec, err := decodeTimeKey(x.b, tagWindow)
		if err != nil || dec.seg != 7 || dec.a != x.a || !bytes.Equal(appendUnescaped(nil, dec.esc), x.key) {
			t.Fatalf("round trip of (%x, %d): %+v, %v", x.key, x.a, dec, err)
		}
		for _, y := range all {
			if got, want := sign(bytes.Compare(x.b, y.b)), sign(compareTuple(x.key, x.a, 0, y.key, y.a, 0)); got != want {
				t.Fatalf("(%x, %d) vs (%x, %d): encodings compare %d, tuples %d", x.key, x.a, y.key, y.a, got, want)
			}
			if !bytes.Equal(x.key, y.key) && bytes.HasPrefix(y.b, x.prefix) {
				t.Fatalf("key %x's range holds %x, a key of %x", x.key, y.b, y.key)
			}
		}
	}
	t.Logf("%d keys x %d timestamps, all pairs", len(keys), len(times))
}

func TestDecodeTimeKeyRejects(t *testing.T) {
	good := appendTimeKey(nil, tagSession, 1, []byte("k\x00"), 5, 9)
	for _, tc := range []struct {
		name string
		k    []byte
		tag  byte
	}{
		{"empty", nil, tagWindow},
		{"short", []byte{tagWindow, 0, 0}, tagWindow},
		{"other tag", good, tagWindow},
		{"no terminator", append(appendSegPrefix(nil, tagWindow, 0), 'k', 0), tagWindow},
		{"bad escape", append(appendSegPrefix(nil, tagWindow, 0), 'k', 0, 2, 0, 1, 1, 2, 3, 4, 5, 6, 7, 8), tagWindow},
		{"truncated timestamp", good[:len(good)-1], tagSession},
		{"extra byte", append(bytes.Clone(good), 0), tagSession},
		{"start after end", appendTimeKey(nil, tagSession, 1, []byte("k"), 9, 5), tagSession},
	} {
		if _, err := decodeTimeKey(tc.k, tc.tag); !errors.Is(err, ErrCorruptWindowKey) {
			t.Errorf("%s: err = %v, want ErrCorruptWindowKey", tc.name, err)
		}
	}
	if k, err := decodeTimeKey(good, tagSession); err != nil || k.a != 5 || k.b != 9 || k.seg != 1 {
		t.Fatalf("good key: %+v, %v", k, err)
	}
}

func TestFloorDivAndLive(t *testing.T) {
	for _, tc := range []struct{ a, b, q int64 }{
		{0, 10, 0}, {9, 10, 0}, {10, 10, 1}, {-1, 10, -1}, {-10, 10, -1}, {-11, 10, -2},
		{math.MinInt64, 1, math.MinInt64}, {math.MaxInt64, 1, math.MaxInt64}, {math.MinInt64, 7, math.MinInt64/7 - 1},
	} {
		if q := floorDiv(tc.a, tc.b); q != tc.q {
			t.Errorf("floorDiv(%d, %d) = %d, want %d", tc.a, tc.b, q, tc.q)
		}
	}
	g := &segmented{retention: 100, interval: 50}
	for _, tc := range []struct{ st, lo int64 }{
		{math.MinInt64, math.MinInt64}, {math.MinInt64 + 98, math.MinInt64}, {math.MinInt64 + 100, math.MinInt64 + 1},
		{0, -99}, {1000, 901}, {math.MaxInt64, math.MaxInt64 - 99},
	} {
		if lo := g.minLive(tc.st); lo != tc.lo {
			t.Errorf("minLive(%d) = %d, want %d", tc.st, lo, tc.lo)
		}
	}
}

// FuzzTimeKeyRoundTrip: every tuple encodes, decodes back to itself, and
// its key prefix is a prefix of its key.
func FuzzTimeKeyRoundTrip(f *testing.F) {
	f.Add([]byte("user-1"), byte(0), int64(3), int64(180_000), int64(0))
	f.Add([]byte{0, 1, 0xff, 0}, byte(2), int64(-1), int64(-5), int64(7))
	f.Fuzz(func(t *testing.T, key []byte, tagSel byte, seg, a, b int64) {
		tag := tags[int(tagSel)%len(tags)]
		if tag == tagSession && a > b {
			a, b = b, a
		}
		if tag == tagVersioned && b > a { // validTo, then validFrom
			a, b = b, a
		}
		k := appendTimeKey(nil, tag, seg, key, a, b)
		if !bytes.HasPrefix(k, appendKeyPrefix(nil, tag, seg, key)) {
			t.Fatalf("key %x lacks its prefix", k)
		}
		dec, err := decodeTimeKey(k, tag)
		if err != nil {
			t.Fatalf("decode %x: %v", k, err)
		}
		if tag == tagWindow {
			b = 0
		}
		if dec.seg != seg || dec.a != a || dec.b != b || !bytes.Equal(appendUnescaped(nil, dec.esc), key) {
			t.Fatalf("(%x, %d, %d, %d) came back as %+v", key, seg, a, b, dec)
		}
		if s, err := segmentOf(k, tag); err != nil || s != seg {
			t.Fatalf("segmentOf = %d, %v", s, err)
		}
	})
}

// FuzzTimeKeyDecode: decoding arbitrary bytes never panics, and whatever
// decodes is the one encoding of what it decodes to.
func FuzzTimeKeyDecode(f *testing.F) {
	f.Add([]byte{})
	f.Add(appendTimeKey(nil, tagWindow, 0, []byte("a"), 1, 0))
	f.Add(appendTimeKey(nil, tagSession, -3, []byte{0, 0}, 1, 2))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = escapedLen(data)
		_ = appendUnescaped(nil, data)
		for _, tag := range tags {
			_, _ = segmentOf(data, tag)
			k, err := decodeTimeKey(data, tag)
			if err != nil {
				if !errors.Is(err, ErrCorruptWindowKey) {
					t.Fatalf("error %v does not wrap ErrCorruptWindowKey", err)
				}
				continue
			}
			again := appendTimeKey(nil, tag, k.seg, appendUnescaped(nil, k.esc), k.a, k.b)
			if !bytes.Equal(again, data) {
				t.Fatalf("%x decodes (tag %d) to %+v, which encodes to %x", data, tag, k, again)
			}
		}
	})
}

// FuzzTimeKeyOrder: within a segment, encodings order as (key, timestamps)
// do, and a key's range never holds another key's entries.
func FuzzTimeKeyOrder(f *testing.F) {
	f.Add([]byte("a"), []byte("a\x00"), int64(1), int64(2), int64(3), int64(4))
	f.Add([]byte("a"), []byte("a\x00\x01"), int64(0), int64(0), int64(0), int64(0))
	f.Fuzz(func(t *testing.T, k1, k2 []byte, a1, b1, a2, b2 int64) {
		for _, tag := range tags {
			x1, y1, x2, y2 := a1, b1, a2, b2
			switch tag {
			case tagWindow:
				y1, y2 = 0, 0
			case tagSession:
				x1, y1 = min(x1, y1), max(x1, y1)
				x2, y2 = min(x2, y2), max(x2, y2)
			case tagVersioned:
				x1, y1 = max(x1, y1), min(x1, y1)
				x2, y2 = max(x2, y2), min(x2, y2)
			}
			e1 := appendTimeKey(nil, tag, 0, k1, x1, y1)
			e2 := appendTimeKey(nil, tag, 0, k2, x2, y2)
			if got, want := sign(bytes.Compare(e1, e2)), sign(compareTuple(k1, x1, y1, k2, x2, y2)); got != want {
				t.Fatalf("tag %d: (%x, %d, %d) vs (%x, %d, %d): encodings compare %d, tuples %d", tag, k1, x1, y1, k2, x2, y2, got, want)
			}
			if !bytes.Equal(k1, k2) && bytes.HasPrefix(e2, appendKeyPrefix(nil, tag, 0, k1)) {
				t.Fatalf("tag %d: key %x's range holds %x of key %x", tag, k1, e2, k2)
			}
		}
	})
}

func TestWindowAndSessionKeyOf(t *testing.T) {
	raw := appendTimeKey(nil, tagWindow, 3, []byte("a\x00b"), 1234, 0)
	k, start, ok := WindowKeyOf(raw)
	if !ok || string(k) != "a\x00b" || start != 1234 {
		t.Fatalf("WindowKeyOf = %q, %d, %v", k, start, ok)
	}
	if _, _, ok := WindowKeyOf([]byte{tagWindow | metaBit}); ok {
		t.Fatal("WindowKeyOf accepted the meta key")
	}
	raw = appendTimeKey(nil, tagSession, -1, []byte("s"), -5, 7)
	k, s, e, ok := SessionKeyOf(raw)
	if !ok || string(k) != "s" || s != -5 || e != 7 {
		t.Fatalf("SessionKeyOf = %q, %d, %d, %v", k, s, e, ok)
	}
	if _, _, _, ok := SessionKeyOf(appendTimeKey(nil, tagWindow, 3, []byte("a"), 1, 0)); ok {
		t.Fatal("SessionKeyOf accepted a window key")
	}
}
