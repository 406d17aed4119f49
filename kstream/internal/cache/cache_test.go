package cache

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/streamwork-go/streamwork/state"
	"github.com/streamwork-go/streamwork/state/memory"
)

// fakeHost is the task of a cache under test: the timestamp of the
// "current record", a failure flag, and a log of what the cache emitted.
type fakeHost struct {
	ts     int64
	failed bool
	emits  []string // "owner key:new<-old@ts", in order
}

func (h *fakeHost) Timestamp() int64      { return h.ts }
func (h *fakeHost) SetTimestamp(ts int64) { h.ts = ts }
func (h *fakeHost) Failed() bool          { return h.failed }

func (h *fakeHost) Emit(owner string, fn Listener, key, newValue, oldValue []byte, ts int64) {
	h.emits = append(h.emits, fmt.Sprintf("%s %s:%s<-%s@%d", owner, key, cShow(newValue), cShow(oldValue), ts))
	fn(key, newValue, oldValue, ts)
}

// show prints a value: "nil" for a deletion, `""` for an empty value.
func cShow(b []byte) string {
	switch {
	case b == nil:
		return "nil"
	case len(b) == 0:
		return `""`
	}
	return string(b)
}

// recStore is the store below a cache: a memory store that logs every
// write with the host's timestamp at that moment, counts Gets, and fails
// writes while failPut is set.
type recStore struct {
	*memory.Store
	h       *fakeHost
	writes  []string // "key=value@ts"
	logged  []string // LogExpiring's "key=value@ts"
	gets    int
	failPut error
	closed  bool
	onWrite func(key, value []byte) // called before each write, when set
}

func newRecStore(h *fakeHost) *recStore {
	return &recStore{Store: memory.New("below"), h: h}
}

func (s *recStore) Get(key []byte) ([]byte, error) {
	s.gets++
	return s.Store.Get(key)
}

func (s *recStore) Put(key, value []byte) error {
	if s.failPut != nil {
		return s.failPut
	}
	if s.onWrite != nil {
		s.onWrite(key, value)
	}
	s.writes = append(s.writes, fmt.Sprintf("%s=%s@%d", key, cShow(value), s.h.ts))
	return s.Store.Put(key, value)
}

func (s *recStore) Delete(key []byte) error { return s.Put(key, nil) }

// LogExpiring records what DeleteRange logged without writing it (as the
// changelog store logs it).
func (s *recStore) LogExpiring(key, value []byte) {
	s.logged = append(s.logged, fmt.Sprintf("%s=%s@%d", key, cShow(value), s.h.ts))
}

func (s *recStore) Close() error {
	s.closed = true
	return s.Store.Close()
}

// seed writes pairs to the store below directly, bypassing the log.
func (s *recStore) seed(t *testing.T, kv ...string) {
	t.Helper()
	for i := 0; i < len(kv); i += 2 {
		if err := s.Store.Put([]byte(kv[i]), []byte(kv[i+1])); err != nil {
			t.Fatal(err)
		}
	}
}

// oneEntry is the size of an entry with a 1-byte key and a 1-byte value.
const oneEntry = 1 + 1 + EntryOverhead

func cPut(t *testing.T, c *Store, h *fakeHost, ts int64, key, value string) {
	t.Helper()
	h.ts = ts
	if err := c.Put([]byte(key), []byte(value)); err != nil {
		t.Fatalf("Put(%s): %v", key, err)
	}
}

func cDelete(t *testing.T, c *Store, h *fakeHost, ts int64, key string) {
	t.Helper()
	h.ts = ts
	if err := c.Delete([]byte(key)); err != nil {
		t.Fatalf("Delete(%s): %v", key, err)
	}
}

// scan drains it into "k=v" pairs joined by commas.
func cScan(t *testing.T, it state.Iterator) string {
	t.Helper()
	var parts []string
	for it.Next() {
		parts = append(parts, string(it.Key())+"="+cShow(it.Value()))
	}
	if err := it.Close(); err != nil {
		t.Fatal(err)
	}
	return strings.Join(parts, ",")
}

func cGet(t *testing.T, c *Store, key string) string {
	t.Helper()
	v, err := c.Get([]byte(key))
	if err != nil {
		t.Fatalf("Get(%s): %v", key, err)
	}
	return cShow(v)
}

// Reads merge the dirty entries over the store below: cached values win,
// cached deletions hide the store's pairs, empty values are values, and
// nothing reaches the store before a flush.
func TestMergedReads(t *testing.T) {
	h := &fakeHost{}
	below := newRecStore(h)
	below.seed(t, "ab", "s", "b", "s", "d", "s", "f", "s", "g", "s")
	c := New("agg", below, h, &Budget{Max: 1 << 20})
	cPut(t, c, h, 1, "a", "1")
	cPut(t, c, h, 2, "b", "2") // over the store's b
	cDelete(t, c, h, 3, "d")   // hides the store's d
	cDelete(t, c, h, 4, "x")   // absent everywhere
	cPut(t, c, h, 5, "e", "")  // an empty value is a value
	cPut(t, c, h, 6, "c", "1")
	cDelete(t, c, h, 7, "c") // written, then deleted, in the cache only

	for key, want := range map[string]string{
		"a": "1", "ab": "s", "b": "2", "c": "nil", "d": "nil", "e": `""`, "f": "s", "g": "s", "x": "nil", "zz": "nil",
	} {
		if got := cGet(t, c, key); got != want {
			t.Errorf("Get(%s) = %s, want %s", key, got, want)
		}
	}
	for _, tc := range []struct {
		name string
		it   state.Iterator
		want string
	}{
		{"All", c.All(), `a=1,ab=s,b=2,e="",f=s,g=s`},
		{"Range(nil, nil)", c.Range(nil, nil), `a=1,ab=s,b=2,e="",f=s,g=s`},
		{"Range(b, f)", c.Range([]byte("b"), []byte("f")), `b=2,e=""`},
		{"Range(ab, b)", c.Range([]byte("ab"), []byte("b")), "ab=s"},
		{"Range(c, e)", c.Range([]byte("c"), []byte("e")), ""},
		{"Range(e, nil)", c.Range([]byte("e"), nil), `e="",f=s,g=s`},
		{"Range(nil, b)", c.Range(nil, []byte("b")), "a=1,ab=s"},
		{"Range(f, f)", c.Range([]byte("f"), []byte("f")), ""},
		{"Range(g, a)", c.Range([]byte("g"), []byte("a")), ""},
		{"Range(nil, empty)", c.Range(nil, []byte{}), ""},
		{"Prefix(a)", c.Prefix([]byte("a")), "a=1,ab=s"},
		{"Prefix(d)", c.Prefix([]byte("d")), ""},
		{"Prefix(empty)", c.Prefix(nil), `a=1,ab=s,b=2,e="",f=s,g=s`},
	} {
		if got := cScan(t, tc.it); got != tc.want {
			t.Errorf("%s = %q, want %q", tc.name, got, tc.want)
		}
	}
	// 5 pairs below, 6 dirty keys (a, b, c, d, e, x): an estimate that
	// counts both.
	if n := c.ApproximateCount(); n != 11 {
		t.Errorf("ApproximateCount = %d, want 11", n)
	}
	if len(below.writes) != 0 {
		t.Errorf("the store below was written before a flush: %v", below.writes)
	}
	if c.Name() != "agg" {
		t.Errorf("Name = %q", c.Name())
	}
}

