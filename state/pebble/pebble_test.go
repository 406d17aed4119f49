package pebble

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/streamwork-go/streamwork/serde"
	"github.com/streamwork-go/streamwork/state"
	"github.com/streamwork-go/streamwork/state/memory"
	"github.com/streamwork-go/streamwork/state/storetest"
)

func newEnv(tb testing.TB, opts ...EnvOpt) *Env {
	tb.Helper()
	e, err := NewEnv(opts...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = e.Close() })
	return e
}

func mustOpen(tb testing.TB, e *Env, dir, name string) *Store {
	tb.Helper()
	s, err := e.Open(dir, name)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// opener returns a storetest.Opener of stores in new directories of e.
func opener(e *Env, root string) storetest.Opener {
	var mu sync.Mutex
	n := 0
	return func(tb testing.TB) state.Store {
		mu.Lock()
		n++
		dir := filepath.Join(root, fmt.Sprint(n))
		mu.Unlock()
		s := mustOpen(tb, e, dir, "test")
		tb.Cleanup(func() { _ = s.Close() })
		return s
	}
}

func TestConformanceMemFS(t *testing.T) {
	storetest.Run(t, opener(newEnv(t, FS(vfs.NewMem())), "/stores"))
}

func TestConformanceDisk(t *testing.T) {
	storetest.Run(t, opener(newEnv(t), t.TempDir()))
}

// Small memtables make Pebble flush and compact during the suite.
func TestConformanceSmallMemTables(t *testing.T) {
	storetest.Run(t, opener(newEnv(t, FS(vfs.NewMem()), MemTableSize(minMemTableSize), BlockCacheSize(1<<20)), "/stores"))
}

func TestWindowConformance(t *testing.T) {
	storetest.RunWindow(t, opener(newEnv(t, FS(vfs.NewMem())), "/stores"))
}

// Small memtables flush the window and session stores' range tombstones
// and make compactions apply them during the suites.
func TestWindowConformanceSmallMemTables(t *testing.T) {
	storetest.RunWindow(t, opener(newEnv(t, FS(vfs.NewMem()), MemTableSize(minMemTableSize), BlockCacheSize(1<<20)), "/stores"))
}

func TestSessionConformance(t *testing.T) {
	storetest.RunSession(t, opener(newEnv(t, FS(vfs.NewMem())), "/stores"))
}

func TestSessionConformanceSmallMemTables(t *testing.T) {
	storetest.RunSession(t, opener(newEnv(t, FS(vfs.NewMem()), MemTableSize(minMemTableSize), BlockCacheSize(1<<20)), "/stores"))
}

func TestVersionedConformance(t *testing.T) {
	storetest.RunVersioned(t, opener(newEnv(t, FS(vfs.NewMem())), "/stores"))
}

func TestVersionedConformanceSmallMemTables(t *testing.T) {
	storetest.RunVersioned(t, opener(newEnv(t, FS(vfs.NewMem()), MemTableSize(minMemTableSize), BlockCacheSize(1<<20)), "/stores"))
}

func TestPersistence(t *testing.T) {
	for _, tc := range []struct {
		name string
		fs   vfs.FS
		dir  string
	}{
		{"MemFS", vfs.NewMem(), "/state/0_1/counts"},
		{"Disk", vfs.Default, filepath.Join(t.TempDir(), "0_1", "counts")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, FS(tc.fs))
			s := mustOpen(t, e, tc.dir, "counts")
			kv := state.Typed(s, serde.String, serde.Int64)
			for i := range 1000 {
				if err := kv.Put(fmt.Sprintf("k%04d", i), int64(i)); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.Flush(); err != nil {
				t.Fatal(err)
			}
			// Written after the Flush: Close flushes these too.
			if err := kv.Put("late", -1); err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}

			s = mustOpen(t, e, tc.dir, "counts")
			defer s.Close()
			kv = state.Typed(s, serde.String, serde.Int64)
			if v, ok, err := kv.Get("k0999"); v != 999 || !ok || err != nil {
				t.Fatalf("after reopen: Get(k0999) = %d, %v, %v", v, ok, err)
			}
			if v, ok, err := kv.Get("late"); v != -1 || !ok || err != nil {
				t.Fatalf("after reopen: Get(late) = %d, %v, %v", v, ok, err)
			}
			n := 0
			for range kv.All() {
				n++
			}
			if n != 1001 {
				t.Fatalf("after reopen: %d keys, want 1001", n)
			}
			if c := s.ApproximateCount(); c != 1001 {
				t.Errorf("after reopen: ApproximateCount = %d, want 1001", c)
			}
		})
	}
}

