package pebble

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"maps"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/streamwork-go/streamwork/state"
	"github.com/streamwork-go/streamwork/state/memory"
	"github.com/streamwork-go/streamwork/state/storetest"
)

// txnOpener returns a storetest.Opener of transactional stores in new
// directories of e. With commitEvery > 0 the stores commit their open
// transaction after every commitEvery writes, so the suites also read data
// split between the database and the batch, with iterators open across
// commits.
func txnOpener(e *Env, root string, commitEvery int) storetest.Opener {
	var mu sync.Mutex
	n := 0
	return func(tb testing.TB) state.Store {
		mu.Lock()
		n++
		dir := filepath.Join(root, fmt.Sprint(n))
		mu.Unlock()
		s := mustOpenTxn(tb, e, dir, "test")
		tb.Cleanup(func() { _ = s.Close() })
		if commitEvery == 0 {
			return s
		}
		return &committing{Store: s, every: commitEvery}
	}
}

func mustOpenTxn(tb testing.TB, e *Env, dir, name string) *Store {
	tb.Helper()
	s, err := e.Open(dir, name, Transactional())
	if err != nil {
		tb.Fatal(err)
	}
	if !s.Transactional() {
		tb.Fatal("a store opened with Transactional is not transactional")
	}
	return s
}

// committing commits its store's transaction every every writes, and on
// Flush.
type committing struct {
	*Store
	every, n int
}

func (c *committing) wrote(err error) error {
	if err != nil {
		return err
	}
	c.n++
	if c.n%c.every == 0 {
		return c.Commit()
	}
	return nil
}

func (c *committing) Put(k, v []byte) error { return c.wrote(c.Store.Put(k, v)) }
func (c *committing) Delete(k []byte) error { return c.wrote(c.Store.Delete(k)) }
func (c *committing) DeleteRange(from, to []byte) error {
	return c.wrote(c.Store.DeleteRange(from, to))
}
func (c *committing) PutMeta(n string, v []byte) error { return c.wrote(c.Store.PutMeta(n, v)) }
func (c *committing) Flush() error {
	if err := c.Commit(); err != nil {
		return err
	}
	return c.Store.Flush()
}

// The conformance suites hold for a transactional store whose writes all
// stay in the open transaction, and for one that commits as it goes.
func TestTxnConformance(t *testing.T) {
	for _, every := range []int{0, 3} {
		t.Run(fmt.Sprintf("commitEvery=%d", every), func(t *testing.T) {
			e := newEnv(t, FS(vfs.NewMem()), MemTableSize(minMemTableSize), BlockCacheSize(1<<20))
			open := txnOpener(e, "/stores", every)
			t.Run("kv", func(t *testing.T) { storetest.Run(t, open) })
			t.Run("window", func(t *testing.T) { storetest.RunWindow(t, open) })
			t.Run("session", func(t *testing.T) { storetest.RunSession(t, open) })
			t.Run("versioned", func(t *testing.T) { storetest.RunVersioned(t, open) })
		})
	}
}

// TestTxnMetamorphic runs random operation sequences on a memory store and
// transactional Pebble stores (one committing on Flush, one every few
// writes), and expects identical results throughout.
func TestTxnMetamorphic(t *testing.T) {
	seeds, ops := uint64(*metamorphicSeeds), 3000
	if testing.Short() {
		seeds, ops = 1, 1000
	}
	e := newEnv(t, FS(vfs.NewMem()), MemTableSize(minMemTableSize), BlockCacheSize(256<<10))
	for seed := range seeds {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			m := memory.New("memory")
			p := &committing{Store: mustOpenTxn(t, e, fmt.Sprintf("/a%d", seed), "txn-on-flush"), every: 1 << 30}
			q := &committing{Store: mustOpenTxn(t, e, fmt.Sprintf("/b%d", seed), "txn-every-7"), every: 7}
			defer func() {
				for _, s := range []state.Store{m, p, q} {
					if err := s.Close(); err != nil {
						t.Error(err)
					}
				}
			}()
			storetest.Metamorphic(t, seed, ops, m, p, q)
		})
	}
}

