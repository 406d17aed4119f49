package storetest

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/streamwork-go/streamwork/state"
)

// BenchmarkVersioned runs the versioned store benchmarks, each on a new
// store from open, all reporting allocations:
//
//   - Put: a versioned table's write, 10,000 keys updated in turn, stream
//     time advancing one millisecond per Put (each Put after the first of
//     a key closes the key's previous version into history).
//   - PutNewKeys: the first version of a key each time; the store looks
//     for a tombstone to close in every live segment.
//   - PutLate: Puts 1 to 60 seconds behind stream time into keys with 60
//     versions each, splitting a version of history.
//   - Get: the latest value of one of 1,000 keys with 60 versions each.
//   - GetAsOf: a version of one of those keys as of a random time within
//     the history retention (a stream-table join's lookup).
//   - Versions: ten consecutive versions of one of those keys.
func BenchmarkVersioned(b *testing.B, open Opener) {
	value := make([]byte, 100)
	key := func(i int) []byte {
		return binary.BigEndian.AppendUint64(make([]byte, 0, 8), uint64(i)*0x9e3779b97f4a7c15)
	}
	const second = int64(1000)
	cfg := state.VersionedStoreConfig{HistoryRetention: time.Hour}

	b.Run("Put", func(b *testing.B) {
		s := open(b)
		defer s.Close()
		vs := openVersioned(b, s, cfg)
		keys := make([][]byte, 10_000)
		for i := range keys {
			keys[i] = key(i)
		}
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if _, _, err := vs.Put(keys[i%len(keys)], value, int64(i)); err != nil {
				b.Fatal(err)
			}
		}
	})

	b.Run("PutNewKeys", func(b *testing.B) {
		s := open(b)
		defer s.Close()
		vs := openVersioned(b, s, cfg)
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if _, _, err := vs.Put(key(i), value, int64(i)); err != nil {
				b.Fatal(err)
			}
		}
	})

	// load puts 60 versions, a minute apart, of 1,000 keys.
	load := func(b *testing.B) (state.Store, state.VersionedStore) {
		s := open(b)
		vs := openVersioned(b, s, cfg)
		for v := range int64(60) {
			for k := range 1000 {
				if _, _, err := vs.Put(key(k), value, v*60*second); err != nil {
					b.Fatal(err)
				}
			}
		}
		if err := s.Flush(); err != nil {
			b.Fatal(err)
		}
		return s, vs
	}
	const last = 59 * 60 * second
	b.Run("PutLate", func(b *testing.B) {
		s, vs := load(b)
		defer s.Close()
		r := newRand(5)
		b.ReportAllocs()
		for b.Loop() {
			ts := last - int64(1+r.n(60))*second
			if _, _, err := vs.Put(key(r.n(1000)), value, ts); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Get", func(b *testing.B) {
		s, vs := load(b)
		defer s.Close()
		r := newRand(6)
		b.ReportAllocs()
		for b.Loop() {
			if _, _, ok, err := vs.Get(key(r.n(1000))); !ok || err != nil {
				b.Fatal(ok, err)
			}
		}
	})
	b.Run("GetAsOf", func(b *testing.B) {
		s, vs := load(b)
		defer s.Close()
		r := newRand(7)
		b.ReportAllocs()
		for b.Loop() {
			asOf := last - int64(r.n(int(last/second)))*second
			if _, _, _, ok, err := vs.GetAsOf(key(r.n(1000)), asOf); !ok || err != nil {
				b.Fatal(asOf, ok, err)
			}
		}
	})
	b.Run("Versions", func(b *testing.B) {
		s, vs := load(b)
		defer s.Close()
		r := newRand(8)
		b.ReportAllocs()
		for b.Loop() {
			from := int64(r.n(50)) * 60 * second
			it := vs.Versions(key(r.n(1000)), from, from+9*60*second)
			n := 0
			for it.Next() {
				n++
			}
			if err := it.Close(); err != nil || n != 10 {
				b.Fatal("got", n, "versions:", err)
			}
		}
	})
}
