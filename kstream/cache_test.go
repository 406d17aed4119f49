package kstream

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamwork-go/streamwork/serde"
	"github.com/streamwork-go/streamwork/state"
	"github.com/streamwork-go/streamwork/state/memory"
)

// cachedCounter is a DSL-style node over a cached store: it counts per key
// and forwards "<key>=<count>" itself when there is no cache, or what the
// cache flushes ("<key>=<new>(<old>)") when there is.
type cachedCounter struct {
	t      *task
	name   string
	kv     *state.KeyValue[string, int64]
	cached bool
	down   downstream[string, string]
}

func (c *cachedCounter) init(t *task, n *node, children []nodeInstance) error {
	c.t, c.name = t, n.name
	c.kv = state.Typed(t.store("agg"), serde.String, serde.Int64)
	c.cached = t.onFlush("agg", func(key, newB, oldB []byte, ts int64) {
		if t.curNode != c.name || t.curTs != ts {
			t.fail(c.name, ProcessingErrorKind, fmt.Errorf("listener called as node %q at %d", t.curNode, t.curTs))
			return
		}
		nv, _ := serde.Int64.Deserialize("", newB)
		old := "-"
		if oldB != nil {
			o, _ := serde.Int64.Deserialize("", oldB)
			old = fmt.Sprint(o)
		}
		c.down.forward(Record[string, string]{Key: string(key), Value: fmt.Sprintf("%d(%s)", nv, old), Timestamp: time.UnixMilli(ts)})
	})
	return c.down.wire(t, n, children)
}

func (c *cachedCounter) close() error { return nil }

func (c *cachedCounter) receive(r Record[string, string]) {
	n, _, err := c.kv.Get(r.Key)
	if err == nil {
		err = c.kv.Put(r.Key, n+1)
	}
	if err != nil {
		c.t.fail(c.name, ProcessingErrorKind, err)
		return
	}
	if !c.cached {
		c.down.forward(Record[string, string]{Key: r.Key, Value: fmt.Sprintf("%d", n+1), Timestamp: r.Timestamp})
	}
}

// cachedTopology: in -> cachedCounter (store "agg", cached, changelogged)
// -> out. The store is wired the way the DSL does it: addStore and
// connectStore.
func cachedTopology(t testing.TB) *Topology {
	t.Helper()
	b := NewBuilder()
	in := From(b, "in", serde.String, serde.String)
	n := b.addNode("COUNT", "count", kindProcessor, []*node{in.n}, func() nodeInstance { return &cachedCounter{} })
	b.addStore(&storeSpec{name: "agg", changelog: true, cached: true})
	b.connectStore(n, "agg")
	Stream[string, string]{b: b, n: n}.To("out", serde.String, serde.String)
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

func outValues(recs []*kgo.Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = string(r.Key) + "=" + string(r.Value)
	}
	return out
}

// With a cache, the updates of a key between two commits reach downstream
// and the changelog once, merged, with the old value the store had; with
// CacheMaxBytes(0) every update does.
func TestCacheMergesUpdatesBetweenCommits(t *testing.T) {
	// Fresh records each time: kgo keeps the produce context in them.
	input := func() []*kgo.Record {
		return []*kgo.Record{
			stRecord("a", "", 0, 1), stRecord("a", "", 0, 2), stRecord("b", "", 0, 3),
			stRecord("a", "", 0, 4), stRecord("c", "", 0, 5), stRecord("b", "", 0, 6),
		}
	}
	for _, tc := range []struct {
		name      string
		cache     int64
		out       []string
		changelog int64
	}{
		// Flushed at the shutdown commit in least-recently-written order:
		// a (last written 4th), c, b.
		{"cached", DefaultCacheMaxBytes, []string{"a=3(-)", "c=1(-)", "b=2(-)"}, 3},
		{"uncached", 0, []string{"a=1", "a=2", "b=1", "a=3", "c=1", "b=2"}, 6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			brokers := rtCluster(t, map[string]int32{"in": 1, "out": 1})
			rtProduce(t, brokers, input())
			app, err := New(cachedTopology(t), stOpts(t, brokers, "cache", t.TempDir(),
				CacheMaxBytes(tc.cache), CommitInterval(time.Hour))...)
			if err != nil {
				t.Fatal(err)
			}
			stop := rtRun(t, app)
			stWaitProcessed(t, app, 6)
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			if got := outValues(stReadAll(t, brokers, "out")); !slices.Equal(got, tc.out) {
				t.Fatalf("out = %v, want %v", got, tc.out)
			}
			if n := rtEndOffsets(t, brokers, "cache-agg-changelog"); n != tc.changelog {
				t.Fatalf("changelog has %d records, want %d", n, tc.changelog)
			}
		})
	}
	// A second run continues from the restored store: the old values are
	// what the store held.
	t.Run("old values", func(t *testing.T) {
		brokers := rtCluster(t, map[string]int32{"in": 1, "out": 1})
		rtProduce(t, brokers, input()[:3])
		dir := t.TempDir()
		run := func(n int64) {
			app, err := New(cachedTopology(t), stOpts(t, brokers, "cache", dir, CommitInterval(time.Hour))...)
			if err != nil {
				t.Fatal(err)
			}
			stop := rtRun(t, app)
			stWaitProcessed(t, app, n)
			if err := stop(); err != nil {
				t.Fatal(err)
			}
		}
		run(3)
		rtProduce(t, brokers, input()[3:])
		run(3)
		want := []string{"a=2(-)", "b=1(-)", "a=3(2)", "c=1(-)", "b=2(1)"}
		if got := outValues(stReadAll(t, brokers, "out")); !slices.Equal(got, want) {
			t.Fatalf("out = %v, want %v", got, want)
		}
	})
}

