package storetest

import (
	"bytes"
	"encoding/binary"
	"slices"
	"testing"

	"github.com/streamwork-go/streamwork/state"
)

// benchKeys is the number of keys loaded before the Get and Range
// benchmarks.
const benchKeys = 100_000

// Benchmark runs the engine benchmarks, each on a new store from open:
// Get of a random present key, Put of a random key (100-byte values), and
// a scan of 1000 consecutive keys from a random start. All report
// allocations.
func Benchmark(b *testing.B, open Opener) {
	value := make([]byte, 100)
	key := func(i int) []byte {
		// 8 bytes of a scrambled i, so inserts land all over the key space.
		return binary.BigEndian.AppendUint64(make([]byte, 0, 8), uint64(i)*0x9e3779b97f4a7c15)
	}
	load := func(b *testing.B, s state.Store) {
		for i := range benchKeys {
			if err := s.Put(key(i), value); err != nil {
				b.Fatal(err)
			}
		}
		if err := s.Flush(); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("Get", func(b *testing.B) {
		s := open(b)
		defer s.Close()
		load(b, s)
		r := newRand(1)
		keys := make([][]byte, 1024)
		for i := range keys {
			keys[i] = key(r.n(benchKeys))
		}
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			v, err := s.Get(keys[i%len(keys)])
			if err != nil || v == nil {
				b.Fatal("Get failed", err)
			}
		}
	})
	b.Run("Put", func(b *testing.B) {
		s := open(b)
		defer s.Close()
		b.ReportAllocs()
		b.SetBytes(int64(8 + len(value)))
		for i := 0; b.Loop(); i++ {
			if err := s.Put(key(i%(4*benchKeys)), value); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Range1000", func(b *testing.B) {
		s := open(b)
		defer s.Close()
		load(b, s)
		sorted := make([][]byte, benchKeys)
		for i := range sorted {
			sorted[i] = key(i)
		}
		slices.SortFunc(sorted, bytes.Compare)
		r := newRand(2)
		starts := make([][]byte, 64)
		for i := range starts {
			starts[i] = sorted[r.n(benchKeys-1000)] // 1000 keys from here on
		}
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			it := s.Range(starts[i%len(starts)], nil)
			n := 0
			for n < 1000 && it.Next() {
				n++
			}
			if err := it.Close(); err != nil || n != 1000 {
				b.Fatal("scanned", n, "keys:", err)
			}
		}
	})
}