func getString(t testing.TB, s state.Store, k string) string {
	t.Helper()
	v, err := s.Get([]byte(k))
	if err != nil {
		t.Fatal(err)
	}
	if v == nil {
		return "<nil>"
	}
	return string(v)
}

func scanString(t testing.TB, it state.Iterator) string {
	t.Helper()
	var b strings.Builder
	for it.Next() {
		fmt.Fprintf(&b, "%s=%s ", it.Key(), it.Value())
	}
	if err := it.Close(); err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(b.String())
}

func mustDo(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// Reads see the open transaction merged over the committed data: its puts,
// its deletes and its range deletes of committed keys.
func TestTxnReadsThroughTheBatch(t *testing.T) {
	e := newEnv(t, FS(vfs.NewMem()))
	s := mustOpenTxn(t, e, "/s", "s")
	defer s.Close()
	for _, k := range []string{"a", "b", "c", "d", "e"} {
		mustDo(t, s.Put([]byte(k), []byte("old-"+k)))
	}
	mustDo(t, s.Commit())
	if n := s.Uncommitted(); n != 0 {
		t.Fatalf("Uncommitted after Commit = %d", n)
	}

	mustDo(t, s.Put([]byte("b"), []byte("new-b")))
	mustDo(t, s.Delete([]byte("c")))
	mustDo(t, s.DeleteRange([]byte("d"), []byte("e")))
	mustDo(t, s.Put([]byte("f"), []byte("new-f")))
	if n := s.Uncommitted(); n != 4 {
		t.Fatalf("Uncommitted = %d, want 4", n)
	}
	for k, want := range map[string]string{"a": "old-a", "b": "new-b", "c": "<nil>", "d": "<nil>", "e": "old-e", "f": "new-f"} {
		if got := getString(t, s, k); got != want {
			t.Errorf("Get(%s) = %s, want %s", k, got, want)
		}
	}
	if got, want := scanString(t, s.All()), "a=old-a b=new-b e=old-e f=new-f"; got != want {
		t.Errorf("All = %q, want %q", got, want)
	}
	if got, want := scanString(t, s.Range([]byte("b"), []byte("f"))), "b=new-b e=old-e"; got != want {
		t.Errorf("Range(b, f) = %q, want %q", got, want)
	}
	if got, want := scanString(t, s.Prefix([]byte("f"))), "f=new-f"; got != want {
		t.Errorf("Prefix(f) = %q, want %q", got, want)
	}

	// An iterator is a snapshot: writes after it opened, and the commit of
	// the batch it reads, do not change what it returns.
	it := s.All()
	mustDo(t, s.Put([]byte("a"), []byte("newer-a")))
	mustDo(t, s.Commit())
	mustDo(t, s.Put([]byte("g"), []byte("new-g")))
	if got, want := scanString(t, it), "a=old-a b=new-b e=old-e f=new-f"; got != want {
		t.Errorf("iterator opened before the writes = %q, want %q", got, want)
	}
	if got, want := scanString(t, s.All()), "a=newer-a b=new-b e=old-e f=new-f g=new-g"; got != want {
		t.Errorf("All after commit = %q, want %q", got, want)
	}
}

// Abort drops the open transaction, data, range deletes and metadata
// alike; the committed state stays.
func TestTxnAbortDiscards(t *testing.T) {
	e := newEnv(t, FS(vfs.NewMem()))
	s := mustOpenTxn(t, e, "/s", "s")
	defer s.Close()
	mustDo(t, s.Put([]byte("a"), []byte("1")))
	mustDo(t, s.Put([]byte("b"), []byte("1")))
	mustDo(t, s.PutMeta("offset", []byte("10")))
	mustDo(t, s.Commit())

	open := s.Range(nil, nil) // reads the batch that aborts
	mustDo(t, s.Put([]byte("a"), []byte("2")))
	mustDo(t, s.DeleteRange(nil, nil))
	mustDo(t, s.Put([]byte("c"), []byte("2")))
	mustDo(t, s.PutMeta("offset", []byte("20")))
	it := s.All()
	if got := scanString(t, s.All()); got != "c=2" {
		t.Fatalf("All in the transaction = %q, want c=2", got)
	}
	mustDo(t, s.Abort())
	if got, want := scanString(t, s.All()), "a=1 b=1"; got != want {
		t.Errorf("All after Abort = %q, want %q", got, want)
	}
	if m, err := s.GetMeta("offset"); string(m) != "10" || err != nil {
		t.Errorf("GetMeta after Abort = %q, %v; want 10", m, err)
	}
	if got := scanString(t, it); got != "c=2" {
		t.Errorf("an iterator of the aborted transaction = %q, want its snapshot c=2", got)
	}
	if got := scanString(t, open); got != "a=1 b=1" {
		t.Errorf("an iterator opened before = %q, want a=1 b=1", got)
	}
	if n := s.ApproximateCount(); n != 2 {
		t.Errorf("ApproximateCount after Abort = %d, want 2", n)
	}
}

// offsetMeta is the name of the metadata record the tests keep an offset
// in, as the runtime keeps the changelog offset.
const offsetMeta = "offset"

func putOffset(t testing.TB, s state.Store, off uint64) {
	t.Helper()
	mustDo(t, s.PutMeta(offsetMeta, binary.BigEndian.AppendUint64(nil, off)))
}

func getOffset(t testing.TB, s state.Store) (uint64, bool) {
	t.Helper()
	b, err := s.GetMeta(offsetMeta)
	if err != nil {
		t.Fatal(err)
	}
	if b == nil {
		return 0, false
	}
	return binary.BigEndian.Uint64(b), true
}

// After a crash (the filesystem as last synced: a power loss, worse than a
// killed process), a transactional store reopens at its last committed
// transaction, data and offset together; the open transaction is gone.
func TestTxnCrashKeepsTheLastCommit(t *testing.T) {
	fs := vfs.NewCrashableMem()
	e := newEnv(t, FS(fs))
	s := mustOpenTxn(t, e, "/s", "s")
	for i := range 3000 {
		mustDo(t, s.Put(fmt.Appendf(nil, "k%05d", i), fmt.Appendf(nil, "v%d", i)))
	}
	putOffset(t, s, 3000)
	mustDo(t, s.Commit())
	mustDo(t, s.Put([]byte("k00000"), []byte("first transaction")))
	mustDo(t, s.DeleteRange([]byte("k00001"), []byte("k00100")))
	putOffset(t, s, 3002)
	mustDo(t, s.Commit())
	// The open transaction, which the crash loses.
	mustDo(t, s.Put([]byte("k00000"), []byte("uncommitted")))
	mustDo(t, s.DeleteRange(nil, nil))
	putOffset(t, s, 3004)

	crashed := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 0})
	mustDo(t, s.Close())

	e2 := newEnv(t, FS(crashed))
	r := mustOpenTxn(t, e2, "/s", "s")
	defer r.Close()
	if off, ok := getOffset(t, r); !ok || off != 3002 {
		t.Fatalf("offset after the crash = %d, %t; want 3002", off, ok)
	}
	if got := getString(t, r, "k00000"); got != "first transaction" {
		t.Errorf("k00000 = %s, want the last committed value", got)
	}
	n := 0
	it := r.All()
	for it.Next() {
		n++
	}
	mustDo(t, it.Close())
	if n != 3000-99 {
		t.Errorf("keys after the crash = %d, want %d", n, 3000-99)
	}
}

