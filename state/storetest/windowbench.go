package storetest

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/streamwork-go/streamwork/state"
)

// BenchmarkWindow runs the window and session store benchmarks, each on a
// new store from open, all reporting allocations:
//
//   - Put: a windowed aggregation's write, 10,000 keys, one-minute windows,
//     stream time advancing one millisecond per Put.
//   - FetchRange, BackwardFetchRange: ten consecutive windows of one key out
//     of 1,000 keys with 60 windows each.
//   - SessionPut, FindSessions: sessions of 1,000 keys; FindSessions looks
//     up the sessions a new record would merge.
//   - ExpireSegment100k/DeleteRange: expiring a segment of 100,000 windows
//     the way the stores do, by advancing stream time (one DeleteRange);
//     ExpireSegment100k/KeyByKey: deleting the same windows one by one.
//     Each op loads the segment first, so ns/op is mostly loading: the
//     expire-ns/op metric is the expiry alone, flush-ns/op the Flush right
//     after it.
func BenchmarkWindow(b *testing.B, open Opener) {
	value := make([]byte, 100)
	key := func(i int) []byte {
		return binary.BigEndian.AppendUint64(make([]byte, 0, 8), uint64(i)*0x9e3779b97f4a7c15)
	}
	const minute = int64(60_000)
	cfg := state.WindowStoreConfig{Retention: time.Hour, WindowSize: time.Minute}

	b.Run("Put", func(b *testing.B) {
		s := open(b)
		defer s.Close()
		ws := openWindows(b, s, cfg)
		keys := make([][]byte, 10_000)
		for i := range keys {
			keys[i] = key(i)
		}
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			ts := int64(i)
			if _, err := ws.Put(keys[i%len(keys)], ts-ts%minute, value); err != nil {
				b.Fatal(err)
			}
		}
	})

	loadWindows := func(b *testing.B, ws state.WindowStore, s state.Store) {
		for w := range int64(60) {
			for k := range 1000 {
				if _, err := ws.Put(key(k), w*minute, value); err != nil {
					b.Fatal(err)
				}
			}
		}
		if err := s.Flush(); err != nil {
			b.Fatal(err)
		}
	}
	fetchRange := func(backward bool) func(b *testing.B) {
		return func(b *testing.B) {
			s := open(b)
			defer s.Close()
			ws := openWindows(b, s, state.WindowStoreConfig{Retention: 2 * time.Hour, WindowSize: time.Minute})
			loadWindows(b, ws, s)
			r := newRand(3)
			b.ReportAllocs()
			for b.Loop() {
				k, from := key(r.n(1000)), int64(r.n(50))*minute
				var it state.WindowIterator
				if backward {
					it = ws.BackwardFetchRange(k, from, from+9*minute)
				} else {
					it = ws.FetchRange(k, from, from+9*minute)
				}
				n := 0
				for it.Next() {
					n++
				}
				if err := it.Close(); err != nil || n != 10 {
					b.Fatal("fetched", n, "windows:", err)
				}
			}
		}
	}
	b.Run("FetchRange", fetchRange(false))
	b.Run("BackwardFetchRange", fetchRange(true))

	scfg := state.SessionStoreConfig{Retention: time.Hour, InactivityGap: 5 * time.Minute}
	b.Run("SessionPut", func(b *testing.B) {
		s := open(b)
		defer s.Close()
		ss := openSessions(b, s, scfg)
		keys := make([][]byte, 1000)
		for i := range keys {
			keys[i] = key(i)
		}
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			end := int64(i)
			if _, err := ss.Put(keys[i%len(keys)], end-end%minute, end, value); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("FindSessions", func(b *testing.B) {
		s := open(b)
		defer s.Close()
		ss := openSessions(b, s, state.SessionStoreConfig{Retention: 4 * time.Hour, InactivityGap: 5 * time.Minute})
		// 20 sessions of 2 minutes per key, 10 minutes apart, all live.
		for n := range int64(20) {
			for k := range 1000 {
				if _, err := ss.Put(key(k), n*10*minute, n*10*minute+2*minute, value); err != nil {
					b.Fatal(err)
				}
			}
		}
		if err := s.Flush(); err != nil {
			b.Fatal(err)
		}
		r := newRand(4)
		gap := 5 * minute
		b.ReportAllocs()
		for b.Loop() {
			// A record 2 to 3 minutes after a session's end merges it.
			ts := int64(r.n(19))*10*minute + 4*minute + int64(r.n(int(minute)))
			it := ss.FindSessions(key(r.n(1000)), ts-gap, ts+gap)
			n := 0
			for it.Next() {
				n++
			}
			if err := it.Close(); err != nil || n != 1 {
				b.Fatal("found", n, "sessions:", err)
			}
		}
	})

	b.Run("ExpireSegment100k", func(b *testing.B) {
		const n = 100_000
		ecfg := state.WindowStoreConfig{Retention: 10 * time.Minute, WindowSize: time.Minute}
		keys := make([][]byte, n)
		for i := range keys {
			keys[i] = key(i)
		}
		for _, mode := range []string{"DeleteRange", "KeyByKey"} {
			b.Run(mode, func(b *testing.B) {
				s := open(b)
				defer s.Close()
				ws := openWindows(b, s, ecfg)
				interval := ws.Config().SegmentInterval.Milliseconds()
				var expire, flush time.Duration
				base := int64(0)
				b.ReportAllocs()
				for b.Loop() {
					// One segment of n windows, flushed to tables.
					for i, k := range keys {
						if _, err := ws.Put(k, base+int64(i)%interval, value); err != nil {
							b.Fatal(err)
						}
					}
					if err := s.Flush(); err != nil {
						b.Fatal(err)
					}
					later := base + 3*interval // the segment is expired then
					start := time.Now()
					if mode == "KeyByKey" {
						for i, k := range keys {
							if _, err := ws.Put(k, base+int64(i)%interval, nil); err != nil {
								b.Fatal(err)
							}
						}
					}
					if _, err := ws.Put(key(-1), later, value); err != nil {
						b.Fatal(err)
					}
					mid := time.Now()
					if err := s.Flush(); err != nil {
						b.Fatal(err)
					}
					expire, flush = expire+mid.Sub(start), flush+time.Since(mid)
					if got := collectWindows(b, ws.All()); len(got) != 1 {
						b.Fatalf("%d windows left after expiry, want 1", len(got))
					}
					base = later + interval
				}
				b.ReportMetric(float64(expire.Nanoseconds())/float64(b.N), "expire-ns/op")
				b.ReportMetric(float64(flush.Nanoseconds())/float64(b.N), "flush-ns/op")
			})
		}
	})
}