// Put copies the caller's bytes, Get returns a copy, and an iterator is a
// snapshot: later writes and a flush do not change what it returns.
func TestCopiesAndSnapshots(t *testing.T) {
	h := &fakeHost{}
	below := newRecStore(h)
	below.seed(t, "b", "s")
	c := New("agg", below, h, &Budget{Max: 1 << 20})
	key, val := []byte("a"), []byte("1")
	if err := c.Put(key, val); err != nil {
		t.Fatal(err)
	}
	key[0], val[0] = 'z', '9'
	v, _ := c.Get([]byte("a"))
	if string(v) != "1" {
		t.Fatalf("Get(a) = %q after the caller changed its slices", v)
	}
	v[0] = '7'
	if got := cGet(t, c, "a"); got != "1" {
		t.Fatalf("Get(a) = %s after the reader changed its copy", got)
	}

	it := c.All()
	cPut(t, c, h, 2, "a", "2")
	cPut(t, c, h, 3, "c", "3")
	cDelete(t, c, h, 4, "b")
	if err := c.FlushAll(nil); err != nil {
		t.Fatal(err)
	}
	if got := cScan(t, it); got != "a=1,b=s" {
		t.Fatalf("iterator opened before the writes = %q, want a=1,b=s", got)
	}
	if got := cScan(t, c.All()); got != "a=2,c=3" {
		t.Fatalf("All after the flush = %q, want a=2,c=3", got)
	}
	it = c.All()
	if err := it.Close(); err != nil {
		t.Fatal(err)
	}
	if it.Next() {
		t.Fatal("Next after Close returned true")
	}
}

// FlushAll writes the dirty keys through, least recently written first,
// each with its own timestamp set on the host while the store below
// writes it; the listener gets key, new value, old value and timestamp,
// except for deletions of keys the store does not have. The host's
// timestamp is restored and the budget is empty afterwards.
func TestFlushOrderAndListener(t *testing.T) {
	h := &fakeHost{}
	below := newRecStore(h)
	below.seed(t, "b", "old-b", "d", "old-d")
	budget := &Budget{Max: 1 << 20}
	c := New("agg", below, h, budget)
	var heard []string
	c.SetListener("node-1", func(key, nv, ov []byte, ts int64) {
		heard = append(heard, fmt.Sprintf("%s:%s<-%s@%d", key, cShow(nv), cShow(ov), ts))
	})
	cPut(t, c, h, 10, "c", "c1")
	cPut(t, c, h, 20, "a", "a1")
	cPut(t, c, h, 30, "b", "b1")
	cPut(t, c, h, 40, "c", "c2") // c moves behind b
	cDelete(t, c, h, 50, "a")    // a moves to the back: added and deleted
	cPut(t, c, h, 60, "e", "")
	cDelete(t, c, h, 70, "d")
	if c.Bytes() != budget.Used || budget.Used != 5*EntryOverhead+(1+2)+(1+0)+(1+2)+(1+0)+(1+0) {
		t.Fatalf("bytes %d, budget used %d", c.Bytes(), budget.Used)
	}

	h.ts = 99
	afters := 0
	if err := c.FlushAll(func() error { afters++; return nil }); err != nil {
		t.Fatal(err)
	}
	if want := []string{"b=b1@30", "c=c2@40", "a=nil@50", `e=""@60`, "d=nil@70"}; !slices.Equal(below.writes, want) {
		t.Errorf("store writes %v, want %v", below.writes, want)
	}
	if want := []string{"b:b1<-old-b@30", "c:c2<-nil@40", `e:""<-nil@60`, "d:nil<-old-d@70"}; !slices.Equal(heard, want) {
		t.Errorf("listener heard %v, want %v", heard, want)
	}
	if want := []string{"node-1 b:b1<-old-b@30", "node-1 c:c2<-nil@40", `node-1 e:""<-nil@60`, "node-1 d:nil<-old-d@70"}; !slices.Equal(h.emits, want) {
		t.Errorf("host emits %v, want %v", h.emits, want)
	}
	if afters != 5 {
		t.Errorf("after called %d times, want once per flushed key (5)", afters)
	}
	if h.ts != 99 {
		t.Errorf("host timestamp after the flush = %d, want 99 restored", h.ts)
	}
	// Flushed keys stay cached, clean; deleted ones (a, d) leave.
	if want := int64(3*EntryOverhead + (1 + 2) + (1 + 2) + (1 + 0)); c.Bytes() != want || budget.Used != want {
		t.Errorf("after the flush: bytes %d, budget used %d, want %d (b, c, e clean)", c.Bytes(), budget.Used, want)
	}
	if got := cScan(t, c.All()); got != `b=b1,c=c2,e=""` {
		t.Errorf("All after the flush = %q", got)
	}

	// Nothing dirty: a flush writes and tells nothing.
	below.writes, heard = nil, nil
	if err := c.FlushAll(nil); err != nil {
		t.Fatal(err)
	}
	if len(below.writes) != 0 || len(heard) != 0 {
		t.Errorf("empty flush wrote %v, heard %v", below.writes, heard)
	}
}