// The same crash with the store's last commit written only partly to disk
// (each unsynced block kept or not at random): the store still reopens at
// a committed transaction, whole, with the offset it wrote, never between
// two.
func TestTxnCrashNeverTearsACommit(t *testing.T) {
	for seed := range uint64(8) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			fs := vfs.NewCrashableMem()
			e := newEnv(t, FS(fs), MemTableSize(minMemTableSize))
			s := mustOpenTxn(t, e, "/s", "s")
			// After commit i, every key holds i and the offset is i.
			for i := uint64(1); i <= 40; i++ {
				for k := range 50 {
					mustDo(t, s.Put(fmt.Appendf(nil, "k%02d", k), fmt.Appendf(nil, "%d", i)))
				}
				putOffset(t, s, i)
				mustDo(t, s.Commit())
			}
			mustDo(t, s.Put([]byte("k00"), []byte("uncommitted")))
			crashed := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 50, RNG: rand.New(rand.NewPCG(seed, 2))})
			mustDo(t, s.Close())

			r := mustOpenTxn(t, newEnv(t, FS(crashed)), "/s", "s")
			defer r.Close()
			off, ok := getOffset(t, r)
			if !ok || off != 40 {
				t.Fatalf("offset after the crash = %d, %t; want 40 (the last commit was synced)", off, ok)
			}
			want := strings.Repeat(fmt.Sprintf("%d ", off), 50)
			var got strings.Builder
			it := r.All()
			for it.Next() {
				fmt.Fprintf(&got, "%s ", it.Value())
			}
			mustDo(t, it.Close())
			if got.String() != want {
				t.Errorf("values after the crash = %q, want every key at %d", got.String(), off)
			}
		})
	}
}