func TestSharedCacheAcross50Stores(t *testing.T) {
	const stores = 50
	// Each open store charges its memtable (256 KiB here) to the shared
	// cache: 50 of them take 12.5 MiB of the 32.
	e := newEnv(t, FS(vfs.NewMem()), BlockCacheSize(32<<20), MemTableSize(256<<10))
	var all []*Store
	for i := range stores {
		s := mustOpen(t, e, fmt.Sprintf("/state/0_%d/agg", i), fmt.Sprintf("agg-%d", i))
		all = append(all, s)
		if s.opts.Cache != e.cache || s.opts.FileCache != e.fileCache {
			t.Fatalf("store %d has its own cache", i)
		}
		for j := range 200 {
			if err := s.Put([]byte(fmt.Sprintf("%d/%04d", i, j)), make([]byte, 100)); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	for i, s := range all {
		for j := 0; j < 200; j += 17 {
			if v, err := s.Get([]byte(fmt.Sprintf("%d/%04d", i, j))); err != nil || len(v) != 100 {
				t.Fatalf("store %d key %d: %d bytes, %v", i, j, len(v), err)
			}
		}
	}
	m := e.Metrics()
	if m.OpenStores != stores || m.MemTableReserved != stores*2*(256<<10) {
		t.Fatalf("metrics with %d stores open: %+v", stores, m)
	}
	if m.BlockCache.Count == 0 || m.BlockCache.Size > m.BlockCacheCapacity {
		t.Fatalf("shared block cache: %+v, capacity %d", m.BlockCache, m.BlockCacheCapacity)
	}
	// Reads of every store went through the one cache.
	if m.BlockCache.Hits+m.BlockCache.Misses == 0 {
		t.Fatal("no block cache traffic")
	}
	for _, s := range all {
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if m := e.Metrics(); m.OpenStores != 0 || m.MemTableReserved != 0 {
		t.Fatalf("metrics after closing all: %+v", m)
	}
}

func TestMemTableBudget(t *testing.T) {
	const mt = 1 << 20
	e := newEnv(t, FS(vfs.NewMem()), MemTableSize(mt), MemTableBudget(3*2*mt))
	var open []*Store
	for i := range 3 {
		open = append(open, mustOpen(t, e, fmt.Sprintf("/s%d", i), "s"))
	}
	if _, err := e.Open("/s3", "s"); !errors.Is(err, ErrMemTableBudget) {
		t.Fatalf("fourth Open: err = %v, want ErrMemTableBudget", err)
	}
	if err := open[0].Close(); err != nil {
		t.Fatal(err)
	}
	s := mustOpen(t, e, "/s3", "s")
	for _, s := range append(open[1:], s) {
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestOpenTwiceAndDestroy(t *testing.T) {
	fs := vfs.NewMem()
	e := newEnv(t, FS(fs))
	s := mustOpen(t, e, "/state/a", "a")
	if _, err := e.Open("/state/a/", "again"); !errors.Is(err, ErrStoreOpen) {
		t.Fatalf("second Open of a directory: err = %v, want ErrStoreOpen", err)
	}
	if err := e.Destroy("/state/a"); !errors.Is(err, ErrStoreOpen) {
		t.Fatalf("Destroy of an open store: err = %v, want ErrStoreOpen", err)
	}
	if err := s.Put([]byte("k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.Destroy("/state/a"); err != nil {
		t.Fatal(err)
	}
	if _, err := fs.Stat("/state/a"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("directory still there after Destroy: %v", err)
	}
	if err := Destroy(fs, "/state/never"); err != nil {
		t.Fatalf("Destroy of a missing directory: %v", err)
	}
	s = mustOpen(t, e, "/state/a", "a")
	defer s.Close()
	if v, err := s.Get([]byte("k")); v != nil || err != nil {
		t.Fatalf("destroyed store still has k: %q, %v", v, err)
	}
}

func TestEnvClose(t *testing.T) {
	e, err := NewEnv(FS(vfs.NewMem()))
	if err != nil {
		t.Fatal(err)
	}
	s := mustOpen(t, e, "/a", "a")
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	// A store opened before Env.Close keeps working.
	if err := s.Put([]byte("k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if v, err := s.Get([]byte("k")); string(v) != "v" || err != nil {
		t.Fatalf("Get = %q, %v", v, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if r, _ := recover().(error); !errors.Is(r, state.ErrClosed) {
			t.Fatalf("Open after Env.Close: panic %v, want state.ErrClosed", r)
		}
	}()
	_, _ = e.Open("/b", "b")
}

func TestEnvOptionsValidate(t *testing.T) {
	for _, opts := range [][]EnvOpt{
		{BlockCacheSize(-1)},
		{MemTableSize(1024)},
		{MemTableSize(2 << 30)},
		{MemTableSize(4 << 20), MemTableBudget(4 << 20)},
		{MaxOpenFiles(10)},
		{FS(nil)},
	} {
		if _, err := NewEnv(opts...); !errors.Is(err, ErrConfig) {
			t.Errorf("NewEnv(%d options): err = %v, want ErrConfig", len(opts), err)
		}
	}
	e, err := NewEnv(BlockCacheSize(0), FS(vfs.NewMem()))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	s := mustOpen(t, e, "/nocache", "nocache")
	defer s.Close()
	if err := s.Put([]byte("k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if v, err := s.Get([]byte("k")); string(v) != "v" || err != nil {
		t.Fatalf("without a block cache: Get = %q, %v", v, err)
	}
}

var metamorphicSeeds = flag.Int("metamorphic.seeds", 4, "number of random sequences TestMetamorphic runs")

// TestMetamorphic runs random operation sequences on a memory store, a
// Pebble store with defaults and one with tiny memtables (so it flushes and
// compacts as it goes), and expects identical results throughout.
func TestMetamorphic(t *testing.T) {
	seeds, ops := uint64(*metamorphicSeeds), 3000
	if testing.Short() {
		seeds, ops = 1, 1000
	}
	e := newEnv(t, FS(vfs.NewMem()))
	small := newEnv(t, FS(vfs.NewMem()), MemTableSize(minMemTableSize), BlockCacheSize(256<<10))
	for seed := range seeds {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			m := memory.New("memory")
			p := mustOpen(t, e, fmt.Sprintf("/m%d", seed), "pebble")
			ps := mustOpen(t, small, fmt.Sprintf("/m%d", seed), "pebble-small-memtables")
			defer func() {
				for _, s := range []state.Store{m, p, ps} {
					if err := s.Close(); err != nil {
						t.Error(err)
					}
				}
			}()
			storetest.Metamorphic(t, seed, ops, m, p, ps)
		})
	}
}

func BenchmarkPebble(b *testing.B) {
	storetest.Benchmark(b, opener(newEnv(b), b.TempDir()))
}

func BenchmarkPebbleMemFS(b *testing.B) {
	storetest.Benchmark(b, opener(newEnv(b, FS(vfs.NewMem())), "/bench"))
}

func BenchmarkPebbleWindow(b *testing.B) {
	storetest.BenchmarkWindow(b, opener(newEnv(b), b.TempDir()))
}

func BenchmarkPebbleVersioned(b *testing.B) {
	storetest.BenchmarkVersioned(b, opener(newEnv(b), b.TempDir()))
}

// TestEmptyKeyOnlyFlush pins the Pebble v2.1.7 crash that made Env turn
// columnar blocks off: flushing a memtable whose only key is the empty key
// panicked in a background goroutine, killing the process.
func TestEmptyKeyOnlyFlush(t *testing.T) {
	e := newEnv(t, FS(vfs.NewMem()))
	s := mustOpen(t, e, "/empty", "empty")
	defer s.Close()
	for _, v := range []string{"1", "2"} {
		if err := s.Put(nil, []byte(v)); err != nil {
			t.Fatal(err)
		}
		if err := s.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Delete([]byte{}); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if v, err := s.Get(nil); v != nil || err != nil {
		t.Fatalf("Get(empty key) after Delete = %q, %v", v, err)
	}
}