// Without a listener a flush does not read the old values.
func TestFlushWithoutListenerSkipsOldValues(t *testing.T) {
	h := &fakeHost{}
	below := newRecStore(h)
	below.seed(t, "a", "old")
	c := New("agg", below, h, &Budget{Max: 1 << 20})
	cPut(t, c, h, 1, "a", "1")
	cPut(t, c, h, 2, "b", "2")
	if err := c.FlushAll(nil); err != nil {
		t.Fatal(err)
	}
	if below.gets != 0 {
		t.Errorf("flush without a listener read the store %d times", below.gets)
	}
	if want := []string{"a=1@1", "b=2@2"}; !slices.Equal(below.writes, want) || len(h.emits) != 0 {
		t.Errorf("writes %v (want %v), emits %v", below.writes, want, h.emits)
	}
}

// An error from after stops the flush: the keys not flushed yet stay
// dirty, and the next flush writes them.
func TestFlushStopsAtAfterError(t *testing.T) {
	h := &fakeHost{}
	below := newRecStore(h)
	budget := &Budget{Max: 1 << 20}
	c := New("agg", below, h, budget)
	cPut(t, c, h, 1, "a", "1")
	cPut(t, c, h, 2, "b", "1")
	cPut(t, c, h, 3, "c", "1")
	stop := errors.New("stop")
	if err := c.FlushAll(func() error { return stop }); !errors.Is(err, stop) {
		t.Fatalf("FlushAll = %v, want the after error", err)
	}
	if want := []string{"a=1@1"}; !slices.Equal(below.writes, want) {
		t.Fatalf("writes %v, want %v", below.writes, want)
	}
	if c.Bytes() != 3*oneEntry || budget.Used != 3*oneEntry {
		t.Fatalf("bytes %d, used %d, want %d (a clean, b and c dirty)", c.Bytes(), budget.Used, 3*oneEntry)
	}
	if err := c.FlushAll(nil); err != nil {
		t.Fatal(err)
	}
	if want := []string{"a=1@1", "b=1@2", "c=1@3"}; !slices.Equal(below.writes, want) {
		t.Fatalf("writes %v, want %v", below.writes, want)
	}
}

// A store error stops the flush and is returned wrapped; the key stays
// dirty and readable.
func TestFlushStoreError(t *testing.T) {
	h := &fakeHost{}
	below := newRecStore(h)
	c := New("agg", below, h, &Budget{Max: 1 << 20})
	cPut(t, c, h, 1, "a", "1")
	boom := errors.New("disk full")
	below.failPut = boom
	h.ts = 9
	err := c.FlushAll(nil)
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), `flush cache of store "agg"`) {
		t.Fatalf("FlushAll = %v", err)
	}
	if got := cGet(t, c, "a"); got != "1" || c.Bytes() != oneEntry {
		t.Fatalf("after a failed flush: Get(a) = %s, bytes %d", got, c.Bytes())
	}
	if h.ts != 9 {
		t.Fatalf("host timestamp %d after a failed write, want 9 restored", h.ts)
	}
	below.failPut = nil
	if err := c.FlushAll(nil); err != nil {
		t.Fatal(err)
	}
	if want := []string{"a=1@1"}; !slices.Equal(below.writes, want) {
		t.Fatalf("writes %v, want %v", below.writes, want)
	}
}

// Keys a listener writes while a flush runs wait for the next flush.
func TestFlushListenerWritesWait(t *testing.T) {
	h := &fakeHost{}
	below := newRecStore(h)
	c := New("agg", below, h, &Budget{Max: 1 << 20})
	c.SetListener("n", func(key, nv, _ []byte, ts int64) {
		if string(key) == "a" {
			cPut(t, c, h, ts+100, "z", "from-listener")
		}
	})
	cPut(t, c, h, 1, "a", "1")
	cPut(t, c, h, 2, "b", "1")
	if err := c.FlushAll(nil); err != nil {
		t.Fatal(err)
	}
	if want := []string{"a=1@1", "b=1@2"}; !slices.Equal(below.writes, want) {
		t.Fatalf("first flush wrote %v, want %v", below.writes, want)
	}
	if got := cGet(t, c, "z"); got != "from-listener" || c.Bytes() != int64(1+len("from-listener")+EntryOverhead)+2*oneEntry {
		t.Fatalf("z = %s, bytes %d", got, c.Bytes())
	}
	if err := c.FlushAll(nil); err != nil {
		t.Fatal(err)
	}
	if want := []string{"a=1@1", "b=1@2", "z=from-listener@101"}; !slices.Equal(below.writes, want) {
		t.Fatalf("second flush wrote %v, want %v", below.writes, want)
	}
}