// A store opened without Transactional writes through: Commit is Flush,
// Abort does nothing.
func TestNonTxnCommitAndAbort(t *testing.T) {
	e := newEnv(t, FS(vfs.NewMem()))
	s := mustOpen(t, e, "/s", "s")
	defer s.Close()
	if s.Transactional() {
		t.Fatal("a store opened without Transactional is transactional")
	}
	mustDo(t, s.Put([]byte("a"), []byte("1")))
	mustDo(t, s.Abort())
	if got := getString(t, s, "a"); got != "1" {
		t.Fatalf("Get after Abort on a write-through store = %s, want 1", got)
	}
	mustDo(t, s.Commit())
	if s.Uncommitted() != 0 {
		t.Fatal("Uncommitted on a write-through store")
	}
}

// Readers on other goroutines (interactive queries) read while the writer
// writes, commits and aborts; run with -race.
func TestTxnConcurrentReaders(t *testing.T) {
	e := newEnv(t, FS(vfs.NewMem()), MemTableSize(minMemTableSize))
	s := mustOpenTxn(t, e, "/s", "s")
	defer s.Close()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := s.Get([]byte("k1")); err != nil {
					t.Error(err)
					return
				}
				it := s.Prefix([]byte("k"))
				prev := []byte(nil)
				for it.Next() {
					if prev != nil && bytes.Compare(prev, it.Key()) >= 0 {
						t.Errorf("keys out of order: %q then %q", prev, it.Key())
					}
					prev = append(prev[:0], it.Key()...)
				}
				if err := it.Close(); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	for i := range 2000 {
		mustDo(t, s.Put(fmt.Appendf(nil, "k%d", i%97), fmt.Appendf(nil, "%d", i)))
		switch i % 50 {
		case 17:
			mustDo(t, s.Commit())
		case 41:
			mustDo(t, s.Abort())
		case 29:
			mustDo(t, s.DeleteRange([]byte("k2"), []byte("k3")))
		}
	}
	close(stop)
	wg.Wait()
}

// txnModel is what a transactional store must read: the committed pairs
// and the open transaction's view.
type txnModel struct{ committed, view map[string]string }

func (m *txnModel) scan(from, to string, toOpen bool) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(m.view)) {
		if k >= from && (toOpen || k < to) {
			fmt.Fprintf(&b, "%x=%x ", k, m.view[k])
		}
	}
	return b.String()
}

func scanHex(t testing.TB, it state.Iterator) string {
	t.Helper()
	var b strings.Builder
	for it.Next() {
		fmt.Fprintf(&b, "%x=%x ", it.Key(), it.Value())
	}
	mustDo(t, it.Close())
	return b.String()
}

