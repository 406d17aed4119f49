package state

import (
	"bytes"
	"cmp"
	"errors"
	"testing"
	"time"
)

// FuzzVersionedKey: a history entry's key and value come back as written,
// through decodeHist and VersionedKeyOf; the keys of one user key in one
// segment order by validTo, then validFrom; a latest key decodes as one.
func FuzzVersionedKey(f *testing.F) {
	f.Add([]byte("user-1"), []byte("v"), int64(10), int64(20), int64(20), int64(20), false)
	f.Add([]byte{0, 1, 0xff, 0}, []byte{}, int64(-5), int64(-1), int64(-3), int64(-3), true)
	vs := &versionedStore{}
	vs.interval = 50
	f.Fuzz(func(t *testing.T, key, value []byte, from, to, from2, to2 int64, tomb bool) {
		if from > to {
			from, to = to, from
		}
		if from2 > to2 {
			from2, to2 = to2, from2
		}
		if from == to || tomb {
			value = nil
		} else if value == nil {
			value = []byte{}
		}
		k := vs.histKey(nil, key, from, to)
		v := []byte{histTombstone}
		if value != nil {
			v = append([]byte{histValue}, value...)
		}
		e, err := decodeHist(k, v)
		if err != nil {
			t.Fatalf("decode %x = %x: %v", k, v, err)
		}
		if e.from != from || e.to != to || (e.value == nil) != (value == nil) || !bytes.Equal(e.value, value) {
			t.Fatalf("(%d, %d, %x) came back as %+v", from, to, value, e)
		}
		uk, f2, t2, latest, ok := VersionedKeyOf(k)
		if !ok || latest || f2 != from || t2 != to || !bytes.Equal(uk, key) {
			t.Fatalf("VersionedKeyOf(%x) = %x, %d, %d, %v, %v", k, uk, f2, t2, latest, ok)
		}
		if vs.segment(to) == vs.segment(to2) {
			k2 := vs.histKey(nil, key, from2, to2)
			want := cmp.Or(cmp.Compare(to, to2), cmp.Compare(from, from2))
			if got := bytes.Compare(k, k2); got != want {
				t.Fatalf("[%d, %d) vs [%d, %d): keys compare %d, want %d", from, to, from2, to2, got, want)
			}
		}
		if uk, _, _, latest, ok := VersionedKeyOf(appendLatestKey(nil, key)); !ok || !latest || !bytes.Equal(uk, key) {
			t.Fatalf("latest key of %x: %x, %v, %v", key, uk, latest, ok)
		}
	})
}

// FuzzVersionedDecode: decoding arbitrary keys and values never panics,
// and failures wrap ErrCorruptWindowKey.
func FuzzVersionedDecode(f *testing.F) {
	f.Add([]byte{}, []byte{})
	f.Add(appendTimeKey(nil, tagVersioned, 0, []byte("a"), 20, 10), []byte{histValue, 'x'})
	f.Add(appendTimeKey(nil, tagVersioned, 0, []byte("a"), 10, 20), []byte{histTombstone})
	f.Fuzz(func(t *testing.T, k, v []byte) {
		_, _, _, _, _ = VersionedKeyOf(k)
		e, err := decodeHist(k, v)
		if err != nil {
			if !errors.Is(err, ErrCorruptWindowKey) {
				t.Fatalf("error %v does not wrap ErrCorruptWindowKey", err)
			}
			return
		}
		if e.from > e.to || (e.from == e.to && e.value != nil) {
			t.Fatalf("%x = %x decodes to %+v", k, v, e)
		}
	})
}

func TestVersionedDefaultInterval(t *testing.T) {
	// Whole milliseconds even when the retention divides into fractions.
	if d := defaultVersionedInterval(time.Hour + time.Millisecond); d%time.Millisecond != 0 {
		t.Fatalf("interval %v is not whole milliseconds", d)
	}
	if err := (VersionedStoreConfig{HistoryRetention: 100*time.Hour + 7*time.Millisecond}).Validate(); err != nil {
		t.Fatal(err)
	}
}