// The test driver flushes after every record: one output per input.
func TestDriverFlushesCacheAfterEveryRecord(t *testing.T) {
	d, err := newTestDriver(cachedTopology(t), time.UnixMilli(0), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for i, k := range []string{"a", "a", "b"} {
		if err := d.Pipe(&kgo.Record{Topic: "in", Key: []byte(k), Value: []byte{}, Timestamp: time.UnixMilli(int64(i))}); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := outValues(d.TakeOutput("out")), []string{"a=1(-)", "a=2(1)", "b=1(-)"}; !slices.Equal(got, want) {
		t.Fatalf("out = %v, want %v", got, want)
	}
	if n := len(d.TakeOutput("kstreamtest-agg-changelog")); n != 3 {
		t.Fatalf("changelog got %d records, want 3", n)
	}
}

// cacheTask returns a task with one cached, changelogged memory store
// "agg" of the given budget, and what the collector and the listener saw.
func cacheTask(t *testing.T, budget int64) (*task, *cachingStore, *sliceCollector, *[]string) {
	t.Helper()
	c := &sliceCollector{}
	tk := &task{id: TaskID{0, 2}, env: testEnv(c), started: true}
	eng := memory.New("agg")
	logged := &changelogStore{Store: eng, t: tk, topic: "t-agg-changelog"}
	logged.acked.Store(-1)
	cs := newCachingStore("agg", logged, tk, &cacheBudget{max: budget})
	tk.stateStores = []*taskStore{{spec: &storeSpec{name: "agg"}, engine: eng, logged: logged, cache: cs, top: cs}}
	var seen []string
	cs.owner = "owner"
	cs.listener = func(key, nv, ov []byte, ts int64) {
		s := fmt.Sprintf("%s:%s<-%s@%d", key, nilStr(nv), nilStr(ov), ts)
		seen = append(seen, s)
	}
	return tk, cs, c, &seen
}

func nilStr(b []byte) string {
	if b == nil {
		return "nil"
	}
	return string(b)
}

func TestCachingStoreReadsMergeAndFlushOrder(t *testing.T) {
	tk, cs, col, seen := cacheTask(t, 1<<20)
	put := func(k, v string, ts int64) {
		tk.curTs = ts
		var err error
		if v == "" {
			err = cs.Delete([]byte(k))
		} else {
			err = cs.Put([]byte(k), []byte(v))
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	put("b", "1", 1)
	put("d", "1", 2)
	if err := tk.flushCaches(); err != nil {
		t.Fatal(err)
	}
	// In the store now: b=1, d=1. Cached: a=1, b=2, c deleted (absent), d
	// deleted.
	put("c", "1", 3)
	put("a", "1", 4)
	put("b", "2", 5)
	put("c", "", 6)
	put("d", "", 7)
	scan := func(it state.Iterator) string {
		var parts []string
		for it.Next() {
			parts = append(parts, string(it.Key())+"="+string(it.Value()))
		}
		if err := it.Close(); err != nil {
			t.Fatal(err)
		}
		return strings.Join(parts, ",")
	}
	if got := scan(cs.All()); got != "a=1,b=2" {
		t.Fatalf("All = %q", got)
	}
	if got := scan(cs.Range([]byte("b"), []byte("d"))); got != "b=2" {
		t.Fatalf("Range = %q", got)
	}
	if v, _ := cs.Get([]byte("d")); v != nil {
		t.Fatalf("Get(d) = %q, want deleted", v)
	}
	if v, _ := cs.Get([]byte("b")); string(v) != "2" {
		t.Fatalf("Get(b) = %q", v)
	}
	*seen = nil
	col.recs = nil
	if err := tk.flushCaches(); err != nil {
		t.Fatal(err)
	}
	// Least recently written first; c (added and deleted) reaches the
	// changelog as a tombstone but not the listener.
	want := []string{"a:1<-nil@4", "b:2<-1@5", "d:nil<-1@7"}
	if !slices.Equal(*seen, want) {
		t.Fatalf("listener saw %v, want %v", *seen, want)
	}
	var cl []string
	for _, r := range col.recs {
		cl = append(cl, fmt.Sprintf("%s:%s@%d/p%d", r.Key, nilStr(r.Value), r.Timestamp.UnixMilli(), r.Partition))
	}
	if want := []string{"a:1@4/p2", "b:2@5/p2", "c:nil@6/p2", "d:nil@7/p2"}; !slices.Equal(cl, want) {
		t.Fatalf("changelog %v, want %v", cl, want)
	}
	if got := scan(cs.All()); got != "a=1,b=2" {
		t.Fatalf("All after flush = %q", got)
	}
	if cs.budget.used != 0 || cs.bytes != 0 {
		t.Fatalf("budget used %d, cache bytes %d after flush", cs.budget.used, cs.bytes)
	}
}

// A cache over its worker's budget evicts (flushes) its least recently
// written keys until it fits.
func TestCachingStoreEvictsLeastRecentlyWritten(t *testing.T) {
	one := int64(1 + 1 + cacheEntryOverhead)
	tk, cs, _, seen := cacheTask(t, 2*one)
	for i, k := range []string{"a", "b", "a", "c", "d"} {
		tk.curTs = int64(i)
		if err := cs.Put([]byte(k), []byte("1")); err != nil {
			t.Fatal(err)
		}
	}
	// a,b fit; a again moves a back; c evicts b; d evicts a.
	if want := []string{"b:1<-nil@1", "a:1<-nil@2"}; !slices.Equal(*seen, want) {
		t.Fatalf("evicted %v, want %v", *seen, want)
	}
	if cs.budget.used != 2*one {
		t.Fatalf("budget used %d, want %d", cs.budget.used, 2*one)
	}
	if tk.curTs != 4 || tk.curNode != "" {
		t.Fatalf("eviction left curTs %d, curNode %q", tk.curTs, tk.curNode)
	}
}

// Random writes, flushes and evictions: reads through the cache always
// equal a plain map's, and after a final flush so does the store below.
func TestCachingStoreMatchesModel(t *testing.T) {
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 7))
		budget := int64(rng.IntN(8)+1) * (2 + cacheEntryOverhead)
		tk, cs, _, _ := cacheTask(t, budget)
		model := map[string]string{}
		key := func() string { return string(rune('a' + rng.IntN(12))) }
		for step := range 500 {
			tk.curTs = int64(step)
			switch op := rng.IntN(10); {
			case op < 5:
				k, v := key(), fmt.Sprint(rng.IntN(9))
				if err := cs.Put([]byte(k), []byte(v)); err != nil {
					t.Fatal(err)
				}
				model[k] = v
			case op < 7:
				k := key()
				if err := cs.Delete([]byte(k)); err != nil {
					t.Fatal(err)
				}
				delete(model, k)
			case op < 8:
				if err := tk.flushCaches(); err != nil {
					t.Fatal(err)
				}
			default:
				from, to := key(), key()
				var want []string
				for _, k := range slices.Sorted(maps.Keys(model)) {
					if k >= from && k < to {
						want = append(want, k+"="+model[k])
					}
				}
				var got []string
				for k, v := range state.Seq(cs.Range([]byte(from), []byte(to))) {
					got = append(got, string(k)+"="+string(v))
				}
				if !slices.Equal(got, want) {
					t.Fatalf("seed %d step %d: Range(%s, %s) = %v, want %v", seed, step, from, to, got, want)
				}
			}
			k := key()
			v, _ := cs.Get([]byte(k))
			if mv, ok := model[k]; ok != (v != nil) || (ok && mv != string(v)) {
				t.Fatalf("seed %d step %d: Get(%s) = %q, model %q %v", seed, step, k, v, mv, ok)
			}
		}
		if err := tk.flushCaches(); err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for k, v := range state.Seq(cs.inner.All()) {
			got[string(k)] = string(v)
		}
		if !maps.Equal(got, model) {
			t.Fatalf("seed %d: store after flush %v, want %v", seed, got, model)
		}
	}
}