// FuzzTxn checks a transactional store against a model through random
// puts, deletes, range deletes, reads, scans, commits, aborts and crashes
// (the filesystem as last synced), drawn from the fuzzer's seed.
func FuzzTxn(f *testing.F) {
	for _, seed := range []uint64{0, 1, 2, 42, 1 << 40} {
		f.Add(seed, uint16(300))
	}
	f.Fuzz(func(t *testing.T, seed uint64, n uint16) {
		rng := rand.New(rand.NewPCG(seed, 7))
		fs := vfs.NewCrashableMem()
		e := newEnv(t, FS(fs), MemTableSize(minMemTableSize))
		s := mustOpenTxn(t, e, "/s", "s")
		defer func() { _ = s.Close() }()
		m := &txnModel{committed: map[string]string{}, view: map[string]string{}}
		key := func() string { return string([]byte{"ab\x00\xff"[rng.IntN(4)], "xyz"[rng.IntN(3)]}[:1+rng.IntN(2)]) }
		var log []string
		for i := range int(n) % 2000 {
			op := rng.IntN(100)
			switch {
			case op < 40:
				k, v := key(), fmt.Sprint(i)
				log = append(log, fmt.Sprintf("put %x", k))
				mustDo(t, s.Put([]byte(k), []byte(v)))
				m.view[k] = v
			case op < 50:
				k := key()
				log = append(log, fmt.Sprintf("delete %x", k))
				mustDo(t, s.Delete([]byte(k)))
				delete(m.view, k)
			case op < 55:
				from, to := key(), key()
				log = append(log, fmt.Sprintf("delete range %x %x", from, to))
				mustDo(t, s.DeleteRange([]byte(from), []byte(to)))
				for k := range m.view {
					if k >= from && k < to {
						delete(m.view, k)
					}
				}
			case op < 70:
				k := key()
				got, err := s.Get([]byte(k))
				mustDo(t, err)
				want, ok := m.view[k]
				if (got != nil) != ok || string(got) != want {
					t.Fatalf("seed %d op %d: Get(%x) = %q, want %q (%t)\n%s", seed, i, k, got, want, ok, strings.Join(log, "\n"))
				}
			case op < 80:
				from, to := key(), key()
				if got, want := scanHex(t, s.Range([]byte(from), []byte(to))), m.scan(from, to, false); got != want {
					t.Fatalf("seed %d op %d: Range(%x, %x) = %s, want %s\n%s", seed, i, from, to, got, want, strings.Join(log, "\n"))
				}
			case op < 88:
				log = append(log, "commit")
				mustDo(t, s.Commit())
				m.committed = maps.Clone(m.view)
			case op < 94:
				log = append(log, "abort")
				mustDo(t, s.Abort())
				m.view = maps.Clone(m.committed)
			default:
				log = append(log, "crash")
				crashed := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: rng.IntN(101), RNG: rand.New(rand.NewPCG(seed, uint64(i)))})
				mustDo(t, s.Close())
				fs = crashed
				e = newEnv(t, FS(fs), MemTableSize(minMemTableSize))
				s = mustOpenTxn(t, e, "/s", "s")
				m.view = maps.Clone(m.committed)
			}
		}
		if got, want := scanHex(t, s.All()), m.scan("", "", true); got != want {
			t.Fatalf("seed %d: All = %s, want %s\n%s", seed, got, want, strings.Join(log, "\n"))
		}
	})
}

// BenchmarkTxnCommit measures a transaction of 100 puts committed to a
// store on disk (the write-ahead log synced), as a task's store commits
// after each Kafka transaction.
func BenchmarkTxnCommit(b *testing.B) {
	e := newEnv(b)
	s := mustOpenTxn(b, e, b.TempDir(), "bench")
	defer s.Close()
	v := make([]byte, 100)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		for j := range 100 {
			if err := s.Put(fmt.Appendf(nil, "k%06d", (i*100+j)%100000), v); err != nil {
				b.Fatal(err)
			}
		}
		if err := s.Commit(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTxnPutGet measures a put and a read of it through the open
// transaction, over a store of 10,000 committed keys.
func BenchmarkTxnPutGet(b *testing.B) {
	e := newEnv(b, FS(vfs.NewMem()))
	s := mustOpenTxn(b, e, "/bench", "bench")
	defer s.Close()
	v := make([]byte, 100)
	for i := range 10000 {
		if err := s.Put(fmt.Appendf(nil, "k%06d", i), v); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.Commit(); err != nil {
		b.Fatal(err)
	}
	k := make([]byte, 0, 16)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		k = fmt.Appendf(k[:0], "k%06d", i%10000)
		if err := s.Put(k, v); err != nil {
			b.Fatal(err)
		}
		if _, err := s.Get(k); err != nil {
			b.Fatal(err)
		}
		if i%1000 == 999 {
			if err := s.Commit(); err != nil {
				b.Fatal(err)
			}
		}
	}
}
