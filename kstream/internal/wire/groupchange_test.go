package wire

import (
	"bytes"
	"errors"
	"testing"
)

func TestGroupChangeGoldenBytes(t *testing.T) {
	if got := AppendGroupChange(nil, true, []byte("ab")); !bytes.Equal(got, []byte{1, 'a', 'b'}) {
		t.Fatalf("add = %x", got)
	}
	if got := AppendGroupChange(nil, false, nil); !bytes.Equal(got, []byte{0}) {
		t.Fatalf("subtract of an empty value = %x", got)
	}
	for _, bad := range [][]byte{nil, {2}, {0xff, 1}} {
		if _, _, err := DecodeGroupChange(bad); !errors.Is(err, ErrGroupChange) {
			t.Errorf("DecodeGroupChange(%x) err = %v", bad, err)
		}
	}
}

// Decoding any bytes never panics, and what decodes re-encodes to the same
// bytes.
func FuzzGroupChange(f *testing.F) {
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0, 1})
	f.Add([]byte{0})
	f.Add([]byte{})
	f.Add([]byte{2, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		add, v, err := DecodeGroupChange(b)
		if err != nil {
			return
		}
		if again := AppendGroupChange(nil, add, v); !bytes.Equal(again, b) {
			t.Fatalf("round trip %x -> %v %x -> %x", b, add, v, again)
		}
	})
}

func TestGroupBothGoldenBytes(t *testing.T) {
	b := AppendGroupBoth(nil, []byte("ab"), []byte("xyz"))
	if want := []byte{2, 2, 'a', 'b', 'x', 'y', 'z'}; !bytes.Equal(b, want) {
		t.Fatalf("both = %x, want %x", b, want)
	}
	kind, old, v, err := DecodeGroupValue(b)
	if err != nil || kind != GroupBoth || string(old) != "ab" || string(v) != "xyz" {
		t.Fatalf("decode = %d %q %q %v", kind, old, v, err)
	}
	for _, bad := range [][]byte{{2}, {2, 5, 'a'}, {2, 0xff}, {3, 0}} {
		if _, _, _, err := DecodeGroupValue(bad); !errors.Is(err, ErrGroupChange) {
			t.Errorf("DecodeGroupValue(%x) err = %v", bad, err)
		}
	}
}

// Any bytes decode or fail cleanly, and what decodes re-encodes to the same
// bytes.
func FuzzGroupValue(f *testing.F) {
	f.Add(AppendGroupBoth(nil, []byte("old"), []byte("new")))
	f.Add([]byte{1, 7})
	f.Add([]byte{2, 0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		kind, old, v, err := DecodeGroupValue(b)
		if err != nil {
			return
		}
		var again []byte
		if kind == GroupBoth {
			again = AppendGroupBoth(nil, old, v)
		} else {
			again = AppendGroupChange(nil, kind == GroupAdd, v)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("round trip %x -> %d %x %x -> %x", b, kind, old, v, again)
		}
	})
}
