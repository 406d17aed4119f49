package engine

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/streamwork-go/streamwork/kstream/internal/cache"
	"github.com/streamwork-go/streamwork/state"
	"github.com/streamwork-go/streamwork/state/memory"
)

// cacheTask returns a task with one cached, changelogged memory store
// "agg" of the given budget, and what the collector and the listener saw.
func cacheTask(t *testing.T, budget int64) (*Task, *cache.Store, *sliceCollector, *[]string) {
	t.Helper()
	c := &sliceCollector{}
	tk := &Task{ID: TaskID{Subtopology: 0, Partition: 2}, Env: testEnv(c), Started: true}
	eng := memory.New("agg")
	logged := &ChangelogStore{Store: eng, t: tk, Topic: "t-agg-changelog"}
	logged.Acked.Store(-1)
	cs := cache.New("agg", logged, tk, &cache.Budget{Max: budget})
	tk.StateStores = []*TaskStore{{Spec: &StoreSpec{Name: "agg"}, Engine: eng, Logged: logged, Cache: cs, Top: cs}}
	var seen []string
	cs.SetListener("owner", func(key, nv, ov []byte, ts int64) {
		s := fmt.Sprintf("%s:%s<-%s@%d", key, nilStr(nv), nilStr(ov), ts)
		seen = append(seen, s)
	})
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
		tk.CurTs = ts
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
	if err := tk.FlushCaches(); err != nil {
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
	if err := tk.FlushCaches(); err != nil {
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
	// a and b stay cached, clean; c and d, deleted, leave.
	if want := 2 * int64(1+1+cache.EntryOverhead); cs.Budget().Used != want || cs.Bytes() != want {
		t.Fatalf("budget used %d, cache bytes %d after flush, want %d", cs.Budget().Used, cs.Bytes(), want)
	}
}

// A cache over its worker's budget evicts (flushes) its least recently
// written keys until it fits.
func TestCachingStoreEvictsLeastRecentlyWritten(t *testing.T) {
	one := int64(1 + 1 + cache.EntryOverhead)
	tk, cs, _, seen := cacheTask(t, 2*one)
	for i, k := range []string{"a", "b", "a", "c", "d"} {
		tk.CurTs = int64(i)
		if err := cs.Put([]byte(k), []byte("1")); err != nil {
			t.Fatal(err)
		}
	}
	// a,b fit; a again moves a back; c evicts b; d evicts a.
	if want := []string{"b:1<-nil@1", "a:1<-nil@2"}; !slices.Equal(*seen, want) {
		t.Fatalf("evicted %v, want %v", *seen, want)
	}
	if cs.Budget().Used != 2*one {
		t.Fatalf("budget used %d, want %d", cs.Budget().Used, 2*one)
	}
	if tk.CurTs != 4 || tk.CurNode != "" {
		t.Fatalf("eviction left curTs %d, curNode %q", tk.CurTs, tk.CurNode)
	}
}

// Random writes, flushes and evictions: reads through the cache always
// equal a plain map's, and after a final flush so does the store below.
func TestCachingStoreMatchesModel(t *testing.T) {
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 7))
		budget := int64(rng.IntN(8)+1) * (2 + cache.EntryOverhead)
		tk, cs, _, _ := cacheTask(t, budget)
		model := map[string]string{}
		key := func() string { return string(rune('a' + rng.IntN(12))) }
		for step := range 500 {
			tk.CurTs = int64(step)
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
				if err := tk.FlushCaches(); err != nil {
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
		if err := tk.FlushCaches(); err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for k, v := range state.Seq(tk.StateStores[0].Logged.All()) {
			got[string(k)] = string(v)
		}
		if !maps.Equal(got, model) {
			t.Fatalf("seed %d: store after flush %v, want %v", seed, got, model)
		}
	}
}