// Two caches share oneEntry budget; a Put that takes the budget over it evicts
// (flushes) the least recently written keys of the cache written, never the
// other's, until the budget fits or that cache is empty. Overwrites count
// the change in value size.
func TestEvictionOverSharedBudget(t *testing.T) {
	budget := &Budget{Max: 3 * oneEntry}
	ha, hb := &fakeHost{}, &fakeHost{}
	la, lb := newRecStore(ha), newRecStore(hb)
	a, b := New("a", la, ha, budget), New("b", lb, hb, budget)
	a.SetListener("na", func([]byte, []byte, []byte, int64) {})
	b.SetListener("nb", func([]byte, []byte, []byte, int64) {})

	cPut(t, a, ha, 1, "p", "1")
	cPut(t, a, ha, 2, "q", "1")
	cPut(t, b, hb, 3, "x", "1")
	if budget.Used != 3*oneEntry || len(la.writes)+len(lb.writes) != 0 {
		t.Fatalf("at the budget: used %d, writes %v %v", budget.Used, la.writes, lb.writes)
	}
	cPut(t, a, ha, 4, "p", "2") // overwrite, same size: p moves behind q
	if budget.Used != 3*oneEntry || len(la.writes) != 0 {
		t.Fatalf("overwrite: used %d, writes %v", budget.Used, la.writes)
	}
	cPut(t, b, hb, 5, "y", "1") // over: b evicts its own x, not a's q
	if want := []string{"x=1@3"}; !slices.Equal(lb.writes, want) || len(la.writes) != 0 {
		t.Fatalf("b's eviction wrote a %v, b %v; want b %v", la.writes, lb.writes, want)
	}
	if want := []string{"nb x:1<-nil@3"}; !slices.Equal(hb.emits, want) {
		t.Fatalf("b emitted %v, want %v", hb.emits, want)
	}
	if hb.ts != 5 {
		t.Fatalf("b's host timestamp after eviction = %d, want 5", hb.ts)
	}
	cPut(t, a, ha, 6, "r", "1") // over: a evicts q (written before p's rewrite)
	if want := []string{"q=1@2"}; !slices.Equal(la.writes, want) {
		t.Fatalf("a's eviction wrote %v, want %v", la.writes, want)
	}
	if a.Bytes() != 2*oneEntry || b.Bytes() != oneEntry || budget.Used != 3*oneEntry {
		t.Fatalf("bytes a %d b %d used %d", a.Bytes(), b.Bytes(), budget.Used)
	}

	// A larger value for r: +3 bytes, over by 3: a evicts p, then fits.
	cPut(t, a, ha, 7, "r", "1234")
	if want := []string{"q=1@2", "p=2@4"}; !slices.Equal(la.writes, want) {
		t.Fatalf("growth eviction wrote %v, want %v", la.writes, want)
	}
	if a.Bytes() != oneEntry+3 || budget.Used != 2*oneEntry+3 {
		t.Fatalf("after growth: a bytes %d, used %d", a.Bytes(), budget.Used)
	}

	// An entry bigger than the whole budget evicts everything of its cache,
	// itself last; the other cache keeps its keys.
	big := strings.Repeat("v", 3*oneEntry)
	cPut(t, b, hb, 8, "z", big)
	if want := []string{"x=1@3", "y=1@5", "z=" + big + "@8"}; !slices.Equal(lb.writes, want) {
		t.Fatalf("big entry: b wrote %v, want %v", lb.writes, want)
	}
	if b.Bytes() != 0 || a.Bytes() != oneEntry+3 || budget.Used != oneEntry+3 {
		t.Fatalf("after the big entry: a %d b %d used %d", a.Bytes(), b.Bytes(), budget.Used)
	}
	if got := cGet(t, b, "z"); got != big {
		t.Fatalf("Get(z) after eviction = %.10s...", got)
	}
}

// A cache written while another holds the whole budget evicts its own
// key at once (it has nothing else); the other's keys stay dirty.
func TestEvictionOnlyFromTheCacheWritten(t *testing.T) {
	budget := &Budget{Max: 2 * oneEntry}
	ha, hb := &fakeHost{}, &fakeHost{}
	la, lb := newRecStore(ha), newRecStore(hb)
	a, b := New("a", la, ha, budget), New("b", lb, hb, budget)
	cPut(t, a, ha, 1, "p", "1")
	cPut(t, a, ha, 2, "q", "1")
	cPut(t, b, hb, 3, "x", "1")
	if want := []string{"x=1@3"}; !slices.Equal(lb.writes, want) || len(la.writes) != 0 {
		t.Fatalf("writes a %v b %v; want b %v", la.writes, lb.writes, want)
	}
	if a.Bytes() != 2*oneEntry || b.Bytes() != 0 || budget.Used != 2*oneEntry {
		t.Fatalf("bytes a %d b %d used %d", a.Bytes(), b.Bytes(), budget.Used)
	}
}

// Eviction stops as soon as the host reports that the current record
// failed downstream (its error handling comes first), even over budget.
func TestEvictionStopsOnFailure(t *testing.T) {
	budget := &Budget{Max: 2 * oneEntry}
	h := &fakeHost{}
	below := newRecStore(h)
	c := New("agg", below, h, budget)
	c.SetListener("n", func([]byte, []byte, []byte, int64) { h.failed = true })
	cPut(t, c, h, 1, "a", "1")
	cPut(t, c, h, 2, "b", "1")
	cPut(t, c, h, 3, "c", "1") // over: evicts a, whose listener fails
	cPut(t, c, h, 4, "d", "1") // over: evicts b, then stops on the failure
	if want := []string{"a=1@1", "b=1@2"}; !slices.Equal(below.writes, want) {
		t.Fatalf("writes %v, want %v", below.writes, want)
	}
	h.failed = false
	cPut(t, c, h, 5, "e", strings.Repeat("v", oneEntry+1)) // needs two evictions
	if want := []string{"a=1@1", "b=1@2", "c=1@3"}; !slices.Equal(below.writes, want) {
		t.Fatalf("writes %v, want %v (stopped after c on the failure)", below.writes, want)
	}
	if budget.Used != oneEntry+(1+oneEntry+1+EntryOverhead) || budget.Used <= budget.Max {
		t.Fatalf("used %d, want over the budget after the stopped eviction", budget.Used)
	}
}

// A store error during eviction fails the Put that caused it.
func TestEvictionStoreError(t *testing.T) {
	h := &fakeHost{}
	below := newRecStore(h)
	c := New("agg", below, h, &Budget{Max: oneEntry})
	cPut(t, c, h, 1, "a", "1")
	boom := errors.New("disk full")
	below.failPut = boom
	h.ts = 2
	if err := c.Put([]byte("b"), []byte("1")); !errors.Is(err, boom) {
		t.Fatalf("Put over budget with a failing store = %v", err)
	}
	if got := cGet(t, c, "a") + cGet(t, c, "b"); got != "11" {
		t.Fatalf("a, b = %s, want both still cached", got)
	}
}

// Drop forgets the dirty keys and gives their memory back to the shared
// budget, without writing or telling anything; Close drops and closes the
// store below.
func TestDropReturnsMemory(t *testing.T) {
	budget := &Budget{Max: 1 << 20}
	ha, hb := &fakeHost{}, &fakeHost{}
	la, lb := newRecStore(ha), newRecStore(hb)
	la.seed(t, "p", "s")
	a, b := New("a", la, ha, budget), New("b", lb, hb, budget)
	a.SetListener("na", func([]byte, []byte, []byte, int64) { t.Error("listener called by Drop") })
	cPut(t, a, ha, 1, "p", "1")
	cPut(t, a, ha, 2, "q", "22")
	cPut(t, b, hb, 3, "x", "1")
	if budget.Used != 3*oneEntry+1 {
		t.Fatalf("used %d, want %d", budget.Used, 3*oneEntry+1)
	}
	a.Drop()
	if a.Bytes() != 0 || budget.Used != oneEntry || b.Bytes() != oneEntry {
		t.Fatalf("after Drop: a %d b %d used %d", a.Bytes(), b.Bytes(), budget.Used)
	}
	if got := cGet(t, a, "p") + " " + cGet(t, a, "q"); got != "s nil" {
		t.Fatalf("after Drop: p q = %s, want the store's", got)
	}
	if len(la.writes) != 0 || len(ha.emits) != 0 {
		t.Fatalf("Drop wrote %v, emitted %v", la.writes, ha.emits)
	}
	if err := a.FlushAll(nil); err != nil || len(la.writes) != 0 {
		t.Fatalf("flush after Drop: %v, wrote %v", err, la.writes)
	}
	// The cache works on after a Drop.
	cPut(t, a, ha, 4, "r", "1")
	if budget.Used != 2*oneEntry {
		t.Fatalf("used %d, want %d", budget.Used, 2*oneEntry)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if !lb.closed || len(lb.writes) != 0 || b.Bytes() != 0 || budget.Used != oneEntry {
		t.Fatalf("after Close: closed %v, writes %v, b %d, used %d", lb.closed, lb.writes, b.Bytes(), budget.Used)
	}
	a.Drop()
	a.Drop() // twice is harmless
	if budget.Used != 0 {
		t.Fatalf("used %d after dropping everything", budget.Used)
	}
}

// SetInner swaps the store below (after a wipe): reads and flushes use the
// new oneEntry; dirty keys are kept.
func TestSetInner(t *testing.T) {
	h := &fakeHost{}
	old, fresh := newRecStore(h), newRecStore(h)
	old.seed(t, "a", "old")
	fresh.seed(t, "b", "fresh")
	c := New("agg", old, h, &Budget{Max: 1 << 20})
	cPut(t, c, h, 1, "c", "1")
	c.SetInner(fresh)
	if got := cScan(t, c.All()); got != "b=fresh,c=1" {
		t.Fatalf("All = %q", got)
	}
	if err := c.FlushAll(nil); err != nil {
		t.Fatal(err)
	}
	if len(old.writes) != 0 || !slices.Equal(fresh.writes, []string{"c=1@1"}) {
		t.Fatalf("writes old %v fresh %v", old.writes, fresh.writes)
	}
}

// modelCache is oneEntry cache of the randomized test with its model: the
// values a reader must see, the dirty keys in least-recently-written
// order, every cached key (dirty or clean) in that order with its size,
// and what the listener must hear.
type modelCache struct {
	c       *Store
	h       *fakeHost
	below   *recStore
	want    map[string]string // what reads must return
	dirty   []string          // dirty keys, least recently written first
	value   map[string]*string
	wrote   map[string]int64 // timestamp of each dirty key's last write
	emitted map[string]string
	order   []string         // cached keys, least recently written first
	size    map[string]int64 // the budget each cached key takes
	deleted map[string]bool  // keys flushed as deleted, still in order
}

// purge takes the keys flushed as deleted out of the model's cache.
func (m *modelCache) purge() {
	m.order = slices.DeleteFunc(m.order, func(o string) bool { return m.deleted[o] })
	for k := range m.deleted {
		delete(m.size, k)
	}
	clear(m.deleted)
}

func (m *modelCache) cachedBytes() int64 {
	var n int64
	for _, k := range m.order {
		n += m.size[k]
	}
	return n
}

// evict removes the model's least recently written keys while the caches
// are over budget, as the cache evicts after a write (the dirty ones were
// flushed by then: onWrite saw them), then purges.
func (m *modelCache) evict(t *testing.T, budget *Budget, others int64) {
	defer m.purge()
	for len(m.order) > 0 && m.cachedBytes()+others > budget.Max {
		k := m.order[0]
		if slices.Contains(m.dirty, k) {
			t.Fatalf("model evicts %q, still dirty", k)
		}
		m.order = m.order[1:]
		delete(m.size, k)
	}
}

// A random sequence of Put, Delete, FlushAll, Get, Range, Prefix and All
// on two caches that share a small budget (so they evict), checked after
// every step against a map: reads return exactly the model's pairs, the
// store below is written in least-recently-written order with each key's
// last timestamp, the listener gets the previous flushed value as old
// value, the budget equals the two caches' bytes (dirty and clean keys, as
// the model evicts them), and after a final
// flush the stores below equal the models.
func TestRandomAgainstModel(t *testing.T) {
	keys := []string{"a", "a0", "a1", "ab", "b", "b0", "ba", "c", "c\xff", "c\xff\xff", "d"}
	bounds := append([]string{"", "nil"}, keys...)
	for seed := range uint64(50) {
		rng := rand.New(rand.NewPCG(seed, 0x5eed))
		budget := &Budget{Max: int64(rng.IntN(6)+1) * (3 + EntryOverhead)}
		var ms []*modelCache
		for i := range 2 {
			m := &modelCache{h: &fakeHost{}, want: map[string]string{}, value: map[string]*string{},
				wrote: map[string]int64{}, emitted: map[string]string{}, size: map[string]int64{}, deleted: map[string]bool{}}
			m.below = newRecStore(m.h)
			m.c = New(fmt.Sprint("c", i), m.below, m.h, budget)
			m.below.onWrite = func(key, value []byte) {
				// The store below is written only for the least recently
				// written dirty key, with its latest value and timestamp.
				// The key stays cached, clean, unless it was deleted.
				k := string(key)
				if len(m.dirty) == 0 || m.dirty[0] != k {
					t.Fatalf("seed %d: cache %d wrote %q below; dirty order %q", seed, i, k, m.dirty)
				}
				if mv := m.value[k]; (mv == nil) != (value == nil) || (mv != nil && *mv != string(value)) {
					t.Fatalf("seed %d: cache %d wrote %q=%q below, want %v", seed, i, k, value, mv)
				}
				if m.h.ts != m.wrote[k] {
					t.Fatalf("seed %d: cache %d wrote %q at ts %d, want %d", seed, i, k, m.h.ts, m.wrote[k])
				}
				m.dirty = m.dirty[1:]
				delete(m.value, k)
				if value == nil {
					m.deleted[k] = true // leaves the cache: see purge
				}
			}
			m.c.SetListener("n", func(key, nv, ov []byte, ts int64) {
				k := string(key)
				prev, had := m.emitted[k]
				if had != (ov != nil) || prev != string(ov) {
					t.Fatalf("seed %d: cache %d listener old value of %q = %q, want %q (%v)", seed, i, k, ov, prev, had)
				}
				if nv == nil {
					delete(m.emitted, k)
				} else {
					m.emitted[k] = string(nv)
				}
			})
			ms = append(ms, m)
		}
		bound := func() []byte {
			switch s := bounds[rng.IntN(len(bounds))]; s {
			case "nil":
				return nil
			case "":
				return []byte{} // empty, not nil: an empty upper bound
			default:
				return []byte(s)
			}
		}
		for step := range 400 {
			mi := rng.IntN(2)
			m := ms[mi]
			m.h.ts = int64(step)
			what := ""
			switch op := rng.IntN(20); {
			case op < 11:
				k := keys[rng.IntN(len(keys))]
				var v *string
				if op < 8 {
					s := strings.Repeat("v", rng.IntN(4)) // "" is a value
					v = &s
				}
				m.dirty = slices.DeleteFunc(m.dirty, func(d string) bool { return d == k })
				m.dirty = append(m.dirty, k)
				m.value[k], m.wrote[k] = v, int64(step)
				m.order = slices.DeleteFunc(m.order, func(o string) bool { return o == k })
				m.order = append(m.order, k)
				m.size[k] = int64(len(k)) + EntryOverhead
				if v != nil {
					m.size[k] += int64(len(*v))
				}
				var err error
				if v != nil {
					m.want[k] = *v
					what = fmt.Sprintf("Put(%q, %q)", k, *v)
					err = m.c.Put([]byte(k), []byte(*v))
				} else {
					delete(m.want, k)
					what = fmt.Sprintf("Delete(%q)", k)
					err = m.c.Delete([]byte(k))
				}
				if err != nil {
					t.Fatal(err)
				}
				m.evict(t, budget, ms[1-mi].cachedBytes())
				if budget.Used > budget.Max && m.c.Bytes() != 0 {
					t.Fatalf("seed %d step %d: %s left the budget at %d > %d with %d bytes of its own",
						seed, step, what, budget.Used, budget.Max, m.c.Bytes())
				}
			case op < 13:
				what = "FlushAll"
				if err := m.c.FlushAll(nil); err != nil {
					t.Fatal(err)
				}
				m.purge()
				if len(m.dirty) != 0 {
					t.Fatalf("seed %d step %d: dirty after FlushAll: %q", seed, step, m.dirty)
				}
			case op < 15:
				k := keys[rng.IntN(len(keys))]
				what = fmt.Sprintf("Get(%q)", k)
				v, err := m.c.Get([]byte(k))
				mv, ok := m.want[k]
				if err != nil || ok != (v != nil) || mv != string(v) {
					t.Fatalf("seed %d step %d: Get(%q) = %q, %v; want %q, %v", seed, step, k, v, err, mv, ok)
				}
			default:
				var it state.Iterator
				var in func(k string) bool
				switch op {
				case 15, 16:
					from, to := bound(), bound()
					what = fmt.Sprintf("Range(%q, %q)", from, to)
					it = m.c.Range(from, to)
					in = func(k string) bool {
						return bytes.Compare([]byte(k), from) >= 0 && (to == nil || bytes.Compare([]byte(k), to) < 0)
					}
				case 17, 18:
					p := bound()
					what = fmt.Sprintf("Prefix(%q)", p)
					it = m.c.Prefix(p)
					in = func(k string) bool { return strings.HasPrefix(k, string(p)) }
				default:
					what = "All"
					it = m.c.All()
					in = func(string) bool { return true }
				}
				var want []string
				for _, k := range slices.Sorted(maps.Keys(m.want)) {
					if in(k) {
						v := m.want[k]
						if v == "" {
							v = `""`
						}
						want = append(want, k+"="+v)
					}
				}
				got := cScan(t, it)
				if got != strings.Join(want, ",") {
					t.Fatalf("seed %d step %d: %s = %q, want %q", seed, step, what, got, strings.Join(want, ","))
				}
			}
			for i, m := range ms {
				if m.c.Bytes() != m.cachedBytes() {
					t.Fatalf("seed %d step %d after %s: cache %d bytes %d, model %d", seed, step, what, i, m.c.Bytes(), m.cachedBytes())
				}
			}
			if budget.Used != ms[0].c.Bytes()+ms[1].c.Bytes() {
				t.Fatalf("seed %d step %d: budget used %d, caches %d + %d", seed, step, budget.Used, ms[0].c.Bytes(), ms[1].c.Bytes())
			}
		}
		for i, m := range ms {
			if err := m.c.FlushAll(nil); err != nil {
				t.Fatal(err)
			}
			m.purge()
			got := map[string]string{}
			for k, v := range state.Seq(m.below.Store.All()) {
				got[string(k)] = string(v)
			}
			if !maps.Equal(got, m.want) || !maps.Equal(m.emitted, m.want) {
				t.Fatalf("seed %d: cache %d below %q, listener %q, want %q", seed, i, got, m.emitted, m.want)
			}
		}
		if budget.Used != ms[0].cachedBytes()+ms[1].cachedBytes() {
			t.Fatalf("seed %d: budget used %d after the final flushes, model %d + %d", seed, budget.Used, ms[0].cachedBytes(), ms[1].cachedBytes())
		}
		ms[0].c.Drop()
		ms[1].c.Drop()
		if budget.Used != 0 {
			t.Fatalf("seed %d: budget used %d after dropping both caches", seed, budget.Used)
		}
	}
}

// Readers on other goroutines (interactive queries) run while the task's
// goroutine writes, flushes and evicts: a key's value never goes back to an
// older oneEntry, because a flush writes the store below before it removes the
// key from the cache, and scans stay sorted without duplicates.
func TestConcurrentReaders(t *testing.T) {
	h := &fakeHost{}
	c := New("agg", memory.New("below"), h, &Budget{Max: 4 * (2 + 6 + EntryOverhead)})
	keys := []string{"k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7"}
	const rounds = 3000
	var wg sync.WaitGroup
	done := make(chan struct{})
	for r := range 2 {
		wg.Go(func() {
			last := map[string]string{}
			for i := 0; ; i++ {
				select {
				case <-done:
					return
				default:
				}
				k := keys[(i+r)%len(keys)]
				v, err := c.Get([]byte(k))
				if err != nil {
					t.Error(err)
					return
				}
				if string(v) < last[k] {
					t.Errorf("Get(%s) = %q after %q", k, v, last[k])
					return
				}
				last[k] = string(v)
				if i%16 == 0 {
					prev := ""
					for k := range state.Seq(c.All()) {
						if string(k) <= prev {
							t.Errorf("All: %q after %q", k, prev)
							return
						}
						prev = string(k)
					}
				}
			}
		})
	}
	latest := map[string]string{}
	for i := range rounds {
		h.ts = int64(i)
		k := keys[i%len(keys)]
		latest[k] = fmt.Sprintf("%06d", i)
		if err := c.Put([]byte(k), []byte(latest[k])); err != nil {
			t.Fatal(err)
		}
		if i%50 == 49 {
			if err := c.FlushAll(nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	close(done)
	wg.Wait()
	for _, k := range keys {
		if got := cGet(t, c, k); got != latest[k] {
			t.Errorf("Get(%s) = %s, want %s", k, got, latest[k])
		}
	}
}

func BenchmarkPut(b *testing.B) {
	h := &fakeHost{}
	c := New("bench", memory.New("below"), h, &Budget{Max: 64 << 20})
	keys := make([][]byte, 1024)
	for i := range keys {
		keys[i] = fmt.Appendf(nil, "key-%06d", i)
	}
	val := bytes.Repeat([]byte("v"), 64)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		h.ts = int64(i)
		if err := c.Put(keys[i%len(keys)], val); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkFlush measures flushing 1000 dirty keys (oneEntry op) through to a
// memory store, with a listener, so each key also reads its old value.
func BenchmarkFlush(b *testing.B) {
	h := &fakeHost{}
	c := New("bench", memory.New("below"), h, &Budget{Max: 64 << 20})
	var heard int
	c.SetListener("n", func([]byte, []byte, []byte, int64) { heard++ })
	keys := make([][]byte, 1000)
	for i := range keys {
		keys[i] = fmt.Appendf(nil, "key-%06d", i)
	}
	val := bytes.Repeat([]byte("v"), 64)
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		for i, k := range keys {
			h.ts = int64(i)
			if err := c.Put(k, val); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		if err := c.FlushAll(nil); err != nil {
			b.Fatal(err)
		}
	}
	if heard == 0 {
		b.Fatal("the listener heard nothing")
	}
}

// DeleteRange with a listener flushes the cached entries in the range, in
// key order, before the range goes (a window store expiring a segment: its
// windows' last updates still reach downstream and the changelog, each with
// its own timestamp), without writing them to the store below, which would
// delete them at once; without a listener it drops them.
func TestDeleteRangeFlushesToListener(t *testing.T) {
	h := &fakeHost{}
	below := newRecStore(h)
	budget := &Budget{Max: 1 << 20}
	c := New("win", below, h, budget)
	var heard []string
	c.SetListener("node", func(key, nv, ov []byte, ts int64) {
		heard = append(heard, fmt.Sprintf("%s:%s<-%s@%d", key, cShow(nv), cShow(ov), ts))
	})
	cPut(t, c, h, 10, "s1-b", "b1")
	cPut(t, c, h, 20, "s1-a", "a1")
	cPut(t, c, h, 30, "s2-a", "x1")
	if err := c.DeleteRange([]byte("s1"), []byte("s2")); err != nil {
		t.Fatal(err)
	}
	if want := []string{"s1-a:a1<-nil@20", "s1-b:b1<-nil@10"}; !slices.Equal(heard, want) {
		t.Errorf("listener heard %v, want %v", heard, want)
	}
	if got := cScan(t, c.All()); got != "s2-a=x1" {
		t.Errorf("All after DeleteRange = %q, want s2-a=x1", got)
	}
	if want := []string{"s1-a=a1@20", "s1-b=b1@10"}; len(below.writes) != 0 || !slices.Equal(below.logged, want) {
		t.Errorf("below: writes %v, logged %v; want no writes, logged %v", below.writes, below.logged, want)
	}
	if c.Bytes() != budget.Used || budget.Used != EntryOverhead+4+2 {
		t.Errorf("bytes %d, budget used %d", c.Bytes(), budget.Used)
	}

	// No listener: dropped, not written.
	h2 := &fakeHost{}
	below2 := newRecStore(h2)
	c2 := New("plain", below2, h2, &Budget{Max: 1 << 20})
	cPut(t, c2, h2, 10, "s1-a", "a1")
	if err := c2.DeleteRange([]byte("s1"), []byte("s2")); err != nil {
		t.Fatal(err)
	}
	if len(below2.writes) != 0 || cScan(t, c2.All()) != "" {
		t.Errorf("without a listener: writes %v, All %q", below2.writes, cScan(t, c2.All()))
	}
}

// BenchmarkUpdateAfterFlush measures the read-modify-write of an
// aggregation through the cache with a flush every 1,000 updates (a
// commit): 10,000 keys over a memory store, a listener that wants no old
// values, as Count().ToStream() registers.
func BenchmarkUpdateAfterFlush(b *testing.B) {
	h := &fakeHost{}
	c := New("bench", memory.New("below"), h, &Budget{Max: 64 << 20})
	c.SetListener("n", func([]byte, []byte, []byte, int64) {})
	c.OldValues(false)
	keys := make([][]byte, 10_000)
	for i := range keys {
		keys[i] = fmt.Appendf(nil, "key-%06d", i*7919%len(keys))
	}
	val := bytes.Repeat([]byte("v"), 16)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		k := keys[i%len(keys)]
		h.ts = int64(i)
		if _, err := c.Get(k); err != nil {
			b.Fatal(err)
		}
		if err := c.Put(k, val); err != nil {
			b.Fatal(err)
		}
		if i%1000 == 999 {
			if err := c.FlushAll(nil); err != nil {
				b.Fatal(err)
			}
		}
		i++
	}
}

// A flushed key stays cached, clean: reading and updating it after the
// flush does not read the store, the next flush writes only what changed
// since, and evicting a clean key writes nothing.
func TestFlushedKeyStaysCached(t *testing.T) {
	h := &fakeHost{}
	below := newRecStore(h)
	budget := &Budget{Max: 2 * oneEntry}
	c := New("agg", below, h, budget)
	cPut(t, c, h, 1, "a", "1")
	cPut(t, c, h, 2, "b", "1")
	if err := c.FlushAll(nil); err != nil {
		t.Fatal(err)
	}
	gets := below.gets
	if got := cGet(t, c, "a"); got != "1" || below.gets != gets {
		t.Fatalf("Get(a) after the flush = %s, store reads %d, want 1 from the cache", got, below.gets-gets)
	}
	cPut(t, c, h, 3, "a", "2")
	if err := c.FlushAll(nil); err != nil {
		t.Fatal(err)
	}
	if want := []string{"a=1@1", "b=1@2", "a=2@3"}; !slices.Equal(below.writes, want) {
		t.Fatalf("writes %v, want %v (b clean, not written again)", below.writes, want)
	}
	// A third key evicts b, the least recently written, clean: no write.
	cPut(t, c, h, 4, "c", "1")
	if want := []string{"a=1@1", "b=1@2", "a=2@3"}; !slices.Equal(below.writes, want) || budget.Used != 2*oneEntry {
		t.Fatalf("after evicting clean b: writes %v, used %d", below.writes, budget.Used)
	}
	gets = below.gets
	if got := cGet(t, c, "b"); got != "1" || below.gets != gets+1 {
		t.Fatalf("Get(b) after its eviction = %s, store reads %d, want 1 from the store", got, below.gets-gets)
	}
	if got := cScan(t, c.All()); got != "a=2,b=1,c=1" {
		t.Fatalf("All = %q", got)
	}
}

// With old values off, a flush reads the store only for deletes, and the
// listener's old value is nil; a delete of a key the store never had is
// still not forwarded.
func TestOldValuesOff(t *testing.T) {
	h := &fakeHost{}
	below := newRecStore(h)
	below.seed(t, "a", "0")
	below.seed(t, "d", "0")
	c := New("agg", below, h, &Budget{Max: 1 << 20})
	var heard []string
	c.SetListener("node", func(key, nv, ov []byte, ts int64) {
		heard = append(heard, fmt.Sprintf("%s:%s<-%s@%d", key, cShow(nv), cShow(ov), ts))
	})
	c.OldValues(false)
	cPut(t, c, h, 1, "a", "1")
	cDelete(t, c, h, 2, "d")
	cDelete(t, c, h, 3, "x")
	gets := below.gets
	if err := c.FlushAll(nil); err != nil {
		t.Fatal(err)
	}
	if want := []string{"a:1<-nil@1", "d:nil<-nil@2"}; !slices.Equal(heard, want) {
		t.Fatalf("listener heard %v, want %v", heard, want)
	}
	if below.gets-gets != 2 {
		t.Fatalf("the flush read the store %d times, want 2 (the deletes)", below.gets-gets)
	}
}
